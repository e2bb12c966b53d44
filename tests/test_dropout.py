"""Dropout (chapter 3, "Dropout"; gpunet/model/dropout.py): Philox against NumPy's, the
masks against an independent computation through ``numpy.random.Philox`` (so an
off-by-one in the counter fails here), every engine against the per-example oracle
(gpunet/check/reference.py) with those masks, finite differences of the thinned
network's gradient, the evaluation's scaling, stacks, worker processes, checkpoints,
and the fused kernel's dropout build (emulated at production thread counts through both
launchers, compiled with NVRTC for sm_80 and sm_90 with its resources checked).

Float64 throughout where engines are compared with the oracle (to rounding); the cpu
engine's single network and stack row bit for bit (the same arithmetic).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import gpunet
from test_kernel_builds import _RecordingCupy
from gpunet.check import reference as ref
from gpunet.engines.cpu import CpuEngine
from gpunet.engines.eager import EagerEngine
from gpunet.model.dropout import (evaluation_weights, keep, key_of, philox4x64, threshold)
from gpunet.model.parameters import bias_shapes, layer_views, weight_shapes
from gpunet.training.settings import TrainingSettings

HAS_CXX = shutil.which("g++") is not None or shutil.which("c++") is not None
SIZES = [6, 7, 5, 3]
N, M = 23, 5  # 5 steps an epoch, the last of 3 examples


def _data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, SIZES[0]))
    labels = rng.integers(0, SIZES[-1], n)
    return X, np.eye(SIZES[-1])[labels], labels


def _layers(flat, sizes=SIZES):
    views = layer_views(np.asarray(flat), weight_shapes(sizes) + bias_shapes(sizes))
    L = len(sizes) - 1
    return [np.array(v) for v in views[:L]], [np.array(v) for v in views[L:]]


def _numpy_keep(seed, p, unit, layer, step, epoch):
    """Whether a neuron is kept, by the documented formula, through NumPy's own Philox:
    its first raw output is the block of counter + 1, so it starts one below."""
    c = unit | layer << 64 | step << 128 | epoch << 192
    c = (c - 1) % (1 << 256)
    counter = np.array([(c >> (64 * i)) & ((1 << 64) - 1) for i in range(4)], dtype=np.uint64)
    key = np.array(key_of(seed), dtype=np.uint64)
    raw = int(np.random.Philox(counter=counter, key=key).random_raw())
    return raw >= int(threshold(p))


def _oracle_masks(seed, p, epoch, steps, sizes=SIZES):
    """Per step, per hidden layer, the 0/1 mask, through :func:`_numpy_keep`."""
    return [[np.array([_numpy_keep(seed, p, i, l, j, epoch) for i in range(width)])
             for l, width in enumerate(sizes[1:-1])] for j in range(steps)]


# ------------------------------------------------------------------ the generator
@pytest.mark.parametrize("key, counter", [
    ((0, 0), (0, 0, 0, 0)),
    ((123456789, 2**64 - 1), (5, 7, 2**64 - 3, 11)),
    ((2**63 + 5, 99), (2**64 - 1, 2**64 - 1, 2**64 - 1, 2**64 - 1)),
    ((2**64 - 1, 2**64 - 1), (3, 2**64 - 1, 0, 2**32)),
])
def test_philox_matches_numpy_bit_for_bit(key, counter):
    raw = np.random.Philox(key=np.array(key, dtype=np.uint64),
                           counter=np.array(counter, dtype=np.uint64)).random_raw(4)
    c = (sum(v << (64 * i) for i, v in enumerate(counter)) + 1) % (1 << 256)  # NumPy's +1
    mine = philox4x64([(c >> (64 * i)) & (2**64 - 1) for i in range(4)], key)
    assert [int(w) for w in mine] == [int(r) for r in raw]


def test_masks_follow_the_documented_counter():
    # keep() against NumPy's Philox at the documented counter (unit, layer, step, epoch):
    # a counter off by one anywhere (e.g. step + 1) fails.
    seed, p = 2**70 + 12345, 0.5  # a seed beyond 64 bits: both key words used
    widths = [7, 5]
    for epoch in (0, 3):
        got = keep(seed, p, epoch, 4, widths)
        for l, width in enumerate(widths):
            expected = np.array([[_numpy_keep(seed, p, i, l, j, epoch) for i in range(width)]
                                 for j in range(4)])
            np.testing.assert_array_equal(got[l], expected, err_msg=f"epoch {epoch} layer {l}")


def test_the_rate_is_the_fraction_removed():
    for p in (0.2, 0.5, 0.8):
        kept = keep(7, p, 0, 400, [250])[0]
        removed = 1 - kept.mean()
        assert abs(removed - p) < 0.01, (p, removed)  # 100,000 draws: sd 0.0016
    assert keep(7, 0.0, 0, 10, [20])[0].all()


# ------------------------------------------------------------------ the engines
def _engine(kind, model, X, Y, settings):
    if kind == "fused":  # the kernel's dropout build on the CPU, at production threads
        from gpunet.backends.testing.emulator import EmulatedSgdEpoch
        from gpunet.engines.fused import THREADS, FusedEngine

        return FusedEngine(model, X, Y, settings, threads=THREADS,
                           launcher=EmulatedSgdEpoch(model.dtype, "descending"))
    return (CpuEngine if kind == "cpu" else EagerEngine)(model, X, Y, settings)


FUSED = pytest.param("fused", marks=pytest.mark.skipif(not HAS_CXX, reason="no C++ compiler"))


@pytest.mark.parametrize("engine, activation", [
    *((engine, activation) for engine in ("cpu", "eager")
      for activation in ("sigmoid", "tanh", "relu")),
    pytest.param("fused", "tanh", marks=FUSED.marks)])
def test_an_epoch_with_dropout_follows_the_oracle(engine, activation):
    # Two networks with their own rate and seed, two epochs, the oracle given the masks
    # NumPy's Philox makes at the documented counters.
    X, Y, _ = _data()
    seeds, rates, etas, lmbdas = [5, 9], [0.5, 0.3], [0.5, 0.3], [0.0, 2.0]
    stack = gpunet.NetworkStack(SIZES, seeds, cost="cross-entropy", dtype="float64",
                                device="cpu", activation=activation)
    start = np.array(stack.parameters, copy=True)
    settings = TrainingSettings(epochs=2, mini_batch_size=M, eta=etas, lmbda=lmbdas,
                                dropout=rates)
    eng = _engine(engine, stack, X, Y, settings)
    rng = np.random.default_rng(1)
    perms = [np.stack([rng.permutation(N) for _ in seeds]) for _ in range(2)]
    for perm in perms:
        eng.train_epoch(perm)
    for k, (seed, p) in enumerate(zip(seeds, rates)):
        w, b = _layers(start[k])
        for epoch, perm in enumerate(perms):
            w, b = ref.sgd_epoch_dropout(w, b, X, Y, perm[k], M, etas[k], lmbdas[k],
                                         "cross-entropy", activation,
                                         _oracle_masks(seed, p, epoch, 5))
        got_w, got_b = _layers(stack.parameters[k])
        for a, e in zip(got_w + got_b, w + b):
            np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12, err_msg=f"network {k}")


@pytest.mark.skipif(not HAS_CXX, reason="no C++ compiler")
def test_the_kernel_draws_the_masks_of_the_engines_epoch_and_steps():
    # The emulated kernel (its own Philox in C) against the cpu engine, a stack of three
    # (one without dropout) from epoch 3: a counter off by one in the kernel, or the
    # epoch not passed, moves parameters by ~1e-2; rounding by ~1e-16.
    X, Y, _ = _data()
    perms = np.stack([np.random.default_rng(k).permutation(N) for k in range(3)])
    results = {}
    for engine in ("cpu", "fused"):
        stack = gpunet.NetworkStack(SIZES, [4, 9, 2**64 + 11], dtype="float64", device="cpu",
                                    activation="tanh")
        settings = TrainingSettings(epochs=5, mini_batch_size=M, eta=[0.5] * 3,
                                    dropout=[0.5, 0.0, 0.7])
        eng = _engine(engine, stack, X, Y, settings)
        eng.next_epoch = 3
        eng.train_epoch(perms)
        eng.train_epoch(perms)
        results[engine] = np.array(stack.parameters)
    np.testing.assert_allclose(results["fused"], results["cpu"], rtol=0, atol=1e-13)


class _EmulatingCupy:
    """Just enough of CuPy for the CUDA launcher (CudaSgdEpoch): its dropout build's
    launch runs in the emulator, taking the arguments in the CUDA kernel's order."""

    zeros = staticmethod(np.zeros)

    class RawModule:
        def __init__(self, code, options):
            assert "-DGPUNET_DROPOUT=1" in options
            from gpunet.backends.testing.emulator import EmulatedSgdEpoch

            self.launcher = EmulatedSgdEpoch(np.float64, "descending")
            self.options = options

        def get_function(self, name):
            return _EmulatingCupy._Kernel(self)

    class _Kernel:
        max_threads_per_block = 256
        max_dynamic_shared_size_bytes = 48 * 1024

        def __init__(self, module):
            self.module = module

        def __call__(self, grid, block, args, shared_mem=0):
            import ctypes

            from gpunet.backends.testing.emulator import _emulator_library

            key, threshold, epoch = args[11:14]
            assert key.dtype == threshold.dtype == np.uint64 and type(epoch) is np.int32
            ints = args[14:]
            library = _emulator_library("double", 0, "ieee", 1, 0, dropout=True)
            status = library.gpunet_emulate_sgd_epoch_dropout(
                *(a.ctypes.data_as(ctypes.c_void_p) for a in args[:13]), ctypes.c_int(epoch),
                *(ctypes.c_int(int(v)) for v in ints), ctypes.c_int(grid[0]),
                ctypes.c_int(block[0]), ctypes.c_longlong(shared_mem), ctypes.c_int(1),
                ctypes.c_int(0))
            assert status == 0

    cuda = _RecordingCupy.cuda  # the device's attributes, as the launcher test fakes them


@pytest.mark.skipif(not HAS_CXX, reason="no C++ compiler")
def test_the_cuda_launcher_passes_the_dropout_builds_arguments_in_order():
    from gpunet.backends.fused_sgd import CudaSgdEpoch
    from gpunet.engines.fused import THREADS, FusedEngine

    X, Y, _ = _data()
    perms = np.stack([np.random.default_rng(k).permutation(N) for k in range(2)])
    settings = TrainingSettings(epochs=5, mini_batch_size=M, eta=[0.5] * 2, dropout=[0.5, 0.3])
    results = []
    for engine in ("cpu", "cuda"):
        stack = gpunet.NetworkStack(SIZES, [4, 9], dtype="float64", device="cpu",
                                    activation="tanh")
        eng = (_engine("cpu", stack, X, Y, settings) if engine == "cpu" else
               FusedEngine(stack, X, Y, settings, threads=THREADS,
                           launcher=CudaSgdEpoch(_EmulatingCupy, np.float64)))
        eng.next_epoch = 2
        eng.train_epoch(perms)
        results.append(np.array(stack.parameters))
    CudaSgdEpoch._modules.clear()
    np.testing.assert_allclose(results[1], results[0], rtol=0, atol=1e-13)


def test_masks_are_the_same_on_every_engine_and_in_a_stack():
    # The cpu and eager engines, a network alone and as row 1 of a stack: the same
    # masks (a different mask in one step moves parameters by ~1e-2, rounding by 1e-15).
    X, Y, labels = _data()
    results = {}
    for engine in ("cpu", "eager"):
        net = gpunet.Network(SIZES, seed=9, dtype="float64", device="cpu", activation="tanh")
        net.SGD((X, labels), 3, M, 0.5, engine=engine, dropout=0.4, verbose=False)
        stack = gpunet.NetworkStack(SIZES, [4, 9], dtype="float64", device="cpu",
                                    activation="tanh")
        stack.SGD((X, labels), 3, M, 0.5, engine=engine, dropout=[0.1, 0.4], verbose=False)
        results[engine] = np.array(net.parameters), np.array(stack.parameters[1])
    np.testing.assert_allclose(results["cpu"][0], results["eager"][0], rtol=0, atol=1e-12)
    # the same engine: a stacked network's run is its single run, bit for bit
    for engine in ("cpu", "eager"):
        np.testing.assert_array_equal(results[engine][0], results[engine][1], err_msg=engine)


def test_the_eager_engine_draws_the_same_masks_on_the_strict_stand_in():
    from gpunet.backends.testing.strict import StrictBackend

    X, _, labels = _data()
    results = []
    for device in ("cpu", StrictBackend()):
        net = gpunet.Network(SIZES, seed=9, dtype="float64", device=device, activation="relu")
        net.SGD((X, labels), 2, M, 0.5, engine="eager", dropout=0.5, verbose=False)
        results.append(np.asarray(net.backend.to_host(net.parameters)))
    np.testing.assert_allclose(results[0], results[1], rtol=0, atol=1e-12)


def test_a_stack_split_over_worker_processes_draws_each_networks_masks():
    # A resumed run's engine starts at a later epoch (the loop sets next_epoch): the
    # workers' groups draw that epoch's masks too, bit for bit as one process.
    from gpunet.engines.base import Steps
    from gpunet.engines.stacked_workers import WorkerCpuEngine

    X, Y, _ = _data()
    perms = np.stack([np.random.default_rng(k).permutation(N) for k in range(3)])
    results = []
    for workers in (1, 2):
        stack = gpunet.NetworkStack(SIZES, [4, 9, 11], dtype="float64", device="cpu")
        steps = Steps(M, (0.5,) * 3, (0.0,) * 3, dropout=(0.5, 0.2, 0.7))
        engine = (CpuEngine(stack, X, Y, steps) if workers == 1
                  else WorkerCpuEngine(stack, X, Y, steps, workers))
        try:
            engine.next_epoch = 3
            engine.train_epoch(perms)
            engine.train_epoch(perms)
        finally:
            getattr(engine, "close", lambda: None)()
        results.append(np.array(stack.parameters))
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("engine", ["cpu", "eager"])
def test_masks_drawn_a_few_steps_at_a_time_are_the_epochs_masks(engine, monkeypatch):
    # A large stack or a long epoch draws its masks in blocks of steps (bounded memory):
    # blocks of 1 and of 3 steps train as one (the cpu engine's chunks of 4 steps then
    # take blocks of 4).
    import gpunet.model.dropout as dropout

    X, Y, _ = _data()
    perms = np.stack([np.random.default_rng(k).permutation(N) for k in range(2)])
    results = []
    for block in (None, 24, 72):  # 24 masks: one step of 2 networks x 12 neurons
        if block:
            monkeypatch.setattr(dropout, "BLOCK_MASKS", block)
        stack = gpunet.NetworkStack(SIZES, [4, 9], dtype="float64", device="cpu")
        settings = TrainingSettings(epochs=2, mini_batch_size=M, eta=[0.5] * 2,
                                    dropout=[0.5, 0.3])
        eng = _engine(engine, stack, X, Y, settings)
        eng.train_epoch(perms)
        eng.train_epoch(perms)
        results.append(np.array(stack.parameters))
    np.testing.assert_array_equal(results[1], results[0])
    np.testing.assert_array_equal(results[2], results[0])


def test_dropout_zero_is_no_dropout_bit_for_bit():
    X, Y, labels = _data()
    runs = []
    for dropout in (None, 0.0, [0.0]):
        net = gpunet.Network(SIZES, seed=3, dtype="float64", device="cpu")
        kwargs = {} if dropout is None else {"dropout": dropout}
        net.SGD((X, labels), 2, M, 0.5, engine="cpu", verbose=False, **kwargs)
        runs.append(np.array(net.parameters))
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


# ------------------------------------------------------------------ the gradient
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_the_thinned_networks_gradient_agrees_with_finite_differences(activation):
    from gpunet.backends import get_backend
    from gpunet.model.activations import layer_activations
    from gpunet.model.backprop import Workspace, backprop_into
    from gpunet.model.parameters import as_rows

    X, Y, _ = _data(8)
    net = gpunet.Network(SIZES, seed=2, dtype="float64", device="cpu", activation=activation)
    masks = [np.array([1, 0, 1, 1, 0, 1, 1.0]), np.array([0, 1, 1, 0, 1.0])]
    ws = Workspace(SIZES, 1, np, np.float64, len(X))
    ws.X[0], ws.Y[0] = X, Y
    _, weights, biases = as_rows(net)
    backprop_into(get_backend("cpu"), net.cost, weights, biases, ws, layer_activations(net),
                  [m.reshape(1, 1, -1) for m in masks])
    analytic = np.array(ws.gradient[0])

    def cost(flat):
        w, b = _layers(flat)
        total = 0.0
        for x, y in zip(X, Y):
            a = x.reshape(-1, 1)
            for l, (wl, bl) in enumerate(zip(w, b)):
                a = ref.neuron("sigmoid" if l == len(w) - 1 else activation, wl @ a + bl)
                if l < len(masks):
                    a = a * masks[l].reshape(-1, 1)
            yv = y.reshape(-1, 1)
            total += float(np.sum(-yv * np.log(a) - (1 - yv) * np.log(1 - a)))
        return total

    flat = np.array(net.parameters)
    h = 1e-6
    numeric = np.empty_like(flat)
    for i in range(flat.size):
        up, down = flat.copy(), flat.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (cost(up) - cost(down)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
    # the removed neurons learn nothing: their incoming weights' and biases' gradient is 0
    w_grad, b_grad = _layers(analytic)
    assert not w_grad[0][1].any() and not b_grad[0][1].any()
    assert not w_grad[1][:, 1].any()  # out of removed hidden neuron 1 of layer 1


# ------------------------------------------------------------------ evaluation
def test_evaluation_scales_the_weights_out_of_hidden_layers():
    X, Y, labels = _data(40)
    net = gpunet.Network(SIZES, seed=1, dtype="float64", device="cpu")
    history = net.SGD((X[:30], labels[:30]), 2, M, 0.5, evaluation_data=(X[30:], labels[30:]),
                      monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                      dropout=0.5, verbose=False, engine="cpu")
    w, b = _layers(net.parameters)
    scaled = ref.dropout_scaled(w, 0.5)
    np.testing.assert_array_equal(scaled[0], w[0])
    np.testing.assert_allclose(scaled[1], w[1] / 2)
    expected = ref.total_cost(scaled, b, X[30:], Y[30:], "cross-entropy")
    assert history.evaluation_cost[-1] == pytest.approx(expected, rel=1e-12)
    assert history.evaluation_cost[-1] != pytest.approx(
        ref.total_cost(w, b, X[30:], Y[30:], "cross-entropy"), rel=1e-6)
    assert history.evaluation_accuracy[-1] == ref.accuracy(scaled, b, X[30:], labels[30:])
    # the library's helper gives the same weights, and the identity at p = 0
    got = evaluation_weights(w, 0.5)
    for a, e in zip(got, scaled):
        np.testing.assert_array_equal(a, e)
    assert all(a is e for a, e in zip(evaluation_weights(w, 0.0), w))


def test_the_trained_network_is_evaluated_and_saved_as_the_book_uses_it(tmp_path):
    # After SGD(dropout=p): net.weights are the trained ones; accuracy, total_cost,
    # feedforward and the saved file use the weights out of hidden layers times 1 - p
    # (the saved file loads as an ordinary network that evaluates the same); a stack's
    # network(k) and feedforward alike.
    X, Y, labels = _data(40)
    net = gpunet.Network(SIZES, seed=1, dtype="float64", device="cpu")
    net.SGD((X[:30], labels[:30]), 2, M, 0.5, dropout=0.5, verbose=False, engine="cpu")
    w, b = _layers(net.parameters)
    np.testing.assert_array_equal(np.array(net.weights[1]), w[1])  # trained, unscaled
    scaled = ref.dropout_scaled(w, 0.5)
    assert net.total_cost((X, Y)) == pytest.approx(ref.total_cost(scaled, b, X, Y,
                                                                  "cross-entropy"), rel=1e-12)
    assert net.accuracy((X, labels)) == ref.accuracy(scaled, b, X, labels)
    np.testing.assert_allclose(net.feedforward(X), np.hstack(
        [ref.feedforward(scaled, b, x.reshape(-1, 1)) for x in X]).T, rtol=1e-12)
    net.save(tmp_path / "net.json")
    loaded = gpunet.Network.load(tmp_path / "net.json", device="cpu", dtype="float64")
    assert loaded.dropout == 0.0
    np.testing.assert_allclose(np.array(loaded.weights[1]), scaled[1], rtol=1e-15)
    np.testing.assert_array_equal(loaded.feedforward(X), net.feedforward(X))
    stack = gpunet.NetworkStack(SIZES, [2, 1], dtype="float64", device="cpu")
    stack.SGD((X[:30], labels[:30]), 2, M, 0.5, dropout=[0.0, 0.5], verbose=False,
              engine="cpu")
    np.testing.assert_array_equal(np.array(stack.parameters[1]), np.array(net.parameters))
    np.testing.assert_array_equal(stack.feedforward(X)[1], net.feedforward(X))
    assert stack.network(1).dropout == 0.5
    np.testing.assert_array_equal(stack.network(1).feedforward(X), net.feedforward(X))


def test_a_sweeps_saved_networks_are_scaled_as_evaluated(tmp_path):
    from gpunet.sweep import SweepSettings, save_networks
    from gpunet.sweep.grid import Run
    from gpunet.sweep.local import StackResult

    X, _, labels = _data()
    stack = gpunet.NetworkStack(SIZES, [3], dtype="float64", device="cpu")
    stack.SGD((X, labels), 1, M, 0.5, dropout=0.5, verbose=False, engine="cpu")
    settings = SweepSettings(sizes=tuple(SIZES), cost="cross-entropy", init="default",
                             dtype="float64", sgd={"dropout": 0.5})
    result = StackResult([Run(0.5, 0.0, 3)], [], np.array(stack.parameters))
    path, = save_networks(settings, result, tmp_path, on_error=print)
    loaded = gpunet.Network.load(path, device="cpu", dtype="float64")
    np.testing.assert_array_equal(loaded.feedforward(X), stack.network(0).feedforward(X))


# ------------------------------------------------------------------ checkpoints
def test_a_resumed_run_draws_the_masks_of_its_epochs(tmp_path):
    X, Y, labels = _data()
    full = gpunet.Network(SIZES, seed=6, dtype="float64", device="cpu")
    full.SGD((X, labels), 4, M, 0.5, dropout=0.5, verbose=False, engine="cpu")
    cut = gpunet.Network(SIZES, seed=6, dtype="float64", device="cpu")
    cut.SGD((X, labels), 2, M, 0.5, dropout=0.5, verbose=False, engine="cpu",
            checkpoint=tmp_path / "run.npz")
    resumed = gpunet.resume(tmp_path / "run.npz", (X, labels), epochs=4, device="cpu",
                            verbose=False)
    np.testing.assert_array_equal(np.array(resumed.parameters), np.array(full.parameters))


# ------------------------------------------------------------------ settings, fused
@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), "0.5", True])
def test_a_bad_rate_is_one_clear_error(bad):
    X, _, labels = _data()
    net = gpunet.Network(SIZES, seed=0, device="cpu")
    with pytest.raises(ValueError, match="dropout"):
        net.SGD((X, labels), 1, M, 0.5, dropout=bad, verbose=False)


def test_the_kernels_plan_keeps_a_mask_per_hidden_neuron_in_shared_memory():
    from gpunet.backends.fused_sgd import plan_for

    plain = plan_for([784, 100, 30, 10], 10, np.float32, 256, 227 * 1024)
    dropping = plan_for([784, 100, 30, 10], 10, np.float32, 256, 227 * 1024, dropout=True)
    assert dropping.shared_bytes - plain.shared_bytes == (100 + 30) * 4


@pytest.mark.skipif(not HAS_CXX, reason="no C++ compiler")
def test_the_dropout_build_takes_its_arguments_and_only_it():
    from gpunet.backends.fused_sgd import plan_for
    from gpunet.backends.testing.emulator import EmulatedSgdEpoch

    X, Y, _ = _data()
    launcher = EmulatedSgdEpoch("float64")
    P = sum(a * b + a for a, b in zip(SIZES[1:], SIZES[:-1]))
    arrays = (np.zeros((1, P)), np.zeros((1, P)), X, Y, np.arange(N)[None, :].copy(),
              np.array([0.5]), np.array([0.0]), np.array(SIZES, dtype=np.int32))
    key, thr = np.zeros((1, 2), dtype=np.uint64), np.zeros(1, dtype=np.uint64)
    dropping = plan_for(SIZES, M, np.float64, 32, 227 * 1024, dropout=True)
    with pytest.raises(TypeError, match="drop_key"):
        launcher(dropping, *arrays, cost=1)
    with pytest.raises(TypeError, match="drop_threshold must be uint64"):
        launcher(dropping, *arrays, cost=1, dropout=(key, thr.astype(np.int64), 0))
    with pytest.raises(TypeError, match="without dropout"):
        launcher(plan_for(SIZES, M, np.float64, 32, 227 * 1024), *arrays, cost=1,
                 dropout=(key, thr, 0))


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_compile_the_dropout_builds_fit(arch):
    """The dropout builds (float64, the tight one; the sigmoid's, and ReLU into the
    softmax: the most code) compile with NVRTC without register spills, within the
    register file at 256 threads (measured: 248-254 registers in float64, 185-192 in
    float32, on both; the other builds' machine code unchanged by the dropout code)."""
    from gpunet.backends.fused_sgd import KERNEL_NAME, MAX_THREADS, SOFTMAX_OUTPUT, build_options
    from gpunet.backends.testing import kernel_resources as kr
    from gpunet.backends.testing import nvrtc

    reason = nvrtc.compiler_available()
    if reason:
        pytest.skip(reason)
    for activation, output in ((0, 0), (2, SOFTMAX_OUTPUT)):
        res = kr.fused_kernel_resources(arch, "double", extra_options=build_options(
            "double", 10, activation, output, dropout=True)[2:])
        assert res.kernel == KERNEL_NAME
        problems = kr.launch_problems(res.registers, MAX_THREADS, 0, kr.OPTIN_SHARED_BYTES[arch],
                                      spill_bytes=res.spill_store_bytes + res.spill_load_bytes,
                                      static_shared_bytes=res.static_shared_bytes)
        assert problems == [], (activation, output, res)
