"""``gpunet train``: train a network on MNIST; the defaults are the book's chapter-1 run.

``gpunet train`` with no options is chapter 1's run: [784, 30, 10], quadratic cost,
N(0, 1) initialisation, η = 3.0, mini-batches of 10, 30 epochs, evaluated on the
10,000 test images after each epoch, on the best available device.

Around the book's loop, what a user's time asks for: ``--checkpoint`` after every epoch
and ``--resume`` that continues bit for bit, Ctrl-C that keeps the completed epochs
(exit 130), outputs checked writable before the first epoch, a progress line on a
terminal, ``--plot`` for the learning curves, and a ``--metrics`` file that starts with
the run's settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from .options import add_long_run_options, add_training_options

# Options a resumed run may change; every other explicit option must match the checkpoint.
RESUME_MAY_CHANGE = {"epochs", "device", "save", "metrics", "checkpoint", "resume", "plot",
                     "quiet", "overwrite"}
# The run's settings, as the CLI spells them, kept in the checkpoint for --resume.
RUN_OPTIONS = ("sizes", "batch_size", "eta", "cost", "init", "lmbda", "seed", "dtype",
               "engine", "data", "limit", "evaluate", "monitor_training_cost",
               "monitor_training_accuracy", "monitor_evaluation_cost")
# The files the run writes besides its checkpoint, kept in it too: --resume goes on
# writing them unless the user names others.
RUN_OUTPUTS = ("save", "metrics", "plot")


def add_parser(sub: Any, formatter: type) -> None:
    train = sub.add_parser(
        "train",
        help="train a network on MNIST (defaults: the book's chapter-1 run)",
        description="Train a sigmoid network on MNIST by mini-batch SGD. The defaults "
        "are the book's chapter-1 run (about 95% test accuracy after 30 epochs). "
        "Ctrl-C stops after keeping the completed epochs (--save, --checkpoint).",
        formatter_class=formatter,
    )
    add_training_options(train)
    train.add_argument("--save", metavar="PATH", default=None,
                       help="write the trained network (network2.py JSON)")
    train.add_argument("--metrics", metavar="PATH", default=None,
                       help="write a header (settings, device, versions) and per-epoch "
                       "metrics as JSON Lines; a resumed run appends")
    train.add_argument("--checkpoint", metavar="PATH", default=None,
                       help="after every epoch, write what --resume needs to continue "
                       "the run exactly")
    train.add_argument("--resume", metavar="PATH", default=None,
                       help="continue the run in checkpoint PATH until --epochs in all "
                       "(default: the run's own); its settings and data are the run's, "
                       "and it goes on writing PATH unless --checkpoint says otherwise")
    train.add_argument("--plot", metavar="PATH", default=None,
                       help="draw the learning curves into PATH (PNG; needs the plot "
                       "extra, matplotlib)")
    add_long_run_options(train)
    _record_explicit_options(train)
    train.set_defaults(run=run)


def _record_explicit_options(parser: argparse.ArgumentParser) -> None:
    """Make every option note its ``dest`` in ``namespace._explicit`` when given.

    ``--resume`` must tell an option the user typed (which must agree with the
    checkpoint) from a default (which the checkpoint overrides), even where the two
    values are equal.
    """
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        base = type(action)

        def call(self: argparse.Action, parser: argparse.ArgumentParser,
                 namespace: argparse.Namespace, values: Any, option_string: Any = None,
                 _base: type = base) -> None:
            explicit: set[str] = getattr(namespace, "_explicit", set())
            explicit.add(self.dest)
            setattr(namespace, "_explicit", explicit)
            _base.__call__(self, parser, namespace, values, option_string)

        action.__class__ = type(base.__name__, (base,), {"__call__": call})


def run(args: argparse.Namespace) -> int:
    from ..model.arguments import check_eta, check_lmbda, check_positive_int
    from ..training.checkpoint import load_checkpoint
    from ..model.memory import check_network_fits
    from ..io.outputs import check_new_checkpoint, check_outputs, hold_lock
    from .recorded import check_train_record

    explicit: set[str] = getattr(args, "_explicit", set())
    saved = None
    if args.resume:
        saved = load_checkpoint(args.resume)
        check_train_record(saved)  # every recorded option, and that they agree
        _adopt_checkpoint(args, saved, explicit)
        if args.checkpoint is None:
            args.checkpoint = args.resume

    # Check the cheap things before loading anything.
    epochs = check_positive_int(args.epochs, "--epochs")
    check_positive_int(args.batch_size, "--batch-size")
    check_eta(args.eta)
    check_lmbda(args.lmbda)
    if args.limit is not None:
        check_positive_int(args.limit, "--limit")
    if saved is not None and epochs < saved.epochs_done:
        raise ValueError(f"--epochs {epochs}: {args.resume} already has {saved.epochs_done} "
                         "epochs; give at least that many, or more to extend the run.")
    check_outputs({"--save": args.save, "--checkpoint": args.checkpoint,
                   "--metrics": args.metrics, "--plot": args.plot},
                  inputs={"--resume": args.resume},
                  may_share=[("--resume", "--checkpoint")])
    if args.checkpoint:
        check_new_checkpoint(args.checkpoint, "--checkpoint", args.resume, args.overwrite)
    if args.plot:
        from ..reports.plotting import require_matplotlib

        require_matplotlib("--plot")
    check_network_fits(args.sizes, args.dtype, args.batch_size, what="--sizes",
                       examples=args.limit, batch_what="--batch-size")
    with hold_lock(args.checkpoint, "--checkpoint") if args.checkpoint else _no_lock():
        return _train(args, saved, epochs)


def _no_lock() -> Any:
    import contextlib

    return contextlib.nullcontext()


def _train(args: argparse.Namespace, saved: Any, epochs: int) -> int:
    """The run itself, its outputs checked (and the checkpoint locked) by :func:`run`."""
    from ..engines import engine_note
    from ..model.arguments import check_mini_batch
    from ..backends import get_backend
    from ..training.checkpoint import CheckpointWriter
    from ..training.divergence import DivergenceError
    from ..io.mnist import load_mnist
    from ..networks.network import Network
    from ..networks.resuming import continue_network, network_from
    from ..io.outputs import WriteError, atomic_write_text
    from ..training.signals import exit_status

    backend = get_backend(args.device)
    note = f"  [{backend.selection_note}]" if backend.selection_note else ""
    print(f"device: {backend.description}{note}", flush=True)

    data = load_mnist(args.data)
    training = data.training
    if args.limit is not None:
        if args.limit > len(training[1]):
            raise ValueError(
                f"--limit {args.limit} exceeds the {len(training[1])} training images."
            )
        training = (training[0][: args.limit], training[1][: args.limit])
    check_mini_batch(args.batch_size, len(training[1]), "--batch-size")
    evaluation = data.test if args.evaluate == "test" else data.validation
    print(f"data: {data.describe()}; training on {len(training[1])}, "
          f"evaluating on {len(evaluation[1])} {args.evaluate} images", flush=True)

    if saved is not None:
        net = network_from(saved, backend)
        net.history = saved.history  # its epochs so far, in the outputs from the start
        going_on = ", ".join(f"--{name} {getattr(args, name)}" for name in RUN_OUTPUTS
                             if getattr(args, name) is not None)
        print(f"resuming {args.resume}: {saved.epochs_done} of {epochs} epochs done"
              + (f"; writing {going_on}" if going_on else ""), flush=True)
    else:
        net = Network(args.sizes, cost=args.cost, init=args.init, dtype=args.dtype,
                      device=backend, seed=args.seed)
    args.seed = net.seed
    print(f"network: {net.sizes}, {args.cost} cost, {args.init} init, "
          f"{args.dtype}, eta={args.eta}, m={args.batch_size}, lmbda={args.lmbda}, "
          f"epochs={epochs}, seed={net.seed}", flush=True)

    options = {name: getattr(args, name) for name in RUN_OPTIONS}
    options["data"] = _data_source(args.data)
    run_record = {"options": options, "outputs": outputs_record(args, RUN_OUTPUTS)}
    writer = (CheckpointWriter(Path(args.checkpoint), run_record, "--checkpoint")
              if args.checkpoint else None)
    failed: dict[str, WriteError] = {}  # option -> its write error: not written again
    header = None
    if args.metrics:
        header = (continued_header(args.metrics, options, net.seed) if saved is not None
                  else None) or _metrics_header(options, epochs, backend, net)
    name = args.evaluate
    first_epoch = saved.epochs_done if saved is not None else 0

    def write_metrics() -> None:
        """The header and every epoch so far (a resumed run's earlier epochs from its
        checkpoint): the file always reads as one run."""
        if args.metrics and "--metrics" not in failed:
            atomic_write_text(args.metrics, "".join(
                json.dumps(r) + "\n" for r in [header, *net.history.records]), "--metrics")

    write_metrics()  # the header (and a resumed run's epochs) before the first epoch

    def on_epoch(record: dict[str, Any]) -> None:
        write_metrics()
        if record["epoch"] == first_epoch:  # the engine is chosen as training starts
            print(f"engine: {net.history.engine} ({engine_note(net.history.engine)})",
                  flush=True)
        print(_epoch_line(record, name), flush=True)

    started = time.perf_counter()
    progress = not args.quiet
    status, stopped = 0, ""
    try:
        if saved is not None:
            continue_network(saved, net, training, evaluation, epochs=epochs,
                             checkpoint=writer, verbose=False, callback=on_epoch,
                             progress=progress)
        else:
            net.SGD(training, epochs, args.batch_size, args.eta, lmbda=args.lmbda,
                    evaluation_data=evaluation, monitor_evaluation_accuracy=True,
                    monitor_evaluation_cost=args.monitor_evaluation_cost,
                    monitor_training_cost=args.monitor_training_cost,
                    monitor_training_accuracy=args.monitor_training_accuracy,
                    verbose=False, callback=on_epoch, engine=args.engine,
                    checkpoint=writer, progress=progress)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (gpunet.training.signals.Terminated)
        done = len(net.history.records)
        what = "terminated (SIGTERM)" if exit_status(exc) != 130 else "interrupted"
        print(f"\n{what} during epoch {done}; keeping the {done} completed "
              f"epoch{'s' if done != 1 else ''}", file=sys.stderr, flush=True)
        status, stopped = exit_status(exc), "interrupted"
    except DivergenceError as exc:
        print(f"gpunet: error: {exc}", file=sys.stderr, flush=True)
        status, stopped = 1, "diverged"
    except WriteError as exc:  # the checkpoint or the metrics: the rest is still written
        print(f"gpunet: error: {exc}; stopping, keeping the "
              f"{len(net.history.records)} completed epochs", file=sys.stderr, flush=True)
        failed[exc.option] = exc
        status, stopped = 1, "write error"
    if stopped:
        _write_quietly(write_metrics, "--metrics", failed)  # the completed epochs
    _finish(args, net, name, time.perf_counter() - started, stopped, failed)
    if failed:
        status = status or 1
    done = len(net.history.records)
    if args.checkpoint and "--checkpoint" not in failed:
        if stopped == "diverged":
            print(f"checkpoint {args.checkpoint} holds epoch {done}, the last finite one "
                  "(a resumed run keeps its settings and would diverge again: start a new "
                  "run with a smaller --eta or --lmbda)", file=sys.stderr)
        elif stopped:
            print(f"checkpoint {args.checkpoint} holds epoch {done}; continue with: "
                  f"gpunet train --resume {shlex.quote(args.checkpoint)}", file=sys.stderr)
        else:
            print(f"checkpoint written to {args.checkpoint} (continue or extend with: "
                  f"gpunet train --resume {shlex.quote(args.checkpoint)} --epochs N)")
    elif stopped == "interrupted":
        print("to be able to continue an interrupted run, train with --checkpoint PATH",
              file=sys.stderr)
    return status


def _write_quietly(write: Any, option: str, failed: dict[str, Any]) -> None:
    """Run ``write()``; a write error is printed (one line) and noted in ``failed``."""
    from ..io.outputs import WriteError

    if option in failed:
        return
    try:
        write()
    except WriteError as exc:
        failed[option] = exc
        print(f"gpunet: error: {exc}", file=sys.stderr, flush=True)


def _finish(args: argparse.Namespace, net: Any, name: str, wall: float, stopped: str,
            failed: dict[str, Any]) -> None:
    """The summary, ``--save``, ``--metrics`` and ``--plot`` for the completed epochs.

    Each output is written on its own: one that fails (a full disk) is one error line,
    noted in ``failed``, and the others are still written.
    """

    records = net.history.records
    if records:
        best = max(records, key=lambda r: r["evaluation_correct"])
        total = best["evaluation_total"]
        print(f"best: {best['evaluation_correct']} / {total} "
              f"({100.0 * best['evaluation_correct'] / total:.2f}%) at epoch {best['epoch']}; "
              f"final {records[-1]['evaluation_correct']} / {total}; {wall:.1f} s in all",
              flush=True)
    if args.save:
        if records or not stopped:
            def save() -> None:
                net.save(args.save, option="--save")
                print(f"saved network to {args.save}"
                      + (f" (as of epoch {len(records)})" if stopped else ""), flush=True)

            _write_quietly(save, "--save", failed)
        else:
            print(f"no epoch completed; {args.save} not written", flush=True)
    if args.metrics and "--metrics" not in failed:
        print(f"wrote metrics to {args.metrics}")
    if args.plot and records:
        from ..reports.plotting import plot_learning_curves

        def plot() -> None:
            plot_learning_curves([(f"seed {net.seed}", net.history, name)], args.plot,
                                 option="--plot")
            print(f"wrote learning curves to {args.plot}")

        _write_quietly(plot, "--plot", failed)


def _epoch_line(record: dict[str, Any], name: str) -> str:
    """The book's ``Epoch j: k / n`` line, with the epoch's time and monitored extras."""
    extra = "".join(f", {label} {record[key]:.4f}"
                    for key, label in (("training_cost", "training_cost"),
                                       ("evaluation_cost", f"{name}_cost")) if key in record)
    if "training_correct" in record:
        extra += f", training {record['training_correct']} / {record['training_total']}"
    return (f"Epoch {record['epoch']}: {record['evaluation_correct']} / "
            f"{record['evaluation_total']}  ({record['train_seconds']:.2f} s{extra})")


def _data_source(data: Optional[str]) -> Optional[str]:
    """``--data`` as an absolute path (``None``: the bundled MNIST)."""
    return None if data is None else str(Path(data).expanduser().resolve())


def _adopt_checkpoint(args: argparse.Namespace, saved: Any, explicit: set[str]) -> None:
    """Take the run's settings from ``saved``; an explicit option that differs is an error."""
    options = saved.run["options"]  # checked by recorded.check_train_record
    adopt_options(args, saved.path, options, explicit, RUN_OPTIONS, RESUME_MAY_CHANGE,
                  "--epochs, --device, --data (the same data, moved), --save, --metrics, "
                  "--checkpoint and --plot")
    if "epochs" not in explicit:
        args.epochs = saved.training["epochs"]
    adopt_outputs(args, saved, explicit, "train")


def outputs_record(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The run's outputs for its checkpoint: each option's file as an absolute path (a
    resumed run may start in another folder), ``None`` when not given."""
    return {name: None if getattr(args, name) is None
            else os.path.abspath(os.path.expanduser(getattr(args, name))) for name in names}


def adopt_outputs(args: argparse.Namespace, saved: Any, explicit: set[str],
                  command: str) -> None:
    """A resumed run goes on writing the outputs its checkpoint records (``--save``,
    ``--metrics``, ...; none in files written before runs kept them), except those the
    user names anew."""
    from .recorded import recorded_outputs

    for name, path in recorded_outputs(saved, command).items():
        if name not in explicit and path is not None:
            setattr(args, name, path)


def adopt_options(args: argparse.Namespace, path: Any, options: dict[str, Any],
                  explicit: set[str], run_options: Sequence[str], may_change: set[str],
                  changeable: str) -> None:
    """Set ``args``' ``run_options`` to a checkpointed run's ``options``: an option the
    user typed (``explicit``) that is not in ``may_change`` must agree with the run's
    (else one error naming both values and the ``changeable`` options); ``--data`` may
    name the run's data in a new place (its fingerprint is checked as training starts)."""
    moved_data = None
    if "data" in explicit and _data_source(args.data) != options["data"]:
        # The run's data moved (or is given another way): accepted when it is the same
        # data, which the run's fingerprint (size and labels) checks as training starts.
        moved_data = args.data
    elif options["data"] is not None and not Path(options["data"]).exists():
        raise ValueError(f"{path} trained on --data {options['data']}, which no longer "
                         "exists; if the data moved, give its new place with --data (it is "
                         "checked against the run's fingerprint).")
    for dest in sorted(explicit - may_change - {"data"}):
        if dest not in options:
            continue
        mine = getattr(args, dest)
        if mine != options[dest]:
            flag = "--" + dest.replace("_", "-")
            raise ValueError(
                f"{flag} {_show(getattr(args, dest))} contradicts {path}, whose run "
                f"has {flag} {_show(options[dest])}; leave {flag} out to resume (only "
                f"{changeable} may change).")
    for dest in run_options:
        setattr(args, dest, options[dest])
    if moved_data is not None:
        args.data = moved_data


def _show(value: Any) -> str:
    """An option's value as it is typed (``784,30,10`` for sizes)."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "(not given)" if value is None else str(value)


def _metrics_header(options: dict[str, Any], epochs: int, backend: Any,
                    net: Any) -> dict[str, Any]:
    """The metrics file's first record: what ran, where, with which versions."""
    header = metrics_header({**options, "epochs": epochs}, backend.description,
                            options["evaluate"])
    return {**header, "seed": net.seed}


MAY_DIFFER = ("epochs", "data")
"""Settings a resumed run's metrics header may differ in from the file's: a run may be
extended, and its data may have moved (its fingerprint is checked)."""


def continued_header(path: str, options: dict[str, Any],
                     seed: Optional[int] = None) -> Optional[dict[str, Any]]:
    """The header of the metrics file ``path`` a resumed run goes on writing: its
    first record when the file is this run's metrics (one run, the same settings but
    for :data:`MAY_DIFFER`), ``None`` when there is no file yet. A file that holds
    another run's metrics, several runs, or no metrics is a ``ValueError``: it is not
    replaced (the resumed run rewrites its file whole, every epoch once)."""
    from ..training.history import check_header, read_metrics_records

    if not os.path.lexists(path):
        return None
    problem = ""
    try:
        records = read_metrics_records(path)  # size-capped, a regular file, JSON Lines
        first = check_header(dict(records[0][1])) if records else {}
    except ValueError as exc:
        problem = f"it is not a readable metrics file ({exc})"
    else:
        settings = first.get("settings")
        starts = [r for _, r in records if "gpunet_metrics" in r
                  and not ({"resumed_from_epoch", "resumed_from"} & r.keys())]
        if not isinstance(settings, dict):
            problem = "it does not start with a gpunet metrics header"
        elif ({k: v for k, v in settings.items() if k not in MAY_DIFFER}
              != {k: v for k, v in options.items() if k not in MAY_DIFFER}
              or (seed is not None and first.get("seed", seed) != seed)):
            problem = "it holds another run's metrics (its header's settings differ)"
        elif len(starts) > 1:
            problem = f"it holds {len(starts)} runs' metrics"
    if problem:
        raise ValueError(f"--metrics {path}: a resumed run rewrites its metrics file with "
                         f"the run's epochs so far, but {problem}; give --metrics another "
                         "path.")
    return first


def metrics_header(settings: dict[str, Any], device: str, evaluate: str) -> dict[str, Any]:
    """A metrics file's header record (:mod:`gpunet.training.history`): the run's ``settings`` as
    the command line spells them, the device, which data ``evaluation_*`` is, versions,
    and when it started (``gpunet train`` and ``gpunet sweep`` write the same)."""
    import numpy as np

    from .._version import __version__
    from ..training.history import METRICS_FORMAT

    return {
        "gpunet_metrics": METRICS_FORMAT,
        "settings": settings,
        "device": device,
        "evaluation_data": evaluate,
        "versions": {"gpunet": __version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
