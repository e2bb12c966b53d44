"""What every engine is and reads: the :class:`Engine` interface, the
:class:`StepSettings` it trains with (η and λ per network; momentum μ and L1 where
asked, read through :func:`momentum_of` and :func:`l1_of`), and the count of networks it
trains.

Kept apart from :mod:`gpunet.engines` (which chooses an engine and so imports them
all), so that each engine imports this module and never the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Protocol, Sequence

import numpy as np

if TYPE_CHECKING:
    from ..backends import Array
    from ..model.parameters import Parameters


class StepSettings(Protocol):
    """What an engine reads of the training settings (:class:`gpunet.training.settings.
    TrainingSettings` is one, checked): the mini-batch size, one η and one λ per network,
    the engine asked for and the CPU engine's worker processes."""

    @property
    def mini_batch_size(self) -> int: ...

    @property
    def eta(self) -> tuple[float, ...]: ...

    @property
    def lmbda(self) -> tuple[float, ...]: ...

    @property
    def engine(self) -> str: ...

    @property
    def workers(self) -> Optional[int]: ...

    @property
    def networks(self) -> int:
        """K, the number of networks the settings train."""


def momentum_of(settings: StepSettings, K: int) -> tuple[float, ...]:
    """Each network's momentum coefficient μ (chapter 3, "Variations on stochastic
    gradient descent", eq. 107 and 108); all 0 for settings without one."""
    return _per_network(getattr(settings, "momentum", ()), K)


def l1_of(settings: StepSettings, K: int) -> tuple[float, ...]:
    """Each network's L1 regularization parameter (chapter 3, eq. 95 to 97); all 0 for
    settings without one."""
    return _per_network(getattr(settings, "l1", ()), K)


def _per_network(values: Sequence[float], K: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if not values:
        return (0.0,) * K
    return values * K if len(values) == 1 else values


def extended(momentum: Sequence[float], l1: Sequence[float]) -> bool:
    """Whether an update needs the extended step (momentum or L1 on some network);
    without them every engine takes its plain step of eq. 93 and 94, unchanged."""
    return any(v != 0.0 for v in momentum) or any(v != 0.0 for v in l1)


def effective_momentum(eta: Sequence[float], momentum: Sequence[float]) -> np.ndarray:
    """μ per network as an engine applies it: 0 where η is 0. A row with ``η = 0`` is
    frozen (a network that stopped early): its update is then exactly the identity,
    ``w·(1 - 0·λ/n) - 0·g + 0·v = w``, on every engine."""
    eta_k = np.asarray(eta, dtype=np.float64)
    return np.where(eta_k == 0.0, 0.0, np.asarray(momentum, dtype=np.float64))


@dataclass(frozen=True)
class Steps:
    """:class:`StepSettings` already checked elsewhere (a worker process's group: its
    parent checked the run's settings)."""

    mini_batch_size: int
    eta: tuple[float, ...]
    lmbda: tuple[float, ...]
    engine: str = "cpu"
    workers: Optional[int] = None
    momentum: tuple[float, ...] = ()
    l1: tuple[float, ...] = ()
    dropout: tuple[float, ...] = ()

    @property
    def networks(self) -> int:
        return len(self.eta)


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

    #: the momentum velocities, ``(K, P)`` in the parameters' flat layout
    #: (:mod:`gpunet.model.parameters`), on the device, updated in place by each epoch;
    #: ``None`` when no network has momentum. The loop keeps them at epoch boundaries
    #: and in checkpoints, and a resumed run writes them back here before its first epoch.
    velocity: Optional["Array"]

    #: the run's index of the epoch the next :meth:`train_epoch` trains (0 when built;
    #: each epoch adds 1, and the loop sets it where a resumed run starts): dropout's
    #: masks count epochs by it (:mod:`gpunet.model.dropout`).
    next_epoch: int

    def train_epoch(self, permutations: np.ndarray) -> None:
        """One epoch: network ``k`` visits the examples in the order
        ``X[permutations[k]]``, in mini-batches (one network: a ``(n,)`` permutation
        or a ``(1, n)`` array)."""

    def set_eta(self, eta: Sequence[float]) -> None:
        """Network ``k`` trains with ``eta[k]`` from the next epoch on (a learning-rate
        schedule; ``0`` freezes a row: :func:`effective_momentum`). Between epochs only;
        cheap (a few numbers to the device), and the epochs after it are exactly those of
        an engine built with ``eta``."""


EngineFactory = Callable[["Parameters", "Array", "Array", StepSettings], Engine]


def networks_in(params: "Parameters", settings: Optional[StepSettings] = None) -> int:
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


def unfit_error(name: str, params: "Parameters", reason: str) -> ValueError:
    """The error of engine ``name`` asked to train ``params`` it cannot (``reason``)."""
    instead = "'auto'" if name == "eager" else "'eager' or 'auto'"
    return ValueError(f"engine '{name}' cannot train {described(params)}: {reason}; "
                      f"use engine {instead}.")
