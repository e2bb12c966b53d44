"""Argument checks shared by the library and the CLI.

Each returns the value normalised or raises ``ValueError`` with a message that says
what to change, so that misuse never surfaces as a traceback from inside NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DTYPES = {"float32": np.float32, "float64": np.float64}


def check_sizes(sizes: Any) -> list[int]:
    try:
        sizes = list(sizes)
    except TypeError:
        raise ValueError(f"sizes must be a list of layer sizes like [784, 30, 10], got {sizes!r}.") from None
    if len(sizes) < 2:
        raise ValueError(f"sizes {sizes} needs at least two layers (inputs and outputs), e.g. [784, 10].")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
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
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_eta(eta: Any) -> float:
    if not finite_number(eta) or eta <= 0:
        raise ValueError(f"eta (the learning rate) must be a positive number, got {eta!r}.")
    return float(eta)


def check_lmbda(lmbda: Any) -> float:
    if not finite_number(lmbda) or lmbda < 0:
        raise ValueError(f"lmbda (the L2 regularization) must be a number >= 0, got {lmbda!r}.")
    return float(lmbda)


def finite_number(x: Any) -> bool:
    return (isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
            and bool(np.isfinite(x)))
