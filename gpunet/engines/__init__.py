"""Engines: *how* an epoch of stochastic gradient descent runs.

``Network.SGD`` and ``NetworkStack.SGD`` (chapter 1, "Implementing our network to
classify digits") own the *what*: the epochs, the shuffles drawn from each network's
host generator, the monitored metrics and the histories (one loop for both,
:mod:`gpunet.training`). For the steps of an epoch the loop hands the epoch's
permutations to an engine behind one small interface, :class:`Engine`, which trains
K ≥ 1 networks of one shape (one network is ``K = 1``), each with its own η and λ
(:class:`TrainingSettings`):

* ``eager`` (:mod:`gpunet.engines.eager`): array expressions and fused elementwise
  kernels on any backend, one mini-batch step after another, batched over the K
  networks. The reference engine, and the right one where matrix products dominate
  (wide networks, big batches).
* ``cpu`` (:mod:`gpunet.engines.cpu`): the eager algorithm on NumPy in fewer, cheaper
  calls (bias folded into the weights, parameters in a working layout); ``auto``'s
  choice on the NumPy backend. K > 1 networks take the same step batched, split
  over worker processes for a large stack (:mod:`gpunet.engines.stacked_workers`).
* ``fused`` (:mod:`gpunet.engines.fused`, CUDA): one kernel launch trains the whole
  epoch, one thread block per network, parameters in shared memory
  (``backends/kernels/fused_sgd.cu``). The engine for small networks, where launch
  overhead, not arithmetic, sets the time.

``auto`` (:func:`select_engine`, the one choice for one network and for many) takes
``fused`` on CUDA wherever the networks fit it, ``cpu`` on NumPy for the book's two
costs, ``eager`` elsewhere.

Every engine trains exactly the book's algorithm: for each mini-batch of the shuffled
data, ``w → (1 - ηλ/n) w - (η/m) Σ_x ∂C_x/∂w`` and ``b → b - (η/m) Σ_x ∂C_x/∂b``
(chapter 3, eq. 93 and 94, with ``λ = 0`` the plain SGD step of chapter 1, eq. 20 and
21), writing the network's own flat parameter buffer (:mod:`gpunet.parameters`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..backends import Array
    from ..parameters import Parameters

ENGINE_NAMES = ("auto", "eager", "fused", "cpu")
"""Values of ``SGD(engine=...)`` / ``--engine``; engines add their names here."""


def per_network(values: Any, K: Optional[int], name: str) -> tuple[float, ...]:
    """``values`` as one float per network: a number is every network's (``K`` of
    them; ``K = None``: one); a sequence must have ``K`` values (any number: ``None``)."""
    if _is_number(values):
        return (float(values),) * (1 if K is None else K)
    floats = tuple(float(v) for v in values)
    if K is not None and len(floats) != K:
        raise ValueError(f"{name} has {len(floats)} values for {K} networks; give one "
                         f"number, or one per network.")
    return floats


@dataclass(frozen=True)
class TrainingSettings:
    """Everything one call of ``SGD`` was asked to do, checked: for one network
    (:meth:`gpunet.Network.SGD`) or K (:meth:`gpunet.NetworkStack.SGD`).

    ``eta`` and ``lmbda`` hold one value per network, in the rows' order (a number
    given for either is every network's, and ``lmbda`` defaults to 0 for all); an
    engine trains network ``k`` with ``eta[k]`` and ``lmbda[k]``. ``callback`` gets one
    network's record (``Network.SGD``) or the K records of an epoch
    (``NetworkStack.SGD``). ``n`` (the training set's size, for L2's ``1 - ηλ/n``) is
    known only with the data, so the training loop passes it to the engine separately.
    """

    epochs: int
    mini_batch_size: int
    eta: tuple[float, ...]
    lmbda: tuple[float, ...] = ()
    monitor_evaluation_cost: bool = False
    monitor_evaluation_accuracy: bool = False
    monitor_training_cost: bool = False
    monitor_training_accuracy: bool = False
    verbose: bool = True
    callback: Optional[Callable[[Any], None]] = None
    engine: str = "auto"
    #: processes the CPU engine splits K networks over (this one and workers;
    #: :mod:`gpunet.engines.stacked_workers`); None: one per CPU for a large stack
    workers: Optional[int] = None

    def __post_init__(self) -> None:
        eta = per_network(self.eta, None, "eta")
        lmbda = per_network(0.0 if self.lmbda == () else self.lmbda, len(eta), "lmbda")
        object.__setattr__(self, "eta", eta)
        object.__setattr__(self, "lmbda", lmbda)

    @property
    def networks(self) -> int:
        """K, the number of networks these settings train."""
        return len(self.eta)

    @property
    def monitor_evaluation(self) -> bool:
        return self.monitor_evaluation_cost or self.monitor_evaluation_accuracy


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer))


class Engine(Protocol):
    """Runs the mini-batch steps of one epoch for K ≥ 1 networks.

    An engine is built once per ``SGD`` call, when the training data is already on the
    device (``X`` inputs and ``Y`` desired outputs, one example per row), and allocates
    whatever it needs then. :meth:`train_epoch` must leave the networks' parameters
    updated (in device order: later device work sees them) and must not wait on the
    device or copy anything to the host.
    """

    #: the engine's name, as ``SGD(engine=...)`` takes it.
    name: str

    def train_epoch(self, permutations: np.ndarray) -> None:
        """One epoch: network ``k`` visits the examples in the order
        ``X[permutations[k]]``, in mini-batches (one network: a ``(n,)`` permutation
        or a ``(1, n)`` array)."""


EngineFactory = Callable[["Parameters", "Array", "Array", TrainingSettings], Engine]


def networks_in(params: "Parameters", settings: Optional[TrainingSettings] = None) -> int:
    """K, the networks ``params`` holds: a network's ``(P,)`` buffer is one, a stack's
    ``(K, P)`` array K. With ``settings``, checks they give each of them its η and λ
    (every engine calls this before it trains)."""
    shape = params.parameters.shape
    K = 1 if len(shape) == 1 else int(shape[0])
    if settings is not None and settings.networks != K:
        raise ValueError(f"{K} networks need {K} learning rates and L2 parameters, "
                         f"got {settings.networks}.")
    return K


def described(params: "Parameters") -> str:
    """``params`` in an engine's error message: "this network" or "this stack"."""
    return "this network" if params.parameters.ndim == 1 else "this stack"


def select_engine(params: "Parameters", X: "Array", Y: "Array",
                  settings: TrainingSettings) -> Engine:
    """The engine ``settings.engine`` names for the K ≥ 1 networks of ``params``;
    ``auto`` picks the best one for them here.

    One choice for one network and for many, so that every network of a stack trains
    with the engine (and the arithmetic) its single run would: ``fused`` on CUDA where
    the networks fit its kernel (one launch per epoch, one thread block per network);
    ``cpu`` on NumPy for the book's two costs (for K > 1 the same step batched over
    the networks, in worker processes for a large stack);
    ``eager`` elsewhere (any backend, K networks in batched array operations).

    Raises ``ValueError`` naming the valid choices for an unknown name, saying why when
    the named engine cannot train these networks here, and when ``settings`` do not
    give one η and λ per network.
    """
    from ..parameters import StackedParameters
    from .eager import EagerEngine
    from .fused import FusedEngine, cuda_launcher, unfit_reason

    name = settings.engine
    if name not in ENGINE_NAMES:
        raise ValueError(f"unknown engine {name!r}; use one of {', '.join(ENGINE_NAMES)}.")
    networks_in(params, settings)
    if name in ("fused", "auto"):
        launcher = cuda_launcher(params)
        reason = unfit_reason(params, settings.mini_batch_size, X.shape[0], launcher)
        if not reason:
            return FusedEngine(params, X, Y, settings, launcher=launcher)
        if name == "fused":
            raise ValueError(f"engine 'fused' cannot train {described(params)}: {reason}; "
                             f"use engine 'eager' or 'auto'.")
    if name in ("cpu", "auto"):  # the NumPy backend's engine (gpunet/engines/cpu.py)
        from .cpu import CpuEngine, unfit_reason as cpu_unfit_reason

        if name == "cpu" or not cpu_unfit_reason(params):
            if isinstance(params, StackedParameters):  # a large stack: over processes
                from .stacked_workers import WorkerCpuEngine, workers_for

                workers = workers_for(params, X.shape[0], settings.workers)
                if workers > 1:
                    return WorkerCpuEngine(params, X, Y, settings, workers)
            return CpuEngine(params, X, Y, settings)  # raises, saying why, where it cannot
    return EagerEngine(params, X, Y, settings)
