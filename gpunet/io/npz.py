"""A data set in a NumPy ``.npz`` archive, read as hostile input.

The names read are Keras' (``keras.datasets.mnist.load_data()`` ships MNIST as such a
file): ``x_train`` and ``y_train``, and ``x_test`` and ``y_test`` where the archive has
a test set; every other member is left unread. ``x_*`` holds one example per row, in
any shape after the first axis (``(n, 28, 28)`` images are flattened to 784 inputs);
``y_*`` integer labels ``(n,)`` or target vectors ``(n, k)``.

Nothing is inflated or allocated before it is checked (as checkpoints are read,
:mod:`gpunet.training.checkpoint`): the zip directory's size and member count from the
archive's end records, then each member read is stored or deflated and declares at most
what the limits allow, then its ``.npy`` header (a numeric dtype: no pickles, never
``allow_pickle``; the shape within :data:`~gpunet.io.mnist.MAX_EXAMPLES` examples and
:data:`MAX_VALUES` values; the member exactly as long as the header says) and the
examples and labels counts agree, and only then is each array read, into an array of
the size checked, in 1 MiB chunks. A member whose deflated stream goes on past its
declared size is read no further than that size (and :mod:`zipfile` checks its CRC).
"""

from __future__ import annotations

import math
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Optional, Union

import numpy as np

from .fields import check_regular_file, shown
from .zipdir import directory_sizes

MEMBERS = ("x_train", "y_train", "x_test", "y_test")
"""The arrays read, as Keras names them (``x_test`` and ``y_test`` optional, together)."""

MAX_EXAMPLES = 1_000_000
"""The most examples one array may hold (as an IDX file may declare)."""

MAX_VALUES = 1_000_000 * 784
"""The most values one array may hold: a million 28x28 images, the most an IDX file of
gpunet's may declare."""

MAX_ARCHIVE_MEMBERS = 64
"""The most members an archive may list (Keras' MNIST has 4)."""

MAX_DIRECTORY_BYTES = 64 * 1024
"""The largest zip directory read."""

MAX_NPY_HEADER = 10_000
"""The largest ``.npy`` header read (NumPy writes some 128 bytes)."""

ZIP_MAGIC = b"PK\x03\x04"


Arrays = dict[str, np.ndarray]


class NpzError(ValueError):
    """An ``.npz`` file gpunet cannot take as a data set; the message names it."""


def read_npz(path: Union[str, Path]) -> Arrays:
    """The arrays of :data:`MEMBERS` that ``path`` holds, each checked before it is
    read (module docstring); a missing ``x_train``/``y_train`` or a lone ``x_test`` is
    an :class:`NpzError` naming the file and the names read."""
    path = Path(path)
    size = check_regular_file(path, "data file")
    try:
        with open(path, "rb") as f:
            if f.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
                raise NpzError(f"{path} is not an .npz archive (it does not start as a zip "
                               "file does).")
            _check_directory(f, size, path)
            with zipfile.ZipFile(f) as archive:
                members = _members(archive, size, path)
                headers = {name: _header(archive, info, path)
                           for name, info in members.items()}
                _check_counts(headers, path)
                return {name: _read(archive, members[name], headers[name], path)
                        for name in MEMBERS if name in members}
    except NpzError:
        raise
    except OSError as exc:
        raise NpzError(f"cannot read {path} ({exc.strerror or exc}).") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, struct.error,
            NotImplementedError, RuntimeError, OverflowError, MemoryError) as exc:
        raise NpzError(f"{path} is not a readable .npz archive (corrupt or truncated: "
                       f"{type(exc).__name__}: {exc}).") from None


def _check_directory(f: BinaryIO, size: int, path: Path) -> None:
    """The archive's directory is small and lists at most :data:`MAX_ARCHIVE_MEMBERS`
    members, read from the end records :mod:`zipfile` will read (and their zip64 form),
    before :mod:`zipfile` reads the directory itself."""
    records = directory_sizes(f, size)
    if records is None:
        raise NpzError(f"{path} is not a readable .npz archive (no zip directory at its "
                       "end: truncated?).")
    for entries, directory in records:
        if entries > MAX_ARCHIVE_MEMBERS or directory > MAX_DIRECTORY_BYTES:
            raise NpzError(f"{path}: its zip directory lists {entries:,} members in "
                           f"{directory:,} bytes; a data set's .npz holds a few arrays "
                           f"(at most {MAX_ARCHIVE_MEMBERS}, named {', '.join(MEMBERS)}).")


def _members(archive: zipfile.ZipFile, size: int, path: Path) -> dict[str, zipfile.ZipInfo]:
    """The members of :data:`MEMBERS` the archive holds, each stored or deflated, once,
    and declaring no more than the limits allow; ``x_train`` and ``y_train`` there, and
    ``x_test`` with ``y_test`` or neither."""
    members: dict[str, zipfile.ZipInfo] = {}
    largest = MAX_NPY_HEADER + 16 + MAX_VALUES * 8
    for info in archive.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if name not in MEMBERS:
            continue  # another array: never read
        if name in members:
            raise NpzError(f"{path}: the member {name!r} appears twice; the file is corrupt.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise NpzError(f"{path}: the member {name!r} is compressed with method "
                           f"{info.compress_type}; NumPy writes stored or deflated members "
                           "(np.savez, np.savez_compressed).")
        if info.file_size > largest or (info.compress_type == zipfile.ZIP_STORED
                                        and info.header_offset + info.file_size > size):
            raise NpzError(f"{path}: the member {name!r} declares {info.file_size:,} bytes, "
                           f"more than {'the file holds' if info.file_size <= largest else 'a data set may'}; "
                           "the file is corrupt or not a data set.")
        members[name] = info
    found = sorted(members)
    if "x_train" not in members or "y_train" not in members:
        raise NpzError(f"{path} holds no training set: gpunet reads the arrays x_train and "
                       f"y_train (and x_test, y_test), as Keras names them; it holds "
                       f"{', '.join(found) or 'none of them'}"
                       f"{_other_names(archive)}.")
    if ("x_test" in members) != ("y_test" in members):
        raise NpzError(f"{path} holds {'x_test' if 'x_test' in members else 'y_test'} "
                       "without its partner; a test set needs both x_test and y_test.")
    return members


def _other_names(archive: zipfile.ZipFile) -> str:
    names = [i.filename.removesuffix(".npy") for i in archive.infolist()[:8]]
    others = [n for n in names if n not in MEMBERS]
    return f" (its arrays: {', '.join(map(shown, others))})" if others else ""


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo,
            path: Path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """A member's ``.npy`` header: its shape, dtype, order and the offset of its data,
    checked against the limits and the member's declared size (only the header is
    inflated)."""
    name = info.filename.removesuffix(".npy")
    with archive.open(info) as fp:
        try:
            version = np.lib.format.read_magic(fp)
        except ValueError:
            raise NpzError(f"{path}: the member {name!r} is not a .npy array.") from None
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise NpzError(f"{path}: the member {name!r} is .npy version {version}, which "
                           "gpunet does not read.")
        shape, fortran, dtype = read_header(fp, max_header_size=MAX_NPY_HEADER)
        offset = fp.tell()
    _check_array(name, shape, dtype, path)
    count = math.prod(shape)
    if info.file_size != offset + count * dtype.itemsize:
        raise NpzError(f"{path}: the member {name!r} declares {info.file_size:,} bytes, but "
                       f"its header says {dtype} {shape}; the file is corrupt.")
    return shape, dtype, fortran, offset


def _check_array(name: str, shape: tuple[int, ...], dtype: np.dtype, path: Path) -> None:
    """A data array gpunet can take: numbers (never objects, which only pickles hold),
    examples along the first axis, within the limits."""
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise NpzError(f"{path}: the member {name!r} holds {dtype} values, not numbers "
                       "(integers or floats); gpunet never loads pickled objects.")
    want = "examples along its first axis" if name.startswith("x") else (
        "labels (n,) or target vectors (n, k)")
    if not shape or (name.startswith("x") and len(shape) < 2) or (
            name.startswith("y") and not (len(shape) == 1 or len(shape) == 2
                                          or (len(shape) == 3 and shape[2] == 1))):
        raise NpzError(f"{path}: the member {name!r} has shape {shape}; it should hold "
                       f"{want}.")
    if shape[0] > MAX_EXAMPLES or math.prod(shape) > MAX_VALUES:
        raise NpzError(f"{path}: the member {name!r} declares shape {shape}, more than "
                       f"gpunet reads ({MAX_EXAMPLES:,} examples, {MAX_VALUES:,} values); "
                       "the file is corrupt or not a data set of this size.")
    if name.startswith("x") and math.prod(shape[1:]) == 0:
        raise NpzError(f"{path}: the member {name!r} has shape {shape}: no inputs per "
                       "example.")


def _check_counts(headers: dict[str, Any], path: Path) -> None:
    """Each ``x_*`` as many examples as its ``y_*``, and the same inputs per example
    in training and test, before either is read."""
    for part in ("train", "test"):
        if f"x_{part}" not in headers:
            continue
        n_x, n_y = headers[f"x_{part}"][0][0], headers[f"y_{part}"][0][0]
        if n_x != n_y:
            raise NpzError(f"{path}: x_{part} holds {n_x:,} examples but y_{part} {n_y:,} "
                           "labels; they must be one per example.")
    if "x_test" in headers:
        train, test = (math.prod(headers[f"x_{p}"][0][1:]) for p in ("train", "test"))
        if train != test:
            raise NpzError(f"{path}: x_train has {train} inputs per example but x_test "
                           f"{test}; they must match.")


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo,
          header: tuple[tuple[int, ...], np.dtype, bool, int], path: Path) -> np.ndarray:
    """The member's data, into an array of the checked shape, in chunks (never more
    than it declares; zipfile checks the CRC at its end)."""
    shape, dtype, fortran, offset = header
    name = info.filename.removesuffix(".npy")
    array = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
    view = array.reshape(-1, order="A").view(np.uint8).data
    chunk = 1 << 20
    with archive.open(info) as fp:
        fp.read(offset)
        for at in range(0, len(view), chunk):
            want = min(chunk, len(view) - at)
            data = fp.read(want)
            if len(data) != want:
                raise NpzError(f"{path}: the member {name!r} is truncated; the file is "
                               "corrupt.")
            view[at:at + want] = data
    return array


def archive_width(path: Union[str, Path]) -> Optional[int]:
    """The inputs per example of ``path``'s ``x_train``, from its header alone (for
    ``--sizes auto``); ``None`` when the archive has none (reading it says why)."""
    path = Path(path)
    size = check_regular_file(path, "data file")
    try:
        with open(path, "rb") as f:
            if f.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
                return None
            _check_directory(f, size, path)
            with zipfile.ZipFile(f) as archive:
                members = _members(archive, size, path)
                shape = _header(archive, members["x_train"], path)[0]
    except NpzError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError,
            struct.error, NotImplementedError, RuntimeError, OverflowError):
        return None
    return math.prod(shape[1:])
