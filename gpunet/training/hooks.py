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
* :meth:`Hook.commit` inside the epoch's commit (no interruption between the two), with
  the state and the epoch's records: what the run decides by them and keeps in its
  state (:class:`WatchAccuracy` and keeping the best epoch, :class:`EarlyStopping`, a
  learning-rate schedule);
* :meth:`Hook.epoch_ends` with the committed state and the epoch's records (the
  checkpoint, the printed line and ``callback``);
* :meth:`Hook.stopped` when the run stops early (Ctrl-C, SIGTERM, divergence), the
  state and parameters put back at the last epoch boundary (the checkpoint brought up to
  it);
* :meth:`Hook.close` at the end, however it ends.

Chapter 3's techniques that decide by the evaluation accuracy are hooks on
:meth:`Hook.commit`, per network: a network they stop (``state.stopped``) trains no more,
its row frozen (its η 0: the identity step on every engine) while the others go on, and
a network's η the schedule changes reaches the engine before the next epoch
(:meth:`gpunet.engines.Engine.set_eta`). A learning-rate schedule is a :class:`Hook`
that sets ``state.watch[k].eta`` (and may stop a network), declared in
:data:`SCHEDULES` by the name ``SGD(eta_schedule=...)`` and ``--eta-schedule`` take.
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

    def commit(self, state: RunState, records: list[dict[str, Any]]) -> None:
        """Part of the epoch's commit (uninterruptible): ``state`` after it, one record
        per network; decide what the state keeps (a network stopped, its η, its best)."""

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

    def commit(self, state: RunState, records: list[dict[str, Any]]) -> None:
        for hook in self.hooks:
            hook.commit(state, records)

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
                 parameters: Callable[[], Any],
                 arrays: Optional[Callable[[], dict[str, Any]]] = None) -> None:
        self.writer, self.description, self.settings = writer, description, settings
        self.data, self.parameters, self.arrays = data, parameters, arrays
        self.written = -1

    def _write(self, state: RunState) -> None:
        if self.written != state.epochs_done:
            arrays = self.arrays() if self.arrays is not None else {}
            self.writer.write(self.description, self.settings, state, self.data,
                              self.parameters(), arrays=arrays)
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


# ------------------------------------------------- deciding by the evaluation accuracy
def _trained(records: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """``(k, record)`` of the networks that trained this epoch and were measured."""
    return [(k, r) for k, r in enumerate(records) if "evaluation_correct" in r]


class WatchAccuracy(Hook):
    """Each network's best evaluation accuracy so far and its epoch (``state.watch``:
    strictly better counts, as ``network2.py``'s ``accuracy > best_accuracy``); with
    ``best`` (``keep_best``), the row of a network that did better is copied on the
    device into ``best`` (its best epoch's parameters): a device-to-device copy, no
    transfer to the host, the accuracy being on the host already."""

    def __init__(self, best: Any = None, current: Any = None) -> None:
        self.best, self.current = best, current

    def begin(self, state: RunState) -> None:
        """Each history shows its network's best epoch and, with ``keep_best``, its
        parameters (``History.best_epoch``, ``History.best_parameters``)."""
        for k, (w, history) in enumerate(zip(state.watched(), state.histories)):
            history.best_epoch = None if w.best_epoch < 0 else w.best_epoch
            if self.best is not None:
                history.best_parameters = self.best[k]

    def commit(self, state: RunState, records: list[dict[str, Any]]) -> None:
        watch = state.watched()
        for k, record in _trained(records):
            if record["evaluation_correct"] > watch[k].best_correct:
                watch[k].best_correct = record["evaluation_correct"]
                watch[k].best_epoch = record["epoch"]
                state.histories[k].best_epoch = record["epoch"]
                if self.best is not None:
                    self.best[k][...] = self.current[k]


class EarlyStopping(Hook):
    """``network2.py``'s early stopping, per network: a network stops once ``n``
    epochs in a row have not beaten its best evaluation accuracy (``no_accuracy_change
    == early_stopping_n``: the epochs since its best, or since the start while none
    beat 0). A single network's run then ends; in a stack the others go on."""

    def __init__(self, n: int) -> None:
        self.n = n

    def commit(self, state: RunState, records: list[dict[str, Any]]) -> None:
        watch = state.watched()
        for k, record in _trained(records):
            if k not in state.stopped and record["epoch"] - watch[k].best_epoch >= self.n:
                state.stopped[k] = record["epoch"]


class HalveOnPlateau(Hook):
    """The book's learning-rate schedule (chapter 3, "How to choose a neural network's
    hyper-parameters?", "Learning rate schedule"), per network: halve η each time the
    evaluation accuracy has not improved for ``n`` epochs (counted from the best epoch
    or from the last halving, whichever is later), and stop the network when η has
    fallen to ``floor`` (1/128) of its start: the halving that brings it there ends the
    network's training."""

    def __init__(self, eta: Sequence[float], n: int, floor: float) -> None:
        self.start, self.n, self.floor = list(eta), n, floor

    def commit(self, state: RunState, records: list[dict[str, Any]]) -> None:
        watch = state.watched()
        for k, record in _trained(records):
            w, epoch = watch[k], record["epoch"]
            if k in state.stopped or epoch - w.since() < self.n:
                continue
            w.eta = (self.start[k] if w.eta is None else w.eta) / 2
            w.eta_changed = epoch
            if w.eta <= self.start[k] * self.floor:
                state.stopped[k] = epoch


SCHEDULES: dict[str, Callable[["TrainingSettings"], Hook]] = {
    "halve": lambda s: HalveOnPlateau(s.eta, s.eta_schedule_n, s.eta_floor),
}
"""The learning-rate schedules, by the name ``SGD(eta_schedule=...)`` and
``--eta-schedule`` take: each makes its hook from the settings. The seam for another
schedule is one line here and its :class:`Hook` (on :meth:`Hook.commit`, setting
``state.watch[k].eta`` and, to end a network, ``state.stopped[k]``)."""


def deciding_hooks(settings: "TrainingSettings", best: Any = None,
                   current: Any = None) -> list[Hook]:
    """The hooks that decide by the evaluation accuracy, in their order (none at the
    defaults): the watch (and the best epoch's copy), early stopping, the schedule."""
    if not settings.watches_accuracy:
        return []
    hooks: list[Hook] = [WatchAccuracy(best, current)]
    if settings.early_stopping_n > 0:
        hooks.append(EarlyStopping(settings.early_stopping_n))
    if settings.eta_schedule is not None:
        hooks.append(SCHEDULES[settings.eta_schedule](settings))
    return hooks


def standard_hooks(settings: "TrainingSettings", n: int, *, stop_on_divergence: bool,
                   report: Callable[[list[dict[str, Any]]], None],
                   checkpoint: Optional[CheckpointHook] = None,
                   progress: Optional[ProgressHook] = None,
                   deciding: Sequence[Hook] = ()) -> Hooks:
    """The hooks of ``SGD``: the progress line, divergence (a single network stops),
    those that decide by the accuracy (:func:`deciding_hooks`), the checkpoint, then the
    printed line and ``callback`` (after the checkpoint, so a callback that stops the
    run finds its epoch written)."""
    hooks: list[Hook] = [h for h in (progress,) if h is not None]
    if stop_on_divergence:
        hooks.append(StopOnDivergence(settings.eta[0], settings.lmbda[0], n))
    hooks += list(deciding)
    hooks += [h for h in (checkpoint,) if h is not None]
    hooks.append(ReportHook(report))
    return Hooks(hooks)
