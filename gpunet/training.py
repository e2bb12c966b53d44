"""The epochs of ``Network.SGD``: shuffles, engine steps, metrics, history, checkpoints.

Chapter 1's stochastic gradient descent ("Learning with gradient descent"): each epoch
shuffles the training data, cuts it into mini-batches and takes a gradient step on each;
``network2.py`` (chapter 3) adds L2 regularization and the monitored costs and
accuracies. The shuffle comes from the network's host generator (so a seed gives the
same run on every backend and every engine); the steps are the engine's
(:mod:`gpunet.engines`); the metrics are computed on the device after the epoch, and
their few numbers reach the host in one copy.

At every epoch boundary the loop keeps the run's state: a device copy of the parameters
and the generator's state (drawn permutation included), the history, and, when asked,
a checkpoint file (:mod:`gpunet.checkpoint`, locked while the run writes it). Ctrl-C
(``KeyboardInterrupt``), or SIGTERM (:class:`gpunet.signals.Terminated`, where the main
thread can handle it), inside an epoch rolls the network back to the last completed
epoch, so the network, its ``history`` and the checkpoint agree, and resuming gives
exactly the uninterrupted run.

Divergence (:mod:`gpunet.divergence`) is found from the epoch's own metrics copy: with
the monitored metrics the device computes one flag, "every parameter is finite", and
the same single transfer brings it to the host. An epoch whose parameters are not
finite is not committed: the network goes back to the last finite epoch (checkpoint
brought up to it) and :class:`~gpunet.divergence.DivergenceError` says why.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Optional

from .datasets import Examples
from .divergence import DivergenceError, quiet_overflow
from .engines import TrainingSettings, select_engine
from .history import History
from .progress import Progress
from .signals import interrupts_deferred, terminate_as_interrupt

if TYPE_CHECKING:
    from .checkpoint import CheckpointWriter
    from .network import Network


def run_sgd(net: "Network", train: Examples, evaluation: Optional[Examples],
            settings: TrainingSettings, *, start_epoch: int = 0,
            history: Optional[History] = None,
            checkpoint: Optional["CheckpointWriter"] = None,
            progress: bool = False) -> History:
    """Train ``net`` on checked data as ``settings`` say; return the per-epoch history.

    Epochs ``start_epoch`` to ``settings.epochs - 1`` run (a resumed run starts later,
    with the earlier epochs' ``history``). ``net.history`` is the history while it
    grows, so it stays reachable after an interruption. On ``KeyboardInterrupt`` (or
    SIGTERM, as :class:`~gpunet.signals.Terminated`) the parameters and generator go
    back to the last completed epoch, the checkpoint (if any) is brought up to that
    epoch, and the interrupt propagates; on divergence the same, then
    :class:`~gpunet.divergence.DivergenceError`.
    """
    held = checkpoint.hold() if checkpoint is not None else contextlib.nullcontext()
    with held, terminate_as_interrupt():
        return _run_sgd(net, train, evaluation, settings, start_epoch, history, checkpoint,
                        progress)


def _run_sgd(net: "Network", train: Examples, evaluation: Optional[Examples],
             settings: TrainingSettings, start_epoch: int, history: Optional[History],
             checkpoint: Optional["CheckpointWriter"], progress: bool) -> History:
    """:func:`run_sgd` with the checkpoint locked and SIGTERM raising an interrupt."""
    from .checkpoint import labels_fingerprint

    backend = net.backend
    n = len(train)
    # Everything the epochs touch goes to the device (and is allocated) once, here.
    X = backend.asarray(train.X, net.dtype)
    Y = backend.asarray(train.Y, net.dtype)
    with quiet_overflow():  # an η beyond the dtype's range: reported as divergence
        engine = select_engine(net, X, Y, settings)
    logging.getLogger(__name__).info("engine: %s", engine.name)
    if settings.monitor_evaluation:
        assert evaluation is not None  # checked by SGD
        X_eval, Y_eval, labels_eval = net._device_examples(evaluation)
    if settings.monitor_training_accuracy:
        labels_train = backend.asarray(train.labels)

    if history is None:
        history = History(engine=engine.name)
    else:
        history.engine = engine.name
    net.history = history
    data_info = {"n_train": n, "labels_sha256": labels_fingerprint(train),
                 "n_evaluation": None if evaluation is None else len(evaluation)}
    # The state at the last epoch boundary: where an interrupted run goes back to.
    saved_parameters = net.xp.empty_like(net.parameters)
    saved_parameters[...] = net.parameters
    saved_rng = net.rng.bit_generator.state
    epochs_done = start_epoch
    checkpointed = -1

    def write_checkpoint() -> None:
        nonlocal checkpointed
        if checkpoint is not None and checkpointed != epochs_done:
            checkpoint.write(net, settings, epochs_done, history, data_info, saved_rng,
                             saved_parameters)
            checkpointed = epochs_done

    bar = Progress(settings.epochs, n, engine, first_epoch=start_epoch) if progress else None
    try:
        with backend.scope():  # the network's device, current for this thread
            for j in range(start_epoch, settings.epochs):
                if bar is not None:
                    bar.start_epoch(j)
                start = time.perf_counter()
                with quiet_overflow():  # a diverging epoch is reported below, once
                    engine.train_epoch(net.rng.permutation(n))
                    backend.synchronize()
                seconds = time.perf_counter() - start
                if bar is not None:
                    bar.end_epoch(seconds)
                with quiet_overflow():
                    record, finite = _metrics(
                        net, settings, j, seconds, n, X, Y,
                        X_eval if settings.monitor_evaluation else None,
                        Y_eval if settings.monitor_evaluation else None,
                        labels_eval if settings.monitor_evaluation_accuracy else None,
                        labels_train if settings.monitor_training_accuracy else None)
                if not finite:  # diverged: keep the last finite epoch, say why
                    with interrupts_deferred():
                        net.parameters[...] = saved_parameters
                        net.rng.bit_generator.state = saved_rng
                        write_checkpoint()
                    raise DivergenceError(j, settings.eta, settings.lmbda, n, history)
                with interrupts_deferred():  # the epoch is complete: commit it whole
                    saved_parameters[...] = net.parameters
                    saved_rng = net.rng.bit_generator.state
                    history.append(record)
                    epochs_done = j + 1
                write_checkpoint()
                if settings.verbose:
                    print(History.book_lines(record), flush=True)
                if settings.callback is not None:
                    settings.callback(record)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        with interrupts_deferred():
            net.parameters[...] = saved_parameters
            net.rng.bit_generator.state = saved_rng
            write_checkpoint()
        raise
    finally:
        if bar is not None:
            bar.close()
    return history


def _metrics(net: "Network", settings: TrainingSettings, j: int, seconds: float, n: int,
             X: Any, Y: Any, X_eval: Any, Y_eval: Any, labels_eval: Any,
             labels_train: Any) -> tuple[dict[str, Any], bool]:
    """Epoch ``j``'s record and whether every parameter is finite: the monitored
    metrics and the finiteness flag, computed on the device, one copy."""
    xp = net.xp
    # 1.0 when every parameter is finite: one reduction over P numbers on the device
    wanted: list[tuple[str, Any]] = [("finite", xp.all(xp.isfinite(net.parameters)))]
    if settings.monitor_training_cost:
        wanted.append(("training_cost", net._total_cost(X, Y, settings.lmbda)))
    if settings.monitor_training_accuracy:
        wanted.append(("training_correct", net._correct(X, labels_train)))
    if settings.monitor_evaluation_cost:
        wanted.append(("evaluation_cost", net._total_cost(X_eval, Y_eval, settings.lmbda)))
    if settings.monitor_evaluation_accuracy:
        wanted.append(("evaluation_correct", net._correct(X_eval, labels_eval)))
    values = net._fetch([v for _, v in wanted])
    record: dict[str, Any] = {"epoch": j, "train_seconds": seconds}
    finite = values[0] == 1.0
    if not finite:
        return record, False
    for (name, _), value in zip(wanted[1:], values[1:]):
        record[name] = int(round(value)) if name.endswith("correct") else value
    if settings.monitor_training_accuracy:
        record["training_total"] = n
    if settings.monitor_evaluation_accuracy:
        record["evaluation_total"] = X_eval.shape[0]
    return record, True
