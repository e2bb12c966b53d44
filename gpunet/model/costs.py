"""The two cost functions of the book (chapter 3, "The cross-entropy cost function"; chapter 1, eq. 6), as in ``network2.py``.

Each cost is a class with static methods, so ``QuadraticCost.fn(a, y)`` and
``CrossEntropyCost.delta(z, a, y)`` read as in the book. Arrays hold one example per
row (or a single example as a vector or the book's ``(n, 1)`` column); ``fn`` returns
the cost *summed* over the examples given, as a 0-d array on their device.

The training loop does not call ``delta``: it asks the backend for the same output
error as one fused operation (``output_error``), computed from ``a`` alone since
``σ'(z) = a (1 - a)``.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..backends import Array, Backend, array_module


class QuadraticCost:
    """``C = 1/2 ||y - a||²`` per example; slow to learn when outputs saturate."""

    name = "quadratic"

    @staticmethod
    def fn(a: Array, y: Array) -> Array:
        """Cost summed over the examples: ``Σ_x 1/2 ||a - y||²``."""
        xp = array_module(a, y)
        d = a - y
        return 0.5 * xp.sum(d * d)

    @staticmethod
    def delta(z: Array, a: Array, y: Array) -> Array:
        """Output error ``δ^L = (a - y) ⊙ σ'(z)``."""
        return (a - y) * a * (1 - a)

    @staticmethod
    def output_error(backend: Backend, a: Array, y: Array, out: Array, scratch: Array) -> Array:
        """``delta`` written into ``out`` as one fused backend operation."""
        return backend.quadratic_output_error(a, y, out, scratch)


class CrossEntropyCost:
    """``C = -Σ_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)]`` per example; no slowdown."""

    name = "cross-entropy"

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

    @staticmethod
    def delta(z: Array, a: Array, y: Array) -> Array:
        """Output error ``δ^L = a - y`` (``z`` unused: the σ' term cancels)."""
        return a - y

    @staticmethod
    def output_error(backend: Backend, a: Array, y: Array, out: Array, scratch: Array) -> Array:
        """``delta`` written into ``out`` as one fused backend operation."""
        return backend.cross_entropy_output_error(a, y, out)


COSTS = {
    "quadratic": QuadraticCost,
    "QuadraticCost": QuadraticCost,
    "cross-entropy": CrossEntropyCost,
    "crossentropy": CrossEntropyCost,
    "cross_entropy": CrossEntropyCost,
    "CrossEntropyCost": CrossEntropyCost,
}

class Cost(Protocol):
    """What a cost is to gpunet: the book's two static methods, ``fn`` and ``delta``.

    ``QuadraticCost`` and ``CrossEntropyCost`` also have ``output_error(backend, a, y,
    out, scratch)``, ``delta`` as one fused backend operation written into ``out``; a
    cost of the user's own without it gets ``delta(z, a, y)`` called with
    ``z = σ⁻¹(a)`` (see :func:`gpunet.model.backprop.output_error`).
    """

    @staticmethod
    def fn(a: Array, y: Array) -> Array:
        """The cost summed over the examples given (rows), a 0-d array."""

    @staticmethod
    def delta(z: Array, a: Array, y: Array) -> Array:
        """The output error ``δ^L`` (chapter 2, eq. BP1)."""


def get_cost(cost: Any) -> Any:
    """Resolve a cost given as a class, an instance, or a name (``"quadratic"``...)."""
    if isinstance(cost, str):
        try:
            return COSTS[cost]
        except KeyError:
            raise ValueError(
                f"unknown cost {cost!r}; use 'quadratic' or 'cross-entropy'."
            ) from None
    if isinstance(cost, type) and all(hasattr(cost, m) for m in ("fn", "delta")):
        return cost
    if all(hasattr(cost, m) for m in ("fn", "delta")):
        return type(cost)
    raise ValueError(
        f"cost must be QuadraticCost, CrossEntropyCost or their name, got {cost!r}."
    )
