"""What ``train`` and ``sweep`` train on: the device, and MNIST as the options cut it.

Each prints the line users read to know what they got: ``device: ...`` (with the reason
where ``auto`` chose) and ``data: ...`` (the source, and how many images are trained on
and evaluated).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any


def open_device(device: str) -> Any:
    """The backend ``--device`` names (checked: an unusable one is one error line),
    and its ``device:`` line."""
    from ..backends import get_backend

    backend = get_backend(device)
    note = f"  [{backend.selection_note}]" if backend.selection_note else ""
    print(f"device: {backend.description}{note}", flush=True)
    return backend


@dataclass(frozen=True)
class RunData:
    """The ``(X, y)`` host arrays a run trains on and evaluates after each epoch, and
    which data set ``evaluation`` is (``test`` or ``validation``)."""

    training: tuple[Any, Any]
    evaluation: tuple[Any, Any]
    evaluate: str

    @property
    def examples(self) -> int:
        """n, the number of training examples."""
        return len(self.training[1])


def load_run_data(args: argparse.Namespace) -> RunData:
    """MNIST from ``--data`` (default: the bundled copy), the first ``--limit`` training
    images, and the ``--evaluate`` set; ``--batch-size`` checked against the training
    images; the ``data:`` line."""
    from ..io.mnist import load_mnist
    from ..model.arguments import check_mini_batch

    data = load_mnist(args.data)
    training = data.training
    if args.limit is not None:
        if args.limit > len(training[1]):
            raise ValueError(
                f"--limit {args.limit} exceeds the {len(training[1])} training images.")
        training = (training[0][: args.limit], training[1][: args.limit])
    check_mini_batch(args.batch_size, len(training[1]), "--batch-size")
    evaluation = data.test if args.evaluate == "test" else data.validation
    print(f"data: {data.describe()}; training on {len(training[1])}, "
          f"evaluating on {len(evaluation[1])} {args.evaluate} images", flush=True)
    return RunData(training, evaluation, args.evaluate)
