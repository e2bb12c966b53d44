"""``gpunet sweep``: train a grid of η × λ × seeds at once, in stacks, here or on Ray.

Every ``train`` option, where ``--eta`` and ``--lmbda`` take comma lists and
``--seeds`` takes seeds and ranges (``0-9``). Chapter 3's learning-rate comparison
("How to choose a neural network's hyper-parameters?") is::

    gpunet sweep --cost cross-entropy --eta 0.025,0.25,2.5 --seeds 0-2 --plot eta.png

Around the sweep, what ``gpunet train`` gives one run: ``--checkpoint`` (one file for
the whole sweep, written after every epoch) and ``--resume`` that ends with exactly the
rows and networks of a sweep never stopped, Ctrl-C or SIGTERM that keeps every
network's completed epochs, outputs checked before any work, a progress line on a
terminal, and a ``--metrics`` file that starts with the sweep's settings.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .options import add_long_run_options, add_training_options
from .train import (_data_source, _no_lock, _record_explicit_options, adopt_options,
                    adopt_outputs, continued_header, outputs_record)

# The sweep's settings, as the command line spells them, kept in its checkpoint.
RUN_OPTIONS = ("sizes", "batch_size", "eta", "lmbda", "seeds", "cost", "init", "dtype",
               "stack_engine", "data", "limit", "evaluate", "monitor_training_cost",
               "monitor_training_accuracy", "monitor_evaluation_cost", "epochs", "stack")
# The files the sweep writes besides its checkpoint, kept in it: --resume goes on
# writing them unless the user names others.
RUN_OUTPUTS = ("metrics", "save_dir", "plot")
# Options a resumed sweep may change; every other explicit option must match.
RESUME_MAY_CHANGE = {"device", "workers", "metrics", "save_dir", "plot", "checkpoint",
                     "resume", "quiet", "overwrite", "engine"}


def add_parser(sub: Any, formatter: type) -> None:
    sweep = sub.add_parser(
        "sweep",
        help="train every combination of --eta, --lmbda and --seeds at once, in stacks",
        description="Train a grid of networks (every --eta × every --lmbda × every seed) "
        "on MNIST, many networks per stack (stacked matrices, one SGD step for the whole "
        "stack), on this machine or on a Ray cluster. Each network's run is exactly the "
        "run `gpunet train` makes with the same settings and seed.",
        formatter_class=formatter,
        conflict_handler="resolve",  # --eta, --lmbda, --seed(s), --engine replaced below
    )
    add_training_options(sweep)
    sweep.add_argument("--eta", default="3.0", metavar="LIST",
                       help="learning rates η, comma-separated, e.g. 0.025,0.25,2.5")
    sweep.add_argument("--lmbda", default="0.0", metavar="LIST",
                       help="L2 regularization parameters λ, comma-separated")
    sweep.add_argument("--seeds", "--seed", dest="seeds", default="0", metavar="LIST",
                       help="seeds, comma-separated, with ranges: 0-9 or 0-2,10")
    sweep.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="local: train the stacks on this machine; ray: send each stack "
                       "to a Ray cluster as a task (needs the 'ray' extra)")
    sweep.add_argument("--stack", type=int, default=None, metavar="N",
                       help="at most N networks per stack (default: what fits in a quarter "
                       "of the device's free memory, at most 256)")
    sweep.add_argument("--stack-engine", choices=["auto", "eager", "cpu", "fused"],
                       default="auto",
                       help="how a stack's steps run: auto takes the fused CUDA kernel "
                       "(one launch per epoch for the whole stack) where it fits, on NumPy "
                       "cpu (the CPU engine's step, batched), else eager (batched matrix "
                       "products): what `gpunet train` picks for one network")
    sweep.add_argument("--workers", type=int, default=None, metavar="N",
                       help="processes the stacked CPU engine splits a stack's networks "
                       "over, this one included (default: one per CPU for a stack large "
                       "enough to pay for starting them; results do not depend on it)")
    sweep.add_argument("--metrics", metavar="PATH", default=None,
                       help="write one JSON Lines row per run per epoch")
    sweep.add_argument("--save-dir", metavar="DIR", default=None,
                       help="save every trained network (network2.py JSON) into DIR")
    sweep.add_argument("--plot", metavar="PATH.png", default=None,
                       help="overlay every run's accuracy curve (needs the 'plot' extra)")
    sweep.add_argument("--checkpoint", metavar="PATH", default=None,
                       help="after every epoch, write the sweep's state (the finished "
                       "stacks' results, the running stack's networks) for --resume")
    sweep.add_argument("--resume", metavar="PATH", default=None,
                       help="continue the sweep in checkpoint PATH with its own settings; "
                       "it goes on writing PATH unless --checkpoint says otherwise")
    add_long_run_options(sweep)
    sweep.add_argument("--ray-address", metavar="ADDRESS", default=None,
                       help="join this Ray cluster (e.g. auto); default: start a local Ray "
                       "instance and shut it down at the end")
    sweep.add_argument("--ray-runtime-env", metavar="JSON", default=None,
                       help="Ray runtime_env for the workers, e.g. to ship or install gpunet")
    sweep.add_argument("--ray-cpus-per-task", type=int, default=None, metavar="N",
                       help="CPUs (BLAS threads) each Ray task asks for (default: as many "
                       "as NumPy uses here, so rows match --engine local exactly)")
    _record_explicit_options(sweep)
    sweep.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..model.arguments import check_positive_int
    from .. import sweep as sw
    from ..training.checkpoint import load_checkpoint
    from ..io.outputs import check_new_checkpoint, check_outputs, hold_lock
    from .recorded import check_sweep_record

    explicit: set[str] = getattr(args, "_explicit", set())
    saved = None
    if (args.checkpoint or args.resume) and args.engine != "local":
        raise ValueError("--checkpoint and --resume need --engine local.")
    if args.resume:
        saved = load_checkpoint(args.resume)
        options = check_sweep_record(saved)  # every recorded field, and that they agree
        adopt_options(args, args.resume, options, explicit, RUN_OPTIONS, RESUME_MAY_CHANGE,
                      "--device, --workers, --data (the same data, moved), --metrics, "
                      "--save-dir, --plot and --checkpoint")
        adopt_outputs(args, saved, explicit, "sweep")
        if args.checkpoint is None:
            args.checkpoint = args.resume

    # Check the cheap things before loading anything.
    epochs = check_positive_int(args.epochs, "--epochs")
    batch_size = check_positive_int(args.batch_size, "--batch-size")
    runs = sw.expand_grid(sw.parse_floats(args.eta, "--eta"),
                          sw.parse_floats(args.lmbda, "--lmbda"), sw.parse_seeds(args.seeds))
    if args.limit is not None:
        check_positive_int(args.limit, "--limit")
    if args.stack is not None:
        check_positive_int(args.stack, "--stack")
    if args.workers is not None:
        check_positive_int(args.workers, "--workers")
    check_outputs({"--metrics": args.metrics, "--plot": args.plot,
                   "--checkpoint": args.checkpoint},
                  inputs={"--resume": args.resume}, directories={"--save-dir": args.save_dir},
                  may_share=[("--resume", "--checkpoint")])
    if args.checkpoint:
        check_new_checkpoint(args.checkpoint, "--checkpoint", args.resume, args.overwrite)
    if args.save_dir is not None:
        _check_network_files(runs, Path(args.save_dir))
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError('--plot needs matplotlib: pip install -e ".[plot]" '
                             "(the 'plot' extra).") from None
    with hold_lock(args.checkpoint, "--checkpoint") if args.checkpoint else _no_lock():
        return _sweep(args, runs, epochs, batch_size, saved)


def _sweep(args: argparse.Namespace, runs: list[Any], epochs: int, batch_size: int,
           resumed: Any) -> int:
    """The sweep itself, its outputs checked (and the checkpoint locked) by :func:`run`."""
    from ..model.arguments import check_positive_int
    from ..backends import BackendUnavailable, get_backend
    from .. import sweep as sw
    from ..training.divergence import likely_cause
    from ..model.arguments import check_mini_batch
    from ..model.memory import check_network_fits
    from ..io.mnist import load_mnist
    from ..io.outputs import atomic_write_text
    from ..training.signals import exit_status
    from .train import metrics_header

    runtime_env = None
    if args.engine == "ray":
        from ..sweep.ray import import_ray, parse_runtime_env

        import_ray()
        runtime_env = parse_runtime_env(args.ray_runtime_env)
        if args.ray_cpus_per_task is not None:
            check_positive_int(args.ray_cpus_per_task, "--ray-cpus-per-task")
    elif args.ray_address or args.ray_runtime_env or args.ray_cpus_per_task:
        raise ValueError("--ray-address, --ray-runtime-env and --ray-cpus-per-task need "
                         "--engine ray.")
    save_dir = Path(args.save_dir) if args.save_dir else None

    settings = sw.SweepSettings(
        sizes=tuple(args.sizes), cost=args.cost, init=args.init, dtype=args.dtype,
        epochs=epochs, mini_batch_size=batch_size, device=args.device,
        engine=args.stack_engine, evaluate=args.evaluate,
        monitor_training_cost=args.monitor_training_cost,
        monitor_training_accuracy=args.monitor_training_accuracy,
        monitor_evaluation_cost=args.monitor_evaluation_cost, workers=args.workers)
    if args.engine == "local":
        backend = get_backend(args.device)  # checks the device here, before any work
        note = f"  [{backend.selection_note}]" if backend.selection_note else ""
        print(f"device: {backend.description}{note}", flush=True)
    elif args.stack is None:
        # The workers' devices are not visible from here: size stacks by this machine's
        # device where it has one like theirs, else by its memory.
        try:
            backend = get_backend(args.device)
        except BackendUnavailable:
            backend = get_backend("cpu")
    stack_size = args.stack or sw.default_stack_size(backend, settings.sizes, args.dtype,
                                                     batch_size)
    args.stack = stack_size  # kept in the checkpoint: a resumed sweep has the same stacks
    stacks = sw.split_into_stacks(runs, stack_size)
    check_network_fits(settings.sizes, args.dtype, batch_size, max(map(len, stacks)),
                       "--sizes", backend if args.engine == "local" else None,
                       examples=args.limit, batch_what="--batch-size")
    if save_dir is not None:
        try:
            save_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"--save-dir {save_dir}: cannot create it "
                             f"({exc.strerror or exc}).") from None

    data = load_mnist(args.data)
    training = data.training
    if args.limit is not None:
        if args.limit > len(training[1]):
            raise ValueError(
                f"--limit {args.limit} exceeds the {len(training[1])} training images.")
        training = (training[0][: args.limit], training[1][: args.limit])
    check_mini_batch(args.batch_size, len(training[1]), "--batch-size")
    evaluation = data.test if args.evaluate == "test" else data.validation
    print(f"data: {data.describe()}; training on {len(training[1])}, "
          f"evaluating on {len(evaluation[1])} {args.evaluate} images", flush=True)
    print(f"sweep: {len(runs)} networks {list(settings.sizes)}, {args.cost} cost, "
          f"{args.init} init, {args.dtype}, m={batch_size}, epochs={epochs}; "
          f"{len(stacks)} stack(s) of at most {max(map(len, stacks))} on {args.engine}",
          flush=True)

    options = {name: getattr(args, name) for name in RUN_OPTIONS}
    options["data"] = _data_source(args.data)
    checkpoint = (sw.SweepCheckpoint(Path(args.checkpoint), options,
                                     outputs_record(args, RUN_OUTPUTS))
                  if args.checkpoint else None)
    if resumed is not None:
        print(f"resuming {args.resume}: stack {resumed.run['sweep']['stack'] + 1} of "
              f"{len(stacks)} at {resumed.epochs_done} of {epochs} epochs", flush=True)
    header = continued_header(args.metrics, options) if (args.metrics and resumed) else None
    if header is None:
        header = metrics_header(options, backend.description if args.engine == "local"
                                else args.engine, args.evaluate)
        header = {**header, "sweep": {"networks": len(runs), "stacks": len(stacks)}}
        if resumed is not None:
            header["resumed_from"] = {"stack": resumed.run["sweep"]["stack"],
                                      "epoch": resumed.epochs_done}
    rows: list[dict[str, Any]] = []
    diverged: dict[Any, int] = {}
    failed: dict[str, Exception] = {}  # option -> its write error (not written again)
    interrupted: Optional[BaseException] = None
    saved = 0
    started = time.perf_counter()
    if args.engine == "ray":
        from ..sweep.ray import run_ray

        results = run_ray(settings, stacks, training, evaluation, address=args.ray_address,
                          runtime_env=runtime_env, cpus_per_task=args.ray_cpus_per_task)
    else:
        results = sw.run_local(settings, stacks, training, evaluation,
                               checkpoint=checkpoint, resume=resumed, progress=not args.quiet)

    def write_metrics() -> None:
        atomic_write_text(args.metrics, "".join(
            json.dumps(r) + "\n" for r in [header, *sw.ordered_rows(runs, rows)]),
            "--metrics")

    if args.metrics:
        _write(write_metrics, "--metrics", failed)  # the header, and the path written

    try:
        for i, result in results:
            if args.engine == "ray":  # the epochs' lines, now that the stack is back
                for j in range(epochs):
                    print(sw.epoch_line(i, len(stacks),
                                        [r for r in result.rows if r["epoch"] == j]),
                          flush=True)
            rows.extend(result.rows)
            diverged.update(result.diverged)
            if save_dir is not None and result.epochs_done:
                # each network's file on its own: one that fails (one line) keeps
                # neither the others nor the later stacks from being written
                saved += len(sw.save_networks(settings, result, save_dir,
                                              lambda exc: _failed(exc, "--save-dir", failed)))
            if args.metrics:
                _write(write_metrics, "--metrics", failed)
            if result.interrupted is not None:
                interrupted = result.interrupted
                break
    except KeyboardInterrupt as exc:  # between stacks, or in the Ray engine
        interrupted = exc
        if args.metrics:
            _write(write_metrics, "--metrics", failed)
    wall = time.perf_counter() - started

    if interrupted is not None:
        print(f"\n{'terminated (SIGTERM)' if exit_status(interrupted) != 130 else 'interrupted'}"
              f"; keeping every network's completed epochs", file=sys.stderr, flush=True)
    print(sw.summary_text(sw.summarize(runs, rows), args.evaluate))
    print(f"{len(runs)} networks in {wall:.1f} s")
    for run, epoch in diverged.items():
        print(f"diverged: eta={sw.exact_number(run.eta)} lmbda={sw.exact_number(run.lmbda)} "
              f"seed={run.seed} in epoch "
              f"{epoch} ({likely_cause(run.eta, run.lmbda, len(training[1]))}); its rows "
              "say diverged from there on", file=sys.stderr)
    if args.metrics and "--metrics" not in failed:
        print(f"wrote metrics to {args.metrics}")
    if save_dir is not None and saved:
        print(f"saved {saved} networks to {save_dir}"
              + (f" ({len(diverged)} as of the last finite epoch)" if diverged else "")
              + (" (each as of its last completed epoch)" if interrupted else ""))
    if args.plot and rows:
        def plot() -> None:
            sw.plot_curves(runs, rows, args.evaluate, Path(args.plot))
            print(f"wrote plot to {args.plot}")

        _write(plot, "--plot", failed)
    if checkpoint is not None and "--checkpoint" not in failed:
        if interrupted is not None:
            print(f"checkpoint {args.checkpoint} holds every network's completed epochs; "
                  f"continue with: gpunet sweep --resume {shlex.quote(args.checkpoint)}",
                  file=sys.stderr)
        else:
            print(f"checkpoint written to {args.checkpoint}")
    elif interrupted is not None:
        print("to be able to continue an interrupted sweep, run it with --checkpoint PATH",
              file=sys.stderr)
    if interrupted is not None:
        return exit_status(interrupted)
    if failed or (diverged and len(diverged) == len(runs)):
        return 1
    return 0


def _failed(exc: Exception, option: str, failed: dict[str, Exception]) -> None:
    """A write error of ``option``: one line, noted in ``failed`` (the first kept)."""
    failed.setdefault(option, exc)
    print(f"gpunet: error: {exc}", file=sys.stderr, flush=True)


def _write(write: Callable[[], Any], option: str, failed: dict[str, Exception]) -> bool:
    """Run ``write()``; a write error is one line and noted in ``failed`` (the sweep
    goes on, its other outputs are still written). Whether it was written."""
    from ..io.outputs import WriteError

    if option in failed:
        return False
    try:
        write()
    except WriteError as exc:
        failed[option] = exc
        print(f"gpunet: error: {exc}", file=sys.stderr, flush=True)
        return False
    return True


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
