"""The experiments the book could not afford: its claims of chapters 1 to 3, ten seeds each.

``gpunet reproduce --studies`` trains every setting of five studies (issue 20) with
:class:`gpunet.NetworkStack` (K networks at once, each with its own seed, η and λ),
keeps every network's per-epoch validation and test accuracy in
``OUT/studies/studies.json``, and writes ``OUT/studies.md`` (tables, plots, verdicts; see
:mod:`gpunet.book.studies_report`).

Resuming: a network's run is keyed by its full settings (sizes, cost, init, η, λ,
training images, epochs, evaluation schedule, mini-batch, seed, dtype and the data's
sizes), and the results file is rewritten atomically after every stack. A second run
trains only the networks whose key is missing, so a stopped run continues where it
stopped and a changed grid trains its new settings instead of reusing old ones.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from ..mnist import MNIST, load_mnist
from ..network import InitName
from ..persistence import atomic_write_text

Sizes = tuple[int, ...]
SMALL: Sizes = (784, 30, 10)
LARGE: Sizes = (784, 100, 10)
BOOK_ETA = {"quadratic": 3.0, "cross-entropy": 0.5}  # book.md section 9
COSTS = ("quadratic", "cross-entropy")
MAX_STACK = 30  # networks per stack: a unit of work kept on its own


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
            "η (quadratic 0.75 to 12, cross-entropy 0.125 to 2), not a wider or finer "
            "one; study 2's curve shows where the optimum lies on a wider grid.",
            "Study 2: [784, 30, 10] only (the book's η = 0.001 run was [784, 100, 10]), η "
            "at half-decade steps (factor 3.16).",
            "Studies 3 and 4 read study 1's runs at the book's settings, trained with 30 "
            "seeds instead of 10 so that best of three (taken over every triple of seeds) "
            "and the share of runs missing by a point are measured on more than ten runs.",
            "Study 5: cross-entropy at η = 0.5 only; λ in {0, 1, 5} at 50,000 images and "
            "{0, 0.1, 1, 5} at 1,000 images (400 epochs, accuracy measured every 25).",
            "Mini-batch 10 and float32 throughout; no GPU run.",
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
        lambda_small=(0.0, 1.0),
        lambda_full_epochs=2, lambda_full=(0.0, 5.0),
        quick=True,
        reductions=("Quick smoke run: 500 images in each split, 2 epochs, tiny grids, "
                    f"{seeds} seeds; the numbers mean nothing.",),
    )


# ------------------------------------------------------------------ running
@dataclass
class Options:
    device: str = "auto"
    seeds: Optional[int] = None  # default: 10 (3 in quick mode)
    quick: bool = False
    out: Path = Path("reproduction")
    plots: bool = True
    render_only: bool = False
    log: Callable[[str], None] = field(default=print)


def results_path(out: Path) -> Path:
    return Path(out) / "studies" / "studies.json"


def load_results(path: Path) -> dict[str, Any]:
    """The results file, or an empty one; a damaged file is one error naming it."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"runs": {}, "sessions": []}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is not a readable studies.json ({exc}); move it away to "
                         "start afresh.") from None
    if (not isinstance(results, dict) or not isinstance(results.get("runs"), dict)
            or not isinstance(results.get("sessions"), list)):
        raise ValueError(f"{path} is not a studies.json (no 'runs' object or 'sessions' "
                         "list); move it away to start afresh.")
    return results


def data_for(plan: Plan) -> MNIST:
    data = load_mnist()
    if plan.limit is None:
        return data
    n = plan.limit
    return MNIST((data.training[0][:n], data.training[1][:n]),
                 (data.validation[0][:n], data.validation[1][:n]),
                 (data.test[0][:n], data.test[1][:n]), data.source + f" (first {n} of each)")


def data_sizes(data: MNIST) -> dict[str, int]:
    return {"training": len(data.training[1]), "validation": len(data.validation[1]),
            "test": len(data.test[1])}


def stacks(runs: Iterable[Run]) -> list[list[Run]]:
    """The runs grouped into stacks of at most :data:`MAX_STACK` that can train together."""
    groups: dict[tuple[Any, ...], list[Run]] = {}
    for run in runs:
        groups.setdefault(run.group(), []).append(run)
    out = []
    for members in groups.values():
        for i in range(0, len(members), MAX_STACK):
            out.append(members[i:i + MAX_STACK])
    return out


def train_stack(runs: Sequence[Run], data: MNIST, device: str) -> list[dict[str, Any]]:
    """Train ``runs`` (one group) as one :class:`gpunet.NetworkStack`; each network's
    validation and test accuracy after its evaluation epochs, and divergence."""
    from ..stack import NetworkStack

    first = runs[0]
    n = first.n_train
    training = (data.training[0][:n], data.training[1][:n])
    stack = NetworkStack(list(first.sizes), [r.seed for r in runs], cost=first.cost,
                         init=first.init, dtype="float32", device=device)
    K = len(runs)
    evaluated = set(first.eval_epochs())
    rows: list[dict[str, Any]] = [{"epochs": [], "validation_correct": [], "test_correct": []}
                                  for _ in runs]
    diverged: list[Optional[int]] = [None] * K

    def correct(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        out = stack.backend.to_host(stack.feedforward(images))  # (K, n, 10)
        return np.asarray((out.argmax(axis=2) == labels[None, :]).sum(axis=1))

    def on_epoch(records: list[dict[str, Any]]) -> None:
        epoch = int(records[0]["epoch"]) + 1
        for k, record in enumerate(records):
            if record.get("diverged") and diverged[k] is None:
                diverged[k] = epoch
        if epoch in evaluated:
            val = correct(*data.validation)
            test = correct(*data.test)
            for k in range(K):
                rows[k]["epochs"].append(epoch)
                rows[k]["validation_correct"].append(int(val[k]))
                rows[k]["test_correct"].append(int(test[k]))

    started = time.perf_counter()
    stack.SGD(training, first.epochs, first.mini_batch, eta=[r.eta for r in runs],
              lmbda=[r.lmbda for r in runs], verbose=False, callback=on_epoch)
    seconds = time.perf_counter() - started
    for k, row in enumerate(rows):
        row.update(diverged_epoch=diverged[k], seconds=seconds / K, stacked_with=K)
    return rows


def run_studies(options: Options) -> dict[str, Any]:
    """Train what is missing, then write ``studies.json``, ``studies.md`` and the plots."""
    if options.seeds is not None and options.seeds < 3:
        raise ValueError(f"--seeds must be at least 3 for the studies, got {options.seeds}.")
    plan = (quick_plan(options.seeds or 3) if options.quick
            else full_plan(options.seeds or 10))
    log = options.log
    out = Path(options.out)
    path = results_path(out)
    results = load_results(path)
    from ..backends import get_backend

    backend = get_backend(options.device)
    data = data_for(plan)
    sizes = data_sizes(data)
    dtype = "float32"
    todo = [r for r in plan.all_runs() if r.key(sizes, dtype) not in results["runs"]]
    groups = stacks(todo) if not options.render_only else []
    log(f"device: {backend.description}; data: {data.describe()}")
    log(f"{len(plan.all_runs())} runs in the grid, {len(todo)} to train"
        + (f" in {len(groups)} stacks" if groups else ""))
    session: dict[str, Any] = {"date": _now(), "device": backend.description, "stacks": 0,
                               "networks": 0, "wall_seconds": 0.0, "command": _command()}
    results["sessions"].append(session)
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    for i, group in enumerate(groups, 1):
        t0 = time.perf_counter()
        first = group[0]
        rows = train_stack(group, data, options.device)
        for run, row in zip(group, rows):
            results["runs"][run.key(sizes, dtype)] = row
        session["stacks"] += 1
        session["networks"] += len(group)
        session["wall_seconds"] = time.perf_counter() - started
        results["meta"] = _meta(backend)
        atomic_write_text(path, json.dumps(results, indent=None))  # the unit of work kept
        log(f"[{i}/{len(groups)}] {list(first.sizes)} {first.cost} init={first.init} "
            f"n={first.n_train} epochs={first.epochs}: {len(group)} networks "
            f"(η {sorted({r.eta for r in group})}, λ {sorted({r.lmbda for r in group})}) "
            f"in {time.perf_counter() - t0:.1f} s")
    session["wall_seconds"] = time.perf_counter() - started
    if not options.render_only:
        results["meta"] = _meta(backend)
        atomic_write_text(path, json.dumps(results, indent=None))
    else:
        results["sessions"].pop()
    render(plan, results, sizes, out, plots=options.plots, log=log)
    return results


def render(plan: Plan, results: dict[str, Any], sizes: dict[str, int], out: Path,
           plots: bool = True, log: Callable[[str], None] = print) -> None:
    """Analyse the runs of ``plan`` found in ``results`` and write ``OUT/studies.md``."""
    from .studies_analysis import analyse
    from .studies_report import render_studies

    analysis = analyse(plan, results["runs"], sizes, "float32")
    images: dict[str, str] = {}
    if plots:
        try:
            from .studies_plots import plot_studies
        except ImportError:
            log("plots skipped: matplotlib is not installed (pip install 'gpunet[plot]')")
        else:
            images = plot_studies(analysis, Path(out) / "studies")
    text = render_studies(plan, analysis, results, sizes, images)
    atomic_write_text(Path(out) / "studies.md", text)
    log(f"wrote {Path(out) / 'studies.md'} and {Path(out) / 'studies'}/")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _command() -> str:
    if sys.argv[1:2] == ["reproduce"]:
        return "gpunet " + " ".join(sys.argv[1:])
    return "gpunet.book.studies.run_studies(...)"


def _meta(backend: Any) -> dict[str, Any]:
    from .. import __version__
    from ..bench import cpu_model

    return {
        "gpunet": __version__, "python": platform.python_version(),
        "numpy": np.__version__, "platform": platform.platform(),
        "cpu": f"{cpu_model()} ({os.cpu_count()} CPUs)",
        "device": backend.description, "dtype": "float32", "updated": _now(),
    }
