"""The neurons' activation function, declared once: σ, σ′ and how every engine computes them.

The book's neurons are sigmoid neurons (chapter 1, "Sigmoid neurons"):

====================================  ================================================
the book                              here (:class:`Sigmoid`)
====================================  ================================================
``σ(z) = 1 / (1 + e^{-z})`` (eq. 3)   :meth:`Activation.fn`
``σ'(z) = σ(z)(1 - σ(z))``            :meth:`Activation.times_prime`: ``x ⊙ σ'(z)``
(eq. 5's derivative)                  from the output ``a = σ(z)``: ``x a (1 - a)``
====================================  ================================================

Training keeps only the activations ``a^l``, never ``z^l``, so every engine needs σ′ in
terms of the output ``a``. An activation is one subclass of :class:`Activation` that
declares everything an engine asks of it:

* ``name`` (``SGD``'s and the files' word for it) and ``kernel_id``, the number the
  fused CUDA kernel is compiled with (``-DGPUNET_ACTIVATION=id``: the kernel's device
  functions ``gpunet_activation`` and ``gpunet_activation_prime_times`` in
  ``backends/kernels/fused_sgd.cu``; ``None``: the fused engine cannot train it);
* the mathematics on any array module: :meth:`~Activation.fn`,
  :meth:`~Activation.times_prime`, :meth:`~Activation.prime` and
  :meth:`~Activation.inverse` (``z`` from ``a``, for a user's cost whose ``delta``
  wants ``z``);
* the fused operations of training on a backend (the eager engine and the metrics):
  :meth:`~Activation.add_bias_activate` (``a = σ(z + b)``),
  :meth:`~Activation.prime_mul` (``δ ← δ ⊙ σ'(z)``) and
  :meth:`~Activation.error_times_prime` (``δ = (a - y) ⊙ σ'(z)``, the quadratic
  cost's output error); the sigmoid's are the backend's one-kernel operations;
* the cpu engine's NumPy calls (:meth:`~Activation.activate_minus_z_ops`,
  :meth:`~Activation.prime_mul_ops`) and its :class:`Saturation`: where the activation
  is exactly 1 with a zero derivative and exactly 0, which that engine's constant and
  idle units need (``None``: the cpu engine cannot train it).

The base class derives every operation from ``fn`` and ``times_prime`` (correct on any
backend, if slower), so a new activation is one class here plus, for the fused
engine, its device functions in the kernel.

Chapter 3 ("Other models of artificial neuron") adds two hidden neurons and one output
layer, declared here beside the sigmoid:

=====================  ==================================  ===============================
class                  ``σ(z)``                            ``σ'`` from the output ``a``
=====================  ==================================  ===============================
:class:`Tanh`          ``tanh(z)``, range (-1, 1) (eq. 109) ``1 - a²``
:class:`ReLU`          ``max(0, z)`` (eq. 112)             ``1`` where ``a > 0``, else 0
                                                           (``0`` at ``z = 0``)
:class:`Softmax`       ``e^{z_j} / Σ_k e^{z_k}`` (eq. 78)  none: an output layer only, with
                                                           the log-likelihood cost, whose
                                                           ``δ^L = a - y`` needs no ``σ'``
=====================  ==================================  ===============================

A network has one activation per layer (:func:`layer_activations`): its hidden
layers' ``activation`` (one for all, or one per hidden layer; a network that declares
none is a sigmoid network, :func:`activation_of`) and the output layer's, which its
cost declares (``DeclaredCost.output``: the sigmoid, or the softmax for the
log-likelihood cost). tanh's outputs lie in (-1, 1), not (0, 1), so it is a hidden
neuron here; the output layer stays sigmoid or softmax, whose outputs the costs read
as the book does. Each activation's ``init_scale`` multiplies the default initial
weights' standard deviation ``1/√n_in`` of the layer it feeds (:mod:`gpunet.model.
initialization`): 1 for the sigmoid and tanh, √2 for ReLU (He et al. 2015: half a ReLU
layer's inputs are 0, so twice the variance keeps ``z``'s spread from layer to layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Sequence, Union

import numpy as np

from ..backends import Array, Backend, array_module

Op = tuple[Callable[..., Any], tuple[Any, ...]]
"""One NumPy call of the cpu engine's step, bound once: ``(function, arguments)``."""


@dataclass(frozen=True)
class Saturation:
    """Pre-activations ``z`` at which an activation is exact in float32 and float64:
    ``σ(one) = 1`` with ``σ'`` there exactly 0 (the cpu engine's constant unit, whose
    output is the next layer's bias input and which must never learn), and
    ``σ(zero) = 0`` (its idle units, which pad a layer's width and add exact zeros)."""

    one: float
    zero: float


class Activation:
    """An activation function and everything the engines compute with it (see the module).

    Subclasses set ``name`` and override :meth:`fn` and :meth:`times_prime`; the rest
    has a correct default derived from those two. A subclass that sets its own ``name``
    is registered by it (:data:`ACTIVATIONS`) when it is defined.
    """

    #: the activation's name, as ``get_activation`` takes it.
    name: ClassVar[str] = ""
    #: the fused kernel's ``GPUNET_ACTIVATION`` for it (its device functions in
    #: ``backends/kernels/fused_sgd.cu``); ``None``: the kernel has none.
    kernel_id: ClassVar[Optional[int]] = None
    #: where it is exactly 1 and 0 (the cpu engine's fixed units); ``None``: nowhere.
    saturation: ClassVar[Optional[Saturation]] = None
    #: an output layer's activation only (the softmax): no hidden layer takes it.
    output_only: ClassVar[bool] = False
    #: the factor on the default initial weights' standard deviation ``1/√n_in`` of the
    #: layer this activation closes (ReLU: √2, He's initialization).
    init_scale: ClassVar[float] = 1.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):  # its own name: a subclass is not another activation
            if cls.name in ACTIVATIONS:
                raise ValueError(f"activation {cls.name!r} is declared twice")
            ACTIVATIONS[cls.name] = cls

    # ---------------------------------------------------------------- mathematics
    @staticmethod
    def fn(z: Array) -> Array:
        """``σ(z)``, a new array (any array module)."""
        raise NotImplementedError

    @staticmethod
    def times_prime(x: Array, a: Array) -> Array:
        """``x ⊙ σ'(z)`` from the output ``a = σ(z)``, a new array."""
        raise NotImplementedError

    @classmethod
    def prime(cls, z: Array) -> Array:
        """``σ'(z)``, a new array."""
        return cls.times_prime(1, cls.fn(z))

    @classmethod
    def inverse(cls, xp: Any, a: Array) -> Array:
        """``z = σ⁻¹(a)``, for a cost whose ``delta(z, a, y)`` reads ``z``."""
        raise NotImplementedError(f"the {cls.name} activation declares no inverse")

    # ------------------------------------------ training's operations on a backend
    @classmethod
    def add_bias_activate(cls, backend: Backend, z: Array, b: Array, out: Array) -> Array:
        """``out = σ(z + b)``, ``b`` broadcast along rows; ``out`` may be ``z``. Closes
        every layer's feedforward: ``a^l = σ(a^{l-1} (w^l)ᵀ + (b^l)ᵀ)`` (eq. 25)."""
        backend.xp.add(z, b, out=out)
        out[...] = cls.fn(out)
        return out

    @classmethod
    def prime_mul(cls, backend: Backend, delta: Array, a: Array, scratch: Array) -> Array:
        """``delta ← delta ⊙ σ'(z)`` from ``a = σ(z)`` (BP2); ``scratch`` a work buffer."""
        delta[...] = cls.times_prime(delta, a)
        return delta

    @classmethod
    def error_times_prime(cls, backend: Backend, a: Array, y: Array, out: Array,
                          scratch: Array) -> Array:
        """``out = (a - y) ⊙ σ'(z)``: the quadratic cost's output error (BP1)."""
        backend.xp.subtract(a, y, out=out)
        return cls.prime_mul(backend, out, a, scratch)

    # ----------------------------------------------------- the cpu engine's calls
    @classmethod
    def activate_minus_z_ops(cls, out: np.ndarray, one: np.ndarray) -> list[Op]:
        """NumPy calls that turn ``out``, holding ``-z`` (the cpu engine keeps minus the
        parameters), into ``σ(z)`` in place; ``one`` is a 0-d 1 of the dtype."""
        return [(np.negative, (out, out)), (_assign, (out, cls.fn, out))]

    @classmethod
    def prime_mul_ops(cls, delta: np.ndarray, a: np.ndarray, scratch: np.ndarray,
                      one: np.ndarray, negated: bool = False) -> list[Op]:
        """NumPy calls for ``delta ← delta ⊙ σ'(z)``, or ``⊙ (-σ'(z))`` when
        ``negated`` (back through the cpu engine's negated weights)."""
        ops: list[Op] = [(_assign, (delta, cls.times_prime, delta, a))]
        return ops + [(np.negative, (delta, delta))] if negated else ops


def _assign(out: np.ndarray, function: Callable[..., Array], *args: Any) -> None:
    """``out[...] = function(*args)``: a derived operation as one cpu-engine call."""
    out[...] = function(*args)


ACTIVATIONS: dict[str, type[Activation]] = {}
"""Every declared activation by name (filled as each class is defined)."""


class Sigmoid(Activation):
    """The book's sigmoid neuron: ``σ(z) = 1 / (1 + e^{-z})`` (chapter 1, eq. 3) and
    ``σ'(z) = σ(z)(1 - σ(z)) = a (1 - a)``."""

    name = "sigmoid"
    kernel_id = 0
    # e^{-1e4} = 0 and e^{1e4} = inf in float32 and float64: σ = 1 and 0 exactly, and
    # σ' = 1 (1 - 1) = 0 at the first.
    saturation = Saturation(one=1e4, zero=-1e4)

    @staticmethod
    def fn(z: Array) -> Array:
        """``1 / (1 + e^{-z})``; ``e^{-z}`` overflows to inf for very negative ``z``,
        and ``1 / inf = 0`` is the right limit, so NumPy's warning is noise here."""
        xp = array_module(z)
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + xp.exp(-z))

    @staticmethod
    def times_prime(x: Array, a: Array) -> Array:
        """``x a (1 - a)``."""
        return x * a * (1 - a)

    @classmethod
    def inverse(cls, xp: Any, a: Array) -> Array:
        """``z = ln a - ln(1 - a)``; ``a = 0`` or ``1`` gives ``-inf`` or ``inf``."""
        with np.errstate(divide="ignore"):
            return xp.log(a) - xp.log1p(-a)

    # The backend's one-kernel operations (backends/base.py; CuPy's ElementwiseKernels).
    @classmethod
    def add_bias_activate(cls, backend: Backend, z: Array, b: Array, out: Array) -> Array:
        return backend.add_bias_sigmoid(z, b, out=out)

    @classmethod
    def prime_mul(cls, backend: Backend, delta: Array, a: Array, scratch: Array) -> Array:
        return backend.sigmoid_prime_mul(delta, a, scratch)

    @classmethod
    def error_times_prime(cls, backend: Backend, a: Array, y: Array, out: Array,
                          scratch: Array) -> Array:
        return backend.quadratic_output_error(a, y, out, scratch)

    @classmethod
    def activate_minus_z_ops(cls, out: np.ndarray, one: np.ndarray) -> list[Op]:
        # σ(z) = 1 / (1 + e^{-z}) from -z: three in-place ufuncs, no negation.
        return [(np.exp, (out, out)), (np.add, (out, one, out)), (np.reciprocal, (out, out))]

    @classmethod
    def prime_mul_ops(cls, delta: np.ndarray, a: np.ndarray, scratch: np.ndarray,
                      one: np.ndarray, negated: bool = False) -> list[Op]:
        # σ'(z) = a (1 - a); its negative a (a - 1) is the same three calls.
        factor = (a, one, scratch) if negated else (one, a, scratch)
        return [(np.subtract, factor), (np.multiply, (delta, a, delta)),
                (np.multiply, (delta, scratch, delta))]


SIGMOID = Sigmoid
"""The book's activation, and every network's that declares none."""


class Tanh(Activation):
    """The tanh neuron (chapter 3, "Other models of artificial neuron", eq. 109):
    ``tanh(z) = (e^z - e^{-z}) / (e^z + e^{-z}) = 2σ(2z) - 1``, outputs in (-1, 1),
    ``tanh'(z) = 1 - tanh²(z) = 1 - a²``. A hidden layer's neuron here."""

    name = "tanh"
    kernel_id = 1
    # tanh(1e4) = 1 exactly (1 - 1·1 = 0: the constant unit never learns) and tanh(0) = 0.
    saturation = Saturation(one=1e4, zero=0.0)

    @staticmethod
    def fn(z: Array) -> Array:
        """``tanh(z)``."""
        return array_module(z).tanh(z)

    @staticmethod
    def times_prime(x: Array, a: Array) -> Array:
        """``x (1 - a²)``."""
        return x * (1 - a * a)

    @classmethod
    def inverse(cls, xp: Any, a: Array) -> Array:
        """``z = artanh(a)``."""
        with np.errstate(divide="ignore"):
            return xp.arctanh(a)

    @classmethod
    def add_bias_activate(cls, backend: Backend, z: Array, b: Array, out: Array) -> Array:
        xp = backend.xp
        xp.add(z, b, out=out)
        return xp.tanh(out, out=out)

    @classmethod
    def prime_mul(cls, backend: Backend, delta: Array, a: Array, scratch: Array) -> Array:
        xp = backend.xp
        xp.multiply(a, a, out=scratch)
        xp.subtract(1, scratch, out=scratch)
        delta *= scratch
        return delta

    @classmethod
    def activate_minus_z_ops(cls, out: np.ndarray, one: np.ndarray) -> list[Op]:
        # tanh is odd: tanh(z) = -tanh(-z).
        return [(np.tanh, (out, out)), (np.negative, (out, out))]

    @classmethod
    def prime_mul_ops(cls, delta: np.ndarray, a: np.ndarray, scratch: np.ndarray,
                      one: np.ndarray, negated: bool = False) -> list[Op]:
        # tanh'(z) = 1 - a²; its negative a² - 1.
        factor = (scratch, one, scratch) if negated else (one, scratch, scratch)
        return [(np.multiply, (a, a, scratch)), (np.subtract, factor),
                (np.multiply, (delta, scratch, delta))]


class ReLU(Activation):
    """The rectified linear unit (chapter 3, "Other models of artificial neuron",
    eq. 112): ``max(0, z)``; ``σ'(z)`` is 1 where ``z > 0`` and 0 where ``z < 0`` (and 0
    at ``z = 0``, where the book leaves it open): ``sgn(a)`` of the output ``a >= 0``.
    Its default initial weights are He's, N(0, 2/n_in) (``init_scale`` √2)."""

    name = "relu"
    kernel_id = 2
    # max(0, 1) = 1 and max(0, -1) = 0 exactly. σ'(1) = 1, not 0: the cpu engine zeroes
    # its constant unit's error itself (gpunet.engines.cpu: constant_prime_is_zero).
    saturation = Saturation(one=1.0, zero=-1.0)
    init_scale = 2.0 ** 0.5

    @staticmethod
    def fn(z: Array) -> Array:
        """``max(0, z)``."""
        return array_module(z).maximum(z, 0)

    @staticmethod
    def times_prime(x: Array, a: Array) -> Array:
        """``x sgn(a)``: ``x`` where ``a > 0``, else 0."""
        return x * array_module(a).sign(a)

    @classmethod
    def inverse(cls, xp: Any, a: Array) -> Array:
        """``z = a`` where ``a > 0``; any ``z <= 0`` gives 0, and 0 stands for them."""
        return a

    @classmethod
    def add_bias_activate(cls, backend: Backend, z: Array, b: Array, out: Array) -> Array:
        xp = backend.xp
        xp.add(z, b, out=out)
        return xp.maximum(out, 0, out=out)

    @classmethod
    def prime_mul(cls, backend: Backend, delta: Array, a: Array, scratch: Array) -> Array:
        backend.xp.sign(a, out=scratch)
        delta *= scratch
        return delta

    @classmethod
    def activate_minus_z_ops(cls, out: np.ndarray, one: np.ndarray) -> list[Op]:
        # max(0, z) = -min(0, -z)
        zero = np.zeros((), out.dtype)
        return [(_minimum, (out, zero, out)), (np.negative, (out, out))]

    @classmethod
    def prime_mul_ops(cls, delta: np.ndarray, a: np.ndarray, scratch: np.ndarray,
                      one: np.ndarray, negated: bool = False) -> list[Op]:
        ops: list[Op] = [(np.sign, (a, scratch))]
        if negated:
            ops.append((np.negative, (scratch, scratch)))
        return ops + [(np.multiply, (delta, scratch, delta))]


class Softmax(Activation):
    """The softmax output layer (chapter 3, "Softmax", eq. 78):
    ``a_j = e^{z_j} / Σ_k e^{z_k}`` over each example's output neurons, positive and
    summing to 1, so the outputs read as a probability distribution. Only an output
    layer's, with the log-likelihood cost (:class:`gpunet.model.costs.LogLikelihoodCost`),
    whose output error ``δ^L = a - y`` (eq. 84) needs no ``σ'``. Computed as
    ``e^{z_j - max z} / Σ_k e^{z_k - max z}`` (the same value, never overflowing)."""

    name = "softmax"
    output_only = True

    @staticmethod
    def fn(z: Array) -> Array:
        """Each row's softmax (the last axis: one example's output neurons)."""
        xp = array_module(z)
        e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
        return e / xp.sum(e, axis=-1, keepdims=True)

    @staticmethod
    def times_prime(x: Array, a: Array) -> Array:
        """None: the softmax's derivative is a matrix per example, and no cost here
        needs it (the log-likelihood's ``δ^L = a - y``)."""
        raise ValueError("the softmax output layer goes with the log-likelihood cost, "
                         "whose output error a - y needs no derivative")

    @classmethod
    def inverse(cls, xp: Any, a: Array) -> Array:
        """``z = ln a``, up to a constant per example (which the softmax ignores)."""
        with np.errstate(divide="ignore"):
            return xp.log(a)

    @classmethod
    def add_bias_activate(cls, backend: Backend, z: Array, b: Array, out: Array) -> Array:
        xp = backend.xp
        xp.add(z, b, out=out)
        xp.subtract(out, xp.max(out, axis=-1, keepdims=True), out=out)
        xp.exp(out, out=out)
        return xp.divide(out, xp.sum(out, axis=-1, keepdims=True), out=out)

    @classmethod
    def activate_minus_z_ops(cls, out: np.ndarray, one: np.ndarray) -> list[Op]:
        column = np.empty(out.shape[:-1] + (1,), out.dtype)
        return [(_softmax_of_minus_z, (out, column))]


def _minimum(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out = min(a, b)`` (NaN stays NaN; NumPy deprecates ``out`` as a positional
    argument of ``np.minimum``)."""
    np.minimum(a, b, out=out)


def _softmax_of_minus_z(out: np.ndarray, column: np.ndarray) -> None:
    """``out`` (holding ``-z``, rows) ← each row's softmax of ``z``, in place:
    ``z - max z = min(-z) - (-z)``."""
    np.amin(out, axis=-1, keepdims=True, out=column)
    np.subtract(column, out, out=out)
    np.exp(out, out=out)
    np.sum(out, axis=-1, keepdims=True, out=column)
    np.divide(out, column, out=out)


def sigmoid(z: Array) -> Array:
    """``network2.py``'s ``sigmoid``: ``σ(z) = 1 / (1 + e^{-z})`` (chapter 1, eq. 3)."""
    return Sigmoid.fn(z)


def sigmoid_prime(z: Array) -> Array:
    """``network2.py``'s ``sigmoid_prime``: ``σ'(z) = σ(z)(1 - σ(z))``."""
    return Sigmoid.prime(z)


def get_activation(activation: Any) -> type[Activation]:
    """An activation given as its class or its name (``"sigmoid"``); ``ValueError``
    naming the declared ones for anything else."""
    if isinstance(activation, type) and issubclass(activation, Activation) and activation.name:
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    known = ", ".join(repr(name) for name in ACTIVATIONS)
    raise ValueError(f"unknown activation {activation!r}; use one of {known}.")


HiddenSpec = Union[str, type[Activation], Sequence[Union[str, type[Activation]]]]
"""What ``activation=`` takes: one activation (a name or class) for every hidden layer,
or a list with one per hidden layer."""

Activations = Union[type[Activation], Sequence[type[Activation]]]
"""What the model's operations take: one activation for every layer, or one per layer."""


def hidden_names_tuple() -> tuple[str, ...]:
    """The names of the activations a hidden layer takes (what files may record)."""
    return tuple(name for name, a in ACTIVATIONS.items() if not a.output_only)


def hidden_names() -> str:
    """The activations a hidden layer takes, quoted, for messages."""
    return ", ".join(repr(name) for name in hidden_names_tuple())


def _hidden(activation: Any, field: str) -> type[Activation]:
    """One hidden layer's activation, checked (not an output layer's)."""
    try:
        chosen = get_activation(activation)
    except ValueError:
        raise ValueError(f"{field}: unknown activation {activation!r}; a hidden layer "
                         f"takes {hidden_names()}.") from None
    if chosen.output_only:
        raise ValueError(f"{field}: {chosen.name} is an output layer's activation, not a "
                         f"hidden layer's: the softmax output layer comes with "
                         f"cost='log-likelihood'; hidden layers take {hidden_names()}.")
    return chosen


def checked_hidden(activation: Any, hidden: int) -> Union[type[Activation],
                                                           tuple[type[Activation], ...]]:
    """``activation=`` checked for a network with ``hidden`` hidden layers: one
    activation (a class) for all of them, or a tuple of one per hidden layer.
    ``ValueError`` saying what to change for an unknown or output-only name, a list of
    the wrong length, or a non-sigmoid activation where there is no hidden layer."""
    if isinstance(activation, (list, tuple)):
        layers = tuple(_hidden(a, f"activation[{i}]") for i, a in enumerate(activation))
        if len(layers) != hidden:
            raise ValueError(f"activation lists {len(layers)} activations for {hidden} "
                             f"hidden layers; give one per hidden layer, or one name for "
                             f"all of them.")
        return layers
    one = _hidden(activation, "activation")
    if hidden == 0 and one is not SIGMOID:
        raise ValueError(f"activation={one.name!r} is the hidden layers' activation, and "
                         f"this network has no hidden layer; its output layer is the "
                         f"sigmoid (the softmax with cost='log-likelihood').")
    return one


def hidden_activations(activation: Any, hidden: int) -> tuple[type[Activation], ...]:
    """Each of ``hidden`` hidden layers' activation, from ``activation=`` (checked)."""
    checked = checked_hidden(activation, hidden)
    return checked if isinstance(checked, tuple) else (checked,) * hidden


def output_activation(cost: Any) -> type[Activation]:
    """The output layer's activation that ``cost`` declares (``DeclaredCost.output``);
    the sigmoid for a cost that declares none (the book's two, a user's own)."""
    output = getattr(cost, "output", None)
    if isinstance(output, type) and issubclass(output, Activation):
        return output
    return SIGMOID


def layer_activations(model: Any) -> tuple[type[Activation], ...]:
    """Each layer's activation of a network or stack (or anything an engine trains),
    input layer excluded: its hidden layers' ``activation`` (the sigmoid where it
    declares none), then its cost's output activation."""
    hidden = len(model.sizes) - 2
    return (*hidden_activations(getattr(model, "activation", SIGMOID), hidden),
            output_activation(model.cost))


def per_layer(activation: Activations, layers: int) -> tuple[type[Activation], ...]:
    """One activation per layer: ``activation`` for every layer where it is one (the
    seam's first form), else the ``layers`` it lists."""
    if isinstance(activation, type):
        return (activation,) * layers
    chosen = tuple(activation)
    if len(chosen) != layers:
        raise ValueError(f"{len(chosen)} activations for {layers} layers")
    return chosen


def activation_names(activation: Any) -> Union[str, list[str]]:
    """``activation=`` as files record it: one name, or one per hidden layer."""
    if isinstance(activation, (list, tuple)):
        return [get_activation(a).name for a in activation]
    return get_activation(activation).name


def is_sigmoid(activation: Any) -> bool:
    """Whether ``activation=`` makes every hidden layer the book's sigmoid (what files
    written before other activations existed mean)."""
    if isinstance(activation, (list, tuple)):
        return all(get_activation(a) is SIGMOID for a in activation)
    return get_activation(activation) is SIGMOID


def activation_of(model: Any) -> type[Activation]:
    """The hidden layers' activation of a network or stack (or anything an engine
    trains) where they share one: its ``activation`` where it declares one, else the
    book's sigmoid. ``ValueError`` for hidden layers with different activations
    (:func:`layer_activations` gives every layer's)."""
    activation = getattr(model, "activation", SIGMOID)
    if isinstance(activation, (list, tuple)):
        distinct = {get_activation(a) for a in activation}
        if len(distinct) != 1:
            raise ValueError("this network's hidden layers have different activations; "
                             "layer_activations(model) gives each layer's")
        return distinct.pop()
    return get_activation(activation)
