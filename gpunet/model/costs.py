"""The cost functions of the book (chapter 1, eq. 6; chapter 3, "The cross-entropy cost function" and "Softmax"): ``network2.py``'s two and the log-likelihood.

Each cost is a class with static methods, so ``QuadraticCost.fn(a, y)`` and
``CrossEntropyCost.delta(z, a, y)`` read as in the book. Arrays hold one example per
row (or a single example as a vector or the book's ``(n, 1)`` column); ``fn`` returns
the cost *summed* over the examples given, as a 0-d array on their device.

A cost is declared once, as one subclass of :class:`DeclaredCost` whose class attributes are
everything gpunet derives from it:

* ``name`` and ``aliases``: what ``cost=`` and ``--cost`` take; with the class's own
  name (``"QuadraticCost"``, what network and checkpoint files store) they make
  :data:`COSTS` and :func:`get_cost`;
* ``output``: the output layer's activation the cost goes with: the sigmoid for the
  book's two, the softmax for the log-likelihood cost (chapter 3, "Softmax": the pair
  whose output error is ``δ^L = a - y``, eq. 84); a network's output layer is its cost's
  (:func:`gpunet.model.activations.layer_activations`);
* ``kernel_id``: the fused CUDA kernel's number for it (the launch's ``cost``
  argument, ``gpunet_output_error`` in ``backends/kernels/fused_sgd.cu``); ``None``:
  the fused engine cannot train it, and says so;
* ``fn`` and ``delta``: the book's value and output error ``δ^L`` (BP1);
* :meth:`DeclaredCost.output_error`: ``δ^L`` as the backend's fused operation, which the
  training step calls (from ``a`` alone: ``σ'`` comes from the activation's output,
  :mod:`gpunet.model.activations`), and :meth:`DeclaredCost.output_error_ops`: the same as
  the cpu engine's NumPy calls.

Both operations have defaults derived from ``delta`` (right on every backend, if slower),
so a new cost is one class here, plus its case in the kernel for the fused engine.
A cost of the user's own, a plain class with the book's ``fn`` and ``delta``
(:class:`Cost`), trains with the eager engine.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Protocol

import numpy as np

from ..backends import Array, Backend, array_module
from .activations import Activation, Op, Sigmoid, Softmax


class Cost(Protocol):
    """What a cost is to gpunet: the book's two static methods, ``fn`` and ``delta``.

    :class:`DeclaredCost`'s subclasses declare more (see the module); a cost of the user's own
    with only these two trains with the eager engine, which calls ``delta(z, a, y)``
    with ``z = σ⁻¹(a)`` (:func:`gpunet.model.backprop.output_error`).
    """

    @staticmethod
    def fn(a: Array, y: Array) -> Array:
        """The cost summed over the examples given (rows), a 0-d array."""

    @staticmethod
    def delta(z: Array, a: Array, y: Array) -> Array:
        """The output error ``δ^L`` (chapter 2, eq. BP1)."""


class DeclaredCost:
    """A cost declared to gpunet (see the module): subclass it, set ``name`` (and
    ``aliases``, ``kernel_id``), and give the book's ``fn`` and ``delta``."""

    #: what ``cost=`` and ``--cost`` take.
    name: ClassVar[str] = ""
    #: other spellings ``cost=`` takes.
    aliases: ClassVar[tuple[str, ...]] = ()
    #: the fused kernel's ``cost`` argument for it; ``None``: the kernel has no case.
    kernel_id: ClassVar[Optional[int]] = None
    #: the output layer's activation it goes with (the sigmoid, or the softmax).
    output: ClassVar[type[Activation]] = Sigmoid

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):  # its own name: a subclass of a cost is not another
            _declare(cls)

    @staticmethod
    def fn(a: Array, y: Array) -> Array:
        """The cost summed over the examples given (rows), a 0-d array."""
        raise NotImplementedError

    @staticmethod
    def delta(z: Array, a: Array, y: Array) -> Array:
        """The output error ``δ^L`` (chapter 2, eq. BP1), a new array."""
        raise NotImplementedError

    @classmethod
    def output_error(cls, backend: Backend, activation: type[Activation], a: Array,
                     y: Array, out: Array, scratch: Array) -> Array:
        """``out = δ^L`` for output activations ``a`` and desired outputs ``y``, the
        backend's fused operation where there is one; ``scratch`` a work buffer."""
        out[...] = cls.delta(activation.inverse(backend.xp, a), a, y)
        return out

    @classmethod
    def output_error_ops(cls, activation: type[Activation], a: np.ndarray, y: np.ndarray,
                         out: np.ndarray, scratch: np.ndarray, one: np.ndarray) -> list[Op]:
        """The cpu engine's NumPy calls for ``out = δ^L`` (``one`` a 0-d 1 of the dtype)."""
        return [(_assign_delta, (cls, activation, a, y, out))]


def _assign_delta(cost: type[DeclaredCost], activation: type[Activation], a: np.ndarray,
                  y: np.ndarray, out: np.ndarray) -> None:
    out[...] = cost.delta(activation.inverse(np, a), a, y)


_DECLARED: list[type[DeclaredCost]] = []
COSTS: dict[str, type[DeclaredCost]] = {}
"""Every declared cost by each of its names: ``name``, ``aliases`` and the class's own
name (which network and checkpoint files store)."""


def _declare(cost: type[DeclaredCost]) -> None:
    """Register a :class:`DeclaredCost` subclass under its names (a name taken twice raises)."""
    names = (cost.name, *cost.aliases, cost.__name__)
    taken = [name for name in names if name in COSTS]
    if taken:
        raise ValueError(f"cost {cost.__name__}: the name {taken[0]!r} is declared twice")
    if cost.kernel_id is not None and any(c.kernel_id == cost.kernel_id for c in _DECLARED):
        raise ValueError(f"cost {cost.__name__}: kernel id {cost.kernel_id} is declared twice")
    _DECLARED.append(cost)
    COSTS.update(dict.fromkeys(names, cost))


class QuadraticCost(DeclaredCost):
    """``C = 1/2 ||y - a||²`` per example; slow to learn when outputs saturate."""

    name = "quadratic"
    kernel_id = 0

    @staticmethod
    def fn(a: Array, y: Array) -> Array:
        """Cost summed over the examples: ``Σ_x 1/2 ||a - y||²``."""
        xp = array_module(a, y)
        d = a - y
        return 0.5 * xp.sum(d * d)

    @staticmethod
    def delta(z: Array, a: Array, y: Array) -> Array:
        """Output error ``δ^L = (a - y) ⊙ σ'(z)``, ``σ'`` from ``a`` (``z`` unused)."""
        return Sigmoid.times_prime(a - y, a)

    @classmethod
    def output_error(cls, backend: Backend, activation: type[Activation], a: Array,
                     y: Array, out: Array, scratch: Array) -> Array:
        return activation.error_times_prime(backend, a, y, out, scratch)

    @classmethod
    def output_error_ops(cls, activation: type[Activation], a: np.ndarray, y: np.ndarray,
                         out: np.ndarray, scratch: np.ndarray, one: np.ndarray) -> list[Op]:
        return [(np.subtract, (a, y, out)), *activation.prime_mul_ops(out, a, scratch, one)]


class OutputMinusTarget(DeclaredCost):
    """A cost whose output error is ``δ^L = a^L - y``: the output layer's derivative
    cancels against the cost's (the sigmoid's with the cross-entropy, eq. 66; the
    softmax's with the log-likelihood, eq. 84). Not a cost itself (it has no name)."""

    @staticmethod
    def delta(z: Array, a: Array, y: Array) -> Array:
        """Output error ``δ^L = a - y`` (``z`` unused: the derivative cancels)."""
        return a - y

    @classmethod
    def output_error(cls, backend: Backend, activation: type[Activation], a: Array,
                     y: Array, out: Array, scratch: Array) -> Array:
        return backend.cross_entropy_output_error(a, y, out)

    @classmethod
    def output_error_ops(cls, activation: type[Activation], a: np.ndarray, y: np.ndarray,
                         out: np.ndarray, scratch: np.ndarray, one: np.ndarray) -> list[Op]:
        return [(np.subtract, (a, y, out))]


class CrossEntropyCost(OutputMinusTarget):
    """``C = -Σ_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)]`` per example; no slowdown."""

    name = "cross-entropy"
    aliases = ("crossentropy", "cross_entropy")
    kernel_id = 1

    @staticmethod
    def fn(a: Array, y: Array) -> Array:
        """Cost summed over the examples, never NaN.

        The book's program wraps the sum in ``nan_to_num`` because ``0 · ln 0`` gives
        NaN where ``a = y = 0`` or ``a = y = 1``. Here the logarithm's argument is
        kept at least the smallest normal number of the dtype, so those terms are
        exactly 0, and an output saturated on the *wrong* value costs a large finite
        amount (about 87 in float32, 708 in float64) instead of ``inf``.
        """
        xp = array_module(a, y)
        tiny = xp.finfo(a.dtype).tiny
        log_a = xp.log(xp.maximum(a, tiny))
        log_1ma = xp.log(xp.maximum(1 - a, tiny))
        return -xp.sum(y * log_a + (1 - y) * log_1ma)


class LogLikelihoodCost(OutputMinusTarget):
    """The log-likelihood cost of a softmax output layer (chapter 3, "Softmax"):
    ``C = -ln a^L_y`` per example (eq. 80), ``y`` the example's class, i.e.
    ``-Σ_j y_j ln a^L_j`` for the one-hot desired output; its output error is
    ``δ^L = a^L - y`` (eq. 81 and 84; the softmax's derivative cancels as the sigmoid's
    does against the cross-entropy). Declares the softmax as its output layer: a
    network with this cost has a softmax output layer, and no other cost does."""

    name = "log-likelihood"
    aliases = ("loglikelihood", "log_likelihood")
    kernel_id = 2  # its kernel case: a - y, in the softmax output build (GPUNET_SOFTMAX)
    output = Softmax

    @staticmethod
    def fn(a: Array, y: Array) -> Array:
        """Cost summed over the examples, ``-Σ y ln a``, never NaN: ``ln a`` taken of at
        least the dtype's smallest normal number, so a softmax output of exactly 0 on
        the right class costs a large finite amount (as the cross-entropy's does)."""
        xp = array_module(a, y)
        tiny = xp.finfo(a.dtype).tiny
        return -xp.sum(y * xp.log(xp.maximum(a, tiny)))


def declared_costs() -> tuple[type[DeclaredCost], ...]:
    """Every declared cost, in the order declared (the book's quadratic cost first)."""
    return tuple(_DECLARED)


def cost_names() -> tuple[str, ...]:
    """Each declared cost's ``name``: the choices of ``--cost``."""
    return tuple(cost.name for cost in _DECLARED)


def is_declared(cost: Any) -> bool:
    """Whether ``cost`` (as :func:`get_cost` gives it) is a declared cost (a :class:`DeclaredCost`)."""
    return isinstance(cost, type) and cost in _DECLARED


def declared_phrase() -> str:
    """The declared costs in an engine's message: "the book's two costs" while they are
    all there is, else their names."""
    names = cost_names()
    if names == ("quadratic", "cross-entropy"):
        return "the book's two costs"
    return "the costs " + ", ".join(names)


def get_cost(cost: Any) -> Any:
    """Resolve a cost given as a class, an instance, or a name (``"quadratic"``...)."""
    if isinstance(cost, str):
        try:
            return COSTS[cost]
        except KeyError:
            raise ValueError(f"unknown cost {cost!r}; use "
                             f"{' or '.join(repr(name) for name in cost_names())}.") from None
    if isinstance(cost, type) and all(hasattr(cost, m) for m in ("fn", "delta")):
        return cost
    if all(hasattr(cost, m) for m in ("fn", "delta")):
        return type(cost)
    classes = ", ".join(declared.__name__ for declared in _DECLARED)
    raise ValueError(f"cost must be {classes} or their name, got {cost!r}.")
