"""The analysis of the studies (:mod:`gpunet.book.studies`): numbers from the runs' rows.

Every setting is a list of runs, one per seed; its accuracy at an epoch is the per-seed
list of ``correct / total`` in percent, summarised by a t-interval, and two settings
are compared by the t-interval of their per-seed differences
(:mod:`gpunet.book.intervals`). Model selection uses the validation set only (mean
over seeds of the final epoch's validation accuracy); the chosen setting is then
reported on the test set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .intervals import Interval, best_of_three, paired_difference, t_interval
from .studies import BOOK_ETA, COSTS, LARGE, SMALL, Plan, Run, Sizes

LEARNS, FAILS = 90.0, 20.0  # study 2: a cost "learns" at mean >= 90%, "fails" below 20%
EARLY = (1, 2, 3)  # study 1: "learns faster early" is judged after these epochs


@dataclass(frozen=True)
class Setting:
    """One setting's runs found in the results: per seed, accuracy in % per epoch."""

    runs: list[Run]  # the plan's runs, one per seed
    epochs: list[int]  # evaluation epochs (counted from 1)
    validation: dict[int, list[float]]  # seed -> % per evaluation epoch
    test: dict[int, list[float]]
    diverged: dict[int, int]  # seed -> epoch it diverged in

    @property
    def found(self) -> int:
        return len(self.test)

    @property
    def missing(self) -> int:
        return len(self.runs) - len(self.test)

    def final(self, split: str = "test") -> dict[int, float]:
        return {s: v[-1] for s, v in getattr(self, split).items()}

    def peak(self) -> dict[int, float]:
        """Each run's best epoch on the test set (as the book reports its runs)."""
        return {s: max(v) for s, v in self.test.items()}

    def at(self, epoch: int) -> dict[int, float]:
        i = self.epochs.index(epoch)
        return {s: v[i] for s, v in self.test.items()}

    def interval(self, values: dict[int, float]) -> Optional[Interval]:
        return t_interval(list(values.values())) if values else None


def setting(runs: Sequence[Run], store: dict[str, Any], sizes: dict[str, int],
            dtype: str) -> Setting:
    validation: dict[int, list[float]] = {}
    test: dict[int, list[float]] = {}
    diverged: dict[int, int] = {}
    for run in runs:
        row = store.get(run.key(sizes, dtype))
        if row is None:
            continue
        validation[run.seed] = [100.0 * c / sizes["validation"] for c in row["validation_correct"]]
        test[run.seed] = [100.0 * c / sizes["test"] for c in row["test_correct"]]
        if row.get("diverged_epoch") is not None:
            diverged[run.seed] = int(row["diverged_epoch"])
    return Setting(list(runs), runs[0].eval_epochs(), validation, test, diverged)


def _diff(a: dict[int, float], b: dict[int, float]) -> Optional[Interval]:
    return paired_difference(a, b) if set(a) & set(b) else None


def choose_by_validation(settings: dict[float, Setting]) -> Optional[float]:
    """The grid value whose mean final validation accuracy is highest, over the seeds
    every value has (the book's own η has more seeds than its neighbours); complete
    settings only: a value with missing seeds is not chosen."""
    complete = {v: s for v, s in settings.items() if s.found and not s.missing}
    if not complete:
        return None
    common = set.intersection(*(set(s.validation) for s in complete.values()))

    def mean(v: float) -> float:
        final = complete[v].final("validation")
        return sum(final[seed] for seed in common) / len(common)

    return max(complete, key=mean)


def analyse(plan: Plan, store: dict[str, Any], sizes: dict[str, int],
            dtype: str) -> dict[str, Any]:
    """Every study's numbers (see :mod:`gpunet.book.studies_report` for their text)."""
    def get(runs: Sequence[Run]) -> Setting:
        return setting(runs, store, sizes, dtype)

    out: dict[str, Any] = {"runs": len(plan.all_runs()),
                           "missing": sum(1 for r in plan.all_runs()
                                          if r.key(sizes, dtype) not in store)}
    # ---------------------------------------------------------------- study 1
    cost_study: dict[Sizes, dict[str, Any]] = {}
    chosen_settings: dict[Sizes, dict[str, Setting]] = {}
    for size, by_cost in plan.cost_etas.items():
        grid = {c: {eta: get(plan.cost_runs(size, c, eta)) for eta in etas}
                for c, etas in by_cost.items()}
        chosen = {c: choose_by_validation(grid[c]) for c in COSTS}
        entry: dict[str, Any] = {"grid": grid, "chosen": chosen,
                                 "edge": {c: chosen[c] is not None
                                          and chosen[c] in (min(grid[c]), max(grid[c]))
                                          and len(grid[c]) > 1 for c in COSTS}}
        eta_q, eta_ce = chosen["quadratic"], chosen["cross-entropy"]
        if eta_q is not None and eta_ce is not None:
            q, ce = grid["quadratic"][eta_q], grid["cross-entropy"][eta_ce]
            chosen_settings[size] = {"quadratic": q, "cross-entropy": ce}
            entry["difference"] = _diff(ce.final(), q.final())
            entry["early"] = [(e, q.interval(q.at(e)), ce.interval(ce.at(e)),
                               _diff(ce.at(e), q.at(e)))
                              for e in EARLY if e in q.epochs]
        qb, ceb = grid["quadratic"][BOOK_ETA["quadratic"]], grid["cross-entropy"][BOOK_ETA["cross-entropy"]]
        entry["book_difference"] = _diff(ceb.final(), qb.final())
        cost_study[size] = entry
    out["cost"] = cost_study
    # ---------------------------------------------------------------- study 2
    eta_curve: dict[str, dict[float, Setting]] = {
        c: {eta: get(plan.eta_runs(c, eta)) for eta in plan.eta_grid} for c in COSTS}
    ranges = {}
    for c, curve in eta_curve.items():
        means = {eta: t_interval(list(s.final().values())).mean
                 for eta, s in curve.items() if s.found}
        learns = [eta for eta, m in means.items() if m >= LEARNS]
        ranges[c] = {"learns": (min(learns), max(learns)) if learns else None,
                     "fails": [eta for eta, m in means.items() if m < FAILS],
                     "best": max(means, key=lambda e: means[e]) if means else None}
    out["eta"] = {"curve": eta_curve, "ranges": ranges}
    # ---------------------------------------------------------------- study 3
    hidden = []
    for label, pick in (("book's η", "book"), ("tuned η", "tuned")):
        for c in COSTS:
            if pick == "book":
                small = cost_study[SMALL]["grid"][c][BOOK_ETA[c]]
                large = cost_study[LARGE]["grid"][c][BOOK_ETA[c]]
                etas = (BOOK_ETA[c], BOOK_ETA[c])
            elif SMALL in chosen_settings and LARGE in chosen_settings:
                small, large = chosen_settings[SMALL][c], chosen_settings[LARGE][c]
                etas = (small.runs[0].eta, large.runs[0].eta)
            else:
                continue
            if not small.found or not large.found:
                continue
            hidden.append({
                "label": label, "cost": c, "etas": etas,
                "small": small.interval(small.final()), "large": large.interval(large.final()),
                "difference": _diff(large.final(), small.final()),
                "small_peak": small.interval(small.peak()),
                "large_peak": large.interval(large.peak()),
                "large_below_90": sum(v < 90.0 for v in large.final().values()),
                "large_runs": large.found,
                "peak_difference": _diff(large.peak(), small.peak()),
            })
    out["hidden"] = hidden
    # ---------------------------------------------------------------- study 4
    headline = []
    for name, size, c, book in (("chapter 1", SMALL, "quadratic", 95.42),
                                ("more hidden", LARGE, "quadratic", 96.59),
                                ("cross-entropy", SMALL, "cross-entropy", 95.49),
                                ("cross-entropy", LARGE, "cross-entropy", 96.82)):
        s = cost_study[size]["grid"][c][BOOK_ETA[c]]
        if s.found >= 3:
            peaks = list(s.peak().values())
            headline.append({"name": name, "size": size, "cost": c, "eta": BOOK_ETA[c],
                             "book": book, "peak": best_of_three(peaks),
                             "final": best_of_three(list(s.final().values())),
                             "at_least_book": sum(p >= book for p in peaks) / len(peaks),
                             "below_book_by_1": sum(p < book - 1.0 for p in peaks) / len(peaks),
                             "runs": s.found})
    out["best_of_three"] = headline
    # ---------------------------------------------------------------- study 5
    large_init, default_init = get(plan.init_runs("large")), get(plan.init_runs("default"))
    init: dict[str, Any] = {"large": large_init, "default": default_init, "compare": []}
    if large_init.found and default_init.found:
        for e in sorted({*EARLY, plan.init_epochs}):
            if e in large_init.epochs:
                init["compare"].append((e, large_init.interval(large_init.at(e)),
                                        default_init.interval(default_init.at(e)),
                                        _diff(default_init.at(e), large_init.at(e))))
    out["init"] = init
    lambdas = {}
    for small, lambda_grid in ((True, plan.lambda_small), (False, plan.lambda_full)):
        settings = {lm: get(plan.lambda_runs(small, lm)) for lm in lambda_grid}
        best = choose_by_validation(settings)
        # the best λ > 0 on validation, against λ = 0 (even where λ = 0 is the best)
        regularized = choose_by_validation({lm: s for lm, s in settings.items() if lm > 0})
        lambda_entry: dict[str, Any] = {"settings": settings, "chosen": best,
                                        "regularized": regularized,
                                        "n": settings[lambda_grid[0]].runs[0].n_train}
        if regularized is not None and 0.0 in settings and settings[0.0].found:
            lambda_entry["difference"] = _diff(settings[regularized].final(),
                                               settings[0.0].final())
        lambdas["small" if small else "full"] = lambda_entry
    out["lambda"] = lambdas
    return out


def summary_line(analysis: dict[str, Any]) -> Optional[str]:
    """Study 1's answer in one line (for the README), or None while runs are missing."""
    parts = []
    for size, entry in analysis["cost"].items():
        diff = entry.get("difference")
        if diff is None or diff.half is None:
            return None
        parts.append(f"{diff.text(2, signed=True)} points on {list(size)}")
    epochs = analysis["cost"][SMALL]["grid"]["quadratic"]
    last = next(iter(epochs.values())).epochs[-1]
    return ("each cost tuned on the validation set, cross-entropy minus quadratic in test "
            f"accuracy after {last} epochs is " + " and ".join(parts)
            + " (95% t-intervals, paired by seed)")

