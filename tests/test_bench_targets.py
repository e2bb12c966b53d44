"""The GPU targets' verdicts (scripts/gpu_targets.py): judged right from benchmark rows,
and a smoke run (without a GPU every fused target fails as not measured, never passes;
with one they are measured)."""

from __future__ import annotations

import json

import importlib.util

from conftest import ROOT

# scripts/ is project tooling, not installed: load the script as gpu_verify.sh runs it
_spec = importlib.util.spec_from_file_location("gpu_targets", ROOT / "scripts" / "gpu_targets.py")
gpu_targets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_targets)
judge, main = gpu_targets.judge, gpu_targets.main

from conftest import cuda_unavailable_reason


def book(fused=0.020, numpy=0.300, torch=0.250):
    rows = [{"config": "book", "implementation": "gpunet-cupy-fused-f32",
             **({"median_seconds": fused} if fused else {"skipped": "no GPU: no driver"})},
            {"config": "book", "implementation": "gpunet-numpy-f32", "median_seconds": numpy},
            {"config": "book", "implementation": "torch-cuda",
             **({"median_seconds": torch} if torch else {"skipped": "no torch"})}]
    return {"results": rows}


def sweep(t1=0.02, t100=0.05):
    return {"results": [{"implementation": "gpunet-cupy-fused-f32 (K at once)", "networks": k,
                         "median_seconds": t} for k, t in ((1, t1), (10, t1), (100, t100))]}


def statuses(verdicts):
    return [status for status, _, _ in verdicts]


def test_every_target_met():
    verdicts = judge(book(), sweep())
    assert statuses(verdicts) == ["PASS"] * 4, verdicts
    assert verdicts[1][2].startswith("15.0x") and verdicts[3][2].startswith("2.50x")


def test_each_target_missed_alone():
    assert statuses(judge(book(fused=0.031, numpy=1, torch=1), sweep())) == \
        ["FAIL", "PASS", "PASS", "PASS"]
    assert statuses(judge(book(numpy=0.19), sweep())) == ["PASS", "FAIL", "PASS", "PASS"]
    assert statuses(judge(book(torch=0.199), sweep())) == ["PASS", "PASS", "FAIL", "PASS"]
    assert statuses(judge(book(), sweep(t100=0.0601))) == ["PASS", "PASS", "PASS", "FAIL"]


def test_unmeasured_targets_fail_saying_why():
    verdicts = judge(book(fused=None), {"results": [
        {"implementation": "gpunet-cupy-fused-f32 (K at once)", "networks": 1,
         "skipped": "no GPU: no NVIDIA driver found"}]})
    assert statuses(verdicts) == ["FAIL"] * 4
    assert "not measured: no GPU: no driver" in verdicts[0][2]
    assert "no NVIDIA driver found" in verdicts[3][2]
    assert "not measured: no torch" in judge(book(torch=None), sweep())[2][2]


def test_a_smoke_run_writes_rows_and_judges_what_it_measured(tmp_path, capsys):
    """Without a GPU every target fails as not measured, never passes; with one, the
    fused rows are measured and judged (on 200 images, so pass or fail is no verdict on
    the targets themselves)."""
    out = tmp_path / "targets.json"
    status = main([str(out), "--limit", "200"])
    result = json.loads(out.read_text())
    verdicts = result["verdicts"]
    assert status == (0 if statuses(verdicts) == ["PASS"] * 4 else 1)
    numpy_row = next(r for r in result["book"]["results"]
                     if r["implementation"] == "gpunet-numpy-f32")
    assert numpy_row["median_seconds"] > 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines[-4:]] == statuses(verdicts)
    if cuda_unavailable_reason():
        assert statuses(verdicts) == ["FAIL"] * 4
        assert lines[-4].startswith("FAIL fused book epoch <= 30 ms: not measured")
    else:
        assert "not measured" not in verdicts[0][2] and "not measured" not in verdicts[3][2]
