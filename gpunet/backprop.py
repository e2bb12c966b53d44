"""Feedforward and backpropagation for a whole mini-batch at once, in place.

This is chapter 2's algorithm ("The backpropagation algorithm") in its fully
matrix-based form (the chapter's closing problem): the ``k`` examples of a mini-batch
are the rows of ``X``, so each layer is one matrix product for all of them.

======================================  =========================================
the book, one example (column vectors)   here, ``k`` examples (rows)
======================================  =========================================
``z^l = w^l a^{l-1} + b^l`` (eq. 25)     ``Z^l = A^{l-1} (w^l)ᵀ + (b^l)ᵀ``
``a^l = σ(z^l)``                         ``A^l = σ(Z^l)``
``δ^L = ∇_a C ⊙ σ'(z^L)`` (BP1)          ``Δ^L`` from the cost (its ``output_error``)
``δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l)`` ``Δ^l = (Δ^{l+1} w^{l+1}) ⊙ A^l ⊙ (1 - A^l)``
(BP2)
``∂C/∂b^l = δ^l`` (BP3)                  ``∇b^l = Σ_rows Δ^l``
``∂C/∂w^l = δ^l (a^{l-1})ᵀ`` (BP4)       ``∇w^l = (Δ^l)ᵀ A^{l-1}``
======================================  =========================================

``σ'(z) = σ(z)(1 - σ(z))`` (chapter 1, eq. 5's derivative), so the training loop keeps
only the activations ``A^l``, never ``Z^l``. Every buffer comes from a
:class:`Workspace` allocated once per run; nothing here allocates.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .backends import Array, Backend
from .parameters import flat_layers, n_weights


class Workspace:
    """Buffers for mini-batches of up to ``m`` rows, allocated once per training run.

    Row slices ``[:k]`` serve a smaller last mini-batch, so training allocates nothing
    inside its epochs. The gradient shares the parameters' flat layout
    (:mod:`gpunet.parameters`): ``nabla_w[l]`` and ``nabla_b[l]`` are views of
    ``gradient``.
    """

    def __init__(self, sizes: Sequence[int], xp: Any, dtype: Any, m: int) -> None:
        self.activations = [xp.empty((m, n), dtype=dtype) for n in sizes[1:]]
        self.deltas = [xp.empty((m, n), dtype=dtype) for n in sizes[1:]]
        self.scratch = [xp.empty((m, n), dtype=dtype) for n in sizes[1:]]
        self.gradient, self.nabla_w, nabla_b = flat_layers(sizes, xp, dtype)
        self.nabla_b = [nb.reshape(-1) for nb in nabla_b]
        self.n_weights = n_weights(sizes)


def feedforward(backend: Backend, weights: Sequence[Array], biases: Sequence[Array],
                a: Array) -> Array:
    """Rows of ``a`` through every layer: ``a ← σ(a wᵀ + bᵀ)`` (allocates; for evaluation)."""
    for w, b in zip(weights, biases):
        z = backend.xp.matmul(a, w.T)
        a = backend.add_bias_sigmoid(z, b.T, out=z)
    return a


def backprop_into(backend: Backend, cost: Any, weights: Sequence[Array],
                  biases: Sequence[Array], ws: Workspace, X: Array, Y: Array, k: int) -> None:
    """Fill ``ws.nabla_b`` / ``ws.nabla_w`` with ``Σ_x ∂C_x/∂b``, ``Σ_x ∂C_x/∂w``.

    ``X`` and ``Y`` hold the ``k`` inputs and desired outputs of a mini-batch as rows.
    """
    xp = backend.xp
    # Feedforward, keeping every layer's activations A^l.
    a = X
    for w, b, out in zip(weights, biases, ws.activations):
        z = out[:k]
        xp.matmul(a, w.T, out=z)
        a = backend.add_bias_sigmoid(z, b.T, out=z)
    # Output error Δ^L (BP1), then Δ^l = (Δ^{l+1} w^{l+1}) ⊙ σ'(z^l) (BP2), with the
    # gradients of each layer (BP3, BP4) as soon as its Δ is known.
    delta = ws.deltas[-1][:k]
    output_error(backend, cost, a, Y, delta, ws.scratch[-1][:k])
    for l in range(len(weights) - 1, -1, -1):
        a_prev = X if l == 0 else ws.activations[l - 1][:k]
        xp.matmul(delta.T, a_prev, out=ws.nabla_w[l])
        xp.sum(delta, axis=0, out=ws.nabla_b[l])
        if l > 0:
            prev = ws.deltas[l - 1][:k]
            xp.matmul(delta, weights[l], out=prev)
            backend.sigmoid_prime_mul(prev, a_prev, ws.scratch[l - 1][:k])
            delta = prev


def output_error(backend: Backend, cost: Any, a: Array, y: Array, out: Array,
                 scratch: Array) -> None:
    """``out = δ^L`` for output activations ``a`` and desired outputs ``y`` (BP1).

    The book's costs have a fused ``output_error``; a user's own cost class with only
    the book's ``delta(z, a, y)`` gets ``z = σ⁻¹(a) = ln a - ln(1 - a)``.
    """
    fused = getattr(cost, "output_error", None)
    if fused is not None:
        fused(backend, a, y, out, scratch)
    else:
        xp = backend.xp
        with np.errstate(divide="ignore"):  # a = 0 or 1 gives z = -inf or inf
            z = xp.log(a) - xp.log1p(-a)
        out[...] = cost.delta(z, a, y)
