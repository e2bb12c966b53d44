"""Benchmark: K book networks as one ``gpunet sweep`` against K ``gpunet train`` runs.

What a user of the book would otherwise do to compare seeds or learning rates: run
``gpunet train`` once per network, one after another. This times exactly that, whole
commands with their start-up and data loading (wall time of each subprocess), against
one ``gpunet sweep`` that trains the same K networks as a stack, and checks that both
give every network the same per-epoch test accuracy.

The target (issue 11, CPU with 2 cores): the sweep at least 2.5× faster for K = 8 book
networks ([784, 30, 10], quadratic cost, η = 3.0, m = 10, 30 epochs: ``gpunet train``'s
defaults). Run it on a quiet machine::

    gpunet bench --sweep-vs-train 8

(``--epochs``, ``--limit``, ``--rounds`` and ``--out`` apply; results go to
``OUT/<stamp>-sweep.json`` and ``.md``.) Each round runs the K train commands, then the
sweep (its default workers: the stacked CPU engine splits the networks over one process
per CPU); the speed-up is the median round's. At the end the sweep runs once more with
``--workers 1``, to show what the workers bring.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .epochs import machine_info, write_results


def sweep_vs_train(networks: int = 8, epochs: int = 30, limit: Optional[int] = None,
                   device: str = "cpu", dtype: str = "float32", rounds: int = 3,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Time ``networks`` ``gpunet train`` runs (seeds 0..K-1) in turn, then one sweep,
    ``rounds`` times over (after an untimed one-epoch warm-up of each command), then
    the sweep once more with ``--workers 1``.

    A shared machine's speed drifts by tens of percent within minutes, so each round
    compares commands timed back to back, and the result is the median round. Returns
    the wall times, the speed-ups and whether every network's per-epoch test accuracy
    is the same in every command. Raises ``ValueError`` with the command's last error
    line if a command fails.
    """
    if networks < 1 or epochs < 1 or rounds < 1:
        raise ValueError("--sweep-vs-train, --epochs and --rounds must be positive integers.")
    common = ["--device", device, "--dtype", dtype, "--epochs", str(epochs)]
    if limit is not None:
        common += ["--limit", str(limit)]
    result: dict[str, Any] = {"machine": machine_info(), "networks": networks,
                              "epochs": epochs, "limit": limit, "device": device,
                              "dtype": dtype}
    seeds = f"0-{networks - 1}"
    with tempfile.TemporaryDirectory(prefix="gpunet-bench-sweep-") as tmp:
        warm = ["--device", device, "--dtype", dtype, "--epochs", "1", "--limit",
                str(min(limit or 5000, 5000))]
        _run(["train", *warm, "--seed", "0"])
        _run(["sweep", *warm, "--seeds", seeds])
        train_correct: dict[int, list[int]] = {}
        sweep_correct: list[dict[int, list[int]]] = []
        measured: list[dict[str, Any]] = []
        sweep_args = ["sweep", *common, "--seeds", seeds]
        for r in range(rounds):
            each = []
            for seed in range(networks):
                metrics = Path(tmp) / f"train-{seed}.jsonl"
                seconds = _run(["train", *common, "--seed", str(seed), "--metrics",
                                str(metrics)])
                each.append(seconds)
                correct = _train_accuracy(metrics)
                if train_correct.setdefault(seed, correct) != correct:
                    train_correct[seed] = []  # not reproducible: reported as not identical
                log(f"round {r + 1}: gpunet train --seed {seed}: {seconds:.2f} s")
            metrics = Path(tmp) / "sweep.jsonl"
            sweep_seconds = _run([*sweep_args, "--metrics", str(metrics)])
            sweep_correct.append(_sweep_accuracy(metrics))
            measured.append({"train_seconds": each, "sequential_seconds": sum(each),
                             "sweep_seconds": sweep_seconds,
                             "speedup": sum(each) / sweep_seconds})
            log(f"round {r + 1}: gpunet sweep --seeds {seeds}: {sweep_seconds:.2f} s; "
                f"{sum(each):.1f} s / {sweep_seconds:.1f} s = "
                f"{measured[-1]['speedup']:.2f}×")
        # The same sweep in one process: what the stacked CPU engine's workers bring.
        metrics = Path(tmp) / "sweep-one.jsonl"
        one_process_seconds = _run([*sweep_args, "--workers", "1", "--metrics", str(metrics)])
        sweep_correct.append(_sweep_accuracy(metrics))
        log(f"gpunet sweep --seeds {seeds} --workers 1: {one_process_seconds:.2f} s")
    median = sorted(measured, key=lambda m: m["speedup"])[(len(measured) - 1) // 2]
    result.update(
        train_commands=[f"gpunet train {' '.join(common)} --seed {s}" for s in range(networks)],
        sweep_command="gpunet " + " ".join(sweep_args),
        rounds=measured, median_round=measured.index(median),
        train_seconds=median["train_seconds"],
        sequential_seconds=median["sequential_seconds"],
        sweep_seconds=median["sweep_seconds"], speedup=median["speedup"],
        sweep_one_process_seconds=one_process_seconds,
        speedup_one_process=median["sequential_seconds"] / one_process_seconds,
        identical_accuracy=all(c == train_correct for c in sweep_correct),
        final_test_correct={str(s): v[-1] for s, v in sorted(train_correct.items()) if v})
    speedups = ", ".join(f"{m['speedup']:.2f}×" for m in measured)
    log(f"median round: {networks} train runs {median['sequential_seconds']:.1f} s, one "
        f"sweep {median['sweep_seconds']:.1f} s: {median['speedup']:.2f}× faster "
        f"(rounds: {speedups}); per-epoch accuracy identical: "
        f"{result['identical_accuracy']}")
    return result


def _run(args: list[str]) -> float:
    """Wall seconds of ``python -m gpunet ARGS`` (a whole command, start-up included)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gpunet", *args], capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ValueError(f"gpunet {' '.join(args[:1])} failed: {last}")
    return seconds


def _sweep_accuracy(path: Path) -> dict[int, list[int]]:
    """Per-epoch test accuracy per seed from a ``gpunet sweep --metrics`` file."""
    correct: dict[int, list[int]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "run" not in row:
            continue  # the header
        correct.setdefault(row["run"]["seed"], []).append(
            row.get("evaluation_correct", row.get("test_correct")))
    return correct


def _train_accuracy(path: Path) -> list[int]:
    """Per-epoch test accuracy from a ``gpunet train --metrics`` file (either layout:
    ``evaluation_correct`` under a header, or the older ``test_correct`` rows)."""
    correct = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "epoch" not in record:
            continue  # the header
        correct.append(int(record.get("evaluation_correct", record.get("test_correct"))))
    return correct


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']} ({m['cpu_count']} CPUs); Python {m['python']}, NumPy "
        f"{m['numpy']} ({m.get('blas', '?')}); {m['date']}.", "",
        f"### {result['networks']} book networks: one `gpunet sweep` against "
        f"{result['networks']} `gpunet train` runs (whole commands, wall time)", "",
        "| | wall time |", "|---|---:|",
        f"| {result['networks']} × `gpunet train`, one after another | "
        f"{result['sequential_seconds']:.1f} s |",
        f"| `{result['sweep_command']}` | {result['sweep_seconds']:.1f} s |",
        f"| speed-up (median of {len(result.get('rounds', [0]))} rounds) | "
        f"**{result['speedup']:.2f}×** |",
        f"| the same sweep with `--workers 1` | {result['sweep_one_process_seconds']:.1f} s "
        f"({result['speedup_one_process']:.2f}×) |", "",
        f"Per-epoch test accuracy identical for every network: "
        f"{'yes' if result['identical_accuracy'] else 'NO'}.", ""]
    if result.get("rounds"):
        lines += ["Each round: the train runs, then the sweep, back to back.", "",
                  "| round | train runs | sweep | speed-up |", "|---:|---:|---:|---:|"]
        lines += [f"| {i + 1} | {r['sequential_seconds']:.1f} s | {r['sweep_seconds']:.1f} s "
                  f"| {r['speedup']:.2f}× |" for i, r in enumerate(result["rounds"])]
        lines.append("")
    return "\n".join(lines)


def write(result: dict[str, Any], directory: Path, stamp: Optional[str] = None) -> tuple[Path, Path]:
    """``directory/STAMP-sweep.json`` and ``.md``, as :func:`~.epochs.write_results` writes."""
    return write_results(result, directory, stamp, suffix="-sweep", table=markdown(result))
