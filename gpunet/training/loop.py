"""The epochs of ``Network.SGD`` and ``NetworkStack.SGD``: one loop for K ≥ 1 networks.

Chapter 1's stochastic gradient descent ("Learning with gradient descent"): each epoch
shuffles the training data, cuts it into mini-batches and takes a gradient step on each;
``network2.py`` (chapter 3) adds L2 regularization and the monitored costs and
accuracies. The shuffle comes from the network's host generator (so a seed gives the
same run on every backend and every engine); the steps are the engine's
(:mod:`gpunet.engines`); the metrics are computed on the device after the epoch, and
their few numbers reach the host in one copy.

At every epoch boundary the loop keeps the run's state: a device copy of the parameters
and the generator's state (drawn permutation included), the history, and, when asked,
a checkpoint file (:mod:`gpunet.training.checkpoint`, locked while the run writes it). Ctrl-C
(``KeyboardInterrupt``), or SIGTERM (:class:`gpunet.training.signals.Terminated`, where the main
thread can handle it), inside an epoch rolls the network back to the last completed
epoch, so the network, its ``history`` and the checkpoint agree, and resuming gives
exactly the uninterrupted run.

Divergence (:mod:`gpunet.training.divergence`) is found from the epoch's own metrics copy: with
the monitored metrics the device computes one flag per network, "every parameter is
finite", and the same single transfer brings it to the host. An epoch whose parameters
are not finite is not committed for that network: it goes back to its last finite
epoch. A single network then stops (checkpoint brought up to it) and
:class:`~gpunet.training.divergence.DivergenceError` says why; in a stack
(:class:`gpunet.NetworkStack`) it stays there and the others go on.

The loop sees its networks through :class:`Rows`: K rows of parameters (a network's
``(P,)`` buffer is its one row, a stack's ``(K, P)`` array has K), one host generator
per row, the engine that trains them all, and the few things that differ between one
network and a stack (its history or histories, its checkpoint layout, its printed
line). :class:`NetworkRows` is ``Network``'s; ``NetworkStack``'s is in
:mod:`gpunet.networks.stack`. The engines' per-step code is untouched by this loop: it calls
``engine.train_epoch`` once per epoch, as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any, Mapping, Optional, Protocol

import numpy as np

from ..model.arguments import check_checkpoint, check_flag, check_mini_batch
from .checkpoint import as_writer, labels_fingerprint
from ..io.datasets import Examples, sgd_data
from .divergence import DivergenceError, quiet_overflow
from ..engines import Engine, select_engine
from .settings import TrainingSettings
from .history import History
from ..model.metrics import correct, fetch, total_cost
from ..model.parameters import as_rows
from .progress import Progress
from .signals import interrupts_deferred, terminate_as_interrupt

if TYPE_CHECKING:
    from ..backends import Array
    from .checkpoint import CheckpointWriter
    from ..networks.network import Network
    from ..model.parameters import Parameters


class Rows(Protocol):
    """K networks of one shape as the training loop sees them."""

    @property
    def model(self) -> "Parameters":
        """The networks, as the engines see them (:func:`gpunet.engines.select_engine`)."""

    #: whether a network's divergence ends the run (one network) or only its own
    #: training (a stack: the others go on)
    stop_on_divergence: bool

    def rngs(self) -> list[np.random.Generator]:
        """Row ``k``'s host generator: its shuffles, and its state in a checkpoint."""

    def permutations(self, n: int) -> np.ndarray:
        """The epoch's shuffles, drawn from each row's generator, as the engine takes them."""

    def history_engine(self, engine: Engine) -> str:
        """The engine's name as the histories record it."""

    def begin(self, histories: list[History], diverged: dict[int, int]) -> None:
        """The histories and diverged rows of the run now starting, reachable from the
        model while they grow (and after an interruption)."""

    def write_checkpoint(self, writer: "CheckpointWriter", settings: Any, epochs_done: int,
                         histories: list[History], diverged: Mapping[int, int],
                         seconds: list[float], data: dict[str, Any],
                         rng_states: list[Mapping[str, Any]], parameters: "Array") -> None:
        """The run's state at the epoch boundary ``epochs_done``, in this model's layout."""

    def report(self, records: list[dict[str, Any]], settings: Any) -> None:
        """The epoch's line (``verbose``) and ``callback``, as this model's SGD promises."""


class NetworkRows:
    """One :class:`gpunet.Network` as the loop's one row: the engines of
    :func:`gpunet.engines.select_engine`, the book's epoch lines, ``callback(record)``,
    the single-network checkpoint, and divergence as an error."""

    stop_on_divergence = True

    def __init__(self, net: "Network") -> None:
        self.net = self.model = net

    def rngs(self) -> list[np.random.Generator]:
        return [self.net.rng]

    def permutations(self, n: int) -> np.ndarray:
        return self.net.rng.permutation(n)

    def history_engine(self, engine: Engine) -> str:
        return engine.name

    def begin(self, histories: list[History], diverged: dict[int, int]) -> None:
        self.net.history = histories[0]

    def write_checkpoint(self, writer: "CheckpointWriter", settings: Any, epochs_done: int,
                         histories: list[History], diverged: Mapping[int, int],
                         seconds: list[float], data: dict[str, Any],
                         rng_states: list[Mapping[str, Any]], parameters: "Array") -> None:
        writer.write(self.net, settings, epochs_done, histories[0], data, rng_states[0],
                     parameters)

    def report(self, records: list[dict[str, Any]], settings: Any) -> None:
        if settings.verbose:
            print(History.book_lines(records[0]), flush=True)
        if settings.callback is not None:
            settings.callback(records[0])


def checked_data(settings: TrainingSettings, training_data: Any, evaluation_data: Any,
                 test_data: Any, sizes: list[int]
                 ) -> tuple[Examples, Optional[Examples], TrainingSettings]:
    """The data of an ``SGD`` call checked for networks of ``sizes``
    (:func:`gpunet.io.datasets.sgd_data`), and the settings with ``test_data=``'s
    evaluation accuracy monitored (``network.py``'s name for it)."""
    train, evaluation, testing = sgd_data(
        training_data, evaluation_data, test_data,
        settings.monitor_evaluation or test_data is not None, sizes[0], sizes[-1])
    if testing and not settings.monitor_evaluation_accuracy:
        settings = dataclasses.replace(settings, monitor_evaluation_accuracy=True)
    return train, evaluation, settings


def run_sgd(net: "Network", train: Examples, evaluation: Optional[Examples],
            settings: TrainingSettings, *, start_epoch: int = 0,
            history: Optional[History] = None,
            checkpoint: Any = None, progress: bool = False) -> History:
    """Train ``net`` on checked data as ``settings`` say; return the per-epoch history.

    Epochs ``start_epoch`` to ``settings.epochs - 1`` run (a resumed run starts later,
    with the earlier epochs' ``history``). ``net.history`` is the history while it
    grows, so it stays reachable after an interruption. On ``KeyboardInterrupt`` (or
    SIGTERM, as :class:`~gpunet.training.signals.Terminated`) the parameters and generator go
    back to the last completed epoch, the checkpoint (if any) is brought up to that
    epoch, and the interrupt propagates; on divergence the same, then
    :class:`~gpunet.training.divergence.DivergenceError`.
    """
    (result,) = run_epochs(NetworkRows(net), train, evaluation, settings,
                           start_epoch=start_epoch,
                           histories=None if history is None else [history],
                           checkpoint=checkpoint, progress=progress)
    return result


def run_epochs(rows: Rows, train: Examples, evaluation: Optional[Examples],
               settings: TrainingSettings, *, start_epoch: int = 0,
               histories: Optional[list[History]] = None,
               diverged: Optional[dict[int, int]] = None,
               seconds: Optional[list[float]] = None,
               checkpoint: Any = None, progress: bool = False) -> list[History]:
    """Train every row of ``rows`` on checked data as ``settings`` say; return one
    history per row.

    Epochs ``start_epoch`` to ``settings.epochs - 1`` run; a resumed run passes the
    earlier epochs' ``histories`` (and, for a stack, its ``diverged`` rows and epoch
    ``seconds``). ``checkpoint`` is ``SGD``'s (a path, a
    :class:`~gpunet.training.checkpoint.CheckpointWriter` or ``None``): locked for the run and
    written after every epoch. SIGTERM raises as Ctrl-C does, and either puts every row
    back at the last completed epoch before it propagates.

    What only the loop sees is checked here, once for ``Network.SGD``,
    ``NetworkStack.SGD`` and :func:`gpunet.resume` alike, before anything is locked or
    trained: ``progress`` (``True`` or ``False``), ``checkpoint``, and a mini-batch no
    larger than the training data.
    """
    progress = check_flag(progress, "progress")
    writer = as_writer(check_checkpoint(checkpoint))
    check_mini_batch(settings.mini_batch_size, len(train))
    held = writer.hold() if writer is not None else contextlib.nullcontext()
    with held, terminate_as_interrupt():
        return _run_epochs(rows, train, evaluation, settings, start_epoch, histories,
                           diverged, seconds, writer, progress)


def _run_epochs(rows: Rows, train: Examples, evaluation: Optional[Examples],
                settings: TrainingSettings, start_epoch: int, histories: Optional[list[History]],
                diverged: Optional[dict[int, int]], seconds: Optional[list[float]],
                checkpoint: Optional["CheckpointWriter"], progress: bool) -> list[History]:
    """:func:`run_epochs` with the checkpoint locked and SIGTERM raising an interrupt."""
    model, generators = rows.model, rows.rngs()
    backend, parameters = model.backend, model.parameters
    K, n = len(generators), len(train)
    # Everything the epochs touch goes to the device (and is allocated) once, here.
    X = backend.asarray(train.X, rows.model.dtype)
    Y = backend.asarray(train.Y, rows.model.dtype)
    with quiet_overflow():  # an η beyond the dtype's range: reported as divergence
        engine = select_engine(rows.model, X, Y, settings)
    logging.getLogger(__name__).info("engine: %s", engine.name)
    try:
        return _epochs(rows, engine, train, evaluation, settings, start_epoch, histories,
                       diverged, seconds, checkpoint, progress, X, Y, K, n, parameters,
                       generators, labels_fingerprint(train))
    finally:
        close = getattr(engine, "close", None)  # engines with worker processes
        if close is not None:
            close()


def _epochs(rows: Rows, engine: Engine, train: Examples, evaluation: Optional[Examples],
            settings: TrainingSettings, start_epoch: int, histories: Optional[list[History]],
            diverged: Optional[dict[int, int]], seconds: Optional[list[float]],
            checkpoint: Optional["CheckpointWriter"], progress: bool, X: "Array",
            Y: "Array", K: int, n: int, parameters: "Array",
            generators: list[np.random.Generator], fingerprint: str) -> list[History]:
    """The epochs themselves, with ``engine`` (see :func:`run_epochs`)."""
    backend, xp = rows.model.backend, rows.model.xp
    if settings.monitor_evaluation:
        assert evaluation is not None  # checked by SGD
        X_eval = backend.asarray(evaluation.X, rows.model.dtype)
        Y_eval = backend.asarray(evaluation.Y, rows.model.dtype)
        labels_eval = backend.asarray(evaluation.labels)
    if settings.monitor_training_accuracy:
        labels_train = backend.asarray(train.labels)
    lmbdas = settings.lmbda

    name = rows.history_engine(engine)
    if histories is None:
        histories = [History(engine=name) for _ in range(K)]
    for history in histories:
        history.engine = name
    gone = dict(diverged or {})  # row -> the epoch it diverged in
    rows.begin(histories, gone)
    epoch_seconds = list(seconds or [])
    data_info = {"n_train": n, "labels_sha256": fingerprint,
                 "n_evaluation": None if evaluation is None else len(evaluation)}
    # The state at the last epoch boundary: where an interrupted run goes back to.
    saved = xp.empty_like(parameters)
    saved[...] = parameters
    saved_rngs = [rng.bit_generator.state for rng in generators]
    epochs_done = start_epoch
    written = -1

    def write_checkpoint() -> None:
        nonlocal written
        if checkpoint is not None and written != epochs_done:
            rows.write_checkpoint(checkpoint, settings, epochs_done, histories, gone,
                                  epoch_seconds, data_info, saved_rngs, saved)
            written = epochs_done

    def go_back(k: Optional[int] = None) -> None:
        """Row ``k`` (every row: ``None``) back to the last epoch boundary."""
        if k is None:
            parameters[...] = saved
            for rng, state in zip(generators, saved_rngs):
                rng.bit_generator.state = state
        else:
            parameters[k] = saved[k]
            generators[k].bit_generator.state = saved_rngs[k]

    # Row k's metrics, with the same code and order of operations for a network and a
    # stack row (gpunet.model.metrics): a stacked row's are the single's.

    _, all_weights, all_biases = as_rows(rows.model)  # (K, ...) views of the parameters
    layers = [([w[k] for w in all_weights], [b[k] for b in all_biases]) for k in range(K)]

    def metric(name: str, k: int) -> "Array":
        weights, biases = layers[k]
        if name == "training_cost":
            return total_cost(backend, rows.model.cost, weights, biases, X, Y, lmbdas[k])
        if name == "training_correct":
            return correct(backend, weights, biases, X, labels_train)
        if name == "evaluation_cost":
            return total_cost(backend, rows.model.cost, weights, biases, X_eval, Y_eval,
                              lmbdas[k])
        return correct(backend, weights, biases, X_eval, labels_eval)

    names = [name for name, wanted in (
        ("training_cost", settings.monitor_training_cost),
        ("training_correct", settings.monitor_training_accuracy),
        ("evaluation_cost", settings.monitor_evaluation_cost),
        ("evaluation_correct", settings.monitor_evaluation_accuracy)) if wanted]

    bar = Progress(settings.epochs, n, engine, first_epoch=start_epoch) if progress else None
    try:
        with backend.scope():  # the networks' device, current for this thread
            for j in range(start_epoch, settings.epochs):
                if bar is not None:
                    bar.start_epoch(j)
                start = time.perf_counter()
                with quiet_overflow():  # a diverging epoch is reported below, once
                    engine.train_epoch(rows.permutations(n))
                    backend.synchronize()
                seconds_j = time.perf_counter() - start
                if bar is not None:
                    bar.end_epoch(seconds_j)
                # The metrics and one "all parameters finite" flag per row, computed on
                # the device and copied to the host in one transfer (K values per name).
                with quiet_overflow():  # a diverged row's metrics are NaN, and unused
                    if K == 1:
                        values: list[Any] = [xp.all(xp.isfinite(parameters))]
                    else:
                        finite = xp.isfinite(parameters).all(axis=1)
                        values = [finite[k] for k in range(K)]
                    for metric_name in names:
                        values.extend(metric(metric_name, k) for k in range(K))
                    fetched = fetch(backend, values)
                newly = [k for k in range(K) if fetched[k] != 1.0 and k not in gone]
                if newly and rows.stop_on_divergence:  # keep the last finite epoch
                    with interrupts_deferred():
                        go_back()
                        write_checkpoint()
                    raise DivergenceError(j, settings.eta[0], settings.lmbda[0], n,
                                          histories[0])
                for k in newly:
                    gone[k] = j
                records = []
                with interrupts_deferred():  # the epoch is complete: commit it whole
                    for k in gone:  # back to its last finite epoch, and it stays there
                        go_back(k)
                    saved[...] = parameters
                    for k in range(K):
                        record: dict[str, Any] = {"epoch": j, "train_seconds": seconds_j}
                        if k in gone:
                            record["diverged"] = True
                            records.append(record)
                            continue
                        for i, metric_name in enumerate(names, 1):
                            value = fetched[i * K + k]
                            record[metric_name] = (int(round(value))
                                                   if metric_name.endswith("correct")
                                                   else value)
                        if settings.monitor_training_accuracy:
                            record["training_total"] = n
                        if settings.monitor_evaluation_accuracy:
                            record["evaluation_total"] = X_eval.shape[0]
                        histories[k].append(record)
                        records.append(record)
                    epoch_seconds.append(seconds_j)
                    saved_rngs = [rng.bit_generator.state for rng in generators]
                    epochs_done = j + 1
                write_checkpoint()
                rows.report(records, settings)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        with interrupts_deferred():
            go_back()
            write_checkpoint()
        raise
    finally:
        if bar is not None:
            bar.close()
    return histories
