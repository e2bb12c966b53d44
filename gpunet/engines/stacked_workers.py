"""The stacked CPU engine on several cores: the networks split over worker processes.

The networks of a stack never interact, so a stack can be cut into groups that train
their epochs side by side, each with :class:`gpunet.engines.stacked_cpu.StackedCpuEngine`
(the CPU engine's step, batched over the group). This process trains the first group;
each other group trains in a worker process of its own.

Why processes and not threads: a step of the book's network is ~20 NumPy calls of a few
microseconds each, and between calls Python holds the GIL. Two threads hand the GIL to
each other ~40 times a step, and each contended hand-over costs microseconds of
waiting (measured on the 2-core machine: 8 book networks in 2 threads 1.56-1.79 s an
epoch, in 2 processes 1.28-1.47 s, interleaved in one run). Processes share nothing but
their inputs and outputs.

What crosses to a worker, over its stdin and stdout (pickle; no shared memory, so
nothing is left behind in ``/dev/shm`` and a container's small ``/dev/shm`` is no
limit): once, the group's settings and the training rows (:mod:`gpunet.engines.rows`; the
worker keeps its own copy: MNIST's 8-bit codes are 39 MB); each epoch, the group's parameter rows and
permutations in, the trained rows out (~100 KB a book network).

Each network makes exactly the operations it makes in one group in this process, so
results do not depend on the number of workers (bit for bit; tests/test_stack.py).

Workers are started with ``python -c`` (never :mod:`multiprocessing`'s spawn, which
re-imports the user's ``__main__``: a research script without an ``if __name__ ==
"__main__":`` guard would train again in every worker), with this process's
``sys.path``, BLAS on one thread, and Ctrl-C ignored (this process stops them).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import traceback
import weakref
from typing import TYPE_CHECKING, Any, BinaryIO, Optional, Sequence, cast

import numpy as np

from .rows import Rows, training_rows
from .cpu import one_blas_thread
from .stacked_cpu import StackedCpuEngine

if TYPE_CHECKING:
    from ..backends import Array
    from ..stack import NetworkStack
    from .stacked import StackedSettings

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


def workers_for(stack: "NetworkStack", n: int, asked: Optional[int]) -> int:
    """How many groups (this process and workers) train ``stack``: ``asked`` when
    given, else one per CPU for a stack whose epoch is large enough to pay for the
    workers' start (:data:`WORKERS_FROM`), else 1. Never more than the networks."""
    from ..parameters import n_parameters

    K = len(stack)
    if asked is not None:
        return max(1, min(asked, K))
    if n * K * n_parameters(stack.sizes) < WORKERS_FROM:
        return 1
    return max(1, min(default_workers(), K))


class GroupRows:
    """Networks ``a`` to ``b - 1`` of a stack as :class:`StackedCpuEngine` reads a stack:
    views of their rows, so the group's engine trains the stack's own parameters."""

    def __init__(self, stack: Any, a: int, b: int) -> None:
        self.sizes, self.dtype, self.cost = stack.sizes, stack.dtype, stack.cost
        self.backend = stack.backend
        self.weights = [w[a:b] for w in stack.weights]
        self.biases = [bias[a:b] for bias in stack.biases]
        self.count = b - a

    def __len__(self) -> int:
        return self.count


#: A worker's program: this process's ``sys.path`` first (so it imports the very gpunet
#: this process runs, installed or from a checkout), then the loop.
BOOTSTRAP = ("import os, sys; "
             "sys.path[:0] = os.environ['GPUNET_WORKER_PATH'].split(os.pathsep); "
             "from gpunet.engines.stacked_workers import worker_main; worker_main()")


class WorkerFailed(RuntimeError):
    """A worker process of the stacked CPU engine failed or died."""


class WorkerStackedCpuEngine:
    """The stacked CPU engine with the networks split into groups, one process each."""

    name = "cpu"

    def __init__(self, stack: "NetworkStack", X: "Array", Y: "Array",
                 settings: "StackedSettings", workers: int) -> None:
        import dataclasses

        K = len(stack)
        workers = max(1, min(workers, K))
        bounds = [K * i // workers for i in range(workers + 1)]
        self.groups = list(zip(bounds[:-1], bounds[1:]))
        self.stack = stack
        # The training rows once for every group (MNIST: 8-bit codes, 39 MB, which is
        # also what crosses to each worker). The local group's engine checks the stack
        # (NumPy, the book's costs) before any worker starts.
        data = training_rows(X, Y, np.dtype(stack.dtype))
        a, b = self.groups[0]
        self.local = StackedCpuEngine(
            cast(Any, GroupRows(stack, a, b)), X, Y,
            dataclasses.replace(settings, eta=settings.eta[a:b], lmbda=settings.lmbda[a:b]),
            data)
        self.workers: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _stop_all, self.workers)
        try:
            for a, b in self.groups[1:]:
                self.workers.append(_Worker({
                    "sizes": list(stack.sizes), "dtype": np.dtype(stack.dtype).name,
                    "cost": stack.cost.__name__, "count": b - a,
                    "mini_batch_size": settings.mini_batch_size,
                    "eta": settings.eta[a:b], "lmbda": settings.lmbda[a:b]}, data))
        except BaseException:
            self.close()
            raise

    def train_epoch(self, permutations: np.ndarray) -> None:
        """One epoch of every group: the workers' groups start first, then this
        process trains its own; the stack's rows of each worker are replaced by what
        it sends back (only once every group has finished, so an interrupted epoch
        leaves the whole stack at the last completed one)."""
        params = self.stack.parameters
        a, b = self.groups[0]
        before = params[a:b].copy()
        try:
            for worker, (c, d) in zip(self.workers, self.groups[1:]):
                worker.send(("epoch", np.ascontiguousarray(params[c:d]),
                             np.ascontiguousarray(permutations[c:d])))
            with one_blas_thread():  # as in the workers: every core is busy
                self.local.train_epoch(permutations[a:b])
            trained = [worker.receive() for worker in self.workers]
        except BaseException:
            params[a:b] = before  # the stack stays at the last completed epoch
            self.close()
            raise
        for rows, (a, b) in zip(trained, self.groups[1:]):
            params[a:b] = rows

    def close(self) -> None:
        """Stop the workers (idempotent); the engine cannot train after this."""
        self._finalizer()


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, setup: dict[str, Any], data: Rows) -> None:
        env = dict(os.environ, **ONE_BLAS_THREAD,
                   GPUNET_WORKER_PATH=os.pathsep.join(p for p in sys.path if p))
        try:
            self.process = subprocess.Popen([sys.executable, "-c", BOOTSTRAP],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            env=env)
        except OSError as error:
            raise WorkerFailed(
                f"could not start a worker process of the stacked CPU engine with "
                f"{sys.executable!r}: {error}. Train in one process with --workers 1 "
                f"(NetworkStack.SGD(..., workers=1)).") from None
        # The setup (the training rows: 39 MB for MNIST) is written while the worker
        # starts (~0.3 s of imports) and this process trains its first group.
        self._setup_error: Optional[BaseException] = None
        self._setup = threading.Thread(target=self._send_setup, args=(setup, data),
                                       name="gpunet-worker-setup", daemon=True)
        self._setup.start()

    def _send_setup(self, setup: dict[str, Any], data: Rows) -> None:
        try:
            self._write(("setup", setup, data))
        except BaseException as error:  # raised again by the next send
            self._setup_error = error

    def send(self, message: Any) -> None:
        self._setup.join()
        if self._setup_error is not None:
            raise self._setup_error
        self._write(message)

    def _write(self, message: Any) -> None:
        try:
            assert self.process.stdin is not None
            pickle.dump(message, self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.flush()
        except (OSError, ValueError):  # a broken or (after stop) closed pipe
            raise self._died() from None

    def receive(self) -> Any:
        try:
            assert self.process.stdout is not None
            kind, payload = pickle.load(self.process.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            raise self._died() from None
        if kind == "error":
            raise WorkerFailed(f"a worker process of the stacked CPU engine failed:\n"
                               f"{payload}")
        return payload

    def _died(self) -> WorkerFailed:
        code = self.process.poll()
        if code is None:
            self.process.kill()
            code = self.process.wait()
        return WorkerFailed(
            f"a worker process of the stacked CPU engine stopped (exit code {code}); "
            f"its error, if any, is above. Train in one process with --workers 1 "
            f"(NetworkStack.SGD(..., workers=1)).")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._setup.join()  # its write fails now that the worker is gone
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass


def _stop_all(workers: Sequence[_Worker]) -> None:
    for worker in workers:
        worker.stop()


class _WorkerStack:
    """What a worker's :class:`StackedCpuEngine` reads as its stack: its group's
    parameter rows, received each epoch."""

    def __init__(self, setup: dict[str, Any]) -> None:
        from ..backends import get_backend
        from ..costs import get_cost
        from .stacked import stacked_layers

        self.sizes = list(setup["sizes"])
        self.dtype = setup["dtype"]
        self.cost = get_cost(setup["cost"])
        self.backend = get_backend("cpu")
        self.count = int(setup["count"])
        self.parameters, self.weights, self.biases = stacked_layers(
            self.sizes, self.count, np, self.dtype)

    def __len__(self) -> int:
        return self.count


def worker_main(stdin: Optional[BinaryIO] = None, stdout: Optional[BinaryIO] = None) -> None:
    """A worker's loop: set up a group's engine, then train an epoch per message."""
    import signal

    from .stacked import StackedSettings

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops its workers
    if stdin is None or stdout is None:
        stdin = sys.stdin.buffer
        # The pipe to the parent is this process's stdout; anything else printing there
        # (a warning) goes to stderr instead.
        stdout = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    engine: Optional[StackedCpuEngine] = None
    stack: Optional[_WorkerStack] = None
    while True:
        try:
            message = pickle.load(stdin)
        except EOFError:
            return
        try:
            if message[0] == "setup":
                _, setup, data = message
                stack = _WorkerStack(setup)
                settings = StackedSettings(
                    epochs=1, mini_batch_size=setup["mini_batch_size"],
                    eta=tuple(setup["eta"]), lmbda=tuple(setup["lmbda"]), verbose=False)
                n = data.n  # X and Y only give the number of examples when data is given
                engine = StackedCpuEngine(cast(Any, stack), np.empty((n, 0)),
                                          np.empty((n, 0)), settings, data)
                continue
            _, params, permutations = message
            assert engine is not None and stack is not None
            stack.parameters[...] = params
            engine.train_epoch(permutations)
            reply: tuple[str, Any] = ("done", stack.parameters)
        except Exception:
            reply = ("error", traceback.format_exc())
        pickle.dump(reply, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()
