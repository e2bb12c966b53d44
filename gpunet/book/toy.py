"""Section 3.1's toy neuron: one input ``x = 1``, target ``y = 0``, learning to output 0.

It shows the learning slowdown of the quadratic cost: from ``w = b = 2`` the neuron
starts saturated (output 0.98), ``σ'(z)`` is tiny, and it barely moves for ~150 epochs;
the cross-entropy cost has no ``σ'`` in its gradient and learns at once.

The neuron is trained with the library itself: a ``Network([1, 1])`` in float64 on the
CPU, one example, one mini-batch of one per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..networks.network import Network

# (cost, η) as in the book's two figures
SETTINGS = {"quadratic": 0.15, "cross-entropy": 0.005}
STARTS = {"w=0.6, b=0.9": (0.6, 0.9), "w=b=2.0": (2.0, 2.0)}


@dataclass
class ToyRun:
    cost: str
    eta: float
    w: float
    b: float
    costs: list[float]  # index e: the cost after e epochs (e = 0 is the start)
    outputs: list[float]  # index e: the neuron's output after e epochs


def train_toy_neuron(cost: str, eta: float, w: float, b: float, epochs: int = 300,
                     x: float = 1.0, y: float = 0.0) -> ToyRun:
    """Train the single neuron and record its cost and output after every epoch."""
    net = Network([1, 1], cost=cost, dtype="float64", device="cpu", seed=0)
    net.set_parameters([np.array([[w]])], [np.array([[b]])])
    data = (np.array([[x]]), np.array([[y]]))
    costs, outputs = [net.total_cost(data)], [float(net.feedforward(data[0])[0, 0])]

    def record(_: dict[str, Any]) -> None:
        costs.append(net.total_cost(data))
        outputs.append(float(net.feedforward(data[0])[0, 0]))

    net.SGD(data, epochs, 1, eta, verbose=False, callback=record)
    return ToyRun(cost, eta, w, b, costs, outputs)
