"""The eager engine: one mini-batch step after another, as array operations.

Each step is chapter 2's matrix-based backpropagation (:mod:`gpunet.backprop`) and one
fused update of the flat parameter buffer. On NumPy that is about 25 calls a step; on
CuPy about a dozen kernel and cuBLAS launches, which is launch-bound for small networks
and the right engine for wide ones (cuBLAS does the work). Runs on every backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..backprop import Workspace, backprop_into

if TYPE_CHECKING:
    from ..backends import Array
    from ..parameters import Parameters
    from . import TrainingSettings


class EagerEngine:
    """Mini-batch SGD as backend array operations, buffers allocated once.

    No CUDA-graph capture: the steps' matrix products are cuBLAS calls, which CuPy
    refuses while a stream captures (``NotImplementedError: calling cuBLAS API during
    stream capture is currently unsupported``). Launch overhead on small networks is
    the fused engine's job, one kernel launch per epoch.
    """

    name = "eager"

    def __init__(self, net: "Parameters", X: "Array", Y: "Array", settings: "TrainingSettings") -> None:
        self.net, self.X, self.Y = net, X, Y
        self.n = X.shape[0]
        self.m = min(settings.mini_batch_size, self.n)
        self.eta, self.lmbda = settings.eta, settings.lmbda
        xp = net.backend.xp
        self.X_shuffled, self.Y_shuffled = xp.empty_like(X), xp.empty_like(Y)
        self.perm = xp.empty((self.n,), dtype=np.int64)
        self.ws = Workspace(net.sizes, xp, net.dtype, self.m)
        #: examples of the current epoch stepped through so far, read by the progress
        #: line (gpunet.progress) from another thread: a host counter, never a sync.
        self.examples_done = 0

    def train_epoch(self, permutation: np.ndarray) -> None:
        """Shuffle by ``permutation`` on the device, then one SGD step per mini-batch."""
        xp, net, ws = self.net.xp, self.net, self.ws
        net.backend.copy_from_host(self.perm, permutation)
        take_rows(xp, self.X, self.perm, self.X_shuffled)
        take_rows(xp, self.Y, self.perm, self.Y_shuffled)
        n, m = self.n, self.m
        self.examples_done = 0
        for s in range(0, n, m):
            k = min(m, n - s)
            sgd_step(net, ws, self.X_shuffled[s:s + k], self.Y_shuffled[s:s + k], k,
                     self.eta, self.lmbda, n)
            self.examples_done = s + k


def take_rows(xp: object, a: "Array", indices: "Array", out: "Array") -> None:
    """``out[...] = a[indices]``, rows gathered straight into ``out``.

    NumPy's ``take`` in its default ``mode="raise"`` gathers into a temporary as large as
    ``out`` and then copies it over: for the training set, 160 MB allocated, faulted in
    and copied every epoch, several times the gather itself (docs/performance.md). The indices
    are a permutation, all valid, so ``mode="clip"`` (which writes ``out`` directly)
    never clips. CuPy's ``take`` has no ``mode`` and writes ``out`` directly.
    """
    if xp is np:
        np.take(a, indices, axis=0, out=out, mode="clip")
    else:
        # CuPy or the strict stand-in: `object` to mypy, array modules share no static type
        xp.take(a, indices, axis=0, out=out)  # type: ignore[attr-defined]


def sgd_step(net: "Parameters", ws: Workspace, X: "Array", Y: "Array", k: int, eta: float,
             lmbda: float, n: int) -> None:
    """One step on ``k`` rows: ``w → (1 - ηλ/n) w - (η/k) ∇w``, ``b → b - (η/k) ∇b``.

    Chapter 3, eq. 93 and 94 ("Regularization"); with ``λ = 0`` chapter 1's eq. 20
    and 21. One fused update of the flat parameter buffer, where only the weights (the
    first ``ws.n_weights`` entries) decay.
    """
    backprop_into(net.backend, net.cost, net.weights, net.biases, ws, X, Y, k)
    net.backend.sgd_update(net.parameters, ws.gradient, eta / k, 1.0 - eta * lmbda / n,
                           decayed=ws.n_weights)
