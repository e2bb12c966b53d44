"""One training loop for one network and for K (issue 17): ``Network.SGD`` and
``NetworkStack.SGD`` both run :func:`gpunet.training.run_epochs`, a network as its one
row, a stack as its K; the single network keeps its own engine (the CPU engine on NumPy).
"""

from __future__ import annotations

import numpy as np

import gpunet
import gpunet.training
from gpunet.stack import NetworkStack


def test_a_network_and_a_stack_run_the_same_loop(mnist, monkeypatch):
    training = (mnist.training[0][:300], mnist.training[1][:300])
    test = (mnist.test[0][:500], mnist.test[1][:500])
    seen = []
    real = gpunet.training.run_epochs

    def spy(rows, *args, **kwargs):
        seen.append(type(rows).__name__)
        return real(rows, *args, **kwargs)

    monkeypatch.setattr(gpunet.training, "run_epochs", spy)
    kw = dict(evaluation_data=test, monitor_evaluation_accuracy=True,
              monitor_evaluation_cost=True, monitor_training_cost=True,
              monitor_training_accuracy=True, verbose=False)
    net = gpunet.Network([784, 16, 10], seed=3, device="cpu", dtype="float64")
    history = net.SGD(training, 3, 10, 0.5, lmbda=2.0, **kw)
    stack = NetworkStack([784, 16, 10], seeds=[3], device="cpu", dtype="float64")
    (stacked,) = stack.SGD(training, 3, 10, 0.5, lmbda=2.0, **kw)
    assert seen == ["NetworkRows", "StackRows"]
    # the single network keeps the single-network engine; its row is the single run
    assert history.engine == "cpu" and stacked.engine == "stacked-cpu"
    assert np.array_equal(np.asarray(stack.parameters)[0], np.asarray(net.parameters))
    drop = lambda records: [{k: v for k, v in r.items() if k != "train_seconds"}
                            for r in records]
    assert drop(stacked.records) == drop(history.records)
