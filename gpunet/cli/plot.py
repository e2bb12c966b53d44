"""``gpunet plot``: learning curves from ``gpunet train --metrics`` files, overlaid."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any, formatter: type) -> None:
    plot = sub.add_parser(
        "plot",
        help="draw learning curves from --metrics files (needs matplotlib)",
        description="Draw the accuracy per epoch (and the costs, where monitored) of one "
        "or more runs written by gpunet train --metrics, overlaid with a legend.",
        formatter_class=formatter,
    )
    plot.add_argument("metrics", nargs="+", metavar="METRICS.jsonl",
                      help="metrics files from gpunet train --metrics or gpunet sweep "
                      "--metrics (one curve per run)")
    plot.add_argument("-o", "--output", metavar="PATH.png", required=True,
                      help="the PNG file to write")
    plot.add_argument("--label", action="append", default=None, metavar="TEXT",
                      help="legend label of each run, in order (default: file names)")
    plot.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..history import is_sweep_metrics, read_metrics, read_sweep_metrics
    from ..outputs import check_outputs
    from ..reports.plotting import check_records, plot_learning_curves, require_matplotlib

    require_matplotlib("gpunet plot")
    check_outputs({"--output": args.output},
                  inputs={f"METRICS.jsonl {path}": path for path in args.metrics})
    labels = args.label or []
    if len(labels) > len(args.metrics):
        raise ValueError(f"{len(labels)} --label values for {len(args.metrics)} files.")
    runs = []
    for i, path in enumerate(args.metrics):
        if is_sweep_metrics(path):  # gpunet sweep --metrics: one curve per run
            prefix = f"{labels[i]} " if i < len(labels) else ""
            for label, history in read_sweep_metrics(path):
                check_records(history.records, f"{path} ({label})")
                runs.append((prefix + label, history, "test"))
            continue
        metrics = read_metrics(path)
        if not metrics.history.records:
            raise ValueError(f"{path}: no epochs recorded yet.")
        check_records(metrics.history.records, str(path))
        label = labels[i] if i < len(labels) else Path(path).stem
        runs.append((label, metrics.history, metrics.evaluation_data))
    plot_learning_curves(runs, args.output, option="--output")
    print(f"wrote {args.output} ({len(runs)} run{'s' if len(runs) != 1 else ''})")
    return 0
