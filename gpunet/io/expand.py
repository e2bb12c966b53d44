"""The book's artificially expanded training data (chapter 3, "Artificially expanding
the training data"; its program ``expand_mnist.py``, used again in chapter 6).

:func:`expand_mnist` gives every training image and its four shifts by one pixel, in
the order of the book's loop: the image, then moved down, up, right and left
(``np.roll`` by one pixel, the row or column rolled in set to zero), so 50,000 images
become 250,000, each shift with the label of its image. The validation and test sets are
left as they are, as in the book.

The book's program then shuffles the 250,000 pairs with Python's unseeded
``random.shuffle``; here the shuffle is seeded, so the set is the same on every machine:
row ``r`` is copy ``order[r]`` of the loop, ``order =
numpy.random.default_rng(seed).permutation(5 * n)`` (``shuffle=False``: the loop's own
order). Training draws its own permutation each epoch, so the order matters only to
code that takes a part of the set (``--limit`` takes the first examples: shuffled, they
are a sample of every shift). Rotations, which the book's chapter 3 names too, are not
made: the book's program and its published results use the shifts only, and a rotation
would need interpolation, so its pixels would no longer be the source's values.

The expanded set is built once and kept in the user's cache folder (``cache_dir``, else
``$GPUNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/gpunet``, else ``~/.cache/gpunet``), one
file per source and order: its name holds the SHA-256 of the source's training set and
the order's settings, so a changed source or seed is another file. The file holds 8-bit
pixel codes into a table of the source's pixel values (MNIST's 256 levels: some 197 MB
for 250,000 images, against 784 MB as float32), written atomically
(:func:`gpunet.io.outputs.atomic_write_bytes`), never a pickle. It is read as hostile
input: a regular file of exactly the size its header declares, the header's fields
what this source and order expect, and the SHA-256 of everything after the header
(stored in the header) checked on every read before the data is returned. A cache that
fails a check is rebuilt and replaced, with a :class:`ExpandedCacheWarning` saying why;
a path that is not a regular file (a folder, a pipe) is an error naming it; a cache that
cannot be written is a warning, and the data is returned all the same.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .fields import check_regular_file
from .mnist import MNIST, Split, load_mnist
from .outputs import PathLike, WriteError, atomic_write_bytes

SHIFTS = ("original", "down", "up", "right", "left")
"""The copies of each image, in the book's loop's order (its ``(d, axis)`` pairs
``(1, 0)``, ``(-1, 0)``, ``(1, 1)``, ``(-1, 1)`` after the image itself)."""

COPIES = len(SHIFTS)
SIDE = 28
"""The images are ``SIDE`` x ``SIDE`` pixels, as the book's loop reshapes them."""

CACHE_ENV = "GPUNET_CACHE_DIR"
"""The environment variable naming the cache folder (before ``XDG_CACHE_HOME``)."""

FORMAT = 1
MAGIC = b"GPUNETX\x01"
MAX_HEADER = 4096
"""The largest header read (a few hundred bytes are written)."""

LEVELS = 256
"""The pixel values one cache file can hold: its codes are 8 bits."""

CHUNK = 4096
"""Rows read, coded and decoded at a time (about 3 MB of codes)."""


class ExpandedCacheWarning(UserWarning):
    """The expanded set's cache file failed a check and was rebuilt, or could not be
    written (the set was built in memory)."""


class _CacheProblem(Exception):
    """Why a cache file is not the one this source and order expect."""


def expand_mnist(path: Union[str, Path, None] = None, *, seed: int = 0,
                 shuffle: bool = True, cache_dir: Optional[PathLike] = None) -> MNIST:
    """The data set of :func:`gpunet.load_mnist` (``path``: the bundled MNIST by
    default) with its training part expanded as the book's ``expand_mnist.py`` does:
    each image, then moved one pixel down, up, right and left, five times as many
    examples (MNIST's 50,000 become 250,000), shuffled by ``seed`` unless ``shuffle``
    is false; validation and test unchanged. Built once and kept in the cache folder
    (``cache_dir`` or the module docstring's default), checked on every read.

    The images must be 28x28 (784 inputs), with integer labels and at most 256
    distinct pixel values (any 8-bit image set: MNIST, Fashion-MNIST, KMNIST);
    otherwise a ``ValueError`` says which.
    """
    _check_seed(seed)
    return expand_data(load_mnist(path), seed=seed, shuffle=shuffle, cache_dir=cache_dir)


def expand_data(data: MNIST, *, seed: int = 0, shuffle: bool = True,
                cache_dir: Optional[PathLike] = None) -> MNIST:
    """:func:`expand_mnist` of a data set already loaded (and cut: a validation set
    split off its training part first, so that no shift of a validation image trains);
    the cache is found by the training part's content."""
    _check_seed(seed)
    training = _checked_training(data)
    key = cache_key(training, int(seed), bool(shuffle))
    file = cache_folder(cache_dir) / f"expanded-{key[:32]}.bin"
    expanded = _cached(file, key, training)
    if expanded is None:
        expanded = _build_and_keep(file, key, training, int(seed), bool(shuffle))
    order = f"shuffled by seed {seed}" if shuffle else "in the book's loop order"
    return MNIST(expanded, data.validation, data.test,
                 source=f"{data.source}, training set expanded {COPIES}x by one-pixel "
                        f"shifts ({order})")


def _check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"expand_mnist: seed {seed!r} must be a whole number, 0 or more.")


# ------------------------------------------------------------------ the shifts
def shifted(images: np.ndarray, shift: int) -> np.ndarray:
    """``images`` ``(m, 28, 28)`` moved as the book's loop moves them (``SHIFTS[shift]``):
    ``np.roll`` by one pixel, then the row or column that rolled round set to zero
    (code 0 is the pixel value +0.0, see :func:`pixel_codes`)."""
    out = np.zeros_like(images)
    if shift == 0:
        out[...] = images
    elif shift == 1:  # d = 1 along the rows: down, row 0 zeroed
        out[:, 1:, :] = images[:, :-1, :]
    elif shift == 2:  # d = -1 along the rows: up, row 27 zeroed
        out[:, :-1, :] = images[:, 1:, :]
    elif shift == 3:  # d = 1 along the columns: right, column 0 zeroed
        out[:, :, 1:] = images[:, :, :-1]
    elif shift == 4:  # d = -1 along the columns: left, column 27 zeroed
        out[:, :, :-1] = images[:, :, 1:]
    else:
        raise ValueError(f"shift {shift} is not one of 0..{COPIES - 1} ({SHIFTS}).")
    return out


def expansion_order(n: int, seed: int, shuffle: bool) -> np.ndarray:
    """Which copy of the book's loop each expanded row is: row ``r`` is image
    ``order[r] // 5`` moved by ``SHIFTS[order[r] % 5]``."""
    if not shuffle:
        return np.arange(COPIES * n)
    order: np.ndarray = np.random.default_rng(seed).permutation(COPIES * n)
    return order


def expand_codes(codes: np.ndarray, labels: np.ndarray,
                 order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The expanded rows ``(5n, 784)`` of ``codes`` ``(n, 784)`` in ``order``, and their
    labels; built one shift at a time (never the loop's whole list and its shuffled
    copy at once)."""
    n = codes.shape[0]
    images = codes.reshape(n, SIDE, SIDE)
    out = np.empty((len(order), SIDE, SIDE), dtype=codes.dtype)
    for shift in range(COPIES):
        rows = np.flatnonzero(order % COPIES == shift)
        out[rows] = shifted(images[order[rows] // COPIES], shift)
    return out.reshape(len(order), SIDE * SIDE), labels[order // COPIES]


# ----------------------------------------------------------------- pixel codes
def _bits(dtype: np.dtype) -> np.dtype:
    """The unsigned integer type of a float's bit pattern."""
    return np.dtype(f"u{dtype.itemsize}")


def pixel_codes(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``X``'s pixels as 8-bit codes and the table of :data:`LEVELS` values they index:
    ``levels[codes]`` is ``X`` bit for bit. The table holds the distinct bit patterns
    in increasing order with +0.0's (all zero bits) first, so code 0 is the zero the
    shifts fill in; more than 256 distinct values is a ``ValueError``."""
    bits = X.view(_bits(X.dtype))
    distinct = np.zeros(1, dtype=bits.dtype)
    for at in range(0, len(bits), CHUNK):
        distinct = np.union1d(distinct, np.unique(bits[at:at + CHUNK]))
        if len(distinct) > LEVELS:
            raise ValueError(
                f"expand_mnist keeps pixels as 8-bit codes, but this training set has more "
                f"than {LEVELS} distinct pixel values (with 0); it expands image sets of "
                "8-bit pixels (MNIST, Fashion-MNIST, KMNIST).")
    codes = np.empty(X.shape, dtype=np.uint8)
    for at in range(0, len(bits), CHUNK):
        codes[at:at + CHUNK] = np.searchsorted(distinct, bits[at:at + CHUNK])
    table = np.zeros(LEVELS, dtype=bits.dtype)
    table[:len(distinct)] = distinct
    return codes, table.view(X.dtype)


def decode(codes: np.ndarray, levels: np.ndarray, out: np.ndarray) -> None:
    """``levels[codes]`` into ``out`` (a chunk of the expanded set's rows; NumPy's take
    is twice as fast on native indices as on bytes)."""
    np.take(levels, codes.astype(np.intp), out=out, mode="clip")  # codes < len(levels)


# -------------------------------------------------------------------- building
def _checked_training(data: MNIST) -> Split:
    """The training part, if the book's shifts apply to it: 28x28 float images (as
    :func:`load_mnist` gives them), integer labels, one per image."""
    X, y = data.training
    if X.ndim != 2 or X.shape[1] != SIDE * SIDE:
        raise ValueError(f"expand_mnist shifts 28x28 images (784 inputs); {data.source} "
                         f"has {X.shape[1] if X.ndim == 2 else X.shape} inputs per example.")
    if X.dtype.kind != "f" or X.dtype.itemsize not in (2, 4, 8):
        raise ValueError(f"expand_mnist: {data.source} has {X.dtype} pixels; expected "
                         "floats (as load_mnist gives them).")
    if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(X):
        raise ValueError(f"expand_mnist copies each image's label to its shifts; "
                         f"{data.source} has labels of shape {y.shape} ({y.dtype}), not "
                         "one integer label per image.")
    if not len(y):
        raise ValueError(f"expand_mnist: {data.source} has no training images.")
    return np.ascontiguousarray(X), np.ascontiguousarray(y, dtype=np.int64)


def cache_key(training: Split, seed: int, shuffle: bool) -> str:
    """The SHA-256 naming a cache file: the format, the order's settings and the
    source's training set (dtype, shape and every byte)."""
    X, y = training
    digest = hashlib.sha256(json.dumps(
        {"format": FORMAT, "shifts": SHIFTS, "seed": seed, "shuffle": shuffle,
         "dtype": X.dtype.str, "shape": list(X.shape), "labels": y.dtype.str},
        sort_keys=True).encode())
    digest.update(X.data.cast("B"))
    digest.update(y.data.cast("B"))
    return digest.hexdigest()


def _build_and_keep(file: Path, key: str, training: Split, seed: int,
                    shuffle: bool) -> Split:
    """The expanded set, built from ``training`` and written to ``file`` (a warning
    where it cannot be written)."""
    X, y = training
    codes, levels = pixel_codes(X)
    expanded, labels = expand_codes(codes, y, expansion_order(len(y), seed, shuffle))
    del codes
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(file, _cache_bytes(key, levels, labels, expanded, X.dtype))
    except (OSError, WriteError) as exc:
        warnings.warn(ExpandedCacheWarning(
            f"expand_mnist could not keep the expanded set in {file} ({exc}); it was built "
            f"in memory and will be built again next time (set {CACHE_ENV} to a writable "
            "folder)."), stacklevel=3)
    out = np.empty(expanded.shape, dtype=X.dtype)
    for at in range(0, len(out), CHUNK):
        decode(expanded[at:at + CHUNK], levels, out[at:at + CHUNK])
    return out, labels


def _header(key: str, examples: int, dtype: np.dtype, digest: str) -> dict[str, Any]:
    return {"format": FORMAT, "key": key, "examples": examples, "inputs": SIDE * SIDE,
            "dtype": dtype.str, "levels": LEVELS, "labels": "<i8", "sha256": digest}


def _cache_bytes(key: str, levels: np.ndarray, labels: np.ndarray, codes: np.ndarray,
                 dtype: np.dtype) -> bytes:
    """The cache file: :data:`MAGIC`, the header's length (4 bytes, big-endian), the
    header (JSON), then the payload: the levels, the labels (int64, little-endian), the
    codes (a byte a pixel, row after row). The header holds the payload's SHA-256."""
    parts: list[Union[bytes, memoryview]] = [
        levels.astype(dtype.newbyteorder("<")).tobytes(), labels.astype("<i8").tobytes(),
        np.ascontiguousarray(codes).data.cast("B")]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    header = json.dumps(_header(key, len(labels), dtype, digest.hexdigest()),
                        sort_keys=True).encode()
    return b"".join([MAGIC, len(header).to_bytes(4, "big"), header, *parts])  # one copy


# --------------------------------------------------------------------- reading
def cache_folder(cache_dir: Optional[PathLike] = None) -> Path:
    """Where expanded sets are kept: ``cache_dir``, else ``$GPUNET_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/gpunet``, else ``~/.cache/gpunet``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "gpunet"


def _cached(file: Path, key: str, training: Split) -> Optional[Split]:
    """The expanded set kept in ``file``, or ``None`` where there is none, or it fails
    a check (a warning says which; the caller rebuilds it). A ``file`` that is not a
    regular file is a ``ValueError``: it cannot be replaced."""
    if not os.path.lexists(file):
        return None
    if os.path.islink(file):  # not gpunet's: rebuilding would replace what it points to
        raise ValueError(f"{file} is a symbolic link, not a gpunet cache file (expanded "
                         "training set); gpunet never writes its cache through a link: "
                         f"remove it, or set {CACHE_ENV} to another folder.")
    size = check_regular_file(file, "gpunet cache file (expanded training set)")
    X = training[0]
    try:
        with open(file, "rb") as f:
            return _read_cache(f, size, key, COPIES * len(X), X.dtype)
    except (_CacheProblem, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        warnings.warn(ExpandedCacheWarning(
            f"{file}: {reason}; the expanded set is built again and the file "
            "replaced."), stacklevel=3)
        return None


def _read_cache(f: io.BufferedIOBase, size: int, key: str, examples: int,
               dtype: np.dtype) -> Split:
    """The expanded set of an open cache file of ``size`` bytes, after every check:
    the magic, a header of at most :data:`MAX_HEADER` bytes whose fields are those this
    source and order write (``key``, ``examples``, ``dtype``), the file exactly as long
    as they make it, and the payload's SHA-256 the header's, computed as the rows are
    read (in chunks, decoded as they come). Any failure is a :class:`_CacheProblem`."""
    if size < len(MAGIC) + 4:
        raise _CacheProblem(f"{size} bytes, too short to be a cache file")
    start = f.read(len(MAGIC) + 4)
    if start[:len(MAGIC)] != MAGIC:
        raise _CacheProblem("it is not a gpunet cache file of this version (its first "
                            "bytes differ)")
    length = int.from_bytes(start[len(MAGIC):], "big")
    if length > MAX_HEADER:
        raise _CacheProblem(f"its header declares {length:,} bytes, more than "
                            f"{MAX_HEADER:,}")
    header = _read_header(f.read(length))
    expected = _header(key, examples, dtype, str(header.get("sha256")))
    wrong = sorted(name for name in expected if header.get(name) != expected[name]
                   or type(header.get(name)) is not type(expected[name]))  # 1 is not true
    if wrong or set(header) != set(expected):
        raise _CacheProblem(f"its header is not this source's and order's (fields "
                            f"{', '.join(wrong) or 'other than written'} differ)")
    payload = LEVELS * dtype.itemsize + examples * 8 + examples * SIDE * SIDE
    if size != len(start) + length + payload:
        raise _CacheProblem(f"{size:,} bytes, but its header declares "
                            f"{len(start) + length + payload:,} (truncated or appended to)")
    return _read_payload(f, examples, dtype, str(header["sha256"]))


def _read_header(raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # nested past Python's limit
        raise _CacheProblem("its header is not JSON") from None
    if not isinstance(header, dict):
        raise _CacheProblem("its header is not a JSON object")
    return header


def _read_exactly(f: io.BufferedIOBase, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _CacheProblem("it ended early (truncated while read)")
    return data


def _read_payload(f: io.BufferedIOBase, examples: int, dtype: np.dtype, expected: str) -> Split:
    """The levels, labels and rows (decoded chunk by chunk into the float array), and
    their SHA-256 checked against ``expected`` before anything is returned."""
    digest = hashlib.sha256()
    raw_levels = _read_exactly(f, LEVELS * dtype.itemsize)
    raw_labels = _read_exactly(f, examples * 8)
    digest.update(raw_levels)
    digest.update(raw_labels)
    levels = np.frombuffer(raw_levels, dtype=dtype.newbyteorder("<")).astype(dtype)
    labels = np.frombuffer(raw_labels, dtype="<i8").astype(np.int64)
    X = np.empty((examples, SIDE * SIDE), dtype=dtype)
    chunk = np.empty((CHUNK, SIDE * SIDE), dtype=np.uint8)
    for at in range(0, examples, CHUNK):
        rows = chunk[:min(CHUNK, examples - at)]
        got = f.readinto(rows.data.cast("B"))
        if got != rows.nbytes:
            raise _CacheProblem("it ended early (truncated while read)")
        digest.update(rows.data.cast("B"))
        decode(rows, levels, X[at:at + len(rows)])
    if f.read(1):
        raise _CacheProblem("it goes on past its declared size (appended to while read)")
    if digest.hexdigest() != expected:
        raise _CacheProblem(f"its checksum does not match (SHA-256 {digest.hexdigest()}, "
                            f"its header says {expected}): corrupt or changed")
    return X, labels
