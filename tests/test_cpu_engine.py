"""The cpu engine (gpunet/engines/cpu.py) against the book's algorithm and the eager engine.

The cpu engine computes the eager engine's algorithm in another order (biases folded
into the matrix products, negated working parameters, the step size folded into the
output error), so its results match to rounding: float64 within 1e-9 relative of the
per-example reference (gpunet.check.reference) and of the eager engine over several epochs,
float32 within 0.2 points of test accuracy and 1e-4 of the parameters. Also: which engine ``auto`` takes, the
reasons where the cpu engine cannot run, and that an epoch gathers mini-batches without
copying the training set.
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

import gpunet
from conftest import numpy_blas_threads
from gpunet.check import reference
from gpunet.backends.testing import StrictBackend
from gpunet.model.costs import QuadraticCost
from gpunet.training.settings import TrainingSettings
from gpunet.engines import select_engine
from gpunet.engines.cpu import CpuEngine
from gpunet.model.activations import Sigmoid
from gpunet.engines.eager import EagerEngine


def _data(mnist, n, dtype):
    X = mnist.training[0][:n].astype(dtype)
    Y = np.eye(10, dtype=dtype)[mnist.training[1][:n]]
    return X, Y


def _relative(got, want):
    return max(float(np.max(np.abs(g - w)) / np.max(np.abs(w))) for g, w in zip(got, want))


def _params(net):
    return [np.array(p, dtype=np.float64) for p in net.weights + net.biases]


CASES = [  # sizes, cost, m, n (n % m != 0: a smaller last mini-batch), eta, lmbda
    ([784, 10], "quadratic", 7, 250, 3.0, 0.0),
    ([784, 30, 10], "quadratic", 10, 305, 3.0, 0.0),
    ([784, 30, 10], "cross-entropy", 10, 305, 0.5, 5.0),
    ([784, 20, 15, 10], "cross-entropy", 16, 300, 0.5, 2.0),
    ([784, 12, 11, 9, 10], "quadratic", 32, 100, 3.0, 1.0),
]


@pytest.mark.parametrize("sizes,cost,m,n,eta,lmbda", CASES,
                         ids=[f"{len(c[0]) - 2}hidden-{c[1]}-m{c[2]}" for c in CASES])
def test_float64_epochs_follow_the_reference(mnist, sizes, cost, m, n, eta, lmbda):
    """Two epochs, each checked against the book's per-example SGD on the same shuffle."""
    X, Y = _data(mnist, n, np.float64)
    net = gpunet.Network(sizes, cost=cost, init="default", dtype="float64", seed=3, device="cpu")
    engine = CpuEngine(net, X, Y, TrainingSettings(epochs=2, mini_batch_size=m, eta=eta,
                                                   lmbda=lmbda))
    w, b = reference.initial_parameters(sizes, seed=3)
    rng = np.random.default_rng(0)
    for _ in range(2):
        perm = rng.permutation(n)
        engine.train_epoch(perm)  # the network's own buffer is updated at each epoch's end
        w, b = reference.sgd_epoch(w, b, X, Y, perm, m, eta, lmbda, cost)
        assert _relative(_params(net), w + b) < 1e-9


@pytest.mark.parametrize("cost,lmbda", [("quadratic", 0.0), ("cross-entropy", 1.0)])
def test_float64_trajectory_follows_the_eager_engine(mnist, cost, lmbda):
    """``SGD`` with engine='cpu' and engine='eager': same seed, same parameters, same history."""
    train = (mnist.training[0][:2005], mnist.training[1][:2005])
    test = (mnist.test[0][:500], mnist.test[1][:500])
    runs = {}
    for engine in ("eager", "cpu"):
        net = gpunet.Network([784, 30, 10], cost=cost, init="large", dtype="float64", seed=11, device="cpu")
        history = net.SGD(train, 3, 10, 0.5, lmbda=lmbda, evaluation_data=test, verbose=False,
                          monitor_evaluation_accuracy=True, monitor_training_cost=True,
                          engine=engine)
        assert history.engine == engine
        runs[engine] = (net, history)
    (eager, h_eager), (cpu, h_cpu) = runs["eager"], runs["cpu"]
    assert _relative(_params(cpu), _params(eager)) < 1e-9
    assert h_cpu.evaluation_accuracy == h_eager.evaluation_accuracy
    np.testing.assert_allclose(h_cpu.training_cost, h_eager.training_cost, rtol=1e-9)


def test_float32_follows_the_eager_engine(mnist):
    """float32, chapter 3's cross-entropy network (η = 0.5): accuracy within 0.2 points,
    parameters within 1e-4. Why these hold for any summation order: 600 steps in a
    regime that is not chaotic keep each float32 run within ``float32_steps_bound(600)``
    (7e-5) of float64, measured ~2e-6; and there float32 and float64 runs end within 3
    images of 10,000 of each other (tests/test_parity.py), far inside 4 of 2,000. (At chapter 1's η = 3.0 with the quadratic cost, SGD is
    chaotic on this data: two summation orders that differ by 1e-16 in float64 drift
    apart by 1e-9 in 100 steps and by 20% in 150, with either engine, so no engine can
    follow another there beyond the first few dozen steps.)"""
    train = (mnist.training[0][:3000], mnist.training[1][:3000])
    test = (mnist.test[0][:2000], mnist.test[1][:2000])
    nets = {}
    for engine in ("eager", "cpu"):
        nets[engine] = gpunet.Network([784, 30, 10], cost="cross-entropy", dtype="float32",
                                      seed=1, device="cpu")
        nets[engine].SGD(train, 2, 10, 0.5, verbose=False, engine=engine)
    accuracy = {engine: net.accuracy(test) for engine, net in nets.items()}
    assert accuracy["eager"] > 0.8 * 2000  # it learned
    assert abs(accuracy["cpu"] - accuracy["eager"]) <= 0.002 * 2000  # within 0.2 points
    assert _relative(_params(nets["cpu"]), _params(nets["eager"])) < 1e-4


def test_saturated_units_train_as_in_the_eager_engine(mnist):
    """Huge weights overflow e^{-z} to inf (σ = 0 exactly): no warning, same numbers."""
    X, Y = _data(mnist, 200, np.float64)
    nets = {}
    for name, Engine in (("eager", EagerEngine), ("cpu", CpuEngine)):
        net = gpunet.Network([784, 20, 10], init="large", dtype="float64", seed=5, device="cpu")
        net.set_parameters([w * 300 for w in _params(net)[:2]], _params(net)[2:])
        engine = Engine(net, X, Y, TrainingSettings(epochs=1, mini_batch_size=10, eta=3.0))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            engine.train_epoch(np.random.default_rng(1).permutation(200))
        nets[name] = net
    assert _relative(_params(nets["cpu"]), _params(nets["eager"])) < 1e-9


def test_constant_and_idle_units_stay_fixed_and_never_learn(mnist):
    """Each hidden layer's constant unit (the next layer's input of 1) and its idle
    units (padding the width to a multiple of WIDTH_MULTIPLE) keep weights 0 and their
    biases (the activation's declared saturation, negated as every working parameter),
    under L2 decay too, and output exactly 1 and exactly 0."""
    X, Y = _data(mnist, 300, np.float32)
    net = gpunet.Network([784, 16, 12, 10], cost="cross-entropy", dtype="float32", seed=2, device="cpu")
    engine = CpuEngine(net, X, Y, TrainingSettings(epochs=2, mini_batch_size=10, eta=0.5,
                                                   lmbda=5.0))
    for _ in range(2):
        engine.train_epoch(np.random.default_rng(3).permutation(300))
    assert [W.shape for W in engine.W] == [(1, 785, 24), (1, 24, 16), (1, 16, 10)]  # K = 1
    for l, n_l in enumerate([16, 12]):  # rows: inputs, bias; columns: units
        W, after = engine.W[l][0], engine.W[l + 1][0]
        assert np.all(W[:-1, n_l:] == 0) and np.all(W[-1, n_l:-1] == -Sigmoid.saturation.zero)
        assert W[-1, -1] == -Sigmoid.saturation.one
        assert np.all(after[n_l:-1] == 0)  # the idle units' outgoing weights
    hidden = [ops for ops in engine.steps[0] if ops[0] is np.reciprocal]
    for (_, (a, _)), n_l in zip(hidden[:-1], [16, 12]):  # the hidden layers' activations
        assert np.all(a[:, -1] == 1) and np.all(a[:, n_l:-1] == 0)
        assert np.all((a[:, :n_l] > 0) & (a[:, :n_l] < 1))


def test_working_widths_are_padded_to_the_multiple():
    from gpunet.engines.cpu import WIDTH_MULTIPLE, working_shapes

    assert WIDTH_MULTIPLE == 8
    assert working_shapes([784, 30, 10]) == [(785, 32), (32, 10)]
    assert working_shapes([784, 7, 31, 100, 10]) == [(785, 8), (8, 32), (32, 104), (104, 10)]
    assert working_shapes([784, 10]) == [(785, 10)]


@pytest.mark.parametrize("eight_bit", [True, False])
def test_an_epoch_gathers_mini_batches_and_copies_no_training_set(mnist, eight_bit):
    """An epoch allocates nothing big: mini-batches are gathered a chunk at a time, the
    set is never copied shuffled. MNIST is kept as 8-bit codes (a quarter of float32);
    other data as given, not copied."""
    from gpunet.engines.rows import EightBitRows, FloatRows

    X, Y = _data(mnist, 5000, np.float32)
    if not eight_bit:
        X[7, 300] = 0.3  # not u / 255
    net = gpunet.Network([784, 30, 10], dtype="float32", seed=0, device="cpu")
    engine = CpuEngine(net, X, Y, TrainingSettings(epochs=1, mini_batch_size=10, eta=3.0))
    if eight_bit:
        assert isinstance(engine.data, EightBitRows)
        assert engine.data.codes.dtype == np.uint8 and engine.data.codes.shape == (5000, 795)
    else:
        assert isinstance(engine.data, FloatRows)
        assert engine.data.X is X and engine.data.Y is Y
    perm = np.random.default_rng(0).permutation(5000)
    tracemalloc.start()
    try:
        engine.train_epoch(perm)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 20, peak  # the shuffled copy would be X.nbytes


def test_auto_takes_the_cpu_engine_on_numpy_for_the_book_costs(mnist):
    X, Y = _data(mnist, 20, np.float32)
    settings = TrainingSettings(epochs=1, mini_batch_size=10, eta=1.0)
    for cost in ("quadratic", "cross-entropy"):
        net = gpunet.Network([784, 5, 10], cost=cost, dtype="float32", device="cpu")
        assert select_engine(net, X, Y, settings).name == "cpu"


class OwnCost:
    """A user's cost: only the book's ``fn`` and ``delta``."""

    fn = staticmethod(QuadraticCost.fn)
    delta = staticmethod(QuadraticCost.delta)


def test_where_the_cpu_engine_cannot_run_auto_takes_eager_and_cpu_says_why(mnist):
    X, Y = _data(mnist, 20, np.float32)
    settings = TrainingSettings(epochs=1, mini_batch_size=10, eta=1.0)
    explicit = TrainingSettings(epochs=1, mini_batch_size=10, eta=1.0, engine="cpu")
    own = gpunet.Network([784, 5, 10], cost=OwnCost, dtype="float32", device="cpu")
    strict = gpunet.Network([784, 5, 10], dtype="float32", device=StrictBackend())
    assert select_engine(own, X, Y, settings).name == "eager"
    with pytest.raises(ValueError, match="knows the costs quadratic, cross-entropy, log-likelihood, not OwnCost.*'eager'"):
        select_engine(own, X, Y, explicit)
    Xs, Ys = strict.backend.asarray(X), strict.backend.asarray(Y)
    assert select_engine(strict, Xs, Ys, settings).name == "eager"
    with pytest.raises(ValueError, match="runs on the NumPy backend, not on"):
        select_engine(strict, Xs, Ys, explicit)


@pytest.mark.parametrize("sizes,limited", [([784, 30, 10], True), ([784, 1024, 10], False)])
def test_blas_runs_on_one_thread_for_small_products_only(mnist, sizes, limited):
    """A step of a small network is microseconds of BLAS: waking a second thread costs
    more than it saves (and on a busy machine 10x more), so the epoch runs on one; a
    network whose products are large keeps BLAS's threads; both restored afterwards."""
    blas_threads = numpy_blas_threads  # NumPy's BLAS, not one SciPy loaded beside it
    X, Y = _data(mnist, 100, np.float32)
    net = gpunet.Network(sizes, dtype="float32", seed=0, device="cpu")
    engine = CpuEngine(net, X, Y, TrainingSettings(epochs=1, mini_batch_size=10, eta=3.0))
    seen = []
    engine.steps[0].append((lambda: seen.append(blas_threads()), ()))
    before = blas_threads()
    engine.train_epoch(np.random.default_rng(0).permutation(100))
    assert seen and all(s == ({1} if limited else before) for s in seen), (seen, before)
    assert blas_threads() == before
