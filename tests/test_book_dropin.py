"""gpunet as a drop-in for the book's ``network2.py``, ``network.py`` and ``mnist_loader``.

Issue 19: a reader's script runs with ``import gpunet as network2`` and ``import gpunet as
mnist_loader``. What such a script touches is checked here against the book's algorithm
(:mod:`gpunet.check.reference`, the per-example oracle) or the book's documented behaviour:
``SGD``'s return value is the tuple of four lists for every purpose, ``np.random.seed``
makes runs repeat, ``load_data`` / ``vectorized_result``, the costs, ``evaluate``,
``cost_derivative``, ``accuracy`` / ``total_cost`` with ``convert``, the book's ``load``,
and ``weights`` / ``biases`` / ``sizes`` / ``num_layers`` read and assigned. Numbers
compared with NumPy code run on ``device="cpu"`` in float64.
"""

from __future__ import annotations

import copy
import json
import pickle
import random
import re

import numpy as np
import pytest

import gpunet
import gpunet as mnist_loader
import gpunet as network2
from gpunet.check import reference

from conftest import run_gpunet


@pytest.fixture(scope="module")
def wrapped():
    """The book's data: ``mnist_loader.load_data_wrapper()``."""
    return mnist_loader.load_data_wrapper()


@pytest.fixture(scope="module")
def pairs(wrapped):
    """The book's data cut small: 200 training pairs with one-hot targets, 100
    validation pairs with digits."""
    training, validation, _ = wrapped
    return training[:200], validation[:100]


def _arrays(data, one_hot):
    """Rows and float64 targets of a list of the book's ``(x, y)`` pairs."""
    X = np.array([x.ravel() for x, _ in data], dtype=np.float64)
    if one_hot:
        return X, np.array([y.ravel() for _, y in data], dtype=np.float64)
    return X, reference.one_hot(np.array([y for _, y in data]), 10)


def _host_parameters(net):
    return ([np.array(w, dtype=np.float64) for w in net.weights],
            [np.array(b, dtype=np.float64) for b in net.biases])


class _Recorder(np.random.Generator):
    """The network's generator, remembering each epoch's permutation."""

    def __init__(self, seed):
        super().__init__(np.random.PCG64(seed))
        self.orders = []

    def permutation(self, n):
        order = super().permutation(n)
        self.orders.append(order.copy())
        return order


# ------------------------------------------------------- SGD's return value
def _trained(pairs, **kwargs):
    training, validation = pairs
    net = network2.Network([784, 12, 10], device="cpu", seed=5)
    result = net.SGD(training, 2, 10, 0.5, lmbda=1.0, evaluation_data=validation,
                     monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                     monitor_training_cost=True, monitor_training_accuracy=True,
                     verbose=False, **kwargs)
    return net, result


def test_sgd_returns_the_books_tuple_for_every_purpose(pairs, tmp_path):
    net, result = _trained(pairs)
    records = result.records
    book = ([r["evaluation_cost"] for r in records], [r["evaluation_correct"] for r in records],
            [r["training_cost"] for r in records], [r["training_correct"] for r in records])
    assert isinstance(result, tuple) and len(result) == 4
    assert result == book and book == result and list(result) == list(book)
    assert result[1] == book[1] and result[-2] == book[2] and result[1:3] == book[1:3]
    evaluation_cost, evaluation_accuracy, training_cost, training_accuracy = result
    assert training_accuracy == book[3] and all(len(c) == 2 for c in result)
    assert json.dumps(result) == json.dumps(book)  # json.dump(results, f), as fig/*.py do
    with open(tmp_path / "r.json", "w") as f:
        json.dump([result, result], f)
    assert json.loads((tmp_path / "r.json").read_text()) == [list(map(list, book))] * 2
    # pickle writes the book's plain tuple: it loads without gpunet, and == the result
    loaded = pickle.loads(pickle.dumps(result))
    assert type(loaded) is tuple and loaded == result
    assert b"gpunet" not in pickle.dumps(result)
    assert repr(result) == repr(book)  # print(results) shows the book's tuple
    # gpunet's extras stay attributes
    assert result.epochs == [0, 1] and len(result.train_seconds) == 2
    assert result.engine == "cpu" and result is net.history
    assert result.evaluation_accuracy is result[1] and result.training_cost is result[2]
    copied = copy.deepcopy(result)
    assert isinstance(copied, gpunet.History) and copied == result and copied.engine == "cpu"
    assert copied.records == records and copied.records[0] is not records[0]


def test_unmonitored_lists_are_empty_as_in_the_book(pairs):
    training, validation = pairs
    net = network2.Network([784, 12, 10], device="cpu", seed=5)
    result = net.SGD(training, 2, 10, 0.5, evaluation_data=validation,
                     monitor_training_cost=True, verbose=False)
    assert result[0] == [] and result[1] == [] and result[3] == [] and len(result[2]) == 2
    assert json.dumps(result).startswith("[[], [], [")


def test_history_is_rebuilt_from_records_as_checkpoints_and_metrics_keep_it(pairs):
    _, result = _trained(pairs)
    again = gpunet.History(engine=result.engine, records=json.loads(json.dumps(result.records)))
    assert again == result and again.epochs == result.epochs and again.engine == "cpu"
    assert gpunet.History() == ([], [], [], [])


def test_stack_results_are_the_books_tuples_too(pairs):
    training, validation = pairs
    stack = gpunet.NetworkStack([784, 12, 10], seeds=[5, 6], device="cpu")
    results = stack.SGD(training, 2, 10, [0.5, 1.0], evaluation_data=validation,
                        monitor_evaluation_accuracy=True, monitor_training_cost=True,
                        verbose=False)
    for k, result in enumerate(results):
        single = gpunet.Network([784, 12, 10], device="cpu", seed=5 + k).SGD(
            training, 2, 10, [0.5, 1.0][k], evaluation_data=validation,
            monitor_evaluation_accuracy=True, monitor_training_cost=True, verbose=False)
        assert isinstance(result, tuple) and len(result) == 4 and result[1] == single[1]
        ev_cost, ev_acc, tr_cost, tr_acc = result
        assert ev_cost == [] and tr_acc == [] and len(tr_cost) == 2
        assert result.engine.startswith("stacked-") and result.epochs == [0, 1]
    assert json.loads(json.dumps(results)) == [list(map(list, r)) for r in results]
    assert type(pickle.loads(pickle.dumps(results))[0]) is tuple


# ------------------------------------------------------------------- seeds
def _run(pairs, **kwargs):
    training, validation = pairs
    net = network2.Network([784, 12, 10], device="cpu", **kwargs)
    result = net.SGD(training, 2, 10, 0.5, evaluation_data=validation,
                     monitor_evaluation_accuracy=True, monitor_training_cost=True,
                     verbose=False)
    return net, result


def test_np_random_seed_makes_a_run_repeat(pairs):
    """The book's scripts seed NumPy's global generator ("Make results more easily
    reproducible") and build networks without a seed."""
    runs = []
    for _ in range(2):
        random.seed(12345678)
        np.random.seed(12345678)
        runs.append([_run(pairs) for _ in range(2)])  # two networks, as multiple_eta.py
    (a1, ra1), (b1, rb1) = runs[0]
    (a2, ra2), (b2, rb2) = runs[1]
    assert a1.seed == a2.seed and b1.seed == b2.seed and a1.seed != b1.seed
    assert json.dumps(ra1) == json.dumps(ra2) and json.dumps(rb1) == json.dumps(rb2)
    np.testing.assert_array_equal(a1.parameters, a2.parameters)
    np.random.seed(87654321)
    other, _ = _run(pairs)
    assert other.seed != a1.seed


def test_random_seed_alone_does_not_fix_the_run_and_explicit_seed_wins(pairs):
    seeds = set()
    for _ in range(3):
        random.seed(12345678)  # Python's generator: not used by gpunet
        seeds.add(network2.Network([784, 10], device="cpu").seed)
    assert len(seeds) == 3
    np.random.seed(1)
    state = np.random.get_state()[1].copy()
    a, ra = _run(pairs, seed=7)
    assert np.array_equal(np.random.get_state()[1], state)  # an explicit seed draws nothing
    np.random.seed(2)
    b, rb = _run(pairs, seed=7)
    assert a.seed == b.seed == 7 and ra == rb
    np.testing.assert_array_equal(a.parameters, b.parameters)


def test_the_cli_prints_the_seed_it_drew_and_that_seed_repeats_the_run():
    args = ("train", "--device", "cpu", "--limit", "300", "--epochs", "1", "--sizes", "784,10")
    drawn = run_gpunet(*args)
    assert drawn.returncode == 0, drawn.stderr
    seed = re.search(r"seed=(\d+)", drawn.stdout)
    assert seed, drawn.stdout
    again = run_gpunet(*args, "--seed", seed.group(1))
    assert again.returncode == 0, again.stderr
    epoch = lambda run: [l.split("(")[0] for l in run.stdout.splitlines() if l.startswith("Epoch")]
    assert epoch(drawn) == epoch(again) and len(epoch(drawn)) == 1
    assert f"seed={seed.group(1)}" in again.stdout


# -------------------------------------------------------------- mnist_loader
def test_load_data_is_the_books_three_pairs(mnist, wrapped):
    training, validation, test = mnist_loader.load_data()
    for (X, y), (X_ref, y_ref), n in zip((training, validation, test),
                                          (mnist.training, mnist.validation, mnist.test),
                                          (50000, 10000, 10000)):
        assert X.dtype == np.float32 and X.shape == (n, 784)
        assert y.dtype == np.int64 and y.shape == (n,)
        np.testing.assert_array_equal(X, X_ref)
        np.testing.assert_array_equal(y, y_ref)
    assert 0.0 <= training[0].min() and training[0].max() <= 1.0
    wrapped_training, wrapped_validation, _ = wrapped
    x, target = wrapped_training[3]
    np.testing.assert_array_equal(x, training[0][3].reshape(784, 1))
    np.testing.assert_array_equal(target, mnist_loader.vectorized_result(training[1][3]))
    assert wrapped_validation[4][1] == validation[1][4]


def test_vectorized_result():
    e = mnist_loader.vectorized_result(3)
    assert e.shape == (10, 1) and e.dtype == np.float64
    assert e[3, 0] == 1.0 and e.sum() == 1.0
    assert network2.vectorized_result(np.int64(0))[0, 0] == 1.0
    for bad in (10, -1, 2.0, "3", True):
        with pytest.raises(ValueError, match="digit 0..9"):
            mnist_loader.vectorized_result(bad)


# ----------------------------------------------------- what a script touches
@pytest.mark.parametrize("cost, name", [(network2.QuadraticCost, "quadratic"),
                                        (network2.CrossEntropyCost, "cross-entropy")])
def test_cost_classes_and_instances_on_the_books_columns(cost, name):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((10, 1))
    a, y = reference.sigmoid(z), network2.vectorized_result(4)
    expected_fn = (0.5 * np.sum((a - y) ** 2) if name == "quadratic"
                   else -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)))
    for c in (cost, cost()):  # the class, or an instance as overfitting.py passes
        assert float(c.fn(a, y)) == pytest.approx(expected_fn, rel=1e-12)
        np.testing.assert_allclose(c.delta(z, a, y), reference.output_delta(name, z, a, y),
                                   rtol=1e-12, atol=1e-15)
    net = network2.Network([784, 10], cost=cost(), device="cpu", seed=0)
    assert net.cost is cost and float(net.cost.fn(a, y)) == pytest.approx(expected_fn)


def test_evaluate_accuracy_and_total_cost_with_convert_are_the_books(pairs):
    training, validation = pairs
    net = network2.Network([784, 12, 10], cost=network2.QuadraticCost, dtype="float64",
                           device="cpu", seed=3)
    W, B = _host_parameters(net)
    X_tr, Y_tr = _arrays(training, one_hot=True)
    X_va, Y_va = _arrays(validation, one_hot=False)
    digits = lambda data: np.array([int(np.argmax(y)) if np.ndim(y) else y for _, y in data])
    assert net.accuracy(training, convert=True) == reference.accuracy(W, B, X_tr, digits(training))
    assert net.accuracy(validation) == reference.accuracy(W, B, X_va, digits(validation))
    assert net.evaluate(validation) == net.accuracy(validation)  # network.py's name
    assert net.total_cost(training, 5.0) == pytest.approx(
        reference.total_cost(W, B, X_tr, Y_tr, "quadratic", 5.0), rel=1e-12)
    # convert=True: digit labels, made one-hot; λ/(2n) with n = len(data), as the book
    assert net.total_cost(validation, 5.0, convert=True) == pytest.approx(
        reference.total_cost(W, B, X_va, Y_va, "quadratic", 5.0), rel=1e-12)


def test_cost_derivative_and_per_example_backprop_are_network_pys(pairs):
    training, _ = pairs
    net = network2.Network([784, 12, 10], cost=network2.QuadraticCost, init="large",
                           dtype="float64", device="cpu", seed=4)
    a, y = np.full((10, 1), 0.25), network2.vectorized_result(2)
    np.testing.assert_array_equal(net.cost_derivative(a, y), a - y)
    W, B = _host_parameters(net)
    x, y = training[0]
    nabla_b, nabla_w = net.backprop(x, y)  # one example, the book's columns
    ref_w, ref_b = reference.backprop(W, B, x.astype(np.float64), y, "quadratic")
    for got, want in zip(list(nabla_b) + list(nabla_w), ref_b + ref_w):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_large_weight_initializer_between_two_sgd_calls(pairs):
    """weight_initialization.py: SGD, then large_weight_initializer(), then SGD again.
    The second run starts from N(0, 1) weights and is exactly the book's epoch from them;
    its result holds its own epochs only."""
    training, validation = pairs
    net = network2.Network([784, 12, 10], cost=network2.CrossEntropyCost, dtype="float64",
                           device="cpu", seed=6)
    first = net.SGD(training, 2, 10, 0.5, lmbda=5.0, evaluation_data=validation,
                    monitor_evaluation_accuracy=True, verbose=False)
    net.large_weight_initializer()
    W, B = _host_parameters(net)
    assert 0.95 < np.std(W[0]) < 1.05  # N(0, 1), not N(0, 1/784)
    net.rng = _Recorder(11)
    second = net.SGD(training, 1, 10, 0.5, lmbda=5.0, evaluation_data=validation,
                     monitor_evaluation_accuracy=True, verbose=False)
    assert len(first[1]) == 2 and len(second[1]) == 1 and second.epochs == [0]
    X, Y = _arrays(training, one_hot=True)
    W1, B1 = reference.sgd_epoch(W, B, X, Y, net.rng.orders[0], 10, 0.5, 5.0, "cross-entropy")
    for got, want in zip(_host_parameters(net), (W1, B1)):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)
    X_va, _ = _arrays(validation, one_hot=False)
    labels = np.array([y for _, y in validation])
    assert second[1] == [reference.accuracy(W1, B1, X_va, labels)]


def _books_load(filename):
    """``network2.load``, as the book writes it, against ``import gpunet as network2``."""
    with open(filename) as f:
        data = json.load(f)
    cost = getattr(network2, data["cost"])
    net = network2.Network(data["sizes"], cost=cost)
    net.weights = [np.array(w) for w in data["weights"]]
    net.biases = [np.array(b) for b in data["biases"]]
    return net


def test_save_and_the_books_load(tmp_path):
    net = network2.Network([784, 12, 10], cost=network2.QuadraticCost, dtype="float64",
                           device="cpu", seed=8)
    net.save(tmp_path / "net.json")
    data = json.loads((tmp_path / "net.json").read_text())
    assert data["sizes"] == [784, 12, 10] and data["cost"] == "QuadraticCost"
    assert np.array(data["weights"][0]).shape == (12, 784)
    assert np.array(data["biases"][1]).shape == (10, 1)
    loaded = _books_load(tmp_path / "net.json")
    ours = network2.load(tmp_path / "net.json", device="cpu", dtype="float64")
    x = np.linspace(0, 1, 784).reshape(784, 1)
    expected = reference.feedforward(*_host_parameters(net), x)
    for other in (loaded, ours):
        assert other.cost is network2.QuadraticCost
        out = other.backend.to_host(other.feedforward(x)).astype(np.float64)
        np.testing.assert_allclose(out, expected, rtol=1e-5)  # the book's load: float32
    np.testing.assert_array_equal(ours.feedforward(x), net.feedforward(x))


def test_weights_biases_sizes_and_num_layers_read_and_assigned(pairs):
    net = network2.Network([784, 12, 10], dtype="float64", device="cpu", seed=9)
    assert net.sizes == [784, 12, 10] and net.num_layers == 3
    assert isinstance(net.weights, list) and len(net.biases) == 2
    rng = np.random.default_rng(1)
    w0, b1 = rng.standard_normal((12, 784)), rng.standard_normal((10, 1))
    net.weights[0] = w0  # an item, as a script assigns one layer
    net.biases[-1] = b1
    net.weights[1][3, 4] = 0.5  # in place
    W, B = _host_parameters(net)
    np.testing.assert_array_equal(W[0], w0)
    np.testing.assert_array_equal(B[1], b1)
    assert W[1][3, 4] == 0.5
    net.weights[:] = [w * 2 for w in W]  # a slice, the whole list
    np.testing.assert_array_equal(net.weights[0], 2 * w0)
    x = pairs[0][0][0]
    np.testing.assert_allclose(net.feedforward(x),
                               reference.feedforward(*_host_parameters(net), x), rtol=1e-12)
    with pytest.raises(ValueError, match=r"\(12, 784\)"):
        net.weights[0] = np.zeros((784, 12))
    with pytest.raises(TypeError, match="fixed by its sizes"):
        net.biases.append(b1)
    with pytest.raises(TypeError, match="fixed by its sizes"):
        del net.weights[0]
    saved = copy.deepcopy(net.weights)  # a plain list, detached, as the book's deepcopy
    assert type(saved) is list
    net.weights[0][0, 0] = 7.0
    assert saved[0][0, 0] != 7.0
    net.sizes = [784, 20, 30, 10]  # other layers: parameters drawn afresh for them
    assert net.num_layers == 4 and [w.shape for w in net.weights] == [(20, 784), (30, 20), (10, 30)]
    assert net.feedforward(x).shape == (10, 1)
    net.num_layers = 4  # consistent: accepted
    with pytest.raises(ValueError, match="assign net.sizes"):
        net.num_layers = 3


def test_a_subclass_overriding_the_books_methods_is_refused_by_sgd(pairs):
    """The book's SGD would call the override; gpunet's engines would silently not."""

    class Momentum(network2.Network):
        def update_mini_batch(self, mini_batch, eta, lmbda, n):
            raise AssertionError("never called")

    net = Momentum([784, 10], device="cpu", seed=0)
    with pytest.raises(TypeError, match=r"Momentum\.update_mini_batch would not be called"):
        net.SGD(pairs[0], 1, 10, 0.5)

    class Plain(network2.Network):
        """A subclass that overrides nothing SGD calls trains as usual."""

    assert len(Plain([784, 10], device="cpu", seed=0).SGD(pairs[0], 1, 10, 0.5,
                                                           verbose=False).records) == 1


def test_load_draws_its_seed_from_numpys_global_generator(tmp_path, mnist):
    """The book's load builds a Network, which draws from np.random: after
    np.random.seed(s) a loaded network trains on the same shuffles twice; seed= wins."""
    path = tmp_path / "net.json"
    gpunet.Network([784, 10, 10], device="cpu", seed=3).save(path)
    X, y = mnist.training
    runs = []
    for _ in range(2):
        np.random.seed(12345678)
        net = gpunet.load(path, device="cpu", dtype="float64")
        net.SGD((X[:300], y[:300]), 1, 10, 3.0, verbose=False)
        runs.append(np.array(net.parameters))
    np.testing.assert_array_equal(runs[0], runs[1])
    np.random.seed(1)
    other = gpunet.load(path, device="cpu", dtype="float64")
    other.SGD((X[:300], y[:300]), 1, 10, 3.0, verbose=False)
    assert not np.array_equal(np.array(other.parameters), runs[0])  # another seed, other shuffles
    assert gpunet.load(path, device="cpu", seed=7).rng.integers(1 << 30) == \
        gpunet.Network([784, 10, 10], device="cpu", seed=7).rng.integers(1 << 30)
