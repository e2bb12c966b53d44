"""The fused engine: one kernel launch trains a whole epoch, one thread block per network.

The book's network ([784, 30, 10], mini-batches of 10) makes an epoch of 5,000
dependent SGD steps of about 1 MFLOP each: on a GPU, launching a dozen kernels a step
costs far more than the arithmetic. This engine launches the fused kernel
(``backends/kernels/fused_sgd.cu``) once per epoch instead: the block keeps the
parameters in shared memory, gathers each mini-batch by the epoch's permutation from
the device-resident training set, and runs feedforward, output error, backpropagation
and the update (chapter 1, "Learning with gradient descent"; chapter 2, BP1-BP4;
chapter 3, eq. 93 and 94) with block-wide barriers between phases.

It trains the network's own flat parameter buffer (:mod:`gpunet.model.parameters`) in place,
so everything else (metrics, saving, the eager engine) sees the same parameters.
``auto`` takes it on CUDA when the network fits (:meth:`SgdEpochPlan.why_not`) and
its cost is one of the book's two; the eager engine otherwise.

The same class runs the kernel on the CPU through the block emulator when given an
:class:`~gpunet.backends.testing.emulator.EmulatedSgdEpoch` launcher: that is how the tests
prove it against the NumPy engine without a GPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from ..backends.fused_sgd import SgdEpochPlan, plan_for
from ..model.costs import CrossEntropyCost, QuadraticCost
from .base import described, networks_in

if TYPE_CHECKING:
    from ..backends import Array
    from ..model.parameters import Parameters
    from .base import StepSettings

THREADS = 256  # threads per block on a GPU
COST_NAMES = {QuadraticCost: "quadratic", CrossEntropyCost: "cross-entropy"}


def cuda_launcher(net: "Parameters") -> Any:
    """The CUDA launcher for ``net``'s device and dtype, or ``None`` off CUDA."""
    if net.backend.name != "cupy":
        return None
    from ..backends.fused_sgd import CudaSgdEpoch

    with net.backend.xp.cuda.Device(getattr(net.backend, "index", 0)):
        return CudaSgdEpoch(net.backend.xp, net.dtype)


def unfit_reason(net: "Parameters", mini_batch_size: int, n: int, launcher: Any,
                 threads: int = THREADS) -> str:
    """Why the fused engine cannot train ``net`` (empty when it can)."""
    if launcher is None:
        return f"the fused engine needs a CUDA device, not {net.backend.device}"
    if net.cost not in COST_NAMES:
        return f"the fused engine knows the book's two costs, not {net.cost.__name__}"
    plan = plan_for(net.sizes, min(mini_batch_size, n), net.dtype, threads,
                    launcher.max_shared_bytes)
    return plan.why_not()


class FusedSgd:
    """The fused kernel set up for ``K`` networks of one shape: one launch per epoch.

    ``params`` is a ``(K, P)`` device array whose rows are the networks' flat parameter
    buffers (:mod:`gpunet.model.parameters`), trained in place; ``eta`` and ``lmbda`` give
    each network its own learning rate and L2 parameter. Used by :class:`FusedEngine`
    (``K = 1``, a :class:`~gpunet.Network`'s own buffer) and by stacked training.

    The kernel reads bare pointers, rows by ``row * width``: ``X`` and ``Y`` are made
    C-contiguous here, once (a Fortran-ordered array, as CuPy keeps it from NumPy or
    pandas, would otherwise train on scrambled rows); ``params``, trained in place,
    must be C-contiguous already (``ValueError`` otherwise).
    """

    def __init__(self, backend: Any, sizes: Sequence[int], dtype: Any, cost: str,
                 params: "Array", X: "Array", Y: "Array", mini_batch_size: int,
                 eta: Sequence[float], lmbda: Sequence[float], launcher: Any,
                 threads: int = THREADS) -> None:
        xp, asarray = backend.xp, backend.asarray
        K, n = params.shape[0], X.shape[0]
        if len(eta) != K or len(lmbda) != K:
            raise ValueError(f"{K} networks need {K} learning rates and L2 parameters, "
                             f"got {len(eta)} and {len(lmbda)}.")
        if not params.flags.c_contiguous:
            raise ValueError("the fused engine trains the parameters in place and needs "
                             "them C-contiguous (K, P); pass a C-ordered array")
        self.backend, self.launcher, self.cost = backend, launcher, cost
        self.params = params
        self.X, self.Y = xp.ascontiguousarray(X), xp.ascontiguousarray(Y)  # once per run
        self.plan: SgdEpochPlan = plan_for(sizes, min(mini_batch_size, n), dtype, threads,
                                           launcher.max_shared_bytes)
        self.perm = xp.empty((K, n), dtype=np.int64)
        self.eta = asarray(np.asarray(eta, dtype=np.float64))
        self.lmbda = asarray(np.asarray(lmbda, dtype=np.float64))
        self.sizes = asarray(np.asarray(sizes, dtype=np.int32))
        self.work = params if self.plan.params_in_shared else xp.empty_like(params)

    def train_epoch(self, permutations: np.ndarray) -> None:
        """One epoch for every network: row ``k`` of ``permutations`` is network ``k``'s."""
        self.backend.copy_from_host(self.perm, permutations)
        self.launcher(self.plan, self.params, self.work, self.X, self.Y, self.perm,
                      self.eta, self.lmbda, self.sizes, self.cost)


class FusedEngine:
    """:class:`FusedSgd` on the networks' own buffer: a :class:`~gpunet.Network`'s
    ``(P,)`` (as one row) or a stack's ``(K, P)``, network ``k`` trained by thread
    block ``k`` with ``settings.eta[k]`` and ``settings.lmbda[k]``."""

    name = "fused"

    def __init__(self, params: "Parameters", X: "Array", Y: "Array",
                 settings: "StepSettings", launcher: Optional[Any] = None,
                 threads: int = THREADS) -> None:
        launcher = launcher if launcher is not None else cuda_launcher(params)
        reason = unfit_reason(params, settings.mini_batch_size, X.shape[0], launcher, threads)
        if reason:
            raise ValueError(f"engine 'fused' cannot train {described(params)}: {reason}; "
                             f"use engine 'eager' or 'auto'.")
        K = networks_in(params, settings)
        rows = params.parameters.reshape(K, -1)  # (K, P), a view
        self.fused = FusedSgd(params.backend, params.sizes, params.dtype,
                              COST_NAMES[params.cost], rows, X, Y, settings.mini_batch_size,
                              settings.eta, settings.lmbda, launcher, threads)
        self.plan = self.fused.plan

    def train_epoch(self, permutations: np.ndarray) -> None:
        self.fused.train_epoch(permutations.reshape(self.fused.params.shape[0], -1))
