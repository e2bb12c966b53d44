"""Reproduce the book's published numbers (chapters 1 to 3) and report them side by side.

``gpunet reproduce`` runs every MNIST experiment of the book's table with several seeds,
the 10-output against 4-bit-output comparison, the baselines and the toy neuron, and
writes ``results.json`` (raw: every run's per-epoch accuracy), ``results.md`` (a table
with the book's number, gpunet's best of the seeds and mean ± std, and whether each
lands in its expected range) and, with matplotlib, PNG plots linked from the report.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..backends.hints import install_hint
from ..backends import Backend, get_backend

from .baselines import AverageDarkness, svm_correct
from ..bench import cpu_model
from ..io.mnist import MNIST, load_mnist
from ..networks.network import InitName, Network
from ..io.fields import read_capped
from ..io.outputs import atomic_write_text
from ..training.progress import epochs_done
from .toy import SETTINGS, STARTS, train_toy_neuron



@dataclass(frozen=True)
class Experiment:
    """One row of the book's table, and the range a faithful run should land in."""

    name: str
    title: str
    sizes: tuple[int, ...]
    cost: str
    eta: float
    book: str  # the book's result, as it states it
    expected: str  # the expected range, in words
    check: Optional[Callable[[list[dict[str, Any]]], bool]]  # runs -> within the range?
    init: InitName = "large"
    mini_batch_size: int = 10
    epochs: int = 30
    encoding: str = "one-hot"  # or "binary": 4 outputs, the digit's bits
    lmbda: float = 0.0  # L2 regularization λ (chapter 3)
    training_images: Optional[int] = None  # train on the first N only (None: all)
    evaluate: str = "test"  # or "validation": the set scored after each epoch


def _best_pct(runs: list[dict[str, Any]]) -> float:
    return 100.0 * float(max(r["best"] for r in runs)) / float(runs[0]["total"])


EXPERIMENTS: list[Experiment] = [
    Experiment("chapter1", "Chapter 1: [784, 30, 10]", (784, 30, 10), "quadratic", 3.0,
               "95.42% (best of 3; epochs 0/1/2: 9129/9295/9348)", "best of 3 >= 95.0%",
               lambda runs: _best_pct(runs) >= 95.0),
    Experiment("hidden100", "More hidden neurons: [784, 100, 10]", (784, 100, 10),
               "quadratic", 3.0, "96.59% (runs vary)", "best of 3 >= 96.0%",
               lambda runs: _best_pct(runs) >= 96.0),
    Experiment("eta-small", "η too small (0.001)", (784, 100, 10), "quadratic", 0.001,
               "epoch 0: 1139, epoch 29: 2142", "final 10% to 40%, rising",
               lambda runs: all(1000 <= r["accuracy"][-1] <= 4000
                                and r["accuracy"][-1] > r["accuracy"][0] for r in runs)),
    Experiment("eta-large", "η too large (100)", (784, 30, 10), "quadratic", 100.0,
               "1009 then 982 (near chance)", "every epoch <= 15%",
               lambda runs: all(max(r["accuracy"]) <= 1500 for r in runs)),
    Experiment("no-hidden", "No hidden layer: [784, 10]", (784, 10), "quadratic", 3.0,
               "not given (exercise)", "none (the book gives no number)", None),
    Experiment("ce30", "Cross-entropy [784, 30, 10]", (784, 30, 10), "cross-entropy", 0.5,
               "95.49%", "best of 3 >= 95.0%", lambda runs: _best_pct(runs) >= 95.0),
    Experiment("ce100", "Cross-entropy [784, 100, 10]", (784, 100, 10), "cross-entropy", 0.5,
               "96.82%", "best of 3 >= 96.3%", lambda runs: _best_pct(runs) >= 96.3),
    Experiment("binary4", "4 binary outputs: [784, 30, 4]", (784, 30, 4), "quadratic", 3.0,
               "10 outputs beat 4 (no number given)", "below chapter 1's 10 outputs",
               None, encoding="binary"),
    # Chapter 3, "Regularization" (L2): the book's runs with their λ, cross-entropy and
    # network2.py's large_weight_initializer, as the book's own commands call it.
    Experiment("l2-small", "L2, 1,000 images: [784, 30, 10], λ = 0.1, 400 epochs",
               (784, 30, 10), "cross-entropy", 0.5, "87.1% peak (82.27% unregularized)",
               "best of 3 >= 86.5%", lambda runs: _best_pct(runs) >= 86.5, lmbda=0.1,
               training_images=1000, epochs=400),
    Experiment("l2-30", "L2: [784, 30, 10], λ = 5.0", (784, 30, 10), "cross-entropy", 0.5,
               "96.49% (95.49% unregularized)", "best of 3 >= 96.0%",
               lambda runs: _best_pct(runs) >= 96.0, lmbda=5.0),
    Experiment("l2-100", "L2: [784, 100, 10], λ = 5.0 (validation set)", (784, 100, 10),
               "cross-entropy", 0.5, "97.92% on the validation data", "best of 3 >= 97.4%",
               lambda runs: _best_pct(runs) >= 97.4, lmbda=5.0, evaluate="validation"),
    Experiment("l2-100-60", "L2: [784, 100, 10], λ = 5.0, η = 0.1, 60 epochs (validation set)",
               (784, 100, 10), "cross-entropy", 0.1, "98.04% on the validation data",
               "best of 3 >= 97.5%", lambda runs: _best_pct(runs) >= 97.5, lmbda=5.0,
               evaluate="validation", epochs=60),
    # Chapter 3's softmax ("Softmax") publishes no number; chapter 6 ("Introducing
    # convolutional networks") trains this network with network3.py's softmax layer
    # and reports "a best classification accuracy of 97.80 percent" (test accuracy at
    # the best validation epoch, best of three). network3.py starts the softmax layer at
    # zero and the hidden layer at N(0, 1/n_out); this row starts from network2.py's
    # default initializer, and scores the best test accuracy of each run.
    Experiment("softmax100", "Softmax + log-likelihood: [784, 100, 10], η = 0.1, 60 epochs",
               (784, 100, 10), "log-likelihood", 0.1,
               "97.80% (chapter 6, network3.py; best of three)", "best of 3 >= 97.3%",
               lambda runs: _best_pct(runs) >= 97.3, init="default", epochs=60),
]
BY_NAME = {e.name: e for e in EXPERIMENTS}


# ------------------------------------------------------------------ running
def binary_targets(labels: np.ndarray) -> np.ndarray:
    """The 4-bit encoding: row ``i`` holds the bits of ``labels[i]``, lowest first."""
    return ((labels[:, None] >> np.arange(4)) & 1).astype(np.float64)


def experiment_data(exp: Experiment, data: MNIST) -> tuple[Any, Any]:
    """The training set ``exp`` trains on (its first ``training_images``) and the set it
    is scored on after each epoch (``evaluate``: the test or the validation images)."""
    X, y = data.training
    n = exp.training_images
    training = (X, y) if n is None else (X[:n], y[:n])
    return training, data.validation if exp.evaluate == "validation" else data.test


def run_experiment(exp: Experiment, data: MNIST, seed: int, backend: Backend,
                   epochs: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Train one seed of ``exp``; return its per-epoch accuracy (on the test set, or the
    validation set where ``exp`` says) and timings."""
    training, test = experiment_data(exp, data)
    net = Network(list(exp.sizes), cost=exp.cost, init=exp.init, device=backend, seed=seed)
    accuracy: list[int] = []
    seconds: list[float] = []

    def on_epoch(record: dict[str, Any]) -> None:
        if exp.encoding == "binary":
            bits = backend.to_host(net.feedforward(test[0])) > 0.5
            decoded = (bits * (1 << np.arange(4))).sum(axis=1)
            accuracy.append(int(np.sum(decoded == test[1])))
        else:
            accuracy.append(record["evaluation_correct"])
        seconds.append(record["train_seconds"])
        progress(f"{epochs_done(record['epoch'] + 1, epochs)}: {accuracy[-1]} / {len(test[1])}")

    if exp.encoding == "binary":
        net.SGD((training[0], binary_targets(training[1])), epochs, exp.mini_batch_size,
                exp.eta, verbose=False, callback=on_epoch)
    else:
        net.SGD(training, epochs, exp.mini_batch_size, exp.eta, test_data=test,
                lmbda=exp.lmbda, verbose=False, callback=on_epoch)
    best_epoch = int(np.argmax(accuracy))
    return {"seed": seed, "accuracy": accuracy, "total": len(test[1]),
            "best": accuracy[best_epoch], "best_epoch": best_epoch,
            "final": accuracy[-1], "train_seconds": seconds}


def stacks_exactly(exp: Experiment, backend: Backend, n: int) -> bool:
    """Whether training ``exp``'s seeds as one :class:`gpunet.NetworkStack` gives each
    seed bit for bit the run :func:`run_experiment` gives it on ``backend``.

    True on NumPy (the stacked engine makes the same operations per network, batched;
    tests/test_stack.py checks the parameters are identical) and where both a single
    network and the stack take the fused CUDA kernel (block ``k`` runs network ``k``
    exactly as a one-block launch does). Elsewhere (CuPy's eager engine) the stacked
    update rounds differently in float32, so the seeds run one by one.
    """
    if backend.kind == "host":
        return True
    from ..engines import fused

    probe = Network(list(exp.sizes), cost=exp.cost, init=exp.init, device=backend, seed=0)
    launcher = fused.cuda_launcher(probe)
    return launcher is not None and not fused.unfit_reason(probe, exp.mini_batch_size, n,
                                                           launcher)


def run_experiment_stacked(exp: Experiment, data: MNIST, seeds: Sequence[int],
                           backend: Backend, epochs: int,
                           progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """Train the ``seeds`` of ``exp`` together as one :class:`gpunet.NetworkStack`.

    Returns what :func:`run_experiment` returns for each seed (the same numbers, see
    :func:`stacks_exactly`), except that ``train_seconds`` is each network's share of
    the stack's epoch (the stack's seconds / K) and ``stacked_with`` says K.
    """
    from ..networks.stack import NetworkStack

    training, test = experiment_data(exp, data)
    stack = NetworkStack(list(exp.sizes), list(seeds), cost=exp.cost, init=exp.init,
                         device=backend)
    K = len(stack)
    accuracy: list[list[int]] = [[] for _ in range(K)]
    seconds: list[float] = []

    def on_epoch(records: list[dict[str, Any]]) -> None:
        if exp.encoding == "binary":
            bits = backend.to_host(stack.feedforward(test[0])) > 0.5
            decoded = (bits * (1 << np.arange(4))).sum(axis=2)
            for k in range(K):
                accuracy[k].append(int(np.sum(decoded[k] == test[1])))
        else:
            for k, record in enumerate(records):
                accuracy[k].append(record["evaluation_correct"])
        seconds.append(records[0]["train_seconds"] / K)
        progress(f"{epochs_done(records[0]['epoch'] + 1, epochs)}: "
                 f"{' '.join(str(a[-1]) for a in accuracy)} / {len(test[1])}")

    if exp.encoding == "binary":
        stack.SGD((training[0], binary_targets(training[1])), epochs, exp.mini_batch_size,
                  exp.eta, verbose=False, callback=on_epoch)
    else:
        stack.SGD(training, epochs, exp.mini_batch_size, exp.eta, test_data=test,
                  lmbda=exp.lmbda, verbose=False, callback=on_epoch)
    runs = []
    for seed, acc in zip(seeds, accuracy):
        best_epoch = int(np.argmax(acc))
        runs.append({"seed": seed, "accuracy": acc, "total": len(test[1]),
                     "best": acc[best_epoch], "best_epoch": best_epoch, "final": acc[-1],
                     "train_seconds": list(seconds), "stacked_with": K})
    return runs


def summarize(exp: Experiment, runs: list[dict[str, Any]], checked: bool) -> dict[str, Any]:
    bests = [100.0 * r["best"] / r["total"] for r in runs]
    finals = [100.0 * r["final"] / r["total"] for r in runs]
    within = exp.check(runs) if (checked and exp.check is not None) else None
    return {
        "best_of_runs_pct": max(bests),
        "mean_best_pct": statistics.fmean(bests),
        "std_best_pct": statistics.stdev(bests) if len(bests) > 1 else 0.0,
        "mean_final_pct": statistics.fmean(finals),
        "median_epoch_seconds": statistics.median(s for r in runs for s in r["train_seconds"]),
        "within_range": within,
    }


@dataclass
class Options:
    device: str = "auto"
    seeds: int = 3
    only: Sequence[str] = ()
    quick: bool = False
    out: Path = Path("reproduction")
    svm: bool = True
    plots: bool = True
    log: Callable[[str], None] = field(default=print)


def reproduce(options: Options) -> dict[str, Any]:
    """Run the chosen experiments and write ``results.json``, ``results.md``, plots."""
    unknown = [n for n in options.only if n not in BY_NAME and n not in ("baselines", "toy")]
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; choose from "
                         f"{', '.join([*BY_NAME, 'baselines', 'toy'])}.")
    if options.seeds < 1:
        raise ValueError(f"--seeds must be a positive integer, got {options.seeds}.")
    selected = set(options.only) or {*BY_NAME, "baselines", "toy"}
    if "binary4" in selected:
        selected.add("chapter1")  # its comparison needs the 10-output runs
    backend = get_backend(options.device)
    log = options.log
    started = time.perf_counter()
    data = load_mnist()
    if options.quick:  # a smoke run: small subsets, one seed, two epochs
        data = MNIST((data.training[0][:1000], data.training[1][:1000]),
                     (data.validation[0][:1000], data.validation[1][:1000]),
                     (data.test[0][:1000], data.test[1][:1000]), data.source + " (quick subset)")
    seeds = 1 if options.quick else options.seeds
    epochs_override = 2 if options.quick else None
    note = f" [{backend.selection_note}]" if backend.selection_note else ""
    log(f"device: {backend.description}{note}")
    log(f"data: {data.describe()}")

    results: dict[str, Any] = {"meta": _meta(backend, options, seeds), "experiments": {}}
    results["meta"]["test_images"] = len(data.test[1])
    chosen = [e for e in EXPERIMENTS if e.name in selected]
    total_runs, done = len(chosen) * seeds, 0
    for exp in chosen:
        epochs = epochs_override or exp.epochs
        runs = []
        if seeds > 1 and stacks_exactly(exp, backend, len(experiment_data(exp, data)[0][1])):
            tag = f"[{done + 1}-{done + seeds}/{total_runs}] {exp.name} seeds 0-{seeds - 1}"
            t0 = time.perf_counter()
            runs = run_experiment_stacked(exp, data, range(seeds), backend, epochs,
                                          progress=_progress_printer(tag, log))
            _end_progress(log)
            done += seeds
            log(f"{tag} (stacked): best " + ", ".join(
                f"{r['best']} (with {epochs_done(r['best_epoch'] + 1)})" for r in runs)
                + f" / {runs[0]['total']}, final " + ", ".join(str(r['final']) for r in runs)
                + f", {time.perf_counter() - t0:.1f} s")
        for seed in range(len(runs), seeds):
            done += 1
            tag = f"[{done}/{total_runs}] {exp.name} seed {seed}"
            t0 = time.perf_counter()
            run = run_experiment(exp, data, seed, backend, epochs,
                                 progress=_progress_printer(tag, log))
            _end_progress(log)
            log(f"{tag}: best {run['best']} / {run['total']} (with "
                f"{epochs_done(run['best_epoch'] + 1)}), "
                f"final {run['final']}, {time.perf_counter() - t0:.1f} s")
            runs.append(run)
        results["experiments"][exp.name] = {
            "config": {k: v for k, v in asdict(exp).items() if k != "check"},
            "epochs": epochs,
            "runs": runs,
            "summary": summarize(exp, runs, checked=not options.quick),
        }
    _compare_encodings(results, checked=not options.quick)
    if "baselines" in selected:
        results["baselines"] = _baselines(data, options, log)
    if "toy" in selected:
        results["toy"] = _toy(epochs=300, log=log)
    results["meta"]["wall_seconds"] = time.perf_counter() - started

    out = Path(options.out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results" / "results.json", json.dumps(results, indent=1))
    images = _plots(results, out / "results", log) if options.plots else {}
    from .report import render_report

    atomic_write_text(out / "results.md", render_report(results, images))
    log(f"wrote {out / 'results.md'} and {out / 'results'}/ "
        f"in {results['meta']['wall_seconds']:.0f} s")
    return results


MAX_RESULTS_BYTES = 64 * 2**20
"""The largest ``results.json`` read (a full reproduction's is some 200 KB)."""


def render(out: Path, plots: bool = True, log: Callable[[str], None] = print) -> None:
    """Rewrite ``out/results.md`` (and the plots) from ``out/results/results.json``."""
    from .report import MALFORMED, check_results, render_report

    path = Path(out) / "results" / "results.json"
    if not os.path.lexists(path):
        raise ValueError(f"{path} not found; run gpunet reproduce --out {out} first.")
    try:  # a regular file of at most MAX_RESULTS_BYTES (a device or pipe never ends)
        results = json.loads(read_capped(path, "results.json", MAX_RESULTS_BYTES,
                                          "it is not gpunet reproduce's.").decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is not a readable results.json ({exc}).") from None
    try:  # a file edited or damaged by hand: one error naming it, never a traceback
        check_results(results)
        images = _plots(results, path.parent, log) if plots else {}
        report = render_report(results, images)
    except MALFORMED as exc:
        raise ValueError(f"{path}: malformed results ({type(exc).__name__}: {exc}); "
                         "rerun gpunet reproduce to write it again.") from None
    atomic_write_text(Path(out) / "results.md", report)
    log(f"wrote {Path(out) / 'results.md'} from {path}")


def _compare_encodings(results: dict[str, Any], checked: bool) -> None:
    exps = results["experiments"]
    if "binary4" in exps and "chapter1" in exps:
        ten = exps["chapter1"]["summary"]["mean_best_pct"]
        four = exps["binary4"]["summary"]["mean_best_pct"]
        exps["binary4"]["summary"]["within_range"] = (four < ten) if checked else None
        exps["binary4"]["summary"]["ten_outputs_mean_best_pct"] = ten


def _baselines(data: MNIST, options: Options, log: Callable[[str], None]) -> dict[str, Any]:
    darkness = AverageDarkness().fit(*data.training).score(*data.test)
    log(f"average darkness: {darkness} / {len(data.test[1])}")
    out: dict[str, Any] = {"average_darkness": {"correct": darkness, "total": len(data.test[1])}}
    if not options.svm:
        out["svm"] = {"skipped": "not asked for (--no-svm)"}
        return out
    try:
        import sklearn
    except ImportError:
        out["svm"] = {"skipped": f"scikit-learn not installed ({install_hint('baselines')})"}
        log(f"svm: {out['svm']['skipped']}")
        return out
    # scikit-learn changed SVC's default gamma from 'auto' (1 / n_features) to 'scale'
    # (1 / (n_features * X.var())) in 0.22, after the book: run both.
    for key, svc_options in (("svm", {}), ("svm_book_era", {"gamma": "auto"})):
        log(f"{key}: training scikit-learn's SVC {svc_options or '(defaults)'} "
            "(this takes a while)...")
        t0 = time.perf_counter()
        correct = svm_correct(data.training, data.test, **svc_options)
        out[key] = {"correct": correct, "total": len(data.test[1]), "options": svc_options,
                    "seconds": time.perf_counter() - t0, "sklearn": sklearn.__version__}
        log(f"{key}: {correct} / {len(data.test[1])} in {out[key]['seconds']:.0f} s")
    return out


def _toy(epochs: int, log: Callable[[str], None]) -> dict[str, Any]:
    runs = {}
    settings = [(c, eta) for c, eta in SETTINGS.items()]
    settings.append(("cross-entropy", SETTINGS["quadratic"]))  # same η as quadratic
    for cost, eta in settings:
        for start, (w, b) in STARTS.items():
            run = train_toy_neuron(cost, eta, w, b, epochs=epochs)
            runs[f"{cost}, η={eta}, {start}"] = asdict(run)
    log(f"toy neuron: {len(runs)} runs of {epochs} epochs")
    return runs


def _meta(backend: Backend, options: Options, seeds: int) -> dict[str, Any]:
    from .._version import __version__

    return {
        "gpunet": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": f"{cpu_model()} ({os.cpu_count()} CPUs)",
        "device": backend.description,
        "dtype": "float32",
        "seeds": seeds,
        "quick": options.quick,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "gpunet reproduce " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["reproduce"]
        else "gpunet.reproduce.reproduce(...)",
    }


def _progress_printer(tag: str, log: Callable[[str], None]) -> Callable[[str], None]:
    """Per-epoch progress on one rewritten line when writing to a terminal."""
    if log is print and sys.stdout.isatty():
        return lambda text: print(f"\r{tag}: {text}   ", end="", flush=True)
    return lambda text: None


def _end_progress(log: Callable[[str], None]) -> None:
    if log is print and sys.stdout.isatty():
        print("\r", end="")


def _plots(results: dict[str, Any], directory: Path, log: Callable[[str], None]) -> dict[str, Any]:
    try:
        from .plots import plot_all
    except ImportError:
        log(f"plots skipped: matplotlib is not installed ({install_hint('plot')})")
        return {}
    return plot_all(results, directory)
