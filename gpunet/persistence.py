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
from .fields import (FieldError, anything, check_fields, check_regular_file, choice, fail,
                     is_number, list_of, optional, sizes)
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


MAX_NETWORK_FILE_BYTES = 512 * 2**20
"""The largest network file read: some 25 million parameters as JSON, far beyond what a
sigmoid network of this book is (``[784, 100, 10]`` is 1.6 MB)."""


def load(filename: PathLike, device: Any = "auto", dtype: Any = "float32",
         seed: Optional[int] = None) -> "Network":
    """Read a network from ``network2.py``'s JSON, onto ``device`` in ``dtype``.

    ``seed`` seeds the network's generator (its shuffles, if trained further); without
    it the seed is drawn from NumPy's global generator, as for any network built
    without one (the book's ``load`` builds a ``Network``, which draws from
    ``np.random`` too), so ``np.random.seed(s)`` before loading repeats what follows.

    Anything but a well-formed network is one ``ValueError`` naming the file and the
    field (``sizes``, ``cost``, ``weights[1][3][5]``): not JSON, larger than
    :data:`MAX_NETWORK_FILE_BYTES`, missing keys, an unknown cost, lists of the wrong
    shapes for its ``sizes`` or holding anything but finite numbers. The file's size is
    checked before it is parsed and every list's length against ``sizes`` before any
    array is built, so a small file cannot claim a huge network.
    """
    from .network import Network

    path = Path(filename)
    data = _read_json(path)
    try:
        fields = check_fields(data, {"sizes": sizes, "cost": optional(choice(*COSTS))})
        layers = list(zip(fields["sizes"][:-1], fields["sizes"][1:]))
        weights = _layers(data, "weights", [(n, m) for m, n in layers])
        biases = _layers(data, "biases", [(n, 1) for _, n in layers])
    except FieldError as exc:
        raise exc.in_file(path) from None
    cost = fields["cost"] or "CrossEntropyCost"
    try:
        net = Network(fields["sizes"], cost=cost, dtype=dtype, device=device, seed=seed)
        net.set_parameters(weights, biases)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return net


def _read_json(path: Path) -> Any:
    """The file's JSON (at most :data:`MAX_NETWORK_FILE_BYTES`), or one ``ValueError``
    naming it."""
    size = check_regular_file(path, "network file")
    if size > MAX_NETWORK_FILE_BYTES:
        raise ValueError(f"{path}: {size:,} bytes, more than a network file may hold "
                         f"({MAX_NETWORK_FILE_BYTES:,}); it is not a saved network.")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_NETWORK_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read network file {path} ({exc.strerror or exc}).") from None
    if len(raw) > MAX_NETWORK_FILE_BYTES:
        raise ValueError(f"{path}: more than {MAX_NETWORK_FILE_BYTES:,} bytes; it is not a "
                         "saved network.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, a 5,000-digit number
        raise ValueError(f"{path} is not a network2.py JSON file ({exc}).") from None
    if not isinstance(data, dict) or not {"sizes", "weights", "biases"} <= data.keys():
        raise ValueError(f"{path} lacks the keys 'sizes', 'weights' and 'biases' of a "
                         "saved network.")
    return data


def _layers(data: dict[str, Any], key: str, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    """``data[key]``: one ``(n, m)`` matrix per layer (``FieldError`` naming the list
    that does not fit: ``weights[1][3]``)."""
    layers = list_of(anything, len(shapes))(data[key], key)
    return [_matrix(value, n, m, f"{key}[{l}]")
            for l, ((n, m), value) in enumerate(zip(shapes, layers))]


def _matrix(value: Any, n: int, m: int, field: str) -> np.ndarray:
    """An ``(n, m)`` matrix as nested lists of finite numbers (an ``(n, 1)`` bias also
    as a flat list of ``n``), each list's length checked before its numbers are read."""
    rows = list_of(anything, n)(value, field)
    if m == 1 and not any(isinstance(row, list) for row in rows):  # a flat bias vector
        return _numbers(rows, field).reshape(n, 1)
    return np.stack([_numbers(list_of(anything, m)(row, f"{field}[{i}]"), f"{field}[{i}]")
                     for i, row in enumerate(rows)])


def _numbers(values: list[Any], field: str) -> np.ndarray:
    """A list of finite numbers as float64 (``FieldError`` naming the first that is
    not: a string, a boolean, a list, NaN, infinity, or an integer beyond float64)."""
    if not all(type(x) is float for x in values):  # JSON's numbers are floats here
        for i, x in enumerate(values):
            if not is_number(x) or (isinstance(x, int) and abs(x) >= 2**1023):
                fail(f"{field}[{i}]", x, "a finite number")
    array = np.array(values, dtype=np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        i = int(np.argmin(finite))
        fail(f"{field}[{i}]", values[i], "a finite number")
    return array
