"""PNG plots of the studies (needs the ``plot`` extra: matplotlib).

Each plot shows the seeds' mean with its 95% t-interval (error bars or a band) and, where
the runs spread into clusters, every seed as a dot; see
:mod:`gpunet.book.studies_analysis` for the numbers. Imports the analysis, never the
runner (:mod:`gpunet.book.studies` imports this module).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import matplotlib

matplotlib.use("Agg")  # files only, no screen needed
import matplotlib.pyplot as plt  # noqa: E402

from .intervals import Interval, t_interval
from .plots import _save
from .studies_analysis import COSTS, SMALL, Setting

COLOURS = {"quadratic": "tab:blue", "cross-entropy": "tab:red"}


def _bars(ax: Any, xs: list[float], intervals: list[Optional[Interval]], **kw: Any) -> None:
    pts = [(x, i) for x, i in zip(xs, intervals) if i is not None]
    if pts:
        ax.errorbar([x for x, _ in pts], [i.mean for _, i in pts],
                    yerr=[i.half or 0.0 for _, i in pts], capsize=3, marker="o", **kw)


def _seeds(ax: Any, x: float, values: list[float], colour: str) -> None:
    """Every seed's value at ``x``, as small dots."""
    if values:
        ax.scatter([x] * len(values), values, s=6, color=colour, alpha=0.4)


def _curve(ax: Any, s: Setting, label: str, colour: Optional[str] = None) -> None:
    """Test accuracy per evaluation epoch: the mean and its 95% band."""
    if not s.found:
        return
    per_epoch = [t_interval([v[i] for v in s.test.values()]) for i in range(len(s.epochs))]
    mean = [i.mean for i in per_epoch]
    half = [i.half or 0.0 for i in per_epoch]
    line, = ax.plot(s.epochs, mean, marker=".", label=label, color=colour)
    ax.fill_between(s.epochs, [m - h for m, h in zip(mean, half)],
                    [m + h for m, h in zip(mean, half)], alpha=0.2, color=line.get_color())


def plot_studies(analysis: dict[str, Any], directory: Path) -> dict[str, str]:
    """Write every study's plot into ``directory``; {key: path relative to the report}."""
    directory.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    for size, entry in analysis["cost"].items():
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
        for c in COSTS:
            grid = entry["grid"][c]
            etas = sorted(grid)
            _bars(left, etas, [grid[e].interval(grid[e].final("validation")) for e in etas],
                  label=c, color=COLOURS[c])
            for e in etas:
                _seeds(left, e, list(grid[e].final("validation").values()), COLOURS[c])
            chosen = entry["chosen"][c]
            if chosen is not None:
                _curve(right, grid[chosen], f"{c}, η = {chosen:g}", COLOURS[c])
        left.set_xscale("log")
        left.set_xlabel("η")
        left.set_ylabel("final validation accuracy (%)")
        left.set_title(f"{list(size)}: choosing η on validation (dots: seeds)")
        right.set_xlabel("epoch")
        right.set_ylabel("test accuracy (%)")
        right.set_title("each cost at its chosen η (test set)")
        for ax in (left, right):
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small", loc="lower right")
        name = "cost" + "-".join(str(n) for n in size[1:-1])
        images[name] = _save(fig, directory / f"{name}.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    for c, curve in analysis["eta"]["curve"].items():
        etas = sorted(curve)
        _bars(ax, etas, [curve[e].interval(curve[e].final()) for e in etas], label=c,
              color=COLOURS[c])
        for e in etas:
            _seeds(ax, e, list(curve[e].final().values()), COLOURS[c])
    ax.set_xscale("log")
    ax.set_xlabel("η")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title("Accuracy over η, [784, 30, 10] (dots: seeds; bars: 95% t-interval)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    images["eta"] = _save(fig, directory / "eta.png")

    if analysis["hidden"]:
        rows = [r for r in analysis["hidden"] if r["label"] == "book's η"]
        fig, ax = plt.subplots(figsize=(7, 4))
        for r in rows:
            small = analysis["cost"][SMALL]["grid"][r["cost"]][r["etas"][0]]
            other = [v for k, v in analysis["cost"].items() if k != SMALL][0]
            large = other["grid"][r["cost"]][r["etas"][1]]
            shift = 0.0 if r["cost"] == "quadratic" else 2.5
            for seed, a in small.final().items():
                b = large.final().get(seed)
                if b is not None:
                    ax.plot([shift, shift + 1], [a, b], color=COLOURS[r["cost"]], alpha=0.5,
                            marker="o")
        ax.set_xticks([0, 1, 2.5, 3.5], ["quadratic\n30", "quadratic\n100",
                                         "cross-entropy\n30", "cross-entropy\n100"])
        ax.set_ylabel("final test accuracy (%)")
        ax.set_title("30 against 100 hidden neurons at the book's η (a line per seed)")
        ax.grid(alpha=0.3)
        images["hidden"] = _save(fig, directory / "hidden.png")

    if analysis["best_of_three"]:
        fig, ax = plt.subplots(figsize=(8, 4))
        for i, h in enumerate(analysis["best_of_three"]):
            s = analysis["cost"][h["size"]]["grid"][h["cost"]][h["eta"]]
            ax.scatter([i] * s.found, list(s.peak().values()), s=14, color="grey",
                       label="a run's best epoch" if i == 0 else None)
            ax.scatter([i], [h["peak"].mean], marker="_", s=400, color="black",
                       label="mean run" if i == 0 else None)
            ax.scatter([i], [h["peak"].best_of_three], marker="^", color="tab:green",
                       label="expected best of 3" if i == 0 else None)
            ax.scatter([i], [h["book"]], marker="*", s=90, color="tab:red",
                       label="the book" if i == 0 else None)
        ax.set_xticks(range(len(analysis["best_of_three"])),
                      [f"{h['name']}\n{list(h['size'])}" for h in analysis["best_of_three"]],
                      fontsize="small")
        ax.set_ylabel("test accuracy, best epoch (%)")
        ax.set_title("Best of three against the mean run")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        images["best_of_three"] = _save(fig, directory / "best_of_three.png")

    init = analysis["init"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, colour in (("large", "tab:purple"), ("default", "tab:green")):
        _curve(left, init[name], f"{name} init", colour)
    left.set_xlabel("epoch")
    left.set_ylabel("test accuracy (%)")
    left.set_title("Initialization ([784, 30, 10], cross-entropy, η = 0.5)")
    for key, colour in (("small", "tab:orange"), ("full", "tab:blue")):
        entry = analysis["lambda"][key]
        lms = sorted(entry["settings"])
        _bars(right, lms, [entry["settings"][lm].interval(entry["settings"][lm].final())
                           for lm in lms], label=f"{entry['n']:,} training images",
              color=colour)
    right.set_xscale("symlog", linthresh=0.1)
    right.set_xlabel("λ")
    right.set_ylabel("final test accuracy (%)")
    right.set_title("L2 regularization")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="lower right")
    images["network2"] = _save(fig, directory / "network2.png")
    return images
