"""Chapter 3's neurons from the command line (issue 29): ``--activation`` (tanh, ReLU, one
per hidden layer) and ``--cost log-likelihood`` (the softmax output layer) reach the
network, are recorded in checkpoints and resumed, and a sweep trains them too."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet.cli import main
from gpunet.training.checkpoint import load_checkpoint

BASE = ["--device", "cpu", "--limit", "300", "--seed", "2", "--quiet", "--dtype", "float64"]


def _same(a: "gpunet.Network", b: "gpunet.Network") -> None:
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        assert np.array_equal(x, y)


def _library(activation, cost, **kw) -> "gpunet.Network":
    X, y = gpunet.load_data()[0]
    net = gpunet.Network([784, 30, 10], cost=cost, init="default", activation=activation,
                         seed=2, device="cpu", dtype="float64")
    net.SGD((X[:300], y[:300]), kw.pop("epochs", 2), 10, 0.1, verbose=False)
    return net


def test_relu_with_the_softmax_trains_as_the_librarys_and_resumes_as_relu(tmp_path, capsys):
    ckpt, saved = tmp_path / "r.ckpt", tmp_path / "r.json"
    args = ["train", *BASE, "--activation", "relu", "--cost", "log-likelihood", "--init",
            "default", "--eta", "0.1", "--checkpoint", str(ckpt), "--save", str(saved)]
    assert main(args + ["--epochs", "2"]) == 0
    assert "network: [784, 30, 10], relu hidden, log-likelihood cost" in capsys.readouterr().out
    assert load_checkpoint(ckpt).network_settings["activation"] == "relu"
    net = gpunet.Network.load(saved, device="cpu", dtype="float64")
    assert net.activation.name == "relu" and net.output == "softmax"
    _same(net, _library("relu", "log-likelihood"))
    assert main(["train", "--resume", str(ckpt), "--epochs", "3", "--device", "cpu",
                 "--quiet"]) == 0  # goes on as ReLU: the record's activation
    _same(gpunet.Network.load(saved, device="cpu", dtype="float64"),
          _library("relu", "log-likelihood", epochs=3))
    capsys.readouterr()
    assert main(["train", "--resume", str(ckpt), "--epochs", "4", "--activation", "tanh"]) == 2
    assert "--activation tanh contradicts" in capsys.readouterr().err


@pytest.mark.parametrize("given, words", [
    ("softmax", "'softmax' is not a hidden layer's neuron; use sigmoid, tanh, relu"),
    ("relu,tanh", "--activation relu,tanh: activation lists 2 activations for 1 hidden"),
    ("selu", "'selu' is not a hidden layer's neuron"),
])
def test_a_wrong_activation_is_one_error_before_any_work(capsys, given, words):
    try:
        status = main(["train", *BASE, "--epochs", "1", "--activation", given])
    except SystemExit as exc:  # argparse's usage error
        status = exc.code
    assert status == 2
    captured = capsys.readouterr()
    assert words in captured.err and "network:" not in captured.out


def test_one_neuron_per_hidden_layer(tmp_path, capsys):
    saved = tmp_path / "n.json"
    assert main(["train", *BASE, "--sizes", "auto,20,12,10", "--epochs", "1",
                 "--activation", "tanh,relu", "--save", str(saved)]) == 0
    net = gpunet.Network.load(saved, device="cpu")
    assert [a.name for a in net.activation] == ["tanh", "relu"]


def test_a_sweep_trains_tanh_networks(tmp_path, capsys):
    nets = tmp_path / "nets"
    assert main(["sweep", *BASE[:-2], "--dtype", "float64", "--epochs", "2", "--eta",
                 "0.1", "--seeds", "2", "--activation", "tanh", "--cost", "cross-entropy",
                 "--init", "default", "--save-dir", str(nets)]) == 0
    assert "tanh hidden, cross-entropy cost" in capsys.readouterr().out
    saved = gpunet.Network.load(nets / "eta0.1_lmbda0_seed2.json", device="cpu",
                                dtype="float64")
    assert saved.activation.name == "tanh"
    _same(saved, _library("tanh", "cross-entropy"))
