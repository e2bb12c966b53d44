"""The stacked CPU engine on several cores: the networks split over worker processes.

The networks of a stack never interact, so a stack can be cut into groups that train
their epochs side by side, each with :class:`gpunet.engines.cpu.CpuEngine`
(the CPU engine's step, batched over the group). This process trains the first group;
each other group trains in a worker process of a loky process pool (``loky``, the
process pool of joblib and scikit-learn).

Why processes and not threads: a step of the book's network is ~20 NumPy calls of a few
microseconds each, and between calls Python holds the GIL. Two threads hand the GIL to
each other ~40 times a step, and each contended hand-over costs microseconds of
waiting (measured: docs/performance.md, "Many networks at once on the CPU"). Processes
share nothing but their inputs and outputs.

Why loky (and not :mod:`multiprocessing` or a pool of our own): loky starts a worker as
a fresh interpreter that is handed this process's ``sys.path`` and never runs the
user's ``__main__``: its default start method leaves ``init_main_module`` off, so
``loky.backend.spawn.get_preparation_data`` sends no ``init_main_from_path`` and the
worker's ``prepare`` does not re-run the script (multiprocessing's spawn does, and its
``loky_init_main`` method would). So a research script without an ``if __name__ ==
"__main__":`` guard trains once, and the workers import the very gpunet this process
runs. A worker that dies is noticed through its sentinel, whatever it was doing, and
its exit code comes back.

Each group has a pool of one worker, so a group always trains in the same process,
which keeps its engine and its copy of the training rows between epochs. What crosses
(pickle through pipes; no shared memory, so nothing is left behind in ``/dev/shm`` and
a container's small ``/dev/shm`` is no limit): with a group's first epoch, its settings
and the training rows (:mod:`gpunet.engines.rows`; MNIST's 8-bit codes are 39 MB),
sent by the pool's own thread while the worker starts; each epoch, the group's
parameter rows and permutations in, the trained rows out (~100 KB a book network).

Each network makes exactly the operations it makes in one group in this process, so
results do not depend on the number of workers (bit for bit; tests/test_stack_workers.py).
Workers run BLAS on one thread and ignore Ctrl-C (this process stops them), and exit
if this process dies without stopping them; a worker that fails or dies is one
:class:`WorkerFailed` that names ``--workers 1``.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
import weakref
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Optional, Sequence, cast

import numpy as np

from ..model.activations import activation_names
from ..model.parameters import StackedParameters
from ..model.dropout import rates_of, seeds_of
from .base import Steps, l1_of, momentum_of
from .rows import Rows, training_rows
from .cpu import CpuEngine, one_blas_thread, unfit_reason

if TYPE_CHECKING:
    from ..backends import Array
    from ..model.parameters import Parameters
    from .base import StepSettings

#: Below this many multiply-adds an epoch (a stack's n x K x P), ``auto`` trains the
#: stack in this process: starting a worker (~0.3 s: Python, NumPy, gpunet) and sending
#: it the data would cost more than the epochs save.
WORKERS_FROM = 2_000_000_000

#: The environment variables that make a worker's BLAS (OpenBLAS, OpenMP builds, MKL)
#: run on one thread: the workers already use every core.
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1"}


def default_workers() -> int:
    """Workers for the stacked CPU engine: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def why_not(params: "Parameters", X: "Array", settings: "StepSettings") -> str:
    """Why the cpu engine cannot train ``params`` here (empty when it can): the cpu
    engine's entry in :data:`gpunet.engines.ENGINES` (here, where it is one process or
    several)."""
    return unfit_reason(params)


def build(params: "Parameters", X: "Array", Y: "Array", settings: "StepSettings") -> Any:
    """The cpu engine for ``params`` (:data:`gpunet.engines.ENGINES`): a large stack split
    over worker processes (:func:`workers_for`), else in this process."""
    if isinstance(params, StackedParameters):
        workers = workers_for(params, X.shape[0], settings.workers)
        if workers > 1:
            return WorkerCpuEngine(params, X, Y, settings, workers)
    return CpuEngine(params, X, Y, settings)


def workers_for(stack: "StackedParameters", n: int, asked: Optional[int]) -> int:
    """How many groups (this process and workers) train ``stack``: ``asked`` when
    given, else one per CPU for a stack whose epoch is large enough to pay for the
    workers' start (:data:`WORKERS_FROM`), else 1. Never more than the networks."""
    from ..model.parameters import n_parameters

    K = len(stack)
    if asked is not None:
        return max(1, min(asked, K))
    if n * K * n_parameters(stack.sizes) < WORKERS_FROM:
        return 1
    return max(1, min(default_workers(), K))


class GroupRows:
    """Networks ``a`` to ``b - 1`` of a stack as :class:`CpuEngine` reads a stack:
    views of their rows, so the group's engine trains the stack's own parameters."""

    def __init__(self, stack: Any, a: int, b: int) -> None:
        self.sizes, self.dtype, self.cost = stack.sizes, stack.dtype, stack.cost
        self.activation = getattr(stack, "activation", "sigmoid")  # the hidden layers'
        self.backend, self.xp = stack.backend, stack.xp
        self.parameters = stack.parameters[a:b]
        self.weights = [w[a:b] for w in stack.weights]
        self.biases = [bias[a:b] for bias in stack.biases]
        self.count = b - a
        seeds = getattr(stack, "seeds", None)  # dropout's masks come from them
        self.seeds = None if seeds is None else list(seeds)[a:b]

    def __len__(self) -> int:
        return self.count


#: How often a worker checks that its parent is alive (seconds).
PARENT_CHECK_S = 0.5

#: What a failure message tells the user to do instead.
ONE_PROCESS = "Train in one process with --workers 1 (NetworkStack.SGD(..., workers=1))."


class WorkerFailed(RuntimeError):
    """A worker process of the stacked CPU engine failed or died."""


class WorkerCpuEngine:
    """The stacked CPU engine with the networks split into groups, one process each."""

    name = "cpu"

    def __init__(self, stack: "StackedParameters", X: "Array", Y: "Array",
                 settings: "StepSettings", workers: int) -> None:
        import dataclasses

        from loky import ProcessPoolExecutor

        if not (sys.executable and os.access(sys.executable, os.X_OK)):
            raise WorkerFailed(
                f"a worker process of the stacked CPU engine cannot start: this "
                f"process's Python ({sys.executable!r}) cannot be run. {ONE_PROCESS}")
        K = len(stack)
        workers = max(1, min(workers, K))
        bounds = [K * i // workers for i in range(workers + 1)]
        self.groups = list(zip(bounds[:-1], bounds[1:]))
        self.stack = stack
        # The training rows once for every group (MNIST: 8-bit codes, 39 MB, which is
        # also what crosses to each worker). The local group's engine checks the stack
        # (host arrays, a declared cost) before any worker starts.
        self.data: Optional[Rows] = training_rows(X, Y, np.dtype(stack.dtype))
        a, b = self.groups[0]
        momentum, l1 = momentum_of(settings, K), l1_of(settings, K)
        dropout = rates_of(settings, K)
        seeds = seeds_of(stack) if any(dropout) else [0] * K
        self.eta = list(settings.eta)
        self.next_epoch = 0  # the Engine's (dropout's masks count epochs)
        self.local = CpuEngine(
            GroupRows(stack, a, b), X, Y,
            Steps(settings.mini_batch_size, settings.eta[a:b], settings.lmbda[a:b],
                  momentum=momentum[a:b], l1=l1[a:b], dropout=dropout[a:b]),
            self.data)
        #: the stack's velocities (K, P), or None: this process's group's rows are its
        #: engine's own, the workers' cross with their parameters each epoch
        self.velocity: Optional[np.ndarray] = None
        if self.local.velocity is not None:
            self.velocity = np.zeros((K, stack.parameters.shape[1]), stack.parameters.dtype)
        # What a worker needs to build its group's engine (with the rows, in its first
        # task).
        self.setups = [{"sizes": list(stack.sizes), "dtype": np.dtype(stack.dtype).name,
                        "cost": stack.cost.__name__, "count": d - c,
                        "activation": activation_names(getattr(stack, "activation",
                                                               "sigmoid")),
                        "mini_batch_size": settings.mini_batch_size,
                        "eta": settings.eta[c:d], "lmbda": settings.lmbda[c:d],
                        "momentum": momentum[c:d], "l1": l1[c:d],
                        "dropout": dropout[c:d], "seeds": seeds[c:d]}
                       for c, d in self.groups[1:]]
        # One pool of one worker per group: a group always trains in the same worker,
        # which keeps its engine and rows. (One pool of many would hand any task to any
        # worker, so every worker would need the rows at its start, and loky writes a
        # worker's start-up data while the worker starts: they would start one after
        # another, and a worker that died at its start would leave this process
        # waiting on the pipe for ever.) The workers start with the first epoch.
        self.pools = [ProcessPoolExecutor(max_workers=1, initializer=_start_worker,
                                          initargs=(os.getpid(),),
                                          env=dict(ONE_BLAS_THREAD))
                      for _ in self.setups]
        self._finalizer = weakref.finalize(self, _stop, self.pools)

    def set_eta(self, eta: "Sequence[float]") -> None:
        """Network ``k`` trains with ``eta[k]`` from the next epoch on (the workers get
        their groups' η with their next epoch)."""
        self.eta = [float(e) for e in eta]
        a, b = self.groups[0]
        self.local.set_eta(self.eta[a:b])

    def train_epoch(self, permutations: np.ndarray) -> None:
        """One epoch of every group: the workers' groups start first, then this
        process trains its own; the stack's rows of each worker are replaced by what
        it sends back (only once every group has finished, so an interrupted epoch
        leaves the whole stack at the last completed one). With momentum the
        velocities go with the parameters."""
        params, velocity = self.stack.parameters, self.velocity
        a, b = self.groups[0]
        before = params[a:b].copy()
        local_velocity = self.local.velocity
        if velocity is not None and local_velocity is not None:
            local_velocity[...] = velocity[a:b]
            before_velocity = velocity[a:b].copy()
        try:
            if not self._finalizer.alive:
                raise WorkerFailed(f"the worker processes of the stacked CPU engine were "
                                   f"stopped (a failure, or close()). {ONE_PROCESS}")
            tasks = [_submit(pool, setup, self.data, np.ascontiguousarray(params[c:d]),
                             np.ascontiguousarray(permutations[c:d]), self.eta[c:d],
                             None if velocity is None else np.ascontiguousarray(velocity[c:d]),
                             self.next_epoch)
                     for pool, setup, (c, d) in zip(self.pools, self.setups, self.groups[1:])]
            self.data = None  # the workers keep their copies
            with one_blas_thread():  # as in the workers: every core is busy
                self.local.next_epoch = self.next_epoch
                self.local.train_epoch(permutations[a:b])
            trained = [_result(task) for task in tasks]
        except BaseException:
            params[a:b] = before  # the stack stays at the last completed epoch
            if velocity is not None and local_velocity is not None:
                local_velocity[...] = before_velocity
            self.close()
            raise
        for (rows, velocities), (c, d) in zip(trained, self.groups[1:]):
            params[c:d] = rows
            if velocity is not None:
                velocity[c:d] = velocities
        if velocity is not None and local_velocity is not None:
            velocity[a:b] = local_velocity
        self.next_epoch += 1

    def close(self) -> None:
        """Stop the workers (idempotent); the engine cannot train after this."""
        self._finalizer()


def _stop(pools: list[Any]) -> None:
    for pool in pools:
        pool.shutdown(wait=True, kill_workers=True)


def _submit(pool: Any, *task: Any) -> "Future[Any]":
    """A group's epoch handed to its worker (the first one starts the worker)."""
    from loky import BrokenProcessPool

    try:
        return cast("Future[Any]", pool.submit(_train_group, *task))
    except BrokenProcessPool as error:
        raise _stopped(error) from None
    except OSError as error:  # no process could be made (fork_exec)
        raise WorkerFailed(
            f"a worker process of the stacked CPU engine could not start: {error}. "
            f"{ONE_PROCESS}") from None


def _result(task: "Future[Any]") -> Any:
    """A worker's trained rows, or its failure as one :class:`WorkerFailed`."""
    from loky import BrokenProcessPool

    try:
        return task.result()
    except BrokenProcessPool as error:  # the worker died (or could not start)
        raise _stopped(error) from None
    except Exception as error:  # raised in the worker: loky attaches its traceback
        raise WorkerFailed(f"a worker process of the stacked CPU engine failed:\n"
                           f"{error.__cause__ or repr(error)}") from None


def _stopped(error: BaseException) -> WorkerFailed:
    """A dead worker, with the exit code loky saw (e.g. ``{SIGKILL(-9)}``)."""
    codes = re.search(r"exit codes of the workers are (\{.*?\})", str(error))
    how = f"exit code {codes.group(1)}" if codes else "the pool broke: " + str(error)
    return WorkerFailed(
        f"a worker process of the stacked CPU engine stopped ({how}); its error, if "
        f"any, is above. {ONE_PROCESS}")


# ---------------------------------------------------------------- in a worker process
#: The worker's group: its engine and the stack that engine trains.
_group: Optional[tuple[CpuEngine, "_WorkerStack"]] = None


def _start_worker(parent: int) -> None:
    """A worker's start: Ctrl-C is for this process, which stops the workers; and a
    worker whose parent died without stopping it (SIGKILL, the OOM killer) exits,
    where loky's would wait for a task for ever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True,
                     name="gpunet-parent-watch").start()


def _exit_with_parent(parent: int) -> None:
    """Exit once this process has another parent (an orphan is re-parented)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


class _WorkerStack:
    """What a worker's :class:`CpuEngine` reads as its stack: its group's
    parameter rows, received each epoch."""

    def __init__(self, setup: dict[str, Any]) -> None:
        from ..backends import get_backend
        from ..model.activations import checked_hidden
        from ..model.costs import get_cost
        from ..model.parameters import stacked_layers

        self.sizes = list(setup["sizes"])
        self.dtype = setup["dtype"]
        self.cost = get_cost(setup["cost"])
        self.activation = checked_hidden(setup["activation"], len(self.sizes) - 2)
        self.backend = get_backend("cpu")
        self.xp = np
        self.count = int(setup["count"])
        self.seeds = list(setup.get("seeds", [0] * self.count))
        self.parameters, self.weights, self.biases = stacked_layers(
            self.sizes, self.count, np, self.dtype)

    def __len__(self) -> int:
        return self.count


def _train_group(setup: dict[str, Any], data: Optional[Rows], params: np.ndarray,
                 permutations: np.ndarray, eta: Optional[list[float]] = None,
                 velocity: Optional[np.ndarray] = None, epoch: int = 0
                 ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """A worker's task: one epoch of its group from ``params`` (and ``velocity``, with
    momentum) at ``eta``; the first task brings the training rows, and the group's
    engine is built then. The trained rows and velocities."""
    global _group

    if data is not None:
        stack = _WorkerStack(setup)
        settings = Steps(mini_batch_size=setup["mini_batch_size"],
                         eta=tuple(setup["eta"]), lmbda=tuple(setup["lmbda"]),
                         momentum=tuple(setup.get("momentum", ())),
                         l1=tuple(setup.get("l1", ())),
                         dropout=tuple(setup.get("dropout", ())))
        n = data.n  # X and Y only give the number of examples when data is given
        _group = (CpuEngine(stack, np.empty((n, 0)), np.empty((n, 0)),
                                   settings, data), stack)
    if _group is None:
        raise RuntimeError("this worker has no group: it was restarted after its first "
                           "task")
    engine, stack = _group
    if eta is not None and list(eta) != engine.eta:
        engine.set_eta(eta)
    trained: np.ndarray = stack.parameters  # NumPy: the worker's stack is on the CPU
    trained[...] = params
    if velocity is not None and engine.velocity is not None:
        engine.velocity[...] = velocity
    engine.next_epoch = epoch  # the run's epoch (dropout's masks count it)
    engine.train_epoch(permutations)
    return trained, engine.velocity
