"""The same seed gives the same run on every backend.

NumPy against the strict stand-in runs everywhere (identical arithmetic, so results
must agree to rounding). NumPy against CuPy runs where CuPy sees a GPU and skips
elsewhere, saying why: forward pass and gradients in float64 within 1e-9 relative,
a several-epoch float64 trajectory within 1e-9 relative, and in float32 a test
accuracy within 0.2 points.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet.backends.testing import StrictBackend

from conftest import make_backend


def _subset(mnist, n_train=3000, n_test=2000):
    X, y = mnist.training
    Xt, yt = mnist.test
    return (X[:n_train], y[:n_train]), (Xt[:n_test], yt[:n_test])


def _host_params(net):
    return [net.backend.to_host(p) for p in net.weights + net.biases]


def _max_relative(a_list, b_list):
    return max(np.max(np.abs(a - b)) / np.max(np.abs(b)) for a, b in zip(a_list, b_list))


@pytest.fixture(params=["strict", "cuda"])
def other(request):
    """A backend to compare with NumPy: the strict stand-in, and CUDA where present."""
    return make_backend(request.param)


def test_same_seed_same_initial_parameters(other):
    cpu = gpunet.Network([784, 30, 10], init="large", dtype="float64", device="cpu", seed=5)
    dev = gpunet.Network([784, 30, 10], init="large", dtype="float64", device=other, seed=5)
    assert _max_relative(_host_params(dev), _host_params(cpu)) == 0.0


def test_forward_and_gradients_agree(other, mnist):
    X, y = mnist.training[0][:64].astype(np.float64), mnist.training[1][:64]
    kw = dict(cost="cross-entropy", init="default", dtype="float64", seed=2)
    cpu = gpunet.Network([784, 30, 20, 10], device="cpu", **kw)
    dev = gpunet.Network([784, 30, 20, 10], device=other, **kw)
    np.testing.assert_allclose(other.to_host(dev.feedforward(X)), cpu.feedforward(X),
                               rtol=1e-9, atol=1e-15)
    nb_c, nw_c = cpu.backprop(X, y)
    nb_d, nw_d = dev.backprop(X, y)
    assert _max_relative([other.to_host(g) for g in nw_d + nb_d], nw_c + nb_c) < 1e-9


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_float64_training_trajectory_agrees(other, mnist, cost):
    train, test = _subset(mnist)
    kw = dict(cost=cost, init="large", dtype="float64", seed=11)
    cpu = gpunet.Network([784, 30, 10], device="cpu", **kw)
    dev = gpunet.Network([784, 30, 10], device=other, **kw)
    h_cpu = cpu.SGD(train, 3, 10, 0.5, lmbda=1.0, test_data=test, verbose=False)
    h_dev = dev.SGD(train, 3, 10, 0.5, lmbda=1.0, test_data=test, verbose=False)
    assert _max_relative(_host_params(dev), _host_params(cpu)) < 1e-9
    assert h_dev.evaluation_accuracy == h_cpu.evaluation_accuracy


def test_float32_accuracy_agrees(other, mnist):
    train, test = _subset(mnist, n_train=10000, n_test=10000)
    kw = dict(cost="quadratic", init="large", dtype="float32", seed=4)
    cpu = gpunet.Network([784, 30, 10], device="cpu", **kw)
    dev = gpunet.Network([784, 30, 10], device=other, **kw)
    acc_cpu = cpu.SGD(train, 3, 10, 3.0, test_data=test, verbose=False).evaluation_accuracy
    acc_dev = dev.SGD(train, 3, 10, 3.0, test_data=test, verbose=False).evaluation_accuracy
    assert acc_cpu[-1] > 8000  # it learned
    assert abs(acc_dev[-1] - acc_cpu[-1]) <= 0.002 * len(test[1])  # within 0.2 points


@pytest.mark.parametrize("monitors", [
    {},
    {"monitor_evaluation_accuracy": True},
    {"monitor_evaluation_accuracy": True, "monitor_evaluation_cost": True,
     "monitor_training_cost": True, "monitor_training_accuracy": True},
])
def test_no_device_to_host_transfer_inside_an_epoch(mnist, monitors):
    """Training on the strict stand-in copies to the host only the epoch's metrics,
    all of them at once: one transfer per epoch with any monitor, none without."""
    backend = StrictBackend()
    train, test = _subset(mnist, n_train=2000, n_test=500)
    net = gpunet.Network([784, 20, 10], cost="quadratic", device=backend, seed=0)
    backend.reset_transfers()
    epochs = 3
    history = net.SGD(train, epochs, 10, 3.0, lmbda=0.1, evaluation_data=test,
                      verbose=False, **monitors)
    assert backend.transfers == (epochs if monitors else 0)
    assert len(history) == epochs
    if monitors:
        assert len(history.evaluation_accuracy) == epochs


@pytest.mark.parametrize("device", ["strict-capture", "cuda"])
def test_graph_replay_gives_the_eager_trajectory(mnist, device):
    """graph=True (one captured epoch, replayed) trains exactly as the eager loop.

    On the strict stand-in the capture is emulated (recorded work is not run until
    replayed, as with a CUDA graph); on a GPU it is a real CUDA graph."""
    backend = StrictBackend(capture=True) if device == "strict-capture" else make_backend("cuda")
    train, test = _subset(mnist, n_train=1003, n_test=500)  # a partial last mini-batch
    kw = dict(cost="quadratic", init="large", dtype="float64", seed=8)
    eager = gpunet.Network([784, 20, 10], device="cpu", **kw)
    replayed = gpunet.Network([784, 20, 10], device=backend, **kw)
    h_eager = eager.SGD(train, 4, 10, 3.0, lmbda=0.5, test_data=test, verbose=False)
    h_graph = replayed.SGD(train, 4, 10, 3.0, lmbda=0.5, test_data=test, verbose=False,
                           graph=True)
    if device == "strict-capture":
        assert backend.captures == 1  # captured once, replayed for epochs 1 to 3
        assert backend.transfers == 4  # the four epochs' metrics, nothing else
    assert h_graph.evaluation_accuracy == h_eager.evaluation_accuracy
    assert _max_relative(_host_params(replayed), _host_params(eager)) < 1e-9


def test_graph_needs_a_backend_that_can_capture(mnist):
    net = gpunet.Network([784, 10], device="cpu", seed=0)
    with pytest.raises(ValueError, match="needs the CUDA backend, not cpu"):
        net.SGD(_subset(mnist)[0], 1, 10, 1.0, graph=True, verbose=False)
