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

Other neurons (chapter 3, "Other models of artificial neuron"): ``scales`` gives each
layer's factor on the default weights' standard deviation, its activation's
``init_scale`` (:mod:`gpunet.model.activations`): 1 for the sigmoid, tanh and softmax
layers, so their draw is exactly the book's, and √2 for a ReLU layer, whose weights come
from N(0, 2/n_in) (He et al. 2015, the initialization that suits rectified units: half
their inputs are 0, and twice the variance keeps ``z``'s spread from layer to layer).
The draws themselves are the same numbers in the same order, scaled, so the shuffles
that follow are those of the sigmoid network with that seed. ``"large"`` ignores the
scales (chapter 1's N(0, 1) for everything).
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

InitName = Literal["default", "large"]
INITS: tuple[InitName, ...] = ("default", "large")
"""The initializers by name: ``network2.py``'s default, and chapter 1's ``large``."""


def initial_parameters(sizes: Sequence[int], rng: np.random.Generator,
                       init: str = "default", scales: Sequence[float] = ()
                       ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(weights, biases)`` for a network of ``sizes``, drawn from ``rng`` (host
    float64, the book's shapes ``(n_{l+1}, n_l)`` and ``(n_{l+1}, 1)``): biases from
    N(0, 1), then weights from N(0, 1/n_in) (``init="default"``; times ``scales[l]``,
    one per layer, where given: N(0, 2/n_in) for a ReLU layer) or N(0, 1)
    (``"large"``)."""
    biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
    if init == "large":
        weights = [rng.standard_normal((n, m)) for m, n in zip(sizes[:-1], sizes[1:])]
    else:
        weights = [rng.standard_normal((n, m)) / np.sqrt(m)
                   for m, n in zip(sizes[:-1], sizes[1:])]
        for l, scale in enumerate(scales):
            if scale != 1.0:  # a factor of 1 leaves the book's draw exactly as it is
                weights[l] *= scale
    return weights, biases
