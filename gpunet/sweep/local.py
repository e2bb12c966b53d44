"""A sweep's stacks trained on this machine, one after another, with one checkpoint for
the whole sweep."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence

import numpy as np

from .grid import SWEPT, Run, SweepSettings, run_keys
from .results import epoch_line

if TYPE_CHECKING:
    from ..training.checkpoint import Checkpoint, CheckpointWriter


@dataclass
class StackResult:
    """What training one stack gives back: its rows and its networks' parameters."""

    runs: list[Run]
    rows: list[dict[str, Any]]
    parameters: np.ndarray  # (K, P) host array, row k = runs[k]'s flat buffer
    device: str = ""
    #: runs[k] -> the epoch it diverged in (its parameters: the last finite epoch's)
    diverged: dict[Run, int] = field(default_factory=dict)
    #: the Ctrl-C or SIGTERM that stopped the stack early; ``rows`` and ``parameters``
    #: are then as of its last completed epoch (``epochs_done`` of them)
    interrupted: Optional[BaseException] = None
    epochs_done: int = 0


def train_stack(settings: SweepSettings, runs: Sequence[Run], training: Any,
                evaluation: Any,
                on_epoch: Optional[Callable[[list[dict[str, Any]]], None]] = None, *,
                checkpoint: Optional["CheckpointWriter"] = None,
                resume: Optional["Checkpoint"] = None, progress: bool = False
                ) -> StackResult:
    """Train the networks of ``runs`` as one :class:`gpunet.NetworkStack`.

    ``training`` and ``evaluation`` are ``(X, y)`` host arrays. Calls
    ``on_epoch(rows)`` with the stack's K rows after each epoch. This is the unit of
    work of every sweep executor (a Ray task runs exactly this function). ``checkpoint``
    is written after every epoch; ``resume`` (this stack's checkpoint) continues the
    stack from there, its earlier epochs' rows included in the result.
    """
    from ..networks.resuming import continue_stack, stack_from
    from ..networks.stack import NetworkStack

    rows: list[dict[str, Any]] = []
    epochs_done = 0

    def callback(records: list[dict[str, Any]]) -> None:
        nonlocal epochs_done
        new = [row(run, record) for run, record in zip(runs, records)]
        rows.extend(r for r in new if not r.get("stopped"))  # as its history: no epoch
        epochs_done += 1
        if on_epoch is not None:
            on_epoch(new)

    if resume is not None:
        stack = stack_from(resume, settings.device)
        rows.extend(stack_rows(runs, resume.histories, resume.diverged, resume.seconds))
        epochs_done = resume.epochs_done
    else:
        stack = NetworkStack(list(settings.sizes), [r.seed for r in runs],
                             cost=settings.cost, init=settings.init, dtype=settings.dtype,
                             activation=settings.activation,
                             device=settings.device)
    interrupted: Optional[BaseException] = None
    try:
        if resume is not None:
            continue_stack(resume, stack, training, evaluation, epochs=settings.epochs,
                           checkpoint=checkpoint, verbose=False, callback=callback,
                           progress=progress, workers=settings.workers)
        else:
            stack.SGD(training, settings.epochs, settings.mini_batch_size,
                      eta=[r.eta for r in runs], lmbda=[r.lmbda for r in runs],
                      momentum=[r.momentum for r in runs], l1=[r.l1 for r in runs],
                      dropout=[r.dropout for r in runs],
                      evaluation_data=evaluation, monitor_evaluation_accuracy=True,
                      verbose=False, callback=callback, checkpoint=checkpoint,
                      progress=progress, **settings.sgd_keywords())
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the stack is at its last epoch
        interrupted = exc
        del rows[epochs_done * len(runs):]  # an epoch whose callback was cut short
    return StackResult(list(runs), rows, stack.backend.to_host(stack.parameters),
                       stack.backend.description,
                       diverged={runs[k]: j for k, j in stack.diverged.items()},
                       interrupted=interrupted, epochs_done=epochs_done)


def row(run: Run, record: dict[str, Any]) -> dict[str, Any]:
    """A metrics row: the run, then the epoch's record (:class:`gpunet.History`'s keys)."""
    out: dict[str, Any] = {"run": run.as_dict(), "epoch": record["epoch"]}
    for flag in ("diverged", "stopped"):  # stopped: by early stopping or the schedule
        if record.get(flag):
            out[flag] = True
    for key in ("evaluation_correct", "evaluation_total", "evaluation_cost",
                "training_cost", "training_correct", "training_total"):
        if key in record:
            out[key] = record[key]
    out["train_seconds"] = record["train_seconds"]
    return out


def stack_rows(runs: Sequence[Run], histories: Sequence[Any], diverged: dict[int, int],
               seconds: Sequence[float]) -> list[dict[str, Any]]:
    """The rows of a stack's first ``len(seconds)`` epochs from its histories, as its
    callback made them (a diverged network's rows from its epoch on say so)."""
    rows = []
    for j, t in enumerate(seconds):
        for k, run in enumerate(runs):
            if k in diverged and j >= diverged[k]:
                rows.append(row(run, {"epoch": j, "train_seconds": t, "diverged": True}))
            elif j < len(histories[k].records):  # else stopped (early stopping, schedule)
                rows.append(row(run, histories[k].records[j]))
    return rows


@dataclass
class SweepCheckpoint:
    """A local sweep's one checkpoint file: the finished stacks' rows (in ``run``) and
    parameters (the ``finished`` member, ``(F, P)`` in the stacks' order), and the
    running stack's state (:mod:`gpunet.training.checkpoint`, layout 2). ``options`` is the
    command's settings and ``outputs`` the files it writes (``--metrics``, ...), kept
    for ``gpunet sweep --resume``."""

    path: Path
    options: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    option: str = "--checkpoint"

    def writer(self, i: int, finished: Sequence[StackResult]) -> "CheckpointWriter":
        """The writer for stack ``i``, the stacks before it ``finished``."""
        from ..training.checkpoint import CheckpointWriter

        run = {"sweep": {"options": self.options, "stack": i,
                         "rows": [r for result in finished for r in result.rows]},
               "outputs": self.outputs}
        arrays = ({"finished": np.concatenate([r.parameters for r in finished])}
                  if finished else {})
        return CheckpointWriter(self.path, run, self.option, arrays)


def resumed_stacks(saved: "Checkpoint", settings: SweepSettings,
                   stacks: Sequence[Sequence[Run]]) -> tuple[list[StackResult],
                                                             Optional["Checkpoint"]]:
    """What a sweep checkpoint holds: the finished stacks' results and the running
    stack's checkpoint (``None`` when it had finished too). Anything that does not fit
    ``stacks`` is a ``ValueError`` naming the file."""
    path, sweep = saved.path, saved.run.get("sweep")
    bad = f"{path}: the sweep's record does not fit its settings"
    if saved.kind != "stack" or not isinstance(sweep, dict):
        raise ValueError(f"{path} is not a gpunet sweep checkpoint (it holds "
                         f"{'a stack' if saved.kind == 'stack' else 'one network'} trained "
                         "in Python); continue it with gpunet.resume().")
    i = sweep.get("stack")
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(stacks):
        raise ValueError(f"{bad} (stack {i!r}); the file is corrupt or was edited.")
    runs = stacks[i]
    training = saved.training
    if ([r.seed for r in runs] != saved.network_settings["seeds"]
            or any([getattr(r, name) for r in runs] != training[name] for name in SWEPT)):
        raise ValueError(f"{bad} (stack {i + 1}'s networks); the file is corrupt or was "
                         "edited.")
    finished_runs = [r for s in stacks[:i] for r in s]
    parameters = saved.arrays.get("finished", np.empty((0,) + saved.parameters.shape[1:]))
    rows = sweep.get("rows")
    index = {r: n for n, r in enumerate(finished_runs)}
    try:
        assert isinstance(rows, list) and len(parameters) == len(finished_runs)
        per_run: dict[Run, list[dict[str, Any]]] = {}
        for r in rows:
            per_run.setdefault(Run(**r["run"]), []).append(r)
        assert set(per_run) == set(finished_runs)
        assert all(sorted(x["epoch"] for x in v) == list(range(len(v)))
                   and (len(v) == settings.epochs or stops_early(settings.sgd))
                   for v in per_run.values())
    except (AssertionError, TypeError, KeyError):
        raise ValueError(f"{bad} (the finished stacks' rows and parameters); the file is "
                         "corrupt or was edited.") from None
    finished = []
    for s in stacks[:i]:
        first = index[s[0]]
        mine = [r for run in s for r in per_run[run]]
        finished.append(StackResult(list(s), mine, parameters[first:first + len(s)],
                                    diverged=_diverged(s, mine),
                                    epochs_done=settings.epochs))
    if saved.epochs_done < settings.epochs:
        return finished, saved
    done = stack_rows(runs, saved.histories, saved.diverged, saved.seconds)
    finished.append(StackResult(list(runs), done, saved.parameters,
                                diverged={runs[k]: j for k, j in saved.diverged.items()},
                                epochs_done=saved.epochs_done))
    return finished, None


def stops_early(sgd: Any) -> bool:
    """Whether ``SGD``'s keywords ``sgd`` may stop a network before its last epoch
    (early stopping, the η schedule): its rows may then end early."""
    return bool(sgd.get("early_stopping_n")) or sgd.get("eta_schedule") is not None


def _diverged(runs: Sequence[Run], rows: Sequence[dict[str, Any]]) -> dict[Run, int]:
    """Each run that diverged, and the epoch it diverged in, from its rows."""
    out: dict[Run, int] = {}
    for r in sorted(rows, key=lambda r: r["epoch"]):
        if r.get("diverged"):
            out.setdefault(Run(**r["run"]), r["epoch"])
    return {run: out[run] for run in runs if run in out}


def run_local(settings: SweepSettings, stacks: Sequence[Sequence[Run]], training: Any,
              evaluation: Any, log: Callable[[str], None] = print, *,
              checkpoint: Optional[SweepCheckpoint] = None,
              resume: Optional["Checkpoint"] = None, progress: bool = False
              ) -> Iterator[tuple[int, StackResult]]:
    """Train the stacks one after another on this machine, printing a line per epoch.

    Yields ``(i, result)`` for stack ``i`` as it finishes (as the Ray executor does); a
    stack stopped by Ctrl-C or SIGTERM is yielded with what it completed
    (``result.interrupted``), and the later stacks are not started. With
    ``checkpoint`` the sweep's state is written after every epoch; ``resume`` (a sweep
    checkpoint) first yields the stacks it had finished, then continues the running one.
    """
    finished: list[StackResult] = []
    running: Optional["Checkpoint"] = None
    if resume is not None:
        finished, running = resumed_stacks(resume, settings, stacks)
        for i, result in enumerate(finished):
            yield i, result
    keys = run_keys([run for stack in stacks for run in stack])
    for i in range(len(finished), len(stacks)):
        def on_epoch(rows: list[dict[str, Any]], i: int = i) -> None:
            log(epoch_line(i, len(stacks), rows, settings.epochs, keys))

        writer = checkpoint.writer(i, finished) if checkpoint is not None else None
        result = train_stack(settings, stacks[i], training, evaluation, on_epoch,
                             checkpoint=writer, resume=running, progress=progress)
        running = None
        yield i, result
        if result.interrupted is not None:
            return
        finished.append(result)
