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
``auto`` takes it where the backend has the kernel's launcher (CUDA:
:meth:`backends.base.Backend.epoch_launcher`), the network fits
(:meth:`SgdEpochPlan.why_not`) and its cost and activation have their kernel ids (the
kernel's cases for them: :mod:`gpunet.model.costs`, :mod:`gpunet.model.activations`).

The same class runs the kernel on the CPU through the block emulator when given an
:class:`~gpunet.backends.testing.emulator.EmulatedSgdEpoch` launcher: that is how the tests
prove it against the NumPy engine without a GPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from ..backends.fused_sgd import SIGMOID_OUTPUT, SOFTMAX_OUTPUT, SgdEpochPlan, plan_for
from ..model.activations import (SIGMOID, Activation, Softmax, layer_activations,
                                 output_activation)
from ..model.costs import declared_phrase, get_cost
from ..model.dropout import key_of, rates_of, seeds_of, threshold
from .base import l1_of, momentum_of, networks_in, unfit_error

if TYPE_CHECKING:
    from ..backends import Array, Backend
    from ..model.parameters import Parameters
    from .base import StepSettings

THREADS = 256  # threads per block on a GPU


def cuda_launcher(net: "Parameters") -> Any:
    """The kernel's launcher for ``net``'s device and dtype, or ``None`` where the backend
    has none (off CUDA)."""
    return net.backend.epoch_launcher(net.dtype)


def unfit_reason(net: "Parameters", mini_batch_size: int, n: int, launcher: Any,
                 threads: int = THREADS, dropout: bool = False) -> str:
    """Why the fused engine cannot train ``net`` with ``launcher`` (empty when it can);
    ``dropout``: with dropout's masks (the kernel's dropout build)."""
    if launcher is None:
        return f"the fused engine needs a CUDA device, not {net.backend.device}"
    cost_id = getattr(net.cost, "kernel_id", None)
    if cost_id is None:
        if getattr(net.cost, "output_error_ops", None) is None:  # not a declared cost
            return f"the fused engine knows {declared_phrase()}, not {net.cost.__name__}"
        return f"the fused kernel has no case for the cost {net.cost.__name__} (no kernel_id)"
    layers = layer_activations(net)
    if layers[-1] not in (SIGMOID, Softmax):  # the softmax: the log-likelihood's case
        return f"the fused kernel has no {layers[-1].name} output layer"
    hidden = list(dict.fromkeys(layers[:-1]))
    if len(hidden) > 1:
        return (f"the fused kernel is built for one hidden activation, and this network's "
                f"hidden layers have {len(hidden)} ("
                + ", ".join(a.name for a in hidden) + ")")
    activation = hidden[0] if hidden else SIGMOID
    if activation.kernel_id is None:
        return (f"the fused kernel has no device functions for the {activation.name} "
                f"activation (no kernel_id)")
    plan = plan_for(net.sizes, min(mini_batch_size, n), net.dtype, threads,
                    launcher.max_shared_bytes, activation.kernel_id, output_of(net.cost),
                    dropout)
    return plan.why_not()


def output_of(cost: Any) -> int:
    """The kernel's output layer for ``cost``: the softmax's build for the log-likelihood
    (its output), else the sigmoid's."""
    return SOFTMAX_OUTPUT if output_activation(cost) is Softmax else SIGMOID_OUTPUT


def hidden_activation(net: "Parameters") -> type[Activation]:
    """The one activation of ``net``'s hidden layers the kernel is built for (the
    sigmoid where there are none); its output layer is the sigmoid, or the softmax that
    the log-likelihood cost's case computes (:func:`unfit_reason` refuses any other)."""
    hidden = layer_activations(net)[:-1]
    return hidden[0] if hidden else SIGMOID


def why_not(params: "Parameters", X: "Array", settings: "StepSettings") -> str:
    """Why the fused engine cannot train ``params`` on ``X`` here (empty when it can):
    this engine's entry in :data:`gpunet.engines.ENGINES`."""
    return unfit_reason(params, settings.mini_batch_size, X.shape[0], cuda_launcher(params),
                        dropout=any(rates_of(settings, settings.networks)))


def build(params: "Parameters", X: "Array", Y: "Array", settings: "StepSettings") -> "FusedEngine":
    """The fused engine for ``params`` (:data:`gpunet.engines.ENGINES`)."""
    return FusedEngine(params, X, Y, settings)


class FusedSgd:
    """The fused kernel set up for ``K`` networks of one shape: one launch per epoch.

    ``params`` is a ``(K, P)`` device array whose rows are the networks' flat parameter
    buffers (:mod:`gpunet.model.parameters`), trained in place; ``eta`` and ``lmbda`` give
    each network its own learning rate and L2 parameter. Used by :class:`FusedEngine`
    (``K = 1``, a :class:`~gpunet.Network`'s own buffer) and by stacked training.

    ``cost`` is a cost as :func:`gpunet.model.costs.get_cost` takes it (its
    ``kernel_id`` is the launch's ``cost`` argument) and ``activation`` the one the
    kernel is built for (its ``kernel_id``).

    The kernel reads bare pointers, rows by ``row * width``: ``X`` and ``Y`` are made
    C-contiguous here, once (a Fortran-ordered array, as CuPy keeps it from NumPy or
    pandas, would otherwise train on scrambled rows); ``params``, trained in place,
    must be C-contiguous already (``ValueError`` otherwise).
    """

    def __init__(self, backend: "Backend", sizes: Sequence[int], dtype: Any, cost: Any,
                 params: "Array", X: "Array", Y: "Array", mini_batch_size: int,
                 eta: Sequence[float], lmbda: Sequence[float], launcher: Any,
                 threads: int = THREADS, activation: type[Activation] = SIGMOID, *,
                 momentum: Sequence[float] = (), l1: Sequence[float] = (),
                 dropout: Sequence[float] = (), seeds: Sequence[int] = ()) -> None:
        xp, asarray = backend.xp, backend.asarray
        K, n = params.shape[0], X.shape[0]
        if len(eta) != K or len(lmbda) != K:
            raise ValueError(f"{K} networks need {K} learning rates and L2 parameters, "
                             f"got {len(eta)} and {len(lmbda)}.")
        if not params.flags.c_contiguous:
            raise ValueError("the fused engine trains the parameters in place and needs "
                             "them C-contiguous (K, P); pass a C-ordered array")
        cost_id, activation_id = get_cost(cost).kernel_id, activation.kernel_id
        if cost_id is None or activation_id is None:
            raise ValueError("the fused kernel has no case for this cost or activation "
                             "(its kernel_id is None)")
        self.backend, self.launcher, self.cost = backend, launcher, int(cost_id)
        self.params = params
        self.X, self.Y = xp.ascontiguousarray(X), xp.ascontiguousarray(Y)  # once per run
        dropping = any(p != 0 for p in dropout)
        self.plan: SgdEpochPlan = plan_for(sizes, min(mini_batch_size, n), dtype, threads,
                                           launcher.max_shared_bytes, activation_id,
                                           output_of(get_cost(cost)), dropping)
        # Dropout (the kernel's dropout build): each network's Philox key and threshold
        # (gpunet.model.dropout), K x 2 and K uint64; the epoch goes with each launch.
        self.drop_key = self.drop_threshold = None
        if dropping:
            self.drop_key = asarray(np.array([key_of(int(s)) for s in seeds], dtype=np.uint64))
            self.drop_threshold = asarray(np.array([threshold(p) for p in dropout],
                                                   dtype=np.uint64))
        self.perm = xp.empty((K, n), dtype=np.int64)
        self.eta = asarray(np.asarray(eta, dtype=np.float64))
        self.lmbda = asarray(np.asarray(lmbda, dtype=np.float64))
        self.sizes = asarray(np.asarray(sizes, dtype=np.int32))
        self.work = params if self.plan.params_in_shared else xp.empty_like(params)
        # Momentum and L1 (none: the launch passes the kernel's stand-ins, and every
        # block takes its plain update). The velocities live in global memory, in the
        # parameters' flat layout: no shared memory, so the plan is the same.
        self.momentum = np.asarray(momentum or (0.0,) * K, dtype=np.float64)
        l1_values = np.asarray(l1 or (0.0,) * K, dtype=np.float64)
        self.extension = bool((self.momentum != 0).any() or (l1_values != 0).any())
        self.velocity = xp.zeros_like(params) if (self.momentum != 0).any() else None
        self.mu = asarray(self.momentum) if self.extension else None
        self.l1 = asarray(l1_values) if self.extension else None

    def set_eta(self, eta: Sequence[float]) -> None:
        """Network ``k`` trains with ``eta[k]`` from the next launch on (``K`` numbers
        to the device; ``η = 0`` freezes a network: its μ is then 0 too)."""
        eta_k = np.asarray(eta, dtype=np.float64)
        self.backend.copy_from_host(self.eta, eta_k)
        if self.mu is not None:
            self.backend.copy_from_host(self.mu, np.where(eta_k == 0.0, 0.0, self.momentum))

    def train_epoch(self, permutations: np.ndarray, epoch: int = 0) -> None:
        """One epoch for every network: row ``k`` of ``permutations`` is network ``k``'s;
        ``epoch``, the run's epoch (dropout's masks count it)."""
        self.backend.copy_from_host(self.perm, permutations)
        extension = ((self.velocity, self.mu, self.l1) if self.extension else ())
        drop = ({"dropout": (self.drop_key, self.drop_threshold, epoch)}
                if self.drop_key is not None else {})
        self.launcher(self.plan, self.params, self.work, self.X, self.Y, self.perm,
                      self.eta, self.lmbda, self.sizes, self.cost, *extension, **drop)


class FusedEngine:
    """:class:`FusedSgd` on the networks' own buffer: a :class:`~gpunet.Network`'s
    ``(P,)`` (as one row) or a stack's ``(K, P)``, network ``k`` trained by thread
    block ``k`` with ``settings.eta[k]`` and ``settings.lmbda[k]``."""

    name = "fused"

    def __init__(self, params: "Parameters", X: "Array", Y: "Array",
                 settings: "StepSettings", launcher: Optional[Any] = None,
                 threads: int = THREADS) -> None:
        launcher = launcher if launcher is not None else cuda_launcher(params)
        K = networks_in(params, settings)
        dropout = rates_of(settings, K)
        reason = unfit_reason(params, settings.mini_batch_size, X.shape[0], launcher, threads,
                              dropout=any(dropout))
        if reason:
            raise unfit_error("fused", params, reason)
        rows = params.parameters.reshape(K, -1)  # (K, P), a view
        self.fused = FusedSgd(params.backend, params.sizes, params.dtype, params.cost, rows,
                              X, Y, settings.mini_batch_size, settings.eta, settings.lmbda,
                              launcher, threads, hidden_activation(params),
                              momentum=momentum_of(settings, K), l1=l1_of(settings, K),
                              dropout=dropout,
                              seeds=seeds_of(params) if any(dropout) else ())
        self.plan = self.fused.plan
        #: the velocities ``(K, P)`` (momentum), or ``None``
        self.velocity = self.fused.velocity
        #: the epoch the next launch trains (:class:`gpunet.engines.base.Engine`)
        self.next_epoch = 0

    def set_eta(self, eta: Sequence[float]) -> None:
        """Network ``k`` trains with ``eta[k]`` from the next epoch on."""
        self.fused.set_eta(eta)

    def train_epoch(self, permutations: np.ndarray) -> None:
        self.fused.train_epoch(permutations.reshape(self.fused.params.shape[0], -1),
                               self.next_epoch)
        self.next_epoch += 1
