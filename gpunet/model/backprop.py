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
``δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l)`` ``Δ^l = (Δ^{l+1} w^{l+1}) ⊙ σ'(Z^l)``
(BP2)
``∂C/∂b^l = δ^l`` (BP3)                  ``∇b^l = Σ_rows Δ^l``
``∂C/∂w^l = δ^l (a^{l-1})ᵀ`` (BP4)       ``∇w^l = (Δ^l)ᵀ A^{l-1}``
======================================  =========================================

σ and σ′ are each layer's activation (:mod:`gpunet.model.activations`; the book's
sigmoid, ``σ'(z) = σ(z)(1 - σ(z))``, or tanh or ReLU in a hidden layer, the softmax
in the output layer with the log-likelihood cost), σ′ taken from the output ``A^l``,
so the training loop keeps only the activations, never ``Z^l``. The functions take
one activation for every layer or a sequence with one per layer
(:func:`gpunet.model.activations.layer_activations`). Every buffer comes from a
:class:`Workspace` allocated once per run; nothing here allocates.

K networks of one shape go through at once: every array has a leading axis of length
``K`` (network ``k``'s mini-batch, activations and errors in slice ``k``) and every
matrix product is a batched one (``xp.matmul`` on 3-D arrays: one BLAS call per network
on NumPy, one batched GEMM on CuPy). One network is ``K = 1``: a
:class:`gpunet.Network`'s ``update_mini_batch``, its ``backprop`` and the eager engine
(:mod:`gpunet.engines.eager`) for one network or a stack run this same code, so a
stacked network's step is the single network's by construction (and, on NumPy, bit for
bit: a batched product of one matrix is the same BLAS call as a 2-D one).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..backends import Array, Backend
from .activations import SIGMOID, Activation, Activations, layer_activations, per_layer
from .costs import DeclaredCost
from .parameters import Parameters, as_rows, n_weights, stacked_layers


class Workspace:
    """Buffers for K mini-batches of exactly ``k`` rows each, allocated once per run.

    ``X`` and ``Y`` take the mini-batches (``(K, k, n_in)``, ``(K, k, n_out)``). A full
    mini-batch and a smaller last one get a workspace each, so every buffer is
    contiguous (no ``[:, :k]`` slices, which a batched GEMM would have to copy). The
    gradient has the parameters' ``(K, P)`` layout (:mod:`gpunet.model.parameters`):
    ``nabla_w[l]`` and ``nabla_b[l]`` are views of ``gradient``.
    """

    def __init__(self, sizes: Sequence[int], K: int, xp: Any, dtype: Any, k: int) -> None:
        self.k = k
        self.X = xp.empty((K, k, sizes[0]), dtype=dtype)
        self.Y = xp.empty((K, k, sizes[-1]), dtype=dtype)
        self.activations = [xp.empty((K, k, n), dtype=dtype) for n in sizes[1:]]
        self.deltas = [xp.empty((K, k, n), dtype=dtype) for n in sizes[1:]]
        self.scratch = [xp.empty((K, k, n), dtype=dtype) for n in sizes[1:]]
        self.gradient, self.nabla_w, nabla_b = stacked_layers(sizes, K, xp, dtype)
        self.nabla_b = [nb.reshape(K, -1) for nb in nabla_b]
        self.n_weights = n_weights(sizes)


def feedforward(backend: Backend, weights: Sequence[Array], biases: Sequence[Array],
                a: Array, activation: Activations = SIGMOID) -> Array:
    """Rows of ``a`` through every layer: ``a ← σ(a wᵀ + bᵀ)`` (allocates; for evaluation)."""
    for w, b, layer in zip(weights, biases, per_layer(activation, len(weights))):
        z = backend.xp.matmul(a, w.T)
        a = layer.add_bias_activate(backend, z, b.T, out=z)
    return a


def backprop_into(backend: Backend, cost: Any, weights: Sequence[Array],
                  biases: Sequence[Array], ws: Workspace,
                  activation: Activations = SIGMOID,
                  masks: Optional[Sequence[Array]] = None) -> None:
    """Fill ``ws.gradient`` with each network's ``Σ_x ∂C_x/∂w`` and ``Σ_x ∂C_x/∂b``.

    ``weights[l]`` is ``(K, n_{l+1}, n_l)`` and ``biases[l]`` ``(K, n_{l+1}, 1)``
    (:func:`gpunet.model.parameters.as_rows`); ``ws.X`` and ``ws.Y`` hold network ``k``'s
    mini-batch in slice ``k``. ``masks`` (dropout, :mod:`gpunet.model.dropout`): per
    hidden layer a ``(K, 1, n_l)`` array of 1s and 0s, network ``k``'s kept neurons for
    this mini-batch; a removed neuron's activation and error are 0.
    """
    xp = backend.xp
    layers = per_layer(activation, len(weights))
    # Feedforward, keeping every layer's activations A^l.
    a = ws.X
    for l, (w, b, z, layer) in enumerate(zip(weights, biases, ws.activations, layers)):
        xp.matmul(a, w.transpose(0, 2, 1), out=z)  # Z = A Wᵀ (eq. 25, rows)
        a = layer.add_bias_activate(backend, z, b.transpose(0, 2, 1), out=z)
        if masks is not None and l < len(masks):  # dropout: removed neurons output 0
            xp.multiply(a, masks[l], out=a)
    # Output error Δ^L (BP1), then Δ^l = (Δ^{l+1} w^{l+1}) ⊙ σ'(z^l) (BP2), with the
    # gradients of each layer (BP3, BP4) as soon as its Δ is known.
    delta = ws.deltas[-1]
    output_error(backend, cost, a, ws.Y, delta, ws.scratch[-1], layers[-1])  # BP1
    for l in range(len(weights) - 1, -1, -1):
        a_prev = ws.X if l == 0 else ws.activations[l - 1]
        xp.matmul(delta.transpose(0, 2, 1), a_prev, out=ws.nabla_w[l])  # BP4
        xp.sum(delta, axis=1, out=ws.nabla_b[l])  # BP3
        if l > 0:
            prev = ws.deltas[l - 1]
            xp.matmul(delta, weights[l], out=prev)  # BP2
            layers[l - 1].prime_mul(backend, prev, a_prev, ws.scratch[l - 1])
            if masks is not None:  # a removed neuron back-propagates no error
                xp.multiply(prev, masks[l - 1], out=prev)
            delta = prev


class Step:
    """The update ``w → (1 - η_k λ_k/n) w - (η_k/k) ∇w``, ``b → b - (η_k/k) ∇b`` of
    network ``k`` (chapter 3, eq. 93 and 94; with ``λ = 0`` chapter 1's eq. 20 and 21),
    for mini-batches of ``k`` rows, only the weights (the first ``n_weights`` entries of
    each row) decaying.

    One network takes the backend's one fused update with the scalars ``η/k`` and
    ``1 - ηλ/n`` (one kernel on CuPy). K networks take per-network columns of those
    values, kept in the parameters' dtype, so that each row rounds exactly as a single
    network's update does.

    With momentum ``μ`` or L1 ``λ₁`` on some network (``velocity``: the ``(K, P)``
    velocities, flat layout), the extended step, per network (chapter 3: L1, eq. 96
    and 97, ``sgn(0) = 0``; momentum, eq. 107 and 108, the gradient that of the
    regularized cost, eq. 87 and 96)::

        G  = (η/k) ∇ + (ηλ₁/n) sgn(w)           (weights; biases: (η/k) ∇b)
        v' = μ v - G - (ηλ/n) w                  (biases: μ v - G)
        w' = (1 - ηλ/n) w - G + μ v              (= w + v'; biases: b - G + μ v)

    ``w'`` is computed from the same terms as ``v'`` rather than as ``w + v'``, so that
    a network with ``μ = 0`` in a stack with momentum rounds exactly as its plain step.
    Without momentum or L1 on any network the plain step runs, unchanged.

    Bound once, to the ``(K, P)`` ``parameters`` and the workspace's ``gradient`` (which
    each call clobbers), so a step makes no views and allocates nothing;
    :meth:`set_eta` changes the networks' η between epochs.
    """

    def __init__(self, backend: Backend, eta: Sequence[float], lmbda: Sequence[float],
                 k: int, n: int, parameters: Array, gradient: Array, n_weights: int,
                 momentum: Sequence[float] = (), l1: Sequence[float] = (),
                 velocity: Any = None) -> None:
        self.backend, self.n_weights, self.k, self.n = backend, n_weights, k, n
        self.parameters, self.gradient = parameters, gradient
        K = len(eta)
        self.lmbda = np.asarray(lmbda, dtype=np.float64)
        self.momentum = np.asarray(momentum or (0.0,) * K, dtype=np.float64)
        self.l1 = np.asarray(l1 or (0.0,) * K, dtype=np.float64)
        self.extended = bool((self.momentum != 0).any() or (self.l1 != 0).any())
        self.row, self.row_gradient = parameters[0], gradient[0]  # one network's buffers
        self.weights = parameters[:, :n_weights]  # every network's weights: they decay
        if self.extended:
            xp = backend.xp
            self.velocity = velocity
            self.momentum_on = bool((self.momentum != 0).any())
            if self.momentum_on and velocity is None:
                raise ValueError("momentum needs the velocities: pass velocity=")
            self.held = xp.empty_like(parameters)  # μ v
            self.weight_term = xp.empty_like(self.weights)  # sgn(w), (ηλ/n) w
        self.set_eta(eta)

    def set_eta(self, eta: Sequence[float]) -> None:
        """The networks' η from now on (the scalars and columns recomputed exactly as
        the constructor computes them; ``η = 0`` freezes a network)."""
        backend, k, n = self.backend, self.k, self.n
        eta_k = np.asarray(eta, dtype=np.float64)
        decay = 1.0 - eta_k * self.lmbda / n
        K, dtype = len(eta_k), self.parameters.dtype
        self.scalars = ((float(eta_k[0] / k), float(decay[0]))
                        if K == 1 and not self.extended else None)
        self.scale = backend.asarray((eta_k / k).reshape(K, 1), dtype)
        self.decay = (backend.asarray(decay.reshape(K, 1), dtype)
                      if (decay != 1.0).any() else None)
        if not self.extended:
            return
        def column(values: np.ndarray) -> Array:
            return backend.asarray(np.asarray(values).reshape(K, 1), dtype)

        mu = np.where(eta_k == 0.0, 0.0, self.momentum)  # a frozen row: the identity
        self.mu = column(mu) if self.momentum_on else None
        l1_term = eta_k * self.l1 / n
        self.l1_term = column(l1_term) if (l1_term != 0).any() else None
        l2_term = eta_k * self.lmbda / n
        self.l2_term = (column(l2_term) if self.momentum_on and (l2_term != 0).any()
                        else None)

    def __call__(self) -> None:
        if self.scalars is not None:
            scale, decay = self.scalars
            self.backend.sgd_update(self.row, self.row_gradient, scale, decay,
                                    decayed=self.n_weights)
            return
        if self.extended:
            self._extended()
            return
        self.gradient *= self.scale
        if self.decay is not None:
            self.weights *= self.decay
        self.parameters -= self.gradient

    def _extended(self) -> None:
        """The step with momentum and L1 (the class's formulas), in place."""
        xp, G, W, term = self.backend.xp, self.gradient, self.weights, self.weight_term
        G *= self.scale
        if self.l1_term is not None:  # G += (ηλ₁/n) sgn(w): eq. 96
            xp.sign(W, out=term)
            term *= self.l1_term
            G[:, :self.n_weights] += term
        if self.mu is not None:  # v' = μ v - G - (ηλ/n) w: eq. 107
            V, held = self.velocity, self.held
            xp.multiply(V, self.mu, out=held)
            xp.subtract(held, G, out=V)
            if self.l2_term is not None:
                xp.multiply(W, self.l2_term, out=term)
                V[:, :self.n_weights] -= term
        if self.decay is not None:
            W *= self.decay
        self.parameters -= G
        if self.mu is not None:  # w' = (1 - ηλ/n) w - G + μ v (= w + v'): eq. 108
            self.parameters += self.held


def sgd_step(net: Parameters, X: Array, Y: Array, eta: float, lmbda: float, n: int) -> None:
    """One step of one network on the mini-batch ``X``, ``Y`` (rows, on the device):
    :func:`backprop_into` and :class:`Step` with ``K = 1``. ``Network.update_mini_batch``."""
    k = X.shape[0]
    ws = Workspace(net.sizes, 1, net.xp, net.dtype, k)
    ws.X[0], ws.Y[0] = X, Y
    parameters, weights, biases = as_rows(net)
    backprop_into(net.backend, net.cost, weights, biases, ws, layer_activations(net))
    Step(net.backend, [eta], [lmbda], k, n, parameters, ws.gradient, ws.n_weights)()


def output_error(backend: Backend, cost: Any, a: Array, y: Array, out: Array,
                 scratch: Array, activation: type[Activation] = SIGMOID) -> None:
    """``out = δ^L`` for output activations ``a`` and desired outputs ``y`` (BP1).

    A declared cost (:class:`gpunet.model.costs.DeclaredCost`) writes it with its
    ``output_error``, the backend's fused operation; a user's own cost class with only
    the book's ``delta(z, a, y)`` gets ``z = σ⁻¹(a)`` (the activation's ``inverse``).
    """
    if isinstance(cost, type) and issubclass(cost, DeclaredCost):
        cost.output_error(backend, activation, a, y, out, scratch)
    else:
        out[...] = cost.delta(activation.inverse(backend.xp, a), a, y)
