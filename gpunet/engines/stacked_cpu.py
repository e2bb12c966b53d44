"""The stacked CPU engine: :mod:`gpunet.engines.cpu`'s step for K networks at once.

The CPU engine makes a step of the book's network about 20 cheap NumPy calls (bias as
a weight, a constant unit per hidden layer, negated working matrices, ``η/k`` folded
into the output error, one flat update, mini-batches gathered a chunk at a time; its
module says why each). Here every one of those arrays gains a leading axis of length
``K`` and every matrix product is a batched one, so a step of K networks is still
about 20 calls: the per-call cost that dominates the book's network on a CPU is paid
once for the whole stack.

Per network it makes exactly the CPU engine's operations on operands of the same
shapes (batched ``matmul`` runs the same BLAS call per network; every activation,
error and scratch buffer is whole and contiguous per network, the constant unit
included; ``η_k/k`` and the L2 decay are per-network columns holding the very values
the single engine's 0-d constants hold), so each network's run is bit for bit the run
``Network.SGD`` makes with the CPU engine (tests/test_stack.py checks it). Each
chunk of mini-batches is gathered as the CPU engine gathers it (from 8-bit codes where
that is exact, :mod:`gpunet.engines.rows`), into a buffer of ``[x, 1]`` rows and one
of ``y`` rows per network: ``x`` contiguous makes its product by the first layer's
matrix ~8% faster than from rows ``[x, 1, y]``.

Working layout per network and layer: the CPU engine's ``-[wᵀ; bᵀ]`` (a hidden
layer's units followed by idle units, σ = 0, and the constant unit, σ = 1, whose output
is the next layer's input of 1: chapter 1's bias as the weight of an input that is
always 1; :func:`gpunet.engines.cpu.working_shapes`), stacked to ``(K, rows, columns)``;
loaded from the stack's ``(K, P)`` parameter rows (:mod:`gpunet.parameters` layout) at
the start of an epoch, stored back at its end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from ..costs import QuadraticCost
from .cpu import Op, blas_threads_for, set_fixed_units, working_shapes
from .cpu import unfit_reason as cpu_unfit_reason
from .rows import Rows, training_rows

if TYPE_CHECKING:
    from ..backends import Array
    from ..parameters import StackedParameters
    from . import TrainingSettings

#: Bytes of training rows gathered at once, for all K networks together (as the CPU
#: engine's chunk: small enough to stay in cache).
CHUNK_BYTES = 256 * 1024

def unfit_reason(stack: "StackedParameters") -> str:
    """Why the stacked CPU engine cannot train ``stack`` (empty when it can): the CPU
    engine's reasons, which read only the backend and the cost a stack has too."""
    return cpu_unfit_reason(stack)


class StackedCpuEngine:
    """K networks' mini-batch SGD on NumPy in the CPU engine's working layout."""

    name = "cpu"

    def __init__(self, stack: "StackedParameters", X: "Array", Y: "Array",
                 settings: "TrainingSettings",
                 data: Optional[Rows] = None) -> None:
        reason = unfit_reason(stack)
        if reason:
            raise ValueError(f"engine 'cpu' cannot train this stack: {reason}; "
                             f"use engine 'eager' or 'auto'.")
        self.stack = stack
        sizes, K = list(stack.sizes), len(stack)
        dtype = np.dtype(stack.dtype)
        self.n = n = X.shape[0]
        self.m = m = min(settings.mini_batch_size, n)
        n_in, n_out = sizes[0], sizes[-1]
        self.eta = list(settings.eta)

        # Per network and layer -[wᵀ; bᵀ], (n_in + 1, n_out), a hidden layer with its idle
        # units and constant unit: the CPU engine's shapes and fixed units.
        shapes = working_shapes(sizes)
        # As the CPU engine: BLAS on one thread for small products (per network).
        self.largest_product = max(m * r * c for r, c in shapes)
        total = sum(r * c for r, c in shapes)
        self.work = np.zeros((K, total), dtype)
        self.grad = np.empty((K, total), dtype)
        self.W = _views(self.work, shapes)
        self.G = _views(self.grad, shapes)
        set_fixed_units(self.W, sizes)
        decays = [1.0 - eta * lmbda / n for eta, lmbda in zip(settings.eta, settings.lmbda)]
        self.mask = None
        if any(d != 1.0 for d in decays):  # eq. 93: weights decay, biases and fixed units not
            self.mask = np.ones((K, total), dtype)
            for block, n_prev, n_l in zip(_views(self.mask, shapes), sizes, sizes[1:]):
                for k, d in enumerate(decays):
                    block[k, :n_prev, :n_l] = d

        # The CPU engine's chunks of mini-batches, per network: x (with its column of
        # ones) and y, gathered from 8-bit codes where exact (gpunet.engines.rows).
        self.data = training_rows(X, Y, dtype) if data is None else data
        row_bytes = (n_in + 1 + n_out) * dtype.itemsize
        self.chunk_steps = max(1, min(n // m, CHUNK_BYTES // (K * m * row_bytes)))
        rows = self.chunk_steps * m
        self.gather = self.data.gatherer(K * rows)
        # Step-major: step j's mini-batches of all K networks, x[j] and y[j], are one
        # contiguous block (a strided y costs each step's ufuncs ~3x).
        self.xchunk = np.ones((self.chunk_steps, K, m, n_in + 1), dtype)
        self.ychunk = np.empty((self.chunk_steps, K, m, n_out), dtype)
        self.steps = [self._step_ops(self.xchunk[j], self.ychunk[j])
                      for j in range(self.chunk_steps)]
        k = n % m  # a smaller last mini-batch: buffers of its own
        self.tail = (np.ones((K, k, n_in + 1), dtype), np.empty((K, k, n_out), dtype))
        self.tail_ops = self._step_ops(*self.tail) if k else []

    # ------------------------------------------------------------------ the step
    def _step_ops(self, x: np.ndarray, y: np.ndarray) -> list[Op]:
        """The NumPy calls of one step on the mini-batches ``x`` (``(K, k, [x, 1])``), ``y``."""
        sizes, dtype = self.stack.sizes, self.work.dtype
        L, K, k = len(sizes) - 1, x.shape[0], x.shape[1]

        def column(values: Sequence[float]) -> np.ndarray:
            # Per network the value the CPU engine's 0-d constant np.array(v, dtype) holds,
            # spread over the network's (k, n_out) block (broadcasting costs ~3x a call).
            per_network = np.array([np.array(v, dtype) for v in values], dtype)
            return np.ascontiguousarray(np.broadcast_to(per_network.reshape(K, 1, 1),
                                                        (K, k, sizes[-1])))

        one = np.array(1, dtype)
        # A^l (a hidden layer's with its idle units and constant unit: the next layer's
        # [a, 0, 1]), Δ^l and scratch, each whole and contiguous per network, as in the
        # CPU engine.
        widths = [W.shape[2] for W in self.W]
        acts = [np.empty((K, k, c), dtype) for c in widths]
        deltas = [np.empty((K, k, c), dtype) for c in widths]
        scratch = [np.empty((K, k, c), dtype) for c in widths]
        mm, exp, add, sub, mul, recip = (np.matmul, np.exp, np.add, np.subtract, np.multiply,
                                         np.reciprocal)
        ops: list[Op] = []
        prev = x
        for l in range(L):  # -z^l = [a^{l-1}, 1] (-[wᵀ; bᵀ]); a^l = 1 / (1 + e^{-z^l})
            out = acts[l]
            ops += [(mm, (prev, self.W[l], out)), (exp, (out, out)), (add, (out, one, out)),
                    (recip, (out, out))]
            prev = out
        a, d, t = acts[-1], deltas[-1], scratch[-1]
        if self.stack.cost is QuadraticCost:  # BP1 scaled by η/k, as the CPU engine
            ops += [(sub, (a, y, d)), (sub, (a, one, t)), (mul, (d, a, d)), (mul, (d, t, d)),
                    (mul, (d, column([-eta / k for eta in self.eta]), d))]
        else:
            ops += [(sub, (a, y, d)), (mul, (d, column([eta / k for eta in self.eta]), d))]
        for l in range(L - 1, -1, -1):  # BP3, BP4; BP2 (the fixed units' errors are 0)
            inp = x if l == 0 else acts[l - 1]
            ops.append((mm, (inp.transpose(0, 2, 1), deltas[l], self.G[l])))
            if l > 0:
                dp, ap, tp = deltas[l - 1], acts[l - 1], scratch[l - 1]
                ops += [(mm, (deltas[l], self.W[l].transpose(0, 2, 1), dp)),
                        (sub, (ap, one, tp)), (mul, (dp, ap, dp)), (mul, (dp, tp, dp))]
        if self.mask is not None:  # eq. 93, 94
            ops.append((mul, (self.work, self.mask, self.work)))
        ops.append((add, (self.work, self.grad, self.work)))
        return ops

    # ------------------------------------------------------------------ the epoch
    def train_epoch(self, permutations: np.ndarray) -> None:
        """One epoch: network ``k`` visits the rows in the order ``permutations[k]``."""
        perm = np.asarray(permutations, dtype=np.intp)
        self._load()
        gather, m = self.gather, self.m
        C, x, y, steps = self.chunk_steps, self.xchunk, self.ychunk, self.steps
        full, K = self.n // m, perm.shape[0]
        # e^{-z} = inf for very negative z: σ = 0, right.
        with blas_threads_for(self.largest_product), np.errstate(over="ignore"):
            for first in range(0, full, C):
                c = min(C, full - first)
                # (K, c m) indices as (c, K, m): step j's rows for every network.
                idx = perm[:, first * m:(first + c) * m].reshape(K, c, m).transpose(1, 0, 2)
                gather(idx, x[:c], y[:c])
                for ops in steps[:c]:
                    for f, args in ops:
                        f(*args)
            if self.tail_ops:
                gather(perm[:, full * m:], *self.tail)
                for f, args in self.tail_ops:
                    f(*args)
        self._store()

    def _load(self) -> None:
        """Working matrices ← the stack's parameters: -[wᵀ; bᵀ] per network and layer."""
        for W, w, b in zip(self.W, self.stack.weights, self.stack.biases):
            n_out, n_in = w.shape[1:]
            np.negative(w.transpose(0, 2, 1), out=W[:, :n_in, :n_out])
            np.negative(b[:, :, 0], out=W[:, -1, :n_out])

    def _store(self) -> None:
        """The stack's parameters ← the working matrices."""
        for W, w, b in zip(self.W, self.stack.weights, self.stack.biases):
            n_out, n_in = w.shape[1:]
            np.negative(W[:, :n_in, :n_out].transpose(0, 2, 1), out=w)
            np.negative(W[:, -1, :n_out], out=b[:, :, 0])


def _views(flat: np.ndarray, shapes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Per-layer ``(K, r, c)`` views of the ``(K, total)`` array ``flat``."""
    views, offset = [], 0
    K = flat.shape[0]
    for r, c in shapes:
        views.append(flat[:, offset:offset + r * c].reshape(K, r, c))
        offset += r * c
    return views
