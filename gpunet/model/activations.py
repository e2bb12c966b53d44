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
engine, its device functions in the kernel. Only the sigmoid exists today; a network
that declares no ``activation`` is a sigmoid network (:func:`activation_of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional

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


def activation_of(model: Any) -> type[Activation]:
    """The activation of a network or stack (or anything an engine trains): its
    ``activation`` where it declares one, else the book's sigmoid."""
    return get_activation(getattr(model, "activation", SIGMOID))
