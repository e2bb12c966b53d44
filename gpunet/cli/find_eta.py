"""``gpunet find-eta``: choose the learning rate η by the book's heuristic.

Chapter 3 ("How to choose a neural network's hyper-parameters?", "Learning rate"):
find the threshold η at which the training cost stops falling in the first few epochs
(it oscillates or rises instead), then take a value about a factor of two below it.
Every candidate of a geometric range (``--eta-min`` to ``--eta-max``,
``--per-decade``) is one network of one stacked run from the same seed, trained
``--epochs`` epochs (default 3); the rule (:data:`gpunet.sweep.eta_finder.RULE`):

* a candidate's cost **falls steadily** when every measurement (before training, then
  after each epoch) is finite and lower than the one before;
* the **threshold** is the largest η up to which every candidate's cost falls steadily;
* the **proposal** is half the threshold.

The command prints the rule, a line per candidate (its costs and the verdict), the
threshold and the proposal, and last the ``gpunet train`` command that trains with the
proposal. ``--json PATH`` writes the record (atomically; an existing file is replaced
only with ``--overwrite``), ``--plot PATH`` the cost curves (the ``plot`` extra). A
range that does not bracket the threshold says which way to move it, and the command
exits with status 1. The model and data options are ``gpunet train``'s own
(:mod:`gpunet.cli.options`), chapter 3's ``--momentum``, ``--l1`` (L1 regularization)
and ``--dropout`` among them, checked as ``gpunet train`` checks them before any work:
the candidates train the model the proposal is for (with ``--dropout``, each cost is
measured on the whole network, as the book evaluates one trained with dropout), and the
printed command spells each of them out where given.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import time
from typing import Any, Optional

from .options import add_options, check_techniques, explicit_options, path

MODEL = ("device", "sizes", "epochs", "batch_size", "cost", "init", "activation", "lmbda",
         "momentum", "l1", "dropout", "seed", "dtype", "engine", "data", "limit")
"""The options shared with ``gpunet train`` (declared in :mod:`gpunet.cli.options`), in
``--help``'s order."""

IN_TRAIN = ("sizes", "cost", "init", "lmbda", "batch_size")
"""What the printed ``gpunet train`` command always spells out (the model the proposal
was found for)."""

IF_GIVEN = ("activation", "momentum", "l1", "dropout", "dtype", "device", "data", "limit",
            "engine")
"""What it spells out where the user gave it."""

TECHNIQUES = ("momentum", "l1", "dropout")
"""Chapter 3's options the candidates train with, checked before any work as ``SGD``
checks its keywords of the same names (:func:`gpunet.cli.options.check_techniques`)."""


def add_parser(sub: Any, formatter: type) -> None:
    from ..sweep.eta_finder import EPOCHS, HIGH, LOW, PER_DECADE, RULE

    parser = sub.add_parser(
        "find-eta",
        help="find the learning rate by the book's heuristic (every candidate in one run)",
        description="Find the learning rate η by chapter 3's heuristic: train the model "
        "at a geometric range of η (one stacked run, the same seed for all) for a few "
        f"epochs, and apply the rule: {RULE}. The candidates train with the model's "
        "options, --momentum, --l1 and --dropout included (with --dropout the costs are "
        "measured on the whole network, as the book evaluates it). Prints the reasoning "
        "and the gpunet train command for the proposal.",
        formatter_class=formatter,
    )
    add_options(parser, "find-eta", MODEL)
    parser.add_argument("--eta-min", type=float, default=LOW, metavar="ETA",
                        help="the smallest candidate η")
    parser.add_argument("--eta-max", type=float, default=HIGH, metavar="ETA",
                        help="the largest candidate η")
    parser.add_argument("--per-decade", type=int, default=PER_DECADE, metavar="N",
                        help="candidates per factor of 10 (each 10^(1/N) times the one "
                        "before)")
    parser.add_argument("--json", metavar="PATH", type=path, default=None,
                        help="write the finding (candidates, costs, verdicts, threshold, "
                        "proposal, the rule, the train command) as JSON")
    parser.add_argument("--plot", metavar="PATH", type=path, default=None,
                        help="draw each candidate's training cost per epoch into PATH (PNG; "
                        "needs the plot extra, matplotlib)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing --json and --plot files (without it, an "
                        "existing file is an error before any work)")
    parser.set_defaults(run=run, epochs=EPOCHS, resume=None)


def run(args: argparse.Namespace) -> int:
    from ..io.outputs import atomic_write_text
    from ..sweep.eta_finder import find_eta, plot_finding
    from .inputs import open_device

    etas = prepare(args)
    backend = open_device(args.device)
    training = _training_data(args)
    seed = _seed(args)
    print(f"candidates: {len(etas)} networks, eta {etas[0]:g} to {etas[-1]:g} "
          f"({args.per_decade} a decade), {args.epochs} epochs each, seed {seed}; "
          "one stacked run", flush=True)
    started = time.perf_counter()
    finding = find_eta(training, args.sizes, cost=args.cost, init=args.init,
                       activation=args.activation, dtype=args.dtype, device=backend, seed=seed,
                       mini_batch_size=args.batch_size, lmbda=args.lmbda,
                       momentum=args.momentum, l1=args.l1, dropout=args.dropout,
                       epochs=args.epochs,
                       etas=etas, engine=args.engine, callback=_on_epoch(args, started))
    command = train_command(args, finding.proposal)
    print(f"rule: {finding.as_json()['rule']}")
    print("\n".join(finding.reasoning))
    if args.json:
        record = {**finding.as_json(), "train_command": command}
        atomic_write_text(args.json, json.dumps(record, indent=1) + "\n", "--json")
        print(f"wrote --json {args.json}")
    if args.plot:
        plot_finding(finding, args.plot, "--plot")
        print(f"wrote --plot {args.plot}")
    if command is None:
        print("no proposal: move the range as said above and run gpunet find-eta again")
        return 1
    print(f"train with: {command}", flush=True)
    return 0


def prepare(args: argparse.Namespace) -> list[float]:
    """Every cheap check before any work: the counts, λ, chapter 3's options, the range
    (its candidates are returned), the sizes against the data, and the outputs."""
    from ..model.arguments import check_lmbda
    from ..sweep.eta_finder import geometric_etas
    from .inputs import resolve_sizes
    from .settings import check_counts

    check_counts(args, ("epochs", "batch_size", "limit"))
    check_lmbda(args.lmbda)
    check_techniques(args, TECHNIQUES)
    etas = geometric_etas(args.eta_min, args.eta_max, args.per_decade)
    resolve_sizes(args)  # --sizes auto,30,10 against the data's width
    check_outputs(args)
    return etas


def check_outputs(args: argparse.Namespace) -> None:
    """``--json`` and ``--plot`` can be written, are not the data nor one file, and an
    existing one is replaced only with ``--overwrite``."""
    from ..io.outputs import check_outputs as check_paths
    from .outputs import data_inputs

    outputs = {"--json": args.json, "--plot": args.plot}
    check_paths(outputs, inputs=data_inputs(args))
    for option, path in outputs.items():
        if path is not None and os.path.lexists(path) and not args.overwrite:
            raise ValueError(f"{option} {path} already exists; choose another path, or give "
                             "--overwrite to replace it.")
    if args.plot:
        from ..reports.plotting import check_plot_output

        check_plot_output(args.plot, "--plot")


def _training_data(args: argparse.Namespace) -> tuple[Any, Any]:
    """The training set of ``--data`` (its first ``--limit`` examples), with its
    ``data:`` line; ``--batch-size`` checked against it."""
    from ..model.arguments import check_mini_batch
    from .inputs import load_data

    data = load_data(args)
    X, y = data.training
    if args.limit is not None:
        if args.limit > len(y):
            raise ValueError(f"--limit {args.limit} exceeds the {len(y)} training images.")
        X, y = X[: args.limit], y[: args.limit]
    check_mini_batch(args.batch_size, len(y), "--batch-size")
    print(f"data: {data.describe()}; the candidates train on {len(y)} training images",
          flush=True)
    return X, y


def _seed(args: argparse.Namespace) -> int:
    """``--seed``, or a fresh one (printed on the candidates' line)."""
    from ..networks.network import seed_from_numpy

    return int(args.seed) if args.seed is not None else seed_from_numpy()


def _on_epoch(args: argparse.Namespace, started: float) -> Any:
    """The stack's callback: one line per epoch."""
    from ..training.progress import epochs_done

    def on_epoch(records: list[dict[str, Any]]) -> None:
        print(f"{epochs_done(records[0]['epoch'] + 1, args.epochs)} "
              f"({time.perf_counter() - started:.1f} s)", flush=True)

    return on_epoch


def train_command(args: argparse.Namespace, eta: Optional[float]) -> Optional[str]:
    """The ``gpunet train`` command for the model the finder searched, at ``eta``
    (``None`` without a proposal): the model's options always, the device, data,
    precision and engine where the user gave them."""
    if eta is None:
        return None
    given = explicit_options(args)
    words = ["gpunet", "train"]
    for name in (*IN_TRAIN, *(n for n in IF_GIVEN if n in given)):
        value = getattr(args, name)
        if value is None:
            continue
        text = (",".join(map(str, value)) if isinstance(value, list)
                else f"{value:g}" if isinstance(value, float) else str(value))
        words += [f"--{name.replace('_', '-')}", text]
    words += ["--eta", f"{eta:g}"]
    return " ".join(shlex.quote(w) for w in words)
