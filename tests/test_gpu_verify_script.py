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
    env.update({"PYTHON": sys.executable, **extra})
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


def _fake_python(tmp_path, refuse: str):
    """A Python that has no module ``refuse`` (any command naming it fails as Python
    does), and is the real one otherwise."""
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\ncase "$*" in *{refuse}*) echo "No module named {refuse}" >&2; '
                    f'exit 1;; esac\nexec {sys.executable} "$@"\n')
    fake.chmod(0o755)
    return fake


def test_without_pytest_it_refuses_to_start_and_passes_nothing(tmp_path):
    """Before: "No module named pytest", then "PASS ... no test skipped for want of a GPU"
    (a false pass). Now one line naming what to install, exit 2, no step run."""
    out = tmp_path / "out"
    run = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--tier", "1", str(out)],
                         capture_output=True, text=True, timeout=120,
                         env=_env(PYTHON=str(_fake_python(tmp_path, "pytest"))))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "PASS" not in run.stdout + run.stderr
    assert not (out / "summary.txt").exists() or "PASS" not in (out / "summary.txt").read_text()
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("gpu_verify: cannot start: pytest is not installed")
    assert "pip install pytest" in line


@pytest.mark.parametrize("missing", ["python", "nvidia-smi"])
def test_a_missing_tool_is_named_before_any_step(tmp_path, missing):
    """No Python at PYTHON, or (a real run) no nvidia-smi on the PATH: one line, exit 2."""
    out = tmp_path / "out"
    bin_dir = tmp_path / "tools"  # the PATH's tools less nvidia-smi
    bin_dir.mkdir()
    for tool in ("timeout", "bash", "sed", "grep", "date", "mkdir", "dirname", "tail", "cat"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True,
                               text=True).stdout.strip()
        if found:
            (bin_dir / tool).symlink_to(found)
    python = str(tmp_path / "no-such-python") if missing == "python" else sys.executable
    args = ["--dry-run"] if missing == "python" else []
    run = subprocess.run(["bash", str(SCRIPT), *args, "--tier", "1", str(out)],
                         capture_output=True, text=True, timeout=120,
                         env=_env(PYTHON=python, PATH=str(bin_dir)))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "PASS" not in run.stdout + run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("gpu_verify: cannot start: ") and missing in line


def _fake_gpu_machine(tmp_path):
    """A machine whose tools answer at once: nvidia-smi, and a Python whose every command
    succeeds silently, except gpu_resources.py and pytest, which pass or fail as the
    environment says (FAKE_RESOURCES, FAKE_PYTEST); the preflight's imports are real."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'Fake GPU'\n")
    (bin_dir / "python3").write_text(f"""#!/bin/sh
case "$*" in
  *gpu_resources.py*)
    if [ "$FAKE_RESOURCES" = pass ]; then echo "PASS resources float: 40 registers"; exit 0; fi
    echo "resources: crashed"; exit 1 ;;
  *"-m pytest"*)
    if [ "$FAKE_PYTEST" = pass ]; then echo "3 passed in 0.10s"; exit 0; fi
    echo "ImportError while loading conftest"; exit 4 ;;
  *"import pytest"*|*"import numpy"*|*"sys.version_info"*) exec {sys.executable} "$@" ;;
  *) exit 0 ;;
esac
""")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def test_a_rerun_never_reports_an_earlier_runs_passes(tmp_path):
    """Run tier 1 twice into one OUTDIR (the lease plan: rerun what failed). The second
    time the resources script and pytest crash: their lines must say FAIL, not copy the
    first run's PASS lines, and "-ran" must not pass on the first run's "3 passed"."""
    out, bin_dir = tmp_path / "out", _fake_gpu_machine(tmp_path)
    path = f"{bin_dir}:{os.environ['PATH']}"

    def tier1(outcome):
        return subprocess.run(["bash", str(SCRIPT), "--tier", "1", str(out)],
                              capture_output=True, text=True, timeout=120,
                              env=_env(PYTHON=str(bin_dir / "python3"), PATH=path,
                                       FAKE_RESOURCES=outcome, FAKE_PYTEST=outcome))

    first = tier1("pass")
    summary = (out / "summary.txt").read_text()
    assert first.returncode == 0, summary
    assert "PASS resources float: 40 registers" in summary and "cuda-tests-ran     PASS" in summary
    second = tier1("fail")
    assert second.returncode == 1
    rerun = (out / "summary.txt").read_text().split("== tier 1 verdict")[1]
    steps = _summary_steps(rerun)
    assert steps[(1, "resources")] == "FAIL" and steps[(1, "cuda-tests")] == "FAIL"
    assert steps[(1, "cuda-tests-ran")] == "FAIL", rerun
    assert "PASS resources" not in rerun and "pytest ran no test" in rerun
