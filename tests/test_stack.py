"""NetworkStack: K networks trained in lockstep equal K single-network runs.

The requirement (issue 11): each stacked network's run equals the run of a single
``Network`` with the same seed, η and λ: in float64 the same per-epoch accuracy and
parameters within 1e-9 relative; in float32 the parameters within float32's rounding
bound (``conftest.float32_steps_bound``: bit for bit where the stack runs the single
network's arithmetic, as on NumPy, but a batched product may sum in another order than
K single ones on a GPU). Checked on
NumPy, on the strict stand-in for a GPU (no implicit host copies, transfers counted) and
on CUDA where there is one.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import gpunet
from gpunet import Network, NetworkStack
from gpunet.model.parameters import n_parameters

from conftest import float32_steps_bound, host

SIZES = [784, 12, 10]
SEEDS = [3, 0, 7]
ETAS = [0.5, 3.0, 1.0]
LMBDAS = [0.0, 5.0, 1.0]


@pytest.fixture(scope="module")
def small(mnist):
    """1,003 training images (so m = 10 leaves a last mini-batch of 3) and 400 test."""
    X, y = mnist.training
    Xt, yt = mnist.test
    return (X[:1003], y[:1003]), (Xt[:400], yt[:400])


def single_runs(backend, small, dtype, cost, init, epochs, monitors):
    train, test = small
    runs = []
    for seed, eta, lmbda in zip(SEEDS, ETAS, LMBDAS):
        net = Network(SIZES, cost=cost, init=init, dtype=dtype, device=backend, seed=seed)
        history = net.SGD(train, epochs, 10, eta, lmbda=lmbda, evaluation_data=test,
                          verbose=False, **monitors)
        runs.append((history, host(backend, net.parameters)))
    return runs


ALL_MONITORS = dict(monitor_evaluation_accuracy=True, monitor_evaluation_cost=True,
                    monitor_training_cost=True, monitor_training_accuracy=True)


@pytest.mark.parametrize("cost,init", [("quadratic", "large"), ("cross-entropy", "default")])
def test_float64_stack_equals_single_runs(backend, small, cost, init):
    train, test = small
    epochs = 3
    stack = NetworkStack(SIZES, SEEDS, cost=cost, init=init, dtype="float64", device=backend)
    histories = stack.SGD(train, epochs, 10, ETAS, LMBDAS, evaluation_data=test,
                          verbose=False, **ALL_MONITORS)
    params = host(backend, stack.parameters)
    singles = single_runs(backend, small, "float64", cost, init, epochs, ALL_MONITORS)
    assert len(histories) == len(SEEDS)
    for k, (single, single_params) in enumerate(singles):
        stacked = histories[k]
        assert stacked.evaluation_accuracy == single.evaluation_accuracy, k
        assert stacked.training_accuracy == single.training_accuracy, k
        np.testing.assert_allclose(stacked.training_cost, single.training_cost, rtol=1e-9)
        np.testing.assert_allclose(stacked.evaluation_cost, single.evaluation_cost, rtol=1e-9)
        scale = np.max(np.abs(single_params))
        assert np.max(np.abs(params[k] - single_params)) <= 1e-9 * scale, k
    # the networks learnt different things (η and λ really are per network)
    assert len({tuple(h.evaluation_accuracy) for h in histories}) == len(SEEDS)


def test_float32_stack_within_rounding_of_single_runs(backend, small):
    train, test = small
    epochs = 2
    steps = epochs * -(-len(train[1]) // 10)  # 101 mini-batches an epoch
    monitors = dict(monitor_evaluation_accuracy=True)
    stack = NetworkStack(SIZES, SEEDS, cost="quadratic", init="large", dtype="float32",
                         device=backend)
    histories = stack.SGD(train, epochs, 10, ETAS, LMBDAS, evaluation_data=test,
                          verbose=False, **monitors)
    params = host(backend, stack.parameters).astype(np.float64)
    singles = single_runs(backend, small, "float32", "quadratic", "large", epochs, monitors)
    for k, (single, single_params) in enumerate(singles):
        scale = np.max(np.abs(single_params))
        assert np.max(np.abs(params[k] - single_params)) <= float32_steps_bound(steps) * scale, k
        assert len(histories[k].evaluation_accuracy) == epochs


def test_initial_rows_are_each_networks_flat_buffer(backend):
    """The (K, P) layout the fused CUDA kernel reads: row k = Network(seed_k).parameters."""
    stack = NetworkStack(SIZES, SEEDS, init="default", dtype="float64", device=backend)
    params = host(backend, stack.parameters)
    assert params.shape == (len(SEEDS), n_parameters(SIZES))
    for k, seed in enumerate(SEEDS):
        net = Network(SIZES, init="default", dtype="float64", device="cpu", seed=seed)
        np.testing.assert_array_equal(params[k], net.parameters)
        for l in range(len(SIZES) - 1):
            np.testing.assert_array_equal(host(backend, stack.weights[l][k]), net.weights[l])
            np.testing.assert_array_equal(host(backend, stack.biases[l][k]), net.biases[l])


def test_networks_continue_exactly_as_single_runs(small):
    """stack.networks() are ordinary Networks: parameters and generator carried over."""
    train, test = small
    stack = NetworkStack(SIZES, SEEDS, cost="quadratic", init="large", dtype="float64",
                         device="cpu")
    stack.SGD(train, 1, 10, ETAS, LMBDAS, verbose=False)
    nets = stack.networks()
    assert all(type(net) is Network for net in nets)
    assert [net.seed for net in nets] == SEEDS
    for k, net in enumerate(nets):
        net.SGD(train, 1, 10, ETAS[k], lmbda=LMBDAS[k], verbose=False)
        single = Network(SIZES, cost="quadratic", init="large", dtype="float64",
                         device="cpu", seed=SEEDS[k])
        single.SGD(train, 2, 10, ETAS[k], lmbda=LMBDAS[k], verbose=False)
        np.testing.assert_allclose(net.parameters, single.parameters, rtol=0, atol=1e-12)
        assert net.accuracy(test) == single.accuracy(test)
    # the copies are independent of the stack
    before = stack.parameters.copy()
    nets[0].parameters[...] = 0
    np.testing.assert_array_equal(stack.parameters, before)


def test_one_host_copy_per_epoch_on_the_strict_backend(small):
    from gpunet.backends.testing import StrictBackend

    train, test = small
    backend = StrictBackend()
    stack = NetworkStack(SIZES, SEEDS, device=backend)
    backend.reset_transfers()
    stack.SGD(train, 3, 10, 0.5, evaluation_data=test, monitor_evaluation_accuracy=True,
              monitor_evaluation_cost=True, verbose=False)
    assert backend.transfers == 3


def test_scalar_eta_and_duplicate_seeds_give_identical_networks(small):
    train, test = small
    stack = NetworkStack(SIZES, [5, 5], dtype="float64", device="cpu")
    histories = stack.SGD(train, 1, 10, 0.5, test_data=test, verbose=False)
    assert histories[0].evaluation_accuracy == histories[1].evaluation_accuracy
    np.testing.assert_array_equal(stack.parameters[0], stack.parameters[1])
    # auto picks for a stack what Network.SGD's auto picks for one network
    single = Network(SIZES, dtype="float64", device="cpu", seed=5)
    assert histories[0].engine == "stacked-" + single.SGD(train, 1, 10, 0.5, verbose=False).engine


def test_verbose_prints_one_line_per_epoch(small, capsys):
    train, test = small
    stack = NetworkStack(SIZES, [1, 2], device="cpu")
    histories = stack.SGD(train, 2, 10, 0.5, test_data=test)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    scores = " ".join(str(h.evaluation_accuracy[0]) for h in histories)
    assert lines[0].startswith(f"Epoch 0: {scores} / 400")


@pytest.mark.parametrize("kwargs,match", [
    (dict(eta=[0.5, 0.5]), "eta has 2 values for 3 networks"),
    (dict(eta=[0.5, -1.0, 0.5]), "eta"),
    (dict(eta=0.5, lmbda=[0.0, 0.0]), "lmbda has 2 values"),
    (dict(eta=0.5, engine="warp"), "unknown engine 'warp'"),
])
def test_sgd_errors_say_what_to_change(small, kwargs, match):
    train, _ = small
    stack = NetworkStack(SIZES, SEEDS, device="cpu")
    with pytest.raises(ValueError, match=match):
        stack.SGD(train, 1, 10, verbose=False, **kwargs)


@pytest.mark.parametrize("seeds,match", [([], "seeds is empty"), (3, "one per network"),
                                         ([1, -2], "seed must be")])
def test_constructor_errors(seeds, match):
    with pytest.raises(ValueError, match=match):
        NetworkStack(SIZES, seeds, device="cpu")


def test_exported():
    assert gpunet.NetworkStack is NetworkStack


@pytest.mark.skipif(not (shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")),
                    reason="the fused kernel's CPU emulator needs a C++ compiler")
def test_auto_takes_the_fused_kernel_where_a_launcher_exists(small, monkeypatch):
    """The stack's (K, P) rows through the fused CUDA kernel's source, run by the CPU
    block emulator: one launch per epoch for all K networks, the single runs' results."""
    from gpunet.backends.testing.emulator import EmulatedSgdEpoch
    from gpunet.engines import fused as fused_module

    monkeypatch.setattr(fused_module, "cuda_launcher",
                        lambda net: EmulatedSgdEpoch(net.dtype, "descending"))
    monkeypatch.setattr(fused_module, "THREADS", 64)
    train, test = (small[0][0][:203], small[0][1][:203]), small[1]
    stack = NetworkStack(SIZES, SEEDS, cost="quadratic", init="large", dtype="float64",
                         device="cpu")
    histories = stack.SGD(train, 2, 10, ETAS, LMBDAS, test_data=test, verbose=False)
    assert histories[0].engine == "stacked-fused"
    for k, seed in enumerate(SEEDS):
        net = Network(SIZES, cost="quadratic", init="large", dtype="float64", device="cpu",
                      seed=seed)
        single = net.SGD(train, 2, 10, ETAS[k], lmbda=LMBDAS[k], test_data=test,
                         verbose=False, engine="eager")
        assert histories[k].evaluation_accuracy == single.evaluation_accuracy
        scale = np.max(np.abs(net.parameters))
        assert np.max(np.abs(stack.parameters[k] - net.parameters)) <= 1e-9 * scale


def test_fused_engine_refused_off_cuda_with_the_reason(small):
    stack = NetworkStack(SIZES, SEEDS, device="cpu")
    with pytest.raises(ValueError, match="engine 'fused' cannot train this stack: .*CUDA"):
        stack.SGD(small[0], 1, 10, 0.5, verbose=False, engine="fused")


@pytest.mark.parametrize("name", ["chapter1", "binary4"])
def test_reproduce_stacked_seeds_equal_its_single_seed_runs(mnist, name):
    """``gpunet reproduce`` trains an experiment's seeds as one stack only where that
    keeps every seed's numbers identical: here (NumPy, float32, the book's settings)."""
    from gpunet.book.reproduce import (BY_NAME, run_experiment, run_experiment_stacked,
                                       stacks_exactly)
    from gpunet.io.mnist import MNIST

    exp = BY_NAME[name]
    data = MNIST((mnist.training[0][:1005], mnist.training[1][:1005]), mnist.validation,
                 (mnist.test[0][:500], mnist.test[1][:500]), "subset")
    backend = gpunet.get_backend("cpu")
    assert stacks_exactly(exp, backend, 1005)
    stacked = run_experiment_stacked(exp, data, [0, 1, 2], backend, 2, lambda text: None)
    for seed, run in zip([0, 1, 2], stacked):
        single = run_experiment(exp, data, seed, backend, 2, lambda text: None)
        assert run["stacked_with"] == 3
        for key in ("seed", "accuracy", "total", "best", "best_epoch", "final"):
            assert run[key] == single[key], (seed, key)


def test_reproduce_runs_seeds_one_by_one_where_stacking_is_not_exact():
    from gpunet.backends.testing import StrictBackend
    from gpunet.book.reproduce import BY_NAME, stacks_exactly

    assert not stacks_exactly(BY_NAME["chapter1"], StrictBackend(), 1000)


BIT_CASES = [  # dtype, cost, sizes, λ per network (the default LMBDAS: 0 for one network)
    ("float32", "quadratic", SIZES, LMBDAS),
    ("float32", "cross-entropy", SIZES, LMBDAS),
    ("float64", "quadratic", SIZES, LMBDAS),
    ("float64", "cross-entropy", SIZES, LMBDAS),
    ("float32", "quadratic", SIZES, [0.0, 0.0, 0.0]),  # no L2 decay: no mask at all
    ("float64", "cross-entropy", [784, 12, 11, 10], LMBDAS),  # two constant units
]


@pytest.mark.parametrize("dtype,cost,sizes,lmbdas", BIT_CASES,
                         ids=[f"{c[0]}-{c[1]}-{len(c[2]) - 2}hidden-{'l2' if any(c[3]) else 'nol2'}"
                              for c in BIT_CASES])
def test_stacked_cpu_engine_is_bit_for_bit_the_cpu_engine(small, dtype, cost, sizes, lmbdas):
    """Each network of a stack trained by the stacked CPU engine is exactly (every bit of
    every parameter) a single network trained by the CPU engine with its seed, η, λ."""
    cpu = pytest.importorskip("gpunet.engines.cpu", reason="no single-network CPU engine")
    from gpunet.io.datasets import as_examples
    from gpunet.training.settings import TrainingSettings

    train, test = small
    stack = NetworkStack(sizes, SEEDS, cost=cost, init="large", dtype=dtype, device="cpu")
    histories = stack.SGD(train, 2, 10, ETAS, lmbdas, test_data=test, verbose=False,
                          engine="cpu")
    assert histories[0].engine == "stacked-cpu"
    ex = as_examples(train, sizes[0], sizes[-1])
    for k, seed in enumerate(SEEDS):
        net = Network(sizes, cost=cost, init="large", dtype=dtype, device="cpu", seed=seed)
        X, Y = ex.X.astype(net.dtype), ex.Y.astype(net.dtype)
        engine = cpu.CpuEngine(net, X, Y, TrainingSettings(2, 10, ETAS[k], lmbdas[k]))
        for _ in range(2):
            engine.train_epoch(net.rng.permutation(len(X)))
        np.testing.assert_array_equal(stack.parameters[k], net.parameters)
        assert net.accuracy(test) == histories[k].evaluation_accuracy[-1]


def test_stacked_cpu_engine_equals_the_eager_engine_in_float64(small):
    train, test = small
    runs = {}
    for engine in ("eager", "cpu"):
        stack = NetworkStack(SIZES, SEEDS, cost="quadratic", init="large", dtype="float64",
                             device="cpu")
        runs[engine] = (stack.SGD(train, 2, 10, ETAS, LMBDAS, test_data=test, verbose=False,
                                  engine=engine), stack.parameters)
    for k in range(len(SEEDS)):
        assert (runs["cpu"][0][k].evaluation_accuracy == runs["eager"][0][k].evaluation_accuracy)
    np.testing.assert_allclose(runs["cpu"][1], runs["eager"][1], rtol=0,
                               atol=1e-9 * np.max(np.abs(runs["eager"][1])))


def test_stacked_cpu_engine_refused_off_numpy(small):
    from gpunet.backends.testing import StrictBackend

    stack = NetworkStack(SIZES, SEEDS, device=StrictBackend())
    with pytest.raises(ValueError, match="engine 'cpu' cannot train this stack: .*NumPy"):
        stack.SGD(small[0], 1, 10, 0.5, verbose=False, engine="cpu")

