"""The book's interface: shapes, costs, one SGD step, printing, history, determinism."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
from gpunet import CrossEntropyCost, QuadraticCost


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _book_feedforward(net, a):
    """network.py's feedforward on a column, in NumPy."""
    for w, b in zip(net.weights, net.biases):
        a = _sigmoid(np.dot(net.backend.to_host(w), a) + net.backend.to_host(b))
    return a


def test_parameter_shapes_follow_the_book(backend):
    net = gpunet.Network([784, 30, 10], device=backend, seed=0)
    assert net.num_layers == 3
    assert [w.shape for w in net.weights] == [(30, 784), (10, 30)]
    assert [b.shape for b in net.biases] == [(30, 1), (10, 1)]


@pytest.mark.parametrize("init, weight_std", [("large", 1.0), ("default", 1 / np.sqrt(784))])
def test_initializers(init, weight_std):
    net = gpunet.Network([784, 100, 10], init=init, dtype="float64", device="cpu", seed=0)
    assert np.std(net.weights[0]) == pytest.approx(weight_std, rel=0.02)
    assert np.std(net.biases[0]) == pytest.approx(1.0, rel=0.25)


def test_feedforward_shapes_and_values(backend, mnist):
    net = gpunet.Network([784, 30, 10], dtype="float64", device=backend, seed=0)
    X = mnist.test[0][:5].astype(np.float64)
    expected = np.hstack([_book_feedforward(net, x.reshape(784, 1)) for x in X]).T
    to_host = backend.to_host
    batch = net.feedforward(X)
    assert batch.shape == (5, 10)
    np.testing.assert_allclose(to_host(batch), expected, rtol=1e-12)
    column = net.feedforward(X[0].reshape(784, 1))
    assert column.shape == (10, 1)
    np.testing.assert_allclose(to_host(column)[:, 0], expected[0], rtol=1e-12)
    vector = net.feedforward(X[0])
    assert vector.shape == (10,)
    np.testing.assert_allclose(to_host(vector), expected[0], rtol=1e-12)
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


def test_update_mini_batch_is_the_book_rule(backend, mnist):
    """One step: w -> (1 - eta*lmbda/n) w - eta/m sum(grad), b -> b - eta/m sum(grad)."""
    X, y = mnist.training[0][:7].astype(np.float64), mnist.training[1][:7]
    net = gpunet.Network([784, 12, 10], cost="quadratic", dtype="float64",
                         device=backend, seed=9)
    to_host = backend.to_host
    W0 = [to_host(w) for w in net.weights]
    B0 = [to_host(b) for b in net.biases]
    nb, nw = net.backprop(X, y)
    eta, lmbda, n = 0.8, 2.0, 100
    net.update_mini_batch((X, y), eta, lmbda, n)
    for l in range(2):
        expected_w = (1 - eta * lmbda / n) * W0[l] - eta / 7 * to_host(nw[l])
        np.testing.assert_allclose(to_host(net.weights[l]), expected_w, rtol=1e-12)
        np.testing.assert_allclose(to_host(net.biases[l]), B0[l] - eta / 7 * to_host(nb[l]),
                                   rtol=1e-12)


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


def test_total_cost_adds_the_l2_term(mnist):
    net = gpunet.Network([784, 20, 10], dtype="float64", device="cpu", seed=0)
    data = (mnist.test[0][:50], mnist.test[1][:50])
    plain = net.total_cost(data)
    l2 = 0.5 * (3.0 / 50) * sum(np.sum(w ** 2) for w in net.weights)
    assert net.total_cost(data, lmbda=3.0) == pytest.approx(plain + l2, rel=1e-12)
    a = net.feedforward(data[0].astype(np.float64))
    assert plain == pytest.approx(float(net.cost.fn(a, np.eye(10)[data[1]])) / 50, rel=1e-12)


def test_same_seed_same_run_other_seed_other_run(mnist):
    X, y = mnist.training
    runs = []
    for seed in (1, 1, 2):
        net = gpunet.Network([784, 15, 10], device="cpu", seed=seed)
        net.SGD((X[:400], y[:400]), 2, 10, 0.5, verbose=False)
        runs.append(net.weights[0])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_last_mini_batch_may_be_smaller(mnist):
    """n not divisible by m: the last mini-batch has n mod m examples, divided by its size."""
    X, y = mnist.training[0][:23].astype(np.float64), mnist.training[1][:23]
    net = gpunet.Network([784, 10], dtype="float64", device="cpu", seed=0)
    ref = gpunet.Network([784, 10], dtype="float64", device="cpu", seed=0)
    net.SGD((X, y), 1, 10, 1.0, verbose=False)
    perm = np.random.default_rng(0)
    perm.standard_normal(10)  # the initializer's draws: biases, then weights
    perm.standard_normal(7840)
    order = perm.permutation(23)
    for s in range(0, 23, 10):
        idx = order[s:s + 10]
        ref.update_mini_batch((X[idx], y[idx]), 1.0)
    np.testing.assert_allclose(net.weights[0], ref.weights[0], rtol=1e-12)


def test_assigning_parameters_the_network2_way(backend, mnist):
    """network2.load assigns whole lists: net.weights = [...]; net.biases = [...]."""
    source = gpunet.Network([784, 12, 10], dtype="float64", device="cpu", seed=1)
    net = gpunet.Network([784, 12, 10], dtype="float64", device=backend, seed=2)
    net.weights = [np.array(w) for w in source.weights]
    net.biases = [np.array(b) for b in source.biases]
    X = mnist.test[0][:5].astype(np.float64)
    np.testing.assert_array_equal(backend.to_host(net.feedforward(X)), source.feedforward(X))
    # training updates what net.weights shows (views of one flat buffer)
    before = backend.to_host(net.weights[0])
    net.SGD((mnist.training[0][:50], mnist.training[1][:50]), 1, 10, 1.0, verbose=False)
    assert not np.array_equal(backend.to_host(net.weights[0]), before)
    with pytest.raises(TypeError):
        net.weights[0] = before  # a tuple: swap whole lists, not items


def test_a_cost_class_written_as_in_the_book(mnist):
    """network2.py's QuadraticCost, verbatim: delta uses sigmoid_prime(z)."""

    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

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
