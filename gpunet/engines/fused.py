"""The fused engine: one kernel launch trains a whole epoch, one thread block per network.

The book's network ([784, 30, 10], mini-batches of 10) makes an epoch of 5,000
dependent SGD steps of about 1 MFLOP each: on a GPU, launching a dozen kernels a step
costs far more than the arithmetic. This engine launches the fused kernel
(``backends/kernels/fused_sgd.cu``) once per epoch instead: the block keeps the
parameters in shared memory, gathers each mini-batch by the epoch's permutation from
the device-resident training set, and runs feedforward, output error, backpropagation
and the update (chapter 1, "Learning with gradient descent"; chapter 2, BP1-BP4;
chapter 3, eq. 93 and 94) with block-wide barriers between phases.

It trains the network's own flat parameter buffer (:mod:`gpunet.parameters`) in place,
so everything else (metrics, saving, the eager engine) sees the same parameters.
``auto`` takes it on CUDA when the network fits (:meth:`SgdEpochPlan.why_not`) and
its cost is one of the book's two; the eager engine otherwise.

The same class runs the kernel on the CPU through the block emulator when given an
:class:`~gpunet.backends.fused_sgd.EmulatedSgdEpoch` launcher: that is how the tests
prove it against the NumPy engine without a GPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ..backends.fused_sgd import SgdEpochPlan, plan_for
from ..costs import CrossEntropyCost, QuadraticCost

if TYPE_CHECKING:
    from ..backends import Array
    from ..network import Network
    from . import TrainingSettings

THREADS = 512  # threads per block on a GPU
COST_NAMES = {QuadraticCost: "quadratic", CrossEntropyCost: "cross-entropy"}


def cuda_launcher(net: "Network") -> Any:
    """The CUDA launcher for ``net``'s device and dtype, or ``None`` off CUDA."""
    if net.backend.name != "cupy":
        return None
    from ..backends.fused_sgd import CudaSgdEpoch

    with net.backend.xp.cuda.Device(getattr(net.backend, "index", 0)):
        return CudaSgdEpoch(net.backend.xp, net.dtype)


def unfit_reason(net: "Network", mini_batch_size: int, n: int, launcher: Any,
                 threads: int = THREADS) -> str:
    """Why the fused engine cannot train ``net`` (empty when it can)."""
    if launcher is None:
        return f"the fused engine needs a CUDA device, not {net.backend.device}"
    if net.cost not in COST_NAMES:
        return f"the fused engine knows the book's two costs, not {net.cost.__name__}"
    plan = plan_for(net.sizes, min(mini_batch_size, n), net.dtype, threads,
                    launcher.max_shared_bytes)
    return plan.why_not()


class FusedEngine:
    """Mini-batch SGD for ``K`` networks, one fused kernel launch per epoch."""

    name = "fused"

    def __init__(self, net: "Network", X: "Array", Y: "Array", settings: "TrainingSettings",
                 launcher: Optional[Any] = None, threads: int = THREADS) -> None:
        launcher = launcher if launcher is not None else cuda_launcher(net)
        n = X.shape[0]
        reason = unfit_reason(net, settings.mini_batch_size, n, launcher, threads)
        if reason:
            raise ValueError(f"engine 'fused' cannot train this network: {reason}; "
                             f"use engine 'eager' or 'auto'.")
        xp = net.backend.xp
        self.net, self.X, self.Y, self.launcher = net, X, Y, launcher
        self.plan: SgdEpochPlan = plan_for(net.sizes, min(settings.mini_batch_size, n),
                                           net.dtype, threads, launcher.max_shared_bytes)
        self.cost = COST_NAMES[net.cost]
        asarray = net.backend.asarray
        self.perm = xp.empty((1, n), dtype=np.int64)
        self.eta = asarray(np.array([settings.eta], dtype=np.float64))
        self.lmbda = asarray(np.array([settings.lmbda], dtype=np.float64))
        self.sizes = asarray(np.array(net.sizes, dtype=np.int32))
        self.params = net.parameters.reshape(1, -1)
        self.work = self.params if self.plan.params_in_shared else xp.empty_like(self.params)

    def train_epoch(self, permutation: np.ndarray) -> None:
        self.net.backend.copy_from_host(self.perm, permutation.reshape(1, -1))
        self.launcher(self.plan, self.params, self.work, self.X, self.Y, self.perm,
                      self.eta, self.lmbda, self.sizes, self.cost)
