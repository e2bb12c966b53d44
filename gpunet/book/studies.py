"""The experiments the book could not afford: claims of chapters 1 and 3, many seeds each.

``gpunet reproduce --studies`` trains every setting of five studies (issue 20) with
:class:`gpunet.NetworkStack` (K networks at once, each with its own seed, η and λ),
keeps every network's per-epoch validation and test accuracy in
``OUT/studies/studies.json``, and writes ``OUT/studies.md`` (tables, plots, verdicts; see
:mod:`gpunet.book.studies_report`). ``--render-only`` rewrites the page from the JSON
without training.

Resuming: a network's run is keyed by its full settings (sizes, cost, init, η, λ,
training images, epochs, evaluation schedule, mini-batch, seed, dtype and the data's
sizes), and the results file is rewritten atomically after every stack. A second run
trains only the networks whose key is missing, so a stopped run continues where it
stopped and a changed grid trains its new settings instead of reusing old ones.

The record: every session keeps the environment that decides its numbers bit for bit
(:func:`environment`: the gpunet commit, Python, NumPy, the BLAS library with the
kernel it runs and its threads, the CPU, the dtype), and every new run its final
parameters' SHA-256 and its per-class test counts. ``python -m gpunet.book.studies
check --out OUT`` retrains a sample of the recorded runs (:meth:`Plan.sample`) under
whatever BLAS kernel the environment selects (``OPENBLAS_CORETYPE``) and records, in
the same file, whether each run came out identical.

The grid and its analysis live in :mod:`gpunet.book.studies_analysis` (re-exported
here); this module imports the analysis, the report and the plots, never the other way.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Optional, Sequence

import numpy as np

from ..backends.hints import install_hint
from ..io.mnist import MNIST, load_mnist
from ..io.fields import read_capped
from ..io.outputs import atomic_write_text
from .studies_analysis import (BOOK_ETA, COSTS, LARGE, SMALL, Plan, Run, Sizes, analyse,
                               full_plan, quick_plan)

__all__ = ["BOOK_ETA", "COSTS", "LARGE", "MAX_STACK", "SMALL", "CheckOptions", "Options",
           "Plan", "Run", "Sizes", "check_sample", "environment", "full_plan", "quick_plan",
           "render", "results_path", "run_studies"]

MAX_STACK = 30  # networks per stack: a unit of work kept on its own
DTYPES = ("float32", "float64")
DTypeName = Literal["float32", "float64"]


def dtype_name(name: str) -> DTypeName:
    """``name`` checked to be one of :data:`DTYPES` (one clear error otherwise)."""
    if name == "float32":
        return "float32"
    if name == "float64":
        return "float64"
    raise ValueError(f"--dtype must be one of {', '.join(DTYPES)}, got {name!r}.")


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


MAX_STUDIES_BYTES = 64 * 2**20
"""The largest ``studies.json`` read (the full studies' is some 0.5 MB)."""


def load_results(path: Path) -> dict[str, Any]:
    """The results file, or an empty one; a damaged file is one error naming it."""
    if not os.path.lexists(path):
        return {"runs": {}, "sessions": []}
    try:  # a regular file of at most MAX_STUDIES_BYTES (a device or pipe never ends)
        results = json.loads(read_capped(path, "studies.json", MAX_STUDIES_BYTES,
                                          "move it away to start afresh.").decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is not a readable studies.json ({exc}); move it away to "
                         "start afresh.") from None
    if (not isinstance(results, dict) or not isinstance(results.get("runs"), dict)
            or not isinstance(results.get("sessions"), list)
            or not isinstance(results.get("checks", []), list)):
        raise ValueError(f"{path} is not a studies.json (no 'runs' object, or its "
                         "'sessions' or 'checks' is not a list); move it away to start "
                         "afresh.")
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


def class_counts(data: MNIST) -> list[int]:
    """The test set's images per class (the collapse level's denominator)."""
    labels = np.asarray(data.test[1]).astype(np.int64)
    return [int(c) for c in np.bincount(labels, minlength=10)]


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


def parameters_sha256(row: np.ndarray) -> str:
    """The SHA-256 of one network's flat parameters (its dtype's bytes, C order): two
    runs are bit for bit the same exactly when these agree."""
    return hashlib.sha256(np.ascontiguousarray(row).tobytes()).hexdigest()


def train_stack(runs: Sequence[Run], data: MNIST, device: str,
                dtype: DTypeName = "float32") -> list[dict[str, Any]]:
    """Train ``runs`` (one group) as one :class:`gpunet.NetworkStack`; each network's
    validation and test accuracy after its evaluation epochs, divergence, its final
    parameters' SHA-256 and, after the last epoch, its test predictions and correct
    answers per class."""
    from ..networks.stack import NetworkStack

    first = runs[0]
    n = first.n_train
    training = (data.training[0][:n], data.training[1][:n])
    stack = NetworkStack(list(first.sizes), [r.seed for r in runs], cost=first.cost,
                         init=first.init, dtype=dtype, device=device)
    K = len(runs)
    evaluated = set(first.eval_epochs())
    rows: list[dict[str, Any]] = [{"epochs": [], "validation_correct": [], "test_correct": []}
                                  for _ in runs]
    diverged: list[Optional[int]] = [None] * K
    test_labels = np.asarray(data.test[1]).astype(np.int64)

    def predictions(images: np.ndarray) -> np.ndarray:
        out = np.asarray(stack.backend.to_host(stack.feedforward(images)))  # (K, n, 10)
        labels: np.ndarray = out.argmax(axis=2)
        return labels

    def on_epoch(records: list[dict[str, Any]]) -> None:
        epoch = int(records[0]["epoch"]) + 1
        for k, record in enumerate(records):
            if record.get("diverged") and diverged[k] is None:
                diverged[k] = epoch
        if epoch in evaluated:
            val = (predictions(data.validation[0]) == data.validation[1][None, :]).sum(axis=1)
            test = predictions(data.test[0])
            right = test == test_labels[None, :]
            for k in range(K):
                rows[k]["epochs"].append(epoch)
                rows[k]["validation_correct"].append(int(val[k]))
                rows[k]["test_correct"].append(int(right[k].sum()))
                if epoch == first.epochs:
                    rows[k]["test_predicted_per_class"] = [
                        int(c) for c in np.bincount(test[k], minlength=10)]
                    rows[k]["test_correct_per_class"] = [
                        int(c) for c in np.bincount(test_labels[right[k]], minlength=10)]

    started = time.perf_counter()
    stack.SGD(training, first.epochs, first.mini_batch, eta=[r.eta for r in runs],
              lmbda=[r.lmbda for r in runs], verbose=False, callback=on_epoch)
    seconds = time.perf_counter() - started
    final = np.asarray(stack.backend.to_host(stack.parameters))
    for k, row in enumerate(rows):
        row.update(diverged_epoch=diverged[k], seconds=seconds / K, stacked_with=K,
                   parameters_sha256=parameters_sha256(final[k]))
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
    dtype: DTypeName = "float32"
    todo = [r for r in plan.all_runs() if r.key(sizes, dtype) not in results["runs"]]
    groups = stacks(todo) if not options.render_only else []
    log(f"device: {backend.description}; data: {data.describe()}")
    log(f"{len(plan.all_runs())} runs in the grid, {len(todo)} to train"
        + (f" in {len(groups)} stacks" if groups else "")
        + (" (--render-only: none trained)" if options.render_only and todo else ""))
    results["test_class_counts"] = class_counts(data)
    session: dict[str, Any] = {"date": _now(), "device": backend.description, "stacks": 0,
                               "networks": 0, "wall_seconds": 0.0, "command": _command(),
                               "environment": environment(backend, dtype)}
    started = time.perf_counter()
    if groups:
        results["sessions"].append(session)
        path.parent.mkdir(parents=True, exist_ok=True)
    for i, group in enumerate(groups, 1):
        t0 = time.perf_counter()
        first = group[0]
        rows = train_stack(group, data, options.device, dtype)
        for run, row in zip(group, rows):
            results["runs"][run.key(sizes, dtype)] = row
        session["stacks"] += 1
        session["networks"] += len(group)
        session["wall_seconds"] = time.perf_counter() - started
        results["meta"] = session["environment"]
        atomic_write_text(path, json.dumps(results, indent=None))  # the unit of work kept
        log(f"[{i}/{len(groups)}] {list(first.sizes)} {first.cost} init={first.init} "
            f"n={first.n_train} epochs={first.epochs}: {len(group)} networks "
            f"(η {sorted({r.eta for r in group})}, λ {sorted({r.lmbda for r in group})}) "
            f"in {time.perf_counter() - t0:.1f} s")
    render(plan, results, sizes, out, plots=options.plots, log=log)
    return results


def render(plan: Plan, results: dict[str, Any], sizes: dict[str, int], out: Path,
           plots: bool = True, log: Callable[[str], None] = print) -> None:
    """Analyse the runs of ``plan`` found in ``results`` and write ``OUT/studies.md``."""
    from .studies_report import render_studies

    analysis = analyse(plan, results["runs"], sizes, "float32",
                       results.get("test_class_counts"))
    images: dict[str, str] = {}
    if plots:
        try:
            from .studies_plots import plot_studies
        except ImportError:
            log(f"plots skipped: matplotlib is not installed ({install_hint('plot')})")
        else:
            images = plot_studies(analysis, Path(out) / "studies")
    text = render_studies(plan, analysis, results, sizes, images)
    atomic_write_text(Path(out) / "studies.md", text)
    log(f"wrote {Path(out) / 'studies.md'} and {Path(out) / 'studies'}/")


# ------------------------------------------------------------- the record
def environment(backend: Any, dtype: str) -> dict[str, Any]:
    """What decides a run's numbers bit for bit, as JSON: the gpunet commit (and any
    uncommitted change under ``gpunet/``), Python, NumPy, the BLAS library (build,
    the kernel it selected for this CPU, its threads), the environment variables
    that change them, the CPU, the worker processes a large stack uses and the dtype."""
    from .._version import __version__
    from ..bench import cpu_model
    from ..engines.stacked_workers import WORKERS_FROM, default_workers

    return {
        "gpunet": __version__, **_git_state(), "python": platform.python_version(),
        "numpy": np.__version__, "threadpoolctl": _version("threadpoolctl"),
        "platform": platform.platform(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
        **_cpu_identity(), "blas": _blas(),
        "environment_variables": {k: os.environ[k] for k in
                                  ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS",
                                   "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_CBWR")
                                  if k in os.environ},
        "threads": {"workers": default_workers(), "workers_from_multiply_adds": WORKERS_FROM,
                    "note": "a stack of n x K x P >= workers_from multiply-adds an epoch "
                    "trains on one process per CPU, BLAS on one thread in each; smaller "
                    "products run BLAS on one thread (gpunet.engines.cpu)"},
        "device": backend.description, "dtype": dtype, "updated": _now(),
    }


def _version(name: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # not installed, or no metadata
        return None


def _blas() -> list[dict[str, Any]]:
    """Each BLAS library NumPy loaded, as threadpoolctl reports it: its build
    (internal API, version, file), threading layer, threads and the kernel
    (``architecture``) it selected for this CPU."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("internal_api", "version", "architecture", "threading_layer", "num_threads",
            "prefix", "filepath")
    out = []
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            entry = {k: info.get(k) for k in keep}
            entry["filepath"] = Path(str(entry["filepath"])).name if entry["filepath"] else None
            out.append(entry)
    return out


def _cpu_identity() -> dict[str, Any]:
    """The CPU's vendor, family, model, stepping and the vector extensions BLAS kernels
    are chosen by (Linux /proc/cpuinfo; empty elsewhere)."""
    fields = {"vendor_id": "cpu_vendor", "cpu family": "cpu_family", "model": "cpu_model_id",
              "stepping": "cpu_stepping"}
    out: dict[str, Any] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return out
    for line in text.split("\n\n")[0].splitlines():
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if name in fields:
            out[fields[name]] = value
        elif name == "flags":
            wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
            out["cpu_flags"] = [f for f in wanted if f in value.split()]
    return out


def _git_state() -> dict[str, Any]:
    """The commit of the gpunet checkout this module runs from, and the files under
    ``gpunet/`` that differ from it (None where this is not a git checkout)."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> Optional[str]:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                  text=True, timeout=20, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD") if (root / ".git").exists() else None
    if commit is None:
        return {"commit": None, "uncommitted": None}
    changed = git("status", "--porcelain", "--untracked-files=no", "--", "gpunet") or ""
    return {"commit": commit.strip(),
            "uncommitted": [line[3:] for line in changed.splitlines() if line.strip()]}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _command() -> str:
    if sys.argv[1:2] == ["reproduce"]:
        return "gpunet " + " ".join(sys.argv[1:])
    if sys.argv[1:2] == ["check"]:
        return "python -m gpunet.book.studies " + " ".join(sys.argv[1:])
    return "gpunet.book.studies (from Python)"


# ------------------------------------------------------------ the check
@dataclass
class CheckOptions:
    out: Path = Path("docs")
    device: str = "cpu"
    dtype: str = "float32"
    runs: Optional[int] = None  # the first this many of the sample (default: all)
    quick: bool = False  # the quick plan's sample (a results file of --quick runs)
    log: Callable[[str], None] = field(default=print)


def first_difference(recorded: dict[str, Any], row: dict[str, Any]) -> Optional[int]:
    """The first evaluation epoch at which a retrained run's validation or test count
    differs from the recorded one (None: identical at every epoch)."""
    if recorded["epochs"] != row["epochs"]:
        raise ValueError("a retrained run was evaluated after other epochs than the "
                         "recorded one; its settings differ.")
    for i, epoch in enumerate(row["epochs"]):
        if (recorded["validation_correct"][i] != row["validation_correct"][i]
                or recorded["test_correct"][i] != row["test_correct"][i]):
            return int(epoch)
    return None


def check_sample(options: CheckOptions) -> dict[str, Any]:
    """Retrain the sample of recorded runs (:meth:`Plan.sample`) here, compare each
    with its record epoch by epoch, and append the result to ``studies.json``'s
    ``checks`` (with this environment: the BLAS kernel it ran)."""
    dtype = dtype_name(options.dtype)
    path = results_path(options.out)
    results = load_results(path)
    if not results["runs"]:
        raise ValueError(f"{path} records no runs to check; run `gpunet reproduce "
                         "--studies` first.")
    from ..backends import get_backend

    backend = get_backend(options.device)
    plan = quick_plan() if options.quick else full_plan()
    runs = plan.sample()[:options.runs] if options.runs else plan.sample()
    data = data_for(plan)
    sizes = data_sizes(data)
    started = time.perf_counter()
    env = environment(backend, options.dtype)
    kernel = ", ".join(str(b.get("architecture")) for b in env["blas"]) or "no BLAS found"
    options.log(f"retraining {len(runs)} recorded runs in {options.dtype} on {kernel}")
    entries = []
    for group in stacks(runs):
        rows = train_stack(group, data, options.device, dtype)
        for run, row in zip(group, rows):
            recorded = results["runs"].get(run.key(sizes, options.dtype))
            diff = None if recorded is None else first_difference(recorded, row)
            entries.append({
                "key": run.key(sizes, options.dtype), "label": run.label(),
                "recorded": recorded is not None,
                "identical": None if recorded is None else diff is None,
                "first_difference": diff,
                "recorded_final": None if recorded is None else
                [recorded["validation_correct"][-1], recorded["test_correct"][-1]],
                "final": [row["validation_correct"][-1], row["test_correct"][-1]],
                "epochs": row["epochs"], "validation_correct": row["validation_correct"],
                "test_correct": row["test_correct"],
                "parameters_sha256": row["parameters_sha256"],
                "test_predicted_per_class": row.get("test_predicted_per_class"),
                "test_correct_per_class": row.get("test_correct_per_class")})
            same = ("no record in this dtype" if recorded is None else
                    "identical at every epoch" if diff is None else
                    f"first differs after epoch {diff}")
            options.log(f"  {run.label()}: {same}")
    results.setdefault("checks", []).append({
        "date": _now(), "command": _command(), "dtype": options.dtype,
        "wall_seconds": time.perf_counter() - started, "environment": env, "runs": entries})
    results["test_class_counts"] = class_counts(data)
    atomic_write_text(path, json.dumps(results, indent=None))
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m gpunet.book.studies check --out DIR``: the reproducibility check.
    Set ``OPENBLAS_CORETYPE`` (e.g. Haswell) to force another BLAS kernel; then
    ``gpunet reproduce --studies --out DIR --render-only`` puts the result on the page."""
    parser = argparse.ArgumentParser(prog="python -m gpunet.book.studies")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="retrain a sample of the recorded runs and "
                           "record whether they come out identical")
    check.add_argument("--out", default="docs", help="the folder holding studies/studies.json")
    check.add_argument("--device", default="cpu")
    check.add_argument("--dtype", default="float32", help="float32 (the recorded runs' "
                       "dtype) or float64 (compared across checks only)")
    check.add_argument("--runs", type=int, default=None,
                       help="retrain only the first N runs of the sample")
    check.add_argument("--quick", action="store_true",
                       help="the sample of a `gpunet reproduce --studies --quick` file")
    args = parser.parse_args(argv)
    try:
        if args.runs is not None and args.runs < 1:
            raise ValueError(f"--runs must be at least 1, got {args.runs}.")
        check_sample(CheckOptions(out=Path(args.out), device=args.device, dtype=args.dtype,
                                  runs=args.runs, quick=args.quick))
    except ValueError as exc:
        print(f"gpunet: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
