"""The studies' grid and its analysis (:mod:`gpunet.book.studies`): numbers from the runs.

The grid (:class:`Run`, :class:`Plan`, :func:`full_plan`, :func:`quick_plan`) says what
was trained; :func:`analyse` reads the stored rows back. Every setting is a list of
runs, one per seed; its accuracy at an epoch is the per-seed list of
``correct / total`` in percent, summarised by a t-interval, and two settings are
compared by the t-interval of their per-seed differences when they have the same seeds,
else by Welch's interval over every seed of each (:mod:`gpunet.book.intervals`).

Model selection uses the validation set only: the η (or λ) with the highest mean final
validation accuracy over all of its seeds, and the choice is reported with its
runner-up and the gap between them. The chosen setting is then read on the test set.

The book's claims are tested as a family: every verdict has a p-value (the paired or
Welch t-test of a zero difference), Holm's correction over the whole page decides
it, and a verdict that finds no difference carries the smallest difference it could
have found (80% power at the level Holm held it to). Measurements the book makes no
claim about are reported without a verdict.

This module imports only :mod:`gpunet.book.intervals` and the model's names; the
report, the plots and the runner import it (never the other way round).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import json
from typing import Any, Optional, Sequence

from ..networks.network import InitName
from .intervals import (Interval, best_of_three, collapse_level,
                        collapsed, detectable_difference, difference, holm, holm_levels,
                        t_interval, triples_reaching)

Sizes = tuple[int, ...]
SMALL: Sizes = (784, 30, 10)
LARGE: Sizes = (784, 100, 10)
BOOK_ETA = {"quadratic": 3.0, "cross-entropy": 0.5}  # chapters 1 and 3
COSTS = ("quadratic", "cross-entropy")
ALPHA = 0.05  # the family-wise error rate of the page's verdicts (Holm)
POWER = 0.8  # the power at which a "not resolved" verdict's detectable difference is given
LEARNS, FAILS = 90.0, 20.0  # study 2: a cost "learns" at mean >= 90%, "fails" below 20%
EARLY = (1, 2, 3)  # study 1: "slows down learning" is judged after these epochs
BOOK_LAMBDA = {"small": 0.1, "full": 5.0}  # chapter 3's λ at 1,000 and 50,000 images


# ===================================================================== the grid
@dataclass(frozen=True)
class Run:
    """One network's training: everything that decides its numbers."""

    sizes: Sizes
    cost: str
    init: InitName
    eta: float
    lmbda: float
    n_train: int  # the first n_train training images
    epochs: int
    eval_every: int  # validation and test accuracy after every eval_every-th epoch (and the last)
    seed: int
    mini_batch: int = 10

    def group(self) -> tuple[Any, ...]:
        """What networks trained together in one stack must share."""
        return (self.sizes, self.cost, self.init, self.n_train, self.epochs, self.eval_every,
                self.mini_batch)

    def key(self, data: dict[str, int], dtype: str) -> str:
        """The run's full settings as one string, the key of its results."""
        settings = {**asdict(self), "sizes": list(self.sizes), "dtype": dtype, "data": data}
        return json.dumps(settings, sort_keys=True)

    def eval_epochs(self) -> list[int]:
        """The epochs (counted from 1) after which accuracy is measured."""
        return [e for e in range(1, self.epochs + 1)
                if e % self.eval_every == 0 or e == self.epochs]

    def label(self) -> str:
        """A short name: sizes, cost, init, η, λ, images, seed."""
        lm = f", λ {self.lmbda:g}" if self.lmbda else ""
        n = f", {self.n_train:,} images" if self.n_train != 50_000 else ""
        return (f"{list(self.sizes)} {self.cost}, {self.init} init, η {self.eta:g}{lm}{n}, "
                f"{self.epochs} epochs, seed {self.seed}")


@dataclass(frozen=True)
class Plan:
    """The grid of every study; :func:`full_plan` and :func:`quick_plan` make the two."""

    seeds: tuple[int, ...]
    headline_seeds: tuple[int, ...]  # the book's four headline settings (studies 3, 4)
    limit: Optional[int]  # images of each split (quick mode only); None: all
    # study 1: each cost's η grid per network size, epochs
    cost_etas: dict[Sizes, dict[str, tuple[float, ...]]]
    cost_epochs: int
    # study 2: the η curve
    eta_sizes: Sizes
    eta_grid: tuple[float, ...]
    eta_epochs: int
    # study 5: initialization and λ (cross-entropy, η = 0.5)
    init_epochs: int
    lambda_small_n: int
    lambda_small_epochs: int
    lambda_small_eval_every: int
    lambda_small: tuple[float, ...]
    lambda_full_epochs: int
    lambda_full: tuple[float, ...]
    quick: bool = False
    reductions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for size in (SMALL, LARGE):
            for cost, eta in BOOK_ETA.items():
                if eta not in self.cost_etas[size][cost]:
                    raise ValueError(f"the book's η = {eta} for {cost} must be in study 1's "
                                     f"grid for {list(size)} (studies 3 and 4 use it).")
        if len(self.seeds) < 3:
            raise ValueError("the studies need at least 3 seeds (best of three).")
        if not set(self.seeds) <= set(self.headline_seeds):
            raise ValueError("the headline settings' seeds must include every other seed.")

    def grid(self) -> dict[str, Any]:
        """The plan as JSON: the exact grid the report prints."""
        d = asdict(self)
        d["cost_etas"] = {str(list(s)): v for s, v in self.cost_etas.items()}
        return d

    # ------------------------------------------------------------- the runs
    def cost_runs(self, size: Sizes, cost: str, eta: float) -> list[Run]:
        """Study 1's runs (also studies 3 and 4's): large init, as the book's chapter 1/3;
        the book's own settings with :attr:`headline_seeds`."""
        seeds = self.headline_seeds if eta == BOOK_ETA[cost] else self.seeds
        return [Run(size, cost, "large", eta, 0.0, self.n_train, self.cost_epochs, 1, s)
                for s in seeds]

    def eta_runs(self, cost: str, eta: float) -> list[Run]:
        return [Run(self.eta_sizes, cost, "large", eta, 0.0, self.n_train, self.eta_epochs, 1, s)
                for s in self.seeds]

    def init_runs(self, init: InitName) -> list[Run]:
        return [Run(SMALL, "cross-entropy", init, 0.5, 0.0, self.n_train, self.init_epochs, 1, s)
                for s in self.seeds]

    def lambda_runs(self, small: bool, lmbda: float) -> list[Run]:
        if small:
            return [Run(SMALL, "cross-entropy", "large", 0.5, lmbda, self.lambda_small_n,
                        self.lambda_small_epochs, self.lambda_small_eval_every, s)
                    for s in self.seeds]
        return [Run(SMALL, "cross-entropy", "large", 0.5, lmbda, self.n_train,
                    self.lambda_full_epochs, 1, s) for s in self.seeds]

    @property
    def n_train(self) -> int:
        return self.limit if self.limit is not None else 50_000

    def all_runs(self) -> list[Run]:
        runs: list[Run] = []
        for size, by_cost in self.cost_etas.items():
            for cost, etas in by_cost.items():
                for eta in etas:
                    runs += self.cost_runs(size, cost, eta)
        for cost in COSTS:
            for eta in self.eta_grid:
                runs += self.eta_runs(cost, eta)
        for init in ("large", "default"):
            runs += self.init_runs(init)
        for lmbda in self.lambda_small:
            runs += self.lambda_runs(True, lmbda)
        for lmbda in self.lambda_full:
            runs += self.lambda_runs(False, lmbda)
        return list(dict.fromkeys(runs))  # the same run asked twice is trained once

    def sample(self) -> list[Run]:
        """The recorded runs a reproducibility check retrains (a sample, not the grid):
        chapter 1's setting (two seeds), quadratic [784, 100, 10] at η = 3 (four seeds,
        healthy and collapsed), the default init (two seeds) and one 400-epoch run on
        1,000 images."""
        lmbda = BOOK_LAMBDA["small"] if BOOK_LAMBDA["small"] in self.lambda_small \
            else self.lambda_small[0]
        return [*self.cost_runs(SMALL, "quadratic", BOOK_ETA["quadratic"])[:2],
                *self.cost_runs(LARGE, "quadratic", BOOK_ETA["quadratic"])[:4],
                *self.init_runs("default")[:2],
                self.lambda_runs(True, lmbda)[0]]


def full_plan(seeds: int = 10) -> Plan:
    """The grid sized for about 45 minutes on a 2-core CPU (see the reductions)."""
    half_decades = tuple(float(f"{10 ** (k / 2):.4g}") for k in range(-6, 5))
    return Plan(
        seeds=tuple(range(seeds)), headline_seeds=tuple(range(3 * seeds)), limit=None,
        cost_etas={size: {"quadratic": (0.75, 1.5, 3.0, 6.0, 12.0),
                          "cross-entropy": (0.125, 0.25, 0.5, 1.0, 2.0)}
                   for size in (SMALL, LARGE)},
        cost_epochs=30,
        eta_sizes=SMALL, eta_grid=half_decades, eta_epochs=30,
        init_epochs=30,
        lambda_small_n=1000, lambda_small_epochs=400, lambda_small_eval_every=25,
        lambda_small=(0.0, 0.1, 1.0, 5.0),
        lambda_full_epochs=30, lambda_full=(0.0, 1.0, 5.0),
        reductions=(
            "Study 1: each cost's η grid is 5 points a factor 2 apart centred on the book's "
            "η (quadratic 0.75 to 12, cross-entropy 0.125 to 2), with everything else "
            "fixed (30 epochs, mini-batch 10, N(0, 1) init); \"tuned\" on this page means "
            "the best η of that one grid, not a thorough optimisation of every "
            "hyper-parameter. Study 2's curve shows where the optimum lies on a wider grid.",
            "Study 2: [784, 30, 10] only (the book's η = 0.001 run was [784, 100, 10]), η "
            "at half-decade steps (factor 3.16).",
            "Studies 3 and 4 read study 1's runs at the book's settings, trained with 30 "
            "seeds instead of 10 so that best of three (taken over every triple of seeds) "
            "and the share of runs missing by a point are measured on more than ten runs.",
            "Study 5: cross-entropy at η = 0.5 only; λ in {0, 1, 5} at 50,000 images and "
            "{0, 0.1, 1, 5} at 1,000 images (400 epochs, accuracy measured every 25). The "
            "initialization runs use η = 0.5 and λ = 0, not the book's η = 0.1 and λ = 5.0.",
            "Mini-batch 10 and float32 throughout; no GPU run (the reproducibility section "
            "says why float32).",
        ),
    )


def quick_plan(seeds: int = 3) -> Plan:
    """A smoke run of every study (seconds): 500 images per split, 2 epochs, tiny grids."""
    return Plan(
        seeds=tuple(range(seeds)), headline_seeds=tuple(range(seeds)), limit=500,
        cost_etas={SMALL: {"quadratic": (3.0, 6.0), "cross-entropy": (0.5, 1.0)},
                   LARGE: {"quadratic": (3.0,), "cross-entropy": (0.5,)}},
        cost_epochs=2,
        eta_sizes=SMALL, eta_grid=(0.01, 1.0, 100.0), eta_epochs=2,
        init_epochs=2,
        lambda_small_n=100, lambda_small_epochs=4, lambda_small_eval_every=2,
        lambda_small=(0.0, 0.1, 1.0),
        lambda_full_epochs=2, lambda_full=(0.0, 5.0),
        quick=True,
        reductions=("Quick smoke run: 500 images in each split, 2 epochs, tiny grids, "
                    f"{seeds} seeds; the numbers mean nothing.",),
    )


# ================================================================= the settings
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

    @property
    def eta(self) -> float:
        return self.runs[0].eta

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

    def collapsed_seeds(self, level: Optional[float]) -> Optional[list[int]]:
        """The seeds whose final test accuracy is at or below the collapse level
        (None when the level is unknown)."""
        if level is None:
            return None
        return sorted(s for s, v in self.final().items() if collapsed(v, level))


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
    """``a`` minus ``b`` (paired by seed where the seeds agree, else Welch), or None
    where either side has too few runs for an interval."""
    if not a or not b:
        return None
    if set(a) == set(b):
        return difference(a, b) if len(a) >= 1 else None
    if len(a) < 2 or len(b) < 2:
        return None
    return difference(a, b)


# ================================================================== choosing
@dataclass(frozen=True)
class Choice:
    """A grid value chosen on validation data, with its runner-up and the gap."""

    value: float
    seeds: int  # how many seeds the chosen value's mean is over
    runner_up: Optional[float]
    runner_up_seeds: int
    gap: Optional[Interval]  # chosen minus runner-up, final validation accuracy


def choice_by_validation(settings: dict[float, Setting]) -> Optional[Choice]:
    """The grid value whose mean final validation accuracy, over all of its seeds, is
    highest (complete settings only: a value with missing seeds is not chosen), with
    its runner-up and the validation gap."""
    complete = {v: s for v, s in settings.items() if s.found and not s.missing}
    if not complete:
        return None

    def mean(v: float) -> float:
        final = complete[v].final("validation")
        return sum(final.values()) / len(final)

    ranked = sorted(complete, key=mean, reverse=True)
    best = complete[ranked[0]]
    if len(ranked) == 1:
        return Choice(ranked[0], best.found, None, 0, None)
    second = complete[ranked[1]]
    gap = _diff(best.final("validation"), second.final("validation"))
    return Choice(ranked[0], best.found, ranked[1], second.found, gap)


# ================================================================== verdicts
@dataclass
class Verdict:
    """One claim of the book tested on the runs; :func:`correct` fills in the family's
    Holm-adjusted p-value, the level it was held to and the outcome."""

    key: str  # where the report places it
    claim: str  # the claim, in the page's words
    diff: Optional[Interval]  # the measured difference (the claimed direction positive)
    positive: bool = True  # whether the claim is that ``diff`` > 0
    adjusted: Optional[float] = None
    level: Optional[float] = None
    smoke: bool = False  # a quick plan's: measured, never judged

    @property
    def p(self) -> Optional[float]:
        return None if self.diff is None else self.diff.p_value()

    @property
    def outcome(self) -> str:
        """*confirmed*, *refuted*, *not resolved*, *not run yet*, or for a smoke run's
        numbers *not judged (smoke run)*: a smoke run draws no conclusion."""
        if self.diff is None or self.p is None:
            return "not run yet"
        if self.smoke:
            return "not judged (smoke run)"
        if self.adjusted is None or self.adjusted > ALPHA or self.diff.mean == 0:
            return "not resolved"
        return "confirmed" if (self.diff.mean > 0) == self.positive else "refuted"

    @property
    def detectable(self) -> Optional[float]:
        """For a *not resolved* verdict: the smallest difference its test would have
        found with :data:`POWER` at the level it was held to."""
        if self.outcome != "not resolved" or self.diff is None or self.level is None:
            return None
        if self.diff.se is None or self.diff.df is None:
            return None
        return detectable_difference(self.diff.se, self.diff.df, self.level, POWER)


def correct(verdicts: list[Verdict], alpha: float = ALPHA) -> None:
    """Holm's correction over every verdict that has a p-value (in place)."""
    tested = [v for v in verdicts if v.p is not None]
    ps = [v.p for v in tested if v.p is not None]
    for v, adjusted, level in zip(tested, holm(ps), holm_levels(ps, alpha)):
        v.adjusted, v.level = adjusted, level


# ================================================================== analysis
def analyse(plan: Plan, store: dict[str, Any], sizes: dict[str, int], dtype: str,
            class_counts: Optional[Sequence[int]] = None) -> dict[str, Any]:
    """Every study's numbers (see :mod:`gpunet.book.studies_report` for their text).

    ``class_counts``: the test set's images per class, for the collapse level (a run
    at or below it is counted as collapsed); None leaves collapses uncounted."""
    def get(runs: Sequence[Run]) -> Setting:
        return setting(runs, store, sizes, dtype)

    level = collapse_level(class_counts) if class_counts is not None else None
    verdicts: list[Verdict] = []
    out: dict[str, Any] = {"runs": len(plan.all_runs()),
                           "missing": sum(1 for r in plan.all_runs()
                                          if r.key(sizes, dtype) not in store),
                           "collapse_level": level, "verdicts": verdicts}
    out["cost"] = _cost_study(plan, get, level, verdicts)
    out["eta"] = _eta_study(plan, get)
    out["hidden"] = _hidden_study(out["cost"], level, verdicts)
    out["best_of_three"] = _best_of_three_study(out["cost"])
    out["init"] = _init_study(plan, get)
    out["lambda"] = _lambda_study(plan, get, verdicts)
    correct(verdicts)
    for verdict in verdicts:
        verdict.smoke = plan.quick
    return out


def _cost_study(plan: Plan, get: Any, level: Optional[float],
                verdicts: list[Verdict]) -> dict[Sizes, dict[str, Any]]:
    """Study 1: each cost at the book's η and at its chosen η, collapses counted."""
    cost_study: dict[Sizes, dict[str, Any]] = {}
    for size, by_cost in plan.cost_etas.items():
        grid = {c: {eta: get(plan.cost_runs(size, c, eta)) for eta in etas}
                for c, etas in by_cost.items()}
        choices = {c: choice_by_validation(grid[c]) for c in COSTS}
        chosen = {c: None if ch is None else ch.value for c, ch in choices.items()}
        entry: dict[str, Any] = {"grid": grid, "chosen": chosen, "choices": choices,
                                 "edge": {c: chosen[c] is not None
                                          and chosen[c] in (min(grid[c]), max(grid[c]))
                                          and len(grid[c]) > 1 for c in COSTS}}
        entry["collapsed"] = {c: {eta: s.collapsed_seeds(level) for eta, s in grid[c].items()}
                              for c in COSTS}
        # how far the chosen η is ahead of the book's on validation (None: the same η)
        entry["book_gap"] = {c: _book_gap(grid[c], chosen[c], BOOK_ETA[c]) for c in COSTS}
        qb = grid["quadratic"][BOOK_ETA["quadratic"]]
        ceb = grid["cross-entropy"][BOOK_ETA["cross-entropy"]]
        name = list(size)
        entry["book_verdict"] = Verdict(
            f"cost-book-{size[1]}", f"cross-entropy beats quadratic on {name} at the book's η",
            _diff(ceb.final(), qb.final()))
        verdicts.append(entry["book_verdict"])
        eta_q, eta_ce = chosen["quadratic"], chosen["cross-entropy"]
        tuned: Optional[Verdict] = None
        if eta_q is not None and eta_ce is not None:
            q, ce = grid["quadratic"][eta_q], grid["cross-entropy"][eta_ce]
            entry["tuned"] = {"quadratic": q, "cross-entropy": ce}
            tuned = Verdict(f"cost-tuned-{size[1]}",
                            f"cross-entropy beats quadratic on {name}, each at its chosen η",
                            _diff(ce.final(), q.final()))
            verdicts.append(tuned)
        entry["tuned_verdict"] = tuned
        entry["early"] = []
        for e in EARLY:
            if e in qb.epochs:
                v = Verdict(f"cost-early-{size[1]}-{e}",
                            f"cross-entropy is ahead after epoch {e} on {name} at the book's η",
                            _diff(ceb.at(e), qb.at(e)))
                verdicts.append(v)
                entry["early"].append((e, qb.interval(qb.at(e)), ceb.interval(ceb.at(e)), v))
        entry["without_collapsed"] = _without_collapsed(entry, level)
        cost_study[size] = entry
    return cost_study


def _book_gap(grid: dict[float, Setting], chosen: Optional[float],
              book: float) -> Optional[Interval]:
    """The chosen η's final validation accuracy minus the book's η's (None where the
    choice is the book's η, or nothing is chosen)."""
    if chosen is None or chosen == book:
        return None
    return _diff(grid[chosen].final("validation"), grid[book].final("validation"))


def _without_collapsed(entry: dict[str, Any], level: Optional[float]) -> dict[str, Any]:
    """Cross-entropy minus quadratic over the quadratic runs that did not collapse (a
    selection on the outcome, so a measurement, not a verdict): at the book's η paired
    over those seeds, at the chosen η over every cross-entropy seed (Welch)."""
    if level is None:
        return {}
    out: dict[str, Any] = {}
    grid = entry["grid"]
    pairs = [("book", grid["quadratic"][BOOK_ETA["quadratic"]],
              grid["cross-entropy"][BOOK_ETA["cross-entropy"]])]
    if "tuned" in entry:
        pairs.append(("tuned", entry["tuned"]["quadratic"], entry["tuned"]["cross-entropy"]))
    for name, q, ce in pairs:
        gone = set(q.collapsed_seeds(level) or [])
        if not gone:
            continue
        kept = {s: v for s, v in q.final().items() if s not in gone}
        ce_final = ce.final()
        if set(kept) <= set(ce_final):
            ce_final = {s: ce_final[s] for s in kept}
        out[name] = {"collapsed": len(gone), "runs": q.found, "kept": len(kept),
                     "difference": _diff(ce_final, kept),
                     "quadratic_kept": q.interval(kept) if kept else None}
    return out


def _eta_study(plan: Plan, get: Any) -> dict[str, Any]:
    """Study 2: accuracy over η (measurements)."""
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
    return {"curve": eta_curve, "ranges": ranges}


def _hidden_study(cost_study: dict[Sizes, dict[str, Any]], level: Optional[float],
                  verdicts: list[Verdict]) -> list[dict[str, Any]]:
    """Study 3: 100 against 30 hidden neurons. The book's claim (chapter 1) is the
    quadratic cost at η = 3; the other rows are measurements."""
    if SMALL not in cost_study or LARGE not in cost_study:
        return []
    hidden = []
    for label, pick in (("book's η", "book"), ("chosen η", "tuned")):
        for c in COSTS:
            if pick == "book":
                small = cost_study[SMALL]["grid"][c][BOOK_ETA[c]]
                large = cost_study[LARGE]["grid"][c][BOOK_ETA[c]]
            elif "tuned" in cost_study[SMALL] and "tuned" in cost_study[LARGE]:
                small, large = cost_study[SMALL]["tuned"][c], cost_study[LARGE]["tuned"][c]
            else:
                continue
            if not small.found or not large.found:
                continue
            diff = _diff(large.final(), small.final())
            verdict = None
            if pick == "book" and c == "quadratic":
                verdict = Verdict("hidden",
                                  "100 hidden neurons beat 30 on average (quadratic, η = 3)",
                                  diff)
                verdicts.append(verdict)
            common = set(small.final()) & set(large.final())
            gone = set(large.collapsed_seeds(level) or [])
            kept = {s: v for s, v in large.final().items() if s not in gone}
            without = None
            if gone and set(kept) <= set(small.final()) and kept:
                without = _diff(kept, {s: small.final()[s] for s in kept})
            hidden.append({
                "label": label, "cost": c, "etas": (small.eta, large.eta),
                "small": small.interval(small.final()), "large": large.interval(large.final()),
                "difference": diff, "verdict": verdict,
                "small_peak": small.interval(small.peak()),
                "large_peak": large.interval(large.peak()),
                "peak_difference": _diff(large.peak(), small.peak()),
                "large_collapsed": len(gone), "large_runs": large.found,
                "favour_large": sum(large.final()[s] > small.final()[s] for s in common),
                "common_seeds": len(common),
                "paired_seeds": len(common) if set(small.final()) == set(large.final()) else 0,
                "without_collapsed": without, "kept": len(kept),
            })
    return hidden


#: The book's published figures and whether the book says they are a best of three
#: (chapter 1: "To generate results in this chapter I've taken best-of-three runs";
#: chapter 3 does not say how its two figures were chosen).
BOOK_FIGURES = (("chapter 1", SMALL, "quadratic", 95.42, True),
                ("chapter 1, 100 hidden", LARGE, "quadratic", 96.59, True),
                ("chapter 3", SMALL, "cross-entropy", 95.49, False),
                ("chapter 3, 100 hidden", LARGE, "cross-entropy", 96.82, False))


def _best_of_three_study(cost_study: dict[Sizes, dict[str, Any]]) -> list[dict[str, Any]]:
    """Study 4: the spread of single runs and of a best of three (measurements)."""
    headline = []
    for name, size, c, book, said in BOOK_FIGURES:
        if size not in cost_study:
            continue
        s = cost_study[size]["grid"][c][BOOK_ETA[c]]
        if s.found >= 3:
            peaks = list(s.peak().values())
            headline.append({"name": name, "size": size, "cost": c, "eta": BOOK_ETA[c],
                             "book": book, "best_of_three_said": said,
                             "peak": best_of_three(peaks),
                             "final": best_of_three(list(s.final().values())),
                             "at_least_book": sum(p >= book for p in peaks) / len(peaks),
                             "reached_by": sum(p >= book for p in peaks),
                             "triple_reaches_book": triples_reaching(peaks, book),
                             "below_book_by_1": sum(p < book - 1.0 for p in peaks) / len(peaks),
                             "runs": s.found})
    return headline


def _init_study(plan: Plan, get: Any) -> dict[str, Any]:
    """Study 5, initialization: measurements (the runs use other η and λ than the
    book's comparison)."""
    large_init, default_init = get(plan.init_runs("large")), get(plan.init_runs("default"))
    init: dict[str, Any] = {"large": large_init, "default": default_init, "compare": []}
    if large_init.found and default_init.found:
        for e in sorted({*EARLY, plan.init_epochs}):
            if e in large_init.epochs:
                init["compare"].append((e, large_init.interval(large_init.at(e)),
                                        default_init.interval(default_init.at(e)),
                                        _diff(default_init.at(e), large_init.at(e))))
    return init


def _lambda_study(plan: Plan, get: Any, verdicts: list[Verdict]) -> dict[str, Any]:
    """Study 5, λ: the book's λ against none at its two sizes (verdicts), the λ chosen
    on validation with its runner-up (a measurement)."""
    lambdas = {}
    for key, small, lambda_grid in (("small", True, plan.lambda_small),
                                    ("full", False, plan.lambda_full)):
        settings = {lm: get(plan.lambda_runs(small, lm)) for lm in lambda_grid}
        choice = choice_by_validation(settings)
        n = settings[lambda_grid[0]].runs[0].n_train
        entry: dict[str, Any] = {"settings": settings, "choice": choice,
                                 "chosen": None if choice is None else choice.value, "n": n}
        book = BOOK_LAMBDA[key]
        if book in settings and 0.0 in settings:
            entry["book"] = book
            entry["verdict"] = Verdict(f"lambda-{key}",
                                       f"λ = {book:g} beats no regularization at {n:,} images",
                                       _diff(settings[book].final(), settings[0.0].final()))
            verdicts.append(entry["verdict"])
        lambdas[key] = entry
    return lambdas


def summary_line(analysis: dict[str, Any]) -> Optional[str]:
    """Study 1's answer in one line (for the README), or None while runs are missing."""
    parts = []
    for size, entry in analysis["cost"].items():
        v = entry.get("tuned_verdict")
        if v is None or v.diff is None or v.diff.half is None:
            return None
        parts.append(f"{v.diff.text(2, signed=True)} points on {list(size)} "
                     f"({v.outcome} after Holm)")
    epochs = analysis["cost"][SMALL]["grid"]["quadratic"]
    last = next(iter(epochs.values())).epochs[-1]
    return ("with each cost at the best η of one 5-point grid (chosen on validation data, "
            f"everything else fixed), cross-entropy minus quadratic in test accuracy after "
            f"{last} epochs (95% t-intervals) is " + " and ".join(parts))

