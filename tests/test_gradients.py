"""Backprop against central finite differences and against the book's per-example loop.

Finite differences (chapter 2, "In what sense is backpropagation a fast algorithm?")
run in float64 only: in float32 a step small enough for the derivative is lost to
rounding. The objective is ``total_cost`` on a small real MNIST batch: the mean cost
plus the L2 term ``λ/(2n) Σ w²``. Its gradient from backprop is ``nabla/n + (λ/n) w``
for weights and ``nabla/n`` for biases. The batched backprop is also compared, in
every dtype, with :mod:`gpunet.check.reference` (chapter 2's four equations, one example at a
time, summed).
"""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet.check import reference

from conftest import assert_close

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


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_backprop_sums_per_example_gradients(backend_dtype, mnist, cost):
    """The matrix form over a mini-batch equals the book's per-example loop, summed,
    for a mini-batch and for one example given as the book's column."""
    backend, dtype = backend_dtype
    net = gpunet.Network([784, 15, 12, 10], cost=cost, init="default", dtype=dtype,
                         device=backend, seed=3)
    X, y = mnist.training[0][:6].astype(dtype), mnist.training[1][:6]
    to_host = backend.to_host
    W = [to_host(w).astype(np.float64) for w in net.weights]
    B = [to_host(b).astype(np.float64) for b in net.biases]
    for rows in (slice(0, 6), slice(2, 3)):
        Xr, yr = X[rows], y[rows]
        expected_w, expected_b = reference.gradient(W, B, Xr.astype(np.float64),
                                                    reference.one_hot(yr, 10), cost)
        if len(yr) == 1:
            nb, nw = net.backprop(Xr[0].reshape(784, 1), int(yr[0]))
        else:
            nb, nw = net.backprop(Xr, yr)
        for l in range(3):
            assert nb[l].shape == net.biases[l].shape and nw[l].shape == net.weights[l].shape
            assert nw[l].dtype == np.dtype(dtype)
            assert_close(to_host(nw[l]), expected_w[l], dtype, f"nabla_w[{l}]")
            assert_close(to_host(nb[l]), expected_b[l], dtype, f"nabla_b[{l}]")
