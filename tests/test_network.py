"""The book's interface: shapes, costs, one SGD step, printing, history, determinism."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import CrossEntropyCost, QuadraticCost
from gpunet.check import reference

from conftest import assert_close, tolerance


def _host_parameters(net):
    """The network's weights and biases as float64 host arrays, for the reference."""
    to_host = net.backend.to_host
    return ([to_host(w).astype(np.float64) for w in net.weights],
            [to_host(b).astype(np.float64) for b in net.biases])


def test_parameter_shapes_follow_the_book(backend_dtype):
    backend, dtype = backend_dtype
    net = gpunet.Network([784, 30, 10], dtype=dtype, device=backend, seed=0)
    assert net.num_layers == 3
    assert [w.shape for w in net.weights] == [(30, 784), (10, 30)]
    assert [b.shape for b in net.biases] == [(30, 1), (10, 1)]
    assert {p.dtype for p in net.weights + net.biases} == {np.dtype(dtype)}


@pytest.mark.parametrize("init, weight_std", [("large", 1.0), ("default", 1 / np.sqrt(784))])
def test_initializers(init, weight_std):
    net = gpunet.Network([784, 100, 10], init=init, dtype="float64", device="cpu", seed=0)
    assert np.std(net.weights[0]) == pytest.approx(weight_std, rel=0.02)
    assert np.std(net.biases[0]) == pytest.approx(1.0, rel=0.25)


def test_feedforward_shapes_and_values(backend_dtype, mnist):
    backend, dtype = backend_dtype
    net = gpunet.Network([784, 30, 10], dtype=dtype, device=backend, seed=0)
    X = mnist.test[0][:5].astype(dtype)
    W, B = _host_parameters(net)
    expected = np.hstack([reference.feedforward(W, B, x.reshape(784, 1).astype(np.float64))
                          for x in X]).T
    to_host = backend.to_host
    batch = net.feedforward(X)
    assert batch.shape == (5, 10) and batch.dtype == np.dtype(dtype)
    assert_close(to_host(batch), expected, dtype)
    column = net.feedforward(X[0].reshape(784, 1))
    assert column.shape == (10, 1)
    assert_close(to_host(column)[:, 0], expected[0], dtype)
    vector = net.feedforward(X[0])
    assert vector.shape == (10,)
    assert_close(to_host(vector), expected[0], dtype)
    np.testing.assert_array_equal(net.predict(X), expected.argmax(axis=1))


@pytest.mark.parametrize("cost", [QuadraticCost, CrossEntropyCost])
def test_costs_are_nan_free_where_outputs_are_exact(cost):
    a = np.array([[0.0, 1.0, 0.0, 1.0]])
    y = np.array([[0.0, 1.0, 0.0, 1.0]])
    with np.errstate(all="raise"):
        assert float(cost.fn(a, y)) == 0.0
        assert np.all(cost.delta(None, a, y) == 0.0)


def test_cost_values():
    a = np.array([[0.2, 0.9], [0.6, 0.1]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert float(QuadraticCost.fn(a, y)) == pytest.approx(0.5 * (0.04 + 0.01 + 0.16 + 0.01))
    ce = -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a))
    assert float(CrossEntropyCost.fn(a, y)) == pytest.approx(ce)
    # an output saturated on the wrong value costs a lot, but finitely
    wrong = float(CrossEntropyCost.fn(np.array([[1.0]]), np.array([[0.0]])))
    assert 700 < wrong < np.inf
    np.testing.assert_allclose(QuadraticCost.delta(None, a, y), (a - y) * a * (1 - a))


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_update_mini_batch_is_the_book_rule(backend_dtype, mnist, cost):
    """One step (chapter 3, eq. 93, 94): w -> (1 - eta*lmbda/n) w - eta/m sum(grad),
    b -> b - eta/m sum(grad), as the reference computes it example by example."""
    backend, dtype = backend_dtype
    X, y = mnist.training[0][:7].astype(dtype), mnist.training[1][:7]
    net = gpunet.Network([784, 12, 10], cost=cost, dtype=dtype, device=backend, seed=9)
    W0, B0 = _host_parameters(net)
    eta, lmbda, n = 0.8, 2.0, 100
    expected_w, expected_b = reference.update_mini_batch(
        W0, B0, X.astype(np.float64), reference.one_hot(y, 10), eta, lmbda, n, cost)
    net.update_mini_batch((X, y), eta, lmbda, n)
    W1, B1 = _host_parameters(net)
    for l in range(2):
        # the step itself, not the parameters (which barely change), must agree
        assert_close(W1[l] - W0[l], expected_w[l] - W0[l], dtype, f"weights[{l}]")
        assert_close(B1[l] - B0[l], expected_b[l] - B0[l], dtype, f"biases[{l}]")


def test_sgd_prints_the_book_lines_and_returns_history(mnist, capsys):
    X, y = mnist.training
    net = gpunet.Network([784, 20, 10], device="cpu", seed=0)
    history = net.SGD((X[:500], y[:500]), 2, 10, 0.5, 0.1, mnist.validation,
                      monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                      monitor_training_cost=True, monitor_training_accuracy=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Epoch 0: ") and out[0].endswith(" / 10000")
    assert out[1].startswith("Cost on training data: ")
    assert out[2].startswith("Accuracy on training data: ") and out[2].endswith(" / 500")
    assert out[3].startswith("Cost on evaluation data: ")
    ev_cost, ev_acc, tr_cost, tr_acc = history  # network2.py's four lists
    assert len(ev_cost) == len(ev_acc) == len(tr_cost) == len(tr_acc) == 2
    assert all(isinstance(c, int) and 0 <= c <= 10000 for c in ev_acc)
    assert all(r["train_seconds"] > 0 for r in history.records)
    assert int(out[0].split()[2]) == ev_acc[0]


def test_sgd_without_evaluation_says_epoch_complete(mnist, capsys):
    X, y = mnist.training
    gpunet.Network([784, 10], device="cpu", seed=0).SGD((X[:100], y[:100]), 1, 10, 1.0)
    assert capsys.readouterr().out.strip() == "Epoch 0 training complete"


def test_network_py_call_style(mnist, capsys):
    """SGD(training_data, epochs, m, eta, test_data=...) and evaluate(), with the
    book's list-of-pairs data, give what the array form gives."""
    X, y = mnist.training
    pairs = [(X[i].reshape(784, 1), np.eye(10)[y[i]].reshape(10, 1)) for i in range(300)]
    test_pairs = [(mnist.test[0][i].reshape(784, 1), int(mnist.test[1][i])) for i in range(200)]
    a = gpunet.Network([784, 20, 10], cost=QuadraticCost, init="large", device="cpu", seed=3)
    b = gpunet.Network([784, 20, 10], cost=QuadraticCost, init="large", device="cpu", seed=3)
    a.SGD(pairs, 2, 10, 3.0, test_data=test_pairs)
    b.SGD((X[:300], y[:300]), 2, 10, 3.0, verbose=False)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)
    assert a.evaluate(test_pairs) == b.accuracy((mnist.test[0][:200], mnist.test[1][:200]))
    assert capsys.readouterr().out.splitlines()[-1].endswith(" / 200")


def test_accuracy_reads_one_hot_and_digit_labels_alike(mnist):
    net = gpunet.Network([784, 20, 10], device="cpu", seed=0)
    X, y = mnist.test[0][:300], mnist.test[1][:300]
    assert net.accuracy((X, y)) == net.accuracy((X, np.eye(10)[y]), convert=True)
    assert net.accuracy((X, y)) == int(np.sum(net.predict(X) == y))


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_total_cost_adds_the_l2_term(backend_dtype, mnist, cost):
    """Mean cost plus λ/(2n) Σ w² (chapter 3, eq. 85 and 86), as the reference sums it."""
    backend, dtype = backend_dtype
    net = gpunet.Network([784, 20, 10], cost=cost, dtype=dtype, device=backend, seed=0)
    X, y = mnist.test[0][:50], mnist.test[1][:50]
    W, B = _host_parameters(net)
    rel = tolerance(dtype)["rtol"]
    for lmbda in (0.0, 3.0):
        expected = reference.total_cost(W, B, X.astype(np.float64), reference.one_hot(y, 10),
                                        cost, lmbda)
        assert net.total_cost((X, y), lmbda=lmbda) == pytest.approx(expected, rel=rel)
    plain = net.total_cost((X, y))
    l2 = 0.5 * (3.0 / 50) * sum(np.sum(w ** 2) for w in W)
    assert net.total_cost((X, y), lmbda=3.0) == pytest.approx(plain + l2, rel=rel)


def test_same_seed_same_run_other_seed_other_run(mnist):
    X, y = mnist.training
    runs = []
    for seed in (1, 1, 2):
        net = gpunet.Network([784, 15, 10], device="cpu", seed=seed)
        net.SGD((X[:400], y[:400]), 2, 10, 0.5, verbose=False)
        runs.append(net.weights[0])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


class _FixedOrder(np.random.Generator):
    """The network's generator, except that every epoch's shuffle is ``order``."""

    def __init__(self, order):
        super().__init__(np.random.PCG64(0))
        self.order = np.asarray(order)

    def permutation(self, n):
        assert n == len(self.order)
        return self.order.copy()


def test_last_mini_batch_may_be_smaller(backend_dtype, mnist):
    """n not divisible by m: the last mini-batch has n mod m examples, divided by its
    size. Explicit parameters and a fixed shuffle: nothing depends on how the
    initializer draws from the generator."""
    backend, dtype = backend_dtype
    X, y = mnist.training[0][:23].astype(dtype), mnist.training[1][:23]
    rng = np.random.default_rng(42)
    W = [rng.standard_normal((10, 20)) / np.sqrt(20)]
    B = [rng.standard_normal((10, 1))]
    order = rng.permutation(23)
    X = X[:, 300:320]  # 20 inputs with ink, so every example moves the weights
    net = gpunet.Network([20, 10], cost="quadratic", dtype=dtype, device=backend, seed=0)
    net.set_parameters([w.astype(dtype) for w in W], [b.astype(dtype) for b in B])
    net.rng = _FixedOrder(order)
    net.SGD((X, y), 1, 10, 1.0, lmbda=0.5, verbose=False)  # mini-batches of 10, 10 and 3
    W = [w.astype(dtype).astype(np.float64) for w in W]
    B = [b.astype(dtype).astype(np.float64) for b in B]
    expected_w, expected_b = reference.sgd_epoch(W, B, X.astype(np.float64),
                                                 reference.one_hot(y, 10), order, 10, 1.0,
                                                 0.5, "quadratic")
    W1, B1 = _host_parameters(net)
    assert_close(W1[0] - W[0], expected_w[0] - W[0], dtype)
    assert_close(B1[0] - B[0], expected_b[0] - B[0], dtype)


def test_assigning_parameters_the_network2_way(backend, mnist):
    """network2.load assigns whole lists: net.weights = [...]; net.biases = [...]."""
    source = gpunet.Network([784, 12, 10], dtype="float64", device="cpu", seed=1)
    net = gpunet.Network([784, 12, 10], dtype="float64", device=backend, seed=2)
    net.weights = [np.array(w) for w in source.weights]
    net.biases = [np.array(b) for b in source.biases]
    X = mnist.test[0][:5].astype(np.float64)
    # the same parameters: equal to float64 rounding (another device sums in another order)
    np.testing.assert_allclose(backend.to_host(net.feedforward(X)), source.feedforward(X),
                               rtol=1e-12, atol=0)
    # training updates what net.weights shows (views of one flat buffer)
    before = backend.to_host(net.weights[0])
    net.SGD((mnist.training[0][:50], mnist.training[1][:50]), 1, 10, 1.0, verbose=False)
    assert not np.array_equal(backend.to_host(net.weights[0]), before)
    net.weights[0] = before  # a list, as network2.py's: the item is copied into the layer
    np.testing.assert_array_equal(backend.to_host(net.weights[0]), before)
    with pytest.raises(TypeError, match="fixed by its sizes"):
        net.weights.append(before)  # would not reach the network


def test_a_cost_class_written_as_in_the_book(mnist):
    """network2.py's QuadraticCost, verbatim: delta uses sigmoid_prime(z)."""

    sigmoid = reference.sigmoid  # network2.py's module-level sigmoid

    class BookQuadraticCost:
        @staticmethod
        def fn(a, y):
            return 0.5 * np.linalg.norm(a - y) ** 2

        @staticmethod
        def delta(z, a, y):
            return (a - y) * sigmoid(z) * (1 - sigmoid(z))

    X, y = mnist.training[0][:40].astype(np.float64), mnist.training[1][:40]
    ours = gpunet.Network([784, 15, 10], cost=QuadraticCost, dtype="float64", device="cpu", seed=2)
    book = gpunet.Network([784, 15, 10], cost=BookQuadraticCost, dtype="float64", device="cpu",
                          seed=2)
    ours.SGD((X, y), 2, 10, 3.0, verbose=False)
    book.SGD((X, y), 2, 10, 3.0, verbose=False)
    for a, b in zip(ours.weights, book.weights):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
