"""Validate ``gpunet find-eta`` (issue 28, point 4): on the book's networks and costs,
does the η it proposes train as well as the book's hand-picked η, over seeds?

For each configuration below: run ``gpunet find-eta`` on the full training set (50,000
MNIST images, the command itself, in this process, with ``--json``), then train one
:class:`gpunet.NetworkStack` holding, for each seed, a network at the proposal and one at
the book's η (and any other η the book names for it): the same seeds, so each pair starts
from the same parameters and sees the same shuffles, and the comparison is paired. Every
network is scored on the 10,000 validation images after each epoch. Writes a markdown
report (the findings' reasoning, then final and best validation accuracy, mean ± sd over
the seeds, and the paired difference) and, with ``--json``, the raw numbers.

    nice .venv/bin/python scripts/validate_eta_finder.py --seeds 5 --epochs 30 \\
        --out docs/eta_finder_validation.md --json /tmp/eta_finder_validation.json

CPU only (``--device cpu``); about 2 minutes a [784, 30, 10] configuration and 8 for
[784, 100, 10] on two shared cores (5 seeds, 30 epochs).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gpunet
from gpunet.cli import main as gpunet_main
from gpunet.io.outputs import atomic_write_text

CONFIGS: list[dict[str, Any]] = [
    {"name": "ch3-l2-30", "sizes": [784, 30, 10], "cost": "cross-entropy", "init": "large",
     "lmbda": 5.0, "book_eta": 0.5, "also": [],
     "book": "chapter 3, \"Regularization\": η = 0.5, λ = 5.0, 30 epochs, 96.49% (test)"},
    {"name": "ch1", "sizes": [784, 30, 10], "cost": "quadratic", "init": "large",
     "lmbda": 0.0, "book_eta": 3.0, "also": [],
     "book": "chapter 1: η = 3.0, 30 epochs, 95.42% (test, best of 3)"},
    {"name": "ch3-hyper", "sizes": [784, 30, 10], "cost": "cross-entropy", "init": "default",
     "lmbda": 5.0, "book_eta": 0.5, "also": [0.25],
     "book": "chapter 3, \"How to choose a neural network's hyper-parameters?\": threshold "
             "0.5, so 0.25 by the prescription; the book trained at 0.5"},
    {"name": "ch3-l2-100", "sizes": [784, 100, 10], "cost": "cross-entropy", "init": "large",
     "lmbda": 5.0, "book_eta": 0.5, "also": [],
     "book": "chapter 3, \"Regularization\": η = 0.5, λ = 5.0, 30 epochs, 97.92% (validation)"},
]


def find(config: dict[str, Any], data_path: str, epochs: int) -> tuple[dict[str, Any], str]:
    """``gpunet find-eta`` for ``config`` (its JSON record, and what it printed)."""
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "finding.json"
        argv = ["find-eta", "--device", "cpu", "--data", data_path, "--seed", "0",
                "--sizes", ",".join(map(str, config["sizes"])), "--cost", config["cost"],
                "--init", config["init"], "--lmbda", f"{config['lmbda']:g}",
                "--epochs", str(epochs), "--json", str(record)]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            status = gpunet_main(argv)
        if not record.exists():
            raise SystemExit(f"gpunet {' '.join(argv)} failed (status {status}):\n"
                             f"{printed.getvalue()}")
        finding = json.loads(record.read_text())
    finding["argv"] = ["gpunet", *argv[:-2]]
    return finding, printed.getvalue()


def train(config: dict[str, Any], etas: list[float], data: Any, seeds: int,
          epochs: int) -> dict[float, list[list[int]]]:
    """Each η's validation accuracy per epoch, one list per seed (one stacked run)."""
    stack = gpunet.NetworkStack(config["sizes"], [s for _ in etas for s in range(seeds)],
                                cost=config["cost"], init=config["init"], device="cpu")
    histories = stack.SGD(data.training, epochs, 10, [e for e in etas for _ in range(seeds)],
                          lmbda=config["lmbda"], evaluation_data=data.validation,
                          monitor_evaluation_accuracy=True, verbose=False, progress=False)
    return {eta: [list(h.evaluation_accuracy) for h in histories[i * seeds:(i + 1) * seeds]]
            for i, eta in enumerate(etas)}


def summary(runs: list[list[int]], total: int) -> dict[str, float]:
    final = [100 * r[-1] / total for r in runs]
    best = [100 * max(r) / total for r in runs]
    return {"final_mean": statistics.fmean(final), "final_sd": _sd(final),
            "best_mean": statistics.fmean(best), "best_sd": _sd(best)}


def paired(mine: list[list[int]], book: list[list[int]], total: int) -> dict[str, float]:
    """Proposal minus book, seed by seed (the same seed: the same start and shuffles)."""
    final = [100 * (a[-1] - b[-1]) / total for a, b in zip(mine, book)]
    best = [100 * (max(a) - max(b)) / total for a, b in zip(mine, book)]
    return {"final_mean": statistics.fmean(final), "final_sd": _sd(final),
            "best_mean": statistics.fmean(best), "best_sd": _sd(best)}


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def verdict(diff: dict[str, float], n: int) -> str:
    """"as well" when the paired mean difference of the best accuracy is not below
    -2 standard errors (and not below -0.2 points); else "worse"."""
    se = diff["best_sd"] / math.sqrt(n) if n > 1 else 0.0
    return ("as well" if diff["best_mean"] >= -max(2 * se, 0.2) else "worse") + (
        " (better)" if diff["best_mean"] > max(2 * se, 0.2) else "")


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = gpunet.load_mnist(args.data)
    total = len(data.validation[1])
    out: dict[str, Any] = {"seeds": args.seeds, "epochs": args.epochs,
                           "find_epochs": args.find_epochs, "data": data.describe(),
                           "configs": []}
    for config in CONFIGS:
        if args.only and config["name"] not in args.only:
            continue
        started = time.perf_counter()
        finding, printed = find(config, args.data, args.find_epochs)
        proposal = finding["proposal"]
        extra = [float(e.split("=", 1)[1]) for e in args.extra
                 if e.split("=", 1)[0] == config["name"]]
        etas = list(dict.fromkeys(e for e in [proposal, config["book_eta"], *config["also"],
                                              *extra] if e is not None))
        print(f"{config['name']}: proposal {proposal}, training {etas} x {args.seeds} seeds",
              file=sys.stderr, flush=True)
        accuracy = train(config, etas, data, args.seeds, args.epochs)
        entry = {**config, "finding": finding, "printed": printed, "etas": etas,
                 "accuracy": {str(e): a for e, a in accuracy.items()},
                 "summary": {str(e): summary(a, total) for e, a in accuracy.items()},
                 "seconds": time.perf_counter() - started}
        if proposal is not None and proposal != config["book_eta"]:
            entry["paired"] = paired(accuracy[proposal], accuracy[config["book_eta"]], total)
            entry["verdict"] = verdict(entry["paired"], args.seeds)
        elif proposal is not None:
            entry["verdict"] = "as well (the proposal is the book's η: the same runs)"
        else:
            entry["verdict"] = "no proposal"
        out["configs"].append(entry)
        print(f"{config['name']}: {entry['verdict']} ({entry['seconds']:.0f} s)",
              file=sys.stderr, flush=True)
    return out


def markdown(results: dict[str, Any], command: str) -> str:
    lines = ["# η finder validation (issue 28, point 4)", "",
             "Does the η that `gpunet find-eta` proposes train as well as the book's "
             "hand-picked η? Each finding is the command on the full training set "
             f"({results['data']}), {results['find_epochs']} epochs, seed 0, default range "
             "(0.001 to 1000, 4 a decade); then, for each η, "
             f"{results['seeds']} seeds (0 to {results['seeds'] - 1}) trained "
             f"{results['epochs']} epochs (m = 10) in one stack, scored on the 10,000 "
             "validation images after each epoch. A seed's networks start alike and see "
             "the same shuffles at every η, so the difference is paired.", "",
             f"Made by `{command}` (CPU, NumPy, float32).", "",
             "| config | network | book's η | proposal (threshold) | η | final % (mean ± sd) "
             "| best % (mean ± sd) | proposal − book, points (paired, mean ± sd) | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in results["configs"]:
        f = c["finding"]
        net = f"{c['sizes']}, {c['cost']}, {c['init']} init, λ = {c['lmbda']:g}"
        found = f"{f['proposal']} ({f['threshold']})"
        for i, eta in enumerate(c["etas"]):
            s = c["summary"][str(eta)]
            d = c.get("paired")
            diff = (f"final {d['final_mean']:+.2f} ± {d['final_sd']:.2f}, best "
                    f"{d['best_mean']:+.2f} ± {d['best_sd']:.2f}" if d and i == 0 else "")
            tag = ("proposal" if eta == f["proposal"] else "") + (
                " = book" if eta == c["book_eta"] and eta == f["proposal"] else
                "book" if eta == c["book_eta"] else "" if eta == f["proposal"] else
                "book's other" if eta in c["also"] else "extra")
            lines.append(
                f"| {c['name'] if i == 0 else ''} | {net if i == 0 else ''} | "
                f"{c['book_eta'] if i == 0 else ''} | "
                f"{found if i == 0 else ''} | {eta:g} ({tag}) | "
                f"{s['final_mean']:.2f} ± {s['final_sd']:.2f} | "
                f"{s['best_mean']:.2f} ± {s['best_sd']:.2f} | {diff} | "
                f"{c['verdict'] if i == 0 else ''} |")
    lines += ["", "\"as well\": the paired mean difference of the best accuracy is not below "
              "−max(2 standard errors, 0.2 points).", "", "## The findings", ""]
    for c in results["configs"]:
        lines += [f"### {c['name']}: {c['book']}", "", "```", " ".join(c["finding"]["argv"]),
                  c["printed"].rstrip(), "```", ""]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/work/shared/data/mnist")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--find-epochs", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=ETA",
                        help="also train configuration NAME at ETA (e.g. ch1=8.9)")
    parser.add_argument("--out", default=None, help="the markdown report")
    parser.add_argument("--json", default=None, help="the raw numbers")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(args)
    results["seconds"] = time.perf_counter() - started
    command = "python scripts/validate_eta_finder.py " + " ".join(sys.argv[1:])
    text = markdown(results, command.strip())
    if args.out:
        atomic_write_text(args.out, text)
    else:
        print(text)
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=1))
    print(f"done in {results['seconds']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
