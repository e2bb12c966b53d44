"""scripts/gpu_verify.sh in its dry run, here without a GPU, as CI runs it.

The GPU machine comes for 15 minutes now and then; a script that breaks there wastes the
lease. Its dry run runs every step that needs no CUDA as it is and the others in their
nearest CPU form, and checks the output folder as the device tool will take it back
(at most 8 files, flat, the names the docs promise). Here: the dry run of all three
tiers passes; the summary has a line per step; a run killed mid-way keeps the lines of
the steps it finished; a tier out of time skips its steps saying so; and
scripts/gpu_import.py turns the folder into a benchmarks JSON and the GPU section.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "gpu_verify.sh"
ALLOWED = {"summary.txt", "run.log", "resources.json", "check.json", "targets.json",
           "pytest.log", "tools.log", "bench.json"}
STEPS = {1: ["install", "environment", "resources", "check", "targets", "cuda-tests", "outdir"],
         2: ["suite", "memcheck-fused", "racecheck-fused", "outdir"],
         3: ["bench", "ncu-fused", "memcheck-eager", "racecheck-eager", "outdir"]}


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHON=sys.executable, **extra)
    return env


def _summary_steps(summary: str) -> dict[tuple[int, str], str]:
    steps = {}
    for line in summary.splitlines():
        parts = line.split()
        if line.startswith("tier") and len(parts) >= 3:
            steps[(int(parts[0][4:]), parts[1])] = parts[2]
    return steps


def test_dry_run_of_every_tier_passes_and_fits_the_device_tool(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--tier", "1,2", "--tier", "3",
                          str(out)], capture_output=True, text=True, timeout=600, env=_env())
    summary = (out / "summary.txt").read_text()
    assert run.returncode == 0, summary + run.stderr
    files = {p.name for p in out.iterdir()}
    assert files == ALLOWED and all(p.is_file() for p in out.iterdir())  # 8, flat
    steps = _summary_steps(summary)
    assert set(steps) == {(t, s) for t, names in STEPS.items() for s in names}, summary
    # what needs no GPU passed; what needs one ran in its CPU form or was noted
    for (tier, name), status in steps.items():
        assert status in ("PASS", "NOGPU"), (tier, name, status)
    for name in ("install", "environment", "resources", "check", "cuda-tests", "suite",
                 "bench", "outdir"):
        assert steps[(1 if name not in ("suite", "bench") else 2 if name == "suite" else 3,
                      name)] == "PASS", name
    assert summary.count("verdict: every step passed") == 3
    assert "PASS resources float:" in summary and "PASS resources double:" in summary
    assert "fused book epoch <= 30 ms: " in summary  # measured only where there is a GPU
    resources = json.loads((out / "resources.json").read_text())
    assert resources["problems"] == [] and resources["kernels"]["double"]["ptxas"]["registers"] > 0
    check = json.loads((out / "check.json").read_text())
    assert check  # gpunet check on the CPU in the dry run
    assert len(json.loads((out / "targets.json").read_text())["verdicts"]) == 4

    # the CPU machine's half: a benchmarks JSON and the GPU section of docs/performance.md
    bench_dir = tmp_path / "benchmarks"
    imported = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_import.py"), str(out),
                               "--benchmarks", str(bench_dir)],
                              capture_output=True, text=True, timeout=120, env=_env())
    assert imported.returncode == 0, imported.stderr
    (written,) = bench_dir.iterdir()
    assert written.name.startswith("gpu-no-gpu-") and written.suffix == ".json"
    result = json.loads(written.read_text())
    assert {"summary", "resources", "check", "targets", "bench"} <= set(result)
    assert "| fused book epoch <= 30 ms | " in imported.stdout
    assert "| double (sm_90) |" in imported.stdout and "### `book`" in imported.stdout


def test_a_killed_run_keeps_the_lines_of_the_steps_it_finished(tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen(["bash", str(SCRIPT), "--dry-run", "--tier", "1", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if "environment" in (out / "summary.txt").read_text() if (out / "summary.txt").exists() else "":
                break
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)  # as the device tool does at its limit
    finally:
        process.wait(timeout=60)
    steps = _summary_steps((out / "summary.txt").read_text())
    assert steps[(1, "install")] == "PASS" and steps[(1, "environment")] == "PASS"
    assert (1, "outdir") not in steps  # it never got there


def test_a_tier_out_of_time_skips_its_steps_saying_so(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--tier", "2", str(out)],
                         capture_output=True, text=True, timeout=120,
                         env=_env(GPU_VERIFY_SECONDS_2="5"))
    assert run.returncode == 1
    summary = (out / "summary.txt").read_text()
    steps = _summary_steps(summary)
    assert steps[(2, "suite")] == steps[(2, "memcheck-fused")] == "SKIPPED"
    assert "out of time (tier 2 has 5s)" in summary
    assert "FAILED: suite memcheck-fused racecheck-fused" in summary


@pytest.mark.parametrize("args", [[], ["--tier", "1"], ["--tier", "4", "x"],
                                  ["--tier", "1", "a", "b"], ["--bogus", "--tier", "1", "x"]])
def test_usage_errors(tmp_path, args):
    run = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60, env=_env())
    assert run.returncode == 2 and "usage: scripts/gpu_verify.sh" in run.stderr
