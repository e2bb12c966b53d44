"""What ``Network.SGD`` returns: one record per epoch, readable the book's way."""

from __future__ import annotations

from typing import Any, Iterator


class History:
    """Per-epoch records of a training run.

    Each record is a dict with ``epoch``, ``train_seconds`` (wall time of the epoch's
    training, device synchronised) and whichever metrics were monitored:
    ``training_cost``, ``training_correct`` / ``training_total``, ``evaluation_cost``,
    ``evaluation_correct`` / ``evaluation_total``.

    Like ``network2.py``'s result, it unpacks into four per-epoch lists::

        evaluation_cost, evaluation_accuracy, training_cost, training_accuracy = history
    """

    def __init__(self, engine: str = "") -> None:
        self.records: list[dict[str, Any]] = []
        #: the engine that ran the epochs (``"eager"``, ...), see :mod:`gpunet.engines`.
        self.engine = engine

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[list]:
        yield self.evaluation_cost
        yield self.evaluation_accuracy
        yield self.training_cost
        yield self.training_accuracy

    def _column(self, key: str) -> list:
        return [r[key] for r in self.records if key in r]

    @property
    def evaluation_cost(self) -> list[float]:
        return self._column("evaluation_cost")

    @property
    def evaluation_accuracy(self) -> list[int]:
        return self._column("evaluation_correct")

    @property
    def training_cost(self) -> list[float]:
        return self._column("training_cost")

    @property
    def training_accuracy(self) -> list[int]:
        return self._column("training_correct")

    @property
    def train_seconds(self) -> list[float]:
        return self._column("train_seconds")

    @staticmethod
    def book_lines(record: dict[str, Any]) -> str:
        """The lines the book's programs print after an epoch."""
        j = record["epoch"]
        if "evaluation_correct" in record:
            lines = [f"Epoch {j}: {record['evaluation_correct']} / {record['evaluation_total']}"]
        else:
            lines = [f"Epoch {j} training complete"]
        if "training_cost" in record:
            lines.append(f"Cost on training data: {record['training_cost']}")
        if "training_correct" in record:
            lines.append(
                f"Accuracy on training data: {record['training_correct']} / {record['training_total']}"
            )
        if "evaluation_cost" in record:
            lines.append(f"Cost on evaluation data: {record['evaluation_cost']}")
        return "\n".join(lines)
