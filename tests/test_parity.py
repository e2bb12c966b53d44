"""The same seed gives the same run on every backend, within what rounding allows.

NumPy is compared with the strict stand-in everywhere (NumPy arithmetic in another
summation order, as a GPU has: every product's contraction and every sum run
backwards) and with CuPy where CuPy sees a GPU (elsewhere those cases skip, saying
why). Every bound below holds for any summation order, BLAS kernel, thread count, FMA
contraction or flush-to-zero, and each says why:

* float64: forward pass, gradients and a 3-epoch trajectory within 1e-9 relative;
* float32: the parameters after 1, 10 and 100 steps within a bound derived from float32
  rounding (:func:`conftest.float32_steps_bound`), against float64 from the same seed;
* float32 end to end: the test accuracy after 3 epochs in a regime that is not chaotic
  (cross-entropy, η = 0.5), within 20 images of float64's.

Chaotic end states (the quadratic cost at η = 3 after thousands of steps) are never
compared: any change of summation order moves them by tens of images.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet.backends.testing import StrictBackend

from conftest import float32_steps_bound, make_backend


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


@pytest.mark.parametrize("cost, eta", [("quadratic", 3.0), ("cross-entropy", 0.5)])
@pytest.mark.parametrize("steps", [1, 10, 100])
def test_float32_steps_agree_within_rounding(other, mnist, cost, eta, steps):
    X, y = mnist.training
    train = (X[:10 * steps], y[:10 * steps])  # one epoch of `steps` mini-batches of 10

    def trained(device, dtype):
        net = gpunet.Network([784, 30, 10], cost=cost, init="large", dtype=dtype,
                             device=device, seed=4)
        net.SGD(train, 1, 10, eta, lmbda=0.1, verbose=False)
        return [p.astype(np.float64) for p in _host_params(net)]

    exact = trained("cpu", "float64")
    bound = float32_steps_bound(steps)
    assert _max_relative(trained("cpu", "float32"), exact) < bound
    assert _max_relative(trained(other, "float32"), exact) < bound


def test_float32_accuracy_agrees(other, mnist):
    """3 epochs of cross-entropy at η = 0.5 on 10,000 images, float32 against float64.

    This regime is not chaotic: float64 and float32 (and NumPy and the reversed
    stand-in) ended within 3 images of each other for each of 6 seeds, although float64
    against float32 is a far larger change of rounding than any change of summation
    order. Seeds themselves spread the accuracy by about 35 images (std), so 20 images
    is a bound rounding cannot reach, while the same examples met in another order (the
    epoch's permutation shifted by one place, or mini-batches overlapping by one row)
    moved it by 44 and 45 images.
    """
    train, test = _subset(mnist, n_train=10000, n_test=10000)
    kw = dict(cost="cross-entropy", init="large", seed=4)
    exact = gpunet.Network([784, 30, 10], device="cpu", dtype="float64", **kw)
    dev = gpunet.Network([784, 30, 10], device=other, dtype="float32", **kw)
    acc_exact = exact.SGD(train, 3, 10, 0.5, test_data=test, verbose=False).evaluation_accuracy
    acc_dev = dev.SGD(train, 3, 10, 0.5, test_data=test, verbose=False).evaluation_accuracy
    assert acc_exact[-1] > 8500  # it learned
    assert abs(acc_dev[-1] - acc_exact[-1]) <= 20


@pytest.mark.parametrize("monitors", [
    {},
    {"monitor_evaluation_accuracy": True},
    {"monitor_evaluation_accuracy": True, "monitor_evaluation_cost": True,
     "monitor_training_cost": True, "monitor_training_accuracy": True},
])
def test_no_device_to_host_transfer_inside_an_epoch(mnist, monitors):
    """Training on the strict stand-in copies to the host only at the end of an epoch,
    everything at once: the monitored metrics with the divergence flag (every parameter
    still finite, computed on the device), one transfer per epoch, monitors or not."""
    backend = StrictBackend()
    train, test = _subset(mnist, n_train=2000, n_test=500)
    net = gpunet.Network([784, 20, 10], cost="quadratic", device=backend, seed=0)
    backend.reset_transfers()
    epochs = 3
    history = net.SGD(train, epochs, 10, 3.0, lmbda=0.1, evaluation_data=test,
                      verbose=False, **monitors)
    assert backend.transfers == epochs
    assert history.epochs == list(range(epochs))
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
