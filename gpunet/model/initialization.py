"""The initial weights and biases (chapter 3, "Weight initialization"), drawn once for
every kind of network.

``network2.py``'s ``default_weight_initializer`` draws each layer's biases from N(0, 1)
and its weights from N(0, 1/n_in), "Gaussian random variables with mean 0 and standard
deviation 1/√n_in", so that the weighted input ``z`` of a hidden neuron is not so wide
that the neuron saturates; ``large_weight_initializer`` (chapter 1's ``network.py``)
draws both from N(0, 1). Every draw comes from the network's own host generator, biases
first, then weights, layer by layer, as the book's code draws them, in float64: so a
:class:`gpunet.Network`, each network of a :class:`gpunet.NetworkStack` and the test
oracle (:mod:`gpunet.check.reference`) with the same seed start from the same
parameters, and the generator goes on to draw that network's shuffles.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

InitName = Literal["default", "large"]
INITS: tuple[InitName, ...] = ("default", "large")
"""The initializers by name: ``network2.py``'s default, and chapter 1's ``large``."""


def initial_parameters(sizes: Sequence[int], rng: np.random.Generator,
                       init: str = "default") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(weights, biases)`` for a network of ``sizes``, drawn from ``rng`` (host
    float64, the book's shapes ``(n_{l+1}, n_l)`` and ``(n_{l+1}, 1)``): biases from
    N(0, 1), then weights from N(0, 1/n_in) (``init="default"``) or N(0, 1)
    (``"large"``)."""
    biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
    if init == "large":
        weights = [rng.standard_normal((n, m)) for m, n in zip(sizes[:-1], sizes[1:])]
    else:
        weights = [rng.standard_normal((n, m)) / np.sqrt(m)
                   for m, n in zip(sizes[:-1], sizes[1:])]
    return weights, biases
