"""The eager engine: one mini-batch step after another, as array operations, for K ≥ 1
networks at once.

Each step gathers every network's mini-batch (row ``k`` of the epoch's permutations,
``take`` on the device), runs chapter 2's matrix-based backpropagation
(:func:`gpunet.model.backprop.backprop_into`: batched products, one per layer and direction
whatever K is) and one update of the ``(K, P)`` parameters (:class:`gpunet.model.backprop.Step`:
chapter 3, eq. 93 and 94, with each network's own η and λ). On NumPy that is about 25
calls a step; on CuPy about a dozen kernel and cuBLAS launches, which is launch-bound for
small networks and the right engine for wide ones (cuBLAS does the work). Runs on every
backend; the reference engine. A :class:`gpunet.Network` is one row
(:func:`gpunet.model.parameters.as_rows`), a :class:`gpunet.NetworkStack` K, so a stacked
network's run is the single one by construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..model.backprop import Step, Workspace, backprop_into
from ..model.parameters import as_rows
from .base import networks_in

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
        self.params, self.X, self.Y = params, X, Y
        self.rows, self.weights, self.biases = as_rows(params)
        backend, xp, K = params.backend, params.xp, networks_in(params, settings)
        self.n = n = X.shape[0]
        self.m = m = min(settings.mini_batch_size, n)
        last = n - (n // m) * m
        self.workspaces = {k: Workspace(params.sizes, K, xp, params.dtype, k)
                           for k in ([m, last] if last else [m])}
        self.steps = {k: Step(backend, settings.eta, settings.lmbda, k, n, self.rows,
                              ws.gradient, ws.n_weights) for k, ws in self.workspaces.items()}
        self.perm = xp.empty((K, n), dtype=np.int64)
        #: examples of the current epoch stepped through so far, read by the progress
        #: line (gpunet.training.progress) from another thread: a host counter, never a sync.
        self.examples_done = 0

    def train_epoch(self, permutations: np.ndarray) -> None:
        """One epoch: network ``k``'s mini-batches are ``X[permutations[k]]`` in order."""
        self.params.backend.copy_from_host(self.perm, permutations.reshape(self.perm.shape))
        n, m = self.n, self.m
        self.examples_done = 0
        for s in range(0, n, m):
            k = min(m, n - s)
            self._step(self.workspaces[k], self.steps[k], s)
            self.examples_done = s + k

    def _step(self, ws: Workspace, step: Step, s: int) -> None:
        backend, xp = self.params.backend, self.params.xp
        index = self.perm[:, s:s + ws.k]
        take_rows(xp, self.X, index, ws.X)
        take_rows(xp, self.Y, index, ws.Y)
        backprop_into(backend, self.params.cost, self.weights, self.biases, ws)
        step()


def take_rows(xp: object, a: "Array", indices: "Array", out: "Array") -> None:
    """``out[...] = a[indices]``, rows gathered straight into ``out``.

    NumPy's ``take`` in its default ``mode="raise"`` gathers into a temporary as large as
    ``out`` and then copies it over (docs/performance.md). The indices come from
    permutations, all valid, so ``mode="clip"`` (which writes ``out`` directly) never
    clips. CuPy's ``take`` has no ``mode`` and writes ``out`` directly.
    """
    if xp is np:
        np.take(a, indices, axis=0, out=out, mode="clip")
    else:
        # CuPy or the strict stand-in: `object` to mypy, array modules share no static type
        xp.take(a, indices, axis=0, out=out)  # type: ignore[attr-defined]
