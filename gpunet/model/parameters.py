"""Where a network's parameters live: one flat buffer, per-layer views into it.

All weights and biases of a network sit in one contiguous array, every weight matrix
first (row-major, layer by layer), then every bias column. ``weights[l]`` and
``biases[l]`` are views of it with the book's shapes, ``(n_{l+1}, n_l)`` and
``(n_{l+1}, 1)`` (chapter 1, "The architecture of neural networks"). The gradients
use the same layout, so one SGD step updates every parameter with a single fused
operation, and an engine that runs on its own kernels (the fused CUDA engine) reads and
writes the very same buffer.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

from ..backends import Array, Backend


class Parameters(Protocol):
    """What an engine sees of the networks it trains: their shape and their buffer.

    A :class:`gpunet.Network` (one network: ``parameters`` is ``(P,)``, ``weights[l]``
    ``(n_{l+1}, n_l)``) and a :class:`gpunet.NetworkStack` (K networks: ``(K, P)`` and
    ``(K, n_{l+1}, n_l)``, row ``k`` network ``k``'s buffer) both are one. Engines read
    nothing else of them (no private methods, no training loop), so they import neither
    ``network`` nor ``stack`` and serve both.
    """

    @property
    def sizes(self) -> Sequence[int]: ...

    @property
    def cost(self) -> Any:
        """The cost as :func:`gpunet.model.costs.get_cost` gives it: a class or an instance
        with the book's ``fn`` and ``delta``."""

    @property
    def dtype(self) -> Any: ...

    @property
    def backend(self) -> Backend: ...

    @property
    def xp(self) -> Any: ...

    @property
    def parameters(self) -> Array: ...

    @property
    def weights(self) -> Sequence[Array]: ...

    @property
    def biases(self) -> Sequence[Array]: ...


@runtime_checkable
class StackedParameters(Parameters, Protocol):
    """:class:`Parameters` of ``len()`` networks: ``parameters`` is ``(K, P)``."""

    def __len__(self) -> int: ...


def weight_shapes(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """``(n_{l+1}, n_l)`` for each layer ``l`` of ``sizes``."""
    return [(n, m) for m, n in zip(sizes[:-1], sizes[1:])]


def bias_shapes(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """``(n_{l+1}, 1)`` for each layer ``l`` of ``sizes``."""
    return [(n, 1) for n in sizes[1:]]


def n_weights(sizes: Sequence[int]) -> int:
    """Number of weights: the flat buffer's first ``n_weights`` entries (they decay in L2)."""
    return sum(n * m for n, m in weight_shapes(sizes))


def n_parameters(sizes: Sequence[int]) -> int:
    """Number of weights and biases together: the flat buffer's length."""
    return n_weights(sizes) + sum(sizes[1:])


def layer_views(flat: Array, shapes: Sequence[tuple[int, int]]) -> list[Array]:
    """Consecutive blocks of ``flat``'s last axis as matrices of ``shapes``, views that
    keep its leading axes: a ``(P,)`` buffer gives ``(r, c)`` views, a ``(K, P)`` array
    ``(K, r, c)`` ones (row ``k`` network ``k``'s)."""
    views, offset, lead = [], 0, tuple(flat.shape[:-1])
    for rows, cols in shapes:
        views.append(flat[..., offset:offset + rows * cols].reshape(lead + (rows, cols)))
        offset += rows * cols
    return views


def flat_layers(sizes: Sequence[int], xp: Any, dtype: Any) -> tuple[Array, list[Array], list[Array]]:
    """A new flat buffer for a network of ``sizes`` and its per-layer views.

    Returns ``(flat, weights, biases)`` where ``weights[l]`` and ``biases[l]`` are
    views of ``flat`` with the book's shapes.
    """
    return _split(xp.empty(n_parameters(sizes), dtype=dtype), sizes)


def stacked_layers(sizes: Sequence[int], K: int, xp: Any,
                   dtype: Any) -> tuple[Array, list[Array], list[Array]]:
    """A new ``(K, P)`` parameter array for K networks of ``sizes``, and its layer views.

    Row ``k`` is network ``k``'s flat buffer in this module's layout. Returns ``(flat,
    weights, biases)``: ``weights[l]`` of shape ``(K, n_{l+1}, n_l)`` and ``biases[l]``
    of shape ``(K, n_{l+1}, 1)``, views of ``flat``.
    """
    return _split(xp.empty((K, n_parameters(sizes)), dtype=dtype), sizes)


def _split(flat: Array, sizes: Sequence[int]) -> tuple[Array, list[Array], list[Array]]:
    """``(flat, weights, biases)``: the layout's layer views of ``flat``."""
    views = layer_views(flat, weight_shapes(sizes) + bias_shapes(sizes))
    n_layers = len(sizes) - 1
    return flat, views[:n_layers], views[n_layers:]


def as_rows(params: Parameters) -> tuple[Array, list[Array], list[Array]]:
    """``params``' buffer as K rows: the ``(K, P)`` parameters and their ``(K, n_{l+1},
    n_l)`` / ``(K, n_{l+1}, 1)`` layer views. A stack's are its own; a network's ``(P,)``
    buffer is one row (``K = 1``), the views of its very memory, so what trains the rows
    trains the network."""
    flat = params.parameters
    if flat.ndim == 2:
        return flat, list(params.weights), list(params.biases)
    return (flat.reshape(1, -1), [w.reshape((1,) + w.shape) for w in params.weights],
            [b.reshape((1,) + b.shape) for b in params.biases])
