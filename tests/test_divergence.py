"""A diverging run is stopped and reported, never counted as a success (issue 18).

With L2 regularization the weight decay factor is ``1 - ηλ/n`` (chapter 3, eq. 93):
500 training images, η = 3 and λ = 1000 make it -5, so every step multiplies the
weights by 5 in size and they overflow within two epochs. Before, the run went on with
NaN weights and printed argmax-of-NaN accuracies (every image "a 0") as results.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import gpunet
from gpunet.training.checkpoint import load_checkpoint
from gpunet.cli import main
from gpunet.training.divergence import DivergenceError
from gpunet.networks.stack import NetworkStack


@pytest.fixture(scope="module")
def small(mnist):
    return ((mnist.training[0][:500], mnist.training[1][:500]),
            (mnist.test[0][:500], mnist.test[1][:500]))


def params(net):
    return np.array(net.backend.to_host(net.parameters))


def test_library_stops_at_the_last_finite_epoch(small, tmp_path):
    training, test = small
    one_epoch = gpunet.Network([784, 20, 10], seed=4, device="cpu", cost="quadratic",
                               init="large")
    one_epoch.SGD(training, 1, 10, 3.0, lmbda=1000.0, test_data=test, verbose=False)

    net = gpunet.Network([784, 20, 10], seed=4, device="cpu", cost="quadratic", init="large")
    path = tmp_path / "run.ckpt"
    with pytest.raises(DivergenceError) as info:
        net.SGD(training, 5, 10, 3.0, lmbda=1000.0, test_data=test, verbose=False,
                checkpoint=path)
    error = info.value
    assert error.epoch == 1 and error.epochs_done == 1
    assert "1 - 3·1000/500 = -5" in str(error) and "below -1" in str(error)
    # kept: the parameters, history and checkpoint of epoch 0, the last finite one
    assert np.array_equal(params(net), params(one_epoch))
    assert len(net.history.records) == 1
    saved = load_checkpoint(path)
    assert saved.epochs_done == 1 and np.array_equal(saved.parameters, params(net))


def test_a_huge_learning_rate_names_eta(small):
    training, test = small
    net = gpunet.Network([784, 20, 10], seed=1, device="cpu")
    start = params(net)
    with pytest.raises(DivergenceError, match=r"η = 1e\+300 is likely too large") as info:
        net.SGD(training, 3, 10, 1e300, test_data=test, verbose=False)
    assert info.value.epoch == 0 and net.history.records == []
    assert np.array_equal(params(net), start)  # back to where it started


def test_train_command_exits_non_zero_and_keeps_the_last_finite_epoch(tmp_path, capsys):
    save, ckpt, metrics = tmp_path / "net.json", tmp_path / "run.ckpt", tmp_path / "m.jsonl"
    status = main(["train", "--device", "cpu", "--limit", "500", "--lmbda", "1000",
                   "--epochs", "4", "--seed", "2", "--sizes", "784,20,10", "--quiet",
                   "--save", str(save), "--checkpoint", str(ckpt), "--metrics", str(metrics)])
    out, err = capsys.readouterr()
    assert status == 1
    assert "gpunet: error: training diverged with 1 epoch done" in err and "ηλ/n" in err
    assert "Traceback" not in err
    assert "Epoch 1:" not in out  # the NaN epoch is not reported as a result
    assert "saved network to" in out and "(1 of 4 epochs done)" in out
    net = gpunet.load(save, device="cpu")  # a network predict and evaluate accept
    assert np.isfinite(params(net)).all()
    assert load_checkpoint(ckpt).epochs_done == 1
    rows = [json.loads(line) for line in metrics.read_text().splitlines()][1:]
    assert [r["epoch"] for r in rows] == [0]


def test_a_diverged_network_of_a_stack_is_marked_and_the_others_go_on(small):
    training, test = small
    seen = []
    stack = NetworkStack([784, 20, 10], seeds=[0, 1], device="cpu", cost="quadratic",
                         init="large")
    histories = stack.SGD(training, 3, 10, eta=3.0, lmbda=[0.0, 1000.0], test_data=test,
                          verbose=False, callback=lambda records: seen.append(records))
    assert stack.diverged == {1: 1}
    assert [r.get("diverged", False) for r in seen[1]] == [False, True]
    assert [r.get("diverged", False) for r in seen[2]] == [False, True]
    assert len(histories[0].records) == 3 and len(histories[1].records) == 1

    alone = gpunet.Network([784, 20, 10], seed=0, device="cpu", cost="quadratic", init="large")
    alone.SGD(training, 3, 10, 3.0, test_data=test, verbose=False)
    assert np.array_equal(params(stack.network(0)), params(alone))  # unharmed
    first = gpunet.Network([784, 20, 10], seed=1, device="cpu", cost="quadratic", init="large")
    first.SGD(training, 1, 10, 3.0, lmbda=1000.0, test_data=test, verbose=False)
    assert np.array_equal(params(stack.network(1)), params(first))  # its last finite epoch


def test_sweep_marks_diverged_rows_and_table(tmp_path, capsys):
    metrics = tmp_path / "m.jsonl"
    status = main(["sweep", "--device", "cpu", "--limit", "500", "--epochs", "2",
                   "--sizes", "784,20,10", "--lmbda", "0,1000", "--seeds", "0",
                   "--metrics", str(metrics)])
    out, err = capsys.readouterr()
    assert status == 0, err  # one setting diverging is a sweep's result, not a failure
    rows = [json.loads(line) for line in metrics.read_text().splitlines()][1:]  # no header
    diverged = [r for r in rows if r.get("diverged")]
    assert [(r["run"]["lmbda"], r["epoch"]) for r in diverged] == [(1000.0, 1)]
    assert all("evaluation_correct" not in r for r in diverged)
    assert len([r for r in rows if r["run"]["lmbda"] == 0.0]) == 2
    assert "every seed diverged" in out and "diverged: eta=3 lmbda=1000 seed=0" in err
