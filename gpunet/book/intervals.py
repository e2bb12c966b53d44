"""Intervals from seeds: Student's t-interval of a mean, and of a paired difference.

The studies (:mod:`gpunet.book.studies`) train every setting with ten or more seeds and
report ``mean ± half-width``, the two-sided 95% t-interval
``x̄ ± t_{0.975, n-1} · s / √n`` with ``s`` the sample standard deviation (``n - 1`` in
its denominator). A difference between two settings trained with the same seeds is the
t-interval of the per-seed differences (paired by seed: the same seed draws the same
initial weights, where the shapes agree, and the same order of mini-batches), not two
overlapping bars. NumPy only: the t quantile is found by bisection on the t
distribution's CDF, integrated numerically (Simpson's rule, exact to ~1e-9 here).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np


def t_cdf(t: float, df: int) -> float:
    """``P(T <= t)`` for Student's t with ``df`` degrees of freedom."""
    if df < 1:
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


def t_quantile(p: float, df: int) -> float:
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


@dataclass(frozen=True)
class Interval:
    """``mean ± half`` over ``n`` values (``half`` is None for a single value)."""

    mean: float
    half: Optional[float]
    n: int
    std: float

    @property
    def low(self) -> float:
        return self.mean - (self.half or 0.0)

    @property
    def high(self) -> float:
        return self.mean + (self.half or 0.0)

    def excludes_zero(self) -> bool:
        return self.half is not None and (self.low > 0 or self.high < 0)

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
    half = t_quantile(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return Interval(mean, half, n, std)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float],
                      confidence: float = 0.95) -> Interval:
    """The t-interval of ``a[s] - b[s]`` over the seeds ``s`` both have."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("paired_difference: the two settings share no seed.")
    return t_interval([a[s] - b[s] for s in seeds], confidence)


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
