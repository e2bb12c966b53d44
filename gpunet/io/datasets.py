"""Turning what a user passes as data into checked host arrays, rows = examples.

gpunet accepts data in the two shapes its users know:

* arrays: ``(X, y)`` with ``X`` of shape ``(n, n_in)`` and ``y`` either integer labels
  of shape ``(n,)`` or target vectors of shape ``(n, n_out)``; this is what
  :func:`gpunet.load_mnist` returns;
* the book's lists of pairs ``(x, y)``, ``x`` an ``(n_in, 1)`` column (or a vector),
  ``y`` a one-hot ``(n_out, 1)`` column (training data in ``mnist_loader``) or a digit
  (validation and test data).

Everything is validated here, once, before any device work, so that a mistake gives a
``ValueError`` saying what to change instead of a traceback from deep inside NumPy.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class Examples:
    """Checked host data: inputs, target vectors and (where known) integer labels."""

    X: np.ndarray  # (n, n_in), floating point, on the host
    Y: np.ndarray  # (n, n_out), the desired outputs y(x)
    labels: np.ndarray  # (n,) int64: the digit, or the most active target for vectors

    def __len__(self) -> int:
        return int(self.X.shape[0])


def one_hot(labels: np.ndarray, n_out: int) -> np.ndarray:
    """The book's desired outputs: row ``i`` has a 1 at ``labels[i]``, else 0."""
    Y = np.zeros((labels.shape[0], n_out))
    Y[np.arange(labels.shape[0]), labels] = 1.0
    return Y


def pixels_as_inputs(X: np.ndarray, what: str) -> np.ndarray:
    """Inputs read from a data file, one example per row, as a network takes them:
    integer pixels (0..255, as IDX files and the common CSVs and ``.npz`` files hold
    them) scaled to [0, 1] as MNIST's are, in float32; floats taken as given (in their
    own precision); ``True``/``False`` as 1 and 0. Images ``(n, 28, 28)`` become rows of
    784."""
    rows = X.reshape(X.shape[0], -1)
    if rows.dtype.kind == "f":
        return rows
    if rows.dtype.kind == "b":
        return rows.astype(np.float32)
    if rows.size and (rows.min() < 0 or rows.max() > 255):
        raise ValueError(f"{what} holds integers from {rows.min()} to {rows.max()}; integer "
                         "inputs are pixels, 0 to 255 (scaled as MNIST's are). Store other "
                         "inputs as floats, which are taken as given.")
    scaled = rows.astype(np.float32)
    scaled /= 255.0
    return scaled


def as_examples(data: Any, n_in: int, n_out: int, what: str = "data") -> Examples:
    """Validate ``data`` against a network with ``n_in`` inputs and ``n_out`` outputs."""
    if isinstance(data, Examples):
        return data
    if data is None:
        raise ValueError(f"{what} is None; pass (X, y) arrays or a list of (x, y) pairs.")
    if _is_array_pair(data):
        X, y = data
        X, y = _float_matrix(X, what), _label_array(y, what)
    else:
        X, y = _from_pairs(data, what)
    n = X.shape[0]
    if n == 0:
        raise ValueError(f"{what} is empty; it needs at least one example.")
    if X.shape[1] != n_in:
        raise ValueError(
            f"{what} has {X.shape[1]} inputs per example but the network's first layer "
            f"has {n_in} neurons; make sizes[0] equal {X.shape[1]} or reshape the data "
            f"(rows are examples)."
        )
    if not np.isfinite(X).all():
        raise ValueError(f"{what} inputs contain NaN or infinity; clean or drop those examples.")
    if y.shape[0] != n:
        raise ValueError(
            f"{what} has {n} inputs but {y.shape[0]} labels/targets; give one per example."
        )
    if y.ndim == 1:
        labels = _labels(y, n_out, what)
        return Examples(X, one_hot(labels, n_out), labels)
    if y.ndim == 2 and y.shape[1] == n_out:
        if not np.isfinite(y).all():
            raise ValueError(f"{what} targets contain NaN or infinity.")
        Y = np.asarray(y, dtype=np.float64)
        return Examples(X, Y, np.argmax(Y, axis=1))
    raise ValueError(
        f"{what} targets have shape {y.shape}; expected integer labels of shape ({n},) "
        f"or target vectors of shape ({n}, {n_out}) to match the network's {n_out} outputs."
    )


def _is_array_pair(data: Any) -> bool:
    """``(X, y)``: a pair whose first item is an array (the book's list of pairs holds
    tuples, never an array, first). ``y`` may be an array or a list: integer labels,
    one-hot rows, or the book's ``(n_out, 1)`` columns."""
    return (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and hasattr(data[0], "shape")
        and not isinstance(data[0], (tuple, list))
    )


def _label_array(y: Any, what: str) -> np.ndarray:
    """``y`` of an ``(X, y)`` pair as an array: a list of digits becomes ``(n,)``, a
    list of one-hot rows ``(n, n_out)``, the book's ``(n_out, 1)`` columns ``(n, n_out)``."""
    try:
        labels = np.asarray(y)
    except (TypeError, ValueError):
        labels = np.asarray(None)
    if labels.dtype == object or not (labels.dtype.kind in "biuf"):
        raise ValueError(f"{what} labels must be numbers: integer labels (a list or an "
                         "array of digits) or target vectors (one-hot rows), one per example.")
    if labels.ndim == 0:
        raise ValueError(f"{what} labels are one number; give one label (or target "
                         "vector) per example.")
    if labels.ndim == 3 and labels.shape[2] == 1:  # the book's (n_out, 1) columns
        labels = labels.reshape(labels.shape[0], labels.shape[1])
    if labels.dtype == np.bool_:
        labels = labels.astype(np.int64)
    return labels


def check_inputs(X: np.ndarray, what: str) -> None:
    """Inputs the library takes as they are: numbers (floats as given, ``True``/``False``
    as 1 and 0), and integers only where they are 0 and 1. Integer pixels (0..255, as
    Keras and IDX files hold MNIST) would be taken as inputs of up to 255 and train a
    network to nothing, silently, where gpunet's data files scale them: refused, with
    the scaling to apply. Strings, objects and complex numbers are refused too."""
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{what} inputs have dtype {X.dtype}; expected numbers.")
    if X.dtype.kind in "iu" and X.size and (X.min() < 0 or X.max() > 1):
        raise ValueError(
            f"{what} inputs are integers from {X.min()} to {X.max()}; pixels (0..255) must "
            "be scaled to [0, 1] as MNIST's are (X / 255.0, as gpunet's data files are "
            "read), other inputs given as floats, which are taken as given.")


def _float_matrix(X: Any, what: str) -> np.ndarray:
    try:
        X = np.asarray(X)
    except TypeError:
        raise ValueError(
            f"{what} inputs are device arrays; pass host (NumPy) arrays, "
            f"gpunet moves them to the device itself."
        ) from None
    if X.ndim != 2:
        raise ValueError(f"{what} inputs have shape {X.shape}; expected (n_examples, n_inputs).")
    check_inputs(X, what)
    # Floating inputs keep their precision (MNIST arrives as float32: no 2x copy);
    # the backend casts to the network's dtype when it moves them to the device.
    matrix: np.ndarray = X if np.issubdtype(X.dtype, np.floating) else X.astype(np.float64)
    return matrix


def _labels(y: np.ndarray, n_out: int, what: str) -> np.ndarray:
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or not (y == np.round(y)).all():
            raise ValueError(f"{what} labels must be whole numbers 0..{n_out - 1}.")
    elif not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{what} labels have dtype {y.dtype}; expected integers 0..{n_out - 1}.")
    labels = y.astype(np.int64)
    bad = (labels < 0) | (labels >= n_out)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{what} label {labels[i]} (example {i}) is out of range: the network has "
            f"{n_out} outputs, so labels must be 0..{n_out - 1}."
        )
    return labels


def _from_pairs(data: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The book's list of (x, y) pairs -> stacked arrays."""
    try:
        pairs = list(data)
    except TypeError:
        raise ValueError(
            f"{what} must be (X, y) arrays or a list of (x, y) pairs, got {type(data).__name__}."
        ) from None
    if not pairs:
        raise ValueError(f"{what} is empty; it needs at least one example.")
    xs, ys = [], []
    integers = False  # any x of integers: checked as integer inputs once stacked
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(
                f"{what}[{i}] is not an (x, y) pair; pass a list of (x, y) pairs or (X, y) arrays."
            )
        x, y = pair
        integers = integers or (_numeric(x) and np.asarray(x).dtype.kind in "iu")
        x = np.asarray(x, dtype=np.float64) if _numeric(x) else None
        if x is None or not (x.ndim == 1 or (x.ndim == 2 and x.shape[1] == 1)):
            raise ValueError(
                f"{what}[{i}] input has shape {np.shape(pair[0])}; expected a vector (n,) "
                f"or a column (n, 1)."
            )
        xs.append(x.reshape(-1))
        ys.append(y)
    sizes = {x.shape[0] for x in xs}
    if len(sizes) > 1:
        raise ValueError(f"{what} inputs have different lengths {sorted(sizes)}; all must match.")
    X = np.stack(xs)
    if integers:
        check_inputs(X.astype(np.int64), what)
    if all(isinstance(y, (numbers.Integral, np.integer)) for y in ys):
        return X, np.asarray(ys, dtype=np.int64)
    if all(isinstance(y, numbers.Real) for y in ys):
        return X, np.asarray(ys, dtype=np.float64)
    try:
        Y = np.stack([np.asarray(y, dtype=np.float64).reshape(-1) for y in ys])
    except (ValueError, TypeError):
        raise ValueError(
            f"{what} targets must all be digits or all be vectors of the same length."
        ) from None
    return X, Y


def _numeric(x: Any) -> bool:
    try:
        arr = np.asarray(x)
    except TypeError:
        return False
    return arr.dtype.kind in "biuf"


def sgd_data(training_data: Any, evaluation_data: Any, test_data: Any,
             monitor_evaluation: bool, n_in: int,
             n_out: int) -> tuple[Examples, Optional[Examples], bool]:
    """Check the data of an ``SGD`` call (``network2.py``'s arguments, plus ``test_data``).

    ``test_data=`` (``network.py``'s name) is ``evaluation_data`` with its accuracy
    monitored. Returns ``(training, evaluation or None, test_data given)``; raises
    ``ValueError`` when both are given, or evaluation metrics are asked for with no data.
    """
    if test_data is not None:
        if evaluation_data is not None:
            raise ValueError("pass either test_data or evaluation_data, not both.")
        evaluation_data = test_data
    train = as_examples(training_data, n_in, n_out, "training_data")
    if monitor_evaluation and evaluation_data is None:
        raise ValueError("evaluation metrics were asked for but evaluation_data is None.")
    evaluation = (as_examples(evaluation_data, n_in, n_out, "evaluation_data")
                  if evaluation_data is not None else None)
    return train, evaluation, test_data is not None
