"""The --metrics file (a header, then History's records), outputs checked before the
first epoch, and saved files with the user's umask permissions."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

import gpunet
from gpunet.cli import main
from gpunet.training.history import EPOCH_KEYS, read_metrics
from gpunet.io.outputs import atomic_write_text


def test_header_then_historys_own_records(tmp_path, mnist):
    metrics = tmp_path / "m.jsonl"
    assert main(["train", "--device", "cpu", "--limit", "400", "--epochs", "2", "--quiet",
                 "--sizes", "784,10,10", "--seed", "4", "--eta", "2.0", "--evaluate",
                 "validation", "--monitor-training-accuracy", "--monitor-evaluation-cost",
                 "--metrics", str(metrics)]) == 0
    header, *rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert header["gpunet_metrics"] == 1 and header["seed"] == 4
    assert header["evaluation_data"] == "validation" and header["device"].startswith("cpu")
    assert header["settings"]["eta"] == 2.0 and header["settings"]["sizes"] == [784, 10, 10]
    assert header["settings"]["epochs"] == 2 and header["settings"]["limit"] == 400
    assert {"gpunet", "numpy", "python"} <= header["versions"].keys()

    # the same run in the library: the same keys and numbers, one vocabulary
    X, y = mnist.training
    net = gpunet.Network([784, 10, 10], cost="quadratic", init="large", seed=4, device="cpu")
    history = net.SGD((X[:400], y[:400]), 2, 10, 2.0, evaluation_data=mnist.validation,
                      monitor_evaluation_accuracy=True, monitor_evaluation_cost=True,
                      monitor_training_accuracy=True, verbose=False)
    assert len(rows) == len(history.records) == 2
    for row, record in zip(rows, history.records):
        assert row.keys() == record.keys() and set(row) <= set(EPOCH_KEYS)
        assert {k: v for k, v in row.items() if k != "train_seconds"} == {
            k: v for k, v in record.items() if k != "train_seconds"}
    read = read_metrics(metrics)
    assert read.evaluation_data == "validation"
    assert read.history.evaluation_accuracy == history.evaluation_accuracy


@pytest.mark.parametrize("option", ["--save", "--checkpoint", "--metrics"])
def test_outputs_are_checked_before_training(tmp_path, option, capsys):
    missing = tmp_path / "no" / "such" / "dir" / "out"
    assert main(["train", "--device", "cpu", "--limit", "100", "--epochs", "1",
                 option, str(missing)]) == 2
    captured = capsys.readouterr()
    assert f"{option} {missing}" in captured.err and "does not exist" in captured.err
    assert "Epoch" not in captured.out and "device:" not in captured.out
    assert main(["train", "--device", "cpu", "--limit", "100", "--epochs", "1",
                 option, str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes anywhere; permissions are not enforced")
def test_unwritable_directory_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["train", "--device", "cpu", "--save", str(locked / "n.json")]) == 2
        assert "cannot write" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_get_the_umask_permissions(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "new.txt", "x")
        net_path = tmp_path / "net.json"
        gpunet.Network([2, 2], device="cpu").save(net_path)
    finally:
        os.umask(old)
    for path in (tmp_path / "new.txt", net_path):
        assert stat.S_IMODE(path.stat().st_mode) == mode


def test_rewriting_keeps_a_files_permissions(tmp_path):
    path = tmp_path / "shared.json"
    path.write_text("{}")
    path.chmod(0o640)
    atomic_write_text(path, "[]")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "[]"


def test_library_history_survives_an_interrupt(mnist):
    X, y = mnist.training
    net = gpunet.Network([784, 10, 10], seed=1, device="cpu")

    def stop_after_second(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        net.SGD((X[:300], y[:300]), 10, 10, 0.5, test_data=mnist.validation,
                callback=stop_after_second, verbose=False)
    assert len(net.history.records) == 2 and len(net.history.evaluation_accuracy) == 2
    assert np.isfinite(np.asarray(net.parameters)).all()
