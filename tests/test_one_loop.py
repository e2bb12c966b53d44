"""One training loop for one network and for K (issue 17): ``Network.SGD`` and
``NetworkStack.SGD`` both run :func:`gpunet.training.loop.train`, a network as its one
network, a stack as its K; the single network keeps its own engine (the CPU engine on NumPy).
"""

from __future__ import annotations

import numpy as np

import gpunet
import gpunet.training.loop
from gpunet.networks.stack import NetworkStack


def test_a_network_and_a_stack_run_the_same_loop(mnist, monkeypatch):
    training = (mnist.training[0][:300], mnist.training[1][:300])
    test = (mnist.test[0][:500], mnist.test[1][:500])
    seen = []
    real = gpunet.training.loop.train

    def spy(target, *args, **kwargs):
        seen.append(type(target).__name__)
        return real(target, *args, **kwargs)

    monkeypatch.setattr(gpunet.training.loop, "train", spy)
    kw = dict(evaluation_data=test, monitor_evaluation_accuracy=True,
              monitor_evaluation_cost=True, monitor_training_cost=True,
              monitor_training_accuracy=True, verbose=False)
    net = gpunet.Network([784, 16, 10], seed=3, device="cpu", dtype="float64")
    history = net.SGD(training, 3, 10, 0.5, lmbda=2.0, **kw)
    stack = NetworkStack([784, 16, 10], seeds=[3], device="cpu", dtype="float64")
    (stacked,) = stack.SGD(training, 3, 10, 0.5, lmbda=2.0, **kw)
    assert seen == ["NetworkTarget", "StackTarget"]
    # the single network keeps the single-network engine; its row is the single run
    assert history.engine == "cpu" and stacked.engine == "stacked-cpu"
    assert np.array_equal(np.asarray(stack.parameters)[0], np.asarray(net.parameters))
    drop = lambda records: [{k: v for k, v in r.items() if k != "train_seconds"}
                            for r in records]
    assert drop(stacked.records) == drop(history.records)


def test_one_engine_selection_and_one_engine_per_kind_for_a_network_and_a_stack(mnist):
    """``select_engine`` chooses for one network and for K with the same rules, and the
    eager engine that trains a network is the one that trains a stack (a network is one
    row of it): a stack's eager row is the single eager run, bit for bit, by
    construction, in float32 with L2 (each network its own η and λ)."""
    from gpunet.training.settings import TrainingSettings
    from gpunet.engines import select_engine
    from gpunet.engines.eager import EagerEngine

    X, y = mnist.training[0][:203], mnist.training[1][:203]
    etas, lmbdas = (0.5, 3.0), (2.0, 0.0)
    stack = NetworkStack([784, 12, 10], seeds=[3, 5], device="cpu", dtype="float32",
                         cost="cross-entropy")
    stack.SGD((X, y), 2, 10, list(etas), list(lmbdas), verbose=False, engine="eager")
    assert stack.histories[0].engine == "stacked-eager"
    for k in range(2):
        net = gpunet.Network([784, 12, 10], seed=[3, 5][k], device="cpu", dtype="float32",
                             cost="cross-entropy")
        net.SGD((X, y), 2, 10, etas[k], lmbda=lmbdas[k], verbose=False, engine="eager")
        assert np.array_equal(np.asarray(stack.parameters)[k], np.asarray(net.parameters)), k
    settings = TrainingSettings(1, 10, etas, lmbdas, engine="eager")
    X0 = np.zeros((20, 784), np.float32)
    Y0 = np.zeros((20, 10), np.float32)
    assert type(select_engine(stack, X0, Y0, settings)) is EagerEngine
    one = TrainingSettings(1, 10, 0.5, engine="eager")
    assert type(select_engine(net, X0, Y0, one)) is EagerEngine
    # the settings say one η and λ per network, and a mismatch is an error, not a guess
    assert one.eta == (0.5,) and one.lmbda == (0.0,) and one.networks == 1
    assert TrainingSettings(1, 10, etas, 1.0).lmbda == (1.0, 1.0)
    for make in (select_engine, EagerEngine):  # checked by every engine, not only the choice
        try:
            make(stack, X0, Y0, one)
        except ValueError as error:
            assert "2 networks need 2 learning rates" in str(error)
        else:
            raise AssertionError(f"{make.__name__}: a stack of 2 with one network's settings")
