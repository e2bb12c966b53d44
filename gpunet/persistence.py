"""Saving and loading networks in ``network2.py``'s JSON format.

The file is ``{"sizes": [...], "weights": [...], "biases": [...], "cost": "..."}``
with weights ``(n_l, n_{l-1})`` and biases ``(n_l, 1)`` as nested lists, so a network
saved here loads in the book's program and vice versa. Writes are atomic: the JSON goes
to a temporary file in the same directory, which then replaces the target, so an
interrupted save never leaves a half-written network behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Union

import numpy as np

from .costs import COSTS

PathLike = Union[str, "os.PathLike[str]"]


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ValueError(f"cannot write {path}: directory {directory} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save(network: Any, filename: PathLike) -> None:
    """Write ``network`` to ``filename`` in ``network2.py``'s JSON format."""
    to_host = network.backend.to_host
    data = {
        "sizes": list(network.sizes),
        "weights": [np.asarray(to_host(w), dtype=np.float64).tolist() for w in network.weights],
        "biases": [np.asarray(to_host(b), dtype=np.float64).tolist() for b in network.biases],
        "cost": network.cost.__name__,
    }
    atomic_write_text(filename, json.dumps(data))


def load(filename: PathLike, device: Any = "auto", dtype: Any = "float32") -> Any:
    """Read a network from ``network2.py``'s JSON, onto ``device`` in ``dtype``."""
    from .network import Network

    path = Path(filename)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"network file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a network2.py JSON file ({exc}).") from None
    if not isinstance(data, dict) or not {"sizes", "weights", "biases"} <= data.keys():
        raise ValueError(f"{path} lacks the keys 'sizes', 'weights' and 'biases' of a saved network.")
    cost = data.get("cost", "CrossEntropyCost")
    if cost not in COSTS:
        raise ValueError(f"{path}: unknown cost {cost!r}; expected QuadraticCost or CrossEntropyCost.")
    try:
        weights = [np.asarray(w, dtype=np.float64) for w in data["weights"]]
        biases = [np.asarray(b, dtype=np.float64) for b in data["biases"]]
    except (ValueError, TypeError):
        raise ValueError(f"{path}: weights and biases must be nested lists of numbers.") from None
    if not all(np.isfinite(a).all() for a in weights + biases):
        raise ValueError(f"{path}: weights or biases contain NaN or infinity.")
    try:
        net = Network(data["sizes"], cost=cost, dtype=dtype, device=device, seed=0)
        net.set_parameters(weights, biases)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return net
