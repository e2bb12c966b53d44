"""What every engine is and reads: the :class:`Engine` interface, the
:class:`StepSettings` it trains with, and the count of networks it trains.

Kept apart from :mod:`gpunet.engines` (which chooses an engine and so imports them
all), so that each engine imports this module and never the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Protocol

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


@dataclass(frozen=True)
class Steps:
    """:class:`StepSettings` already checked elsewhere (a worker process's group: its
    parent checked the run's settings)."""

    mini_batch_size: int
    eta: tuple[float, ...]
    lmbda: tuple[float, ...]
    engine: str = "cpu"
    workers: Optional[int] = None

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

    def train_epoch(self, permutations: np.ndarray) -> None:
        """One epoch: network ``k`` visits the examples in the order
        ``X[permutations[k]]``, in mini-batches (one network: a ``(n,)`` permutation
        or a ``(1, n)`` array)."""


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
