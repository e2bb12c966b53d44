"""``gpunet bench --quick``: every configuration, JSON and table, skips with reasons."""

from __future__ import annotations

import json

import pytest

from conftest import run_gpunet
from gpunet.bench import CONFIGS, markdown_table
IMPLS = ["gpunet-numpy-f32", "gpunet-cupy-f32", "torch-cpu", "sklearn-mlp", "book-loop"]


def test_quick_bench_writes_json_and_table(tmp_path):
    run = run_gpunet("bench", "--quick", "--impl", ",".join(IMPLS), "--out", tmp_path,
                     "--stamp", "quick")
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
        if r["implementation"].startswith("gpunet"):
            assert 0 <= r["test_correct"] <= 10000
    measured = {(r["config"], r["implementation"]) for r in rows if "median_seconds" in r}
    assert ("book", "gpunet-numpy-f32") in measured and ("wide", "book-loop") in measured
    table = (tmp_path / "quick.md").read_text()
    assert table == markdown_table(results)
    assert "### `book`: [784, 30, 10], m = 10" in table and "| gpunet-numpy-f32 |" in table


def test_unknown_configuration(tmp_path):
    run = run_gpunet("bench", "--configs", "huge", "--out", tmp_path)
    assert run.returncode == 2 and "unknown configuration 'huge'" in run.stderr
