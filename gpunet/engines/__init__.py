"""Engines: *how* an epoch of stochastic gradient descent runs.

``Network.SGD`` (chapter 1, "Implementing our network to classify digits") owns the
*what*: the epochs, the shuffles drawn from the network's host generator, the
monitored metrics and the history (:mod:`gpunet.training`). For the steps of an
epoch it hands the epoch's permutation to an engine behind one small interface,
:class:`Engine`:

* ``eager`` (:mod:`gpunet.engines.eager`): array expressions and fused elementwise
  kernels on any backend, one mini-batch step after another. The reference engine,
  and the right one where matrix products dominate (wide networks, big batches).
* ``cpu`` (:mod:`gpunet.engines.cpu`): the eager algorithm on NumPy in fewer, cheaper
  calls (bias folded into the weights, parameters in a working layout); ``auto``'s
  choice on the NumPy backend.
* ``fused`` (:mod:`gpunet.engines.fused`, CUDA): one kernel launch trains the whole
  epoch, one thread block per network, parameters in shared memory
  (``backends/kernels/fused_sgd.cu``). The engine for small networks, where launch
  overhead, not arithmetic, sets the time.

``auto`` takes ``fused`` on CUDA wherever the network fits it, ``cpu`` on NumPy for the
book's two costs, ``eager`` elsewhere. Stacked networks (:mod:`gpunet.stack`) have their
own engines with the same choices (:mod:`gpunet.engines.stacked`).

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


@dataclass(frozen=True)
class TrainingSettings:
    """Everything one call of ``SGD`` was asked to do, checked.

    ``n`` (the training set's size, for L2's ``1 - ηλ/n``) is known only with the data,
    so the training loop passes it to the engine separately.
    """

    epochs: int
    mini_batch_size: int
    eta: float
    lmbda: float = 0.0
    monitor_evaluation_cost: bool = False
    monitor_evaluation_accuracy: bool = False
    monitor_training_cost: bool = False
    monitor_training_accuracy: bool = False
    verbose: bool = True
    callback: Optional[Callable[[dict[str, Any]], None]] = None
    engine: str = "auto"

    @property
    def monitor_evaluation(self) -> bool:
        return self.monitor_evaluation_cost or self.monitor_evaluation_accuracy


class Engine(Protocol):
    """Runs the mini-batch steps of one epoch.

    An engine is built once per ``SGD`` call, when the training data is already on the
    device (``X`` inputs and ``Y`` desired outputs, one example per row), and allocates
    whatever it needs then. :meth:`train_epoch` must leave the network's parameters
    updated (in device order: later device work sees them) and must not wait on the
    device or copy anything to the host.
    """

    #: the engine's name, as ``SGD(engine=...)`` takes it.
    name: str

    def train_epoch(self, permutation: np.ndarray) -> None:
        """One epoch: the examples in the order ``X[permutation]``, in mini-batches."""


EngineFactory = Callable[["Parameters", "Array", "Array", TrainingSettings], Engine]


def select_engine(net: "Parameters", X: "Array", Y: "Array", settings: TrainingSettings) -> Engine:
    """The engine ``settings.engine`` names; ``auto`` picks the best one for ``net``.

    Raises ``ValueError`` naming the valid choices for an unknown name, and saying why
    when the named engine cannot train this network here.
    """
    from .eager import EagerEngine
    from .fused import FusedEngine, cuda_launcher, unfit_reason

    name = settings.engine
    if name not in ENGINE_NAMES:
        raise ValueError(f"unknown engine {name!r}; use one of {', '.join(ENGINE_NAMES)}.")
    if name in ("fused", "auto"):
        launcher = cuda_launcher(net)
        reason = unfit_reason(net, settings.mini_batch_size, X.shape[0], launcher)
        if not reason:
            return FusedEngine(net, X, Y, settings, launcher=launcher)
        if name == "fused":
            raise ValueError(f"engine 'fused' cannot train this network: {reason}; "
                             f"use engine 'eager' or 'auto'.")
    if name in ("cpu", "auto"):  # the NumPy backend's engine (gpunet/engines/cpu.py)
        from .cpu import CpuEngine, unfit_reason as cpu_unfit_reason

        if name == "cpu" or not cpu_unfit_reason(net):
            return CpuEngine(net, X, Y, settings)  # raises, saying why, where it cannot
    return EagerEngine(net, X, Y, settings)
