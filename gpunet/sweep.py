"""Sweeps: a grid of learning rates, regularization parameters and seeds, trained in stacks.

Chapter 3 ("How to choose a neural network's hyper-parameters?") chooses ``η`` by
training the same network with several values side by side, and reports results as
the best of several seeds. A sweep does that in one go: every combination of the
``η`` and ``λ`` lists, times every seed, as one *run* each; runs are grouped into
*stacks* of at most ``stack_size`` networks, each trained by a
:class:`gpunet.NetworkStack` (all networks of a stack in lockstep, on one device).

The unit of work is a stack (:func:`train_stack`): the local engine
(:func:`run_local`) trains the stacks one after another on this machine; the Ray
engine (:mod:`gpunet.sweep_ray`) sends them to a cluster as tasks. Both return the
same rows, one per run per epoch: the run, then the epoch's record in
:class:`gpunet.History`'s vocabulary, as ``gpunet train --metrics`` writes it::

    {"run": {"eta": 0.5, "lmbda": 0.0, "seed": 0}, "epoch": 0,
     "evaluation_correct": 9042, "evaluation_total": 10000, "train_seconds": 1.9}

(``training_cost``, ``training_correct`` / ``training_total`` and ``evaluation_cost``
when monitored; which data set ``evaluation_*`` is, test or validation, the metrics
file's header says). ``train_seconds`` is the whole stack's epoch, the only field that
depends on timing. Files written before this vocabulary (``test_correct``,
``validation_correct``, ...) are still read (:func:`gpunet.history.read_sweep_metrics`).

A local sweep keeps one checkpoint file (:class:`SweepCheckpoint`): the finished
stacks' rows and parameters and the running stack's state, written after every epoch,
so that a resumed sweep ends with exactly the rows and parameters of one never stopped.

A network that diverges (:mod:`gpunet.divergence`) gets the row ``{"run": ...,
"epoch": j, "diverged": true, "train_seconds": ...}`` for its epoch ``j`` and each later
one, keeps its last finite parameters, and is counted apart in the summary table; the
other networks of its stack go on. A stack stopped by Ctrl-C or SIGTERM returns what it
completed (:attr:`StackResult.interrupted`).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Optional, Sequence

import numpy as np

from .arguments import check_eta, check_lmbda, check_seed

if TYPE_CHECKING:
    from .checkpoint import Checkpoint, CheckpointWriter

TIMING_FIELDS = ("train_seconds",)
"""Row fields that measure time: the only ones allowed to differ between engines."""

MAX_DEFAULT_STACK = 256
"""The largest stack the default size picks (beyond it a step gains nothing)."""

MAX_NETWORKS = 1_000_000
"""The most networks one sweep may list (seeds, or η × λ × seeds): beyond any real
sweep, and checked before a range is expanded, so a typo cannot exhaust memory."""


@dataclass(frozen=True)
class Run:
    """One network of a sweep: its learning rate, L2 parameter and seed."""

    eta: float
    lmbda: float
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return {"eta": self.eta, "lmbda": self.lmbda, "seed": self.seed}

    @property
    def setting(self) -> tuple[float, float]:
        """``(η, λ)``: the runs of one setting differ only in their seed."""
        return (self.eta, self.lmbda)


@dataclass(frozen=True)
class SweepSettings:
    """What every network of a sweep shares (everything but ``η``, ``λ`` and seed)."""

    sizes: tuple[int, ...] = (784, 30, 10)
    cost: str = "quadratic"
    init: Literal["default", "large"] = "large"
    dtype: Literal["float32", "float64"] = "float32"
    epochs: int = 30
    mini_batch_size: int = 10
    device: str = "auto"
    engine: str = "auto"  # gpunet.engines.select_engine
    evaluate: str = "test"  # the evaluation data (test, validation): the header says it
    monitor_training_cost: bool = False
    monitor_training_accuracy: bool = False
    monitor_evaluation_cost: bool = False
    workers: Optional[int] = None  # the stacked CPU engine's processes (None: automatic)


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


# ------------------------------------------------------------------ the grid
def parse_floats(text: str, name: str) -> list[float]:
    """``"0.025,0.25,2.5"`` as a list of numbers; ``ValueError`` naming ``name`` else."""
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            values.append(float(part))
        except ValueError:
            raise ValueError(
                f"{name} {text!r}: {part!r} is not a number; give a comma-separated list "
                f"like 0.025,0.25,2.5.") from None
    return values


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"1,5,7"`` or a mix (``"0-2,10"``) as a list of seeds, in order.

    At most :data:`MAX_NETWORKS` seeds, counted before any range is expanded."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            if dash:
                a, b = int(low), int(high)
                if b < a:
                    raise ValueError
            else:
                a = b = int(part)
        except ValueError:
            raise ValueError(
                f"--seeds {text!r}: {part!r} is neither a seed nor a range like 0-9; give "
                f"non-negative integers and ascending ranges, comma-separated.") from None
        if len(seeds) + (b - a + 1) > MAX_NETWORKS:
            raise ValueError(f"--seeds {text!r} lists more than {MAX_NETWORKS:,} seeds; a "
                             "sweep trains one network per seed: give fewer.")
        seeds.extend(range(a, b + 1))
    return seeds


def expand_grid(etas: Sequence[float], lmbdas: Sequence[float],
                seeds: Sequence[int]) -> list[Run]:
    """Every ``(η, λ)`` combination times every seed, ``η`` slowest, seed fastest.

    Values are checked as ``train`` checks them; a repeated value is an error (it would
    train the same network twice).
    """
    for name, values in (("--eta", etas), ("--lmbda", lmbdas), ("--seeds", seeds)):
        if not values:
            raise ValueError(f"{name} is empty; give at least one value.")
        counts = Counter(values)  # linear in the number of values
        if len(counts) < len(values):
            repeated = sorted(v for v, c in counts.items() if c > 1)
            shown = ", ".join(map(str, repeated[:10])) + (", ..." if len(repeated) > 10 else "")
            raise ValueError(f"{name} lists {shown} more than once; give each value once.")
    if len(etas) * len(lmbdas) * len(seeds) > MAX_NETWORKS:
        raise ValueError(f"{len(etas)} η × {len(lmbdas)} λ × {len(seeds)} seeds is more than "
                         f"{MAX_NETWORKS:,} networks; give fewer values.")
    etas = [check_eta(e) for e in etas]
    lmbdas = [check_lmbda(l) for l in lmbdas]
    seeds = [check_seed(s) for s in seeds]
    return [Run(e, l, s) for e in etas for l in lmbdas for s in seeds]


def split_into_stacks(runs: Sequence[Run], stack_size: int) -> list[list[Run]]:
    """Consecutive groups of at most ``stack_size`` runs, as even in size as possible."""
    if stack_size < 1:
        raise ValueError(f"--stack must be a positive integer, got {stack_size}.")
    count = math.ceil(len(runs) / stack_size)
    size = math.ceil(len(runs) / count)
    return [list(runs[i:i + size]) for i in range(0, len(runs), size)]


def default_stack_size(backend: Any, sizes: Sequence[int], dtype: str,
                       mini_batch_size: int) -> int:
    """How many networks fit in a quarter of the device's free memory (at most 256).

    Per network a stack holds its parameters and gradient (``2 P`` numbers) and the
    workspaces of a full and a last mini-batch (inputs, targets, and three buffers per
    layer per row). Evaluation runs one network at a time, so it does not count.
    """
    from .parameters import n_parameters

    itemsize = np.dtype(dtype).itemsize
    per_row = sizes[0] + sizes[-1] + 3 * sum(sizes[1:])
    per_network = itemsize * (2 * n_parameters(sizes) + 2 * mini_batch_size * per_row + 64)
    free = _free_memory(backend)
    return max(1, min(MAX_DEFAULT_STACK, int(free // 4 // per_network)))


def _free_memory(backend: Any) -> float:
    from .memory import available_memory

    return available_memory(backend)


# ---------------------------------------------------------------- one stack
def train_stack(settings: SweepSettings, runs: Sequence[Run], training: Any,
                evaluation: Any,
                on_epoch: Optional[Callable[[list[dict[str, Any]]], None]] = None, *,
                checkpoint: Optional["CheckpointWriter"] = None,
                resume: Optional["Checkpoint"] = None, progress: bool = False
                ) -> StackResult:
    """Train the networks of ``runs`` as one :class:`gpunet.NetworkStack`.

    ``training`` and ``evaluation`` are ``(X, y)`` host arrays. Calls
    ``on_epoch(rows)`` with the stack's K rows after each epoch. This is the unit of
    work of every sweep engine (a Ray task runs exactly this function). ``checkpoint``
    is written after every epoch; ``resume`` (this stack's checkpoint) continues the
    stack from there, its earlier epochs' rows included in the result.
    """
    from .resuming import continue_stack, stack_from
    from .stack import NetworkStack

    rows: list[dict[str, Any]] = []
    epochs_done = 0

    def callback(records: list[dict[str, Any]]) -> None:
        nonlocal epochs_done
        new = [row(run, record) for run, record in zip(runs, records)]
        rows.extend(new)
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
                      evaluation_data=evaluation, monitor_evaluation_accuracy=True,
                      monitor_evaluation_cost=settings.monitor_evaluation_cost,
                      monitor_training_cost=settings.monitor_training_cost,
                      monitor_training_accuracy=settings.monitor_training_accuracy,
                      verbose=False, callback=callback, engine=settings.engine,
                      workers=settings.workers, checkpoint=checkpoint, progress=progress)
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
    if record.get("diverged"):
        out["diverged"] = True
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
            else:
                rows.append(row(run, histories[k].records[j]))
    return rows


@dataclass
class SweepCheckpoint:
    """A local sweep's one checkpoint file: the finished stacks' rows (in ``run``) and
    parameters (the ``finished`` member, ``(F, P)`` in the stacks' order), and the
    running stack's state (:mod:`gpunet.checkpoint`, layout 2). ``options`` is the
    command's settings, kept for ``gpunet sweep --resume``."""

    path: Path
    options: dict[str, Any]
    option: str = "--checkpoint"

    def writer(self, i: int, finished: Sequence[StackResult]) -> "CheckpointWriter":
        """The writer for stack ``i``, the stacks before it ``finished``."""
        from .checkpoint import CheckpointWriter

        run = {"sweep": {"options": self.options, "stack": i,
                         "rows": [r for result in finished for r in result.rows]}}
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
            or [r.eta for r in runs] != training["eta"]
            or [r.lmbda for r in runs] != training["lmbda"]):
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
        assert all(sorted(x["epoch"] for x in v) == list(range(settings.epochs))
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

    Yields ``(i, result)`` for stack ``i`` as it finishes (as the Ray engine does); a
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
    for i in range(len(finished), len(stacks)):
        def on_epoch(rows: list[dict[str, Any]], i: int = i) -> None:
            log(epoch_line(i, len(stacks), rows))

        writer = checkpoint.writer(i, finished) if checkpoint is not None else None
        result = train_stack(settings, stacks[i], training, evaluation, on_epoch,
                             checkpoint=writer, resume=running, progress=progress)
        running = None
        yield i, result
        if result.interrupted is not None:
            return
        finished.append(result)


def epoch_line(i: int, count: int, rows: list[dict[str, Any]]) -> str:
    """``stack 1/2 epoch 3: 9123 9054 9311 / 10000 (1.23 s)``: one stack's epoch."""
    scores = " ".join("diverged" if r.get("diverged") else str(r["evaluation_correct"])
                      for r in rows)
    r0 = next((r for r in rows if not r.get("diverged")), rows[0])
    if "evaluation_total" not in r0:
        return f"stack {i + 1}/{count} epoch {r0['epoch']}: every network diverged"
    return (f"stack {i + 1}/{count} epoch {r0['epoch']}: {scores} / "
            f"{r0['evaluation_total']} ({r0['train_seconds']:.2f} s)")


# ---------------------------------------------------------------- results
def ordered_rows(runs: Sequence[Run], rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in the grid's order (run, then epoch), whatever order the stacks finished in."""
    index = {r: i for i, r in enumerate(runs)}
    return sorted(rows, key=lambda r: (index[Run(**r["run"])], r["epoch"]))


def without_timing(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows less their timing fields: what two engines must agree on exactly."""
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in rows]


def summarize(runs: Sequence[Run], rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per setting ``(η, λ)``: best and final accuracy (%) per seed, mean ± std, best.

    A seed whose network diverged is counted in ``diverged``, not in the statistics
    (its accuracy before diverging says little about the setting); a setting where
    every seed diverged has ``seeds`` 0 and no statistics."""
    per_run: dict[Run, list[dict[str, Any]]] = {}
    for r in rows:
        per_run.setdefault(Run(**r["run"]), []).append(r)
    settings: dict[tuple[float, float], list[Run]] = {}
    for run in runs:
        settings.setdefault(run.setting, []).append(run)
    table = []
    for (eta, lmbda), members in settings.items():
        best, final, diverged = [], [], 0
        for run in members:
            epochs = sorted(per_run.get(run, []), key=lambda r: r["epoch"])
            if any(r.get("diverged") for r in epochs):
                diverged += 1
                continue
            if not epochs:
                continue
            total = epochs[0]["evaluation_total"]
            best.append(100.0 * max(r["evaluation_correct"] for r in epochs) / total)
            final.append(100.0 * epochs[-1]["evaluation_correct"] / total)
        if best:
            table.append({"eta": eta, "lmbda": lmbda, "seeds": len(best),
                          "best_mean": statistics.mean(best), "best_std": _std(best),
                          "best_max": max(best), "final_mean": statistics.mean(final),
                          "final_std": _std(final), "diverged": diverged})
        elif diverged:
            table.append({"eta": eta, "lmbda": lmbda, "seeds": 0, "diverged": diverged})
    return table


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summary_text(table: Sequence[dict[str, Any]], evaluate: str) -> str:
    """The per-setting table as aligned text."""
    lines = [f"{'eta':>10} {'lmbda':>10} {'seeds':>5}  {'best ' + evaluate + ' %':>18}  "
             f"{'(max)':>7}  {'final ' + evaluate + ' %':>18}"]
    for t in table:
        diverged = (f"  ({t['diverged']} diverged)" if t.get("diverged") else "")
        if not t["seeds"]:
            lines.append(f"{exact_number(t['eta']):>10} {exact_number(t['lmbda']):>10} "
                         f"{t['seeds']:>5}  {'every seed diverged':>18}{diverged}")
            continue
        lines.append(f"{exact_number(t['eta']):>10} {exact_number(t['lmbda']):>10} "
                     f"{t['seeds']:>5}  {t['best_mean']:>9.2f} ± {t['best_std']:<6.2f}  "
                     f"{t['best_max']:>7.2f}  {t['final_mean']:>9.2f} ± {t['final_std']:.2f}{diverged}")
    return "\n".join(lines)


def save_networks(settings: SweepSettings, result: StackResult, directory: Path) -> list[Path]:
    """Write each network of ``result`` as ``network2.py`` JSON into ``directory`` (a
    diverged network as of its last finite epoch).

    Each file is written on its own: a failed write is a
    :class:`gpunet.outputs.WriteError` raised after the others were written."""
    from .network import Network
    from .outputs import WriteError
    from .persistence import save

    paths, failed = [], []
    for run, params in zip(result.runs, result.parameters):
        net = Network(list(settings.sizes), cost=settings.cost, init=settings.init,
                      dtype=settings.dtype, device="cpu", seed=run.seed)
        net.parameters[...] = params
        path = directory / network_filename(run)
        try:
            save(net, path, "--save-dir")
        except WriteError as exc:
            failed.append(exc)
            continue
        paths.append(path)
    if failed:
        raise failed[0]
    return paths


def network_filename(run: Run) -> str:
    """``eta0.5_lmbda0_seed3.json``: a run's file name in ``--save-dir``.

    Numbers are written as ``%g`` where that gives the number back exactly, else in
    full (``repr``), so two runs never share a file name."""
    return f"eta{exact_number(run.eta)}_lmbda{exact_number(run.lmbda)}_seed{run.seed}.json"


def exact_number(x: float) -> str:
    """``x`` as ``%g`` where that reads back as ``x`` exactly, else in full (``repr``)."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))


def plot_curves(runs: Sequence[Run], rows: Sequence[dict[str, Any]], evaluate: str,
                path: Path) -> None:
    """Every run's accuracy per epoch, one colour per setting (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_run: dict[Run, list[dict[str, Any]]] = {}
    for r in rows:
        if not r.get("diverged"):
            per_run.setdefault(Run(**r["run"]), []).append(r)
    colours: dict[tuple[float, float], Any] = {}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for run in runs:
        epochs = sorted(per_run.get(run, []), key=lambda r: r["epoch"])
        if not epochs:
            continue
        first = run.setting not in colours
        colour = colours.setdefault(run.setting, cycle[len(colours) % len(cycle)])
        pct = [100.0 * r["evaluation_correct"] / r["evaluation_total"] for r in epochs]
        ax.plot([r["epoch"] for r in epochs], pct, color=colour, alpha=0.8,
                label=f"η = {run.eta:g}, λ = {run.lmbda:g}" if first else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{evaluate} accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    from .plotting import save_figure

    save_figure(fig, path, "--plot")
