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
``fused`` on CUDA wherever the networks fit it, ``cpu`` on NumPy for the book's two
costs, ``eager`` elsewhere.

Every engine trains exactly the book's algorithm: for each mini-batch of the shuffled
data, ``w → (1 - ηλ/n) w - (η/m) Σ_x ∂C_x/∂w`` and ``b → b - (η/m) Σ_x ∂C_x/∂b``
(chapter 3, eq. 93 and 94, with ``λ = 0`` the plain SGD step of chapter 1, eq. 20 and
21), writing the network's own flat parameter buffer (:mod:`gpunet.model.parameters`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import Engine, EngineFactory, StepSettings, Steps, described, networks_in

if TYPE_CHECKING:
    from ..backends import Array
    from ..model.parameters import Parameters


@dataclass(frozen=True)
class EngineKind:
    """One engine as users meet it: its name (``SGD(engine=...)``, ``--engine``) and a
    one-line note of how it runs (``gpunet train`` prints it with the engine it took)."""

    name: str
    note: str


ENGINES = (
    EngineKind("eager", "one mini-batch step after another, as array operations"),
    EngineKind("fused", "one CUDA kernel launch per epoch"),
    EngineKind("cpu", "the NumPy engine with the bias folded into the products"),
)
"""Every engine, declared once: the choices of ``--engine``, the names ``SGD`` takes and
the notes printed come from here."""

ENGINE_NAMES = ("auto", *(kind.name for kind in ENGINES))
"""Values of ``SGD(engine=...)`` / ``--engine``: ``auto`` and every engine's name."""


def engine_note(name: str) -> str:
    """The one-line note of engine ``name`` (a stacked run's ``stacked-cpu`` is its
    engine's), ``""`` for a name that is not an engine's."""
    base = name[len("stacked-"):] if name.startswith("stacked-") else name
    return next((kind.note for kind in ENGINES if kind.name == base), "")

__all__ = ["ENGINES", "ENGINE_NAMES", "Engine", "EngineFactory", "EngineKind", "StepSettings",
           "Steps", "described", "engine_note", "networks_in", "select_engine"]


def select_engine(params: "Parameters", X: "Array", Y: "Array",
                  settings: StepSettings) -> Engine:
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
    is checked with the settings: :class:`gpunet.training.settings.TrainingSettings`).
    """
    from ..model.parameters import StackedParameters
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
