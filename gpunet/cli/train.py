"""``gpunet train``: train a network on MNIST; the defaults are the book's chapter-1 run.

``gpunet train`` with no options is chapter 1's run: [784, 30, 10], quadratic cost,
N(0, 1) initialisation, η = 3.0, mini-batches of 10, 30 epochs, evaluated on the
10,000 test images after each epoch, on the best available device.

Around the book's loop, what a user's time asks for: ``--checkpoint`` after every epoch
and ``--resume`` that continues bit for bit, Ctrl-C that keeps the completed epochs
(exit 130), outputs checked writable before the first epoch, a progress line on a
terminal, ``--plot`` for the learning curves, and a ``--metrics`` file that starts with
the run's settings.

The command runs in three steps: :func:`prepare` checks everything cheap (the options,
the checkpoint to resume and its record, every output) before any work; :func:`train`
trains; :func:`report` prints the summary and writes the outputs of the completed
epochs. The options, the data, the mapping to ``SGD`` and the outputs are shared with
``gpunet sweep`` (:mod:`~gpunet.cli.options`, :mod:`~gpunet.cli.inputs`,
:mod:`~gpunet.cli.settings`, :mod:`~gpunet.cli.outputs`, :mod:`~gpunet.cli.resume`).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from .options import LOOP_OPTIONS, TRAIN, add_options, check_watching, explicit_options
from .outputs import (STDOUT, MetricsFile, Outputs, check_run_outputs, checkpoint_lock,
                      continued_header, metrics_header, metrics_on_stdout)
from .resume import Record, load_resumed, outputs_record, run_record
from .settings import check_counts, check_neurons, loop_keywords, network_keywords

if TYPE_CHECKING:
    from ..networks.network import Network
    from ..training.checkpoint import Checkpoint, CheckpointWriter
    from .inputs import RunData

RECORD = Record(
    keys=("sizes", "batch_size", "eta", "cost", "init", "activation", "lmbda", "seed", "dtype",
          "engine", "data", "test_data", "validation", "expand", "limit", "evaluate", *LOOP_OPTIONS),
    outputs=("save", "metrics", "plot", "save_best"), renamed={},
    may_change=frozenset({"epochs", "device", "save", "metrics", "checkpoint", "resume",
                          "plot", "quiet", "overwrite", "save_best"}),
    changeable="--epochs, --device, --data (the same data, moved), --save, --save-best, "
    "--metrics, --checkpoint and --plot")
"""What a train checkpoint records (``run.options``, ``run.outputs``) for ``--resume``."""


def add_parser(sub: Any, formatter: type) -> None:
    train = sub.add_parser(
        "train",
        help="train a network on MNIST (defaults: the book's chapter-1 run)",
        description="Train a sigmoid network on MNIST by mini-batch SGD. The defaults "
        "are the book's chapter-1 run (about 95% test accuracy after 30 epochs). "
        "Ctrl-C stops after keeping the completed epochs (--save, --checkpoint).",
        formatter_class=formatter,
    )
    add_options(train, "train", TRAIN)
    train.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    resumed = prepare(args)
    with metrics_on_stdout(args), checkpoint_lock(args):
        return report(args, train(args, resumed))


# ------------------------------------------------------------------ prepare
def prepare(args: argparse.Namespace) -> Optional["Checkpoint"]:
    """Every cheap check before any work (``args`` completed from the checkpoint
    ``--resume`` names, which is returned)."""
    from ..model.arguments import check_eta, check_lmbda
    from ..model.memory import check_network_fits
    from .inputs import resolve_sizes
    from .recorded import check_train_record

    resumed = None
    if args.resume:
        resumed = load_resumed(args, "train", RECORD, check_train_record)
        if "epochs" not in explicit_options(args):
            args.epochs = resumed.training["epochs"]
    check_counts(args, ("epochs", "batch_size"))
    check_eta(args.eta)
    check_lmbda(args.lmbda)
    check_counts(args, ("limit",))
    resolve_sizes(args)  # --sizes auto,30,10 against the data's width
    check_neurons(args)  # --activation against the hidden layers
    if resumed is not None and args.epochs < resumed.epochs_done:
        raise ValueError(f"--epochs {args.epochs}: {args.resume} already has "
                         f"{resumed.epochs_done} epochs; give at least that many, or more "
                         "to extend the run.")
    check_watching(args)  # --early-stop, --eta-schedule, --save-best: --evaluate validation
    if resumed is not None and args.save_best and not resumed.training["keep_best"]:
        raise ValueError(f"--save-best: {args.resume}'s run did not keep its best epoch "
                         "(it was started without --save-best); start a new run with it.")
    check_run_outputs(args, {"--save": args.save, "--checkpoint": args.checkpoint,
                             "--metrics": args.metrics, "--plot": args.plot,
                             "--save-best": args.save_best})
    if args.plot:
        from ..reports.plotting import check_plot_output

        check_plot_output(args.plot, "--plot")
    check_network_fits(args.sizes, args.dtype, args.batch_size, what="--sizes",
                       examples=args.limit, batch_what="--batch-size")
    return resumed


# ------------------------------------------------------------------ train
@dataclass
class Trained:
    """What the run came to: the network (its history: the completed epochs), why it
    stopped early (``""``: it did not), its exit status so far, the outputs and the
    seconds it trained."""

    net: "Network"
    evaluate: str
    metrics: Optional[MetricsFile]
    outputs: Outputs = field(default_factory=Outputs)
    stopped: str = ""
    status: int = 0
    seconds: float = 0.0


def train(args: argparse.Namespace, resumed: Optional["Checkpoint"]) -> Trained:
    """The device, the data and the network (each with its line), then training until
    ``--epochs``, an interruption, divergence or a write error."""
    from ..training.checkpoint import CheckpointWriter
    from .inputs import load_run_data, open_device

    backend = open_device(args.device)
    data = load_run_data(args)
    net = _network(args, backend, resumed)
    run = {"options": run_record(args, RECORD), "outputs": outputs_record(args, RECORD.outputs)}
    writer = (CheckpointWriter(Path(args.checkpoint), run, "--checkpoint")
              if args.checkpoint else None)
    metrics = None
    if args.metrics:
        header = (continued_header(args.metrics, run["options"], net.seed)
                  if resumed is not None else None) or _metrics_header(args, backend, net)
        metrics = MetricsFile(args.metrics, header)
    trained = Trained(net, args.evaluate, metrics)
    _write_metrics(trained)  # the header (and a resumed run's epochs) before the first epoch
    started = time.perf_counter()
    _fit(args, trained, data, resumed, writer)
    trained.seconds = time.perf_counter() - started
    return trained


def _network(args: argparse.Namespace, backend: Any,
             resumed: Optional["Checkpoint"]) -> "Network":
    """The network to train (the checkpoint's, its epochs so far in its history), and
    its lines; ``args.seed`` becomes its seed."""
    from ..networks.network import Network
    from ..networks.resuming import network_from

    if resumed is not None:
        net = network_from(resumed, backend)
        net.history = resumed.history  # its epochs so far, in the outputs from the start
        going_on = ", ".join(f"--{name} {getattr(args, name)}" for name in RECORD.outputs
                             if getattr(args, name) is not None)
        print(f"resuming {args.resume}: {resumed.epochs_done} of {args.epochs} epochs done"
              + (f"; writing {going_on}" if going_on else ""), flush=True)
    else:
        net = Network(args.sizes, **network_keywords(args), device=backend, seed=args.seed)
    args.seed = net.seed
    extra = "".join(f", {name}={getattr(args, name)}" for name in ("momentum", "l1")
                    if getattr(args, name))  # chapter 3's, where used
    neurons = "" if args.activation == "sigmoid" else f"{args.activation} hidden, "
    print(f"network: {net.sizes}, {neurons}{args.cost} cost, {args.init} init, "
          f"{args.dtype}, eta={args.eta}, m={args.batch_size}, lmbda={args.lmbda}{extra}, "
          f"epochs={args.epochs}, seed={net.seed}", flush=True)
    return net


def _metrics_header(args: argparse.Namespace, backend: Any, net: "Network") -> dict[str, Any]:
    """The metrics file's first record: what ran, where, with which versions."""
    settings = {**run_record(args, RECORD), "epochs": args.epochs}
    return {**metrics_header(settings, backend.description, args.evaluate), "seed": net.seed}


def _write_metrics(trained: Trained) -> None:
    """The header and every epoch so far (a resumed run's earlier epochs from its
    checkpoint): the file always reads as one run. A write error is raised."""
    if trained.metrics is not None and trained.outputs.ok("--metrics"):
        trained.metrics.write(trained.net.history.records)


def _fit(args: argparse.Namespace, trained: Trained, data: "RunData",
         resumed: Optional["Checkpoint"], writer: Optional["CheckpointWriter"]) -> None:
    """Train; an interruption, divergence or a write error stops it (its line, and
    ``trained.stopped`` says which), keeping the completed epochs."""
    from ..io.outputs import WriteError
    from ..training.divergence import DivergenceError
    from ..training.progress import epochs_done
    from ..training.signals import exit_status
    from .outputs import stopped_by

    net = trained.net
    try:
        _sgd(args, net, data, resumed, writer, _on_epoch(trained, resumed))
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (signals.Terminated)
        done = len(net.history.records)
        print(f"\n{stopped_by(exc)} with {epochs_done(done, args.epochs)}; keeping "
              f"{'them' if done else 'nothing'}", file=sys.stderr, flush=True)
        trained.status, trained.stopped = exit_status(exc), "interrupted"
    except DivergenceError as exc:
        print(f"gpunet: error: {exc}", file=sys.stderr, flush=True)
        trained.status, trained.stopped = 1, "diverged"
    except WriteError as exc:  # the checkpoint or the metrics: the rest is still written
        trained.outputs.note(exc, exc.option, f"; stopping with "
                             f"{epochs_done(len(net.history.records), args.epochs)}")
        trained.status, trained.stopped = 1, "write error"


def _on_epoch(trained: Trained, resumed: Optional["Checkpoint"]) -> Callable[[Any], None]:
    """The callback after each epoch: the metrics file, the engine's line (as the first
    epoch ends: the engine is chosen as training starts) and the epoch's line."""
    from ..engines import engine_note

    first_epoch = resumed.epochs_done if resumed is not None else 0

    def on_epoch(record: dict[str, Any]) -> None:
        _write_metrics(trained)
        if record["epoch"] == first_epoch:
            engine = trained.net.history.engine
            print(f"engine: {engine} ({engine_note(engine)})", flush=True)
        print(_epoch_line(record, trained.evaluate), flush=True)

    return on_epoch


def _sgd(args: argparse.Namespace, net: "Network", data: "RunData",
         resumed: Optional["Checkpoint"], writer: Optional["CheckpointWriter"],
         on_epoch: Callable[[Any], None]) -> None:
    """``Network.SGD`` with the options, or the checkpointed run continued."""
    from ..networks.resuming import continue_network

    common: dict[str, Any] = {"checkpoint": writer, "verbose": False, "callback": on_epoch,
                              "progress": not args.quiet}
    if resumed is not None:
        continue_network(resumed, net, data.training, data.evaluation, epochs=args.epochs,
                         **common)
    else:
        net.SGD(data.training, args.epochs, args.batch_size, args.eta, lmbda=args.lmbda,
                evaluation_data=data.evaluation, monitor_evaluation_accuracy=True,
                keep_best=bool(args.save_best), **loop_keywords(args), **common)


def _epoch_line(record: dict[str, Any], name: str) -> str:
    """The book's ``Epoch j: k / n`` line, with the epoch's time and monitored extras."""
    extra = "".join(f", {label} {record[key]:.4f}"
                    for key, label in (("training_cost", "training_cost"),
                                       ("evaluation_cost", f"{name}_cost")) if key in record)
    if "training_correct" in record:
        extra += f", training {record['training_correct']} / {record['training_total']}"
    if "eta" in record:  # --eta-schedule: the η this epoch trained with
        extra += f", eta {record['eta']:g}"
    return (f"Epoch {record['epoch']}: {record['evaluation_correct']} / "
            f"{record['evaluation_total']}  ({record['train_seconds']:.2f} s{extra})")


# ------------------------------------------------------------------ report
def report(args: argparse.Namespace, trained: Trained) -> int:
    """The summary; ``--save``, ``--metrics`` and ``--plot`` for the completed epochs,
    each on its own (one that fails is one line, and the others are still written); the
    checkpoint's line. The exit status."""
    from ..training.progress import epochs_done

    outputs, records = trained.outputs, trained.net.history.records
    if trained.stopped and trained.metrics is not None:
        outputs.write("--metrics", lambda: _write_metrics(trained))  # the completed epochs
    if records:
        best = max(records, key=lambda r: r["evaluation_correct"])
        total = best["evaluation_total"]
        print(f"best: {best['evaluation_correct']} / {total} "
              f"({100.0 * best['evaluation_correct'] / total:.2f}%) with "
              f"{epochs_done(best['epoch'] + 1, args.epochs)}; "
              f"final {records[-1]['evaluation_correct']} / {total}; "
              f"{trained.seconds:.1f} s in all", flush=True)
    _stopped_early(args, trained)
    _save(args, trained)
    _save_best(args, trained)
    if args.metrics not in (None, STDOUT) and outputs.ok("--metrics"):
        print(f"wrote metrics to {args.metrics}")
    if args.plot and records:
        outputs.write("--plot", lambda: _plot(args, trained))
    _checkpoint_lines(args, trained)
    return trained.status or (1 if outputs.failed else 0)


def _stopped_early(args: argparse.Namespace, trained: Trained) -> None:
    """The line of a run that early stopping or the schedule ended before --epochs."""
    from ..training.progress import epochs_done

    records = trained.net.history.records
    if trained.stopped or not records or len(records) >= args.epochs:
        return
    best = trained.net.history.best_epoch
    since_best = records[-1]["epoch"] - (-1 if best is None else best)
    why = (f"no better {args.evaluate} accuracy in {args.early_stopping_n} epochs "
           "(--early-stop)" if args.early_stopping_n and since_best >= args.early_stopping_n
           else f"eta fell to {args.eta_floor:g} of its start (--eta-schedule)")
    print(f"stopped with {epochs_done(len(records), args.epochs)}: {why}", flush=True)


def _save_best(args: argparse.Namespace, trained: Trained) -> None:
    """``--save-best``: the network as of its best epoch by the evaluated accuracy
    (kept on the device while it trained: ``keep_best``)."""
    from ..training.progress import epochs_done

    history = trained.net.history
    epoch = history.best_epoch
    if not args.save_best:
        return
    if epoch is None or history.best_parameters is None:
        print(f"no epoch beat 0 correct; {args.save_best} not written", flush=True)
        return

    def save() -> None:
        trained.net.save_best(args.save_best, option="--save-best")
        record = next(r for r in history.records if r["epoch"] == epoch)
        print(f"saved the best network (with {epochs_done(epoch + 1, args.epochs)}: "
              f"{record['evaluation_correct']} / {record['evaluation_total']}) to "
              f"{args.save_best}", flush=True)

    trained.outputs.write("--save-best", save)


def _save(args: argparse.Namespace, trained: Trained) -> None:
    """``--save``: the network as of its last completed epoch (none: not written)."""
    from ..training.progress import epochs_done

    if not args.save:
        return
    done = len(trained.net.history.records)
    if not done and trained.stopped:
        print(f"{epochs_done(0, args.epochs)}; {args.save} not written", flush=True)
        return

    def save() -> None:
        trained.net.save(args.save, option="--save")
        print(f"saved network to {args.save}"
              + (f" ({epochs_done(done, args.epochs)})" if trained.stopped else ""),
              flush=True)

    trained.outputs.write("--save", save)


def _plot(args: argparse.Namespace, trained: Trained) -> None:
    from ..reports.plotting import plot_learning_curves

    plot_learning_curves([(f"seed {trained.net.seed}", trained.net.history, trained.evaluate)],
                         args.plot, option="--plot")
    print(f"wrote learning curves to {args.plot}")


def _checkpoint_lines(args: argparse.Namespace, trained: Trained) -> None:
    """What the checkpoint holds and how to go on (or how to be able to next time)."""
    from ..training.progress import epochs_done

    done = epochs_done(len(trained.net.history.records), args.epochs)
    if args.checkpoint and trained.outputs.ok("--checkpoint"):
        if trained.stopped == "diverged":
            print(f"checkpoint {args.checkpoint} holds {done}, the last finite ones "
                  "(a resumed run keeps its settings and would diverge again: start a new "
                  "run with a smaller --eta or --lmbda)", file=sys.stderr)
        elif trained.stopped:
            print(f"checkpoint {args.checkpoint} holds {done}; continue with: "
                  f"gpunet train --resume {shlex.quote(args.checkpoint)}", file=sys.stderr)
        else:
            print(f"checkpoint written to {args.checkpoint} (continue or extend with: "
                  f"gpunet train --resume {shlex.quote(args.checkpoint)} --epochs N)")
    elif trained.stopped == "interrupted":
        print("to be able to continue an interrupted run, train with --checkpoint PATH",
              file=sys.stderr)
