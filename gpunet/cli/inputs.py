"""What ``train`` and ``sweep`` train on: the device, and the data as the options cut it.

Each prints the line users read to know what they got: ``device: ...`` (with the reason
where ``auto`` chose) and ``data: ...`` (the source, and how many examples are trained
on and evaluated). The data is any set :func:`gpunet.io.mnist.load_mnist` reads
(``--data``), with ``--test-data`` (a test set for a training file without one) and
``--validation`` (a validation set split off a set without one); the network's input
layer is the data's width (``--sizes auto,30,10``: :func:`resolve_sizes`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from .options import AUTO


def open_device(device: str) -> Any:
    """The backend ``--device`` names (checked: an unusable one is one error line),
    and its ``device:`` line."""
    from ..backends import get_backend

    backend = get_backend(device)
    note = f"  [{backend.selection_note}]" if backend.selection_note else ""
    print(f"device: {backend.description}{note}", flush=True)
    return backend


def resolve_sizes(args: argparse.Namespace) -> None:
    """``--sizes`` against the data, before any work: ``auto`` becomes the data's
    inputs per example (read from its headers alone), and a first layer of another size
    is one error naming both and the fixes. A resumed run's sizes are its own."""
    from ..io.mnist import input_width

    if args.resume and AUTO not in args.sizes:
        return
    width = input_width(args.data)
    if args.sizes[0] == AUTO:
        args.sizes = [width, *args.sizes[1:]]
    elif args.sizes[0] != width:
        given = ",".join(map(str, args.sizes))
        rest = ",".join(map(str, args.sizes[1:]))
        raise ValueError(
            f"--sizes {given}: its first layer has {args.sizes[0]} inputs, but the data "
            f"({args.data or 'the bundled MNIST'}) has {width} inputs per example. For "
            f"hidden and output layers {given}, give --sizes auto,{given} (the input layer "
            f"from the data: {width},{given}); to replace the input layer, --sizes "
            f"auto,{rest}.")


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


def load_data(args: argparse.Namespace) -> Any:
    """The data set ``--data`` names (default: the bundled MNIST), with the test set
    of ``--test-data`` and the validation set ``--validation`` splits off."""
    from ..io.mnist import load_mnist, split_validation, with_test
    from ..io.outputs import same_file_key

    test_data = getattr(args, "test_data", None)
    if test_data is not None and args.data is not None and (
            same_file_key(test_data) == same_file_key(args.data)):
        raise ValueError(f"--test-data {test_data} is the training data (--data "
                         f"{args.data}): its scores would be the training accuracy; give "
                         "other examples, or hold out part of the training data "
                         "(--validation N --evaluate validation).")
    data = load_mnist(args.data)
    if getattr(args, "test_data", None) is not None:
        data = with_test(data, args.test_data, "--test-data")
    if getattr(args, "validation", None) is not None:
        data = split_validation(data, args.validation, "--validation")
    if getattr(args, "expand", False):  # after the split: no validation image's shift trains
        data = expanded(data)
    return data


def expanded(data: Any) -> Any:
    """``--expand``: the book's expanded training set (:func:`gpunet.io.expand.expand_data`),
    from the cache or built once; a cache it rebuilt or could not write is a
    ``gpunet: note:`` line."""
    import sys
    import warnings

    from ..io.expand import ExpandedCacheWarning, expand_data

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExpandedCacheWarning)
        data = expand_data(data)
    for warning in caught:
        if issubclass(warning.category, ExpandedCacheWarning):
            print(f"gpunet: note: {warning.message}", file=sys.stderr, flush=True)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    return data


def load_run_data(args: argparse.Namespace) -> RunData:
    """The data (:func:`load_data`), the first ``--limit`` training examples, and the
    ``--evaluate`` set, which must hold examples; the network's output layer checked
    against the labels and ``--batch-size`` against the training examples; the
    ``data:`` line."""
    from ..model.arguments import check_mini_batch

    data = load_data(args)
    training = data.training
    if args.limit is not None:
        if args.limit > len(training[1]):
            raise ValueError(
                f"--limit {args.limit} exceeds the {len(training[1])} training images.")
        training = (training[0][: args.limit], training[1][: args.limit])
    check_mini_batch(args.batch_size, len(training[1]), "--batch-size")
    evaluation = data.test if args.evaluate == "test" else data.validation
    if not len(evaluation[1]):
        raise ValueError(_nothing_to_evaluate(args, data.source))
    _check_output_layer(args.sizes, training[1], evaluation[1])
    print(f"data: {data.describe()}; training on {len(training[1])}, "
          f"evaluating on {len(evaluation[1])} {args.evaluate} images", flush=True)
    return RunData(training, evaluation, args.evaluate)


def _nothing_to_evaluate(args: argparse.Namespace, source: str) -> str:
    """What to do where the ``--evaluate`` set is empty."""
    if args.evaluate == "validation":
        return (f"--evaluate validation: {source} has no validation set; hold out part of "
                "the training data with --validation N (or a fraction, 0.1).")
    return (f"--evaluate test: {source} has no test set; name one with --test-data PATH, "
            "or score a validation set split off the training data: --validation N "
            "--evaluate validation.")


def _check_output_layer(sizes: list[int], *labels: Any) -> None:
    """The output layer has a neuron for every label (or the target vectors' width)."""
    import numpy as np

    for y in labels:
        if not len(y):
            continue
        classes = int(y.shape[1]) if np.ndim(y) == 2 else int(np.max(y)) + 1
        if (np.ndim(y) == 2 and classes != sizes[-1]) or classes > sizes[-1]:
            wanted = ("target vectors of" if np.ndim(y) == 2 else "labels up to")
            value = classes if np.ndim(y) == 2 else classes - 1
            raise ValueError(
                f"--sizes {','.join(map(str, sizes))}: the output layer has {sizes[-1]} "
                f"neurons, but the data has {wanted} {value}; make the last size "
                f"{classes}.")
