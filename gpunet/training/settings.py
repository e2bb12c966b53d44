"""The settings of one ``SGD`` call, checked once: :class:`TrainingSettings`.

``Network.SGD``, ``NetworkStack.SGD`` and :func:`gpunet.resume` each build one; its
constructor checks every field by :mod:`gpunet.model.arguments`' rules, so a mistake is
one ``ValueError`` before anything is trained, and nothing downstream checks again. The
engines read the part they need through :class:`gpunet.engines.StepSettings`.
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass
from typing import Any, Callable, Optional

from ..engines import ENGINE_NAMES
from ..model.arguments import (check_callback, check_choice, check_eta, check_flag,
                               check_lmbda, check_optional_positive_int, check_per_network,
                               check_positive_int)


@dataclass(frozen=True)
class TrainingSettings:
    """Everything one call of ``SGD`` was asked to do, checked: for one network
    (:meth:`gpunet.Network.SGD`) or K (:meth:`gpunet.NetworkStack.SGD`).

    Creating one checks every field (:mod:`gpunet.model.arguments`, the same rules for one
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
