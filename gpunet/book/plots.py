"""PNG plots for the reproduction report (needs the ``plot`` extra: matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no screen needed
import matplotlib.pyplot as plt  # noqa: E402


def plot_all(results: dict[str, Any], directory: Path) -> dict[str, str]:
    """Write every plot into ``directory``; return {key: path relative to the report}."""
    images = {}
    for name, exp in results["experiments"].items():
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for run in exp["runs"]:
            pct = [100.0 * a / run["total"] for a in run["accuracy"]]
            ax.plot(range(len(pct)), pct, marker=".", label=f"seed {run['seed']}")
        ax.set_title(exp["config"]["title"])
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
        images[name] = _save(fig, directory / f"{name}.png")
    toy = results.get("toy")
    if toy:
        for key, field, label in (("toy_cost", "costs", "cost"),
                                  ("toy_output", "outputs", "output")):
            fig, ax = plt.subplots(figsize=(6, 3.6))
            for name, run in toy.items():
                ax.plot(run[field], label=name)
            ax.set_title(f"Toy neuron: {label} per epoch (x = 1, target 0)")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="x-small")
            images[key] = _save(fig, directory / f"{key}.png")
    return images


def _save(fig: Any, path: Path) -> str:  # a matplotlib Figure
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)  # atomic, like every file gpunet writes
    return f"{path.parent.name}/{path.name}"
