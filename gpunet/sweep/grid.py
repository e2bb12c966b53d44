"""A sweep's runs: the grid of η, λ and seeds, its settings, and its stacks."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Optional, Sequence

import numpy as np

from ..model.arguments import check_eta, check_lmbda, check_seed

MAX_DEFAULT_STACK = 256
"""The largest stack the default size picks (beyond it a step gains nothing)."""


MAX_NETWORKS = 1_000_000
"""The most networks one sweep may list (seeds, or η × λ × seeds): beyond any real
sweep, and checked before a range is expanded, so a typo cannot exhaust memory."""


SWEPT = ("eta", "lmbda", "momentum", "l1", "dropout")
"""The per-network settings a sweep takes as lists (``--eta``, ``--lmbda``,
``--momentum``, ``--l1``, ``--dropout``), in the grid's order (the first varies
slowest)."""

CHAPTER3 = ("momentum", "l1", "dropout")
"""Of :data:`SWEPT`, chapter 3's: a run names them only where they are not 0 (its row,
its file name), so a sweep without them reads and writes as before they existed."""

SYMBOLS = {"eta": "η", "lmbda": "λ", "momentum": "μ", "l1": "λ₁", "dropout": "p"}
"""How the book writes each of :data:`SWEPT` (a plot's legend, a too-large grid's
message)."""


@dataclass(frozen=True)
class Run:
    """One network of a sweep: its learning rate, L2 parameter, seed, and chapter 3's
    momentum coefficient μ, L1 parameter λ₁ and dropout rate p (0: unused)."""

    eta: float
    lmbda: float
    seed: int
    momentum: float = 0.0
    l1: float = 0.0
    dropout: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The run as its metrics rows name it (μ, λ₁ and p only where used)."""
        used = {name: getattr(self, name) for name in CHAPTER3 if getattr(self, name)}
        return {"eta": self.eta, "lmbda": self.lmbda, **used, "seed": self.seed}

    @property
    def setting(self) -> tuple[float, ...]:
        """``(η, λ, μ, λ₁, p)``: the runs of one setting differ only in their seed."""
        return tuple(getattr(self, name) for name in SWEPT)

    def named(self, keys: Sequence[str]) -> str:
        """The run as ``(3, 0, 2)``: its values of ``keys`` (:func:`run_keys`)."""
        return "(" + ", ".join(str(self.seed) if key == "seed" else
                               exact_number(getattr(self, key)) for key in keys) + ")"


def run_keys(runs: Sequence[Run]) -> tuple[str, ...]:
    """What names a sweep's runs: ``eta, lmbda``, chapter 3's settings where a run uses
    them, and ``seed``."""
    used = [name for name in CHAPTER3 if any(getattr(r, name) for r in runs)]
    return ("eta", "lmbda", *used, "seed")


@dataclass(frozen=True)
class SweepSettings:
    """What every network of a sweep shares (everything but ``η``, ``λ`` and seed).

    ``sgd`` holds ``NetworkStack.SGD``'s keyword arguments as they are (the step
    engine, the monitors, any setting that reaches the training loop), so a new one
    passes through here without a line of its own."""

    sizes: tuple[int, ...] = (784, 30, 10)
    cost: str = "quadratic"
    init: Literal["default", "large"] = "large"
    activation: Any = "sigmoid"  # the hidden layers' neurons: a name, or one per layer
    dtype: Literal["float32", "float64"] = "float32"
    epochs: int = 30
    mini_batch_size: int = 10
    device: str = "auto"
    evaluate: str = "test"  # the evaluation data (test, validation): the header says it
    workers: Optional[int] = None  # the stacked CPU engine's processes (None: automatic)
    sgd: Mapping[str, Any] = field(default_factory=dict)

    def sgd_keywords(self) -> dict[str, Any]:
        """``NetworkStack.SGD``'s keyword arguments these settings give every stack:
        :attr:`sgd`, and the worker processes."""
        return {**self.sgd, "workers": self.workers}


def parse_floats(text: str, name: str) -> list[float]:
    """``"0.025,0.25,2.5"`` as a list of numbers; ``ValueError`` naming ``name`` else."""
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            values.append(float(part))
        except ValueError:
            raise ValueError(
                f"{name} {text!r}: {part!r} is not a number; give a comma-separated list "
                f"like 0.025,0.25,2.5.") from None
    return values


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"1,5,7"`` or a mix (``"0-2,10"``) as a list of seeds, in order.

    At most :data:`MAX_NETWORKS` seeds, counted before any range is expanded."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            if dash:
                a, b = int(low), int(high)
                if b < a:
                    raise ValueError
            else:
                a = b = int(part)
        except ValueError:
            raise ValueError(
                f"--seeds {text!r}: {part!r} is neither a seed nor a range like 0-9; give "
                f"non-negative integers and ascending ranges, comma-separated.") from None
        if len(seeds) + (b - a + 1) > MAX_NETWORKS:
            raise ValueError(f"--seeds {text!r} lists more than {MAX_NETWORKS:,} seeds; a "
                             "sweep trains one network per seed: give fewer.")
        seeds.extend(range(a, b + 1))
    return seeds


def expand_grid(etas: Sequence[float], lmbdas: Sequence[float], seeds: Sequence[int],
                momenta: Sequence[float] = (0.0,), l1s: Sequence[float] = (0.0,),
                dropouts: Sequence[float] = (0.0,)) -> list[Run]:
    """Every ``(η, λ, μ, λ₁, p)`` combination times every seed, ``η`` slowest, seed
    fastest.

    Values are checked as ``train`` checks them; a repeated value is an error (it would
    train the same network twice).
    """
    from ..training.settings import check_dropout, check_l1, check_momentum

    axes = (("--eta", etas), ("--lmbda", lmbdas), ("--momentum", momenta), ("--l1", l1s),
            ("--dropout", dropouts), ("--seeds", seeds))
    for name, values in axes:
        if not values:
            raise ValueError(f"{name} is empty; give at least one value.")
        counts = Counter(values)  # linear in the number of values
        if len(counts) < len(values):
            repeated = sorted(v for v, c in counts.items() if c > 1)
            shown = ", ".join(map(str, repeated[:10])) + (", ..." if len(repeated) > 10 else "")
            raise ValueError(f"{name} lists {shown} more than once; give each value once.")
    if math.prod(len(values) for _, values in axes) > MAX_NETWORKS:
        sizes = " × ".join(f"{len(values)} {symbol}" for (_, values), symbol
                           in zip(axes, (*SYMBOLS.values(), "seeds"))
                           if len(values) > 1 or symbol in ("η", "λ", "seeds"))
        raise ValueError(f"{sizes} is more than {MAX_NETWORKS:,} networks; give fewer "
                         "values.")
    etas = [check_eta(e) for e in etas]
    lmbdas = [check_lmbda(l) for l in lmbdas]
    momenta = [_checked("--momentum", check_momentum, m) for m in momenta]
    l1s = [_checked("--l1", check_l1, v) for v in l1s]
    dropouts = [_checked("--dropout", check_dropout, p) for p in dropouts]
    seeds = [check_seed(s) for s in seeds]
    return [Run(e, l, s, m, v, p) for e in etas for l in lmbdas for m in momenta for v in l1s
            for p in dropouts for s in seeds]


def _checked(flag: str, check: Any, value: float) -> float:
    try:
        return float(check(value))
    except ValueError as exc:
        raise ValueError(f"{flag}: {exc}") from None


def split_into_stacks(runs: Sequence[Run], stack_size: int) -> list[list[Run]]:
    """Consecutive groups of at most ``stack_size`` runs, as even in size as possible."""
    if stack_size < 1:
        raise ValueError(f"--stack must be a positive integer, got {stack_size}.")
    count = math.ceil(len(runs) / stack_size)
    size = math.ceil(len(runs) / count)
    return [list(runs[i:i + size]) for i in range(0, len(runs), size)]


def default_stack_size(backend: Any, sizes: Sequence[int], dtype: str,
                       mini_batch_size: int) -> int:
    """How many networks fit in a quarter of the device's free memory (at most 256).

    Per network a stack holds its parameters and gradient (``2 P`` numbers) and the
    workspaces of a full and a last mini-batch (inputs, targets, and three buffers per
    layer per row). Evaluation runs one network at a time, so it does not count.
    """
    from ..model.parameters import n_parameters

    itemsize = np.dtype(dtype).itemsize
    per_row = sizes[0] + sizes[-1] + 3 * sum(sizes[1:])
    per_network = itemsize * (2 * n_parameters(sizes) + 2 * mini_batch_size * per_row + 64)
    free = _free_memory(backend)
    return max(1, min(MAX_DEFAULT_STACK, int(free // 4 // per_network)))


def _free_memory(backend: Any) -> float:
    from ..model.memory import available_memory

    return available_memory(backend)


def exact_number(x: float) -> str:
    """``x`` as ``%g`` where that reads back as ``x`` exactly, else in full (``repr``)."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))
