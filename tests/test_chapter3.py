"""Chapter 3's further techniques: momentum, L1, early stopping, keeping the best epoch,
the book's learning-rate schedule, against the per-example oracle
(gpunet/check/reference.py), finite differences, ``network2.py``'s early-stopping rule,
and on every engine (the fused kernel through its CPU emulator).

Each engine is compared in float64 with the oracle to rounding; across engines where
rounding cannot differ (the same engine, the same arithmetic), bit for bit.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import gpunet
from gpunet.check import reference as ref
from gpunet.engines.cpu import CpuEngine
from gpunet.engines.eager import EagerEngine
from gpunet.model.parameters import bias_shapes, layer_views, weight_shapes
from gpunet.training.settings import TrainingSettings

HAS_CXX = shutil.which("g++") is not None or shutil.which("c++") is not None
SIZES = [784, 12, 10]


def _data(mnist, n, dtype=np.float64, offset=0):
    X = mnist.training[0][offset:offset + n].astype(dtype)
    labels = mnist.training[1][offset:offset + n]
    return X, np.eye(10, dtype=dtype)[labels], labels


def _stack(K, dtype="float64", cost="cross-entropy", seed=0):
    return gpunet.NetworkStack(SIZES, list(range(seed, seed + K)), cost=cost,
                               dtype=dtype, device="cpu")


def _layers(flat, sizes=SIZES):
    views = layer_views(np.asarray(flat), weight_shapes(sizes) + bias_shapes(sizes))
    L = len(sizes) - 1
    return [np.array(v) for v in views[:L]], [np.array(v) for v in views[L:]]


def _engine(kind, model, X, Y, settings, threads=64):
    if kind == "cpu":
        return CpuEngine(model, X, Y, settings)
    if kind == "eager":
        return EagerEngine(model, X, Y, settings)
    from gpunet.backends.testing.emulator import EmulatedSgdEpoch
    from gpunet.engines.fused import FusedEngine

    return FusedEngine(model, X, Y, settings, threads=threads,
                       launcher=EmulatedSgdEpoch(model.dtype, "descending"))


ENGINES = ["cpu", "eager", pytest.param(
    "fused", marks=pytest.mark.skipif(not HAS_CXX, reason="no C++ compiler"))]


def _oracle_run(stack, k, X, Y, perms, m, eta, lmbda, mu, l1, cost):
    w, b = _layers(stack.parameters[k])
    v = None
    for perm in perms:
        (w, b), v = ref.sgd_epoch_extended(w, b, X, Y, perm[k], m, eta, lmbda, cost,
                                           mu=mu, l1=l1, velocities=v)
    return w, b, v


# ------------------------------------------------------------------ the oracle
@pytest.mark.parametrize("engine", ENGINES)
def test_momentum_and_l1_follow_the_per_example_oracle(mnist, engine):
    # Three networks with their own μ, λ₁ and λ: plain SGD, L1 with L2, momentum with
    # both; 53 examples in mini-batches of 10 (a last one of 3), two epochs.
    X, Y, _ = _data(mnist, 53)
    mus, l1s, lmbdas, etas = [0.0, 0.0, 0.7], [0.0, 4.0, 2.0], [0.0, 3.0, 1.0], [0.5, 0.4, 0.3]
    stack = _stack(3)
    start = np.array(stack.parameters, copy=True)
    settings = TrainingSettings(epochs=2, mini_batch_size=10, eta=etas, lmbda=lmbdas,
                                momentum=mus, l1=l1s)
    eng = _engine(engine, stack, X, Y, settings,
                  threads=256 if engine == "fused" else 64)  # the production block size
    rng = np.random.default_rng(3)
    perms = [np.stack([rng.permutation(53) for _ in range(3)]) for _ in range(2)]
    for perm in perms:
        eng.train_epoch(perm)
    trained, velocity = np.array(stack.parameters), np.array(eng.velocity)
    stack.parameters[...] = start
    for k in range(3):
        w, b, v = _oracle_run(stack, k, X, Y, perms, 10, etas[k], lmbdas[k], mus[k], l1s[k],
                              "cross-entropy")
        got_w, got_b = _layers(trained[k])
        for a, e in zip(got_w + got_b, w + b):
            np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-12, err_msg=f"network {k}")
        vw, vb = _layers(velocity[k])
        for a, e in zip(vw + vb, v[0] + v[1]):
            np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-12, err_msg=f"velocity {k}")


def test_l1_gradient_agrees_with_finite_differences(mnist):
    # C = C0 + (λ₁/n) Σ|w| (eq. 95): its gradient (eq. 96), the oracle's and the one the
    # engines' step implies (a whole-set step of η: Δw = -η ∂C/∂w), against central
    # differences of the oracle's cost, at weights away from 0.
    X, Y, labels = _data(mnist, 20)
    net = gpunet.Network([784, 6, 10], cost="quadratic", dtype="float64", device="cpu",
                         seed=4)
    w, b = [np.array(x) for x in net.weights], [np.array(x) for x in net.biases]
    l1, n, eps, eta = 3.0, 20, 1e-6, 1e-3
    grad_w, _ = ref.regularized_gradient(w, b, X, Y, "quadratic", n, l1=l1)
    for engine in ("cpu", "eager"):
        trial = gpunet.Network([784, 6, 10], cost="quadratic", dtype="float64",
                               device="cpu", seed=4)
        trial.SGD((X, labels), 1, 20, eta, l1=l1, verbose=False, engine=engine)
        implied = [(a - np.array(t)) / eta for a, t in zip(w, trial.weights)]
        np.testing.assert_allclose(implied[0], grad_w[0], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(implied[1], grad_w[1], rtol=1e-6, atol=1e-9)
    rng = np.random.default_rng(0)
    for layer in (0, 1):
        for _ in range(6):
            j, c = (rng.integers(s) for s in w[layer].shape)
            if abs(w[layer][j, c]) < 10 * eps:
                continue
            plus = [x.copy() for x in w]
            minus = [x.copy() for x in w]
            plus[layer][j, c] += eps
            minus[layer][j, c] -= eps
            numeric = (ref.total_cost(plus, b, X, Y, "quadratic", l1=l1)
                       - ref.total_cost(minus, b, X, Y, "quadratic", l1=l1)) / (2 * eps)
            assert numeric == pytest.approx(grad_w[layer][j, c], rel=1e-5, abs=1e-9)


def test_monitored_training_cost_has_the_l1_term(mnist):
    X, _, labels = _data(mnist, 40)
    net = gpunet.Network([784, 6, 10], dtype="float64", device="cpu", seed=2)
    history = net.SGD((X, labels), 1, 10, 0.3, l1=2.0, monitor_training_cost=True,
                      verbose=False)
    w, b = [np.array(x) for x in net.weights], [np.array(x) for x in net.biases]
    expected = ref.total_cost(w, b, X, np.eye(10)[labels], "cross-entropy", l1=2.0)
    assert history.training_cost[0] == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------ the defaults
@pytest.mark.parametrize("engine", ENGINES)
def test_zero_momentum_and_l1_train_as_without_them(mnist, engine):
    X, Y, _ = _data(mnist, 43, np.float32)
    perms = np.stack([np.random.default_rng(1).permutation(43) for _ in range(2)])
    out = []
    for extra in ({}, {"momentum": (0.0,), "l1": (0.0,)}):
        stack = _stack(2, dtype="float32")
        settings = TrainingSettings(epochs=1, mini_batch_size=10, eta=(0.5, 3.0),
                                    lmbda=(0.0, 2.0), **extra)
        eng = _engine(engine, stack, X, Y, settings)
        eng.train_epoch(perms)
        assert eng.velocity is None
        out.append(np.array(stack.parameters))
    assert np.array_equal(out[0].view(np.uint32), out[1].view(np.uint32))


@pytest.mark.parametrize("engine", ["cpu", "eager"])
def test_a_plain_network_in_a_momentum_stack_is_its_single_run(mnist, engine):
    # The extended step computes w' from the same terms as v' (not w + v'), so the
    # network with μ = 0 and λ₁ = 0 rounds exactly as its plain run.
    X, _, labels = _data(mnist, 60, np.float32)
    stack = gpunet.NetworkStack(SIZES, [5, 6], dtype="float32", device="cpu")
    stack.SGD((X, labels), 2, 10, [0.5, 0.5], lmbda=2.0, momentum=[0.0, 0.9],
              verbose=False, engine=engine)
    single = gpunet.NetworkStack(SIZES, [5], dtype="float32", device="cpu")
    single.SGD((X, labels), 2, 10, 0.5, lmbda=2.0, verbose=False, engine=engine)
    assert np.array_equal(np.array(stack.parameters[0]).view(np.uint32),
                          np.array(single.parameters[0]).view(np.uint32))


# ------------------------------------------------------------------ η per epoch
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("extra", [{}, {"momentum": (0.8, 0.0), "l1": (1.0, 2.0)}],
                         ids=["plain", "momentum-l1"])
def test_set_eta_is_an_engine_built_with_that_eta(mnist, engine, extra):
    X, Y, _ = _data(mnist, 43)
    rng = np.random.default_rng(2)
    perms = [np.stack([rng.permutation(43) for _ in range(2)]) for _ in range(2)]
    common = dict(epochs=2, mini_batch_size=10, lmbda=(1.0, 0.0), **extra)
    changed = _stack(2)
    eng = _engine(engine, changed, X, Y, TrainingSettings(eta=(0.5, 0.3), **common))
    eng.train_epoch(perms[0])
    eng.set_eta((0.25, 0.6))
    eng.train_epoch(perms[1])

    fresh = _stack(2)
    first = _engine(engine, fresh, X, Y, TrainingSettings(eta=(0.5, 0.3), **common))
    first.train_epoch(perms[0])
    second = _engine(engine, fresh, X, Y, TrainingSettings(eta=(0.25, 0.6), **common))
    if first.velocity is not None:
        second.velocity[...] = first.velocity
    second.train_epoch(perms[1])
    assert np.array_equal(np.array(changed.parameters), np.array(fresh.parameters))
    if eng.velocity is not None:
        assert np.array_equal(np.array(eng.velocity), np.array(second.velocity))
    # and both are the oracle's epochs at 0.5 then 0.25 (network 0), 0.3 then 0.6 (1)
    start = _stack(2)
    for k, etas in enumerate([(0.5, 0.25), (0.3, 0.6)]):
        w, b = _layers(start.parameters[k])
        v = None
        for perm, eta in zip(perms, etas):
            (w, b), v = ref.sgd_epoch_extended(
                w, b, X, Y, perm[k], 10, eta, (1.0, 0.0)[k], "cross-entropy",
                mu=extra.get("momentum", (0.0, 0.0))[k], l1=extra.get("l1", (0.0, 0.0))[k],
                velocities=v)
        got_w, got_b = _layers(changed.parameters[k])
        for a, e in zip(got_w + got_b, w + b):
            np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_frozen_row_does_not_move(mnist, engine):
    # η = 0 (a stopped network) makes the step the identity, momentum and all.
    X, Y, _ = _data(mnist, 43)
    stack = _stack(2)
    settings = TrainingSettings(epochs=2, mini_batch_size=10, eta=(0.5, 0.5),
                                lmbda=(2.0, 2.0), momentum=(0.9, 0.9), l1=(1.0, 1.0))
    eng = _engine(engine, stack, X, Y, settings)
    rng = np.random.default_rng(0)
    eng.train_epoch(np.stack([rng.permutation(43) for _ in range(2)]))
    before = np.array(stack.parameters)
    eng.set_eta((0.0, 0.5))
    eng.train_epoch(np.stack([rng.permutation(43) for _ in range(2)]))
    after = np.array(stack.parameters)
    assert np.array_equal(after[0], before[0])
    assert not np.array_equal(after[1], before[1])


# ------------------------------------------------------------ deciding by accuracy
def _network2_stop(accuracies, n):
    """``network2.py``'s early stopping, verbatim: the epochs it trains."""
    best_accuracy, no_accuracy_change = 0, 0
    for j, accuracy in enumerate(accuracies):
        if accuracy > best_accuracy:
            best_accuracy, no_accuracy_change = accuracy, 0
        else:
            no_accuracy_change += 1
        if no_accuracy_change == n:
            return j + 1
    return len(accuracies)


@pytest.fixture(scope="module")
def small(mnist):
    X, labels = mnist.training[0][:300], mnist.training[1][:300]
    vX, vlabels = mnist.validation[0][:200], mnist.validation[1][:200]
    return (X, labels), (vX, vlabels)


def _sgd(model, small, epochs, eta, **kw):
    train, validation = small
    return model.SGD(train, epochs, 10, eta, evaluation_data=validation,
                     monitor_evaluation_accuracy=True, verbose=False, **kw)


def test_early_stopping_is_network2s_rule(small):
    # η = 3 on 300 images: the accuracy wanders, so the rule decides (seeds checked:
    # each stops before the 40 epochs).
    for seed, n in ((1, 2), (2, 3)):
        full = _sgd(gpunet.Network(SIZES, seed=seed, device="cpu"), small, 40, 3.0)
        stopped = _sgd(gpunet.Network(SIZES, seed=seed, device="cpu"), small, 40, 3.0,
                       early_stopping_n=n)
        expected = _network2_stop(full.evaluation_accuracy, n)
        assert expected < 40
        assert stopped.evaluation_accuracy == full.evaluation_accuracy[:expected]


def test_early_stopping_per_network_in_a_stack(small):
    stack = gpunet.NetworkStack(SIZES, [1, 2, 3], device="cpu")
    histories = _sgd(stack, small, 40, [3.0, 3.0, 0.05], early_stopping_n=2)
    lengths = []
    for k, seed in enumerate([1, 2, 3]):
        net = gpunet.Network(SIZES, seed=seed, device="cpu")
        single = _sgd(net, small, 40, [3.0, 3.0, 0.05][k], early_stopping_n=2)
        assert histories[k].evaluation_accuracy == single.evaluation_accuracy
        assert np.array_equal(np.array(stack.parameters[k]), np.array(net.parameters))
        # a stopped network's generator stays where its run ended (as the single one's)
        assert stack.rngs[k].bit_generator.state == net.rng.bit_generator.state
        lengths.append(len(single.records))
    assert min(lengths) < max(lengths)  # some stopped while others went on


def test_keep_best_keeps_the_best_epochs_parameters(small):
    stack = gpunet.NetworkStack(SIZES, [1, 2], device="cpu")
    histories = _sgd(stack, small, 12, 3.0, keep_best=True)
    for k, history in enumerate(histories):
        accuracy = history.evaluation_accuracy
        best = int(np.argmax(accuracy))  # the first epoch of the best accuracy
        assert history.best_epoch == best
        again = gpunet.Network(SIZES, seed=k + 1, device="cpu")
        _sgd(again, small, best + 1, 3.0)
        assert np.array_equal(np.array(history.best_parameters), np.array(again.parameters))


def test_the_schedule_halves_eta_on_a_plateau_and_stops_at_the_floor(small):
    history = _sgd(gpunet.Network(SIZES, seed=1, device="cpu"), small, 200, 3.0,
                   eta_schedule="halve", eta_schedule_n=2)
    etas = [r["eta"] for r in history.records]
    accuracy = history.evaluation_accuracy
    assert etas[0] == 3.0 and len(etas) < 200
    best, since, eta = 0, -1, 3.0
    for j, (a, e) in enumerate(zip(accuracy, etas)):
        assert e == eta, j  # the η epoch j trained with, by the rule
        if a > best:
            best, since = a, max(since, j)
            best_epoch = j
        if j - max(best_epoch if best else -1, since) >= 2:
            eta, since = eta / 2, j
    # it ended when η fell to 1/128 of its start: after 7 halvings
    assert sorted(set(etas), reverse=True) == [3.0 / 2 ** i for i in range(7)]


def test_watching_needs_the_validation_set(small):
    train, validation = small
    net = gpunet.Network(SIZES, seed=1, device="cpu")
    with pytest.raises(ValueError, match="validation set as evaluation_data"):
        net.SGD(train, 2, 10, 3.0, early_stopping_n=2, verbose=False)
    with pytest.raises(ValueError, match="test_data= is the test set"):
        net.SGD(train, 2, 10, 3.0, test_data=validation, keep_best=True, verbose=False)
    with pytest.raises(ValueError, match="monitor_evaluation_accuracy=True"):
        net.SGD(train, 2, 10, 3.0, evaluation_data=validation, eta_schedule="halve",
                verbose=False)
    for bad in ({"momentum": 1.0}, {"momentum": -0.1}, {"l1": -1.0},
                {"early_stopping_n": 1.5}, {"eta_schedule": "cosine"}, {"eta_floor": 1.0}):
        with pytest.raises(ValueError):
            _sgd(net, small, 1, 3.0, **bad)


# ------------------------------------------------------------ checkpoints and resume
class _Stop(Exception):
    pass


def test_a_resumed_run_stops_where_one_never_interrupted_would(small, tmp_path):
    # Momentum, L1, the schedule, early stopping and the best epoch, in a stack of 3,
    # interrupted after epoch 4 and resumed: every network's history, stop, η,
    # parameters, velocities and best epoch are the uninterrupted run's, bit for bit.
    train, validation = small
    kw = dict(momentum=[0.5, 0.0, 0.9], l1=[0.0, 1.0, 0.5], keep_best=True,
              eta_schedule="halve", eta_schedule_n=2, early_stopping_n=5)

    def run(path=None, stop_after=None):
        stack = gpunet.NetworkStack(SIZES, [1, 2, 3], device="cpu")

        def callback(records):
            if records[0]["epoch"] == stop_after:
                raise _Stop

        try:
            stack.SGD(train, 40, 10, [3.0, 1.0, 0.5], evaluation_data=validation,
                      monitor_evaluation_accuracy=True, verbose=False, checkpoint=path,
                      callback=callback, **kw)
        except _Stop:
            pass
        return stack

    whole = run(tmp_path / "whole.npz")
    run(tmp_path / "cut.npz", stop_after=4)
    resumed = gpunet.resume(tmp_path / "cut.npz", train, validation, verbose=False,
                            device="cpu")
    def records(model):
        return [[{k: v for k, v in r.items() if k != "train_seconds"} for r in h.records]
                for h in model.histories]

    assert records(resumed) == records(whole)
    assert len({len(h.records) for h in whole.histories}) > 1  # they stopped apart
    assert np.array_equal(np.array(resumed.parameters), np.array(whole.parameters))
    for name in ("whole", "cut"):
        saved = gpunet.training.checkpoint.load_checkpoint(tmp_path / f"{name}.npz")
        state = saved.state()
        assert state.stopped and state.watch and state.velocity is not None
    a = gpunet.training.checkpoint.load_checkpoint(tmp_path / "whole.npz")
    b = gpunet.training.checkpoint.load_checkpoint(tmp_path / "cut.npz")
    for name in ("velocity", "best"):
        assert np.array_equal(a.arrays[name], b.arrays[name])
    assert a.stopped == b.stopped and a.meta["watch"] == b.meta["watch"]


def test_an_older_checkpoint_without_the_new_settings_resumes(small, tmp_path):
    import json
    import zipfile

    train, validation = small
    net = gpunet.Network(SIZES, seed=1, device="cpu")
    _sgd(net, small, 2, 0.5, checkpoint=tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz") as f:
        meta = json.loads(f["meta"].tobytes())
        parameters = f["parameters"]
    for key in ("momentum", "l1", "early_stopping_n", "keep_best", "eta_schedule",
                "eta_schedule_n", "eta_floor"):
        del meta["training"][key]
    np.savez(tmp_path / "old.npz", meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
             parameters=parameters)
    assert zipfile.is_zipfile(tmp_path / "old.npz")
    saved = gpunet.training.checkpoint.load_checkpoint(tmp_path / "old.npz")
    assert saved.training["momentum"] == 0.0 and saved.training["eta_schedule"] is None
    again = gpunet.resume(tmp_path / "old.npz", train, validation, epochs=3, verbose=False,
                          device="cpu", checkpoint=None)
    assert len(again.history.records) == 3


def test_a_stacks_epoch_line_names_its_stopped_networks(small, capsys):
    stack = gpunet.NetworkStack(SIZES, [1, 2], device="cpu")
    train, validation = small
    histories = stack.SGD(train, 30, 10, [3.0, 0.05], evaluation_data=validation,
                          monitor_evaluation_accuracy=True, early_stopping_n=2)
    out = capsys.readouterr().out.splitlines()
    stopped = min(len(h.records) for h in histories)
    assert len(out) == max(len(h.records) for h in histories) > stopped
    assert all(" stopped " in line for line in out[stopped:])
