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


# ------------------------------------------------- every argument, before training
# Issue 26: the same rules for Network.SGD, NetworkStack.SGD and gpunet.resume, each a
# ValueError before anything is trained (callback="print" failed after the first epoch;
# resume(epochs=3.7) trained 3 epochs and epochs="4" was accepted; a mini-batch larger
# than the data was one batch of all of it; "no" for verbose printed).

TRAINING_MISUSE = [
    (dict(epochs=3.7), r"epochs must be a positive integer, got 3\.7"),
    (dict(epochs="4"), "epochs must be a positive integer, got '4'"),
    (dict(epochs=True), "epochs must be a positive integer, got True"),
    (dict(mini_batch_size=10.0), r"mini_batch_size must be a positive integer, got 10\.0"),
    (dict(mini_batch_size=51), "mini_batch_size 51 is larger than the 50 training examples"),
    (dict(eta=True), r"eta \(the learning rate\) must be a positive number, got True"),
    (dict(lmbda="0"), r"lmbda .* must be a number >= 0, got '0'"),
    (dict(monitor_training_cost="yes"), "monitor_training_cost must be True or False, got 'yes'"),
    (dict(monitor_training_accuracy=1), "monitor_training_accuracy must be True or False, got 1"),
    (dict(verbose="no"), "verbose must be True or False, got 'no'"),
    (dict(progress="yes"), "progress must be True or False, got .yes."),
    (dict(callback="print"), "callback must be a function.*got 'print'"),
    (dict(callback=5), "callback must be a function"),
    (dict(engine="fast"), "unknown engine 'fast'; use 'auto', 'eager', 'fused' or 'cpu'"),
    (dict(engine=None), "unknown engine None"),
    (dict(checkpoint=5), "checkpoint must be a file path .* got 5"),
    (dict(checkpoint=""), "checkpoint must be a file path .* got ''"),
    (dict(checkpoint=b"run.ckpt"), "checkpoint must be a file path"),
]

SGD_ARGUMENTS = dict(epochs=2, mini_batch_size=10, eta=1.0, verbose=False)


def _sgd(model, data, **changes):
    kwargs = {**SGD_ARGUMENTS, **changes}
    epochs, m, eta = kwargs.pop("epochs"), kwargs.pop("mini_batch_size"), kwargs.pop("eta")
    return model.SGD(data, epochs, m, eta, **kwargs)


@pytest.mark.parametrize("changes, match", TRAINING_MISUSE)
def test_network_sgd_checks_every_argument_before_training(small, tmp_path, monkeypatch,
                                                           changes, match):
    monkeypatch.chdir(tmp_path)  # where a checkpoint would be written
    net = gpunet.Network([784, 20, 10], device="cpu", seed=0)
    before = np.array(net.parameters)
    with pytest.raises(ValueError, match=match):
        _sgd(net, small, **changes)
    assert np.array_equal(np.asarray(net.parameters), before)  # nothing trained
    assert net.history.records == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("changes, match", TRAINING_MISUSE + [
    (dict(workers=0), "workers must be a positive integer, got 0"),
    (dict(workers="2"), "workers must be a positive integer, got '2'"),
    (dict(eta={1: 2.0, 3: 4.0}), r"eta \(the learning rate\) must be a positive number"),
    (dict(eta={0.5, 3.0}), r"eta \(the learning rate\) must be a positive number"),
    (dict(eta=[]), "eta is an empty list"),
    (dict(lmbda=[]), "lmbda is an empty list"),
    (dict(eta=[0.5, 3.0, 1.0]), "eta has 3 values for 2 networks"),
    (dict(lmbda=[0.0, "1"]), "lmbda .* got '1'"),
])
def test_stack_sgd_checks_every_argument_before_training(small, tmp_path, monkeypatch,
                                                         changes, match):
    from gpunet.networks.stack import NetworkStack

    monkeypatch.chdir(tmp_path)
    stack = NetworkStack([784, 20, 10], seeds=[0, 1], device="cpu")
    before = np.array(stack.parameters)
    with pytest.raises(ValueError, match=match):
        _sgd(stack, small, **changes)
    assert np.array_equal(np.asarray(stack.parameters), before)
    assert stack.histories == [] and list(tmp_path.iterdir()) == []


RESUME_MISUSE = [(changes, match) for changes, match in TRAINING_MISUSE
                 if set(changes) & {"epochs", "verbose", "progress", "callback", "checkpoint"}]


@pytest.mark.parametrize("kind", ["network", "stack"])
@pytest.mark.parametrize("changes, match", RESUME_MISUSE)
def test_resume_checks_every_argument_as_sgd_does(small, tmp_path, monkeypatch, kind,
                                                  changes, match):
    from gpunet.networks.stack import NetworkStack

    path = tmp_path / "run.ckpt"
    model = (gpunet.Network([784, 20, 10], device="cpu", seed=0) if kind == "network"
             else NetworkStack([784, 20, 10], seeds=[0, 1], device="cpu"))
    _sgd(model, small, epochs=1, checkpoint=path)
    written = path.read_bytes()
    monkeypatch.chdir(tmp_path)
    kwargs = {"verbose": False, "epochs": 3, "device": "cpu", **changes}
    with pytest.raises(ValueError, match=match):
        gpunet.resume(path, small, **kwargs)
    assert path.read_bytes() == written  # nothing trained, nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]


def test_resume_to_fewer_epochs_than_done_says_how_many(small, tmp_path):
    path = tmp_path / "run.ckpt"
    gpunet.Network([784, 20, 10], device="cpu", seed=0).SGD(small, 2, 10, 1.0, verbose=False,
                                                            checkpoint=path)
    with pytest.raises(ValueError, match="has 2 epochs done; ask for at least that many"):
        gpunet.resume(path, small, epochs=1, verbose=False, device="cpu")


@pytest.mark.parametrize("seeds, match", [
    ({0, 1}, "seeds must be a list of seeds"),         # a set: no order of its own
    ("01", "seeds must be a list of seeds"),
    ((s for s in [0, 1]), "seeds must be a list of seeds"),
    ({0: "a", 1: "b"}, "seeds must be a list of seeds"),
    ([0, 1.0], "seed must be a non-negative integer, got 1.0"),
    ([0, True], "seed must be a non-negative integer, got True"),
])
def test_stack_seeds_are_an_ordered_list_of_seeds(seeds, match):
    from gpunet.networks.stack import NetworkStack

    with pytest.raises(ValueError, match=match):
        NetworkStack([784, 10], seeds, device="cpu")


@pytest.mark.parametrize("sizes", [{784, 30, 10}, "784,30,10", {784: 1, 10: 2},
                                   np.array([[784, 10]])])
def test_sizes_are_an_ordered_list(sizes):
    with pytest.raises(ValueError, match="sizes must be a list of layer sizes"):
        gpunet.Network(sizes, device="cpu")


def test_the_rules_accept_numpy_numbers_and_any_sequence(small):
    """What a script may pass: NumPy integers and floats, NumPy booleans, tuples, arrays,
    a range of seeds; the same run as with Python's own values."""
    from gpunet.networks.stack import NetworkStack

    a = NetworkStack(np.array([784, 20, 10]), seeds=range(2), device="cpu")
    a.SGD(small, np.int64(1), np.int32(10), np.float32(1.0), lmbda=(0.0, np.float64(0.5)),
          monitor_training_cost=np.True_, verbose=False, workers=np.int64(1))
    b = NetworkStack([784, 20, 10], seeds=[0, 1], device="cpu")
    b.SGD(small, 1, 10, 1.0, lmbda=[0.0, 0.5], monitor_training_cost=True, verbose=False)
    assert np.array_equal(np.asarray(a.parameters), np.asarray(b.parameters))


@pytest.mark.parametrize("path", [5, None, "", b"run.ckpt"])
def test_resume_needs_a_checkpoint_path(small, path):
    with pytest.raises(ValueError, match="path must be a file path .* got"):
        gpunet.resume(path, small)


@pytest.mark.parametrize("k", [True, 1.0, "1"])
def test_a_stack_network_index_is_an_integer(k):
    from gpunet.networks.stack import NetworkStack

    stack = NetworkStack([784, 10], seeds=[0, 1], device="cpu")
    with pytest.raises(ValueError, match=f"network index {k!r} is out of range for 2"):
        stack.network(k)
