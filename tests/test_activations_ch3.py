"""Chapter 3's other neurons and output layer (issue 29, points 1 and 2): the softmax
output layer with the log-likelihood cost, and tanh and ReLU hidden layers.

Every network here is judged by the plain-NumPy oracle (:mod:`gpunet.check.reference`,
the book's per-example algorithm, which shares no code with the engines): its
gradients against central finite differences, the engines' gradients and one epoch of
every engine against it, each stacked network against its single run bit for bit on
the cpu engine, and the files (network JSON, checkpoints) that must bring a ReLU
network back as one.
"""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest

import gpunet
from gpunet.backends.testing import StrictBackend
from gpunet.check import reference
from gpunet.engines import fused as fused_module
from gpunet.engines.cpu import constant_prime_is_zero, saturates_exactly
from gpunet.model.activations import ReLU, Sigmoid, Softmax, Tanh, layer_activations
from gpunet.model.costs import LogLikelihoodCost, get_cost

from conftest import assert_close, float32_steps_bound

HAS_CXX = shutil.which("g++") is not None or shutil.which("c++") is not None

#: (hidden activation, cost, sizes): the pairs every test below runs.
CASES = [
    ("relu", "log-likelihood", [784, 9, 10]),
    ("tanh", "cross-entropy", [784, 9, 10]),
    (["tanh", "relu"], "quadratic", [784, 9, 7, 10]),
    ("sigmoid", "log-likelihood", [784, 9, 10]),
]
IDS = ["relu-loglik", "tanh-xent", "tanh+relu-quad", "sigmoid-loglik"]


def _batch(mnist, n, dtype=np.float64):
    X, y = mnist.training
    return X[:n].astype(dtype), y[:n]


def _host(net):
    return ([net.backend.to_host(w).astype(np.float64) for w in net.weights],
            [net.backend.to_host(b).astype(np.float64) for b in net.biases])


# ------------------------------------------------------------------ the oracle itself
@pytest.mark.parametrize("activation, cost, sizes", CASES, ids=IDS)
def test_the_oracle_backprop_matches_finite_differences(mnist, activation, cost, sizes):
    """The oracle's per-example gradient (BP1-BP4 with each layer's σ', the softmax's
    δ = a - y) against central differences of its own cost, float64."""
    X, y = _batch(mnist, 4)
    Y = reference.one_hot(y, 10)
    W, B = reference.initial_parameters(sizes, 3, activation=activation)
    gw, gb = reference.gradient(W, B, X, Y, cost, activation)
    rng, eps, numeric, analytic = np.random.default_rng(1), 1e-6, [], []
    ink = np.flatnonzero(X.any(axis=0))
    for params, grads in ((W, gw), (B, gb)):
        for l, (p, g) in enumerate(zip(params, grads)):
            for _ in range(8):
                i = rng.integers(p.shape[0])
                j = rng.choice(ink) if (params is W and l == 0) else rng.integers(p.shape[1])
                old = p[i, j]
                p[i, j] = old + eps
                up = reference.total_cost(W, B, X, Y, cost, activation=activation)
                p[i, j] = old - eps
                down = reference.total_cost(W, B, X, Y, cost, activation=activation)
                p[i, j] = old
                numeric.append((up - down) / (2 * eps))
                analytic.append(g[i, j] / len(X))
    numeric, analytic = np.array(numeric), np.array(analytic)
    assert np.linalg.norm(numeric) > 1e-4
    assert np.linalg.norm(numeric - analytic) / np.linalg.norm(numeric) < 1e-6


# ------------------------------------------------------------------ gpunet's gradient
@pytest.mark.parametrize("activation, cost, sizes", CASES, ids=IDS)
def test_backprop_matches_finite_differences(mnist, activation, cost, sizes):
    """gpunet's batched backprop against central differences of its own total_cost
    (the softmax and log-likelihood, tanh's and ReLU's σ'), float64 on the CPU."""
    net = gpunet.Network(sizes, cost=cost, activation=activation, dtype="float64",
                         device="cpu", seed=7)
    X, y = _batch(mnist, 6)
    nb, nw = net.backprop(X, y)
    W, B = _host(net)
    rng, eps, numeric, analytic = np.random.default_rng(2), 1e-6, [], []
    for params, grads in ((W, nw), (B, nb)):
        for l, (p, g) in enumerate(zip(params, grads)):
            for _ in range(8):
                i, j = rng.integers(p.shape[0]), rng.integers(p.shape[1])
                if params is W and l == 0:
                    j = rng.choice(np.flatnonzero(X.any(axis=0)))
                old = p[i, j]
                costs = []
                for value in (old + eps, old - eps):
                    p[i, j] = value
                    net.set_parameters(W, B)
                    costs.append(net.total_cost((X, y)))
                p[i, j] = old
                numeric.append((costs[0] - costs[1]) / (2 * eps))
                analytic.append(np.asarray(g)[i, j] / len(X))
    numeric, analytic = np.array(numeric), np.array(analytic)
    assert np.linalg.norm(numeric) > 1e-4
    assert np.linalg.norm(numeric - analytic) / np.linalg.norm(numeric) < 1e-6


@pytest.mark.parametrize("activation, cost, sizes", CASES, ids=IDS)
@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backprop_and_metrics_equal_the_oracle(mnist, activation, cost, sizes, device, dtype):
    """The matrix form over a mini-batch equals the oracle's per-example loop, summed; the
    output, cost and accuracy equal the oracle's (NumPy and the strict stand-in)."""
    backend = StrictBackend() if device == "strict" else device
    net = gpunet.Network(sizes, cost=cost, activation=activation, dtype=dtype,
                         device=backend, seed=3)
    X, y = _batch(mnist, 8, dtype)
    W, B = _host(net)
    X64, Y = X.astype(np.float64), reference.one_hot(y, 10)
    ew, eb = reference.gradient(W, B, X64, Y, cost, activation)
    nb, nw = net.backprop(X, y)
    to_host = net.backend.to_host
    for l in range(len(W)):
        assert_close(to_host(nw[l]), ew[l], dtype, f"nabla_w[{l}]")
        assert_close(to_host(nb[l]), eb[l], dtype, f"nabla_b[{l}]")
    out = np.stack([reference.feedforward(W, B, x.reshape(-1, 1), activation, cost)[:, 0]
                    for x in X64])
    assert_close(to_host(net.feedforward(X)), out, dtype, "feedforward")
    expected = reference.total_cost(W, B, X64, Y, cost, lmbda=0.5, activation=activation)
    assert net.total_cost((X, y), lmbda=0.5) == pytest.approx(
        expected, rel=1e-4 if dtype == "float32" else 1e-10)
    assert net.accuracy((X, y)) == reference.accuracy(W, B, X64, y, activation, cost)


@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_float32_steps_stay_within_the_float32_bound(mnist, device):
    """10 float32 steps of a tanh network with a softmax output (smooth, so the bound's
    argument holds; ReLU's kink is left out: a unit at z = 0 may flip either way with
    any rounding), on NumPy and on the strict stand-in's summation order, against
    float64 from the same seed (tests/test_parity.py's bound)."""
    X, y = mnist.training
    train = (X[:100], y[:100])

    def trained(dtype, on):
        net = gpunet.Network([784, 30, 10], cost="log-likelihood", activation="tanh",
                             dtype=dtype, device=on, seed=4)
        net.SGD(train, 1, 10, 0.5, lmbda=0.1, verbose=False)
        W, B = _host(net)
        return W + B

    exact = trained("float64", "cpu")
    got = trained("float32", StrictBackend() if device == "strict" else "cpu")
    scale = max(np.max(np.abs(e)) for e in exact)
    assert max(np.max(np.abs(a - e)) for a, e in zip(got, exact)) / scale < \
        float32_steps_bound(10)


def test_softmax_outputs_are_a_distribution_and_never_overflow():
    z = np.array([[1000.0, 0.0, -1000.0], [3.0, 3.0, 3.0]])
    a = Softmax.fn(z)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_array_equal(a[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(a[1], 1 / 3, rtol=1e-15)
    # the log-likelihood of an output of exactly 0 on the right class is finite
    assert np.isfinite(LogLikelihoodCost.fn(a[:1], np.array([[0.0, 0.0, 1.0]])))


# ------------------------------------------------------------------ training: engines
@pytest.mark.parametrize("activation, cost, sizes", CASES, ids=IDS)
def test_every_engine_trains_the_oracles_epoch(mnist, activation, cost, sizes):
    """One epoch (4 mini-batches, the last smaller, L2 on) on the eager engine (NumPy and
    the strict stand-in), the cpu engine (its padding: each hidden activation's
    constant and idle units) and the fused kernel (emulated, 256 threads in descending
    order: tanh and ReLU device functions, the softmax phase) equals the oracle's,
    float64; the fused kernel refuses hidden layers of several activations, saying so."""
    X, y = _batch(mnist, 35)
    Y = reference.one_hot(y, 10)
    W0, B0 = reference.initial_parameters(sizes, 5, activation=activation)
    perm = np.random.default_rng(0).permutation(len(X))
    expected = reference.sgd_epoch(W0, B0, X, Y, perm, 10, 0.4, 2.0, cost, activation)
    for engine, device in (("eager", "cpu"), ("eager", StrictBackend()), ("cpu", "cpu"),
                           ("fused", "cpu")):
        if engine == "fused" and (not HAS_CXX or activation == "sigmoid"):
            continue  # no C++ compiler; the sigmoid's softmax build: the float32 test's
        net = gpunet.Network(sizes, cost=cost, activation=activation, dtype="float64",
                             device=device, seed=5)
        assert all(np.array_equal(a, b) for a, b in zip(_host(net)[0] + _host(net)[1],
                                                        W0 + B0)), "initial parameters"
        trainer = _engine(engine, net, X, Y)
        if trainer is None:  # the fused kernel: mixed hidden layers
            assert isinstance(activation, list)
            continue
        trainer.train_epoch(perm)
        W, B = _host(net)
        for l in range(len(W)):
            assert_close(W[l], expected[0][l], "float64", f"{engine} w[{l}]")
            assert_close(B[l], expected[1][l], "float64", f"{engine} b[{l}]")


def _settings(engine="auto"):
    from gpunet.training.settings import TrainingSettings
    return TrainingSettings(epochs=1, mini_batch_size=10, eta=0.4, lmbda=2.0, engine=engine)


def _engine(kind, net, X, Y, drop_barrier=0, order="descending"):
    """Engine ``kind`` for ``net`` (η = 0.4, λ = 2, m = 10); the fused one emulated, or
    ``None`` where it says it cannot train ``net`` (checked: the reason and the error)."""
    from gpunet.engines import select_engine
    from gpunet.engines.fused import FusedEngine

    backend = net.backend
    Xd, Yd = backend.asarray(X.astype(net.dtype)), backend.asarray(Y.astype(net.dtype))
    if kind != "fused":
        return select_engine(net, Xd, Yd, _settings(kind))
    from gpunet.backends.testing.emulator import EmulatedSgdEpoch

    launcher = EmulatedSgdEpoch(np.dtype(net.dtype), order, drop_barrier=drop_barrier)
    reason = fused_module.unfit_reason(net, 10, len(X), launcher)
    if reason:
        assert reason.startswith("the fused kernel is built for one hidden activation")
        with pytest.raises(ValueError, match="engine 'fused' cannot train this network: "
                                             "the fused kernel is built for one hidden"):
            FusedEngine(net, Xd, Yd, _settings(), launcher=launcher)
        return None
    return FusedEngine(net, Xd, Yd, _settings(), launcher=launcher)


@pytest.mark.skipif(not HAS_CXX, reason="no C++ compiler for the kernel emulator")
def test_the_fused_kernels_softmax_in_float32_and_its_barrier(mnist):
    """The kernel's softmax phase in float32 (the GPU's arithmetic: FMA, flush to zero):
    one epoch within the float32 bound of 4 steps of the oracle's float64; and without
    its barrier (7) some thread order reads rows not yet normalized."""
    from gpunet.backends.testing.emulator import EmulatedSgdEpoch
    from gpunet.engines.fused import FusedEngine

    X, y = _batch(mnist, 35, np.float32)
    Y = reference.one_hot(y, 10)
    perm = np.random.default_rng(0).permutation(len(X))
    net = gpunet.Network([784, 9, 10], cost="log-likelihood", dtype="float32",
                         device="cpu", seed=6)
    W, B = _host(net)
    ew, eb = reference.sgd_epoch(W, B, X.astype(np.float64), Y, perm, 10, 0.4, 2.0,
                                 "log-likelihood")
    FusedEngine(net, X, Y.astype(np.float32), _settings(),
                launcher=EmulatedSgdEpoch(np.float32, "descending", arithmetic="gpu")
                ).train_epoch(perm)
    W, B = _host(net)
    scale = max(np.max(np.abs(e)) for e in ew + eb)
    assert max(np.max(np.abs(a - e)) for a, e in zip(W + B, ew + eb)) / scale < \
        float32_steps_bound(4)
    errors = []
    for order in ("ascending", "descending"):
        net = gpunet.Network([784, 9, 10], cost="log-likelihood", dtype="float64",
                             device="cpu", seed=6)
        with np.errstate(all="ignore"):
            _engine("fused", net, X.astype(np.float64), Y, drop_barrier=7,
                    order=order).train_epoch(perm)
            W, B = _host(net)
            error = max(np.max(np.abs(a - e)) for a, e in zip(W + B, ew + eb)) / scale
        errors.append(1.0 if np.isnan(error) else error)
    assert max(errors) > 1e-6, "dropping the softmax's barrier changed nothing"


def test_a_stacked_network_trains_its_single_run_bit_for_bit(mnist):
    """The cpu engine, K = 2 (ReLU into softmax, momentum on): each row equals its
    single network's run exactly, as for sigmoid stacks."""
    X, y = _batch(mnist, 40, np.float32)
    kw = dict(cost="log-likelihood", activation="relu", dtype="float32", device="cpu")
    stack = gpunet.NetworkStack([784, 9, 10], seeds=[1, 2], **kw)
    stack.SGD((X, y), 2, 10, [0.3, 0.1], momentum=0.5, engine="cpu", verbose=False)
    for k, seed in enumerate((1, 2)):
        net = gpunet.Network([784, 9, 10], seed=seed, **kw)
        net.SGD((X, y), 2, 10, [0.3, 0.1][k], momentum=0.5, engine="cpu", verbose=False)
        assert np.array_equal(np.asarray(stack.parameters[k]), np.asarray(net.parameters))
    assert stack.network(0).activation is ReLU and stack.network(0).output == "softmax"


def test_the_worker_processes_train_the_same_activations(mnist):
    """A stack split over worker processes (each rebuilds its group's activations from
    their names) trains as in one process, bit for bit."""
    X, y = _batch(mnist, 30, np.float32)
    kw = dict(cost="log-likelihood", activation=["relu", "tanh"], dtype="float32",
              device="cpu")
    runs = []
    for workers in (1, 2):
        stack = gpunet.NetworkStack([784, 9, 8, 10], seeds=[3, 4], **kw)
        stack.SGD((X, y), 1, 10, 0.2, engine="cpu", workers=workers, verbose=False)
        runs.append(np.asarray(stack.parameters).copy())
    assert np.array_equal(runs[0], runs[1])


def test_the_cpu_engines_padding_holds_for_each_activation():
    """Each hidden activation is exactly 1 and 0 at its declared saturation; where σ' is
    not 0 at the constant unit (ReLU) the engine knows to zero its error."""
    for activation in (Sigmoid, Tanh, ReLU):
        for dtype in ("float32", "float64"):
            assert saturates_exactly(activation, dtype), activation.name
    assert constant_prime_is_zero(Sigmoid, "float32") and constant_prime_is_zero(Tanh, "float64")
    assert not constant_prime_is_zero(ReLU, "float64")


def test_relu_learns_on_mnist(mnist):
    """Sanity of the whole: a ReLU network with a softmax output learns (2 epochs on
    1,000 images, far above chance on 500 others)."""
    X, y = mnist.training
    Xt, yt = mnist.test
    net = gpunet.Network([784, 30, 10], cost="log-likelihood", activation="relu",
                         device="cpu", seed=0)
    net.SGD((X[:1000], y[:1000]), 2, 10, 0.1, verbose=False)
    assert net.accuracy((Xt[:500], yt[:500])) > 350


# ------------------------------------------------------------------ the API
def test_defaults_and_how_the_choices_read():
    net = gpunet.Network([784, 30, 10], device="cpu")
    assert net.activation is Sigmoid and net.output == "sigmoid"
    assert layer_activations(net) == (Sigmoid, Sigmoid)
    soft = gpunet.Network([784, 30, 10], cost="log-likelihood", device="cpu")
    assert soft.output == "softmax" and get_cost("log-likelihood") is LogLikelihoodCost
    mixed = gpunet.Network([784, 30, 20, 10], activation=["tanh", "relu"], device="cpu")
    assert layer_activations(mixed) == (Tanh, ReLU, Sigmoid)
    assert "activation=['tanh', 'relu']" in repr(mixed)
    assert "activation" not in repr(net)


@pytest.mark.parametrize("kwargs, message", [
    (dict(activation="softmax"), "activation: softmax is an output layer's activation, "
                                 "not a hidden layer's: the softmax output layer comes "
                                 "with cost='log-likelihood'"),
    (dict(activation="swish"), "activation: unknown activation 'swish'; a hidden layer "
                               "takes 'sigmoid', 'tanh', 'relu'"),
    (dict(activation=["relu"]), "activation lists 1 activations for 2 hidden layers"),
    (dict(activation=["relu", "softmax"]), r"activation\[1\]: softmax is an output"),
])
def test_a_wrong_activation_is_one_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gpunet.Network([784, 30, 20, 10], device="cpu", **kwargs)


def test_no_hidden_layer_takes_no_hidden_activation():
    with pytest.raises(ValueError, match="activation='relu' is the hidden layers' "
                                         "activation, and this network has no hidden layer"):
        gpunet.Network([784, 10], activation="relu", device="cpu")
    assert gpunet.Network([784, 10], cost="log-likelihood", device="cpu").output == "softmax"


def test_relu_layers_start_from_he_initialization():
    """ReLU layers' default weights are N(0, 2/n_in), every other layer's the book's
    N(0, 1/n_in), from the very same draws; "large" is N(0, 1) whatever the neuron."""
    relu = gpunet.Network([784, 30, 10], activation="relu", dtype="float64", device="cpu",
                          seed=9)
    book = gpunet.Network([784, 30, 10], dtype="float64", device="cpu", seed=9)
    np.testing.assert_allclose(np.asarray(relu.weights[0]),
                               np.asarray(book.weights[0]) * 2 ** 0.5, rtol=1e-15)
    assert np.array_equal(np.asarray(relu.weights[1]), np.asarray(book.weights[1]))
    assert np.array_equal(np.asarray(relu.biases[0]), np.asarray(book.biases[0]))
    large = gpunet.Network([784, 30, 10], activation="relu", init="large", dtype="float64",
                           device="cpu", seed=9)
    assert abs(float(np.std(np.asarray(large.weights[0]))) - 1.0) < 0.05


# ------------------------------------------------------------------ files
def test_a_saved_relu_network_loads_as_one(tmp_path):
    net = gpunet.Network([784, 12, 11, 10], cost="log-likelihood",
                         activation=["relu", "tanh"], dtype="float64", device="cpu", seed=2)
    net.save(tmp_path / "net.json")
    data = json.loads((tmp_path / "net.json").read_text())
    assert data["activation"] == ["relu", "tanh"] and data["cost"] == "LogLikelihoodCost"
    back = gpunet.Network.load(tmp_path / "net.json", device="cpu", dtype="float64")
    assert layer_activations(back) == (ReLU, Tanh, Softmax)
    x = np.linspace(0, 1, 784)
    np.testing.assert_array_equal(back.feedforward(x), net.feedforward(x))
    # a sigmoid network's file is network2.py's, without the key; and reads as sigmoid
    gpunet.Network([784, 12, 10], device="cpu").save(tmp_path / "book.json")
    assert "activation" not in json.loads((tmp_path / "book.json").read_text())
    assert gpunet.Network.load(tmp_path / "book.json", device="cpu").activation is Sigmoid


def test_the_best_epoch_saved_is_a_relu_network_too(mnist, tmp_path):
    """``save_best`` records the activation as ``save`` does."""
    X, y = _batch(mnist, 40, np.float32)
    net = gpunet.Network([784, 9, 10], cost="log-likelihood", activation="relu",
                         device="cpu", seed=2)
    net.SGD((X, y), 2, 10, 0.1, evaluation_data=(X, y), monitor_evaluation_accuracy=True,
            keep_best=True, verbose=False)
    net.save_best(tmp_path / "best.json")
    back = gpunet.Network.load(tmp_path / "best.json", device="cpu")
    assert layer_activations(back) == (ReLU, Softmax)


@pytest.mark.parametrize("value, message", [
    ("softmax", "activation"), ("swish", "activation"), (["relu"], "activation"),
    (7, "activation"),
])
def test_a_network_files_activation_is_checked(tmp_path, value, message):
    gpunet.Network([784, 12, 11, 10], device="cpu").save(tmp_path / "net.json")
    data = json.loads((tmp_path / "net.json").read_text())
    data["activation"] = value
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"bad.json.*{message}"):
        gpunet.Network.load(tmp_path / "bad.json", device="cpu")


def test_a_checkpoint_resumes_a_relu_softmax_run_exactly(mnist, tmp_path):
    """Interrupted after epoch 1 and resumed, a ReLU/softmax run ends where the
    uninterrupted one does, bit for bit; the checkpoint names the activation, and a
    sigmoid run's leaves it out (as every older checkpoint does)."""
    from gpunet.training.checkpoint import load_checkpoint

    X, y = _batch(mnist, 40, np.float32)
    kw = dict(cost="log-likelihood", activation="relu", device="cpu", seed=4)
    whole = gpunet.Network([784, 9, 10], **kw)
    whole.SGD((X, y), 2, 10, 0.2, verbose=False)
    cut = gpunet.Network([784, 9, 10], **kw)
    cut.SGD((X, y), 1, 10, 0.2, verbose=False, checkpoint=tmp_path / "cut.npz")
    saved = load_checkpoint(tmp_path / "cut.npz")
    assert saved.network_settings["activation"] == "relu"
    resumed = gpunet.resume(tmp_path / "cut.npz", (X, y), epochs=2, device="cpu",
                            verbose=False, checkpoint=None)
    assert resumed.activation is ReLU and resumed.output == "softmax"
    assert np.array_equal(np.asarray(resumed.parameters), np.asarray(whole.parameters))
    book = gpunet.Network([784, 9, 10], device="cpu", seed=4)
    book.SGD((X, y), 1, 10, 0.2, verbose=False, checkpoint=tmp_path / "book.npz")
    assert "activation" not in load_checkpoint(tmp_path / "book.npz").meta["network"]


def test_a_checkpoints_activation_is_checked(mnist, tmp_path):
    from gpunet.training import checkpoint

    X, y = _batch(mnist, 20, np.float32)
    net = gpunet.Network([784, 9, 10], activation="tanh", device="cpu", seed=1)
    net.SGD((X, y), 1, 10, 0.2, verbose=False, checkpoint=tmp_path / "run.npz")
    meta = dict(checkpoint.load_checkpoint(tmp_path / "run.npz").meta)
    meta["network"] = dict(meta["network"], activation="softmax")
    with pytest.raises(Exception, match="network.activation"):
        checkpoint.check_meta(meta)


# ------------------------------------------------------------------ the kernel's builds
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_compile_each_activation_and_output_build_fits(arch):
    """Builds these networks add (tanh hidden layers; ReLU into the softmax output: the
    most code), float64 (the tight one: about 250 registers), compile with NVRTC for
    sm_80 and sm_90 without register spills, within the register file at 256 threads.
    (Measured once for every pair: sigmoid, tanh, ReLU with either output, both reals:
    186-190 registers in float32, 248-254 in float64, no spills.)"""
    from gpunet.backends.fused_sgd import KERNEL_NAME, MAX_THREADS, SOFTMAX_OUTPUT, build_options
    from gpunet.backends.testing import kernel_resources as kr
    from gpunet.backends.testing import nvrtc

    reason = nvrtc.compiler_available()
    if reason:
        pytest.skip(reason)
    for activation, output in ((Tanh.kernel_id, 0), (ReLU.kernel_id, SOFTMAX_OUTPUT)):
        res = kr.fused_kernel_resources(arch, "double", extra_options=build_options(
            "double", 10, activation, output)[2:])
        assert res.kernel == KERNEL_NAME
        problems = kr.launch_problems(res.registers, MAX_THREADS, 0, kr.OPTIN_SHARED_BYTES[arch],
                                      spill_bytes=res.spill_store_bytes + res.spill_load_bytes,
                                      static_shared_bytes=res.static_shared_bytes)
        assert problems == [], (activation, output, res)
