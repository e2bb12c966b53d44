"""Engines: *how* an epoch of stochastic gradient descent runs.

``Network.SGD`` and ``NetworkStack.SGD`` (chapter 1, "Implementing our network to
classify digits") own the *what*: the epochs, the shuffles drawn from each network's
host generator, the monitored metrics and the histories (one loop for both,
:mod:`gpunet.training.loop`). For the steps of an epoch the loop hands the epoch's
permutations to an engine behind one small interface, :class:`Engine`, which trains
K ≥ 1 networks of one shape (one network is ``K = 1``), each with its own η and λ
(:class:`StepSettings`):

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
the first of them that fits, in the order ``fused``, ``cpu``, ``eager``: ``fused`` on
CUDA wherever the networks fit it, ``cpu`` on NumPy for every declared cost, ``eager``
elsewhere.

Each engine is declared once, in :data:`ENGINES`: its name, a one-line note, its place
in ``auto``'s order and its module, which says why the engine does not fit a model
(``why_not(params, X, settings)``, empty when it fits) and builds it
(``build(params, X, Y, settings)``). Adding an engine is its module and its line there.

Every engine trains exactly the book's algorithm: for each mini-batch of the shuffled
data, ``w → (1 - ηλ/n) w - (η/m) Σ_x ∂C_x/∂w`` and ``b → b - (η/m) Σ_x ∂C_x/∂b``
(chapter 3, eq. 93 and 94, with ``λ = 0`` the plain SGD step of chapter 1, eq. 20 and
21), writing the network's own flat parameter buffer (:mod:`gpunet.model.parameters`).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Optional

from .base import (Engine, EngineFactory, StepSettings, Steps, described, networks_in,
                   unfit_error)

if TYPE_CHECKING:
    from ..backends import Array
    from ..model.parameters import Parameters


@dataclass(frozen=True)
class EngineKind:
    """One engine, declared once: its name (``SGD(engine=...)``, ``--engine``), a one-line
    note of how it runs (``gpunet train`` prints it with the engine it took), its place
    in ``auto``'s order (``None``: ``auto`` never takes it) and its module in
    :mod:`gpunet.engines`, imported when the engine is asked about, whose
    ``why_not(params, X, settings)`` says why the engine does not fit a model (empty
    when it fits) and ``build(params, X, Y, settings)`` makes it."""

    name: str
    note: str
    module: str
    auto_order: Optional[int] = None

    def _module(self) -> Any:
        return importlib.import_module(f"{__name__}.{self.module}")

    def why_not(self, params: "Parameters", X: "Array", settings: StepSettings) -> str:
        """Why this engine cannot train ``params`` on ``X`` here; empty when it can."""
        reason: str = self._module().why_not(params, X, settings)
        return reason

    def build(self, params: "Parameters", X: "Array", Y: "Array",
              settings: StepSettings) -> Engine:
        """The engine, set up to train ``params`` on ``X``, ``Y``."""
        engine: Engine = self._module().build(params, X, Y, settings)
        return engine


ENGINES = (
    EngineKind("eager", "one mini-batch step after another, as array operations", "eager",
               auto_order=3),
    EngineKind("fused", "one CUDA kernel launch per epoch", "fused", auto_order=1),
    EngineKind("cpu", "the NumPy engine with the bias folded into the products",
               "stacked_workers", auto_order=2),  # one process (cpu.py) or several
)
"""Every engine, declared once: the choices of ``--engine``, the names ``SGD`` takes, the
notes printed and ``auto``'s choice come from here."""

ENGINE_NAMES = ("auto", *(kind.name for kind in ENGINES))
"""Values of ``SGD(engine=...)`` / ``--engine``: ``auto`` and every engine's name."""

EngineName = Literal["auto", "eager", "fused", "cpu"]
"""The type of ``SGD(engine=...)``: :data:`ENGINE_NAMES` spelled out for type checkers
(which read no computed values); a test checks the two agree, so an engine is added here,
in this file, as a line of :data:`ENGINES` and its name in this literal."""


def engine_kind(name: str) -> Optional[EngineKind]:
    """The engine called ``name`` (a stacked run's ``stacked-cpu`` is its engine's), or
    ``None``."""
    base = name[len("stacked-"):] if name.startswith("stacked-") else name
    return next((kind for kind in ENGINES if kind.name == base), None)


def engine_note(name: str) -> str:
    """The one-line note of engine ``name`` (a stacked run's ``stacked-cpu`` is its
    engine's), ``""`` for a name that is not an engine's."""
    kind = engine_kind(name)
    return kind.note if kind is not None else ""


__all__ = ["ENGINES", "ENGINE_NAMES", "EngineName", "Engine", "EngineFactory", "EngineKind", "StepSettings",
           "Steps", "auto_choice", "described", "engine_kind", "engine_note", "networks_in",
           "select_engine"]


def select_engine(params: "Parameters", X: "Array", Y: "Array",
                  settings: StepSettings) -> Engine:
    """The engine ``settings.engine`` names for the K ≥ 1 networks of ``params``;
    ``auto`` picks the best one for them here (:func:`auto_choice`).

    One choice for one network and for many, so that every network of a stack trains
    with the engine (and the arithmetic) its single run would: ``fused`` on CUDA where
    the networks fit its kernel (one launch per epoch, one thread block per network);
    ``cpu`` on NumPy for every declared cost (for K > 1 the same step batched over
    the networks, in worker processes for a large stack);
    ``eager`` elsewhere (any backend, K networks in batched array operations).

    Raises ``ValueError`` saying why when the named engine cannot train these networks
    here (for ``auto``: when none can), and when ``settings`` do not give one η and λ
    per network (the name itself is checked with the settings:
    :class:`gpunet.training.settings.TrainingSettings`).
    """
    networks_in(params, settings)
    if settings.engine == "auto":
        chosen, passed = auto_choice(params, X, settings)
        if passed:
            logging.getLogger(__name__).info(
                "auto chose %s: %s", chosen.name,
                "; ".join(f"not {name}: {reason}" for name, reason in passed))
        return chosen.build(params, X, Y, settings)
    kind = engine_kind(settings.engine)
    if kind is None:
        raise ValueError(f"unknown engine {settings.engine!r}; use one of "
                         f"{', '.join(repr(name) for name in ENGINE_NAMES)}.")
    reason = kind.why_not(params, X, settings)
    if reason:
        raise unfit_error(kind.name, params, reason)
    return kind.build(params, X, Y, settings)


def auto_choice(params: "Parameters", X: "Array",
                settings: StepSettings) -> tuple[EngineKind, list[tuple[str, str]]]:
    """The engine ``auto`` takes for ``params`` on ``X``: the first in ``auto``'s order
    that fits, with each engine it passed over and why (``[(name, reason)]``).
    ``ValueError`` giving every reason where none fits."""
    passed: list[tuple[str, str]] = []
    ordered = sorted((kind for kind in ENGINES if kind.auto_order is not None),
                     key=lambda kind: kind.auto_order or 0)
    for kind in ordered:
        reason = kind.why_not(params, X, settings)
        if not reason:
            return kind, passed
        passed.append((kind.name, reason))
    raise ValueError(f"no engine can train {described(params)}: "
                     + "; ".join(f"{name}: {reason}" for name, reason in passed) + ".")
