"""The eager engine: one mini-batch step after another, as array operations, for K ≥ 1
networks at once.

Each step gathers every network's mini-batch (row ``k`` of the epoch's permutations,
``take`` on the device), runs chapter 2's matrix-based backpropagation
(:func:`gpunet.model.backprop.backprop_into`: batched products, one per layer and direction
whatever K is) and one update of the ``(K, P)`` parameters (:class:`gpunet.model.backprop.Step`:
chapter 3, eq. 93 and 94, with each network's own η and λ; momentum and L1 where
asked, with the velocities beside the parameters in the same flat layout). On NumPy that is about 25
calls a step; on CuPy about a dozen kernel and cuBLAS launches, which is launch-bound for
small networks and the right engine for wide ones (cuBLAS does the work). Runs on every
backend; the reference engine. A :class:`gpunet.Network` is one row
(:func:`gpunet.model.parameters.as_rows`), a :class:`gpunet.NetworkStack` K, so a stacked
network's run is the single one by construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from ..model.activations import layer_activations
from ..model.backprop import Step, Workspace, backprop_into
from ..model.dropout import MaskBlocks, hidden_widths, rates_of, seeds_of, steps_in_epoch
from ..model.parameters import as_rows
from .base import extended, l1_of, momentum_of, networks_in, unfit_error

if TYPE_CHECKING:
    from ..backends import Array
    from ..model.parameters import Parameters
    from .base import StepSettings


class EagerEngine:
    """K networks' mini-batch SGD as (batched) array operations, buffers allocated once.

    No CUDA-graph capture: the steps' matrix products are cuBLAS calls, which CuPy
    refuses while a stream captures (``NotImplementedError: calling cuBLAS API during
    stream capture is currently unsupported``). Launch overhead on small networks is
    the fused engine's job, one kernel launch per epoch.
    """

    name = "eager"

    def __init__(self, params: "Parameters", X: "Array", Y: "Array",
                 settings: "StepSettings") -> None:
        reason = unfit_reason(params)
        if reason:
            raise unfit_error("eager", params, reason)
        self.params, self.X, self.Y = params, X, Y
        self.activation = layer_activations(params)
        self.rows, self.weights, self.biases = as_rows(params)
        backend, xp, K = params.backend, params.xp, networks_in(params, settings)
        self.n = n = X.shape[0]
        self.m = m = min(settings.mini_batch_size, n)
        last = n - (n // m) * m
        self.workspaces = {k: Workspace(params.sizes, K, xp, params.dtype, k)
                           for k in ([m, last] if last else [m])}
        momentum, l1 = momentum_of(settings, K), l1_of(settings, K)
        self.velocity = (xp.zeros_like(self.rows) if any(mu != 0 for mu in momentum)
                         else None)
        plain = not extended(momentum, l1)  # the steps exactly as without them
        self.steps = {k: Step(backend, settings.eta, settings.lmbda, k, n, self.rows,
                              ws.gradient, ws.n_weights,
                              *(() if plain else (momentum, l1, self.velocity)))
                      for k, ws in self.workspaces.items()}
        self.perm = xp.empty((K, n), dtype=np.int64)
        #: dropout (gpunet.model.dropout): each network's rate, its seed, and the epoch
        #: the next train_epoch trains (the loop sets it for a resumed run)
        self.dropout = rates_of(settings, K)
        self.seeds = seeds_of(params) if any(self.dropout) else []
        self.next_epoch = 0
        self.mask_blocks = (MaskBlocks(self.seeds, self.dropout, hidden_widths(params.sizes),
                                       np.dtype(params.dtype), steps_in_epoch(n, m))
                            if self.seeds else None)
        #: examples of the current epoch stepped through so far, read by the progress
        #: line (gpunet.training.progress) from another thread: a host counter, never a sync.
        self.examples_done = 0

    def set_eta(self, eta: "Sequence[float]") -> None:
        """Network ``k`` trains with ``eta[k]`` from the next epoch on."""
        for step in self.steps.values():
            step.set_eta(eta)

    def train_epoch(self, permutations: np.ndarray) -> None:
        """One epoch: network ``k``'s mini-batches are ``X[permutations[k]]`` in order."""
        self.params.backend.copy_from_host(self.perm, permutations.reshape(self.perm.shape))
        n, m = self.n, self.m
        self.examples_done = 0
        block: list[Array] = []
        start = 0
        for j, s in enumerate(range(0, n, m)):
            k = min(m, n - s)
            if self.mask_blocks is not None and (not block or j - start >= len(block[0])):
                block, start = self._mask_block(j), j
            self._step(self.workspaces[k], self.steps[k], s,
                       [mask[j - start] for mask in block] if block else None)
            self.examples_done = s + k
        self.next_epoch += 1

    def _mask_block(self, first: int) -> "list[Array]":
        """Dropout's masks of a block of steps from step ``first``, per hidden layer
        ``(steps, K, 1, n_l)`` on the device (drawn on the host in one vectorised pass,
        copied once a block: :class:`gpunet.model.dropout.MaskBlocks`)."""
        assert self.mask_blocks is not None
        blocks, K = self.mask_blocks, len(self.dropout)
        host = blocks.steps(self.next_epoch, first,
                            min(blocks.block, blocks.steps_per_epoch - first))
        return [self.params.backend.asarray(mask.reshape(len(mask), K, 1, -1), self.params.dtype)
                for mask in host]

    def _step(self, ws: Workspace, step: Step, s: int,
              masks: "Optional[list[Array]]" = None) -> None:
        backend = self.params.backend
        index = self.perm[:, s:s + ws.k]
        backend.take_rows(self.X, index, ws.X)
        backend.take_rows(self.Y, index, ws.Y)
        backprop_into(backend, self.params.cost, self.weights, self.biases, ws,
                      self.activation, masks)
        step()


def unfit_reason(params: "Parameters") -> str:
    """Why the eager engine cannot train ``params`` (empty when it can): it writes into
    buffers allocated once, so its backend's array module must take ``out=``."""
    backend = params.backend
    if not backend.supports_out:
        return (f"the eager engine writes into its buffers (out=), which the array "
                f"module of {backend.device} cannot")
    return ""


def why_not(params: "Parameters", X: "Array", settings: "StepSettings") -> str:
    """Why the eager engine cannot train ``params`` here (empty when it can): this
    engine's entry in :data:`gpunet.engines.ENGINES`."""
    return unfit_reason(params)


def build(params: "Parameters", X: "Array", Y: "Array", settings: "StepSettings") -> EagerEngine:
    """The eager engine for ``params`` (:data:`gpunet.engines.ENGINES`)."""
    return EagerEngine(params, X, Y, settings)
