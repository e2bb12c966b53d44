"""Backprop against central finite differences (book.md §2.8), in float64.

The objective is ``total_cost`` on a small real MNIST batch: the mean cost plus the L2
term ``λ/(2n) Σ w²``. Its gradient from backprop is ``nabla/n + (λ/n) w`` for weights
and ``nabla/n`` for biases.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpunet

EPS = 1e-5
LMBDA = 0.7
N_CHECK = 40  # entries checked per parameter array


def _objective(net, params_w, params_b, batch):
    net.set_parameters(params_w, params_b)
    return net.total_cost(batch, lmbda=LMBDA)


def _numeric_and_analytic(net, batch, rng):
    """Central differences and backprop's gradient on sampled entries of every array."""
    to_host = net.backend.to_host
    W = [to_host(w).copy() for w in net.weights]
    B = [to_host(b).copy() for b in net.biases]
    n = len(batch[1])
    nabla_b, nabla_w = net.backprop(*batch)
    nabla_b = [to_host(g) for g in nabla_b]
    nabla_w = [to_host(g) for g in nabla_w]
    numeric, analytic = [], []
    active_inputs = np.flatnonzero(batch[0].any(axis=0))  # pixels with ink in the batch
    for kind, params in (("w", W), ("b", B)):
        for l, p in enumerate(params):
            rows = rng.integers(0, p.shape[0], N_CHECK)
            if kind == "w" and l == 0:
                cols = rng.choice(active_inputs, N_CHECK)
            else:
                cols = rng.integers(0, p.shape[1], N_CHECK)
            for i, j in zip(rows, cols):
                old = p[i, j]
                p[i, j] = old + EPS
                up = _objective(net, W, B, batch)
                p[i, j] = old - EPS
                down = _objective(net, W, B, batch)
                p[i, j] = old
                numeric.append((up - down) / (2 * EPS))
                if kind == "w":
                    analytic.append(nabla_w[l][i, j] / n + LMBDA / n * old)
                else:
                    analytic.append(nabla_b[l][i, j] / n)
    net.set_parameters(W, B)
    return np.array(numeric), np.array(analytic)


def _relative_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b))


@pytest.mark.parametrize("sizes", [[784, 10], [784, 20, 10], [784, 16, 12, 10]],
                         ids=["no-hidden", "one-hidden", "two-hidden"])
@pytest.mark.parametrize("cost", [gpunet.QuadraticCost, gpunet.CrossEntropyCost],
                         ids=["quadratic", "cross-entropy"])
def test_backprop_matches_finite_differences(backend, mnist, sizes, cost):
    net = gpunet.Network(sizes, cost=cost, init="default", dtype="float64",
                         device=backend, seed=7)
    X, y = mnist.training
    batch = (X[:8].astype(np.float64), y[:8])
    numeric, analytic = _numeric_and_analytic(net, batch, np.random.default_rng(0))
    assert np.linalg.norm(numeric) > 1e-6  # the check must look at real gradients
    assert _relative_error(numeric, analytic) < 1e-6


def test_gradient_check_detects_a_wrong_gradient(mnist):
    """Guard for the check itself: the quadratic cost's δ under a cross-entropy
    objective is wrong, and the check must say so."""

    class WrongCost(gpunet.CrossEntropyCost):
        output_error = staticmethod(gpunet.QuadraticCost.output_error)

    net = gpunet.Network([784, 10, 10], cost=WrongCost, dtype="float64", device="cpu", seed=7)
    X, y = mnist.training
    numeric, analytic = _numeric_and_analytic(net, (X[:8].astype(np.float64), y[:8]),
                                              np.random.default_rng(0))
    assert _relative_error(numeric, analytic) > 1e-2


def test_backprop_sums_per_example_gradients(backend, mnist):
    """The matrix form over a mini-batch equals the book's per-example loop, summed."""
    net = gpunet.Network([784, 15, 10], init="default", dtype="float64", device=backend, seed=3)
    X, y = mnist.training[0][:6].astype(np.float64), mnist.training[1][:6]
    nb, nw = net.backprop(X, y)
    per_example = [net.backprop(X[i].reshape(784, 1), int(y[i])) for i in range(6)]
    to_host = backend.to_host
    for l in range(2):
        np.testing.assert_allclose(to_host(nw[l]), sum(to_host(p[1][l]) for p in per_example),
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(to_host(nb[l]), sum(to_host(p[0][l]) for p in per_example),
                                   rtol=1e-10, atol=1e-12)
        assert nb[l].shape == net.biases[l].shape and nw[l].shape == net.weights[l].shape
