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

from dataclasses import InitVar, dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

import numpy as np

from ..arguments import (check_callback, check_choice, check_eta, check_flag, check_lmbda,
                         check_optional_positive_int, check_per_network, check_positive_int)

if TYPE_CHECKING:
    from ..backends import Array
    from ..parameters import Parameters

ENGINE_NAMES = ("auto", "eager", "fused", "cpu")
"""Values of ``SGD(engine=...)`` / ``--engine``; engines add their names here."""


@dataclass(frozen=True)
class TrainingSettings:
    """Everything one call of ``SGD`` was asked to do, checked: for one network
    (:meth:`gpunet.Network.SGD`) or K (:meth:`gpunet.NetworkStack.SGD`).

    Creating one checks every field (:mod:`gpunet.arguments`, the same rules for one
    network, a stack and :func:`gpunet.resume`), so a mistake is one ``ValueError``
    before anything is trained: counts are positive integers (``epochs=3.7`` and
    ``"4"`` are refused, not truncated or parsed), flags are ``True`` or ``False``,
    ``callback`` a function or ``None``, ``engine`` a known name.

    ``eta`` and ``lmbda`` hold one value per network, in the rows' order (one value
    given for either, a number or a list of one, is every network's: ``for_networks``
    of them if given; ``lmbda`` defaults to 0 for all); an engine trains network ``k``
    with ``eta[k]`` and ``lmbda[k]``. ``callback`` gets one network's record
    (``Network.SGD``) or the K records of an epoch (``NetworkStack.SGD``). ``n`` (the
    training set's size, for L2's ``1 - ηλ/n``) is known only with the data, so the
    training loop passes it to the engine separately (and checks ``mini_batch_size``
    against it).
    """

    epochs: int
    mini_batch_size: int
    eta: tuple[float, ...]
    lmbda: tuple[float, ...] = (0.0,)
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
    #: how many networks the settings are for, where ``eta`` may be one value for all
    #: (not kept: ``eta`` then has that many values, or the settings are refused)
    for_networks: InitVar[Optional[int]] = None

    def __post_init__(self, for_networks: Optional[int]) -> None:
        eta = check_per_network(self.eta, for_networks, "eta", check_eta)
        lmbda = check_per_network(self.lmbda, len(eta), "lmbda", check_lmbda)
        checked = {
            "epochs": check_positive_int(self.epochs, "epochs"),
            "mini_batch_size": check_positive_int(self.mini_batch_size, "mini_batch_size"),
            "eta": eta, "lmbda": lmbda,
            **{flag: check_flag(getattr(self, flag), flag) for flag in FLAGS},
            "callback": check_callback(self.callback),
            "engine": check_choice(self.engine, ENGINE_NAMES, "engine"),
            "workers": check_optional_positive_int(self.workers, "workers"),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def networks(self) -> int:
        """K, the number of networks these settings train."""
        return len(self.eta)

    @property
    def monitor_evaluation(self) -> bool:
        return self.monitor_evaluation_cost or self.monitor_evaluation_accuracy


FLAGS = ("monitor_evaluation_cost", "monitor_evaluation_accuracy", "monitor_training_cost",
         "monitor_training_accuracy", "verbose")
"""The settings that are ``True`` or ``False``."""


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

    Raises ``ValueError`` saying why when the named engine cannot train these networks
    here, and when ``settings`` do not give one η and λ per network (the name itself
    is checked with the settings: :class:`TrainingSettings`).
    """
    from ..parameters import StackedParameters
    from .eager import EagerEngine
    from .fused import FusedEngine, cuda_launcher, unfit_reason

    name = settings.engine
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
