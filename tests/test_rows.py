"""The CPU engines' training rows in 8 bits (gpunet/engines/rows.py).

MNIST's numbers are bytes ``u`` over 255; the engines keep them as bytes and decode
each gathered chunk. That is only right if the decoded numbers are the very numbers
of the training set, bit for bit: checked here on MNIST in float32 and float64 (both
ways float64 data is made), refused for data with any other number, and training is
identical (every bit of every parameter) through the 8-bit and the float rows, in
both engines.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import NetworkStack
from gpunet.training.settings import TrainingSettings
from gpunet.engines import rows as rows_module
from gpunet.engines.cpu import CpuEngine
from gpunet.engines.rows import EightBitRows, FloatRows, eight_bit_rows, training_rows


def _mnist(mnist, n, dtype="float32", via="float32"):
    X = mnist.training[0][:n]
    if via == "float64":  # u / 255 computed in float64, as a user's float64 data may be
        X = np.rint(X.astype(np.float64) * 255) / 255.0
    X = X.astype(dtype)
    Y = np.eye(10, dtype=dtype)[mnist.training[1][:n]]
    return X, Y


def _bits(a):
    return a.view(f"u{a.dtype.itemsize}")


def _gathered(rows, idx, n_in, n_out, dtype):
    x = np.ones(idx.shape + (n_in + 1,), dtype)
    y = np.empty(idx.shape + (n_out,), dtype)
    rows.gatherer(idx.size)(idx, x, y)
    return x, y


@pytest.mark.parametrize("dtype,via", [("float32", "float32"), ("float64", "float32"),
                                       ("float64", "float64")])
def test_mnist_rows_are_exact_bytes(mnist, dtype, via):
    """MNIST as u / 255 in float32, widened to float64, or computed in float64: every
    number of every gathered row [x, 1, y] is bit for bit the training set's."""
    X, Y = _mnist(mnist, 3000, dtype, via)
    rows = training_rows(X, Y, dtype)
    assert isinstance(rows, EightBitRows)
    assert rows.via == np.dtype(via) and rows.codes.dtype == np.uint8
    assert rows.codes.shape == (3000, 795)
    idx = np.random.default_rng(0).permutation(3000).reshape(3, 1000)  # (K, rows)
    x, y = _gathered(rows, idx, 784, 10, dtype)
    np.testing.assert_array_equal(_bits(x[..., :784]), _bits(X[idx]))
    assert np.all(x[..., 784] == 1)
    np.testing.assert_array_equal(_bits(y), _bits(Y[idx]))
    assert len(np.unique(rows.codes[:, :784])) > 200  # real grey levels, not just 0 and 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("change", ["not a byte", "negative zero", "one ulp off", "above 1",
                                    "nan", "soft target"])
def test_other_numbers_keep_the_float_rows(mnist, dtype, change):
    X, Y = _mnist(mnist, 500, dtype)
    if change == "not a byte":
        X[123, 400] = 0.3
    elif change == "negative zero":
        X[123, 0] = -0.0  # equal to 0.0, but not the same bits
    elif change == "one ulp off":
        X[499, 400] = np.nextafter(X.dtype.type(100) / X.dtype.type(255), X.dtype.type(1))
    elif change == "above 1":
        X[0, 400] = 2.0
    elif change == "nan":
        X[250, 400] = np.nan
    else:
        Y[3] = 0.5
    assert eight_bit_rows(X, Y, dtype) is None
    rows = training_rows(X, Y, dtype)
    assert isinstance(rows, FloatRows) and rows.X is X and rows.Y is Y
    idx = np.arange(500)[::-1].copy()
    x, y = _gathered(rows, idx, 784, 10, dtype)
    np.testing.assert_array_equal(_bits(x[:, :784]), _bits(X[idx]))
    np.testing.assert_array_equal(_bits(y), _bits(Y[idx]))


def _no_eight_bit(monkeypatch):
    monkeypatch.setattr(rows_module, "eight_bit_rows", lambda X, Y, dtype: None)


@pytest.mark.parametrize("dtype,cost", [("float32", "quadratic"), ("float64", "cross-entropy")])
def test_cpu_engine_trains_identically_from_bytes_and_floats(mnist, monkeypatch, dtype, cost):
    X, Y = _mnist(mnist, 1003, dtype)  # a last mini-batch of 3
    params = {}
    for eight_bit in (True, False):
        if not eight_bit:
            _no_eight_bit(monkeypatch)
        net = gpunet.Network([784, 30, 10], cost=cost, dtype=dtype, seed=2, device="cpu")
        engine = CpuEngine(net, X, Y, TrainingSettings(2, 10, 3.0, 1.0))
        assert isinstance(engine.data, EightBitRows if eight_bit else FloatRows)
        for epoch in range(2):
            engine.train_epoch(np.random.default_rng(epoch).permutation(1003))
        params[eight_bit] = net.parameters.copy()
    np.testing.assert_array_equal(params[True], params[False])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stacked_engine_trains_identically_from_bytes_and_floats(mnist, monkeypatch, dtype):
    X, Y = _mnist(mnist, 1013, dtype)  # 101 mini-batches, a last one of 3
    train = (X, mnist.training[1][:1013])
    made = []

    def spy(*args):
        made.append(eight_bit_rows(*args))
        return made[-1]

    monkeypatch.setattr(rows_module, "eight_bit_rows", spy)
    params = {}
    for eight_bit in (True, False):
        if not eight_bit:
            assert made and all(isinstance(r, EightBitRows) for r in made)
            _no_eight_bit(monkeypatch)
        stack = NetworkStack([784, 12, 10], [3, 0, 7], cost="quadratic", dtype=dtype,
                             device="cpu")
        stack.SGD(train, 2, 10, [0.5, 3.0, 1.0], [0.0, 5.0, 1.0], verbose=False,
                  engine="cpu")
        params[eight_bit] = stack.parameters.copy()
    np.testing.assert_array_equal(params[True], params[False])


@pytest.mark.parametrize("eight_bit", [True, False])
def test_both_rows_train_bit_for_bit_as_the_cpu_engine(mnist, eight_bit):
    """Through either rows the two engines stay bit for bit equal; 1013 examples make
    101 full mini-batches (the stack's last chunk is partial) and a last one of 3."""
    X, Y = _mnist(mnist, 1013, "float32")
    if not eight_bit:
        X[5] *= 0.999  # not u / 255
    labels = mnist.training[1][:1013]
    stack = NetworkStack([784, 12, 10], [3, 0], cost="quadratic", device="cpu")
    stack.SGD((X, labels), 2, 10, [0.5, 3.0], [0.0, 5.0], verbose=False, engine="cpu")
    for k, (seed, eta, lmbda) in enumerate([(3, 0.5, 0.0), (0, 3.0, 5.0)]):
        net = gpunet.Network([784, 12, 10], cost="quadratic", device="cpu", seed=seed)
        engine = CpuEngine(net, X, Y, TrainingSettings(2, 10, eta, lmbda))
        assert isinstance(engine.data, EightBitRows if eight_bit else FloatRows)
        for _ in range(2):
            engine.train_epoch(net.rng.permutation(1013))
        np.testing.assert_array_equal(stack.parameters[k], net.parameters)
