"""``gpunet sweep``: train a grid of η × λ × seeds at once, in stacks, here or on Ray.

Every ``train`` option, where ``--eta`` and ``--lmbda`` take comma lists and
``--seeds`` takes seeds and ranges (``0-9``); ``--engine`` is the step engine, as in
``train``, and ``--executor`` says where the stacks train (``local`` or ``ray``).
Chapter 3's learning-rate comparison ("How to choose a neural network's
hyper-parameters?") is::

    gpunet sweep --cost cross-entropy --eta 0.025,0.25,2.5 --seeds 0-2 --plot eta.png

Around the sweep, what ``gpunet train`` gives one run: ``--checkpoint`` (one file for
the whole sweep, written after every epoch) and ``--resume`` that ends with exactly the
rows and networks of a sweep never stopped, Ctrl-C or SIGTERM that keeps every
network's completed epochs, outputs checked before any work, a progress line on a
terminal, and a ``--metrics`` file that starts with the sweep's settings.

As ``train``, the command runs in three steps: :func:`prepare` (every cheap check
before any work), :func:`sweep` (the stacks trained, their rows and networks kept as
they come: :class:`Swept`) and :func:`report`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from .options import LOOP_OPTIONS, SWEEP, add_options, check_watching, print_notes
from .outputs import (STDOUT, MetricsFile, Outputs, check_run_outputs, checkpoint_lock,
                      continued_header, metrics_header, metrics_on_stdout, stopped_by)
from .resume import Record, load_resumed, outputs_record, run_record
from .settings import check_counts, check_neurons, sweep_settings

if TYPE_CHECKING:
    from ..sweep.grid import Run, SweepSettings
    from ..sweep.local import StackResult
    from ..training.checkpoint import Checkpoint
    from .inputs import RunData

RECORD = Record(
    keys=("sizes", "batch_size", "eta", "lmbda", "seeds", "cost", "init", "activation",
          "dtype", "stack_engine", "data", "test_data", "validation", "expand", "limit", "evaluate",
          *LOOP_OPTIONS, "epochs", "stack"),
    outputs=("metrics", "save_dir", "plot"),
    renamed={"stack_engine": "engine"},  # the step engine's name in sweep records
    may_change=frozenset({"device", "workers", "metrics", "save_dir", "plot", "checkpoint",
                          "resume", "quiet", "overwrite", "executor"}),
    changeable="--device, --workers, --data (the same data, moved), --metrics, "
    "--save-dir, --plot and --checkpoint")
"""What a sweep checkpoint records (``run.sweep.options``, ``run.outputs``). The step
engine is recorded as ``stack_engine``, as every gpunet has written it (the record's
format did not change with ``--executor``): checkpoints and metrics files written
before resume and go on as they were."""


def add_parser(sub: Any, formatter: type) -> None:
    sweep = sub.add_parser(
        "sweep",
        help="train every combination of --eta, --lmbda and --seeds at once, in stacks",
        description="Train a grid of networks (every --eta × every --lmbda × every seed) "
        "on MNIST, many networks per stack (stacked matrices, one SGD step for the whole "
        "stack), on this machine or on a Ray cluster. Each network's run is exactly the "
        "run `gpunet train` makes with the same settings and seed.",
        formatter_class=formatter,
    )
    add_options(sweep, "sweep", SWEEP)
    sweep.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    plan = prepare(args)
    with metrics_on_stdout(args), checkpoint_lock(args):
        return report(sweep(args, plan))


# ------------------------------------------------------------------ prepare
@dataclass(frozen=True)
class Plan:
    """What the checks found: the grid's runs, the checkpoint to resume, and Ray's
    ``runtime_env`` (``--executor ray``)."""

    runs: list["Run"]
    resumed: Optional["Checkpoint"]
    runtime_env: Optional[dict[str, Any]]


def prepare(args: argparse.Namespace) -> Plan:
    """Every cheap check before any work (``args`` completed from the checkpoint
    ``--resume`` names): the options, the grid, every output, the executor's options."""
    from .. import sweep as sw
    from .inputs import resolve_sizes
    from .recorded import check_sweep_record

    print_notes(args)  # the old spellings' notes
    if (args.checkpoint or args.resume) and args.executor != "local":
        raise ValueError("--checkpoint and --resume need --executor local.")
    resumed = load_resumed(args, "sweep", RECORD, check_sweep_record) if args.resume else None
    check_counts(args, ("epochs", "batch_size"))
    runs = sw.expand_grid(sw.parse_floats(args.eta, "--eta"),
                          sw.parse_floats(args.lmbda, "--lmbda"), sw.parse_seeds(args.seeds),
                          sw.parse_floats(args.momentum, "--momentum"),
                          sw.parse_floats(args.l1, "--l1"),
                          sw.parse_floats(args.dropout, "--dropout"))
    check_counts(args, ("limit", "stack", "workers"))
    resolve_sizes(args)  # --sizes auto,30,10 against the data's width
    check_neurons(args)  # --activation against the hidden layers
    check_watching(args)  # --early-stop, --eta-schedule: --evaluate validation
    check_run_outputs(args, {"--metrics": args.metrics, "--plot": args.plot,
                             "--checkpoint": args.checkpoint},
                      directories={"--save-dir": args.save_dir})
    if args.save_dir is not None:
        _check_network_files(runs, Path(args.save_dir))
    if args.plot is not None:
        from ..reports.plotting import check_plot_output

        check_plot_output(args.plot, "--plot")
    return Plan(runs, resumed, _ray_options(args))


def _ray_options(args: argparse.Namespace) -> Optional[dict[str, Any]]:
    """``--executor ray``: Ray importable, and its options (the runtime_env); the Ray
    options without it are an error."""
    if args.executor != "ray":
        if args.ray_address or args.ray_runtime_env or args.ray_cpus_per_task:
            raise ValueError("--ray-address, --ray-runtime-env and --ray-cpus-per-task "
                             "need --executor ray.")
        return None
    from ..model.arguments import check_positive_int
    from ..sweep.ray import import_ray, parse_runtime_env

    import_ray()
    runtime_env = parse_runtime_env(args.ray_runtime_env)
    if args.ray_cpus_per_task is not None:
        check_positive_int(args.ray_cpus_per_task, "--ray-cpus-per-task")
    return runtime_env


def _check_network_files(runs: Any, save_dir: Path) -> None:
    """Before any work: every run's ``--save-dir`` file name is its own, and each file
    the sweep will write there can be written (not a directory, a device or a link to
    one), so no network is trained for a file that cannot take it."""
    from .. import sweep as sw
    from ..io.outputs import check_output_files

    names: dict[str, Any] = {}
    for run in runs:
        name = sw.network_filename(run)
        if name in names:
            raise ValueError(f"--save-dir: runs {names[name]} and {run} would both be saved "
                             f"as {name}.")
        names[name] = run
    if save_dir.is_dir():
        check_output_files(save_dir, list(names), "--save-dir")


# ------------------------------------------------------------------ sweep
class Swept:
    """A sweep as its stacks come back: their rows, the networks that diverged, the
    networks saved, what interrupted it, and its outputs (each written on its own)."""

    def __init__(self, args: argparse.Namespace, runs: list["Run"],
                 stacks: list[list["Run"]], settings: "SweepSettings",
                 metrics: Optional[MetricsFile], examples: int) -> None:
        self.args, self.runs, self.stacks, self.settings = args, runs, stacks, settings
        self.metrics, self.examples = metrics, examples
        self.save_dir = Path(args.save_dir) if args.save_dir else None
        self.rows: list[dict[str, Any]] = []
        self.diverged: dict["Run", int] = {}
        self.outputs = Outputs()
        self.interrupted: Optional[BaseException] = None
        self.networks_saved = 0
        self.seconds = 0.0

    def write_metrics(self) -> None:
        """The header and every row so far, in the grid's order (a write error is one
        line; the sweep goes on)."""
        from .. import sweep as sw

        if self.metrics is not None:
            metrics = self.metrics
            self.outputs.write("--metrics",
                               lambda: metrics.write(sw.ordered_rows(self.runs, self.rows)))

    def collect(self, results: Iterator[tuple[int, "StackResult"]]) -> None:
        """Take each stack's result as it comes, until the last or an interruption
        (Ctrl-C, SIGTERM), keeping every network's completed epochs."""
        started = time.perf_counter()
        self.write_metrics()  # the header, and the path written
        try:
            for i, result in results:
                self._take(i, result)
                if result.interrupted is not None:
                    self.interrupted = result.interrupted
                    break
        except KeyboardInterrupt as exc:  # between stacks, or in the Ray executor
            self.interrupted = exc
            self.write_metrics()
        self.seconds = time.perf_counter() - started

    def _take(self, i: int, result: "StackResult") -> None:
        """Stack ``i``'s rows and networks: kept, saved and written."""
        from .. import sweep as sw

        if self.args.executor == "ray":  # the epochs' lines, now that the stack is back
            for j in range(self.settings.epochs):
                print(sw.epoch_line(i, len(self.stacks),
                                    [r for r in result.rows if r["epoch"] == j],
                                    self.settings.epochs, sw.run_keys(self.runs)), flush=True)
        self.rows.extend(result.rows)
        self.diverged.update(result.diverged)
        if self.save_dir is not None and result.epochs_done:
            # each network's file on its own: one that fails (one line) keeps neither
            # the others nor the later stacks from being written
            self.networks_saved += len(sw.save_networks(
                self.settings, result, self.save_dir,
                lambda exc: self.outputs.note(exc, "--save-dir")))
        self.write_metrics()


def sweep(args: argparse.Namespace, plan: Plan) -> Swept:
    """The device (its line), the stacks, the data (its line), then every stack trained
    here or on Ray, its results collected as they come."""
    from ..sweep.grid import run_keys
    from ..sweep.results import epoch_key
    from ..training.progress import epochs_done
    from .inputs import load_run_data

    settings = sweep_settings(args)
    backend = _backend(args)
    stacks = _stacks(args, plan.runs, backend)
    _make_save_dir(args)
    data = load_run_data(args)
    neurons = "" if args.activation == "sigmoid" else f"{args.activation} hidden, "
    print(f"sweep: {len(plan.runs)} networks {list(args.sizes)}, {neurons}{args.cost} cost, "
          f"{args.init} init, {args.dtype}, m={args.batch_size}, epochs={args.epochs}; "
          f"{len(stacks)} stack(s) of at most {max(map(len, stacks))} on {args.executor}",
          flush=True)
    if plan.resumed is not None:
        print(f"resuming {args.resume}: stack {plan.resumed.run['sweep']['stack'] + 1} of "
              f"{len(stacks)}, {epochs_done(plan.resumed.epochs_done, args.epochs)}",
              flush=True)
    print(epoch_key(args.evaluate, len(data.evaluation[1]), run_keys(plan.runs)), flush=True)
    metrics = _metrics_file(args, plan, stacks, backend)
    swept = Swept(args, plan.runs, stacks, settings, metrics, data.examples)
    swept.collect(_results(args, plan, settings, stacks, data))
    return swept


def _backend(args: argparse.Namespace) -> Any:
    """``--executor local``: the device (checked here, before any work) and its line.
    Ray's workers' devices are not visible from here: stacks are sized by this
    machine's device where it has one like theirs, else by its memory (``None`` where
    ``--stack`` sizes them)."""
    from ..backends import BackendUnavailable, get_backend
    from .inputs import open_device

    if args.executor == "local":
        return open_device(args.device)
    if args.stack is not None:
        return None
    try:
        return get_backend(args.device)
    except BackendUnavailable:
        return get_backend("cpu")


def _stacks(args: argparse.Namespace, runs: list["Run"], backend: Any) -> list[list["Run"]]:
    """The runs split into stacks of at most ``--stack`` (default: what fits the
    device), which must fit in memory; ``args.stack`` becomes the size, kept in the
    checkpoint (a resumed sweep has the same stacks)."""
    from .. import sweep as sw
    from ..model.memory import check_network_fits

    args.stack = args.stack or sw.default_stack_size(backend, args.sizes, args.dtype,
                                                     args.batch_size)
    stacks = sw.split_into_stacks(runs, args.stack)
    check_network_fits(tuple(args.sizes), args.dtype, args.batch_size,
                       max(map(len, stacks)), "--sizes",
                       backend if args.executor == "local" else None,
                       examples=args.limit, batch_what="--batch-size")
    return stacks


def _make_save_dir(args: argparse.Namespace) -> None:
    if args.save_dir is None:
        return
    save_dir = Path(args.save_dir)
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--save-dir {save_dir}: cannot create it "
                         f"({exc.strerror or exc}).") from None


def _metrics_file(args: argparse.Namespace, plan: Plan, stacks: list[list["Run"]],
                  backend: Any) -> Optional[MetricsFile]:
    """``--metrics``: its header (a resumed sweep's file goes on with its own)."""
    if not args.metrics:
        return None
    options = run_record(args, RECORD)
    header = continued_header(args.metrics, options) if plan.resumed is not None else None
    if header is None:
        device = backend.description if args.executor == "local" else args.executor
        header = {**metrics_header(options, device, args.evaluate),
                  "sweep": {"networks": len(plan.runs), "stacks": len(stacks)}}
        if plan.resumed is not None:
            header["resumed_from"] = {"stack": plan.resumed.run["sweep"]["stack"],
                                      "epoch": plan.resumed.epochs_done}
    return MetricsFile(args.metrics, header)


def _results(args: argparse.Namespace, plan: Plan, settings: "SweepSettings",
             stacks: list[list["Run"]], data: "RunData") -> Iterator[tuple[int, "StackResult"]]:
    """Each stack's result as it finishes: trained here (with the checkpoint) or on Ray."""
    from .. import sweep as sw

    if args.executor == "ray":
        from ..sweep.ray import run_ray

        return run_ray(settings, stacks, data.training, data.evaluation,
                       address=args.ray_address, runtime_env=plan.runtime_env,
                       cpus_per_task=args.ray_cpus_per_task)
    checkpoint = (sw.SweepCheckpoint(Path(args.checkpoint), run_record(args, RECORD),
                                     outputs_record(args, RECORD.outputs))
                  if args.checkpoint else None)
    return sw.run_local(settings, stacks, data.training, data.evaluation,
                        checkpoint=checkpoint, resume=plan.resumed, progress=not args.quiet)


# ------------------------------------------------------------------ report
def report(swept: Swept) -> int:
    """The table per setting, the diverged networks, the outputs (the plot drawn now),
    the checkpoint's line; the exit status."""
    from .. import sweep as sw
    from ..training.divergence import likely_cause
    from ..training.progress import epochs_done
    from ..training.signals import exit_status

    args, outputs = swept.args, swept.outputs
    if swept.interrupted is not None:
        print(f"\n{stopped_by(swept.interrupted)}; keeping every network's completed epochs",
              file=sys.stderr, flush=True)
    print(sw.summary_text(sw.summarize(swept.runs, swept.rows), args.evaluate))
    print(f"{len(swept.runs)} networks in {swept.seconds:.1f} s")
    for run, epoch in swept.diverged.items():
        named = " ".join(f"{key}={value if key == 'seed' else sw.exact_number(value)}"
                         for key, value in run.as_dict().items())
        print(f"diverged: {named} with {epochs_done(epoch, args.epochs)} "
              f"({likely_cause(run.eta, run.lmbda, swept.examples)}); its rows "
              "say diverged from there on", file=sys.stderr)
    _output_lines(swept)
    if swept.interrupted is not None:
        return exit_status(swept.interrupted)
    if outputs.failed or (swept.diverged and len(swept.diverged) == len(swept.runs)):
        return 1
    return 0


def _output_lines(swept: Swept) -> None:
    """What was written (the plot now), and what the checkpoint holds."""
    from .. import sweep as sw

    args, outputs = swept.args, swept.outputs
    if args.metrics not in (None, STDOUT) and outputs.ok("--metrics"):
        print(f"wrote metrics to {args.metrics}")
    if swept.save_dir is not None and swept.networks_saved:
        print(f"saved {swept.networks_saved} networks to {swept.save_dir}"
              + (f" ({len(swept.diverged)} as of the last finite epoch)"
                 if swept.diverged else "")
              + (" (each as of its last completed epoch)" if swept.interrupted else ""))
    if args.plot and swept.rows:
        def plot() -> None:
            sw.plot_curves(swept.runs, swept.rows, args.evaluate, Path(args.plot))
            print(f"wrote plot to {args.plot}")

        outputs.write("--plot", plot)
    if args.checkpoint and outputs.ok("--checkpoint"):
        if swept.interrupted is not None:
            print(f"checkpoint {args.checkpoint} holds every network's completed epochs; "
                  f"continue with: gpunet sweep --resume {shlex.quote(args.checkpoint)}",
                  file=sys.stderr)
        else:
            print(f"checkpoint written to {args.checkpoint}")
    elif swept.interrupted is not None:
        print("to be able to continue an interrupted sweep, run it with --checkpoint PATH",
              file=sys.stderr)
