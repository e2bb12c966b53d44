"""Misuse gives a ValueError that says what to change, never a deep traceback."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet


@pytest.fixture
def net():
    return gpunet.Network([784, 20, 10], device="cpu", seed=0)


@pytest.fixture
def small(mnist):
    return mnist.training[0][:50], mnist.training[1][:50]


@pytest.mark.parametrize("kwargs, match", [
    (dict(sizes=[784]), "at least two layers"),
    (dict(sizes=[784, 0, 10]), "positive integer"),
    (dict(sizes=[784, 2.5, 10]), "positive integer"),
    (dict(sizes=784), "list of layer sizes"),
    (dict(sizes=[784, 10], cost="hinge"), "unknown cost 'hinge'; use 'quadratic' or 'cross-entropy'"),
    (dict(sizes=[784, 10], cost=42), "cost must be QuadraticCost, CrossEntropyCost"),
    (dict(sizes=[784, 10], init="xavier"), "unknown init 'xavier'; use 'default' or 'large'"),
    (dict(sizes=[784, 10], dtype="float16"), "unsupported dtype.*'float32' or 'float64'"),
    (dict(sizes=[784, 10], device="gpu"), "unknown device 'gpu'"),
    (dict(sizes=[784, 10], seed=-1), "seed must be a non-negative integer"),
])
def test_bad_network_arguments(kwargs, match):
    kwargs.setdefault("device", "cpu")
    with pytest.raises(ValueError, match=match):
        gpunet.Network(**kwargs)


@pytest.mark.parametrize("args, match", [
    ((0, 10, 1.0), "epochs must be a positive integer"),
    ((-2, 10, 1.0), "epochs must be a positive integer"),
    ((1.5, 10, 1.0), "epochs must be a positive integer"),
    ((1, 0, 1.0), "mini_batch_size must be a positive integer"),
    ((1, 10, 0.0), r"eta \(the learning rate\) must be a positive number"),
    ((1, 10, -3.0), "eta"),
    ((1, 10, float("nan")), "eta"),
    ((1, 10, "3.0"), "eta"),
])
def test_bad_training_hyperparameters(net, small, args, match):
    with pytest.raises(ValueError, match=match):
        net.SGD(small, *args, verbose=False)


def test_bad_lambda(net, small):
    with pytest.raises(ValueError, match=r"lmbda .* must be a number >= 0"):
        net.SGD(small, 1, 10, 1.0, lmbda=-1.0, verbose=False)


def test_inputs_that_do_not_fit_the_first_layer(net, small):
    X, y = small
    with pytest.raises(ValueError, match=r"100 inputs per example .* 784 neurons; make sizes\[0\] equal 100"):
        net.SGD((X[:, :100], y), 1, 10, 1.0, verbose=False)


def test_transposed_inputs_are_caught(net, small):
    X, y = small
    with pytest.raises(ValueError, match="50 inputs per example"):
        net.SGD((X.T, y), 1, 10, 1.0, verbose=False)


def test_inputs_with_wrong_dimensions(net, small):
    X, y = small
    with pytest.raises(ValueError, match=r"shape \(50, 28, 28\); expected \(n_examples, n_inputs\)"):
        net.SGD((X.reshape(50, 28, 28), y), 1, 10, 1.0, verbose=False)


def test_non_finite_inputs(net, small):
    X, y = small
    X = X.copy()
    X[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.SGD((X, y), 1, 10, 1.0, verbose=False)
    X[3, 5] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.accuracy((X, y))
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.feedforward(X[3])


def test_labels_out_of_range(small):
    X, y = small
    net = gpunet.Network([784, 20, 5], device="cpu", seed=0)
    with pytest.raises(ValueError, match=r"label \d .* out of range: the network has 5 outputs, so labels must be 0..4"):
        net.SGD((X, y), 1, 10, 1.0, verbose=False)
    with pytest.raises(ValueError, match="out of range"):
        gpunet.Network([784, 10], device="cpu").accuracy((X, y - 20))


def test_non_integer_labels(net, small):
    X, y = small
    with pytest.raises(ValueError, match="whole numbers"):
        net.SGD((X, y + 0.5), 1, 10, 1.0, verbose=False)


def test_label_count_mismatch(net, small):
    X, y = small
    with pytest.raises(ValueError, match="50 inputs but 49 labels"):
        net.SGD((X, y[:49]), 1, 10, 1.0, verbose=False)


def test_target_vectors_of_the_wrong_width(net, small):
    X, y = small
    with pytest.raises(ValueError, match=r"shape \(50, 4\); expected integer labels .* \(50, 10\)"):
        net.SGD((X, np.zeros((50, 4))), 1, 10, 1.0, verbose=False)


def test_empty_data(net):
    with pytest.raises(ValueError, match="empty"):
        net.SGD((np.zeros((0, 784)), np.zeros(0, dtype=int)), 1, 10, 1.0, verbose=False)
    with pytest.raises(ValueError, match="empty"):
        net.SGD([], 1, 10, 1.0, verbose=False)


def test_not_data_at_all(net):
    with pytest.raises(ValueError, match="list of \\(x, y\\) pairs"):
        net.SGD(42, 1, 10, 1.0, verbose=False)
    with pytest.raises(ValueError, match="is not an \\(x, y\\) pair"):
        net.SGD([1, 2, 3], 1, 10, 1.0, verbose=False)


def test_feedforward_wrong_shape(net):
    with pytest.raises(ValueError, match=r"shape \(100,\); the network has 784 inputs"):
        net.feedforward(np.zeros(100))


def test_monitoring_without_evaluation_data(net, small):
    with pytest.raises(ValueError, match="evaluation_data is None"):
        net.SGD(small, 1, 10, 1.0, monitor_evaluation_accuracy=True, verbose=False)
    with pytest.raises(ValueError, match="either test_data or evaluation_data"):
        net.SGD(small, 1, 10, 1.0, test_data=small, evaluation_data=small, verbose=False)


def test_set_parameters_checks_shapes(net):
    with pytest.raises(ValueError, match=r"expected \(20, 784\) and \(20, 1\)"):
        net.set_parameters([np.zeros((784, 20)), np.zeros((10, 20))],
                           [np.zeros((20, 1)), np.zeros((10, 1))])
