"""Each concept declared once, the rest derived (issue 27, point 2): the lists that
users meet (CLI choices, the names ``SGD`` takes, the notes printed) come from the
declarations, and the few places a type checker needs a literal copy agree with them.
"""

from __future__ import annotations

import typing

from gpunet.cli.command import build_parser
from gpunet.engines import ENGINE_NAMES, ENGINES, engine_note
from gpunet.engines import EngineName


def test_the_engine_names_come_from_the_one_list_of_engines():
    assert ENGINE_NAMES == ("auto", *(kind.name for kind in ENGINES))
    assert typing.get_args(EngineName) == ENGINE_NAMES  # the type's literal copy agrees
    assert all(engine_note(kind.name) == kind.note and kind.note for kind in ENGINES)
    assert engine_note("stacked-cpu") == engine_note("cpu")
    train = build_parser()._subparsers._group_actions[0].choices["train"]  # type: ignore
    engine = next(a for a in train._actions if a.dest == "engine")
    assert tuple(engine.choices) == ENGINE_NAMES


# ------------------------------------------------------------------ costs
import logging  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gpunet  # noqa: E402
from gpunet.check import reference  # noqa: E402
from gpunet.engines import EngineKind, auto_choice, engine_kind, select_engine  # noqa: E402
from gpunet.engines import fused as fused_module  # noqa: E402
from gpunet.engines.cpu import saturates_exactly  # noqa: E402
from gpunet.model import activations, costs  # noqa: E402
from gpunet.model.activations import Saturation, Sigmoid, activation_of  # noqa: E402
from gpunet.model.costs import (COSTS, CrossEntropyCost, DeclaredCost,  # noqa: E402
                                LogLikelihoodCost,
                                QuadraticCost, get_cost)
from gpunet.training.settings import TrainingSettings  # noqa: E402


def _data(mnist, n, dtype="float64"):
    X = mnist.training[0][:n].astype(dtype)
    return X, np.eye(10, dtype=dtype)[mnist.training[1][:n]]


def _params(model):
    return np.array(model.parameters, dtype=np.float64)


def _trained(model, engine, X, Y, epochs=2, m=10, eta=0.5, lmbda=1.0, launcher=None):
    """``model`` trained by ``engine`` (select_engine's choice for its name, or ``auto``)
    on the same shuffles; returns the engine that ran."""
    K = len(model) if hasattr(model, "__len__") else 1
    settings = TrainingSettings(epochs=epochs, mini_batch_size=m, eta=(eta,) * K,
                                lmbda=(lmbda,) * K, engine=engine, workers=1)
    if launcher is not None:
        from gpunet.engines.fused import FusedEngine
        chosen = FusedEngine(model, X, Y, settings, launcher=launcher)
    else:
        chosen = select_engine(model, X, Y, settings)
    rng = np.random.default_rng(5)
    for _ in range(epochs):
        chosen.train_epoch(np.stack([rng.permutation(len(X)) for _ in range(K)]))
    return chosen


@pytest.fixture
def scratch_registry(monkeypatch):
    """Declarations made by a test vanish after it (the registries are copied)."""
    monkeypatch.setattr(costs, "_DECLARED", list(costs._DECLARED))
    monkeypatch.setattr(costs, "COSTS", dict(costs.COSTS))
    monkeypatch.setattr(activations, "ACTIVATIONS", dict(activations.ACTIVATIONS))


def test_every_name_of_a_cost_comes_from_its_declaration():
    """``COSTS`` / ``get_cost`` / ``--cost``'s names / the name files store / the kernel
    id: each from the class's own attributes, nothing listed twice."""
    assert costs.declared_costs() == (QuadraticCost, CrossEntropyCost, LogLikelihoodCost)
    assert costs.cost_names() == ("quadratic", "cross-entropy", "log-likelihood")
    for cost in costs.declared_costs():
        names = {cost.name, *cost.aliases, cost.__name__}
        assert {name for name, c in COSTS.items() if c is cost} == names
        assert all(get_cost(name) is cost for name in names)
    assert get_cost("QuadraticCost") is QuadraticCost  # what network and checkpoint files store
    assert get_cost("cross_entropy") is CrossEntropyCost
    assert [c.kernel_id for c in costs.declared_costs()] == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown cost 'hinge'; use 'quadratic' or 'cross-entropy'"):
        get_cost("hinge")


def test_a_cost_declared_twice_is_refused(scratch_registry):
    with pytest.raises(ValueError, match="'quadratic' is declared twice"):
        class Again(DeclaredCost):
            name = "quadratic"
    with pytest.raises(ValueError, match="kernel id 1 is declared twice"):
        class SameKernel(DeclaredCost):
            name = "another"
            kernel_id = 1
    class Subclass(QuadraticCost):  # a subclass is not another cost
        pass
    assert get_cost("quadratic") is QuadraticCost and Subclass not in costs.declared_costs()


def _double_quadratic():
    """A third cost, ``C = ||a - y||²``: one class, only the book's ``fn`` and ``delta``
    (no kernel case)."""
    class DoubleQuadraticCost(DeclaredCost):
        name = "double-quadratic"
        aliases = ("double_quadratic",)

        @staticmethod
        def fn(a, y):
            return 2 * QuadraticCost.fn(a, y)

        @staticmethod
        def delta(z, a, y):
            return 2 * QuadraticCost.delta(z, a, y)
    return DoubleQuadraticCost


def test_a_new_cost_is_one_class_that_the_engines_train_or_refuse_saying_why(
        mnist, scratch_registry, caplog):
    """Declared once, a cost is a name ``Network`` takes, the cpu engine trains it (its
    NumPy output error derived from ``delta``) as the eager engine does, and the fused
    engine, which has no case for it, says so, and ``auto`` says why it passed it."""
    Double = _double_quadratic()
    assert get_cost("double_quadratic") is Double and "double-quadratic" in costs.cost_names()
    X, Y = _data(mnist, 60)
    nets = {engine: gpunet.Network([784, 9, 10], cost="double-quadratic", dtype="float64",
                                   seed=4, device="cpu") for engine in ("auto", "eager")}
    with caplog.at_level(logging.INFO, logger="gpunet.engines"):
        ran = _trained(nets["auto"], "auto", X, Y)
    assert ran.name == "cpu"
    assert "auto chose cpu: not fused: the fused engine needs a CUDA device" in caplog.text
    assert _trained(nets["eager"], "eager", X, Y).name == "eager"
    np.testing.assert_allclose(_params(nets["auto"]), _params(nets["eager"]), rtol=0, atol=1e-12)
    # the fused engine (an emulated launcher: CUDA as far as the choice goes)
    from gpunet.backends.testing.emulator import EmulatedSgdEpoch
    net = nets["auto"]
    reason = fused_module.unfit_reason(net, 10, 60, EmulatedSgdEpoch(np.float64))
    assert reason == "the fused kernel has no case for the cost DoubleQuadraticCost (no kernel_id)"
    # a cost of the user's own (the book's fn and delta only): every engine says why
    class OwnCost:
        fn = staticmethod(QuadraticCost.fn)
        delta = staticmethod(QuadraticCost.delta)
    own = gpunet.Network([784, 9, 10], cost=OwnCost, dtype="float64", device="cpu")
    assert fused_module.unfit_reason(own, 10, 60, EmulatedSgdEpoch(np.float64)) == \
        ("the fused engine knows the costs quadratic, cross-entropy, log-likelihood, "
         "double-quadratic, not OwnCost")
    kind, passed = auto_choice(own, X, TrainingSettings(epochs=1, mini_batch_size=10, eta=1.0))
    assert kind.name == "eager"
    assert dict(passed)["cpu"] == ("the cpu engine knows the costs quadratic, cross-entropy, "
                                   "log-likelihood, double-quadratic, not OwnCost")


def test_the_kernel_has_the_case_each_cost_declares(mnist):
    """Every cost's ``kernel_id`` selects its output error in the fused kernel (run by the
    emulator): one epoch equals the eager engine's, float64, per cost."""
    from gpunet.backends.testing.emulator import EmulatedSgdEpoch

    X, Y = _data(mnist, 40)
    for cost in costs.declared_costs():
        if cost.kernel_id is None:
            continue
        nets = [gpunet.Network([784, 8, 10], cost=cost, dtype="float64", seed=2, device="cpu")
                for _ in range(2)]
        _trained(nets[0], "eager", X, Y, epochs=1, eta=3.0, lmbda=0.0)
        _trained(nets[1], "fused", X, Y, epochs=1, eta=3.0, lmbda=0.0,
                 launcher=EmulatedSgdEpoch(np.float64, "descending"))
        np.testing.assert_allclose(_params(nets[1]), _params(nets[0]), rtol=0, atol=1e-10,
                                   err_msg=cost.__name__)


# ------------------------------------------------------------------ the activation
def test_the_book_drop_in_sigmoid_is_the_models_not_the_oracles():
    """``gpunet.sigmoid`` / ``sigmoid_prime`` are the model's declaration (training
    imports no tooling for them), equal to the oracle's independent σ."""
    assert gpunet.sigmoid.__module__ == "gpunet.model.activations"
    assert gpunet.sigmoid_prime.__module__ == "gpunet.model.activations"
    z = np.array([-1e4, -30.0, -1.5, 0.0, 0.7, 30.0, 1e4])
    assert np.array_equal(gpunet.sigmoid(z), reference.sigmoid(z))
    assert np.array_equal(gpunet.sigmoid_prime(z), reference.sigmoid_prime(z))
    assert activations.get_activation("sigmoid") is Sigmoid
    assert activation_of(gpunet.Network([784, 10], device="cpu")) is Sigmoid
    with pytest.raises(ValueError, match="unknown activation 'swish'; use one of 'sigmoid', "
                                         "'tanh', 'relu', 'softmax'"):
        activations.get_activation("swish")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_sigmoids_declared_saturation_is_exact(dtype):
    """The cpu engine's constant and idle units rest on it: σ = 1 with σ' = 0 at
    ``one``, σ = 0 at ``zero``, through the engine's own calls; a declaration that is
    not exact is refused."""
    assert saturates_exactly(Sigmoid, dtype)

    class Loose(Sigmoid):
        saturation = Saturation(one=5.0, zero=-5.0)  # σ(5) = 0.993
    assert not saturates_exactly(Loose, dtype)


def _tanh():
    class Tanh(activations.Activation):
        """``σ(z) = tanh(z)``, declared with only ``fn``, ``times_prime`` and
        ``inverse``: the defaults derive every engine's operations (no kernel device
        functions)."""

        name = "tanh-for-test"  # gpunet's own is "tanh"
        saturation = Saturation(one=1e4, zero=0.0)  # tanh(1e4) = 1, tanh(0) = 0

        @staticmethod
        def fn(z):
            return np.tanh(z)

        @staticmethod
        def times_prime(x, a):
            return x * (1 - a * a)

        @classmethod
        def inverse(cls, xp, a):
            return xp.arctanh(a)
    return Tanh


def test_a_new_activation_is_one_class_every_engine_uses(mnist, scratch_registry):
    """A network with another activation: the eager engine, the cpu engine (its derived
    NumPy calls and padding from the declared saturation) and the metrics all compute
    it (so they agree with each other and with plain NumPy tanh), and the fused engine
    says it has no device functions for it."""
    from gpunet.backends.testing.emulator import EmulatedSgdEpoch
    from gpunet.model.metrics import correct

    ScaledTanh = _tanh()
    assert activations.get_activation("tanh-for-test") is ScaledTanh

    X, Y = _data(mnist, 50)
    nets = {}
    for engine in ("eager", "cpu"):
        net = gpunet.Network([784, 7, 10], cost="quadratic", dtype="float64", seed=1,
                             device="cpu")
        net.activation = ScaledTanh
        assert _trained(net, engine, X, Y, eta=0.05).name == engine
        nets[engine] = net
    np.testing.assert_allclose(_params(nets["cpu"]), _params(nets["eager"]), rtol=0, atol=1e-12)
    # what the network computes is tanh's, not the sigmoid's
    net = nets["eager"]
    w, b = [np.array(x) for x in net.weights], [np.array(x) for x in net.biases]
    a = X
    for wl, bl in zip(w, b):
        a = np.tanh(a @ wl.T + bl.T)
    hits = correct(net.backend, net.weights, net.biases, X, mnist.training[1][:50], ScaledTanh)
    assert int(hits) == int(np.sum(a.argmax(axis=1) == mnist.training[1][:50]))
    assert fused_module.unfit_reason(net, 10, 50, EmulatedSgdEpoch(np.float64)) == \
        "the fused kernel has no device functions for the tanh-for-test activation (no kernel_id)"


def test_an_activation_without_an_exact_saturation_is_not_the_cpu_engines(mnist, caplog):
    X, Y = _data(mnist, 20)

    class Loose(Sigmoid):
        saturation = Saturation(one=5.0, zero=-5.0)
    net = gpunet.Network([784, 7, 10], dtype="float64", device="cpu")
    net.activation = Loose
    with caplog.at_level(logging.INFO, logger="gpunet.engines"):
        assert _trained(net, "auto", X, Y, epochs=1).name == "eager"
    assert "not cpu: the cpu engine's constant and idle units need an activation" in caplog.text
    with pytest.raises(ValueError, match="engine 'cpu' cannot train this network: the cpu "
                                         "engine's constant and idle units"):
        _trained(net, "cpu", X, Y, epochs=1)


# ------------------------------------------------------------------ engines
def test_an_engine_is_its_module_and_its_line(monkeypatch, mnist):
    """An engine declared in ``ENGINES`` (here one wrapping eager, its module made on the
    fly) is what ``auto`` takes by its order and what its name builds; its fitness test
    is its own."""
    import sys
    import types

    import gpunet.engines as engines
    from gpunet.engines.eager import EagerEngine

    module = types.ModuleType("gpunet.engines.wrapped_for_test")

    class Wrapped(EagerEngine):
        name = "wrapped-for-test"
    module.why_not = lambda params, X, settings: "" if params.dtype == np.float64 else "float64 only"
    module.build = lambda params, X, Y, settings: Wrapped(params, X, Y, settings)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    kind = EngineKind("wrapped-for-test", "eager, wrapped", "wrapped_for_test", auto_order=0)
    monkeypatch.setattr(engines, "ENGINES", (*engines.ENGINES, kind))
    X, Y = _data(mnist, 20)
    net64 = gpunet.Network([784, 5, 10], dtype="float64", device="cpu")
    net32 = gpunet.Network([784, 5, 10], dtype="float32", device="cpu")
    assert engine_kind("wrapped-for-test") is kind
    assert engines.engine_note("wrapped-for-test") == "eager, wrapped"
    assert _trained(net64, "auto", X, Y, epochs=1).name == "wrapped-for-test"
    assert _trained(net32, "auto", X, Y.astype(np.float32), epochs=1).name == "cpu"
    settings = TrainingSettings(epochs=1, mini_batch_size=10, eta=1.0)
    object.__setattr__(settings, "engine", "wrapped-for-test")
    with pytest.raises(ValueError, match="engine 'wrapped-for-test' cannot train this network: "
                                         "float64 only; use engine 'eager' or 'auto'"):
        select_engine(net32, X.astype(np.float32), Y.astype(np.float32), settings)


# ------------------------------------------------------------------ backends
def test_a_numpy_backend_under_another_name_is_numpy_to_every_engine(mnist):
    """Backends are told apart by what they declare, never by name: a NumPy subclass
    called otherwise takes the cpu engine and trains bit for bit as NumPy does."""
    from gpunet.backends import NumpyBackend
    from gpunet.book.reproduce import Experiment, stacks_exactly
    from gpunet.model.memory import available_memory, host_memory

    class RenamedNumpy(NumpyBackend):
        name = "renamed"

    X, Y = _data(mnist, 40, "float32")
    runs = {}
    for backend in (NumpyBackend(), RenamedNumpy()):
        net = gpunet.Network([784, 6, 10], dtype="float32", seed=3, device=backend)
        assert _trained(net, "auto", X, Y).name == "cpu"
        runs[backend.name] = _params(net)
    assert np.array_equal(runs["renamed"], runs["numpy"])
    assert available_memory(RenamedNumpy()) == pytest.approx(host_memory()[0], rel=0.5)
    exp = Experiment("x", "x", (784, 6, 10), "quadratic", 3.0, "", "", None, epochs=1)
    assert stacks_exactly(exp, RenamedNumpy(), 40)  # the cpu engine's stacks are exact


def test_a_backend_no_engine_fits_is_one_error_with_every_reason(mnist):
    from gpunet.backends import NumpyBackend

    class NoOut(NumpyBackend):
        kind = "device"
        supports_out = False
        device = "noout"

    X, Y = _data(mnist, 20)
    net = gpunet.Network([784, 5, 10], dtype="float64", device=NoOut())
    with pytest.raises(ValueError) as info:
        _trained(net, "auto", X, Y, epochs=1)
    message = str(info.value)
    assert message.startswith("no engine can train this network: fused: the fused engine "
                              "needs a CUDA device, not noout; cpu: the cpu engine runs on "
                              "the NumPy backend, not on noout; eager: the eager engine "
                              "writes into its buffers (out=)")
