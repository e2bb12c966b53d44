"""Choosing η by the book's heuristic, every candidate in one stacked run.

Chapter 3 ("How to choose a neural network's hyper-parameters?", "Learning rate"):
estimate the threshold value of η at which the cost on the training data immediately
begins decreasing instead of oscillating or increasing, trying η = 0.01, 0.1, 1, ...
in turn and refining to "the largest value of η at which the cost decreases during the
first few epochs"; then use a value about a factor of two below the threshold, which
"will typically allow you to train for many epochs, without causing too much of a
slowdown in learning".

A :class:`gpunet.NetworkStack` makes the search one run: every candidate η of a
geometric range is one network of the stack, and every network has the same seed, so
they start from the same parameters and visit the examples in the same order: only η
differs. :func:`find_eta` trains them a few epochs on (a part of) the training data,
measuring the training cost (with the L2 term, as ``network2.py``'s ``total_cost``, and
the L1 term ``(λ₁/n) Σ |w|`` where ``l1`` is given) before training and after each
epoch, and applies the rule (:data:`RULE`):

* a candidate **passes** when its cost is finite and falls at every measurement (no
  increase, no divergence), and after every epoch it is lower than the next smaller
  candidate's: a larger step that made less progress has overshot, which is the
  oscillation the book describes, seen once an epoch (the cost rose and fell back
  within the epoch);
* the **threshold** is the largest η up to which every candidate passes;
* the **proposal** is half the threshold (rounded to 3 significant digits).

The second condition is ours. Without it (the cost only falling from one measurement
to the next), a candidate may blow the cost up inside its first epoch and fall from
there: on MNIST the proposals came out 0.89 against the book's 0.5 (cross-entropy,
λ = 5) and 8.9 against its 3.0 (chapter 1), and the first trained 0.77 points worse
over 30 epochs. With it they are 0.5 and 2.81 (docs/eta_finder_validation.md).

Where even the smallest η fails, or the largest still passes, the range did not
bracket the threshold and the finding says which way to move it (no proposal).

The candidates train the model the proposal is for: chapter 3's ``momentum``, ``l1``
(L1 regularization) and ``dropout`` reach the stack's ``SGD`` as they reach
``gpunet train``'s. With dropout, every cost is measured on the whole network (no
neurons removed, the weights out of hidden layers scaled by ``1 - p``), as the book
evaluates a network trained with dropout, before training too: each measurement is of
the same function.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from ..backends.hints import spelled

if TYPE_CHECKING:
    from ..engines import EngineName
    from ..model.activations import HiddenSpec
    from ..model.initialization import InitName

#: The default range: three decades either side of 1, four candidates a decade (25
#: networks in one stack). It holds the book's choices (0.5 for the cross-entropy cost,
#: 3.0 for the quadratic cost of chapter 1) well inside.
LOW, HIGH, PER_DECADE = 1e-3, 1e3, 4

#: How many epochs the candidates train by default: the book's "first few epochs".
EPOCHS = 3

RULE = ("a candidate eta passes when its training cost (before training, then after each "
        "epoch) is finite and falls at every measurement, and after every epoch is lower "
        "than the next smaller candidate's (a larger step that made less progress has "
        "overshot); the threshold is the largest eta up to which every candidate passes; "
        "the proposal is half the threshold (after chapter 3, 'How to choose a neural "
        "network's hyper-parameters?', 'Learning rate')")
"""The rule, as ``--help``, the JSON record and the printed reasoning state it."""


MAX_CANDIDATES = 1_000_000
"""The most grid points a range may hold (as a sweep may list seeds): each is a network,
and even listing them takes time."""


def geometric_etas(low: float = LOW, high: float = HIGH,
                   per_decade: int = PER_DECADE) -> list[float]:
    """η from ``low`` to ``high`` (both included where they fall on the grid), each
    ``10^(1/per_decade)`` times the one before, rounded to 3 significant digits.

    A range that holds fewer than two candidates cannot bracket a threshold: a
    ``ValueError`` that says what to widen."""
    if not (_finite(low) and _finite(high) and 0 < low < high):
        raise ValueError(f"the range of eta must be 0 < low < high ({_range()}), got "
                         f"{low!r} to {high!r}.")
    if isinstance(per_decade, bool) or not isinstance(per_decade, int) or per_decade < 1:
        raise ValueError(f"{spelled('per_decade', '--per-decade')} must be a positive whole "
                         f"number, got {per_decade!r}.")
    if not _finite(high / low):  # 1e-320 to 1000: the grid's steps would overflow
        raise ValueError(f"the range {low:g} to {high:g} spans more decades than a float "
                         f"holds; narrow it ({_range()}; the default is {LOW:g} to "
                         f"{HIGH:g}).")
    decades = math.log10(high / low)
    if per_decade * decades >= MAX_CANDIDATES:
        raise ValueError(f"the range {low:g} to {high:g} at {per_decade} a decade is more "
                         f"than {MAX_CANDIDATES:,} candidates, one network each; narrow it "
                         f"({_range()}) or give fewer a decade "
                         f"({spelled('per_decade', '--per-decade')}).")
    steps = int(math.floor(per_decade * decades + 1e-9))
    etas = sorted({float(f"{low * 10 ** (i / per_decade):.3g}") for i in range(steps + 1)})
    if len(etas) < 2:
        raise ValueError(f"the range {low:g} to {high:g} holds only one candidate at "
                         f"{per_decade} a decade; widen it ({_range()}) or give more "
                         f"candidates a decade ({spelled('per_decade', '--per-decade')}).")
    return etas


def _range() -> str:
    """The range's ends as the caller spells them (the library's or the command's)."""
    return str(spelled("low, high", "--eta-min, --eta-max"))


def falls_steadily(costs: Sequence[float]) -> bool:
    """Whether there are at least two costs, every one finite and lower than the one
    before it."""
    return (len(costs) >= 2 and all(_finite(c) for c in costs)
            and all(b < a for a, b in zip(costs, costs[1:])))


@dataclass
class EtaFinding:
    """What :func:`find_eta` found: the candidates, each one's training cost before
    training and after each epoch, which passed the rule, the threshold, the proposal
    (half the threshold; ``None`` where the range did not bracket it), the reasoning in
    words, and the settings of the search."""

    etas: list[float]
    costs: list[list[float]]
    passed: list[bool]
    threshold: Optional[float]
    proposal: Optional[float]
    reasoning: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The finding as JSON-ready data (non-finite costs as ``null``), with the rule."""
        out = asdict(self)
        out["costs"] = [[c if _finite(c) else None for c in row] for row in self.costs]
        out["rule"] = RULE
        return out


def judge(etas: Sequence[float], costs: Sequence[Sequence[float]]) -> tuple[
        list[bool], Optional[float], Optional[float], list[str]]:
    """The rule (:data:`RULE`) applied to candidates ``etas`` (ascending) and their
    ``costs`` (each: before training, then after each epoch, all of one length): which
    passed, the threshold, the proposal (``None`` both where the range does not bracket
    the threshold), and the reasoning (a line per candidate, then the conclusion)."""
    if not etas or len(etas) != len(costs) or len({len(c) for c in costs}) != 1:
        raise ValueError(f"give one cost sequence per candidate eta, all of one length (got "
                         f"{len(etas)} etas and {len(costs)} sequences).")
    if any(not b > a for a, b in zip(etas, etas[1:])):
        raise ValueError(f"the candidate etas must ascend, each once: {list(etas)}.")
    verdicts = [_verdict(etas, costs, k) for k in range(len(etas))]
    passed = [v == PASSES for v in verdicts]
    lines = [f"  eta {eta:<8g} cost {' '.join(f'{x:.4g}' for x in c)}  {v}"
             for eta, c, v in zip(etas, costs, verdicts)]
    if not passed[0]:
        return passed, None, None, lines + [
            f"even the smallest eta, {etas[0]:g}, {verdicts[0]}: the threshold is below the "
            f"range; try smaller values{spelled('', ' (--eta-min)')}."]
    last = passed.index(False) - 1 if False in passed else len(passed) - 1
    if last == len(passed) - 1:
        return passed, None, None, lines + [
            f"every eta up to {etas[-1]:g} passes: the threshold is above the range; try "
            f"larger values{spelled('', ' (--eta-max)')}."]
    threshold = float(etas[last])
    proposal = float(f"{threshold / 2:.3g}")
    return passed, threshold, proposal, lines + [
        f"every eta up to {threshold:g} passes; {etas[last + 1]:g} {verdicts[last + 1]}. "
        f"Threshold: {threshold:g}. The book takes a value about a factor of two below it, "
        f"to train for many epochs: eta = {proposal:g}."]


PASSES = "falls steadily"
"""The verdict of a candidate that passes the rule."""


def _verdict(etas: Sequence[float], costs: Sequence[Sequence[float]], k: int) -> str:
    """What candidate ``k``'s cost did, in a few words: where it first broke the rule."""
    mine = costs[k]
    if len(mine) < 2:
        return "has no epoch to judge"
    for epoch in range(1, len(mine)):
        a, b = mine[epoch - 1], mine[epoch]
        if not _finite(b) or not _finite(a):
            return f"diverges (not finite) in epoch {epoch}"
        if b >= a:
            return f"does not fall in epoch {epoch} ({a:.4g} to {b:.4g})"
        if k > 0 and _finite(costs[k - 1][epoch]) and b >= costs[k - 1][epoch]:
            return (f"overshoots: after epoch {epoch} its cost {b:.4g} is not below "
                    f"{costs[k - 1][epoch]:.4g}, eta {etas[k - 1]:g}'s")
    return PASSES


def _finite(value: Any) -> bool:
    """Whether ``value`` is a finite real number."""
    try:
        return math.isfinite(value)
    except TypeError:
        return False


def find_eta(training_data: Any, sizes: Sequence[int], *, cost: Any = "cross-entropy",
             init: InitName = "default", dtype: Any = "float32", device: Any = "auto",
             activation: HiddenSpec = "sigmoid", seed: int = 0,
             mini_batch_size: int = 10, lmbda: float = 0.0,
             momentum: float = 0.0, l1: float = 0.0, dropout: float = 0.0,
             epochs: int = EPOCHS,
             etas: Optional[Sequence[float]] = None, engine: EngineName = "auto",
             callback: Optional[Callable[[list[dict[str, Any]]], None]] = None
             ) -> EtaFinding:
    """Train one network per candidate η (default: :func:`geometric_etas`) as one
    :class:`gpunet.NetworkStack` on ``training_data`` for ``epochs`` epochs, all from
    ``seed`` (the same initial parameters and shuffles), and apply the rule of this
    module (:func:`judge`) to their training costs (with the L2 term, as
    ``network2.py``'s ``total_cost``, plus the L1 term ``(λ₁/n) Σ |w|`` where ``l1`` >
    0). ``momentum``, ``l1`` and ``dropout`` (the rate ``p`` at which each hidden
    neuron is removed from each mini-batch's step, one for every hidden layer) are
    ``SGD``'s, the same for every candidate; with dropout the costs are measured on the
    whole network, its weights out of hidden layers scaled by ``1 - p`` (as the book
    evaluates it, and before training too). ``callback`` gets each epoch's records (the
    stack's ``callback``). Every other argument is checked as ``SGD`` checks its own.

    >>> finding = find_eta(data.training, [784, 30, 10], lmbda=5.0)  # doctest: +SKIP
    >>> finding.proposal, finding.reasoning[-1]                      # doctest: +SKIP
    """
    from ..networks.stack import NetworkStack

    candidates = sorted(float(e) for e in (geometric_etas() if etas is None else etas))
    if not candidates or len(set(candidates)) != len(candidates):
        raise ValueError("give at least one candidate eta, each once.")
    started = time.perf_counter()
    stack = NetworkStack(list(sizes), [seed] * len(candidates), cost=cost, init=init,
                         dtype=dtype, device=device, activation=activation)
    before = _cost_before(stack, training_data, lmbda, l1, dropout)
    histories = stack.SGD(training_data, epochs, mini_batch_size, candidates, lmbda=lmbda,
                          momentum=momentum, l1=l1, dropout=dropout,
                          monitor_training_cost=True, verbose=False,
                          engine=engine, callback=callback, progress=False)
    costs = [[float(before)] + _epoch_costs(h.records, epochs) for h in histories]
    passed, threshold, proposal, reasoning = judge(candidates, costs)
    settings = {"sizes": list(stack.sizes), "cost": stack.cost.__name__, "init": init,
                "activation": _named(activation),
                "dtype": np.dtype(stack.dtype).name, "device": stack.backend.device,
                "seed": seed, "mini_batch_size": mini_batch_size, "lmbda": lmbda,
                "momentum": momentum, "l1": l1, "dropout": dropout, "epochs": epochs,
                "examples": _count(training_data),
                "engine": histories[0].engine}
    return EtaFinding(candidates, costs, passed, threshold, proposal, reasoning, settings,
                      time.perf_counter() - started)


def _cost_before(stack: Any, training_data: Any, lmbda: float, l1: float,
                 dropout: float) -> float:
    """The training cost before training (every candidate starts alike: network 0's),
    measured as the stack's ``SGD`` measures it after each epoch: with the L2 and L1
    terms, and evaluated as a network trained with ``dropout`` is (``Network.dropout``).
    ``l1`` and ``dropout`` are checked as ``SGD`` checks them, before this first
    measurement."""
    from ..training.settings import check_dropout, check_l1

    net = stack.network(0)
    net.dropout = check_dropout(dropout)
    return float(net.total_cost(training_data, lmbda, l1=check_l1(l1)))


def _epoch_costs(records: Sequence[dict[str, Any]], epochs: int) -> list[float]:
    """The training cost after each of ``epochs`` epochs; NaN where there is none (a
    diverged network's epochs, from the one it diverged in)."""
    costs = [float(r.get("training_cost", math.nan)) for r in records[:epochs]]
    return [c if _finite(c) else math.nan for c in costs] + [math.nan] * (epochs - len(costs))


def _named(spec: Any) -> Any:
    """A hidden-layer spec as JSON: a name, or a list of names."""
    if isinstance(spec, (list, tuple)):
        return [_named(one) for one in spec]
    return spec if isinstance(spec, str) else getattr(spec, "name", getattr(
        spec, "__name__", str(spec)))


def _count(data: Any) -> int:
    """How many examples ``data`` holds (``(X, y)`` or a list of pairs)."""
    try:
        return len(data[1]) if isinstance(data, tuple) else len(data)
    except TypeError:
        return -1


def plot_finding(finding: EtaFinding, path: Any, option: str = "") -> None:
    """The candidates' cost curves (cost against epochs, one line per η: solid where it
    passes the rule, dashed where not), the threshold and the proposal in the title; PNG
    (the ``plot`` extra)."""
    from ..reports.plotting import require_matplotlib, save_figure

    plt = require_matplotlib("--plot")
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.get_cmap("viridis")
    K = len(finding.etas)
    for k, (eta, costs, ok) in enumerate(zip(finding.etas, finding.costs, finding.passed)):
        ys = [c if _finite(c) else np.nan for c in costs]
        ax.plot(range(len(ys)), ys, "-" if ok else "--", color=colors(k / max(1, K - 1)),
                label=f"η = {eta:g}", marker="o", markersize=3)
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("training cost")
    ax.set_yscale("log")
    title = (f"threshold η = {finding.threshold:g}, proposal η = {finding.proposal:g}"
             if finding.threshold is not None and finding.proposal is not None
             else "the range did not bracket the threshold")
    ax.set_title(f"η finder: {title}\n(solid: passes the rule; dashed: does not)")
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path, option)
