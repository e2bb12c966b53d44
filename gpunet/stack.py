"""Many networks at once: K networks of the same sizes trained in lockstep.

The book never trains just one network: chapter 1 reports a best of three runs and
chapter 3 compares learning rates ("How to choose a neural network's
hyper-parameters?") and regularization parameters side by side. A
:class:`NetworkStack` trains such a set together, as one batch of stacked matrices
(:mod:`gpunet.engines.stacked`): each network with its own seed (its initial
parameters and its per-epoch shuffles drawn exactly as ``Network(sizes, seed=s)``
draws them), its own ``η`` and its own ``λ``. Each network's run is the run a single
:class:`gpunet.Network` with the same settings makes (the same per-epoch accuracy; in
float64 the same parameters to rounding).

>>> stack = NetworkStack([784, 30, 10], seeds=[0, 1, 2], cost="cross-entropy")
>>> histories = stack.SGD(data.training, 30, 10, eta=[0.025, 0.25, 2.5],
...                       test_data=data.test)
>>> nets = stack.networks()  # ordinary gpunet.Network objects
"""

from __future__ import annotations

import contextlib
import copy
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence, Union, cast

import numpy as np

from .arguments import (
    check_dtype,
    check_eta,
    check_lmbda,
    check_positive_int,
    check_seed,
    check_sizes,
)
from .backends import Array, Backend, DeviceLike, get_backend
from .backprop import feedforward
from .costs import Cost, CrossEntropyCost, get_cost
from .datasets import Examples, sgd_data
from .engines.stacked import StackedSettings, select_stacked_engine, stacked_layers
from .divergence import quiet_overflow
from .history import History
from .memory import check_network_fits
from .network import DTypeLike, InitName, Network, correct, fetch, total_cost
from .progress import Progress
from .signals import interrupts_deferred, terminate_as_interrupt

if TYPE_CHECKING:
    from .checkpoint import CheckpointWriter

FloatOrList = Union[float, Sequence[float]]


class NetworkStack:
    """K sigmoid networks of the same ``sizes``, cost, init and dtype, one per seed.

    Args:
        sizes: neurons per layer, input layer first, e.g. ``[784, 30, 10]``.
        seeds: one seed per network (distinct or not); network ``k`` starts from the
            parameters ``Network(sizes, init=init, seed=seeds[k])`` starts from and
            shuffles each epoch as that network would.
        cost, init, dtype, device: as for :class:`gpunet.Network`.

    ``parameters`` is one ``(K, P)`` device array whose row ``k`` is network ``k``'s
    flat buffer (:mod:`gpunet.parameters`); ``weights[l]`` ``(K, n_{l+1}, n_l)`` and
    ``biases[l]`` ``(K, n_{l+1}, 1)`` are views of it.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        seeds: Sequence[int],
        cost: Union[Cost, str] = CrossEntropyCost,
        init: InitName = "default",
        dtype: DTypeLike = "float32",
        device: DeviceLike = "auto",
    ) -> None:
        self.sizes = check_sizes(sizes)
        self.cost = get_cost(cost)
        self.dtype = check_dtype(dtype)
        if init not in ("default", "large"):
            raise ValueError(f"unknown init {init!r}; use 'default' or 'large'.")
        self.init = init
        if isinstance(seeds, (int, np.integer)) or not hasattr(seeds, "__len__"):
            raise ValueError(f"seeds must be a list of seeds, one per network, got {seeds!r}.")
        self.seeds = [check_seed(s) for s in seeds]
        if not self.seeds:
            raise ValueError("seeds is empty; give at least one seed (one per network).")
        self.backend: Backend = get_backend(device)
        self.xp = self.backend.xp
        check_network_fits(self.sizes, self.dtype, count=len(self.seeds),
                           backend=self.backend)  # before allocating (gpunet.memory)
        # Each network's generator draws its initial parameters exactly as a Network
        # with that seed does (the same code, on the host, in float64), and then keeps
        # drawing that network's per-epoch permutations.
        host, self.rngs = [], []
        for seed in self.seeds:
            proto = Network(self.sizes, cost=self.cost, init=init, dtype="float64",
                            device="cpu", seed=seed)
            host.append(proto.parameters)
            self.rngs.append(proto.rng)
        with self._scope():
            self._parameters, self._weights, self._biases = stacked_layers(
                self.sizes, len(self.seeds), self.xp, self.dtype)
            self.backend.copy_from_host(self._parameters, np.stack(host))
        #: the latest SGD's histories while they grow (completed epochs after Ctrl-C),
        #: and the networks that diverged in it: index -> the epoch (gpunet.divergence)
        self.histories: list[History] = []
        self.diverged: dict[int, int] = {}

    def _scope(self) -> Any:
        """The stack's device made current for this thread (CuPy's current device is
        per thread)."""
        return self.backend.scope()

    def __len__(self) -> int:
        return len(self.seeds)

    def __repr__(self) -> str:
        return (f"NetworkStack({self.sizes}, seeds={self.seeds}, cost={self.cost.__name__}, "
                f"init={self.init!r}, dtype={np.dtype(self.dtype).name!r}, "
                f"device={self.backend.device!r})")

    # ------------------------------------------------------------ parameters
    @property
    def parameters(self) -> Array:
        """``(K, P)``: row ``k`` is network ``k``'s flat parameter buffer."""
        return self._parameters

    @property
    def weights(self) -> list[Array]:
        """``weights[l]``: ``(K, n_{l+1}, n_l)``, a view of :attr:`parameters`."""
        return self._weights

    @property
    def biases(self) -> list[Array]:
        """``biases[l]``: ``(K, n_{l+1}, 1)``, a view of :attr:`parameters`."""
        return self._biases

    def network(self, k: int) -> Network:
        """Network ``k`` as an ordinary :class:`gpunet.Network` (its own copy).

        It has the stack's sizes, cost, init, dtype and device, network ``k``'s seed,
        parameters and generator state, so training it further continues exactly the
        run a single network would have made.
        """
        if not isinstance(k, (int, np.integer)) or not -len(self) <= k < len(self):
            raise ValueError(f"network index {k!r} is out of range for {len(self)} networks.")
        net = Network(self.sizes, cost=self.cost, init=self.init, dtype=self.dtype,
                      device=self.backend, seed=self.seeds[k])
        with self._scope():
            net.set_parameters([w[k] for w in self._weights], [b[k] for b in self._biases])
        net.rng = copy.deepcopy(self.rngs[k])
        return net

    def networks(self) -> list[Network]:
        """Every network of the stack as an ordinary :class:`gpunet.Network`, in order."""
        return [self.network(k) for k in range(len(self))]

    def feedforward(self, a: Any) -> Array:
        """Every network's output for the rows of ``a`` (``(n, n_in)``): ``(K, n, n_out)``.

        Network ``k``'s slice is exactly what ``self.network(k).feedforward(a)`` gives.
        """
        with self._scope():
            X = self.backend.asarray(np.asarray(a, dtype=self.dtype))
            if X.ndim != 2 or X.shape[1] != self.sizes[0]:
                raise ValueError(f"feedforward got an input of shape {tuple(X.shape)}; pass "
                                 f"(n, {self.sizes[0]}) with one example per row.")
            return self.xp.stack([self._forward(k, X) for k in range(len(self))])

    # ------------------------------------------------------------------- SGD
    def SGD(
        self,
        training_data: Any,
        epochs: int,
        mini_batch_size: int,
        eta: FloatOrList,
        lmbda: FloatOrList = 0.0,
        evaluation_data: Any = None,
        monitor_evaluation_cost: bool = False,
        monitor_evaluation_accuracy: bool = False,
        monitor_training_cost: bool = False,
        monitor_training_accuracy: bool = False,
        *,
        test_data: Any = None,
        verbose: bool = True,
        callback: Optional[Callable[[list[dict[str, Any]]], None]] = None,
        engine: str = "auto",
        workers: Optional[int] = None,
        checkpoint: Any = None,
        progress: bool = False,
    ) -> list[History]:
        """Train every network by mini-batch SGD (chapter 1; chapter 3, "Regularization").

        The arguments are :meth:`gpunet.Network.SGD`'s, except that ``eta`` and
        ``lmbda`` may each be one number for all networks or a list with one per
        network. Every network sees the same ``training_data`` in its own order.

        Prints one line per epoch (each network's evaluation accuracy) when
        ``verbose``; calls ``callback(records)`` after each epoch with the K records
        (see :class:`gpunet.History`; ``train_seconds`` is the whole stack's epoch).
        ``engine`` chooses how the steps run (:mod:`gpunet.engines.stacked`);
        ``workers`` is how many processes the stacked CPU engine splits the networks
        over, this one included (default: one per CPU when the stack is large enough
        to pay for starting them, else 1; the results do not depend on it).

        ``checkpoint=PATH`` (or a :class:`gpunet.checkpoint.CheckpointWriter`) writes,
        atomically after every epoch, the whole stack's state (every network's
        parameters, generator and history), which :func:`gpunet.resume` continues bit
        for bit; ``progress=True`` draws a progress line on a terminal, as for
        :meth:`gpunet.Network.SGD`.

        Returns one :class:`gpunet.History` per network, in the stack's order.
        """
        epochs = check_positive_int(epochs, "epochs")
        m = check_positive_int(mini_batch_size, "mini_batch_size")
        etas = self._per_network(eta, "eta", check_eta)
        lmbdas = self._per_network(lmbda, "lmbda", check_lmbda)
        train, evaluation, testing = sgd_data(
            training_data, evaluation_data, test_data,
            monitor_evaluation_cost or monitor_evaluation_accuracy or test_data is not None,
            self.sizes[0], self.sizes[-1])
        monitor_evaluation_accuracy = monitor_evaluation_accuracy or testing
        settings = StackedSettings(
            epochs=epochs, mini_batch_size=m, eta=etas, lmbda=lmbdas,
            monitor_evaluation_cost=monitor_evaluation_cost,
            monitor_evaluation_accuracy=monitor_evaluation_accuracy,
            monitor_training_cost=monitor_training_cost,
            monitor_training_accuracy=monitor_training_accuracy,
            verbose=verbose, callback=callback, engine=engine,
            workers=None if workers is None else check_positive_int(workers, "workers"),
        )
        from .checkpoint import as_writer

        with self._scope():
            return self._run(train, evaluation, settings, checkpoint=as_writer(checkpoint),
                             progress=progress)

    def _per_network(self, value: FloatOrList, name: str,
                     check: Callable[[Any], float]) -> tuple[float, ...]:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            return (check(value),) * len(self)
        values = tuple(check(v) for v in cast(Sequence[Any], value))
        if len(values) != len(self):
            raise ValueError(f"{name} has {len(values)} values for {len(self)} networks; "
                             f"give one number, or one per network.")
        return values

    def _run(self, train: Examples, evaluation: Optional[Examples],
             settings: StackedSettings, *, start_epoch: int = 0,
             histories: Optional[list[History]] = None,
             diverged: Optional[dict[int, int]] = None,
             seconds: Optional[list[float]] = None,
             checkpoint: Optional["CheckpointWriter"] = None,
             progress: bool = False) -> list[History]:
        """The epochs, as :func:`gpunet.training.run_sgd` runs them for one network.

        Epochs ``start_epoch`` to ``settings.epochs - 1`` run; a resumed run passes the
        earlier epochs' ``histories``, ``diverged`` networks and epoch ``seconds``."""
        X, Y = self.backend.asarray(train.X, self.dtype), self.backend.asarray(train.Y, self.dtype)
        engine = select_stacked_engine(self, X, Y, settings)
        held = checkpoint.hold() if checkpoint is not None else contextlib.nullcontext()
        try:
            with held, terminate_as_interrupt():  # SIGTERM keeps the epochs as Ctrl-C does
                return self._epochs(engine, train, evaluation, settings, X, Y, start_epoch,
                                    histories, diverged, seconds, checkpoint, progress)
        finally:
            close = getattr(engine, "close", None)  # engines with worker processes
            if close is not None:
                close()

    def _epochs(self, engine: Any, train: Examples, evaluation: Optional[Examples],
                settings: StackedSettings, X: Array, Y: Array, start_epoch: int,
                histories: Optional[list[History]], diverged: Optional[dict[int, int]],
                seconds: Optional[list[float]], checkpoint: Optional["CheckpointWriter"],
                progress: bool) -> list[History]:
        """Train and measure epoch by epoch with ``engine`` (see :meth:`_run`).

        As :func:`gpunet.training.run_sgd` for one network: the parameters and the
        generators at the last epoch boundary are kept, and Ctrl-C or SIGTERM inside an
        epoch puts every network back there (``self.histories`` holds the completed
        epochs; the checkpoint, if any, is written after every epoch). With the
        metrics, one flag per network says whether its parameters are all finite (same
        single copy to the host); a network that diverged (:mod:`gpunet.divergence`)
        goes back to its last finite epoch and stays there, its records from then on
        are ``{"epoch", "train_seconds", "diverged": True}`` (not added to its
        history), ``self.diverged[k]`` is the epoch it diverged in, and the others go on.
        """
        from .checkpoint import labels_fingerprint

        asarray, K = self.backend.asarray, len(self)
        n = len(train)
        if settings.monitor_evaluation:
            assert evaluation is not None  # checked by SGD
            X_eval, Y_eval = asarray(evaluation.X, self.dtype), asarray(evaluation.Y, self.dtype)
            labels_eval = asarray(evaluation.labels)
        if settings.monitor_training_accuracy:
            labels_train = asarray(train.labels)

        name = f"stacked-{engine.name}"
        if histories is None:
            histories = [History(engine=name) for _ in range(K)]
        for history in histories:
            history.engine = name
        self.histories, self.diverged = histories, dict(diverged or {})
        epoch_seconds = list(seconds or [])
        data_info = {"n_train": n, "labels_sha256": labels_fingerprint(train),
                     "n_evaluation": None if evaluation is None else len(evaluation)}
        saved = self.xp.empty_like(self._parameters)  # the last epoch boundary
        saved[...] = self._parameters
        saved_rngs = [rng.bit_generator.state for rng in self.rngs]
        written = -1

        def write_checkpoint(epochs_done: int) -> None:
            nonlocal written
            if checkpoint is not None and written != epochs_done:
                checkpoint.write_stack(self, settings, epochs_done, histories,
                                       self.diverged, epoch_seconds, data_info, saved_rngs,
                                       saved)
                written = epochs_done

        bar = Progress(settings.epochs, n, engine, first_epoch=start_epoch) if progress else None
        try:
            for j in range(start_epoch, settings.epochs):
                if bar is not None:
                    bar.start_epoch(j)
                saved_rngs = self._epoch(j, engine, settings, histories, saved, saved_rngs,
                                         n, X, Y, evaluation,
                                         X_eval if settings.monitor_evaluation else None,
                                         Y_eval if settings.monitor_evaluation else None,
                                         labels_eval if settings.monitor_evaluation else None,
                                         labels_train if settings.monitor_training_accuracy
                                         else None, epoch_seconds, bar, write_checkpoint)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: back to the last completed epoch
            if bar is not None:
                bar.close()
            with interrupts_deferred():
                self._parameters[...] = saved
                for rng, state in zip(self.rngs, saved_rngs):
                    rng.bit_generator.state = state
                write_checkpoint(len(epoch_seconds))
            raise
        finally:
            if bar is not None:
                bar.close()
        return histories

    def _epoch(self, j: int, engine: Any, settings: StackedSettings,
               histories: list[History], saved: Array, saved_rngs: list[Mapping[str, Any]],
               n: int, X: Array, Y: Array, evaluation: Optional[Examples], X_eval: Any,
               Y_eval: Any, labels_eval: Any, labels_train: Any,
               epoch_seconds: list[float], bar: Optional[Progress],
               write_checkpoint: Callable[[int], None]) -> list[Mapping[str, Any]]:
        """Epoch ``j`` of every network, measured, committed and checkpointed; returns
        the generators' states at its end (the new epoch boundary)."""
        backend, K, xp = self.backend, len(self), self.xp
        start = time.perf_counter()
        with quiet_overflow():  # divergence is reported below, once per network
            engine.train_epoch(np.stack([rng.permutation(n) for rng in self.rngs]))
            backend.synchronize()
        seconds = time.perf_counter() - start
        if bar is not None:
            bar.end_epoch(seconds)

        finite_flags = xp.isfinite(self._parameters).all(axis=1)
        names: list[str] = ["finite"]
        values: list[Array] = [finite_flags[k] for k in range(K)]  # K per name, one copy
        metrics: tuple[tuple[str, bool, Callable[[int], Array]], ...] = (
            ("training_cost", settings.monitor_training_cost,
             lambda k: self._total_cost(k, X, Y, settings.lmbda[k])),
            ("training_correct", settings.monitor_training_accuracy,
             lambda k: self._correct(k, X, labels_train)),
            ("evaluation_cost", settings.monitor_evaluation_cost,
             lambda k: self._total_cost(k, X_eval, Y_eval, settings.lmbda[k])),
            ("evaluation_correct", settings.monitor_evaluation_accuracy,
             lambda k: self._correct(k, X_eval, labels_eval)),
        )
        with quiet_overflow():  # a diverged network's metrics are NaN, and unused
            for name, wanted, metric in metrics:
                if wanted:
                    names.append(name)
                    values.extend(metric(k) for k in range(K))
            fetched = self._fetch(values)
        for k in range(K):
            if fetched[k] != 1.0:
                self.diverged.setdefault(k, j)
        records = []
        with interrupts_deferred():  # the epoch is complete: commit it whole
            for k in self.diverged:  # back to its last finite epoch, and it stays there
                self._parameters[k] = saved[k]
                self.rngs[k].bit_generator.state = saved_rngs[k]
            saved[...] = self._parameters
            for k in range(K):
                record: dict[str, Any] = {"epoch": j, "train_seconds": seconds}
                if k in self.diverged:
                    record["diverged"] = True
                    records.append(record)
                    continue
                for i, name in enumerate(names[1:], 1):
                    value = fetched[i * K + k]
                    record[name] = int(round(value)) if name.endswith("correct") else value
                if settings.monitor_training_accuracy:
                    record["training_total"] = n
                if settings.monitor_evaluation_accuracy:
                    # not None: asserted above whenever evaluation is monitored
                    record["evaluation_total"] = len(evaluation)  # type: ignore[arg-type]
                histories[k].append(record)
                records.append(record)
            epoch_seconds.append(seconds)
            states = [rng.bit_generator.state for rng in self.rngs]
        saved_rngs[:] = states  # the boundary the checkpoint writes
        write_checkpoint(j + 1)
        if settings.verbose:
            print(self.epoch_line(records), flush=True)
        if settings.callback is not None:
            settings.callback(records)
        return states

    @staticmethod
    def epoch_line(records: list[dict[str, Any]]) -> str:
        """One compact line for an epoch of the stack: each network's accuracy."""
        r0 = next((r for r in records if not r.get("diverged")), records[0])
        if "evaluation_correct" in r0:
            scores = " ".join("diverged" if r.get("diverged") else str(r["evaluation_correct"])
                              for r in records)
            return (f"Epoch {r0['epoch']}: {scores} / {r0['evaluation_total']}  "
                    f"({r0['train_seconds']:.2f} s)")
        return f"Epoch {r0['epoch']} training complete ({r0['train_seconds']:.2f} s)"

    # --------------------------------------------------------------- metrics
    # Per network, with the same code and order of operations as Network's own metrics,
    # on network k's views: a stacked network's accuracy is the single network's.
    def _forward(self, k: int, a: Array) -> Array:
        return feedforward(self.backend, [w[k] for w in self._weights],
                           [b[k] for b in self._biases], a)

    def _correct(self, k: int, X: Array, labels: Array) -> Array:
        return correct(self.backend, [w[k] for w in self._weights],
                       [b[k] for b in self._biases], X, labels)

    def _total_cost(self, k: int, X: Array, Y: Array, lmbda: float) -> Array:
        return total_cost(self.backend, self.cost, [w[k] for w in self._weights],
                          [b[k] for b in self._biases], X, Y, lmbda)

    def _fetch(self, values: list[Array]) -> list[float]:
        """Copy 0-d device metrics to the host in one transfer."""
        return fetch(self.backend, values)
