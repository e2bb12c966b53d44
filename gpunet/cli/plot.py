"""``gpunet plot``: learning curves from ``gpunet train --metrics`` and ``gpunet sweep
--metrics`` files, overlaid: every run in every file its own curve with its own label
(a file may hold several runs, :func:`gpunet.training.history.read_metrics_runs`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

from .options import path


def add_parser(sub: Any, formatter: type) -> None:
    plot = sub.add_parser(
        "plot",
        help="draw learning curves from --metrics files (needs matplotlib)",
        description="Draw the accuracy per epoch (and the costs, where monitored) of one "
        "or more runs written by gpunet train --metrics, overlaid with a legend.",
        formatter_class=formatter,
    )
    plot.add_argument("metrics", nargs="+", metavar="METRICS.jsonl", type=path,
                      help="metrics files from gpunet train --metrics or gpunet sweep "
                      "--metrics (one curve per run)")
    plot.add_argument("-o", "--output", metavar="PATH.png", type=path, required=True,
                      help="the PNG file to write")
    plot.add_argument("--label", action="append", default=None, metavar="TEXT",
                      help="legend label of each run, in order (default: file names)")
    plot.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..io.outputs import check_outputs
    from ..reports.plotting import check_plot_output, plot_learning_curves

    check_plot_output(args.output, "--output", "gpunet plot")
    check_outputs({"--output": args.output},
                  inputs={f"METRICS.jsonl {path}": path for path in args.metrics})
    labels = args.label or []
    if len(labels) > len(args.metrics):
        raise ValueError(f"{len(labels)} --label values for {len(args.metrics)} files.")
    runs = []
    for i, path in enumerate(args.metrics):
        runs.extend(curves(path, labels[i] if i < len(labels) else None))
    plot_learning_curves(runs, args.output, option="--output")
    print(f"wrote {args.output} ({len(runs)} run{'s' if len(runs) != 1 else ''})")
    return 0


def curves(path: str, label: Optional[str]) -> list[tuple[str, Any, str]]:
    """The curves of one metrics file: ``(label, history, evaluation data)`` for each
    run in it, each labelled apart. A train file's run is ``label`` (default: the file's
    name); several runs in one file are ``NAME run 1``, ``NAME run 2``, ... (with their
    seeds). A sweep's runs are labelled by their setting, after ``label``; several
    sweeps in one file by ``sweep 1:``, ``sweep 2:``, ..."""
    from ..training.history import is_sweep_metrics, read_metrics_runs, read_sweeps

    out: list[tuple[str, Any, str]] = []
    if is_sweep_metrics(path):  # gpunet sweep --metrics: one curve per network
        sweeps = read_sweeps(path)
        for s, sweep in enumerate(sweeps, 1):
            prefix = " ".join(p for p in (label, f"sweep {s}:" if len(sweeps) > 1 else "")
                              if p)
            out.extend(((f"{prefix} {name}" if prefix else name), history,
                        sweep.evaluation_data) for name, history in sweep.runs)
        return out
    runs = read_metrics_runs(path)
    name = label or Path(path).stem
    for k, metrics in enumerate(runs, 1):
        seed = metrics.header.get("seed")
        title = name if len(runs) == 1 else f"{name} run {k}" + (
            f" (seed {seed})" if seed is not None else "")
        out.append((title, metrics.history, metrics.evaluation_data))
    return out
