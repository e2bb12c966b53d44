"""The CPU engine: the eager engine's algorithm in fewer, cheaper NumPy calls a step.

For the book's network ([784, 30, 10], mini-batches of 10) a step is little arithmetic
but, in the eager engine, 25 NumPy calls: the time goes to calling NumPy, not to
computing (the measurements behind each choice below: docs/performance.md, "The CPU
engine's choices, measured"). This engine runs the same algorithm (chapter 1,
"Learning with gradient descent"; chapter 2, BP1-BP4; chapter 3, eq. 93 and 94) in 20
calls a step, each as cheap as NumPy makes a call:

* **the bias is a weight** (chapter 1, "The architecture of neural networks": a bias is
  the weight of an input that is always 1). Each layer's working matrix is
  ``(n_in + 1, n_out)``: the weights transposed, then a row of biases; every layer's
  input, one example per row, has one more column of ones. The matrix product adds the
  bias, and the gradient product ``[a, 1]ᵀ Δ`` yields ``∇b`` as its last row (BP3): no
  bias add, no sum.
* **a constant unit per hidden layer** makes that column of ones: one more unit with zero
  weights and the bias at which the activation is exactly 1 with a derivative of exactly
  0 (its declared :class:`~gpunet.model.activations.Saturation`; the sigmoid's: 10⁴,
  ``σ'`` of a constant 1 is ``1 (1 - 1)``), so it never learns. Every activation buffer
  is then whole and contiguous, which NumPy processes faster per call than a slice.
* **hidden widths a multiple of 8**: idle units (zero weights, the bias at which the
  activation is exactly 0: the sigmoid's -10⁴; their outgoing weights are 0, so their
  error is 0 and they never learn) round each hidden layer's width, constant unit
  included, up to a multiple of 8, the blocks OpenBLAS's kernels work on (both products
  by the 784 inputs are faster at 32 units than at 31). The idle units change which BLAS
  kernel sums the real units, so results differ from the unpadded layout by rounding
  (float64: ~1e-15).
* **the working matrices hold minus the parameters**, so the product gives ``-z``: the
  activation's NumPy calls take it from there (:meth:`~gpunet.model.activations.
  Activation.activate_minus_z_ops`; the sigmoid's ``σ(z) = 1 / (1 + e^{-z})`` is three
  in-place ufuncs, exp, add 1, reciprocal, with no negation). Back-propagating through
  ``-w`` flips the error's sign, and multiplying by ``-σ'(z)`` (the sigmoid's
  ``a (a - 1)``) flips it back (BP2).
* **the step size is folded into the output error**: ``Δ^L`` is scaled by ``η/m`` once
  (a few dozen numbers), so every gradient arrives scaled and the update of every
  parameter is one ``add`` over one flat buffer (L2 decay, when asked, one multiply by
  a mask that spares the biases and the idle and constant units).
* **calls are cheap**: constants are 0-d arrays of the network's dtype (a Python
  number costs NumPy a conversion each call), outputs are positional,
  small products are ``np.dot`` (cheaper a call than ``np.matmul``), and the
  calls of a step are bound once into a list that the epoch replays.
* **mini-batches are gathered, not the training set shuffled**: each epoch gathers
  the rows of a few mini-batches at a time (~256 KB, which stays in cache) by the
  epoch's permutation. Where every number of the rows ``[x, 1, y]`` is ``u / 255``
  (MNIST), from a copy in 8-bit codes decoded exactly (:mod:`gpunet.engines.rows`: a
  quarter of the memory traffic in float32); else straight from the training set as
  given (no copy of it).
* **BLAS on one thread** for networks whose products are small (threadpoolctl): waking
  OpenBLAS's second thread for a product this small costs more than it saves, and far
  more while another process computes.

The network's flat parameter buffer (:mod:`gpunet.model.parameters`) is read at the start of
each epoch and written at its end, so between epochs everything else (metrics,
checkpoints, the eager engine) sees the parameters in their usual layout.

**K networks at once** (a :class:`gpunet.NetworkStack`): every array gains a leading
axis of length K and every matrix product is a batched one (``np.matmul`` on 3-D
arrays: the same BLAS call per network), so a step of K networks is still about 20
calls: the per-call cost that dominates the book's network on a CPU is paid once for
the whole stack. Per network it makes exactly one network's operations on operands of
the same shapes (every activation, error and scratch buffer whole and contiguous per
network; ``η_k/k`` and the L2 decay per-network blocks holding the very values one
network's 0-d constants hold), so each network's run is bit for bit its single run
(tests/test_stack.py). One network (``K = 1``) binds the same operations to the
arrays' one slice, 2-D, with ``np.dot`` and 0-d constants, the cheapest calls. A
chunk's x rows are contiguous per network: its product by the first layer's matrix is
faster than from rows ``[x, 1, y]`` (docs/performance.md). :mod:`gpunet.engines.stacked_workers` splits
a large stack over processes, each group trained by this engine.

Host arrays only (a backend whose ``kind`` is ``"host"``: NumPy's own functions work
on its arrays): ``auto`` takes this engine there for every declared cost
(:class:`gpunet.model.costs.DeclaredCost`, whose NumPy output error it binds) and hidden
activations that declare their saturation; the eager engine stays the reference on every
backend.

Each layer computes its own activation (:func:`gpunet.model.activations.layer_activations`):
the padding lives in the hidden layers only, each with its activation's saturation
(sigmoid: ±10⁴; tanh: 10⁴ and 0; ReLU: 1 and -1), and the output layer, which has no
padding, needs only its activation's calls (the softmax's five in-place calls a row).
ReLU's derivative at its constant unit is 1, not 0, so where a hidden activation's
``σ'`` is not exactly 0 there, each step also zeroes that unit's error column after BP2
(one call per such layer; the sigmoid and tanh need none): it then never learns. An
idle unit needs no more than ``σ = 0``: its outgoing weights are 0, so its error is 0
whatever its ``σ'``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, ContextManager, Optional, Sequence, cast

import numpy as np

from ..model.activations import Activation, Op, layer_activations
from ..model.costs import declared_phrase
from ..model.dropout import MaskBlocks, hidden_widths, rates_of, seeds_of, steps_in_epoch
from ..model.parameters import as_rows, layer_views
from .base import described, extended, l1_of, momentum_of, networks_in, unfit_error
from .rows import Rows, training_rows

if TYPE_CHECKING:
    from ..backends import Array
    from ..model.parameters import Parameters
    from .base import StepSettings

#: Bytes of training rows gathered at once: small enough to stay in the L2 cache beside
#: the book network's parameters and gradient, large enough to make ``take``'s per-call
#: cost vanish.
CHUNK_BYTES = 256 * 1024

#: Below this many multiply-adds in a step's largest matrix product, the epoch runs BLAS
#: on one thread: waking a second thread for a product of a few microseconds costs more
#: than it saves, and on a busy machine far more.
SINGLE_THREAD_BELOW = 4_000_000

#: Each hidden layer's working width (its units, then idle units, then the constant unit)
#: is rounded up to a multiple of this: OpenBLAS's kernels work on blocks of 8 or 16
#: rows, so the book network's products are faster at 32 units than at 31 (measured in
#: docs/performance.md, "The CPU engine's choices, measured").
#: An idle unit has zero weights and the bias at which the activation is exactly 0: its
#: output adds exact zeros to the next layer's sums, its error is exactly 0 and it never
#: learns.
WIDTH_MULTIPLE = 8


def unfit_reason(net: "Parameters") -> str:
    """Why the CPU engine cannot train ``net`` (empty when it can): its backend's
    arrays must be host (NumPy) arrays, its cost must declare its NumPy output error,
    and its activation must declare NumPy calls that are exact where it saturates."""
    if net.backend.kind != "host":
        return f"the cpu engine runs on the NumPy backend, not on {net.backend.device}"
    if getattr(net.cost, "output_error_ops", None) is None:
        return f"the cpu engine knows {declared_phrase()}, not {net.cost.__name__}"
    for activation in layer_activations(net)[:-1]:  # the hidden layers' (padded)
        if not saturates_exactly(activation, net.dtype):
            return (f"the cpu engine's constant and idle units need an activation that is "
                    f"exactly 1 and 0 somewhere; {activation.name} declares no such "
                    f"saturation")
    return ""


def _at_saturation(activation: type[Activation], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(σ, σ')`` at the declared saturation's ``one`` and ``zero``, through the very
    calls the engine makes."""
    where = activation.saturation
    assert where is not None
    one = np.array(1, dtype)
    a = np.array([-where.one, -where.zero], dtype)  # the engine's -z
    with np.errstate(over="ignore"):
        for f, args in activation.activate_minus_z_ops(a, one):
            f(*args)
    prime = np.ones(2, dtype)
    for f, args in activation.prime_mul_ops(prime, a, np.empty(2, dtype), one):
        f(*args)
    return a, prime


def saturates_exactly(activation: type[Activation], dtype: Any) -> bool:
    """Whether ``activation``'s declared saturation holds in ``dtype`` through the very
    calls the engine makes: ``σ = 1`` at ``one``, ``σ = 0`` at ``zero``."""
    if activation.saturation is None:
        return False
    a, _ = _at_saturation(activation, dtype)
    return bool(a[0] == 1 and a[1] == 0)


def constant_prime_is_zero(activation: type[Activation], dtype: Any) -> bool:
    """Whether ``σ'`` is exactly 0 at the constant unit (the sigmoid's and tanh's: it
    cannot learn); where not (ReLU's is 1), the engine zeroes that unit's error."""
    return bool(_at_saturation(activation, dtype)[1][0] == 0)


class CpuEngine:
    """K ≥ 1 networks' mini-batch SGD on NumPy, parameters in the working layout (see the
    module): a network's ``(P,)`` buffer as one row, a stack's ``(K, P)`` as K.

    ``data`` is the training rows when the caller has them already
    (:mod:`gpunet.engines.rows`; the worker processes get them once); else they are made
    from ``X`` and ``Y``.
    """

    name = "cpu"

    def __init__(self, params: "Parameters", X: "Array", Y: "Array",
                 settings: "StepSettings", data: Optional[Rows] = None) -> None:
        reason = unfit_reason(params)
        if reason:
            raise unfit_error("cpu", params, reason)
        self.params = params
        self.activations = layer_activations(params)
        _, self.weights, self.biases = as_rows(params)
        self.K = K = networks_in(params, settings)
        self.eta = list(settings.eta)
        self.examples_done = 0
        sizes = list(params.sizes)
        dtype = np.dtype(params.dtype)
        self.n = n = X.shape[0]
        self.m = m = min(settings.mini_batch_size, n)
        n_in, n_out = sizes[0], sizes[-1]

        # Working parameters: per network and layer -[wᵀ; bᵀ], (n_in + 1, n_out), where a
        # hidden layer has idle units and the constant unit after its own
        # (working_shapes); the gradient alike.
        shapes = working_shapes(sizes)
        # BLAS on one thread for small products (per network).
        self.largest_product = max(m * r * c for r, c in shapes)
        total = sum(r * c for r, c in shapes)
        self.work = np.zeros((K, total), dtype)
        self.grad = np.empty((K, total), dtype)
        self.W = layer_views(self.work, shapes)
        self.G = layer_views(self.grad, shapes)
        set_fixed_units(self.W, sizes, self.activations)
        self.shapes, self.lmbda = shapes, list(settings.lmbda)
        # eq. 93: weights decay, biases and fixed units not (a mask of 1s but on the
        # weights); filled by _fill_rates, as the extension's masks and μ
        self.mask = np.ones((K, total), dtype) if any(l != 0 for l in self.lmbda) else None
        self.momentum, self.l1 = momentum_of(settings, K), l1_of(settings, K)
        self.extension = (Extension(self.work, self.grad, shapes, sizes, self.momentum,
                                    self.l1, self.lmbda)
                          if extended(self.momentum, self.l1) else None)
        self.velocity = self.extension.velocity if self.extension is not None else None
        #: every array holding a per-network η/k (the scaled output errors), with its k
        self._scaled: list[tuple[np.ndarray, int]] = []
        #: dropout (gpunet.model.dropout): each network's rate and seed, the epoch the
        #: next train_epoch trains (the loop sets it for a resumed run), and per step
        #: slot the masks its calls multiply by, per hidden layer (C, K, 1, width): 1 at
        #: the idle and constant units, filled with each chunk's masks
        self.dropout = rates_of(settings, K)
        self.seeds = seeds_of(params) if any(self.dropout) else []
        self.next_epoch = 0

        # A chunk of mini-batches at a time is gathered: from the rows [x, 1, y] in 8-bit
        # codes where that is exact (MNIST; gpunet.engines.rows), else from X and Y as given.
        self.data = training_rows(X, Y, dtype) if data is None else data
        row_bytes = (n_in + 1 + n_out) * dtype.itemsize
        self.chunk_steps = max(1, min(n // m, CHUNK_BYTES // (K * m * row_bytes)))
        self.masks = ([np.ones((self.chunk_steps + 1, K, 1, W.shape[2]), dtype)
                       for W in self.W[:-1]] if self.seeds else [])
        self.mask_blocks = MaskBlocks(self.seeds, self.dropout, hidden_widths(sizes), dtype,
                                      steps_in_epoch(n, m)) if self.seeds else None
        self.gather = self.data.gatherer(K * self.chunk_steps * m)
        # Step-major: step j's mini-batches of all K networks, x[j] and y[j], are one
        # contiguous block (a strided y makes each step's ufuncs several times dearer).
        self.xchunk = np.ones((self.chunk_steps, K, m, n_in + 1), dtype)
        self.ychunk = np.empty((self.chunk_steps, K, m, n_out), dtype)
        self.steps = [self._step_ops(self.xchunk[j], self.ychunk[j], self._slot(j))
                      for j in range(self.chunk_steps)]
        k = n % m  # a smaller last mini-batch: buffers of its own
        self.tail = (np.ones((K, k, n_in + 1), dtype), np.empty((K, k, n_out), dtype))
        self.tail_ops = (self._step_ops(*self.tail, self._slot(self.chunk_steps))
                         if k else [])
        self._fill_rates()

    def set_eta(self, eta: Sequence[float]) -> None:
        """Network ``k`` trains with ``eta[k]`` from the next epoch on: every constant
        that holds η refilled in place, exactly as the constructor fills it."""
        self.eta = [float(e) for e in eta]
        self._fill_rates()

    def _fill_rates(self) -> None:
        """The constants that depend on η: each step's ``η/k`` blocks, the decay mask
        ``1 - ηλ/n`` and the extension's (μ, and ``ηλ₁/n``, ``ηλ/n`` on the weights)."""
        dtype = self.work.dtype
        for array, k in self._scaled:
            fill_scaled(array, [eta / k for eta in self.eta], dtype)
        if self.mask is not None:
            decays = [1.0 - eta * lmbda / self.n for eta, lmbda in zip(self.eta, self.lmbda)]
            fill_weights(self.mask, self.shapes, self.params.sizes, decays)
        if self.extension is not None:
            self.extension.fill(self.eta, self.n)

    def _slot(self, j: int) -> list[np.ndarray]:
        """Step slot ``j``'s dropout masks, per hidden layer ``(K, 1, width)`` (none
        without dropout); the last slot is the smaller last mini-batch's."""
        return [mask[j] for mask in self.masks]

    # ------------------------------------------------------------------ the step
    def _step_ops(self, x: np.ndarray, y: np.ndarray,
                  masks: Sequence[np.ndarray] = ()) -> list[Op]:
        """The NumPy calls of one SGD step on the mini-batches ``x`` (``(K, k, [x, 1])``)
        and ``y``; for one network bound to their one 2-D slice. ``masks``: dropout's,
        per hidden layer (a removed neuron's activation and error multiplied by 0)."""
        sizes, dtype = self.params.sizes, self.work.dtype
        L, K, k = len(sizes) - 1, self.K, x.shape[1]
        single = K == 1

        def v(a: np.ndarray) -> np.ndarray:  # one network: its slice, 2-D
            return cast(np.ndarray, a[0]) if single else a

        def T(a: np.ndarray) -> np.ndarray:  # each network's matrix transposed
            return np.swapaxes(a, -1, -2)

        def scaled() -> np.ndarray:
            # One network: a 0-d constant (NumPy converts no Python number per call). K:
            # per network the value that constant holds, spread over the network's
            # (k, n_out) block (a broadcast operand makes a call several times dearer).
            # Filled with η/k by _fill_rates (and again by set_eta).
            array = np.empty(() if single else (K, k, sizes[-1]), dtype)
            self._scaled.append((array, k))
            return array

        one = np.array(1, dtype)
        # A^l (a hidden layer's with its idle and constant units: the next layer's input
        # [a, 0, 1]), Δ^l and scratch, each whole and contiguous per network.
        widths = [W.shape[2] for W in self.W]
        acts = [v(np.empty((K, k, c), dtype)) for c in widths]
        deltas = [v(np.empty((K, k, c), dtype)) for c in widths]
        scratch = [v(np.empty((K, k, c), dtype)) for c in widths]
        W, G, x, y = [v(w) for w in self.W], [v(g) for g in self.G], v(x), v(y)
        # np.dot costs NumPy less a call than np.matmul on small products, but more
        # instructions on the gradient's (in + 1, k) x (k, out) product.
        mm, mmt, add, mul = np.dot if single else np.matmul, np.matmul, np.add, np.multiply
        layers, cost = self.activations, self.params.cost
        ops: list[Op] = []
        # Feedforward: -z^l = [a^{l-1}, 1] (-[wᵀ; bᵀ]), a^l = σ(z^l) (eq. 25, 3).
        prev = x
        for l in range(L):
            out = acts[l]
            ops += [(mm, (prev, W[l], out)), *layers[l].activate_minus_z_ops(out, one)]
            if l < len(masks):
                ops.append((mul, (out, v(masks[l]), out)))
            prev = out
        # Output error (BP1), scaled by η/k: every gradient below arrives scaled.
        a, d, t = acts[-1], deltas[-1], scratch[-1]
        ops += [*cost.output_error_ops(layers[-1], a, y, d, t, one),
                (mul, (d, scaled(), d))]
        # Backward: (η/k)∇[w; b]^l = [a^{l-1}, 1]ᵀ Δ^l (BP3, BP4); Δ^{l-1} (BP2).
        for l in range(L - 1, -1, -1):
            inp = x if l == 0 else acts[l - 1]
            ops.append((mmt, (T(inp), deltas[l], G[l])))
            if l > 0:
                # Δ^l (-w^l) has the wrong sign; -σ'(z) puts it right.
                dp, ap, tp = deltas[l - 1], acts[l - 1], scratch[l - 1]
                ops += [(mm, (deltas[l], T(W[l]), dp)),
                        *layers[l - 1].prime_mul_ops(dp, ap, tp, one, negated=True)]
                if not constant_prime_is_zero(layers[l - 1], dtype):
                    # the constant unit (last column) must not learn: its error is 0
                    ops.append((np.copyto, (dp[..., -1], np.zeros((), dtype))))
                if masks:
                    ops.append((mul, (dp, v(masks[l - 1]), dp)))
        # Update (eq. 93, 94) of the working -[w; b]: decay, then add the scaled gradient.
        if self.extension is not None:  # momentum or L1 (eq. 97, 107, 108): Extension
            return ops + self.extension.ops(v, self.mask)
        work = v(self.work)
        if self.mask is not None:
            ops.append((mul, (work, v(self.mask), work)))
        ops.append((add, (work, v(self.grad), work)))
        return ops

    # ------------------------------------------------------------------ the epoch
    def train_epoch(self, permutations: np.ndarray) -> None:
        """One epoch: network ``k`` visits the rows in the order ``permutations[k]`` (one
        network: a ``(n,)`` permutation or ``(1, n)``), in mini-batches of ``m``."""
        K, n, m = self.K, self.n, self.m
        perm = np.asarray(permutations, dtype=np.intp).reshape(K, n)
        self._load()
        gather, C, x, y, steps = self.gather, self.chunk_steps, self.xchunk, self.ychunk, self.steps
        full = n // m
        self.examples_done = 0  # read by the progress line (a host counter, per chunk)
        # e^{-z} = inf for very negative z: the sigmoid's σ = 0, right.
        with blas_threads_for(self.largest_product), np.errstate(over="ignore"):
            for first in range(0, full, C):
                c = min(C, full - first)
                # (K, c m) indices as (c, K, m): step j's rows for every network.
                idx = perm[:, first * m:(first + c) * m].reshape(K, c, m).transpose(1, 0, 2)
                gather(idx, x[:c], y[:c])
                self._fill_masks(first, c, slice(0, c))
                for ops in steps[:c]:
                    for f, args in ops:
                        f(*args)
                self.examples_done = (first + c) * m
            if self.tail_ops:
                gather(perm[:, full * m:], *self.tail)
                self._fill_masks(full, 1, slice(-1, None))
                for f, args in self.tail_ops:
                    f(*args)
                self.examples_done = n
        self._store()
        self.next_epoch += 1

    def _fill_masks(self, first: int, count: int, slots: slice) -> None:
        """Dropout's masks of the epoch's steps ``first`` to ``first + count - 1`` into
        the step slots ``slots`` (nothing without dropout)."""
        if self.mask_blocks is None:
            return
        drawn = self.mask_blocks.steps(self.next_epoch, first, count)
        for out, mask in zip(self.masks, drawn):
            out[slots, :, 0, :mask.shape[2]] = mask

    def _load(self) -> None:
        """Working matrices ← the parameters: -[wᵀ; bᵀ] per network and layer (and the
        velocities alike)."""
        to_working(self.W, self.weights, self.biases)
        if self.extension is not None:
            self.extension.load()

    def _store(self) -> None:
        """The parameters ← the working matrices (and the velocities alike)."""
        from_working(self.W, self.weights, self.biases)
        if self.extension is not None:
            self.extension.store()


def to_working(W: Sequence[np.ndarray], weights: Sequence[np.ndarray],
               biases: Sequence[np.ndarray]) -> None:
    """Working matrices ``W`` ← -[wᵀ; bᵀ] of the ``(K, ...)`` layer views."""
    for W_l, w, b in zip(W, weights, biases):
        n_out, n_in = w.shape[1:]
        np.negative(w.transpose(0, 2, 1), out=W_l[:, :n_in, :n_out])
        np.negative(b[:, :, 0], out=W_l[:, -1, :n_out])


def from_working(W: Sequence[np.ndarray], weights: Sequence[np.ndarray],
                 biases: Sequence[np.ndarray]) -> None:
    """The ``(K, ...)`` layer views ← the working matrices ``W``."""
    for W_l, w, b in zip(W, weights, biases):
        n_out, n_in = w.shape[1:]
        np.negative(W_l[:, :n_in, :n_out].transpose(0, 2, 1), out=w)
        np.negative(W_l[:, -1, :n_out], out=b[:, :, 0])


def fill_scaled(array: np.ndarray, values: Sequence[float], dtype: Any) -> None:
    """``array`` (0-d for one network, else ``(K, k, n_out)``) ← each network's value,
    rounded once to ``dtype`` (the very number a 0-d constant of it holds)."""
    per_network = np.array([np.array(value, dtype) for value in values], dtype)
    if array.ndim == 0:
        array[...] = per_network.reshape(())
    else:
        array[...] = per_network.reshape(-1, 1, 1)


def fill_weights(mask: np.ndarray, shapes: Sequence[tuple[int, int]], sizes: Sequence[int],
                 values: Sequence[float], elsewhere: float = 1.0) -> None:
    """``mask`` ``(K, total)`` ← network ``k``'s ``values[k]`` on its real weights and
    ``elsewhere`` on the biases and the idle and constant units (working layout)."""
    mask[...] = elsewhere
    for block, n_prev, n_l in zip(layer_views(mask, shapes), sizes, sizes[1:]):
        for k, value in enumerate(values):
            block[k, :n_prev, :n_l] = value


class Extension:
    """The CPU engine's step with momentum or L1, in the working layout, where
    ``u = -w`` and the scaled gradient ``G = (η/k)∇`` arrive as the plain step has them.

    With ``ν = -v`` (the velocities, working layout; the flat ``(K, P)``
    :attr:`velocity` is loaded and stored with the parameters), chapter 3's step (eq. 97
    with L1, ``sgn(0) = 0``; eq. 107 and 108 with momentum; see
    :class:`gpunet.model.backprop.Step`) reads::

        G' = G - (ηλ₁/n) sgn(u)          ν' = μ ν + G' - (ηλ/n) u
        u' = (1 - ηλ/n) u + G' + μ ν

    on the real weights (biases: no L1, no λ). A network with ``μ = 0`` rounds exactly
    as its plain step (``u' = (decay u + G') + 0``).
    """

    def __init__(self, work: np.ndarray, grad: np.ndarray, shapes: Sequence[tuple[int, int]],
                 sizes: Sequence[int], momentum: Sequence[float], l1: Sequence[float],
                 lmbda: Sequence[float]) -> None:
        K, total = work.shape
        dtype = work.dtype
        self.work, self.grad, self.shapes, self.sizes = work, grad, shapes, list(sizes)
        self.momentum, self.l1, self.lmbda = list(momentum), list(l1), list(lmbda)
        self.momentum_on = any(mu != 0 for mu in momentum)
        self.term = np.empty((K, total), dtype)
        self.l1_mask = np.zeros((K, total), dtype) if any(l != 0 for l in l1) else None
        self.velocity: Optional[np.ndarray] = None
        if self.momentum_on:
            from ..model.parameters import n_parameters

            self.velocity = np.zeros((K, n_parameters(sizes)), dtype)  # flat, as stored
            _, self.v_weights, self.v_biases = _views(self.velocity, sizes)
            self.nu = np.zeros((K, total), dtype)
            self.NU = layer_views(self.nu, shapes)
            self.held = np.empty((K, total), dtype)
            self.mu = np.empty((K, 1), dtype)
            self.l2_mask = (np.zeros((K, total), dtype) if any(l != 0 for l in lmbda)
                            else None)

    def fill(self, eta: Sequence[float], n: int) -> None:
        """The constants for ``eta``: ``ηλ₁/n``, ``ηλ/n`` on the weights, μ (0 where
        η = 0: a frozen network)."""
        if self.l1_mask is not None:
            fill_weights(self.l1_mask, self.shapes, self.sizes,
                         [e * l / n for e, l in zip(eta, self.l1)], 0.0)
        if self.momentum_on:
            self.mu[:, 0] = [0.0 if e == 0 else mu for e, mu in zip(eta, self.momentum)]
            if self.l2_mask is not None:
                fill_weights(self.l2_mask, self.shapes, self.sizes,
                             [e * l / n for e, l in zip(eta, self.lmbda)], 0.0)

    def ops(self, v: Any, mask: Optional[np.ndarray]) -> list[Op]:
        """The update's NumPy calls, bound to ``v`` of each buffer (one network: its
        row)."""
        mul, add, sub = np.multiply, np.add, np.subtract
        u, G, term = v(self.work), v(self.grad), v(self.term)
        ops: list[Op] = []
        if self.l1_mask is not None:  # G' = G - (ηλ₁/n) sgn(u)
            ops += [(np.sign, (u, term)), (mul, (term, v(self.l1_mask), term)),
                    (sub, (G, term, G))]
        if self.momentum_on:  # ν' = μ ν + G' - (ηλ/n) u
            nu, held = v(self.nu), v(self.held)
            mu = self.mu[0, 0:1].reshape(()) if u.ndim == 1 else self.mu
            ops += [(mul, (nu, mu, held)), (add, (held, G, nu))]
            if self.l2_mask is not None:
                ops += [(mul, (u, v(self.l2_mask), term)), (sub, (nu, term, nu))]
        if mask is not None:
            ops.append((mul, (u, v(mask), u)))
        ops.append((add, (u, G, u)))
        if self.momentum_on:  # u' = decay u + G' + μ ν
            ops.append((add, (u, v(self.held), u)))
        return ops

    def load(self) -> None:
        """ν ← -[vᵀ; v_bᵀ] from the flat velocities."""
        if self.momentum_on:
            to_working(self.NU, self.v_weights, self.v_biases)

    def store(self) -> None:
        """The flat velocities ← -ν."""
        if self.momentum_on:
            from_working(self.NU, self.v_weights, self.v_biases)


def _views(flat: np.ndarray, sizes: Sequence[int]) -> tuple[np.ndarray, list[Any], list[Any]]:
    """``flat`` ``(K, P)`` and its ``(K, ...)`` weight and bias views."""
    from ..model.parameters import bias_shapes, weight_shapes

    views = layer_views(flat, weight_shapes(sizes) + bias_shapes(sizes))
    L = len(sizes) - 1
    return flat, views[:L], views[L:]


def working_shapes(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """Each layer's working matrix shape ``(inputs + 1, outputs)``.

    A hidden layer's outputs are its ``n`` units, then idle units (σ = 0), then the
    constant unit (σ = 1) last, ``n + 1`` rounded up to :data:`WIDTH_MULTIPLE`; so the
    next layer's rows are the weights of its ``n`` inputs, zero rows for the idle
    units, and the biases last (the constant unit's row).
    """
    widths = ([sizes[0] + 1] + [-(-(n + 1) // WIDTH_MULTIPLE) * WIDTH_MULTIPLE
                                for n in sizes[1:-1]] + [sizes[-1]])
    return list(zip(widths[:-1], widths[1:]))


def set_fixed_units(W: Sequence[np.ndarray], sizes: Sequence[int],
                    activations: Sequence[type[Activation]]) -> None:
    """The biases of the hidden layers' idle units (σ = 0) and constant units (σ = 1):
    each hidden layer's activation's declared saturation (``activations``: one per
    layer), in the working matrices ``W`` (zero elsewhere; negated, as all the working
    parameters; any leading axes, e.g. one per network of a stack)."""
    for W_l, n_l, activation in zip(W[:-1], sizes[1:-1], activations):
        where = activation.saturation
        if where is None:  # unfit_reason refuses such an activation first
            raise ValueError(f"the {activation.name} activation declares no saturation")
        W_l[..., -1, n_l:-1] = -where.zero
        W_l[..., -1, -1] = -where.one


_threadpools: Any = None  # threadpoolctl's controller, made once (it inspects the libraries)


def blas_threads_for(largest: int) -> ContextManager[Any]:
    """BLAS on one thread while the largest matrix product of a step has fewer than
    :data:`SINGLE_THREAD_BELOW` multiply-adds; else BLAS as it is."""
    if largest >= SINGLE_THREAD_BELOW:
        return contextlib.nullcontext()
    return one_blas_thread()


def one_blas_thread() -> ContextManager[Any]:
    """BLAS on one thread while the context lasts (threadpoolctl)."""
    global _threadpools
    if _threadpools is None:
        from threadpoolctl import ThreadpoolController

        _threadpools = ThreadpoolController()
    return cast(ContextManager[Any], _threadpools.limit(limits=1, user_api="blas"))

