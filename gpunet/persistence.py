"""Saving and loading networks in ``network2.py``'s JSON format.

The file is ``{"sizes": [...], "weights": [...], "biases": [...], "cost": "..."}``
with weights ``(n_l, n_{l-1})`` and biases ``(n_l, 1)`` as nested lists, so a network
saved here loads in the book's program and vice versa. Writes are atomic: the JSON goes
to a temporary file in the same directory, which then replaces the target, so an
interrupted save never leaves a half-written network behind, and the file gets the
user's umask permissions like any other program's output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from .costs import COSTS
from .outputs import atomic_write_bytes, atomic_write_text, check_output

__all__ = ["atomic_write_bytes", "atomic_write_text", "check_writable", "load", "save"]

if TYPE_CHECKING:  # the network imports this module
    from .network import Network

PathLike = Union[str, "os.PathLike[str]"]


def check_writable(path: PathLike, option: str) -> Path:
    """Fail now, not after an hour of training, if ``path`` cannot be written
    (:func:`gpunet.outputs.check_output`, the output policy of every command)."""
    return check_output(path, option)


def save(network: Any, filename: PathLike, option: str = "") -> None:
    """Write ``network`` to ``filename`` in ``network2.py``'s JSON format (atomically; a
    failed write is a :class:`gpunet.outputs.WriteError` naming ``option`` and the file)."""
    to_host = network.backend.to_host
    data = {
        "sizes": list(network.sizes),
        "weights": [np.asarray(to_host(w), dtype=np.float64).tolist() for w in network.weights],
        "biases": [np.asarray(to_host(b), dtype=np.float64).tolist() for b in network.biases],
        "cost": network.cost.__name__,
    }
    atomic_write_text(filename, json.dumps(data), option)


def load(filename: PathLike, device: Any = "auto", dtype: Any = "float32",
         seed: Optional[int] = None) -> "Network":
    """Read a network from ``network2.py``'s JSON, onto ``device`` in ``dtype``.

    ``seed`` seeds the network's generator (its shuffles, if trained further); without
    it the seed is drawn from NumPy's global generator, as for any network built
    without one (the book's ``load`` builds a ``Network``, which draws from
    ``np.random`` too), so ``np.random.seed(s)`` before loading repeats what follows.

    Anything but a well-formed network (not JSON, missing keys, an unknown cost, arrays
    of the wrong shapes for its ``sizes``, numbers that are not finite) is one
    ``ValueError`` naming the file; the shapes are checked against ``sizes`` before
    anything is allocated for them, so a small file cannot claim a huge network.
    """
    from .arguments import check_sizes
    from .network import Network

    path = Path(filename)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"network file not found: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not a network file.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is not a network2.py JSON file ({exc}).") from None
    except OSError as exc:
        raise ValueError(f"cannot read network file {path} ({exc.strerror or exc}).") from None
    if not isinstance(data, dict) or not {"sizes", "weights", "biases"} <= data.keys():
        raise ValueError(f"{path} lacks the keys 'sizes', 'weights' and 'biases' of a saved network.")
    cost = data.get("cost", "CrossEntropyCost")
    if not isinstance(cost, str) or cost not in COSTS:
        raise ValueError(f"{path}: unknown cost {cost!r}; expected QuadraticCost or CrossEntropyCost.")
    try:
        sizes = check_sizes(data["sizes"])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    layers = len(sizes) - 1
    if (not isinstance(data["weights"], list) or not isinstance(data["biases"], list)
            or len(data["weights"]) != layers or len(data["biases"]) != layers):
        raise ValueError(f"{path}: sizes {sizes} need {layers} weight matrices and {layers} "
                         "bias vectors (lists), one per layer after the first.")
    try:
        weights = [np.asarray(w, dtype=np.float64) for w in data["weights"]]
        biases = [np.asarray(b, dtype=np.float64) for b in data["biases"]]
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise ValueError(f"{path}: weights and biases must be nested lists of numbers.") from None
    for l, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        if weights[l].shape != (n, m) or biases[l].shape not in ((n, 1), (n,)):
            raise ValueError(
                f"{path}: layer {l + 1} has weights {weights[l].shape} and biases "
                f"{biases[l].shape}, which do not fit sizes {sizes}; expected ({n}, {m}) "
                f"and ({n}, 1). The file is corrupt or edited.")
    if not all(np.isfinite(a).all() for a in weights + biases):
        raise ValueError(f"{path}: weights or biases contain NaN or infinity.")
    try:
        net = Network(sizes, cost=cost, dtype=dtype, device=device, seed=seed)
        net.set_parameters(weights, biases)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return net
