"""Metrics as a table (issue 30, point 2): ``gpunet.read_metrics(paths)`` gives flat
rows, one per network and epoch, with the run's settings as columns and its header
attached; ``.to_frame()`` a pandas DataFrame where pandas is installed (a clear
message where it is not); ``--metrics -`` writes the metrics to standard output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest

import gpunet
from conftest import ROOT
from conftest import run_gpunet as gpunet_cmd


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A train run's metrics file and a sweep's (2 x 2 networks, 2 epochs each)."""
    folder = tmp_path_factory.mktemp("metrics")
    train, sweep = folder / "train.jsonl", folder / "sweep.jsonl"
    common = ["--device", "cpu", "--limit", "300", "--epochs", "2", "--quiet"]
    for args in (["train", "--seed", "5", "--metrics", train, "--monitor-training-cost"],
                 ["sweep", "--eta", "0.5,3", "--seeds", "0-1", "--metrics", sweep]):
        run = gpunet_cmd(*args, *common)
        assert run.returncode == 0, run.stderr
    return train, sweep


def test_read_metrics_gives_one_flat_row_per_network_and_epoch(files):
    """Old: gpunet has no read_metrics (AttributeError)."""
    train, sweep = files
    table = gpunet.read_metrics([train, str(sweep)])
    assert len(table) == 2 + 4 * 2
    assert [h["run"] for h in table.headers] == [0, 1]
    assert table.headers[0]["file"] == str(train) and "sweep" in table.headers[1]
    first = table[0]
    assert first["file"] == str(train) and first["run"] == 0 and first["network"] == 0
    assert first["sizes"] == (784, 30, 10) and first["seed"] == 5 and first["epoch"] == 0
    assert first["eta"] == 3.0 and first["device"].startswith("cpu")
    assert first["evaluation_data"] == "test" and "training_cost" in first
    assert "settings" not in first and "gpunet_metrics" not in first  # flat, no header row
    rows = table[2:]
    assert [(r["network"], r["epoch"]) for r in rows] == [(n, e) for n in range(4)
                                                          for e in range(2)]
    assert {(r["eta"], r["seed"]) for r in rows} == {(0.5, 0), (0.5, 1), (3.0, 0), (3.0, 1)}
    assert all(isinstance(r["eta"], float) and r["lmbda"] == 0.0 for r in rows)
    assert rows[0]["seeds"] == "0-1"  # the sweep's own setting, as it was given
    for column in ("file", "run", "network", "sizes", "epoch", "evaluation_correct"):
        assert column in table.columns
    # one path alone works too, and what the file says is checked as always
    assert len(gpunet.read_metrics(train)) == 2
    bad = train.parent / "bad.jsonl"
    bad.write_text(train.read_text().replace('"evaluation_total": 10000', '"evaluation_total": -1', 1))
    with pytest.raises(ValueError, match=f"{bad}, line 2: evaluation_total"):
        gpunet.read_metrics([bad])


def test_to_frame_without_pandas_says_how_to_install_it(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    table = gpunet.read_metrics(files[0])
    with pytest.raises(ImportError, match=r"needs pandas: pip install pandas"):
        table.to_frame()


def test_to_frame_hands_pandas_the_rows_and_columns(files, monkeypatch):
    """With a stand-in for pandas (the real one below, where installed)."""
    seen = {}
    fake = types.ModuleType("pandas")

    class DataFrame:
        @staticmethod
        def from_records(rows, columns):
            seen.update(rows=rows, columns=columns)
            return "frame"

    fake.DataFrame = DataFrame
    monkeypatch.setitem(sys.modules, "pandas", fake)
    table = gpunet.read_metrics(files)
    assert table.to_frame() == "frame"
    assert seen["rows"] == list(table) and seen["columns"] == table.columns


def test_to_frame_with_pandas(files):
    pandas = pytest.importorskip("pandas", reason="pandas is not installed (the test extra "
                                 "installs it)")
    frame = gpunet.read_metrics(files).to_frame()
    assert isinstance(frame, pandas.DataFrame) and len(frame) == 10
    best = frame[frame.run == 1].groupby("eta").evaluation_correct.max()
    assert list(best.index) == [0.5, 3.0]


def _in(folder, *args: str) -> subprocess.CompletedProcess:
    """``python -m gpunet ARGS`` run in ``folder`` (this checkout's gpunet)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "gpunet", *args], capture_output=True,
                          text=True, timeout=600, env=env, cwd=folder)


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_metrics_dash_writes_json_lines_to_standard_output(tmp_path, command):
    """Old: a file named "-" was written, and standard output held the human lines."""
    extra = ["--seeds", "0-1"] if command == "sweep" else ["--seed", "1"]
    run = _in(tmp_path, command, "--metrics", "-", "--device", "cpu", "--limit", "300",
              "--epochs", "2", *extra)
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "-").exists()
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert "gpunet_metrics" in records[0]
    assert len(records) == 1 + (4 if command == "sweep" else 2)
    assert all("evaluation_correct" in r for r in records[1:])
    assert "device: cpu" in run.stderr and "wrote metrics" not in run.stderr + run.stdout
