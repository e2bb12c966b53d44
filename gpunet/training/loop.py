"""The epochs of ``Network.SGD`` and ``NetworkStack.SGD``: one loop for K ≥ 1 networks.

Chapter 1's stochastic gradient descent ("Learning with gradient descent"): each epoch
shuffles the training data, cuts it into mini-batches and takes a gradient step on each;
``network2.py`` (chapter 3) adds L2 regularization and the monitored costs and
accuracies. The shuffle comes from each network's host generator (so a seed gives the
same run on every backend and every engine); the steps are the engine's
(:mod:`gpunet.engines`); the metrics are computed on the device after the epoch, and
their few numbers reach the host in one copy.

:func:`train` turns a run's :class:`~gpunet.training.state.RunState` into the next
one, an epoch at a time: train, measure, commit. At every epoch boundary it keeps a
device copy of the parameters (:class:`Boundary`); Ctrl-C (``KeyboardInterrupt``),
SIGTERM (:class:`gpunet.training.signals.Terminated`) or divergence inside an epoch
puts the networks back there, so the networks, their histories and the checkpoint
agree and resuming gives exactly the uninterrupted run. Everything else (checkpoint,
progress line, printed line and ``callback``, what divergence does) is a hook
(:mod:`gpunet.training.hooks`).

Divergence (:mod:`gpunet.training.divergence`) is found from the epoch's own metrics
copy: the device computes one flag per network, "every parameter is finite", and the
same single transfer brings it to the host. An epoch whose parameters are not finite is
not committed for that network: it goes back to its last finite epoch. A single network
then stops (:class:`~gpunet.training.hooks.StopOnDivergence`); in a stack it stays there
and the others go on.

The loop sees its networks through a :class:`Target`: the K rows of parameters (a
network's ``(P,)`` buffer is its one row, a stack's ``(K, P)`` array has K), one host
generator per row, and the few things that differ between one network and a stack (the
histories they show, what their checkpoint says of them, their printed line).
``Network``'s and ``NetworkStack``'s targets are in :mod:`gpunet.networks`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Protocol

import numpy as np

from ..engines import Engine, select_engine
from ..io.datasets import Examples, sgd_data
from ..model.arguments import check_checkpoint, check_flag, check_mini_batch
from ..model.activations import layer_activations
from ..model.dropout import evaluation_weights, rates_of
from ..model.metrics import correct, fetch, total_cost
from ..model.parameters import as_rows
from .checkpoint import as_writer, labels_fingerprint
from .divergence import quiet_overflow
from .hooks import CheckpointHook, Hook, ProgressHook, deciding_hooks, standard_hooks
from .settings import TrainingSettings
from .signals import interrupts_deferred, terminate_as_interrupt
from .state import RunState

if TYPE_CHECKING:
    from ..backends import Array
    from ..model.parameters import Parameters


class Target(Protocol):
    """K networks of one shape as the training loop trains them."""

    @property
    def model(self) -> "Parameters":
        """The networks, as the engines see them (:func:`gpunet.engines.select_engine`)."""

    #: whether a network's divergence ends the run (one network) or only its own
    #: training (a stack: the others go on)
    stop_on_divergence: bool

    def generators(self) -> list[np.random.Generator]:
        """Network ``k``'s host generator: its shuffles, and its state in a checkpoint."""

    def permutations(self, n: int) -> np.ndarray:
        """The epoch's shuffles, drawn from each generator, as the engine takes them."""

    def history_engine(self, engine: Engine) -> str:
        """The engine's name as the histories record it."""

    def begin(self, state: RunState) -> None:
        """The run starts from ``state``: its histories (and diverged networks) become
        the model's, reachable while they grow and after an interruption."""

    def description(self) -> dict[str, Any]:
        """What a checkpoint says of the networks (:meth:`gpunet.training.checkpoint.
        CheckpointWriter.write`)."""

    def report(self, records: list[dict[str, Any]], settings: TrainingSettings) -> None:
        """The epoch's line (``verbose``) and ``callback``, as this model's SGD promises."""


@dataclass
class TrainingData:
    """The checked data of an ``SGD`` call: what it trains on and what it evaluates on."""

    train: Examples
    evaluation: Optional[Examples] = None


def checked_data(settings: TrainingSettings, training_data: Any, evaluation_data: Any,
                 test_data: Any, sizes: list[int]) -> tuple[TrainingData, TrainingSettings]:
    """The data of an ``SGD`` call checked for networks of ``sizes``
    (:func:`gpunet.io.datasets.sgd_data`), and the settings with ``test_data=``'s
    evaluation accuracy monitored (``network.py``'s name for it)."""
    train, evaluation, testing = sgd_data(
        training_data, evaluation_data, test_data,
        settings.monitor_evaluation or test_data is not None, sizes[0], sizes[-1])
    if testing and not settings.monitor_evaluation_accuracy:
        settings = dataclasses.replace(settings, monitor_evaluation_accuracy=True)
    check_watched(settings, evaluation is not None, test_data is not None)
    return TrainingData(train, evaluation), settings


def check_watched(settings: TrainingSettings, evaluation: bool, testing: bool) -> None:
    """Early stopping, a schedule and keeping the best epoch decide by the accuracy on
    ``evaluation_data`` each epoch: it must be given and monitored, and be the
    validation set, not the test set (an epoch chosen by the test score makes that
    score optimistic)."""
    asked = [name for name, on in (
        (f"early_stopping_n={settings.early_stopping_n}", settings.early_stopping_n > 0),
        (f"eta_schedule={settings.eta_schedule!r}", settings.eta_schedule is not None),
        ("keep_best=True", settings.keep_best)) if on]
    if not asked:
        return
    what = " and ".join(asked)
    if testing:
        raise ValueError(f"{what} chooses epochs by the accuracy on the data it watches; "
                         "test_data= is the test set, whose score would then be "
                         "optimistic: pass the validation set as evaluation_data (and "
                         "monitor_evaluation_accuracy=True) instead.")
    if not evaluation or not settings.monitor_evaluation_accuracy:
        raise ValueError(f"{what} needs the accuracy on evaluation data each epoch: pass "
                         "the validation set as evaluation_data (not the test set) and "
                         "monitor_evaluation_accuracy=True.")


def run_sgd(target: Target, data: TrainingData, settings: TrainingSettings,
            state: Optional[RunState] = None, *, checkpoint: Any = None,
            progress: bool = False) -> RunState:
    """``SGD``: train ``target`` on checked ``data`` as ``settings`` say, from ``state``
    (a resumed run's; default: the start), with the standard hooks; the state after.

    What only the loop sees is checked here, once for ``Network.SGD``,
    ``NetworkStack.SGD`` and :func:`gpunet.resume` alike, before anything is locked or
    trained: ``progress`` (``True`` or ``False``), ``checkpoint`` (a path, a
    :class:`~gpunet.training.checkpoint.CheckpointWriter` or ``None``: locked for the
    run and written after every epoch), and a mini-batch no larger than the training
    data. SIGTERM raises as Ctrl-C does, and either puts every network back at the last
    completed epoch before it propagates.
    """
    progress = check_flag(progress, "progress")
    writer = as_writer(check_checkpoint(checkpoint))
    check_mini_batch(settings.mini_batch_size, len(data.train))
    if state is None:
        state = RunState.start(target.generators())
    held = writer.hold() if writer is not None else contextlib.nullcontext()
    with held, terminate_as_interrupt():
        return train(target, data, settings, state, _Hooked(writer, progress))


@dataclass
class _Hooked:
    """The hooks ``SGD`` asks for, made once the engine and data are known."""

    writer: Any
    progress: bool

    def hooks(self, target: Target, data: TrainingData, settings: TrainingSettings,
              state: RunState, boundary: "Boundary", engine: Engine) -> Hook:
        n = len(data.train)
        checkpoint = None
        if self.writer is not None:
            info = {"n_train": n, "labels_sha256": labels_fingerprint(data.train),
                    "n_evaluation": None if data.evaluation is None else len(data.evaluation)}
            to_host = target.model.backend.to_host
            checkpoint = CheckpointHook(self.writer, target.description(), settings, info,
                                        lambda: to_host(boundary.parameters),
                                        lambda: boundary.host_arrays(to_host))
        bar = (ProgressHook(settings.epochs, n, engine, state.epochs_done)
               if self.progress else None)
        deciding = deciding_hooks(settings, boundary.best, boundary.rows)
        return standard_hooks(settings, n, stop_on_divergence=target.stop_on_divergence,
                              report=lambda records: target.report(records, settings),
                              checkpoint=checkpoint, progress=bar, deciding=deciding)


def train(target: Target, data: TrainingData, settings: TrainingSettings, state: RunState,
          hooked: _Hooked) -> RunState:
    """Train ``target`` from ``state`` until ``settings.epochs`` epochs are done; the
    state after (the same object, grown). The engine is chosen and every array the
    epochs touch is put on the device (and allocated) once, here."""
    model = target.model
    X = model.backend.asarray(data.train.X, model.dtype)
    Y = model.backend.asarray(data.train.Y, model.dtype)
    with quiet_overflow():  # an η beyond the dtype's range: reported as divergence
        engine = select_engine(model, X, Y, settings)
    logging.getLogger(__name__).info("engine: %s", engine.name)
    engine.next_epoch = state.epochs_done  # dropout's masks count the run's epochs
    try:
        boundary = Boundary(model.xp, model.parameters, target.generators(),
                            engine_velocity(engine, state, model.backend),
                            best_copy(settings, state, model))
        hooks = hooked.hooks(target, data, settings, state, boundary, engine)
        measure = Measurements(model, data, settings, X, Y)
        return Epochs(target, engine, measure, boundary, hooks).run(settings, state)
    finally:
        close = getattr(engine, "close", None)  # engines with worker processes
        if close is not None:
            close()


def engine_velocity(engine: Engine, state: RunState, backend: Any) -> Any:
    """The engine's momentum velocities (``None`` without momentum), with a resumed
    run's (``state.velocity``, read from its checkpoint) written back into them."""
    velocity = getattr(engine, "velocity", None)
    if velocity is not None and state.velocity is not None:
        velocity[...] = backend.asarray(np.asarray(state.velocity).reshape(velocity.shape)
                                        .astype(velocity.dtype, copy=False))
    return velocity


def best_copy(settings: TrainingSettings, state: RunState, model: "Parameters") -> Any:
    """``keep_best``'s device copy ``(K, P)`` of each network's best epoch: a resumed
    run's (from its checkpoint), else the parameters as the run starts; ``None``
    without ``keep_best``."""
    if not settings.keep_best:
        return None
    rows, _, _ = as_rows(model)
    best = model.xp.empty_like(rows)
    if state.best_parameters is not None:
        best[...] = model.backend.asarray(np.asarray(state.best_parameters).reshape(rows.shape)
                                          .astype(rows.dtype, copy=False))
    else:
        best[...] = rows
    state.best_parameters = best
    return best


class Boundary:
    """The parameters (and momentum's velocities) at the last epoch boundary (device
    copies) and the way back to it: an interrupted or diverged epoch is never
    committed. ``best`` is ``keep_best``'s copy of each network's best epoch (kept by
    :class:`~gpunet.training.hooks.WatchAccuracy`), written with the checkpoint."""

    def __init__(self, xp: Any, parameters: "Array", generators: list[np.random.Generator],
                 velocity: Any = None, best: Any = None) -> None:
        self.current, self.generators = parameters, generators
        K = len(generators)
        self.rows = parameters.reshape(K, -1)  # (K, P) views: a network's (P,) is one row
        self.parameters = xp.empty_like(parameters)
        self.parameters[...] = parameters
        self.saved_rows = self.parameters.reshape(K, -1)
        self.velocity, self.best = velocity, best
        self.saved_velocity: Any = None
        if velocity is not None:
            self.saved_velocity = xp.empty_like(velocity)
            self.saved_velocity[...] = velocity

    def restore(self, state: RunState, networks: Optional[list[int]] = None) -> None:
        """Networks ``networks`` (every one: ``None``) back to ``state``'s boundary:
        their parameters, velocities and generators."""
        if networks is None:
            self.current[...] = self.parameters
            if self.velocity is not None:
                self.velocity[...] = self.saved_velocity
            networks = list(range(len(self.generators)))
        else:
            for k in networks:
                self.rows[k] = self.saved_rows[k]
                if self.velocity is not None:
                    self.velocity[k] = self.saved_velocity[k]
        for k in networks:
            self.generators[k].bit_generator.state = state.rng_states[k]

    def commit(self, state: RunState) -> None:
        """The networks as they are now become the boundary (their diverged and stopped
        ones put back first: they stay at their last finite, or last trained, epoch)."""
        self.restore(state, sorted({*state.diverged, *state.stopped}))
        self.parameters[...] = self.current
        if self.velocity is not None:
            self.saved_velocity[...] = self.velocity
        state.rng_states = [g.bit_generator.state for g in self.generators]

    def host_arrays(self, to_host: Any) -> dict[str, np.ndarray]:
        """The checkpoint's further members, as of the boundary: ``velocity`` and
        ``best`` (``(K, P)`` host copies), those the run has."""
        arrays = {}
        if self.saved_velocity is not None:
            arrays["velocity"] = to_host(self.saved_velocity)
        if self.best is not None:
            arrays["best"] = to_host(self.best)
        return arrays


class Measurements:
    """The monitored metrics of every network and one "all parameters finite" flag per
    network, computed on the device with the same code and order of operations for a
    network and a stack row (:mod:`gpunet.model.metrics`), copied in one transfer."""

    NAMES = ("training_cost", "training_correct", "evaluation_cost", "evaluation_correct")

    def __init__(self, model: "Parameters", data: TrainingData, settings: TrainingSettings,
                 X: "Array", Y: "Array") -> None:
        backend = model.backend
        wanted = (settings.monitor_training_cost, settings.monitor_training_accuracy,
                  settings.monitor_evaluation_cost, settings.monitor_evaluation_accuracy)
        self.names = [name for name, on in zip(self.NAMES, wanted) if on]
        self.model, self.lmbda, self.n = model, settings.lmbda, len(data.train)
        self.l1 = settings.l1
        self.dropout = rates_of(settings, len(settings.eta))  # evaluated scaled by 1 - p
        self.inputs: dict[str, tuple["Array", "Array"]] = {"training": (X, Y)}
        self.labels: dict[str, "Array"] = {}
        if settings.monitor_training_accuracy:
            self.labels["training"] = backend.asarray(data.train.labels)
        if settings.monitor_evaluation and data.evaluation is not None:
            evaluation = data.evaluation  # checked by SGD
            self.inputs["evaluation"] = (backend.asarray(evaluation.X, model.dtype),
                                         backend.asarray(evaluation.Y, model.dtype))
            self.labels["evaluation"] = backend.asarray(evaluation.labels)
        _, weights, biases = as_rows(model)  # (K, ...) views of the parameters
        self.layers = [([w[k] for w in weights], [b[k] for b in biases])
                       for k in range(len(self.lmbda))]

    def metric(self, name: str, k: int) -> "Array":
        """Network ``k``'s ``name`` as a 0-d device array."""
        weights, biases = self.layers[k]
        weights = evaluation_weights(weights, self.dropout[k])
        which, what = name.split("_")
        X, Y = self.inputs[which]
        if what == "cost":
            return total_cost(self.model.backend, self.model.cost, weights, biases, X, Y,
                              self.lmbda[k], layer_activations(self.model), self.l1[k])
        return correct(self.model.backend, weights, biases, X, self.labels[which],
                       layer_activations(self.model))

    def fetch(self) -> list[float]:
        """K finite flags, then each metric's K values, in one copy from the device."""
        xp, parameters, K = self.model.xp, self.model.parameters, len(self.layers)
        with quiet_overflow():  # a diverged network's metrics are NaN, and unused
            if K == 1:
                values: list[Any] = [xp.all(xp.isfinite(parameters))]
            else:
                finite = xp.isfinite(parameters).all(axis=1)
                values = [finite[k] for k in range(K)]
            for name in self.names:
                values.extend(self.metric(name, k) for k in range(K))
            return fetch(self.model.backend, values)

    def record(self, fetched: list[float], k: int, epoch: int,
               seconds: float) -> dict[str, Any]:
        """Network ``k``'s record of ``epoch`` (:class:`~gpunet.training.history.History`'s
        keys) from the fetched values."""
        K = len(self.layers)
        record: dict[str, Any] = {"epoch": epoch, "train_seconds": seconds}
        for i, name in enumerate(self.names, 1):
            value = fetched[i * K + k]
            record[name] = int(round(value)) if name.endswith("correct") else value
        if "training_correct" in self.names:
            record["training_total"] = self.n
        if "evaluation_correct" in self.names:
            record["evaluation_total"] = self.inputs["evaluation"][0].shape[0]
        return record


class Epochs:
    """The epochs of one run: train, measure, commit, with the hooks around them."""

    def __init__(self, target: Target, engine: Engine, measure: Measurements,
                 boundary: Boundary, hooks: Hook) -> None:
        self.target, self.engine, self.measure = target, engine, measure
        self.boundary, self.hooks = boundary, hooks
        self.settings: Optional[TrainingSettings] = None
        self.rates: list[float] = []  # the η each network trains with: the engine's

    def run(self, settings: TrainingSettings, state: RunState) -> RunState:
        name = self.target.history_engine(self.engine)
        for history in state.histories:
            history.engine = name
        self.settings, self.rates = settings, list(settings.eta)  # the engine's, as built
        self.target.begin(state)
        self.hooks.begin(state)
        try:
            with self.target.model.backend.scope():  # the networks' device, current
                for epoch in range(state.epochs_done, settings.epochs):
                    if state.stopped and not state.training():
                        break  # every network stopped (early stopping, the schedule)
                    self.set_rates(state)
                    self.epoch(state, epoch)
        except BaseException:  # Ctrl-C, SIGTERM, divergence, a failure: the last boundary
            with interrupts_deferred():
                self.boundary.restore(state)
                self.hooks.stopped(state)
            raise
        finally:
            self.hooks.close()
        return state

    def set_rates(self, state: RunState) -> None:
        """Each network's η for the next epoch (the schedule's, 0 for a stopped
        network) to the engine, where it changed: a few numbers, nothing at the
        defaults."""
        assert self.settings is not None
        if not (state.stopped or self.settings.eta_schedule is not None):
            return
        rates = state.etas(self.settings.eta)
        if rates != self.rates:
            self.engine.set_eta(rates)
            self.rates = rates

    def epoch(self, state: RunState, epoch: int) -> None:
        """Train epoch ``epoch``, measure it, and commit it to ``state``."""
        n, backend = self.measure.n, self.target.model.backend
        self.hooks.epoch_begins(epoch)
        start = time.perf_counter()
        with quiet_overflow():  # a diverging epoch is reported below, once
            self.engine.train_epoch(self.target.permutations(n))
            backend.synchronize()
        seconds = time.perf_counter() - start
        self.hooks.epoch_trained(epoch, seconds)
        fetched = self.measure.fetch()
        newly = [k for k in state.training() if fetched[k] != 1.0]
        if newly:
            self.hooks.diverged(state, newly, epoch)  # a single network's run stops
        with interrupts_deferred():  # the epoch is complete: commit it whole
            records = self.commit(state, fetched, newly, epoch, seconds)
            self.hooks.commit(state, records)  # early stopping, the schedule, the best
        self.hooks.epoch_ends(state, records)

    def commit(self, state: RunState, fetched: list[float], newly: list[int], epoch: int,
               seconds: float) -> list[dict[str, Any]]:
        """``state`` after ``epoch``: the newly diverged networks back at their last
        finite epoch for good, every other network's record appended to its history."""
        for k in newly:
            state.diverged[k] = epoch
        self.boundary.commit(state)
        records = []
        scheduled = self.settings is not None and self.settings.eta_schedule is not None
        for k, history in enumerate(state.histories):
            if k in state.diverged:
                records.append({"epoch": epoch, "train_seconds": seconds, "diverged": True})
                continue
            if k in state.stopped:  # stopped in an earlier epoch: it trains no more
                records.append({"epoch": epoch, "train_seconds": seconds, "stopped": True})
                continue
            record = self.measure.record(fetched, k, epoch, seconds)
            if scheduled:
                record["eta"] = self.rates[k]  # the η this epoch trained with
            history.append(record)
            records.append(record)
        state.seconds.append(seconds)
        state.epochs_done = epoch + 1
        return records
