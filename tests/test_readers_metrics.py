"""Metrics files that hold several runs (issue 26): runs concatenated into one file are
read, and drawn, as several runs; never as one run whose epochs replace each other's.

How runs are told apart (gpunet.training.history._runs): a header without
``resumed_from_epoch`` (a sweep's: ``resumed_from``) starts a run; one with it continues
the run before it when its settings agree (the files older resumed runs wrote); without
a header, a record of an epoch the run already has starts a new run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpunet.cli import main
from gpunet.training.history import (read_metrics, read_metrics_runs, read_sweep_metrics,
                                     read_sweeps)


def header(seed: int = 1, **extra: Any) -> dict[str, Any]:
    return {"gpunet_metrics": 1, "settings": {"sizes": [784, 10, 10], "eta": 3.0,
                                              "epochs": 3, "data": None},
            "seed": seed, "evaluation_data": "test", **extra}


def epoch(j: int, correct: int = 9000) -> dict[str, Any]:
    return {"epoch": j, "train_seconds": 0.1, "evaluation_correct": correct + j,
            "evaluation_total": 10000}


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def curves_drawn(monkeypatch, argv: list[str]) -> list[str]:
    """The legend labels of the accuracy panel ``gpunet plot`` draws."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from gpunet.reports import plotting

    figures: list[Any] = []
    monkeypatch.setattr(plotting, "save_figure", lambda fig, path, *a: figures.append(fig))
    assert main(argv) == 0
    labels = [t.get_text() for t in figures[0].axes[0].get_legend().get_texts()]
    points = [len(line.get_xdata()) for line in figures[0].axes[0].lines]
    plt.close(figures[0])
    return [f"{label} ({n})" for label, n in zip(labels, points)]


def _train(tmp_path: Path, name: str, seed: int) -> Path:
    metrics = tmp_path / f"{name}.jsonl"
    assert main(["train", "--device", "cpu", "--limit", "200", "--epochs", "2", "--quiet",
                 "--sizes", "784,8,10", "--seed", str(seed), "--metrics",
                 str(metrics)]) == 0
    return metrics


def test_two_runs_concatenated_are_plotted_as_two_runs(tmp_path, monkeypatch, capsys):
    """``cat a.jsonl b.jsonl > both.jsonl``: the old reader keyed epochs in one dict,
    so the second run's epochs replaced the first's and one curve came out."""
    a, b = _train(tmp_path, "a", 1), _train(tmp_path, "b", 2)
    both = tmp_path / "both.jsonl"
    both.write_text(a.read_text() + b.read_text())
    runs = read_metrics_runs(both)
    assert [r.header["seed"] for r in runs] == [1, 2]
    assert [r.history.evaluation_accuracy for r in runs] == [
        read_metrics(a).history.evaluation_accuracy,
        read_metrics(b).history.evaluation_accuracy]
    with pytest.raises(ValueError, match=r"holds 2 runs .*read_metrics_runs"):
        read_metrics(both)
    capsys.readouterr()
    labels = curves_drawn(monkeypatch, ["plot", str(both), "-o", str(tmp_path / "p.png")])
    assert labels == ["both run 1 (seed 1): test (2)", "both run 2 (seed 2): test (2)"]
    assert "(2 runs)" in capsys.readouterr().out


def test_the_files_older_resumed_runs_wrote_read_as_one_run(tmp_path):
    """A resumed run once appended a header with ``resumed_from_epoch`` and its epochs;
    where the first part had written an epoch the checkpoint did not keep, the resumed
    part's record of it wins."""
    path = write(tmp_path / "resumed.jsonl", [
        header(), epoch(0), epoch(1), epoch(2, 1),  # epoch 2 written, then a stop
        header(resumed_from_epoch=2, settings={**header()["settings"], "epochs": 4,
                                                "data": "/moved"}),
        epoch(2), epoch(3)])
    (run,) = read_metrics_runs(path)
    assert run.history.epochs == [0, 1, 2, 3]
    assert run.history.evaluation_accuracy == [9000, 9001, 9002, 9003]
    assert read_metrics(path).history.epochs == [0, 1, 2, 3]


def test_a_resumed_header_of_another_run_starts_a_run(tmp_path):
    """``resumed_from_epoch`` after a run with other settings (another seed): the file
    joins two runs, and each is read as itself."""
    path = write(tmp_path / "two.jsonl", [header(seed=1), epoch(0), epoch(1),
                                          header(seed=2, resumed_from_epoch=1), epoch(1)])
    assert [r.history.epochs for r in read_metrics_runs(path)] == [[0, 1], [1]]


def test_headerless_records_whose_epochs_restart_are_two_runs(tmp_path):
    """No header says the second 0 continues anything: two runs, neither replacing the
    other (a record's epoch the run already has starts a new run)."""
    path = write(tmp_path / "bare.jsonl", [epoch(0), epoch(1), epoch(0, 5000), epoch(1)])
    runs = read_metrics_runs(path)
    assert [r.history.evaluation_accuracy for r in runs] == [[9000, 9001], [5000, 9001]]
    assert runs[0].header == {}


def test_sweeps_concatenated_are_plotted_apart(tmp_path, monkeypatch, capsys):
    """Two sweeps of the same grid in one file: the old reader put both sweeps' rows in
    each run's history (epochs 0, 0, 1, 1), drawn as one zig-zag curve per run."""
    metrics = tmp_path / "s.jsonl"
    assert main(["sweep", "--device", "cpu", "--limit", "200", "--epochs", "2", "--quiet",
                 "--sizes", "784,8,10", "--eta", "1,3", "--seeds", "0", "--metrics",
                 str(metrics)]) == 0
    both = tmp_path / "both.jsonl"
    both.write_text(metrics.read_text() * 2)
    sweeps = read_sweeps(both)
    assert len(sweeps) == 2 and sweeps[0].runs == read_sweep_metrics(metrics)
    assert [h.epochs for s in sweeps for _, h in s.runs] == [[0, 1]] * 4
    with pytest.raises(ValueError, match=r"holds 2 sweeps .*read_sweeps"):
        read_sweep_metrics(both)
    capsys.readouterr()
    labels = curves_drawn(monkeypatch, ["plot", str(both), "-o", str(tmp_path / "p.png")])
    assert labels == [f"sweep {s}: eta={eta} lmbda=0.0 seed=0: test (2)"
                      for s in (1, 2) for eta in ("1.0", "3.0")]
    headerless = tmp_path / "old.jsonl"  # rows of sweeps written before headers, joined
    rows = [json.loads(line) for line in metrics.read_text().splitlines()[1:]]
    write(headerless, rows + rows)
    assert len(read_sweeps(headerless)) == 2


@pytest.mark.parametrize("record, named", [
    ({"epoch": "1", "evaluation_correct": 1, "evaluation_total": 2}, "epoch"),
    ({"epoch": 1, "evaluation_correct": 3, "evaluation_total": 2}, "evaluation_correct"),
    ({"epoch": 1, "evaluation_correct": 1, "evaluation_total": 0}, "evaluation_total"),
    ({"epoch": 1, "training_cost": "0.5"}, "training_cost"),
    ({"epoch": 1, "train_seconds": -1}, "train_seconds"),
    ({"epoch": 1, "diverged": "yes"}, "diverged"),
    ({"gpunet_metrics": 1, "settings": []}, "settings"),
    ({"gpunet_metrics": 1, "seed": "3"}, "seed"),
    ({"gpunet_metrics": 1, "resumed_from_epoch": -1}, "resumed_from_epoch"),
    ({"gpunet_metrics": "1"}, "gpunet_metrics"),
])
def test_every_field_of_a_metrics_file_is_named(tmp_path, capsys, record, named):
    path = write(tmp_path / "m.jsonl", [header(), epoch(0), record])
    with pytest.raises(ValueError) as info:
        read_metrics(path)
    assert str(info.value).startswith(f"{path}, line 3: {named} "), str(info.value)
    pytest.importorskip("matplotlib")
    assert main(["plot", str(path), "-o", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"gpunet: error: {path}, line 3: {named}")


def test_kinds_of_file_mixed_and_newer_files_are_named(tmp_path):
    mixed = write(tmp_path / "mixed.jsonl", [header(), epoch(0),
                                             {"run": {"eta": 1.0, "lmbda": 0.0, "seed": 0},
                                              "epoch": 0}])
    with pytest.raises(ValueError, match=r"line 3: a gpunet sweep row"):
        read_metrics(mixed)
    newer = write(tmp_path / "newer.jsonl", [{"gpunet_metrics": 2}, epoch(0)])
    with pytest.raises(ValueError, match=r"line 1: gpunet_metrics is 2: written by a newer"):
        read_metrics(newer)
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match="not UTF-8"):
        read_metrics(binary)
