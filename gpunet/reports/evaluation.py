"""How a trained network errs on MNIST: accuracy, confusion matrix, worst mistakes.

Chapter 1 counts a digit as classified correctly when the most active output neuron is
the right one ("Implementing our network to classify digits"); the confusion matrix
splits the mistakes by (true digit, answer), and the worst mistakes are those the
network was most sure of.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..networks.network import Network

CHUNK = 10_000


@dataclass
class Evaluation:
    """The outputs of a network on labelled images, and what they say."""

    outputs: np.ndarray  # (n, 10) output activations, on the host
    labels: np.ndarray  # (n,) true digits

    @property
    def predictions(self) -> np.ndarray:
        predictions: np.ndarray = np.argmax(self.outputs, axis=1)  # NumPy's stubs: Any
        return predictions

    @property
    def correct(self) -> int:
        return int((self.predictions == self.labels).sum())

    @property
    def total(self) -> int:
        return int(self.labels.shape[0])

    def confusion(self) -> np.ndarray:
        """``matrix[t, p]``: how many images of digit ``t`` were answered ``p``."""
        k = self.outputs.shape[1]
        matrix = np.zeros((k, k), dtype=np.int64)
        np.add.at(matrix, (self.labels, self.predictions), 1)
        return matrix

    def most_confused(self, count: int = 5) -> list[tuple[int, int, int]]:
        """The ``count`` largest off-diagonal cells: ``(true, answered, times)``."""
        matrix = self.confusion()
        np.fill_diagonal(matrix, 0)
        order = np.argsort(matrix, axis=None, kind="stable")[::-1][:count]
        pairs = [(int(t), int(p), int(matrix[t, p]))
                 for t, p in zip(*np.unravel_index(order, matrix.shape))]
        return [pair for pair in pairs if pair[2] > 0]

    def worst_mistakes(self, count: int = 16) -> np.ndarray:
        """Indices of misclassified images, the most confidently wrong first."""
        wrong = np.flatnonzero(self.predictions != self.labels)
        confidence = self.outputs[wrong, self.predictions[wrong]]
        return wrong[np.argsort(-confidence, kind="stable")][:count]


def evaluate(net: "Network", X: Any, labels: Any) -> Evaluation:
    """Feed ``X`` (rows of inputs) through ``net`` in chunks; keep the outputs on the host."""
    X = np.asarray(X)
    outputs = [np.asarray(net.backend.to_host(net.feedforward(X[s:s + CHUNK])))
               for s in range(0, X.shape[0], CHUNK)]
    return Evaluation(np.concatenate(outputs).astype(np.float64), np.asarray(labels))


def plot_evaluation(result: Evaluation, images: np.ndarray, path: Any,
                    title: str = "", option: str = "") -> None:
    """The confusion matrix and the worst mistakes (28 × 28 images) into a PNG."""
    from .plotting import require_matplotlib, save_figure

    plt = require_matplotlib()
    matrix = result.confusion()
    worst = result.worst_mistakes(16)
    fig = plt.figure(figsize=(12, 5.5))
    grid = fig.add_gridspec(4, 9)
    ax = fig.add_subplot(grid[:, :5])
    shown = np.log1p(matrix)
    ax.imshow(shown, cmap="Blues")
    for t in range(matrix.shape[0]):
        for p in range(matrix.shape[1]):
            ax.text(p, t, str(matrix[t, p]), ha="center", va="center", fontsize=7,
                    color="white" if shown[t, p] > 0.6 * shown.max() else "black")
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_yticks(range(matrix.shape[0]))
    ax.set_xlabel("answered")
    ax.set_ylabel("true digit")
    ax.set_title(title or f"{result.correct} / {result.total} correct")
    for i, index in enumerate(worst):
        sub = fig.add_subplot(grid[i // 4, 5 + i % 4])
        sub.imshow(images[index].reshape(28, 28), cmap="gray_r")
        sub.set_title(f"{result.labels[index]} as {result.predictions[index]} "
                      f"({result.outputs[index, result.predictions[index]]:.2f})", fontsize=7)
        sub.axis("off")
    save_figure(fig, path, option)
