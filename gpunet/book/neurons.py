"""Chapter 1's neuron models: perceptrons, sigmoid neurons, and small networks of them.

These are for understanding, not for speed: plain NumPy on the host.

>>> nand = Perceptron([-2, -2], 3)
>>> [nand.output([x1, x2]) for x1, x2 in [(0, 0), (0, 1), (1, 0), (1, 1)]]
[1, 1, 1, 0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import numpy as np


def sigmoid(z: Any) -> Any:
    """``σ(z) = 1 / (1 + e^(-z))``, without overflow warnings for large ``|z|``."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


@dataclass(frozen=True)
class Perceptron:
    """Output 1 if ``w·x + b > 0``, else 0 (chapter 1, "Perceptrons"; ``b`` is minus the threshold)."""

    weights: Any  # a sequence of floats, stored as a float64 NumPy vector
    bias: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", np.asarray(self.weights, dtype=np.float64))
        if self.weights.ndim != 1:
            raise ValueError("a neuron's weights must be a flat list, one per input.")

    def z(self, x: Sequence[float]) -> float:
        """The weighted input ``w·x + b``."""
        inputs = np.asarray(x, dtype=np.float64)
        if inputs.shape != self.weights.shape:
            raise ValueError(f"this neuron has {self.weights.size} inputs, got {inputs.size}.")
        return float(self.weights @ inputs + self.bias)

    def output(self, x: Sequence[float]) -> float:
        return 1 if self.z(x) > 0 else 0

    def scaled(self, c: float) -> "Perceptron":
        """The same neuron with weights and bias multiplied by ``c``."""
        return type(self)(self.weights * c, self.bias * c)


class SigmoidNeuron(Perceptron):
    """Output ``σ(w·x + b)``: a smoothed perceptron (chapter 1, "Sigmoid neurons")."""

    def output(self, x: Sequence[float]) -> float:
        return float(sigmoid(self.z(x)))


Source = Union[str, int]  # an input's index, or the name of another neuron


@dataclass
class NeuronNetwork:
    """Neurons wired by name: each takes network inputs (by index) or other neurons'
    outputs (by name); listed in an order where every neuron's sources come first.

    ``neurons`` maps a name to ``(neuron, sources)``; a source repeated twice counts
    twice (the book's adder feeds one NAND output into the carry neuron twice).
    """

    neurons: dict[str, tuple[Perceptron, Sequence[Source]]]
    outputs: Sequence[str]
    n_inputs: int = field(default=2)

    def __call__(self, x: Sequence[float]) -> list[float]:
        if len(x) != self.n_inputs:
            raise ValueError(f"this network has {self.n_inputs} inputs, got {len(x)}.")
        values: dict[Source, float] = {i: float(v) for i, v in enumerate(x)}
        for name, (neuron, sources) in self.neurons.items():
            try:
                values[name] = neuron.output([values[s] for s in sources])
            except KeyError as missing:
                raise ValueError(
                    f"neuron {name!r} reads {missing} before it is computed; list neurons "
                    f"after their sources."
                ) from None
        return [values[name] for name in self.outputs]

    def scaled(self, c: float) -> "NeuronNetwork":
        """Every weight and bias multiplied by ``c``."""
        return NeuronNetwork({k: (n.scaled(c), s) for k, (n, s) in self.neurons.items()},
                             self.outputs, self.n_inputs)

    def as_sigmoid(self) -> "NeuronNetwork":
        """The same weights and biases, with sigmoid neurons instead of perceptrons."""
        return NeuronNetwork(
            {k: (SigmoidNeuron(n.weights, n.bias), s) for k, (n, s) in self.neurons.items()},
            self.outputs, self.n_inputs,
        )


def nand() -> Perceptron:
    """The book's NAND perceptron: weights -2, -2, bias 3."""
    return Perceptron([-2, -2], 3)


def one_bit_adder() -> NeuronNetwork:
    """The book's adder of NAND perceptrons: outputs ``[x1 XOR x2, x1 AND x2]``."""
    g = nand()
    return NeuronNetwork(
        {
            "n1": (g, [0, 1]),
            "n2": (g, [0, "n1"]),
            "n3": (g, [1, "n1"]),
            "sum": (g, ["n2", "n3"]),
            "carry": (g, ["n1", "n1"]),  # the book's single weight -4 from n1
        },
        outputs=["sum", "carry"],
    )
