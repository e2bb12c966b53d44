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

from typing import Any, Sequence, Union, cast

import numpy as np

from ..backends import Backend, DeviceLike, get_backend
from ..model.arguments import check_choice, check_dtype, check_sizes
from ..model.costs import Cost, get_cost
from ..model.initialization import INITS, InitName, initial_parameters
from ..model.parameters import flat_layers


class NetworkModel:
    """The settings of K ≥ 1 networks of one shape, checked: ``sizes`` (a copy),
    ``cost`` (the class), ``init``, ``dtype``; then, with :meth:`_use_device`, the
    ``backend`` and its array module ``xp``."""

    backend: Backend

    def __init__(self, sizes: Sequence[int], cost: Union[Cost, str], init: str,
                 dtype: Any) -> None:
        self._sizes = check_sizes(sizes)
        self.cost = get_cost(cost)
        self.dtype = check_dtype(dtype)
        self.init = cast(InitName, check_choice(init, INITS, "init"))

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
        return initial_parameters(self._sizes, rng, self.init)

    def initial_row(self, rng: np.random.Generator) -> np.ndarray:
        """One network's initial parameters drawn from ``rng`` as a flat host float64
        buffer (:mod:`gpunet.model.parameters`' layout)."""
        flat, weight_views, bias_views = flat_layers(self._sizes, np, np.float64)
        weights, biases = self.initial_parameters(rng)
        for view, value in zip([*weight_views, *bias_views], [*weights, *biases]):
            view[...] = value
        row: np.ndarray = flat  # flat_layers is typed Any (any array module)
        return row
