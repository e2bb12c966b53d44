"""Statistics from seeds: t-intervals, p-values, the Holm correction, the smallest
difference a test could detect, binomial shares, and collapsed runs.

The studies (:mod:`gpunet.book.studies`) train every setting with ten or more seeds and
report ``mean ± half-width``, the two-sided 95% t-interval
``x̄ ± t_{0.975, n-1} · s / √n`` with ``s`` the sample standard deviation (``n - 1`` in
its denominator). A difference between two settings trained with the same seeds is the
t-interval of the per-seed differences (paired by seed: the same seed draws the same
initial weights, where the shapes agree, and the same order of mini-batches), not two
overlapping bars; two settings with different seeds are compared by Welch's interval
(:func:`welch_difference`). A page of many verdicts controls its family-wise error by
Holm's step-down correction (:func:`holm`); a verdict that finds no difference says how
large a difference it could have found (:func:`detectable_difference`).

NumPy only: the t quantile is found by bisection on the t distribution's CDF,
integrated numerically (Simpson's rule, exact to ~1e-9 here); binomial intervals by
bisection on the binomial CDF.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import numpy as np


def t_cdf(t: float, df: float) -> float:
    """``P(T <= t)`` for Student's t with ``df`` degrees of freedom (``df`` need not be
    a whole number: Welch's are not)."""
    if not df >= 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}.")
    x = abs(t)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    steps = 4000  # even, for Simpson's rule; the density is smooth on [0, x]
    grid = np.linspace(0.0, x, steps + 1)
    density = np.exp(log_c - (df + 1) / 2 * np.log1p(grid * grid / df))
    weights = np.ones(steps + 1)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    half = float(np.dot(weights, density)) * (x / steps) / 3.0
    return 0.5 + half if t >= 0 else 0.5 - half


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``0.5 < p < 1``)."""
    if not 0.5 < p < 1.0:
        raise ValueError(f"p must lie in (0.5, 1), got {p}.")
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, 2.0 * hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return 0.5 * (lo + hi)


def t_two_sided_p(t: float, df: float) -> float:
    """The two-sided p-value of a t statistic: ``P(|T| >= |t|)``."""
    return max(0.0, min(1.0, 2.0 * (1.0 - t_cdf(abs(t), df))))


@dataclass(frozen=True)
class Interval:
    """``mean ± half`` over ``n`` values (``half`` is None for a single value).

    ``se`` is the mean's standard error and ``df`` the degrees of freedom of its t
    quantile (``n - 1``; Welch's for :func:`welch_difference`, whose second sample has
    ``n_other`` values)."""

    mean: float
    half: Optional[float]
    n: int
    std: float
    se: Optional[float] = None
    df: Optional[float] = None
    n_other: Optional[int] = None

    @property
    def low(self) -> float:
        return self.mean - (self.half or 0.0)

    @property
    def high(self) -> float:
        return self.mean + (self.half or 0.0)

    @property
    def welch(self) -> bool:
        return self.n_other is not None

    def excludes_zero(self) -> bool:
        return self.half is not None and (self.low > 0 or self.high < 0)

    def p_value(self) -> Optional[float]:
        """The two-sided p-value of the t-test of a zero mean (None for one value)."""
        if self.se is None or self.df is None:
            return None
        if self.se == 0.0:
            return 1.0 if self.mean == 0.0 else 0.0
        return t_two_sided_p(self.mean / self.se, self.df)

    def text(self, digits: int = 2, signed: bool = False) -> str:
        sign = "+" if signed else ""
        mean = f"{self.mean:{sign}.{digits}f}"
        return mean if self.half is None else f"{mean} ± {self.half:.{digits}f}"


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The two-sided t-interval of the mean of ``values`` (at least one value)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError("t_interval needs a non-empty list of values.")
    n, mean = len(x), float(x.mean())
    if n == 1:
        return Interval(mean, None, 1, 0.0)
    std = float(x.std(ddof=1))
    se = std / math.sqrt(n)
    half = t_quantile(0.5 + confidence / 2, n - 1) * se
    return Interval(mean, half, n, std, se=se, df=float(n - 1))


def paired_difference(a: Mapping[int, float], b: Mapping[int, float],
                      confidence: float = 0.95) -> Interval:
    """The t-interval of ``a[s] - b[s]`` over the seeds ``s`` both have."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("paired_difference: the two settings share no seed.")
    return t_interval([a[s] - b[s] for s in seeds], confidence)


def welch_difference(a: Sequence[float], b: Sequence[float],
                     confidence: float = 0.95) -> Interval:
    """Welch's t-interval of ``mean(a) - mean(b)`` for two samples of different sizes
    (each at least 2 values; unequal variances; Welch-Satterthwaite degrees of freedom)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("welch_difference needs at least 2 values on each side.")
    va, vb = float(x.var(ddof=1)) / len(x), float(y.var(ddof=1)) / len(y)
    se = math.sqrt(va + vb)
    mean = float(x.mean() - y.mean())
    if se == 0.0:
        return Interval(mean, 0.0, len(x), 0.0, se=0.0, df=float(len(x) + len(y) - 2),
                        n_other=len(y))
    df = (va + vb) ** 2 / (va ** 2 / (len(x) - 1) + vb ** 2 / (len(y) - 1))
    half = t_quantile(0.5 + confidence / 2, df) * se
    return Interval(mean, half, len(x), se * math.sqrt(len(x)), se=se, df=df,
                    n_other=len(y))


def difference(a: Mapping[int, float], b: Mapping[int, float],
               confidence: float = 0.95) -> Interval:
    """``a`` minus ``b``: paired by seed when both have the same seeds, else Welch's
    interval over every seed of each (so no run is left out of an estimate)."""
    if set(a) == set(b):
        return paired_difference(a, b, confidence)
    return welch_difference(list(a.values()), list(b.values()), confidence)


# ------------------------------------------------------------ many verdicts
def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    Sorted ascending, the ``i``-th smallest (``i`` from 1) of ``m`` is multiplied by
    ``m - i + 1``, capped at 1, and made no smaller than the one before it; rejecting
    where the adjusted value is ``<= α`` keeps the chance of any false rejection among
    the ``m`` at most ``α``, whatever their dependence."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def holm_levels(p_values: Sequence[float], alpha: float = 0.05) -> list[float]:
    """The level each test is held to in Holm's procedure, in the order given:
    ``α / (m - i + 1)`` for the ``i``-th smallest p-value."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    levels = [0.0] * m
    for rank, i in enumerate(order):
        levels[i] = alpha / (m - rank)
    return levels


def detectable_difference(se: float, df: float, alpha: float = 0.05,
                          power: float = 0.8) -> float:
    """The smallest true difference a two-sided t-test at level ``alpha`` finds with
    probability ``power``, for a standard error ``se`` on ``df`` degrees of freedom:
    ``(t_{1-α/2} + t_{power}) · se`` (the usual approximation of the noncentral t)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
    return (t_quantile(1.0 - alpha / 2.0, df) + t_quantile(power, df)) * se


# ------------------------------------------------------------------ shares
def binomial_cdf(k: int, n: int, p: float) -> float:
    """``P(X <= k)`` for ``X ~ Binomial(n, p)``."""
    return sum(math.comb(n, i) * p ** i * (1.0 - p) ** (n - i) for i in range(0, k + 1))


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a share: ``k`` of ``n`` runs."""
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"clopper_pearson needs 0 <= k <= n and n >= 1, got {k} of {n}.")
    tail = (1.0 - confidence) / 2.0

    def solve(f: Callable[[float], float]) -> float:  # f increasing in p, root in (0, 1)
        lo, hi = 0.0, 1.0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
        return 0.5 * (lo + hi)

    lower = 0.0 if k == 0 else solve(lambda p: (1.0 - binomial_cdf(k - 1, n, p)) - tail)
    upper = 1.0 if k == n else solve(lambda p: tail - binomial_cdf(k, n, p))
    return lower, upper


def collapse_level(class_counts: Sequence[int]) -> float:
    """The highest accuracy (%) a network can reach that gets no image of some class
    right: ``100 · (1 - smallest class / all)``. A run above it recognises at least one
    image of every class; a run at or below it is counted as collapsed (it may have
    lost a whole class; :func:`lost_classes` tells where the predictions are kept)."""
    counts = [int(c) for c in class_counts]
    if not counts or min(counts) < 1:
        raise ValueError("collapse_level needs every class's count (each >= 1).")
    return 100.0 * (1.0 - min(counts) / sum(counts))


def collapsed(accuracy: float, level: float) -> bool:
    """Whether a run's accuracy (%) is at or below the :func:`collapse_level`."""
    return accuracy <= level


def lost_classes(correct_per_class: Sequence[int], class_counts: Sequence[int],
                 below: float = 0.5) -> list[int]:
    """The classes a network recognises less than ``below`` of (recall), from its
    per-class counts of correct answers."""
    if len(correct_per_class) != len(class_counts):
        raise ValueError("lost_classes: one correct count per class, please.")
    return [c for c, (right, total) in enumerate(zip(correct_per_class, class_counts))
            if total and right / total < below]


# ----------------------------------------------------------- best of three
@dataclass(frozen=True)
class BestOfThree:
    """How a best of three runs compares with a single run, over every triple of seeds."""

    runs: int
    mean: float  # of all runs
    best_of_three: float  # the mean, over every triple, of the triple's best run
    chance_below_mean_by_1: float  # share of runs more than a point below the mean
    chance_triple_spread_over_1: float  # share of triples whose worst run is > 1 below its best
    worst: float
    best: float

    @property
    def lift(self) -> float:
        """How far a best of three lies above the mean run, on average."""
        return self.best_of_three - self.mean


def best_of_three(values: Sequence[float]) -> BestOfThree:
    """:class:`BestOfThree` of ``values`` (accuracies in %, one per seed; at least 3)."""
    x = [float(v) for v in values]
    if len(x) < 3:
        raise ValueError("best_of_three needs at least 3 runs.")
    triples = list(itertools.combinations(x, 3))
    mean = sum(x) / len(x)
    return BestOfThree(
        runs=len(x), mean=mean,
        best_of_three=sum(max(t) for t in triples) / len(triples),
        chance_below_mean_by_1=sum(v < mean - 1.0 for v in x) / len(x),
        chance_triple_spread_over_1=sum(max(t) - min(t) > 1.0 for t in triples) / len(triples),
        worst=min(x), best=max(x))


def triples_reaching(values: Sequence[float], level: float) -> float:
    """The share of triples of ``values`` whose best reaches ``level``: the chance that
    a best of three runs, drawn from these, reports at least ``level``."""
    x = [float(v) for v in values]
    if len(x) < 3:
        raise ValueError("triples_reaching needs at least 3 runs.")
    n, below = len(x), sum(v < level for v in x)
    return 1.0 - math.comb(below, 3) / math.comb(n, 3)
