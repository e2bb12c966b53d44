"""What happens around the epochs, as hooks on the loop (:mod:`gpunet.training.loop`).

The loop itself only trains and measures: each epoch it runs the engine, fetches the
metrics in one copy from the device, and commits the epoch to the run's
:class:`~gpunet.training.state.RunState`. Everything else a run does at its epoch
boundaries is a :class:`Hook`, called at fixed points:

* :meth:`Hook.begin` once, with the state the run starts from;
* :meth:`Hook.epoch_begins` and :meth:`Hook.epoch_trained` around the engine's epoch
  (the progress line);
* :meth:`Hook.diverged` when networks' parameters stopped being finite (a single
  network's run stops there: :class:`StopOnDivergence`);
* :meth:`Hook.epoch_ends` with the committed state and the epoch's records (the
  checkpoint, the printed line and ``callback``);
* :meth:`Hook.stopped` when the run stops early (Ctrl-C, SIGTERM, divergence), the
  state and parameters put back at the last epoch boundary (the checkpoint brought up to
  it);
* :meth:`Hook.close` at the end, however it ends.

Early stopping and learning-rate schedules are meant to be hooks too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from .divergence import DivergenceError
from .progress import Progress
from .state import RunState

if TYPE_CHECKING:
    from .checkpoint import CheckpointWriter
    from .settings import TrainingSettings


class Hook:
    """A hook on the training loop; each method does nothing unless overridden."""

    def begin(self, state: RunState) -> None:
        """The run starts from ``state`` (a resumed run's has epochs done)."""

    def epoch_begins(self, epoch: int) -> None:
        """Epoch ``epoch`` (0-based) starts training."""

    def epoch_trained(self, epoch: int, seconds: float) -> None:
        """The engine finished epoch ``epoch`` in ``seconds`` (before its metrics)."""

    def diverged(self, state: RunState, networks: Sequence[int], epoch: int) -> None:
        """``networks`` stopped being finite in ``epoch``; ``state`` is the last
        boundary's. Raising stops the run there."""

    def epoch_ends(self, state: RunState, records: list[dict[str, Any]]) -> None:
        """The epoch is committed: ``state`` after it, one record per network."""

    def stopped(self, state: RunState) -> None:
        """The run stops early; ``state`` (and the parameters) are at the last boundary."""

    def close(self) -> None:
        """The run is over, whatever ended it."""


class Hooks(Hook):
    """Several hooks called in order, as one."""

    def __init__(self, hooks: Sequence[Hook]) -> None:
        self.hooks = list(hooks)

    def begin(self, state: RunState) -> None:
        for hook in self.hooks:
            hook.begin(state)

    def epoch_begins(self, epoch: int) -> None:
        for hook in self.hooks:
            hook.epoch_begins(epoch)

    def epoch_trained(self, epoch: int, seconds: float) -> None:
        for hook in self.hooks:
            hook.epoch_trained(epoch, seconds)

    def diverged(self, state: RunState, networks: Sequence[int], epoch: int) -> None:
        for hook in self.hooks:
            hook.diverged(state, networks, epoch)

    def epoch_ends(self, state: RunState, records: list[dict[str, Any]]) -> None:
        for hook in self.hooks:
            hook.epoch_ends(state, records)

    def stopped(self, state: RunState) -> None:
        for hook in self.hooks:
            hook.stopped(state)

    def close(self) -> None:
        for hook in self.hooks:
            hook.close()


class CheckpointHook(Hook):
    """Writes the run's state to a checkpoint after every epoch, and when the run stops
    early, as of the last epoch boundary (once per boundary).

    ``parameters()`` gives the boundary's parameters (the loop's copy, so a write after
    an interruption never sees a half-trained epoch); ``description`` is what the file
    says of the networks (:meth:`gpunet.training.checkpoint.CheckpointWriter.write`).
    """

    def __init__(self, writer: "CheckpointWriter", description: dict[str, Any],
                 settings: "TrainingSettings", data: dict[str, Any],
                 parameters: Callable[[], Any]) -> None:
        self.writer, self.description, self.settings = writer, description, settings
        self.data, self.parameters = data, parameters
        self.written = -1

    def _write(self, state: RunState) -> None:
        if self.written != state.epochs_done:
            self.writer.write(self.description, self.settings, state, self.data,
                              self.parameters())
            self.written = state.epochs_done

    def epoch_ends(self, state: RunState, records: list[dict[str, Any]]) -> None:
        self._write(state)

    def stopped(self, state: RunState) -> None:
        self._write(state)


class ProgressHook(Hook):
    """The progress line on a terminal (:class:`gpunet.training.progress.Progress`),
    from host-side counters only."""

    def __init__(self, epochs: int, n: int, engine: Any, first_epoch: int) -> None:
        self.bar = Progress(epochs, n, engine, first_epoch=first_epoch)

    def epoch_begins(self, epoch: int) -> None:
        self.bar.start_epoch(epoch)

    def epoch_trained(self, epoch: int, seconds: float) -> None:
        self.bar.end_epoch(seconds)

    def stopped(self, state: RunState) -> None:
        self.bar.close()

    def close(self) -> None:
        self.bar.close()


class ReportHook(Hook):
    """The epoch's printed line and ``callback``, as the model's ``SGD`` promises them
    (``report(records)``: the book's line and ``callback(record)`` for a network, the
    stack's line and ``callback(records)`` for a stack)."""

    def __init__(self, report: Callable[[list[dict[str, Any]]], None]) -> None:
        self.report = report

    def epoch_ends(self, state: RunState, records: list[dict[str, Any]]) -> None:
        self.report(records)


class StopOnDivergence(Hook):
    """A single network's run stops at its last finite epoch when its parameters stop
    being finite: :class:`~gpunet.training.divergence.DivergenceError`, naming the
    likely cause (η, λ and the training set's size ``n``)."""

    def __init__(self, eta: float, lmbda: float, n: int) -> None:
        self.eta, self.lmbda, self.n = eta, lmbda, n

    def diverged(self, state: RunState, networks: Sequence[int], epoch: int) -> None:
        raise DivergenceError(epoch, self.eta, self.lmbda, self.n, state.histories[0])


def standard_hooks(settings: "TrainingSettings", n: int, *, stop_on_divergence: bool,
                   report: Callable[[list[dict[str, Any]]], None],
                   checkpoint: Optional[CheckpointHook] = None,
                   progress: Optional[ProgressHook] = None) -> Hooks:
    """The hooks of ``SGD``: the progress line, divergence (a single network stops),
    the checkpoint, then the printed line and ``callback`` (after the checkpoint, so a
    callback that stops the run finds its epoch written)."""
    hooks: list[Hook] = [h for h in (progress,) if h is not None]
    if stop_on_divergence:
        hooks.append(StopOnDivergence(settings.eta[0], settings.lmbda[0], n))
    hooks += [h for h in (checkpoint,) if h is not None]
    hooks.append(ReportHook(report))
    return Hooks(hooks)
