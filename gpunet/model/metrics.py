"""The per-epoch metrics: accuracy and cost on the device, a few numbers to the host.

``network2.py``'s ``accuracy`` and ``total_cost`` (chapter 3, eq. 85 and 86) for one
network's layers, computed on the device in chunks of rows; :func:`fetch` brings the
0-d results of an epoch to the host in one copy. One implementation for a
:class:`gpunet.Network` and for each row of a :class:`gpunet.NetworkStack`, so a
stacked network's accuracy and cost are the single network's, operation for operation.
"""

from __future__ import annotations

from typing import Sequence

from ..backends import Array, Backend
from .activations import SIGMOID, Activations
from .backprop import feedforward
from .costs import Cost

EVAL_CHUNK = 10_000  # rows per feedforward when evaluating a data set


def correct(backend: Backend, weights: Sequence[Array], biases: Sequence[Array], X: Array,
            labels: Array, activation: Activations = SIGMOID) -> Array:
    """0-d device array: how many rows of ``X`` the network ``weights``, ``biases``
    classifies as ``labels`` (its most active output), in chunks of :data:`EVAL_CHUNK`."""
    xp, total = backend.xp, None
    for s in range(0, X.shape[0], EVAL_CHUNK):
        out = feedforward(backend, weights, biases, X[s:s + EVAL_CHUNK], activation)
        hits = xp.sum(xp.argmax(out, axis=1) == labels[s:s + EVAL_CHUNK])
        total = hits if total is None else total + hits
    return total


def total_cost(backend: Backend, cost: Cost, weights: Sequence[Array],
               biases: Sequence[Array], X: Array, Y: Array, lmbda: float,
               activation: Activations = SIGMOID, l1: float = 0.0) -> Array:
    """0-d device array: the mean cost over the rows plus the L2 term ``λ/(2n) Σ w²``
    (chapter 3, eq. 85 and 86, ``network2.py``'s ``total_cost``) and, where ``l1`` is
    not 0, the L1 term ``(λ₁/n) Σ |w|`` (eq. 95), ``n`` the rows as for L2's."""
    xp, total, n = backend.xp, None, X.shape[0]
    for s in range(0, n, EVAL_CHUNK):
        c = cost.fn(feedforward(backend, weights, biases, X[s:s + EVAL_CHUNK], activation),
                    Y[s:s + EVAL_CHUNK])
        total = c if total is None else total + c
    total = total / n
    if lmbda:
        total = total + 0.5 * (lmbda / n) * sum(xp.sum(w * w) for w in weights)
    if l1:
        total = total + (l1 / n) * sum(xp.sum(xp.abs(w)) for w in weights)
    return total


def fetch(backend: Backend, values: list[Array]) -> list[float]:
    """Copy 0-d device metrics to the host in one transfer."""
    if not values:
        return []
    xp = backend.xp
    stacked = xp.stack([xp.asarray(v, dtype=xp.float64).reshape(()) for v in values])
    return [float(v) for v in backend.to_host(stacked)]
