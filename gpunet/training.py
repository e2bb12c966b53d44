"""The epochs of ``Network.SGD``: shuffles, engine steps, metrics, history.

Chapter 1's stochastic gradient descent ("Learning with gradient descent"): each epoch
shuffles the training data, cuts it into mini-batches and takes a gradient step on each;
``network2.py`` (chapter 3) adds L2 regularization and the monitored costs and
accuracies. The shuffle comes from the network's host generator (so a seed gives the
same run on every backend and every engine); the steps are the engine's
(:mod:`gpunet.engines`); the metrics are computed on the device after the epoch, and
their few numbers reach the host in one copy.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Optional

from .datasets import Examples
from .engines import TrainingSettings, select_engine
from .history import History

if TYPE_CHECKING:
    from .network import Network


def run_sgd(net: "Network", train: Examples, evaluation: Optional[Examples],
            settings: TrainingSettings) -> History:
    """Train ``net`` on checked data as ``settings`` say; return the per-epoch history."""
    backend = net.backend
    n = len(train)
    # Everything the epochs touch goes to the device (and is allocated) once, here.
    X = backend.asarray(train.X, net.dtype)
    Y = backend.asarray(train.Y, net.dtype)
    engine = select_engine(net, X, Y, settings)
    if settings.monitor_evaluation:
        assert evaluation is not None  # checked by SGD
        X_eval, Y_eval, labels_eval = net._device_examples(evaluation)
    if settings.monitor_training_accuracy:
        labels_train = backend.asarray(train.labels)

    history = History(engine=engine.name)
    with backend.scope():  # the network's device, current for this thread
        for j in range(settings.epochs):
            start = time.perf_counter()
            engine.train_epoch(net.rng.permutation(n))
            backend.synchronize()
            seconds = time.perf_counter() - start

            wanted: list[tuple[str, Any]] = []  # (name, 0-d device array), one copy
            if settings.monitor_training_cost:
                wanted.append(("training_cost", net._total_cost(X, Y, settings.lmbda)))
            if settings.monitor_training_accuracy:
                wanted.append(("training_correct", net._correct(X, labels_train)))
            if settings.monitor_evaluation_cost:
                wanted.append(("evaluation_cost",
                               net._total_cost(X_eval, Y_eval, settings.lmbda)))
            if settings.monitor_evaluation_accuracy:
                wanted.append(("evaluation_correct", net._correct(X_eval, labels_eval)))
            values = net._fetch([v for _, v in wanted])
            record: dict[str, Any] = {"epoch": j, "train_seconds": seconds}
            for (name, _), value in zip(wanted, values):
                record[name] = int(round(value)) if name.endswith("correct") else value
            if settings.monitor_training_accuracy:
                record["training_total"] = n
            if settings.monitor_evaluation_accuracy:
                record["evaluation_total"] = len(X_eval)
            history.append(record)
            if settings.verbose:
                print(History.book_lines(record), flush=True)
            if settings.callback is not None:
                settings.callback(record)
    return history

