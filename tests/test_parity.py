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


@pytest.fixture(params=["strict", "strict:1", "cuda"])
def other(request):
    """A backend to compare with NumPy: the strict stand-in, and CUDA where present.

    ``strict:1`` is the stand-in's device 1 while the test thread's current device is
    0, as for a network on ``cuda:1``: any device operation the network does outside
    its own device scope raises."""
    if request.param == "strict:1":
        return StrictBackend(index=1)
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


def test_eager_steps_cannot_be_captured_so_nothing_captures(mnist):
    """CuPy refuses every cuBLAS call while a stream captures (cupy issue #6290), and
    each eager step is matrix products: capturing it would crash, so no option of
    ``SGD`` or ``gpunet train`` captures (the former ``graph=True`` is gone)."""
    backend = StrictBackend()
    net = gpunet.Network([784, 20, 10], device=backend, seed=0)
    batch = _subset(mnist, n_train=10)[0]
    with backend.stream_capture():
        with pytest.raises(NotImplementedError, match="cuBLAS API during stream capture"):
            net.update_mini_batch(batch, 3.0)
    with pytest.raises(TypeError, match="graph"):
        net.SGD(batch, 1, 10, 1.0, graph=True, verbose=False)


def test_training_from_another_thread_stays_on_the_networks_device(mnist):
    """CUDA's current device is per thread: a network on device 1 trained from a new
    thread (whose current device is 0) must still work on device 1."""
    import threading

    train, test = _subset(mnist, n_train=200, n_test=100)
    kw = dict(cost="quadratic", init="large", dtype="float64", seed=3)
    cpu = gpunet.Network([784, 10, 10], device="cpu", **kw)
    dev = gpunet.Network([784, 10, 10], device=StrictBackend(index=1), **kw)
    errors = []

    def train_dev():
        try:
            dev.SGD(train, 2, 10, 3.0, test_data=test, verbose=False)
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    worker = threading.Thread(target=train_dev)
    worker.start()
    worker.join()
    assert not errors, errors
    cpu.SGD(train, 2, 10, 3.0, test_data=test, verbose=False)
    assert _max_relative(_host_params(dev), _host_params(cpu)) < 1e-12


def test_a_missing_device_scope_is_caught():
    """Without the network's scope, strict device 1 refuses work from device 0."""
    backend = StrictBackend(index=1)
    a = backend.asarray(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"resides \(1\) is different from the current device \(0\)"):
        backend.xp.matmul(a, a.T)
    with backend.scope():
        assert backend.to_host(backend.xp.matmul(a, a.T)).tolist() == [[3.0, 3.0], [3.0, 3.0]]
