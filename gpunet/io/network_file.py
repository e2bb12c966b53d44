"""Network files: ``network2.py``'s JSON format, read as hostile input.

The file is ``{"sizes": [...], "weights": [...], "biases": [...], "cost": "..."}``
with weights ``(n_l, n_{l-1})`` and biases ``(n_l, 1)`` as nested lists, so a network
saved here loads in the book's program and vice versa. A network whose hidden layers
are not sigmoid neurons adds ``"activation"``: one name (``"relu"``) or one per hidden
layer (``["tanh", "relu"]``); a file without it (``network2.py``'s, and every sigmoid
network's) is a sigmoid network. (The book's ``load`` ignores the key, so it would
read such a network as sigmoid: it has no other neurons.) Writes are atomic
(:func:`gpunet.io.outputs.atomic_write_text`): an interrupted save never leaves a
half-written network behind, and the file gets the user's umask permissions like any
other program's output. This module knows the format, not the model: ``Network.save``
and ``Network.load`` (:mod:`gpunet.networks.network`) give it and take from it plain
host arrays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .fields import (FieldError, anything, check_fields, choice, fail, read_capped,
                     is_number, list_of, optional, text)
from .fields import sizes as layer_sizes
from .outputs import PathLike, atomic_write_text


@dataclass
class NetworkFile:
    """What a network file holds: the layer sizes, the book-shaped float64 weights and
    biases, and the cost's name as ``network2.py`` writes it (``None`` where the file
    names none: the book's default, cross-entropy)."""

    sizes: list[int]
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    cost: Optional[str]
    #: the hidden layers' activation: a name, one per hidden layer, or ``None`` (sigmoid)
    activation: Any = None


def write_network_file(path: PathLike, sizes: Sequence[int], weights: Sequence[np.ndarray],
                       biases: Sequence[np.ndarray], cost: str, option: str = "",
                       activation: Any = None) -> None:
    """Write a network (host arrays, the book's shapes) to ``path`` in ``network2.py``'s
    JSON, atomically; a failed write is a :class:`gpunet.io.outputs.WriteError` naming
    ``option`` and the file. ``activation``: the hidden layers' (a name or a list of
    them), left out where ``None`` (the sigmoid)."""
    data: dict[str, Any] = {
        "sizes": list(sizes),
        "weights": [np.asarray(w, dtype=np.float64).tolist() for w in weights],
        "biases": [np.asarray(b, dtype=np.float64).tolist() for b in biases],
        "cost": cost,
    }
    if activation is not None:
        data["activation"] = activation
    atomic_write_text(path, json.dumps(data), option)


MAX_NETWORK_FILE_BYTES = 512 * 2**20
"""The largest network file read: some 25 million parameters as JSON, far beyond what a
sigmoid network of this book is (``[784, 100, 10]`` is 1.6 MB)."""


def read_network_file(filename: PathLike, costs: Sequence[str] = (),
                      hidden: Sequence[str] = ()) -> NetworkFile:
    """Read a network from ``network2.py``'s JSON as host arrays.

    Anything but a well-formed network is one ``ValueError`` naming the file and the
    field (``sizes``, ``cost``, ``weights[1][3][5]``): not JSON, larger than
    :data:`MAX_NETWORK_FILE_BYTES`, missing keys, lists of the wrong shapes for its
    ``sizes`` or holding anything but finite numbers. The file's size is checked before
    it is parsed and every list's length against ``sizes`` before any array is built,
    so a small file cannot claim a huge network. ``costs``: the cost names the model
    knows (:data:`gpunet.model.costs.COSTS`); any text where none are given.
    ``hidden``: the hidden layers' activations the model knows, which ``activation``
    may name (one, or one per hidden layer).
    """
    path = Path(filename)
    data = _read_json(path)
    try:
        cost = choice(*costs) if costs else text
        fields = check_fields(data, {"sizes": layer_sizes, "cost": optional(cost)})
        layers = list(zip(fields["sizes"][:-1], fields["sizes"][1:]))
        activation = _activation(data, len(layers) - 1, hidden)
        weights = _layers(data, "weights", [(n, m) for m, n in layers])
        biases = _layers(data, "biases", [(n, 1) for _, n in layers])
    except FieldError as exc:
        raise exc.in_file(path) from None
    return NetworkFile(fields["sizes"], weights, biases, fields["cost"], activation)


def _activation(data: dict[str, Any], hidden_layers: int, names: Sequence[str]) -> Any:
    """``data["activation"]`` checked: absent (``None``), a known name, or a list of one
    known name per hidden layer (``FieldError`` naming the field otherwise)."""
    if "activation" not in data:
        return None
    name = choice(*names) if names else text
    value = data["activation"]
    if isinstance(value, list):
        return list_of(name, hidden_layers)(value, "activation")
    return name(value, "activation")


def _read_json(path: Path) -> Any:
    """The file's JSON (at most :data:`MAX_NETWORK_FILE_BYTES`), or one ``ValueError``
    naming it."""
    raw = read_capped(path, "network file", MAX_NETWORK_FILE_BYTES,
                      "it is not a saved network.")
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
