"""``gpunet train``: train a network on MNIST; the defaults are the book's chapter-1 run.

``gpunet train`` with no options is chapter 1's run: [784, 30, 10], quadratic cost,
N(0, 1) initialisation, η = 3.0, mini-batches of 10, 30 epochs, evaluated on the
10,000 test images after each epoch, on the best available device.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from .options import add_training_options


def add_parser(sub: Any, formatter: type) -> None:
    train = sub.add_parser(
        "train",
        help="train a network on MNIST (defaults: the book's chapter-1 run)",
        description="Train a sigmoid network on MNIST by mini-batch SGD. The defaults "
        "are the book's chapter-1 run (about 95% test accuracy after 30 epochs).",
        formatter_class=formatter,
    )
    add_training_options(train)
    train.add_argument("--save", metavar="PATH", default=None,
                       help="write the trained network (network2.py JSON)")
    train.add_argument("--metrics", metavar="PATH", default=None,
                       help="write per-epoch metrics as JSON Lines")
    train.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..arguments import check_eta, check_lmbda, check_positive_int
    from ..backends import get_backend
    from ..mnist import load_mnist
    from ..network import Network
    from ..persistence import atomic_write_text

    # Check the cheap things before loading anything.
    epochs = check_positive_int(args.epochs, "--epochs")
    batch_size = check_positive_int(args.batch_size, "--batch-size")
    eta = check_eta(args.eta)
    lmbda = check_lmbda(args.lmbda)
    if args.limit is not None:
        check_positive_int(args.limit, "--limit")

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
    evaluation = data.test if args.evaluate == "test" else data.validation
    print(f"data: {data.describe()}; training on {len(training[1])}, "
          f"evaluating on {len(evaluation[1])} {args.evaluate} images", flush=True)

    net = Network(args.sizes, cost=args.cost, init=args.init, dtype=args.dtype,
                  device=backend, seed=args.seed)
    print(f"network: {net.sizes}, {args.cost} cost, {args.init} init, "
          f"{args.dtype}, eta={eta}, m={batch_size}, lmbda={lmbda}, "
          f"epochs={epochs}, seed={net.seed}", flush=True)

    records: list[dict[str, Any]] = []
    name = args.evaluate

    def on_epoch(record: dict[str, Any]) -> None:
        row = {"epoch": record["epoch"],
               f"{name}_correct": record["evaluation_correct"],
               f"{name}_total": record["evaluation_total"],
               "train_seconds": record["train_seconds"]}
        for key in ("training_cost", "training_correct", "training_total"):
            if key in record:
                row[key] = record[key]
        if "evaluation_cost" in record:
            row[f"{name}_cost"] = record["evaluation_cost"]
        records.append(row)
        extra = "".join(
            f", {k} {row[k]:.4f}" for k in ("training_cost", f"{name}_cost") if k in row
        )
        if "training_correct" in row:
            extra += f", training {row['training_correct']} / {row['training_total']}"
        print(f"Epoch {row['epoch']}: {row[f'{name}_correct']} / {row[f'{name}_total']}"
              f"  ({row['train_seconds']:.2f} s{extra})", flush=True)
        if args.metrics:
            atomic_write_text(args.metrics, "".join(json.dumps(r) + "\n" for r in records))

    started = time.perf_counter()
    net.SGD(training, epochs, batch_size, eta, lmbda=lmbda, evaluation_data=evaluation,
            monitor_evaluation_accuracy=True,
            monitor_evaluation_cost=args.monitor_evaluation_cost,
            monitor_training_cost=args.monitor_training_cost,
            monitor_training_accuracy=args.monitor_training_accuracy,
            verbose=False, callback=on_epoch, engine=args.engine)
    wall = time.perf_counter() - started

    best = max(records, key=lambda r: r[f"{name}_correct"])
    total = best[f"{name}_total"]
    print(f"best: {best[f'{name}_correct']} / {total} "
          f"({100.0 * best[f'{name}_correct'] / total:.2f}%) at epoch {best['epoch']}; "
          f"final {records[-1][f'{name}_correct']} / {total}; {wall:.1f} s in all")
    if args.save:
        net.save(args.save)
        print(f"saved network to {args.save}")
    if args.metrics:
        print(f"wrote metrics to {args.metrics}")
    return 0


