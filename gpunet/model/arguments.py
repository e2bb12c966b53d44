"""Argument checks shared by the library and the CLI: one rule for each kind of argument.

Each returns the value normalised or raises ``ValueError`` with a message that says
what to change, so that misuse never surfaces as a traceback from inside NumPy, nor
after training has begun, nor as a silently different run (``epochs=3.7`` trained as 3,
a set of seeds in hash order, the string ``"no"`` taken as true). The model calls them
once per argument: the constructors for the networks' arguments, :class:`gpunet.engines.
TrainingSettings` for everything ``SGD`` and :func:`gpunet.resume` train with, and the
training loop for what needs the data (:func:`check_mini_batch`).

``ValueError`` also where Python's convention would be ``TypeError`` (a string for a
count, a number for a path): the project's one exception for a bad argument, which the
command line turns into one ``gpunet: error:`` line and a script catches as one class;
the message says what to pass either way. (``TypeError`` is kept for a broken
programming contract, such as a subclass overriding a method ``SGD`` would not call.)
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from typing import Any, Callable, Optional

import numpy as np

DTYPES = {"float32": np.float32, "float64": np.float64}


def check_sizes(sizes: Any) -> list[int]:
    """Neurons per layer: a list (any sequence) of at least two positive integers."""
    if not is_sequence(sizes):
        raise ValueError(f"sizes must be a list of layer sizes like [784, 30, 10], got "
                         f"{sizes!r}.")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes {sizes} needs at least two layers (inputs and outputs), e.g. [784, 10].")
    for s in sizes:
        if not is_integer(s) or s < 1:
            raise ValueError(f"sizes {sizes}: every layer size must be a positive integer.")
    return [int(s) for s in sizes]


def check_dtype(dtype: Any) -> Any:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; use 'float32' or 'float64'.")
    return DTYPES[name]


def check_seed(seed: Any) -> int:
    if not is_integer(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def check_seeds(seeds: Any) -> list[int]:
    """A stack's seeds: a list (any sequence, so the order is the caller's) of at least
    one seed, one per network."""
    if not is_sequence(seeds):
        raise ValueError(f"seeds must be a list of seeds, one per network (e.g. [0, 1, 2]), "
                         f"got {seeds!r}.")
    if len(seeds) == 0:
        raise ValueError("seeds is empty; give at least one seed (one per network).")
    return [check_seed(s) for s in seeds]


def check_positive_int(value: Any, name: str) -> int:
    if not is_integer(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_optional_positive_int(value: Any, name: str) -> Optional[int]:
    """``None`` (the default chosen for you) or a positive integer."""
    return None if value is None else check_positive_int(value, name)


def check_eta(eta: Any) -> float:
    if not finite_number(eta) or eta <= 0:
        raise ValueError(f"eta (the learning rate) must be a positive number, got {eta!r}.")
    return float(eta)


def check_lmbda(lmbda: Any) -> float:
    if not finite_number(lmbda) or lmbda < 0:
        raise ValueError(f"lmbda (the L2 regularization) must be a number >= 0, got {lmbda!r}.")
    return float(lmbda)


def check_per_network(values: Any, K: Optional[int], name: str,
                      check: Callable[[Any], float]) -> tuple[float, ...]:
    """``values`` (η or λ) as one checked float per network: one value (a number, or a
    list of one) is every network's, ``K`` of them (``K = None``: one); a longer list
    must have ``K`` values (any number: ``K = None``)."""
    if not is_sequence(values):
        values = (values,)
    checked = tuple(check(v) for v in values)
    if not checked:
        raise ValueError(f"{name} is an empty list; give one number, or one per network.")
    if K is not None and len(checked) == 1:
        return checked * K
    if K is not None and len(checked) != K:
        raise ValueError(f"{name} has {len(checked)} values for {K} networks; give one "
                         f"number, or one per network.")
    return checked


def as_values(value: Any) -> tuple[Any, ...]:
    """``SGD``'s η or λ as :class:`gpunet.training.settings.TrainingSettings` takes it: a list's
    values, or the one value (checked there, with the rest: :func:`check_per_network`)."""
    return tuple(value) if is_sequence(value) else (value,)


def check_flag(value: Any, name: str) -> bool:
    """``True`` or ``False`` (NumPy's too), nothing else: ``"no"`` or ``1`` would be
    taken as true without a word."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def check_callback(callback: Any) -> Optional[Callable[..., Any]]:
    """``None`` or a function (anything callable), checked before the first epoch
    rather than found out after it."""
    if callback is None or callable(callback):
        checked: Optional[Callable[..., Any]] = callback
        return checked
    raise ValueError(f"callback must be a function, called with each epoch's record, or "
                     f"None; got {callback!r} (pass the function itself, e.g. "
                     "callback=print).")


def check_choice(value: Any, choices: Sequence[str], name: str) -> str:
    """One of the names ``choices`` (an engine, an init, ...)."""
    if not isinstance(value, str) or value not in choices:
        names = [repr(c) for c in choices]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise ValueError(f"unknown {name} {value!r}; use {listed}.")
    return value


def check_path(path: Any, name: str) -> Any:
    """A file path: a non-empty ``str`` or an ``os.PathLike`` (``pathlib.Path``)."""
    if isinstance(path, (str, os.PathLike)):
        text = os.fspath(path)
        if isinstance(text, str) and text.strip():
            return path
    raise ValueError(f"{name} must be a file path (a str or pathlib.Path), got {path!r}.")


def check_checkpoint(checkpoint: Any) -> Any:
    """``SGD(checkpoint=...)``: ``None``, a file path (:func:`check_path`), or a
    :class:`gpunet.training.checkpoint.CheckpointWriter` (anything with its ``hold`` and
    ``write``; named by its methods because the checkpoint module sits above this one)."""
    if checkpoint is None or all(callable(getattr(checkpoint, method, None))
                                 for method in ("hold", "write")):
        return checkpoint
    try:
        return check_path(checkpoint, "checkpoint")
    except ValueError:
        raise ValueError(f"checkpoint must be a file path (a str or pathlib.Path), a "
                         f"gpunet.training.checkpoint.CheckpointWriter or None, got "
                         f"{checkpoint!r}.") from None


def check_mini_batch(mini_batch_size: int, examples: int,
                     name: str = "mini_batch_size") -> int:
    """A mini-batch of at most the ``examples`` training examples there are: a larger
    one would be the whole set as one batch, a different algorithm than asked for."""
    if mini_batch_size > examples:
        raise ValueError(f"{name} {mini_batch_size:,} is larger than the {examples:,} "
                         f"training examples; give at most {examples:,} ({examples:,}: "
                         "the whole training set as one batch).")
    return mini_batch_size


def is_integer(x: Any) -> bool:
    """An integer (Python's or NumPy's), not a bool, not a float with an integer value."""
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def is_sequence(x: Any) -> bool:
    """An ordered collection of items: a list, tuple, range or 1-D array; not a string,
    a set or a mapping (whose order is not the caller's), nor a single value."""
    if isinstance(x, np.ndarray):
        return x.ndim == 1
    return isinstance(x, Sequence) and not isinstance(x, (str, bytes, bytearray))


def finite_number(x: Any) -> bool:
    """A finite real number (Python's, NumPy's, a Fraction), not a bool."""
    return (isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))
            and bool(np.isfinite(float(x))))
