"""``gpunet evaluate``: accuracy, confusion matrix, most confused pairs, worst mistakes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gpunet
from gpunet.cli import main
from gpunet.reports.evaluation import Evaluation, evaluate


@pytest.fixture(scope="module")
def saved(mnist, tmp_path_factory):
    X, y = mnist.training
    net = gpunet.Network([784, 20, 10], seed=3, device="cpu")
    net.SGD((X[:3000], y[:3000]), 2, 10, 0.5, verbose=False)
    path = tmp_path_factory.mktemp("net") / "net.json"
    net.save(path)
    return net, path


def test_confusion_matrix_by_hand():
    outputs = np.eye(3)[[0, 1, 2, 1, 1, 0]]  # answers 0 1 2 1 1 0
    outputs[3, 1] = 0.9  # a less sure mistake than image 4's
    result = Evaluation(outputs, np.array([0, 1, 2, 2, 0, 0]))
    assert result.correct == 4 and result.total == 6
    assert result.confusion().tolist() == [[2, 1, 0], [0, 1, 0], [0, 1, 1]]
    assert set(result.most_confused(5)) == {(2, 1, 1), (0, 1, 1)}
    assert result.worst_mistakes(5).tolist() == [4, 3]  # the surer mistake first


def test_matches_the_networks_own_accuracy(saved, mnist):
    net, _ = saved
    result = evaluate(net, *mnist.test)
    matrix = result.confusion()
    assert matrix.sum() == 10_000 and np.trace(matrix) == net.accuracy(mnist.test)
    assert (matrix.sum(axis=1) == np.bincount(mnist.test[1], minlength=10)).all()
    pairs = result.most_confused(5)
    counts = [c for _, _, c in pairs]
    assert counts == sorted(counts, reverse=True) and all(t != p for t, p, _ in pairs)
    off = matrix - np.diag(np.diag(matrix))
    assert counts[0] == off.max()


def test_evaluate_command(saved, mnist, tmp_path, capsys):
    net, path = saved
    assert main(["evaluate", str(path), "--device", "cpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["correct"] == net.accuracy(mnist.test) and report["total"] == 10_000
    assert np.trace(report["confusion"]) == report["correct"]
    assert len(report["most_confused"]) == 5

    plot = tmp_path / "eval.png"
    status = main(["evaluate", str(path), "--device", "cpu", "--plot", str(plot)])
    out = capsys.readouterr().out
    if status == 2:
        pytest.skip("matplotlib (the plot extra) is not installed")
    assert status == 0 and f"{report['correct']} / 10000" in out
    assert "most confused: " in out and "confusion matrix" in out
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_evaluate_refuses_a_network_that_is_not_for_mnist(tmp_path, capsys):
    path = tmp_path / "small.json"
    gpunet.Network([4, 3, 2], device="cpu").save(path)
    assert main(["evaluate", str(path), "--device", "cpu"]) == 2
    assert "do not fit MNIST" in capsys.readouterr().err
