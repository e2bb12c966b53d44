"""The network learns real MNIST: well above chance (10%) within a few epochs."""

from __future__ import annotations

import pytest

import gpunet


@pytest.mark.parametrize("cost, init, eta", [
    ("quadratic", "large", 3.0),        # chapter 1
    ("cross-entropy", "default", 0.5),  # chapter 3
])
def test_learns_mnist_subset(backend_dtype, mnist, cost, init, eta):
    backend, dtype = backend_dtype
    X, y = mnist.training
    train = (X[:10000], y[:10000])
    net = gpunet.Network([784, 30, 10], cost=cost, init=init, dtype=dtype, device=backend,
                         seed=1)
    history = net.SGD(train, 3, 10, eta, evaluation_data=mnist.test,
                      monitor_evaluation_accuracy=True, monitor_training_cost=True,
                      verbose=False)
    correct = history.evaluation_accuracy
    assert len(correct) == 3
    assert correct[-1] >= 8500, correct  # 85% on all 10,000 test images; chance is 10%
    assert history.training_cost[-1] < history.training_cost[0]


def test_hidden_layer_free_network_learns(mnist):
    """[784, 10] (the book's exercise) is a linear classifier with sigmoid outputs."""
    X, y = mnist.training
    net = gpunet.Network([784, 10], cost="quadratic", init="default", device="cpu", seed=0)
    net.SGD((X[:10000], y[:10000]), 3, 10, 3.0, verbose=False)
    assert net.accuracy(mnist.test) >= 7500
