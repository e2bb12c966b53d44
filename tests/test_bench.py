"""``gpunet bench --quick``: every configuration, JSON and table, skips with reasons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpunet.bench import CONFIGS, markdown_table

ROOT = Path(__file__).resolve().parents[1]
IMPLS = ["gpunet-numpy-f32", "gpunet-cupy-f32", "torch-cpu", "sklearn-mlp", "book-loop"]


def test_quick_bench_writes_json_and_table(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-m", "gpunet", "bench", "--quick", "--impl", ",".join(IMPLS),
         "--out", str(tmp_path), "--stamp", "quick"],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    results = json.loads((tmp_path / "quick.json").read_text())
    assert results["examples"] == 1000 and results["epochs"] == 2
    assert results["machine"]["numpy"] and results["machine"]["cpu_count"] >= 1
    rows = results["results"]
    assert [(r["config"], r["implementation"]) for r in rows] == \
        [(c, i) for c in CONFIGS for i in IMPLS]
    for r in rows:
        if "skipped" in r:
            assert r["skipped"]  # a reason, never a silent gap
            continue
        assert len(r["seconds"]) == (1 if r["implementation"] == "book-loop" else 2)
        assert r["median_seconds"] > 0
        assert r["examples_per_second"] == pytest.approx(1000 / r["median_seconds"])
    measured = {(r["config"], r["implementation"]) for r in rows if "median_seconds" in r}
    assert ("book", "gpunet-numpy-f32") in measured and ("wide", "book-loop") in measured
    table = (tmp_path / "quick.md").read_text()
    assert table == markdown_table(results)
    assert "### `book`: [784, 30, 10], m = 10" in table and "| gpunet-numpy-f32 |" in table


def test_unknown_configuration(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "gpunet", "bench", "--configs", "huge",
                          "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=120, env=env, cwd=ROOT)
    assert run.returncode == 2 and "unknown configuration 'huge'" in run.stderr
