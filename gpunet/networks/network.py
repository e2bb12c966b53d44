"""A sigmoid feedforward network trained by mini-batch SGD: ``network2.py``, batched.

The book-facing facade. The mathematics and names are the book's (chapters 1 to 3):
``sizes``, ``weights[l]`` of shape ``(n_l, n_{l-1})``, ``biases[l]`` of shape
``(n_l, 1)``, ``feedforward``, ``backprop`` returning ``(nabla_b, nabla_w)``,
``update_mini_batch``, ``SGD``, ``accuracy``, ``total_cost``. Two things differ from
the book's code, both for speed:

* examples are the *rows* of a matrix, so a whole mini-batch goes through each layer as
  one matrix product (chapter 2's closing problem, :mod:`gpunet.model.backprop`);
* arrays live on the network's backend (NumPy or CuPy): the training data is copied to
  the device once, the training loop writes into buffers allocated once, and nothing
  comes back to the host inside an epoch except the few per-epoch metrics.

Where things live: the flat parameter layout in :mod:`gpunet.model.parameters`, batched
backprop in :mod:`gpunet.model.backprop`, the epoch loop in :mod:`gpunet.training.loop`, and how
an epoch's steps run (the engines) in :mod:`gpunet.engines`.

All randomness comes from one seeded NumPy ``Generator`` on the host (initial
parameters, one permutation per epoch), so a seed gives the same run on every backend.
A network built without a seed draws one from NumPy's global generator, so
``np.random.seed(s)`` before building it repeats the run, as in the book's scripts;
Python's ``random.seed`` affects nothing here (the book's ``random.shuffle`` is the
network's own generator's permutation).
"""

from __future__ import annotations

import functools
from typing import (Any, Callable, Literal, NoReturn, Optional, Sequence, TypeVar,
                    Union)

import numpy as np

from ..backends import Array, DeviceLike
from ..engines import EngineName as EngineName  # re-exported: its old home
from ..io.datasets import Examples, as_examples, check_inputs
from ..io.network_file import read_network_file, write_network_file
from ..model.arguments import check_eta, check_lmbda, check_positive_int, check_seed, check_sizes
from ..model.initialization import InitName as InitName, initial_parameters
from ..model.memory import check_network_fits
from ..model.activations import (HiddenSpec, activation_names, checked_hidden,
                                  hidden_names_tuple, is_sigmoid, layer_activations)
from ..model.backprop import Workspace, backprop_into, feedforward, sgd_step
from ..model.costs import COSTS, Cost, CrossEntropyCost
from ..model.dropout import evaluation_weights
from ..model.metrics import correct, fetch, total_cost
from ..model.parameters import as_rows, flat_layers
from ..training.history import History
from ..training.loop import TrainingData, run_sgd
from ..training.state import RunState
from ..training.settings import TrainingSettings, check_l1
from .base import NetworkModel


DTypeLike = Union[Literal["float32", "float64"], type, np.dtype]
"""``"float32"`` (the default, fast) or ``"float64"``, or the NumPy dtype itself."""

"""The values of ``engine=``: :data:`gpunet.engines.ENGINE_NAMES` (a test checks they agree)."""

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _on_device(method: _Method) -> _Method:
    """Run ``method`` with the network's device current (``Backend.scope``).

    CUDA's current device is per thread: without this, a network on ``cuda:1``, or
    one trained from another thread, would allocate and launch on the wrong device.
    Every public method that touches the device goes through here; on the CPU it
    costs one no-op context.
    """
    @functools.wraps(method)
    def scoped(self: "Network", *args: Any, **kwargs: Any) -> Any:
        with self.backend.scope():
            return method(self, *args, **kwargs)
    # functools.wraps' typed result is its _Wrapped, not _Method: same signature, though
    return scoped  # type: ignore[return-value]


def seed_from_numpy() -> int:
    """A seed for a network built without one, drawn from NumPy's global generator.

    The book's scripts call ``np.random.seed(12345678)`` ("Make results more easily
    reproducible") before building their networks, whose initializers draw from
    ``np.random``. Drawing the seed there gives gpunet's networks the same property:
    after ``np.random.seed(s)`` the same script builds the same networks and runs the
    same shuffles; without it NumPy seeds its global generator from the OS, and every
    run differs.
    """
    return int(np.random.randint(0, 2**32, dtype=np.int64))


class LayerViews(list):  # type: ignore[type-arg]  # list[Array]; Array is Any
    """``Network.weights`` / ``Network.biases``: a list with one array per layer, as in
    ``network2.py``, whose arrays are views of the network's flat parameter buffer.

    Reading an array, changing it in place (``net.weights[0][3, 4] = 0.5``) and
    assigning an item (``net.weights[0] = w``, copied into the layer after a shape
    check) all act on the network. The number of layers is fixed by ``sizes``, so
    what would change the list's length or order (``append``, ``del``, ``sort``...)
    raises ``TypeError`` instead of quietly not reaching the network. Copies
    (``copy.deepcopy(net.weights)``, pickle) are plain lists of arrays, detached from
    the network, as copying the book's lists gives.
    """

    def __init__(self, views: Sequence[Array], assign: Callable[[int, Any], None]) -> None:
        super().__init__(views)
        self._assign = assign

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            positions = range(len(self))[index]
            values = list(value)
            if len(values) != len(positions):
                raise ValueError(f"cannot assign {len(values)} arrays to {len(positions)} "
                                 "layers; the number of layers is fixed by sizes.")
            for l, v in zip(positions, values):
                self._assign(l, v)
            return
        try:
            l = range(len(self))[index]
        except IndexError:
            raise IndexError(f"layer index {index} is out of range for {len(self)} "
                             "layers.") from None
        self._assign(l, value)

    def _fixed(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a network's layers are fixed by its sizes: assign arrays to "
                        "net.weights[l] / net.biases[l], or a new list to net.weights / "
                        "net.biases, or assign net.sizes for other layers.")

    append = extend = insert = pop = remove = clear = sort = reverse = _fixed
    __delitem__ = __iadd__ = __imul__ = _fixed

    def __reduce__(self) -> tuple[type, tuple[list[Array]]]:
        """Copies and pickles are plain lists (``copy`` and ``deepcopy`` go through here
        too, instead of re-filling a ``LayerViews`` with ``append``)."""
        return list, (list(self),)


class Network(NetworkModel[History]):
    """A feedforward network of sigmoid neurons (chapter 1, "The architecture of neural networks"),
    or of chapter 3's tanh or ReLU hidden neurons with a sigmoid or softmax output layer.

    Args:
        sizes: neurons per layer, input layer first, e.g. ``[784, 30, 10]``.
        cost: ``CrossEntropyCost`` (default, as ``network2.py``), ``QuadraticCost``, or
            a name: ``"cross-entropy"``, ``"quadratic"``.
            ``"log-likelihood"`` (``LogLikelihoodCost``) makes the output layer a softmax
            layer (chapter 3, "Softmax"); the other costs go with sigmoid outputs.
        init: ``"default"`` (weights from N(0, 1/n_in), ``network2.py``; N(0, 2/n_in)
            into ReLU layers, He's) or ``"large"`` (everything from N(0, 1),
            chapter 1's ``network.py``).
        dtype: ``"float32"`` (default, fast) or ``"float64"``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` or a backend.
        activation: the hidden layers' neurons (chapter 3, "Other models of
            artificial neuron"): ``"sigmoid"`` (the default, the book's), ``"tanh"`` or
            ``"relu"`` for every hidden layer, or a list with one per hidden layer
            (``["tanh", "relu"]``). The output layer is the cost's: sigmoid, or softmax
            with ``cost="log-likelihood"``.
        seed: seeds the host random generator behind the initial parameters and
            every epoch's shuffle. ``None`` (the default) draws the seed from NumPy's
            global generator (``np.random``), so ``np.random.seed(s)`` before building
            networks makes a script repeat its runs, as the book's scripts do; without
            it the global generator is freshly seeded by NumPy and every run differs.
            Either way the seed is kept in ``self.seed``.

    ``sizes``, ``num_layers``, ``weights`` and ``biases`` are ``network2.py``'s
    attributes, read and assigned as there: ``net.weights = [...]``,
    ``net.weights[l] = w`` and ``net.weights[l][j, k] = v`` all change the network.

    ``dropout`` is the rate its last ``SGD`` trained with (chapter 3, "Dropout"; 0:
    none): ``weights`` stay the trained ones (training goes on from them, and
    checkpoints keep them), and the network is evaluated as the book uses it, every
    weight matrix out of a hidden layer times ``1 - dropout`` (``feedforward``,
    ``accuracy``, ``evaluate``, ``total_cost``, ``predict``, and the files ``save`` and
    ``save_best`` write, which then load as ordinary networks).
    """

    #: the dropout rate of the last SGD (see the class); 0 for a network never trained so
    dropout: float = 0.0

    def __init__(
        self,
        sizes: Sequence[int],
        cost: Union[Cost, str] = CrossEntropyCost,
        init: InitName = "default",
        dtype: DTypeLike = "float32",
        device: DeviceLike = "auto",
        seed: Optional[int] = None,
        activation: HiddenSpec = "sigmoid",
    ) -> None:
        super().__init__(sizes, cost, init, dtype, activation)
        if seed is None:
            seed = seed_from_numpy()
        self.seed = check_seed(seed)
        self.rng = np.random.default_rng(self.seed)
        self._use_device(device)
        self._initialize()
        #: the history of the latest ``SGD`` run, growing while it runs (so an
        #: interrupted run's completed epochs stay reachable).
        self.history = History()

    def __repr__(self) -> str:
        return (
            f"Network({self.sizes}, cost={self.cost.__name__}, init={self.init!r}, "
            f"dtype={np.dtype(self.dtype).name!r}, device={self.backend.device!r}"
            f"{activation_phrase(self.activation)})"
        )

    # ------------------------------------------------------------ parameters
    @property
    def sizes(self) -> list[int]:
        """Neurons per layer, input layer first (a copy: assign to change it)."""
        return list(self._sizes)

    @sizes.setter
    def sizes(self, sizes: Sequence[int]) -> None:
        """New layer sizes: the parameters are drawn afresh for them with the network's
        initializer (``network2.py`` keeps the old arrays until an initializer runs;
        here the parameters always fit ``sizes``)."""
        sizes = check_sizes(sizes)
        if sizes == self._sizes:
            return
        checked_hidden(self.activation, len(sizes) - 2)  # a list: one per hidden layer
        self._sizes = sizes
        del self._parameters  # set_parameters allocates the buffer for the new sizes
        self._initialize()

    @property
    def num_layers(self) -> int:
        """``len(sizes)``, the input layer included."""
        return len(self._sizes)

    @num_layers.setter
    def num_layers(self, num_layers: int) -> None:
        if num_layers != len(self._sizes):
            raise ValueError(
                f"num_layers is len(sizes) = {len(self._sizes)} for sizes {self._sizes}; "
                f"to change the layers assign net.sizes (e.g. [784, 30, 10]).")

    def _initialize(self) -> None:
        """Draw the parameters with the network's initializer (``init``), after checking
        that a network of these sizes fits in memory (:mod:`gpunet.model.memory`)."""
        check_network_fits(self._sizes, self.dtype, backend=self.backend)
        if self.init == "large":
            self.large_weight_initializer()
        else:
            self.default_weight_initializer()

    @_on_device
    def default_weight_initializer(self) -> None:
        """Weights from N(0, 1/n_in), biases from N(0, 1) (``network2.py``'s default;
        weights into a ReLU layer from N(0, 2/n_in);
        :func:`gpunet.model.initialization.initial_parameters`)."""
        self.set_parameters(*initial_parameters(self._sizes, self.rng, "default",
                                                self.init_scales()))

    @_on_device
    def large_weight_initializer(self) -> None:
        """Weights and biases from N(0, 1) (chapter 1's ``network.py``)."""
        self.set_parameters(*initial_parameters(self._sizes, self.rng, "large"))

    @_on_device
    def set_parameters(self, weights: Sequence[Any], biases: Sequence[Any]) -> None:
        """Copy in all weights and biases (host or device arrays, the book's shapes).

        Every parameter lives in one flat device buffer, weights first, so that a
        training step updates them all in one fused operation; ``weights[l]`` and
        ``biases[l]`` are views into it.
        """
        if len(weights) != self.num_layers - 1 or len(biases) != self.num_layers - 1:
            raise ValueError(
                f"expected {self.num_layers - 1} weight matrices and bias vectors for "
                f"sizes {self.sizes}, got {len(weights)} and {len(biases)}."
            )
        arrays = []
        for l, (m, n) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            w, b = self._to_device(weights[l]), self._to_device(biases[l])
            if b.ndim == 1:
                b = b.reshape(n, 1)
            if w.shape != (n, m) or b.shape != (n, 1):
                raise ValueError(
                    f"layer {l + 1}: weights {tuple(w.shape)} and biases {tuple(b.shape)} do "
                    f"not fit sizes {self.sizes}; expected ({n}, {m}) and ({n}, 1)."
                )
            arrays.append((w, b))
        if not hasattr(self, "_parameters"):
            self._parameters, weight_views, bias_views = flat_layers(
                self.sizes, self.xp, self.dtype)
            self._weights = LayerViews(weight_views, self._assign_weight)
            self._biases = LayerViews(bias_views, self._assign_bias)
        for (w, b), w_view, b_view in zip(arrays, self._weights, self._biases):
            w_view[...] = w
            b_view[...] = b

    @property
    def parameters(self) -> Array:
        """Every weight and bias in one flat device buffer (:mod:`gpunet.model.parameters`)."""
        return self._parameters

    @property
    def weights(self) -> "LayerViews":
        """``weights[l]``: the ``(n_{l+1}, n_l)`` matrix into layer ``l + 2`` (a view).

        A list, as in ``network2.py``: ``net.weights = [...]`` and ``net.weights[l] = w``
        copy the arrays into the network (shapes checked).
        """
        return self._weights

    @weights.setter
    def weights(self, weights: Sequence[Any]) -> None:
        self.set_parameters(weights, self._biases)

    @property
    def biases(self) -> "LayerViews":
        """``biases[l]``: the ``(n_{l+1}, 1)`` column of layer ``l + 2`` (a view).

        A list, as in ``network2.py``: ``net.biases = [...]`` and ``net.biases[l] = b``
        copy the arrays into the network (shapes checked).
        """
        return self._biases

    @biases.setter
    def biases(self, biases: Sequence[Any]) -> None:
        self.set_parameters(self._weights, biases)

    def _assign_weight(self, l: int, w: Any) -> None:
        weights = list(self._weights)
        weights[l] = w
        self.set_parameters(weights, self._biases)

    def _assign_bias(self, l: int, b: Any) -> None:
        biases = list(self._biases)
        biases[l] = b
        self.set_parameters(self._weights, biases)

    def _to_device(self, a: Any) -> Array:
        """``a`` (host data or a device array) on the device in the network's dtype."""
        if self.backend.is_device_array(a) and not isinstance(a, np.ndarray):
            return a.astype(self.dtype, copy=False)  # already there
        return self.backend.asarray(np.asarray(a, dtype=self.dtype))

    # ----------------------------------------------------------- feedforward
    @_on_device
    def feedforward(self, a: Any) -> Array:
        """The network's output for input ``a``.

        ``a`` is one example, as a vector ``(n_in,)`` or the book's column
        ``(n_in, 1)``, or a batch ``(k, n_in)`` with one example per row. The output
        has the matching shape (``(n_out,)``, ``(n_out, 1)`` or ``(k, n_out)``) and lives
        on the network's device.
        """
        n_in = self.sizes[0]
        shape = _shape(a)
        if len(shape) == 1 and shape[0] == n_in:
            return self._forward(self._input(a).reshape(1, n_in))[0]
        if len(shape) == 2 and shape == (n_in, 1) and n_in != 1:
            return self._forward(self._input(a).reshape(1, n_in)).T
        if len(shape) == 2 and shape[1] == n_in:
            return self._forward(self._input(a))
        raise ValueError(
            f"feedforward got an input of shape {shape}; the network has {n_in} inputs, so "
            f"pass ({n_in},), ({n_in}, 1) or (k, {n_in}) with one example per row."
        )

    def _input(self, a: Any) -> Array:
        """``a`` on the device in the network's dtype; host data is checked first."""
        if not self.backend.is_device_array(a) or isinstance(a, np.ndarray):
            check_inputs(np.asarray(a), "feedforward")
            a = np.asarray(a, dtype=self.dtype)
            if not np.isfinite(a).all():
                raise ValueError("feedforward input contains NaN or infinity.")
        return self._to_device(a)

    def _forward(self, a: Array) -> Array:
        """Rows of ``a`` through every layer (allocates; for evaluation, not training)."""
        return feedforward(self.backend, self._evaluated(), self.biases, a,
                           layer_activations(self))

    # --------------------------------------------------------------- backprop
    @_on_device
    def backprop(self, x: Any, y: Any) -> tuple[list[Array], list[Array]]:
        """Gradient of the cost, summed over the examples given, by backpropagation.

        ``(x, y)`` is one example (the book's column ``x`` with a one-hot column or a
        digit ``y``) or a mini-batch (``x`` of shape ``(k, n_in)``, ``y`` labels ``(k,)``
        or targets ``(k, n_out)``). Returns ``(nabla_b, nabla_w)`` shaped like
        ``biases`` and ``weights``: ``Σ_x ∂C_x/∂b`` and ``Σ_x ∂C_x/∂w`` (no L2 term),
        computed for the whole mini-batch at once.
        """
        batch = self._examples(_batch_of(x, y), "backprop data")
        ws = Workspace(self.sizes, 1, self.xp, self.dtype, len(batch))
        ws.X[0] = self.backend.asarray(batch.X, self.dtype)
        ws.Y[0] = self.backend.asarray(batch.Y, self.dtype)
        _, weights, biases = as_rows(self)
        backprop_into(self.backend, self.cost, weights, biases, ws, layer_activations(self))
        return (
            [nb[0].reshape(-1, 1).copy() for nb in ws.nabla_b],
            [nw[0].copy() for nw in ws.nabla_w],
        )

    def cost_derivative(self, output_activations: Array, y: Array) -> Array:
        """``∂C_x/∂a`` for the quadratic cost: ``a - y`` (``network.py``)."""
        return output_activations - y

    # ------------------------------------------------------------------ SGD
    @_on_device
    def update_mini_batch(
        self, mini_batch: Any, eta: float, lmbda: float = 0.0, n: Optional[int] = None
    ) -> None:
        """One gradient-descent step on ``mini_batch`` (chapter 1, "Learning with gradient descent"; chapter 3, "Regularization").

        ``n`` is the size of the whole training set, for the L2 weight decay
        ``1 - ηλ/n``; it defaults to the size of the mini-batch.
        """
        batch = self._examples(mini_batch, "mini_batch")
        k = len(batch)
        eta, lmbda = check_eta(eta), check_lmbda(lmbda)
        n = k if n is None else check_positive_int(n, "n")
        X = self.backend.asarray(batch.X, self.dtype)
        Y = self.backend.asarray(batch.Y, self.dtype)
        sgd_step(self, X, Y, eta, lmbda, n)

    @property
    def _network_count(self) -> int:
        """One: ``SGD`` trains a ``Network`` as a stack of one."""
        return 1

    def _check_trainable(self) -> None:
        _check_no_book_overrides(self)

    def train(self, data: TrainingData, settings: TrainingSettings,
              state: Optional[RunState] = None, *, checkpoint: Any = None,
              progress: bool = False) -> History:
        """The epochs of :meth:`SGD` on checked ``data`` and ``settings``, from ``state``
        (a resumed run's; default: the start): :func:`gpunet.training.loop.run_sgd`
        with this network as its one network (:class:`NetworkTarget`)."""
        self.dropout = settings.dropout[0]  # evaluated scaled by 1 - p from now on
        state = run_sgd(NetworkTarget(self), data, settings, state, checkpoint=checkpoint,
                        progress=progress)
        return state.histories[0]

    # --------------------------------------------------------------- metrics
    @_on_device
    def accuracy(self, data: Any, convert: bool = False) -> int:
        """Number of examples in ``data`` whose most active output is the right class.

        ``convert`` is accepted for ``network2.py`` compatibility; whether the labels
        are digits or one-hot vectors is read from the data itself.
        """
        X, _, labels = self._device_examples(self._examples(data, "data"))
        return int(round(self._fetch([self._correct(X, labels)])[0]))

    def evaluate(self, test_data: Any) -> int:
        """``network.py``'s name for :meth:`accuracy`: the number classified correctly."""
        return self.accuracy(test_data)

    @_on_device
    def total_cost(self, data: Any, lmbda: float = 0.0, convert: bool = False, *,
                   l1: float = 0.0) -> float:
        """Mean cost over ``data`` plus the L2 term ``λ/(2n) Σ w²`` (``n = len(data)``)
        and, where ``l1`` is not 0, the L1 term ``(λ₁/n) Σ |w|`` (chapter 3, eq. 95):
        the training cost ``SGD(..., lmbda, l1=l1)`` monitors."""
        lmbda, l1 = check_lmbda(lmbda), check_l1(l1)
        X, Y, _ = self._device_examples(self._examples(data, "data"))
        return self._fetch([self._total_cost(X, Y, lmbda, l1)])[0]

    @_on_device
    def predict(self, X: Any) -> np.ndarray:
        """Predicted class of each row of ``X``, as a host array of ints."""
        out = self.feedforward(X)
        return self.backend.to_host(self.xp.argmax(out, axis=-1 if out.ndim == 1 else 1))

    def _examples(self, data: Any, what: str) -> Examples:
        return as_examples(data, self.sizes[0], self.sizes[-1], what)

    def _device_examples(self, ex: Examples) -> tuple[Array, Array, Array]:
        """Inputs, targets and labels of ``ex`` on the device."""
        asarray = self.backend.asarray
        return asarray(ex.X, self.dtype), asarray(ex.Y, self.dtype), asarray(ex.labels)

    def _correct(self, X: Array, labels: Array) -> Array:
        """0-d device array: how many rows of ``X`` are classified as ``labels``."""
        return correct(self.backend, self._evaluated(), self.biases, X, labels,
                       layer_activations(self))

    def _total_cost(self, X: Array, Y: Array, lmbda: float, l1: float = 0.0) -> Array:
        """0-d device array: mean cost over the rows plus ``λ/(2n) Σ w²`` (and
        ``(λ₁/n) Σ |w|`` where ``l1`` is not 0)."""
        return total_cost(self.backend, self.cost, self._evaluated(), self.biases, X, Y, lmbda,
                          layer_activations(self), l1)

    def _evaluated(self) -> list[Array]:
        """The weights the network is evaluated with: after dropout, those out of hidden
        layers times ``1 - dropout`` (:func:`gpunet.model.dropout.evaluation_weights`);
        else the weights themselves."""
        return evaluation_weights(self.weights, self.dropout)

    def _fetch(self, values: list[Array]) -> list[float]:
        """Copy 0-d device metrics to the host in one transfer."""
        return fetch(self.backend, values)

    # ------------------------------------------------------------ save/load
    @_on_device
    def save(self, filename: Any, option: str = "") -> None:
        """Write the network as ``network2.py``'s JSON (atomically; a failed write is a
        :class:`gpunet.io.outputs.WriteError` naming ``option`` and the file)."""
        to_host = self.backend.to_host
        write_network_file(filename, self.sizes, [to_host(w) for w in self._evaluated()],
                           [to_host(b) for b in self.biases], self.cost.__name__, option,
                           activation=recorded_activation(self.activation))

    def save_best(self, filename: Any, option: str = "") -> None:
        """Write the network as of its best epoch by the evaluated accuracy, as
        :meth:`save` writes it: the copy ``SGD(..., keep_best=True)`` kept on the device
        (``history.best_parameters``, of epoch ``history.best_epoch``)."""
        from ..model.parameters import bias_shapes, layer_views, weight_shapes

        if self.history.best_parameters is None:
            raise ValueError("the network kept no best epoch: train it with "
                             "SGD(..., keep_best=True) and evaluation data.")
        flat = self.backend.to_host(self.history.best_parameters)
        views = layer_views(flat, weight_shapes(self.sizes) + bias_shapes(self.sizes))
        layers = len(self.sizes) - 1
        write_network_file(filename, self.sizes, evaluation_weights(views[:layers], self.dropout),
                           views[layers:], self.cost.__name__, option,
                           activation=recorded_activation(self.activation))

    @classmethod
    def load(cls, filename: Any, device: DeviceLike = "auto",
             dtype: DTypeLike = "float32", seed: Optional[int] = None) -> "Network":
        """Read a network saved by :meth:`save` or by ``network2.py``, onto ``device`` in
        ``dtype`` (:func:`gpunet.io.network_file.read_network_file` checks every field).

        ``seed`` seeds the network's generator (its shuffles, if trained further);
        without it the seed is drawn from NumPy's global generator, as for any network
        built without one (the book's ``load`` builds a ``Network``, which draws from
        ``np.random`` too), so ``np.random.seed(s)`` before loading repeats what follows.
        """
        saved = read_network_file(filename, tuple(COSTS), hidden=hidden_names_tuple())
        try:
            net = cls(saved.sizes, cost=saved.cost or "CrossEntropyCost", dtype=dtype,
                      device=device, seed=seed, activation=saved.activation or "sigmoid")
            _check_range({"weights": saved.weights, "biases": saved.biases}, net.dtype)
            net.set_parameters(saved.weights, saved.biases)
        except ValueError as exc:
            raise ValueError(f"{filename}: {exc}") from None
        return net


def _check_range(layers: dict[str, Sequence[np.ndarray]], dtype: Any) -> None:
    """A file's float64 parameters fit the network's dtype: a value beyond its range
    would become infinite when loaded (a float32 network's largest is about 3.4e38),
    and every output NaN. ``ValueError`` naming the field."""
    largest = float(np.finfo(dtype).max)
    for key, arrays in layers.items():
        for l, a in enumerate(arrays):
            if a.size and float(np.abs(a).max()) > largest:
                raise ValueError(f"{key}[{l}] holds {float(np.abs(a).max()):.3g}, beyond "
                                 f"{np.dtype(dtype).name}'s range ({largest:.3g}); the file "
                                 "is corrupt, or the run that saved it diverged.")


# -------------------------------------------------------- the training loop's view
def describe(model: NetworkModel[Any], seeds: Sequence[int]) -> dict[str, Any]:
    """What a checkpoint says of a network or a stack: sizes, cost, init, dtype, and
    one seed per network."""
    described = {"sizes": model.sizes, "cost": model.cost.__name__, "init": model.init,
                 "dtype": np.dtype(model.dtype).name, "seeds": list(seeds)}
    activation = recorded_activation(model.activation)
    if activation is not None:  # a sigmoid network's description is as it always was
        described["activation"] = activation
    return described


class NetworkTarget:
    """One :class:`Network` as the training loop's one network
    (:class:`gpunet.training.loop.Target`): the engines of
    :func:`gpunet.engines.select_engine`, the book's epoch lines, ``callback(record)``,
    and divergence as an error."""

    stop_on_divergence = True

    def __init__(self, net: Network) -> None:
        self.net = self.model = net

    def generators(self) -> list[np.random.Generator]:
        return [self.net.rng]

    def permutations(self, n: int) -> np.ndarray:
        return self.net.rng.permutation(n)

    def history_engine(self, engine: Any) -> str:
        return str(engine.name)

    def begin(self, state: RunState) -> None:
        self.net.history = state.histories[0]

    def description(self) -> dict[str, Any]:
        return {"kind": "network", "network": describe(self.net, [self.net.seed])}

    def report(self, records: list[dict[str, Any]], settings: TrainingSettings) -> None:
        if settings.verbose:
            print(History.book_lines(records[0]), flush=True)
        if settings.callback is not None:
            settings.callback(records[0])


def recorded_activation(activation: Any) -> Union[None, str, list[str]]:
    """The hidden layers' activation as network files and checkpoints record it: a
    name or one per hidden layer; ``None`` for the sigmoid, which files leave out (as
    every file written before other activations existed does)."""
    return None if is_sigmoid(activation) else activation_names(activation)


def activation_phrase(activation: Any) -> str:
    """``, activation=...`` for a repr, empty for the sigmoid."""
    recorded = recorded_activation(activation)
    return "" if recorded is None else f", activation={recorded!r}"


# ------------------------------------------------------------------ checks
#: The methods the book's ``SGD`` calls, itself or through one another: a subclass that
#: overrides one expects training to use it (an exercise's momentum in
#: ``update_mini_batch``, another cost in ``cost_derivative``), but ``Network.SGD``
#: steps and measures on the engines and never calls them.
BOOK_SGD_METHODS = ("update_mini_batch", "backprop", "cost_derivative", "feedforward",
                    "total_cost", "accuracy", "evaluate")


def _check_no_book_overrides(net: Network) -> None:
    """Refuse to train a subclass whose overrides ``SGD`` would silently bypass."""
    overridden = [name for name in BOOK_SGD_METHODS
                  if getattr(type(net), name) is not getattr(Network, name)]
    if overridden:
        names = ", ".join(f"{type(net).__name__}.{name}" for name in overridden)
        raise TypeError(
            f"{names} would not be called: Network.SGD trains with gpunet's batched steps "
            "and metrics, not the book's per-example methods. To train with your own "
            "methods, write the book's SGD loop in your script (each epoch: shuffle, then "
            "call your update_mini_batch on each mini-batch); for a cost of your own, pass "
            "a cost class with fn and delta instead (cost=YourCost).")


def _shape(a: Any) -> tuple[int, ...]:
    """Shape of an array on any backend, or of nested lists (never converts arrays)."""
    return tuple(a.shape) if hasattr(a, "shape") else np.shape(a)


def _batch_of(x: Any, y: Any) -> Any:
    """Make one book-style example (column ``x``, column or digit ``y``) a batch."""
    shape = _shape(x)
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        return [(x, y)]
    return (x, y)
