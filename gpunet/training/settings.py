"""The settings of one ``SGD`` call, checked once: :class:`TrainingSettings`.

``Network.SGD``, ``NetworkStack.SGD`` and :func:`gpunet.resume` each build one; its
constructor checks every field by :mod:`gpunet.model.arguments`' rules, so a mistake is
one ``ValueError`` before anything is trained, and nothing downstream checks again. The
engines read the part they need through :class:`gpunet.engines.StepSettings`.
"""

from __future__ import annotations

from dataclasses import MISSING, InitVar, dataclass, field, fields
from functools import partial
from typing import Any, Callable, Optional

from ..engines import ENGINE_NAMES
from ..io.fields import Check, boolean, choice, number, optional, since, text, whole
from ..model.arguments import (check_callback, check_choice, check_eta, check_flag,
                               check_lmbda, check_optional_positive_int, check_per_network,
                               check_positive_int, finite_number, is_integer)


def setting(default: Any = MISSING, *, check: Callable[..., Any],
            record: Optional[Check] = None, per_network: bool = False) -> Any:
    """A field of :class:`TrainingSettings`, declared with everything that follows from
    it: ``check(value, name)`` (a per-network setting's: ``check(value)`` for each
    network's value), the rule ``SGD``'s argument must pass (a ``ValueError``
    saying what to change); ``record``, the check of its value in a checkpoint
    (:mod:`gpunet.training.checkpoint` keeps the settings that have one, and checks
    them with it); ``per_network``, one value per network (a number, or a list of one,
    being every network's). A new setting is one such line here."""
    return field(default=default,
                 metadata={"check": check, "record": record, "per_network": per_network})


def _callback(value: Any, name: str) -> Any:
    return check_callback(value)


def check_momentum(value: Any) -> float:
    """Momentum's μ (chapter 3, eq. 107): a number from 0 (plain SGD) up to, not
    including, 1 (``μ = 1`` is no friction: the velocities never decay)."""
    if not finite_number(value) or not 0 <= value < 1:
        raise ValueError(f"momentum (the coefficient μ) must be a number from 0 up to 1 "
                         f"(not 1), got {value!r}; 0.9 is usual, 0 is plain SGD.")
    return float(value)


def check_l1(value: Any) -> float:
    """L1's λ₁ (chapter 3, eq. 95): a number >= 0."""
    if not finite_number(value) or value < 0:
        raise ValueError(f"l1 (the L1 regularization) must be a number >= 0, got {value!r}.")
    return float(value)


def check_dropout(value: Any) -> float:
    """Dropout's rate p (chapter 3, "Dropout"; :mod:`gpunet.model.dropout`): each hidden
    neuron is removed from a mini-batch's step with probability p, from 0 (off) up to,
    not including, 1 (the book's is 0.5)."""
    if not finite_number(value) or not 0 <= value < 1:
        raise ValueError(f"dropout (the rate at which hidden neurons are removed) must be "
                         f"a number from 0 up to 1 (not 1), got {value!r}; the book's is "
                         "0.5, 0 is off.")
    return float(value)


def _count(value: Any, name: str) -> int:
    """A whole number >= 0 (``early_stopping_n``: 0 is off, as in ``network2.py``)."""
    if not is_integer(value) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0 (0: off), got {value!r}.")
    return int(value)


def _schedule(value: Any, name: str) -> Optional[str]:
    from .hooks import SCHEDULES

    return None if value is None else check_choice(value, tuple(SCHEDULES), name)


def _floor(value: Any, name: str) -> float:
    if not finite_number(value) or not 0 < value < 1:
        raise ValueError(f"{name} (the fraction of the starting η at which the schedule "
                         f"stops) must be a number between 0 and 1, got {value!r}; the "
                         "book's is 1/128.")
    return float(value)


def _choice(choices: tuple[str, ...], value: Any, name: str) -> str:
    return check_choice(value, choices, name)


@dataclass(frozen=True)
class TrainingSettings:
    """Everything one call of ``SGD`` was asked to do, checked: for one network
    (:meth:`gpunet.Network.SGD`) or K (:meth:`gpunet.NetworkStack.SGD`).

    Creating one checks every field by the rule its declaration names (:func:`setting`;
    :mod:`gpunet.model.arguments`, the same rules for one network, a stack and
    :func:`gpunet.resume`), so a mistake is one ``ValueError``
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

    epochs: int = setting(check=check_positive_int, record=whole(1))
    mini_batch_size: int = setting(check=check_positive_int, record=whole(1))
    eta: tuple[float, ...] = setting(check=check_eta, record=number(above=0),
                                     per_network=True)
    lmbda: tuple[float, ...] = setting((0.0,), check=check_lmbda, record=number(low=0),
                                       per_network=True)
    monitor_evaluation_cost: bool = setting(False, check=check_flag, record=boolean)
    monitor_evaluation_accuracy: bool = setting(False, check=check_flag, record=boolean)
    monitor_training_cost: bool = setting(False, check=check_flag, record=boolean)
    monitor_training_accuracy: bool = setting(False, check=check_flag, record=boolean)
    verbose: bool = setting(True, check=check_flag)
    callback: Optional[Callable[[Any], None]] = setting(None, check=_callback)
    engine: str = setting("auto", check=partial(_choice, ENGINE_NAMES),
                          record=choice(*ENGINE_NAMES))
    #: processes the CPU engine splits K networks over (this one and workers;
    #: :mod:`gpunet.engines.stacked_workers`); None: one per CPU for a large stack
    workers: Optional[int] = setting(None, check=check_optional_positive_int)
    #: momentum's μ per network (chapter 3, eq. 107 and 108); 0: plain SGD
    momentum: tuple[float, ...] = setting((0.0,), check=check_momentum,
                                          record=since(0.0, number(low=0)), per_network=True)
    #: L1's λ₁ per network (chapter 3, eq. 95 to 97), beside L2's ``lmbda``
    l1: tuple[float, ...] = setting((0.0,), check=check_l1, record=since(0.0, number(low=0)),
                                    per_network=True)
    #: dropout's rate p per network (chapter 3, "Dropout"; :mod:`gpunet.model.dropout`):
    #: each hidden neuron removed from each mini-batch's step with probability p, the
    #: evaluation's weights out of hidden layers scaled by 1 - p; 0: off
    dropout: tuple[float, ...] = setting((0.0,), check=check_dropout,
                                         record=since(0.0, number(low=0)), per_network=True)
    #: stop a network after this many epochs without a better evaluation accuracy
    #: (``network2.py``'s ``early_stopping_n``; 0: off)
    early_stopping_n: int = setting(0, check=_count, record=since(0, whole(0)))
    #: keep each network's best epoch by evaluation accuracy (a device copy)
    keep_best: bool = setting(False, check=check_flag, record=since(False, boolean))
    #: a learning-rate schedule (:data:`gpunet.training.hooks.SCHEDULES`): ``"halve"``,
    #: the book's: η halved after ``eta_schedule_n`` epochs without a better evaluation
    #: accuracy, the network stopped once η is ``eta_floor`` of its start
    eta_schedule: Optional[str] = setting(None, check=_schedule,
                                          record=since(None, optional(text)))
    eta_schedule_n: int = setting(10, check=check_positive_int, record=since(10, whole(1)))
    eta_floor: float = setting(1 / 128, check=_floor,
                               record=since(1 / 128, number(above=0)))
    #: how many networks the settings are for, where ``eta`` may be one value for all
    #: (not kept: ``eta`` then has that many values, or the settings are refused)
    for_networks: InitVar[Optional[int]] = None

    def __post_init__(self, for_networks: Optional[int]) -> None:
        networks = for_networks
        for f in fields(self):
            value, declared = getattr(self, f.name), f.metadata
            if declared["per_network"]:  # eta first: its values say how many networks
                value = check_per_network(value, networks, f.name, declared["check"])
                networks = len(value)
            else:
                value = declared["check"](value, f.name)
            object.__setattr__(self, f.name, value)

    @property
    def networks(self) -> int:
        """K, the number of networks these settings train."""
        return len(self.eta)

    @property
    def monitor_evaluation(self) -> bool:
        return self.monitor_evaluation_cost or self.monitor_evaluation_accuracy

    @property
    def watches_accuracy(self) -> bool:
        """Whether the run decides by each epoch's evaluation accuracy (early stopping,
        a schedule, keeping the best epoch)."""
        return self.early_stopping_n > 0 or self.keep_best or self.eta_schedule is not None


def recorded_settings() -> list[tuple[str, Check, bool]]:
    """The settings a checkpoint keeps: ``(name, record check, per network)``, in the
    declaration's order."""
    return [(f.name, f.metadata["record"], f.metadata["per_network"])
            for f in fields(TrainingSettings) if f.metadata["record"] is not None]


def check_setting(name: str, value: Any) -> Any:
    """``value`` checked as ``SGD`` checks its keyword ``name`` (one network's value of
    a per-network setting), by the rule the setting's declaration names; the CLI checks
    its options with it before any work."""
    declared = {f.name: f.metadata for f in fields(TrainingSettings)}[name]
    check = declared["check"]
    return check(value) if declared["per_network"] else check(value, name)
