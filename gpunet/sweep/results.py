"""A sweep's rows: the epoch lines, the summary table, the saved networks and the
learning curves."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from ..training.progress import epochs_done
from .grid import CHAPTER3, SYMBOLS, Run, SweepSettings, exact_number

if TYPE_CHECKING:
    from .local import StackResult

TIMING_FIELDS = ("train_seconds",)
"""Row fields that measure time: the only ones allowed to differ between engines and
executors."""


KEYS = ("eta", "lmbda", "seed")
"""What names a sweep's networks where chapter 3's settings are unused
(:func:`gpunet.sweep.grid.run_keys`)."""


def epoch_key(evaluate: str, total: int, keys: Sequence[str] = KEYS) -> str:
    """The key to :func:`epoch_line`'s numbers, printed once before them."""
    return (f"key: best and worst {evaluate} accuracy of {total}, each with its "
            f"({', '.join(keys)})")


def epoch_line(i: int, count: int, rows: list[dict[str, Any]],
               epochs: Optional[int] = None, keys: Sequence[str] = KEYS) -> str:
    """One stack's epoch, readable at 80 columns whatever the stack's size: ``stack 1/2,
    4 of 30 epochs done: best 9311 (3, 0, 2), worst 7491 (0.5, 0, 0)``, each network
    named by its values of ``keys`` (:func:`epoch_key`); the diverged ones counted
    apart."""
    head = f"stack {i + 1}/{count}, {epochs_done(rows[0]['epoch'] + 1, epochs)}"
    alive = [r for r in rows if not (r.get("diverged") or r.get("stopped"))]
    ended = {flag: sum(1 for r in rows if r.get(flag)) for flag in ("stopped", "diverged")}
    tail = "".join(f"; {n} {flag}" for flag, n in ended.items() if n)
    if not alive:
        return f"{head}: every network diverged" + (tail if ended["stopped"] else "")

    def named(row: dict[str, Any]) -> str:
        return f"{row['evaluation_correct']} {Run(**row['run']).named(keys)}"

    best = max(alive, key=lambda r: r["evaluation_correct"])
    if len(alive) == 1:
        return f"{head}: {named(best)}{tail}"
    worst = min(alive, key=lambda r: r["evaluation_correct"])
    return f"{head}: best {named(best)}, worst {named(worst)}{tail}"


def ordered_rows(runs: Sequence[Run], rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in the grid's order (run, then epoch), whatever order the stacks finished in."""
    index = {r: i for i, r in enumerate(runs)}
    return sorted(rows, key=lambda r: (index[Run(**r["run"])], r["epoch"]))


def without_timing(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows less their timing fields: what two engines (or executors) must agree on
    exactly."""
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in rows]


def summarize(runs: Sequence[Run], rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per setting ``(η, λ, μ, λ₁)``: best and final accuracy (%) per seed, mean ± std,
    best (μ and λ₁ in a setting's entry only where the sweep uses them).

    A seed whose network diverged is counted in ``diverged``, not in the statistics
    (its accuracy before diverging says little about the setting); a setting where
    every seed diverged has ``seeds`` 0 and no statistics."""
    per_run: dict[Run, list[dict[str, Any]]] = {}
    for r in rows:
        per_run.setdefault(Run(**r["run"]), []).append(r)
    settings: dict[tuple[float, ...], list[Run]] = {}
    for run in runs:
        settings.setdefault(run.setting, []).append(run)
    used = [name for name in CHAPTER3 if any(getattr(r, name) for r in runs)]
    table = []
    for members in settings.values():
        named = {"eta": members[0].eta, "lmbda": members[0].lmbda,
                 **{name: getattr(members[0], name) for name in used}}
        best, final, diverged = [], [], 0
        for run in members:
            epochs = sorted(per_run.get(run, []), key=lambda r: r["epoch"])
            if any(r.get("diverged") for r in epochs):
                diverged += 1
                continue
            if not epochs:
                continue
            total = epochs[0]["evaluation_total"]
            best.append(100.0 * max(r["evaluation_correct"] for r in epochs) / total)
            final.append(100.0 * epochs[-1]["evaluation_correct"] / total)
        if best:
            table.append({**named, "seeds": len(best),
                          "best_mean": statistics.mean(best), "best_std": _std(best),
                          "best_max": max(best), "final_mean": statistics.mean(final),
                          "final_std": _std(final), "diverged": diverged})
        elif diverged:
            table.append({**named, "seeds": 0, "diverged": diverged})
    return table


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summary_text(table: Sequence[dict[str, Any]], evaluate: str) -> str:
    """The per-setting table as aligned text (a column for μ and λ₁ where used)."""
    names = ["eta", "lmbda", *(n for n in CHAPTER3 if table and n in table[0])]
    width = {"eta": 10, "lmbda": 10}  # chapter 3's: 8, so the table stays near 80 columns
    lines = ["".join(f"{n:>{width.get(n, 8)}} " for n in names) + f"{'seeds':>5}  "
             f"{'best ' + evaluate + ' %':>18}  {'(max)':>7}  {'final ' + evaluate + ' %':>18}"]
    for t in table:
        diverged = (f"  ({t['diverged']} diverged)" if t.get("diverged") else "")
        setting = "".join(f"{exact_number(t[n]):>{width.get(n, 8)}} " for n in names)
        if not t["seeds"]:
            lines.append(f"{setting}{t['seeds']:>5}  {'every seed diverged':>18}{diverged}")
            continue
        lines.append(f"{setting}{t['seeds']:>5}  {t['best_mean']:>9.2f} ± {t['best_std']:<6.2f}  "
                     f"{t['best_max']:>7.2f}  {t['final_mean']:>9.2f} ± {t['final_std']:.2f}{diverged}")
    return "\n".join(lines)


def save_networks(settings: SweepSettings, result: StackResult, directory: Path,
                  on_error: Callable[[Exception], None]) -> list[Path]:
    """Write each network of ``result`` as ``network2.py`` JSON into ``directory`` (a
    diverged network as of its last finite epoch); the files written.

    Each file is written on its own: a failed write (a
    :class:`gpunet.io.outputs.WriteError`) goes to ``on_error`` and the others are still
    written."""
    from ..networks.network import Network
    from ..io.outputs import WriteError

    paths = []
    for run, params in zip(result.runs, result.parameters):
        net = Network(list(settings.sizes), cost=settings.cost, init=settings.init,
                      activation=settings.activation,
                      dtype=settings.dtype, device="cpu", seed=run.seed)
        net.parameters[...] = params
        net.dropout = float(settings.sgd.get("dropout", 0.0))  # saved as evaluated: 1 - p
        path = directory / network_filename(run)
        try:
            net.save(path, option="--save-dir")
        except WriteError as exc:
            on_error(exc)
            continue
        paths.append(path)
    return paths


def network_filename(run: Run) -> str:
    """``eta0.5_lmbda0_seed3.json``: a run's file name in ``--save-dir``
    (``eta0.5_lmbda0_momentum0.9_l1_0.1_dropout0.5_seed3.json`` where chapter 3's
    settings are used).

    Numbers are written as ``%g`` where that gives the number back exactly, else in
    full (``repr``), so two runs never share a file name."""
    used = "".join(f"_{name}{'_' if name[-1].isdigit() else ''}"
                   f"{exact_number(getattr(run, name))}" for name in CHAPTER3
                   if getattr(run, name))  # l1_0.1, not l10.1
    return (f"eta{exact_number(run.eta)}_lmbda{exact_number(run.lmbda)}{used}"
            f"_seed{run.seed}.json")


def plot_curves(runs: Sequence[Run], rows: Sequence[dict[str, Any]], evaluate: str,
                path: Path) -> None:
    """Every run's accuracy per epoch, one colour per setting (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_run: dict[Run, list[dict[str, Any]]] = {}
    for r in rows:
        if not r.get("diverged"):
            per_run.setdefault(Run(**r["run"]), []).append(r)
    colours: dict[tuple[float, ...], Any] = {}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for run in runs:
        epochs = sorted(per_run.get(run, []), key=lambda r: r["epoch"])
        if not epochs:
            continue
        first = run.setting not in colours
        colour = colours.setdefault(run.setting, cycle[len(colours) % len(cycle)])
        pct = [100.0 * r["evaluation_correct"] / r["evaluation_total"] for r in epochs]
        ax.plot([r["epoch"] for r in epochs], pct, color=colour, alpha=0.8,
                label=f"η = {run.eta:g}, λ = {run.lmbda:g}" + "".join(
                    f", {SYMBOLS[name]} = {getattr(run, name):g}" for name in CHAPTER3
                    if getattr(run, name)) if first else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{evaluate} accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    from ..reports.plotting import save_figure

    save_figure(fig, path, "--plot")
