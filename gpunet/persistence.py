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
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .costs import COSTS

if TYPE_CHECKING:  # the network imports this module
    from .network import Network

PathLike = Union[str, "os.PathLike[str]"]


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, with the permissions a plain ``open`` gives.

    The bytes go to a temporary file in the same directory, which then replaces
    ``path``: readers (and a Ctrl-C mid-write) see the old file or the new one, never
    half of one. ``mkstemp`` makes its file 0600; the result gets the permissions of
    the file it replaces, or for a new file ``0666`` less the user's umask, as any
    other program's output would.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ValueError(f"cannot write {path}: directory {directory} does not exist.")
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_writable(path: PathLike, option: str) -> Path:
    """Fail now, not after an hour of training, if ``path`` cannot be written.

    Raises ``ValueError`` naming ``option`` when the directory is missing, ``path`` is a
    directory, or a file cannot be created there (tried, then removed).
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a directory; give a file name.")
    if not directory.is_dir():
        raise ValueError(f"{option} {path}: directory {directory} does not exist; create it "
                         "or choose another path.")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{option} {path}: the file is not writable.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=directory)
    except OSError as exc:
        raise ValueError(f"{option} {path}: cannot write in {directory} "
                         f"({exc.strerror or exc}).") from None
    os.close(fd)
    os.unlink(tmp)
    return path


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


def load(filename: PathLike, device: Any = "auto", dtype: Any = "float32") -> "Network":
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
