"""What :class:`gpunet.Network` and :class:`gpunet.NetworkStack` share: the settings
that make a network of the book, checked once, and its initial parameters.

Both are K ≥ 1 networks of one shape (a ``Network`` is one, with the book's API): their
``sizes``, cost, initializer and dtype are checked by the same rules
(:mod:`gpunet.model.arguments`), they live on a device (:mod:`gpunet.backends`), and
each network's initial parameters come from its own generator through
:func:`gpunet.model.initialization.initial_parameters`, so network ``k`` of a stack
starts exactly where ``Network(sizes, seed=seeds[k])`` starts.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Callable, Generic, Optional, Sequence, TypeVar, Union, cast

import numpy as np

from ..backends import Backend, DeviceLike, get_backend
from ..engines import EngineName
from ..model.activations import (Activation, HiddenSpec, checked_hidden, layer_activations)
from ..model.arguments import as_values, check_choice, check_dtype, check_sizes
from ..model.costs import Cost, get_cost
from ..model.initialization import INITS, InitName, initial_parameters
from ..model.parameters import flat_layers
from ..training.loop import TrainingData, checked_data
from ..training.notebook import in_notebook
from ..training.settings import TrainingSettings
from ..training.state import RunState

Trained = TypeVar("Trained")
"""What ``SGD`` returns: a ``Network``'s :class:`~gpunet.training.history.History`, a
stack's list of them."""

FloatOrList = Union[float, Sequence[float]]


class NetworkModel(Generic[Trained]):
    """The settings of K ≥ 1 networks of one shape, checked: ``sizes`` (a copy),
    ``cost`` (the class), ``init``, ``dtype``, the hidden layers' ``activation``; then,
    with :meth:`_use_device`, the ``backend`` and its array module ``xp``; and their
    one ``SGD``."""

    backend: Backend

    def __init__(self, sizes: Sequence[int], cost: Union[Cost, str], init: str,
                 dtype: Any, activation: HiddenSpec = "sigmoid") -> None:
        self._sizes = check_sizes(sizes)
        self.cost = get_cost(cost)
        self.dtype = check_dtype(dtype)
        self.init = cast(InitName, check_choice(init, INITS, "init"))
        self._activation = checked_hidden(activation, len(self._sizes) - 2)

    @property
    def activation(self) -> Union[type[Activation], tuple[type[Activation], ...]]:
        """The hidden layers' activation (chapter 3, "Other models of artificial
        neuron"): one class for all of them (the sigmoid by default), or a tuple of one
        per hidden layer. Assigning a name, a class or a list sets it, checked as the
        constructor's ``activation=``; the output layer is the cost's (:attr:`output`)."""
        return self._activation

    @activation.setter
    def activation(self, activation: HiddenSpec) -> None:
        self._activation = checked_hidden(activation, len(self._sizes) - 2)

    @property
    def output(self) -> str:
        """The output layer's activation, as its cost declares it: ``"sigmoid"``, or
        ``"softmax"`` with the log-likelihood cost (chapter 3, "Softmax")."""
        return layer_activations(self)[-1].name

    @property
    def sizes(self) -> list[int]:
        """Neurons per layer, input layer first (a copy)."""
        return list(self._sizes)

    def _use_device(self, device: DeviceLike) -> None:
        self.backend = get_backend(device)
        self.xp = self.backend.xp

    def _scope(self) -> Any:
        """The networks' device made current for this thread (CuPy's current device is
        per thread)."""
        return self.backend.scope()

    def initial_parameters(self, rng: np.random.Generator) -> tuple[list[np.ndarray],
                                                                    list[np.ndarray]]:
        """One network's ``(weights, biases)`` drawn from ``rng`` with this model's
        initializer (host float64, the book's shapes)."""
        return initial_parameters(self._sizes, rng, self.init, self.init_scales())

    def init_scales(self) -> list[float]:
        """Each layer's factor on the default initial weights' standard deviation
        (its activation's ``init_scale``: √2 for a ReLU layer, else 1)."""
        return [a.init_scale for a in layer_activations(self)]

    def initial_row(self, rng: np.random.Generator) -> np.ndarray:
        """One network's initial parameters drawn from ``rng`` as a flat host float64
        buffer (:mod:`gpunet.model.parameters`' layout)."""
        flat, weight_views, bias_views = flat_layers(self._sizes, np, np.float64)
        weights, biases = self.initial_parameters(rng)
        for view, value in zip([*weight_views, *bias_views], [*weights, *biases]):
            view[...] = value
        row: np.ndarray = flat  # flat_layers is typed Any (any array module)
        return row

    # ------------------------------------------------------------------- SGD
    @property
    @abstractmethod
    def _network_count(self) -> int:
        """K, how many networks ``SGD`` trains."""

    @abstractmethod
    def train(self, data: TrainingData, settings: TrainingSettings,
              state: Optional[RunState] = None, *, checkpoint: Any = None,
              progress: bool = False) -> Trained:
        """The epochs of :meth:`SGD` on checked data and settings, from ``state`` (a
        resumed run's; default: the start)."""

    def _check_trainable(self) -> None:
        """Refuse to train what ``SGD`` cannot train as asked (a ``Network`` subclass
        that overrides the book's per-example methods)."""

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
        early_stopping_n: int = 0,
        *,
        test_data: Any = None,
        verbose: bool = True,
        callback: Optional[Callable[[Any], None]] = None,
        engine: EngineName = "auto",
        workers: Optional[int] = None,
        checkpoint: Any = None,
        progress: Optional[bool] = None,
        momentum: FloatOrList = 0.0,
        l1: FloatOrList = 0.0,
        keep_best: bool = False,
        eta_schedule: Optional[str] = None,
        eta_schedule_n: int = 10,
        eta_floor: float = 1 / 128,
        dropout: FloatOrList = 0.0,
    ) -> Trained:
        """Train by mini-batch stochastic gradient descent (chapter 1, "Learning with
        gradient descent"; chapter 3, "Regularization").

        The signature is ``network2.py``'s; ``test_data=`` (``network.py``'s name) is
        ``evaluation_data`` with accuracy monitored. Each epoch shuffles the training
        data with each network's generator, steps through mini-batches of
        ``mini_batch_size`` (the last may be smaller), then computes the monitored
        metrics on the device and copies those few numbers to the host. In a
        :class:`gpunet.NetworkStack` every network sees the same ``training_data`` in
        its own order, and ``eta`` and ``lmbda`` may each be one number for all networks
        or a list with one per network.

        Prints the book's ``Epoch j: k / n`` line per epoch when ``verbose`` (a stack:
        one line with each network's accuracy); calls ``callback(record)`` with the
        epoch's record (see :class:`gpunet.History`; a stack: ``callback(records)``
        with its K records, ``train_seconds`` the whole stack's epoch).

        ``engine`` chooses how the steps of an epoch run (:mod:`gpunet.engines`):
        ``"auto"`` (the best for these networks and device), ``"eager"``, ``"fused"``
        (CUDA) or ``"cpu"`` (NumPy); the history's ``engine`` attribute says which ran.
        ``workers`` is how many processes the CPU engine splits a stack's networks
        over, this one included (default: one per CPU when the stack is large enough
        to pay for starting them, else 1; the results do not depend on it).

        ``checkpoint=PATH`` (or a :class:`gpunet.training.checkpoint.CheckpointWriter`)
        writes, atomically after every epoch, what :func:`gpunet.resume` needs to
        continue the run bit for bit. ``progress=True`` draws a progress line on a
        terminal (from host-side counters only: no device synchronisation inside an
        epoch); ``None`` (the default) draws a bar in a Jupyter notebook where tqdm is
        installed and nothing elsewhere, ``False`` nothing.

        Ctrl-C (``KeyboardInterrupt``) stops promptly: the parameters and generators go
        back to the end of the last completed epoch, the checkpoint is brought up to
        it, and the interrupt propagates; ``net.history`` (a stack's ``histories``)
        holds the completed epochs.

        Chapter 3's further techniques, each off by default (and then training is what
        it was without them, bit for bit):

        * ``early_stopping_n`` (the later ``network2.py``'s, in its place): a network
          stops once that many epochs in a row have not beaten its best accuracy on
          ``evaluation_data`` (give the validation set, and
          ``monitor_evaluation_accuracy=True``); one network's ``SGD`` then returns,
          in a stack the others go on.
        * ``keep_best=True``: each network's best epoch by that accuracy is kept as a
          device copy; ``history.best_epoch`` and ``history.best_parameters`` (a flat
          buffer: ``net.parameters[...] = net.history.best_parameters``).
        * ``eta_schedule="halve"``: the book's schedule, η halved after
          ``eta_schedule_n`` (10) epochs without a better accuracy, the network stopped
          once η is ``eta_floor`` (1/128) of its start; each record's ``eta``.
        * ``momentum=μ`` (chapter 3, eq. 107 and 108; ``0 <= μ < 1``) and ``l1=λ₁``
          (eq. 95 to 97, beside L2's ``lmbda``), one number or one per network.
        * ``dropout=p`` (chapter 3, "Dropout"; ``0 <= p < 1``, the book's 0.5; one number
          or one per network): each mini-batch step removes each hidden neuron with
          probability ``p``, its masks drawn from the network's seed, epoch and step by
          a counter-based generator, the same on every engine
          (:mod:`gpunet.model.dropout`); the monitored metrics evaluate with the weights
          out of hidden layers scaled by ``1 - p``. The network keeps the trained
          (unscaled) weights: evaluate it afterwards with
          ``gpunet.model.dropout.evaluation_weights(net.weights, p)``.

        Every argument is checked before anything is trained, by the rules
        :class:`~gpunet.training.settings.TrainingSettings` declares (the same for
        :func:`gpunet.resume`): ``epochs`` and ``mini_batch_size`` positive integers,
        the mini-batch no larger than the training data, ``eta`` > 0 and ``lmbda`` >= 0
        numbers, the monitor flags, ``verbose`` and ``progress`` ``True`` or ``False``,
        ``callback`` a function or ``None``, ``engine`` a known name, ``checkpoint`` a
        path, a writer or ``None``; a mistake is a ``ValueError`` saying what to change.

        Returns, for a :class:`gpunet.Network`, ``network2.py``'s tuple of four
        per-epoch lists, ``(evaluation_cost, evaluation_accuracy, training_cost,
        training_accuracy)``, as a :class:`gpunet.History` (a tuple for every purpose:
        ``json.dump``, pickle, ``==``, indexing) whose attributes hold the per-epoch
        records, timings and engine, the same object as ``net.history``; for a stack,
        one :class:`gpunet.History` per network, in the stack's order.
        """
        self._check_trainable()
        settings = TrainingSettings(  # checks every argument (its declaration's rules)
            epochs=epochs, mini_batch_size=mini_batch_size, eta=as_values(eta),
            lmbda=as_values(lmbda), monitor_evaluation_cost=monitor_evaluation_cost,
            monitor_evaluation_accuracy=monitor_evaluation_accuracy,
            monitor_training_cost=monitor_training_cost,
            monitor_training_accuracy=monitor_training_accuracy, verbose=verbose,
            callback=callback, engine=engine, workers=workers,
            momentum=as_values(momentum), l1=as_values(l1),
            early_stopping_n=early_stopping_n, keep_best=keep_best,
            eta_schedule=eta_schedule, eta_schedule_n=eta_schedule_n, eta_floor=eta_floor,
            dropout=as_values(dropout), for_networks=self._network_count)
        data, settings = checked_data(settings, training_data, evaluation_data, test_data,
                                      self._sizes)
        with self._scope():
            return self.train(data, settings, checkpoint=checkpoint,
                              progress=in_notebook() if progress is None else progress)

