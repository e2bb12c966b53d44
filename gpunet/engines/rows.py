"""Training rows in 8 bits: MNIST's inputs as the bytes they were, decoded exactly.

The CPU engines gather each epoch's mini-batches a chunk at a time from the training
set by the epoch's permutation (:mod:`gpunet.engines.cpu`). For MNIST that is 50,000
rows of ~800 numbers per network per epoch, read in random order from memory far
larger than any cache: ~15% of the book network's epoch. Yet MNIST's pixels are bytes
``u`` and its inputs ``u / 255`` (chapter 1, "Implementing our network to classify
digits": 0.0 white, 1.0 black), and its targets and the bias input are 0 and 1:
every number of a row ``[x, 1, y]`` is one of 256 values.

So where that holds, exactly, the engines keep the rows as codes ``u`` (one byte each:
a quarter of float32's memory traffic, an eighth of float64's) and decode a gathered
chunk with two cheap ufuncs, ``float(u)`` then ``/ 255`` in float32 (or in the
engine's dtype): the very numbers the float rows would have held, so training is bit
for bit the same. Whether it holds is checked once, at the engine's construction, on
every number of the training set with the very decoding the epochs use; any other
data (a number that is not ``u / 255`` exactly, a NaN) keeps the float rows.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, Union

import numpy as np

#: The codes ``0 .. SCALE`` decode to ``code / SCALE``: MNIST's ``u / 255``.
SCALE = 255

#: Bytes of the training set encoded and checked at a time: its temporaries stay in
#: cache (half the time of 6 MB blocks: docs/performance.md).
BLOCK_BYTES = 256 * 1024


class FloatRows:
    """The training set as given (no copy): ``x`` and ``y`` gathered from ``X`` and ``Y``."""

    def __init__(self, X: np.ndarray, Y: np.ndarray) -> None:
        self.X, self.Y = X, Y
        self.n, self.n_in, self.n_out = X.shape[0], X.shape[1], Y.shape[1]

    def gatherer(self, capacity: int) -> "Gather":
        """Staging buffers to gather up to ``capacity`` rows at a time."""
        return FloatGather(self, capacity)


class EightBitRows:
    """The training set's rows ``[x, 1, y]`` as one byte each, and their exact decoding.

    ``codes`` is ``(n, n_in + 1 + n_out)`` uint8; a number decodes to
    ``code / 255`` computed in ``via`` (float32, or the engine's float64), then cast to
    ``dtype``. Build with :func:`eight_bit_rows`, which checks exactness.
    """

    def __init__(self, codes: np.ndarray, n_in: int, dtype: Any, via: Any) -> None:
        self.codes = codes
        self.dtype, self.via = np.dtype(dtype), np.dtype(via)
        self.n, self.n_in, self.n_out = codes.shape[0], n_in, codes.shape[1] - n_in - 1

    def gatherer(self, capacity: int) -> "Gather":
        """Staging buffers to gather and decode up to ``capacity`` rows at a time."""
        return EightBitGather(self, capacity)


Rows = Union[FloatRows, EightBitRows]


class Gather(Protocol):
    def __call__(self, idx: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        """``x`` (``idx.shape + (n_in + 1,)``) and ``y`` (``idx.shape + (n_out,)``) ←
        the rows ``[x, 1]`` and ``y`` of the training set at ``idx``. ``x``'s last
        column must hold 1 already (a buffer made by ``np.ones``): the float rows
        leave it as it is."""


def training_rows(X: np.ndarray, Y: np.ndarray, dtype: Any) -> Rows:
    """The training set for the CPU engines: exact 8-bit codes where every number of
    the rows ``[x, 1, y]`` is ``u / 255`` (:func:`eight_bit_rows`), else ``X`` and
    ``Y`` as given (in ``dtype``)."""
    X, Y = np.asarray(X, dtype), np.asarray(Y, dtype)
    rows = eight_bit_rows(X, Y, dtype)
    return rows if rows is not None else FloatRows(X, Y)


class FloatGather:
    """x into a staging buffer, then beside ``x``'s column of ones; y."""

    def __init__(self, rows: FloatRows, capacity: int) -> None:
        self.X, self.Y, self.n_in = rows.X, rows.Y, rows.n_in
        self.stage = np.empty(capacity * rows.n_in, rows.X.dtype)

    def __call__(self, idx: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        n_in = self.n_in
        stage = self.stage[:idx.size * n_in].reshape(idx.shape + (n_in,))  # contiguous
        np.take(self.X, idx, 0, stage, "clip")  # contiguous out: NumPy's fast path
        np.copyto(x[..., :n_in], stage)
        np.take(self.Y, idx, 0, y, "clip")


class EightBitGather:
    """Codes gathered into a staging buffer, decoded into ``x`` and ``y``."""

    def __init__(self, rows: EightBitRows, capacity: int) -> None:
        self.codes, self.n_in = rows.codes, rows.n_in
        width = rows.codes.shape[1]
        self.stage = np.empty(capacity * width, np.uint8)
        # Decoding float64 rows in float32 needs float32 buffers between.
        self.wide = (np.empty(capacity * width, rows.via) if rows.via != rows.dtype
                     else None)
        self.scale = np.array(SCALE, rows.via)  # 0-d: no conversion per call

    def __call__(self, idx: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        width, split = self.codes.shape[1], self.n_in + 1
        shape = idx.shape + (width,)
        codes = self.stage[:idx.size * width].reshape(shape)  # contiguous: take's fast path
        np.take(self.codes, idx, 0, codes, "clip")
        if self.wide is None:
            decode(codes[..., :split], x, self.scale)
            decode(codes[..., split:], y, self.scale)
        else:
            wide = self.wide[:idx.size * width].reshape(shape)
            decode(codes, wide, self.scale)
            np.copyto(x, wide[..., :split])  # exact: float32 -> float64
            np.copyto(y, wide[..., split:])


def decode(codes: np.ndarray, out: np.ndarray, scale: np.ndarray) -> None:
    """``out`` ← ``codes / scale`` in ``out``'s dtype, rounded once (IEEE division), as
    ``X / 255`` was computed from the bytes."""
    np.copyto(out, codes)  # exact: a byte is exact in any float
    np.divide(out, scale, out)


def eight_bit_rows(X: np.ndarray, Y: np.ndarray, dtype: Any) -> Optional[EightBitRows]:
    """The rows ``[x, 1, y]`` of ``X``, ``Y`` (already in ``dtype``) as exact 8-bit
    codes, or ``None`` where some number is not ``u / 255`` as decoded.

    Every number is checked, block by block, against the decoding the engines use;
    float64 rows are tried decoded in float32 (MNIST's float32 inputs widened) and,
    failing that, in float64 (inputs computed as ``u / 255.0`` in float64).
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f" or X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y) or not len(X):
        return None
    n, n_in = X.shape
    codes = np.empty((n, n_in + 1 + Y.shape[1]), np.uint8)
    ones_and_y = np.empty((n, 1 + Y.shape[1]), dtype)  # small: ~1/70 of MNIST's rows
    ones_and_y[:, 0] = 1
    ones_and_y[:, 1:] = Y
    candidates = [np.dtype(np.float32)] + ([dtype] if dtype != np.float32 else [])
    for via in candidates:
        if (_encode(X, codes[:, :n_in], dtype, via)
                and _encode(ones_and_y, codes[:, n_in:], dtype, via)):
            return EightBitRows(codes, n_in, dtype, via)
    return None


def _encode(A: np.ndarray, codes: np.ndarray, dtype: np.dtype, via: np.dtype) -> bool:
    """``codes`` ← the nearest byte to ``255 A``; whether each decodes (in ``via``, as
    :class:`EightBitGather` decodes) to exactly its number of ``A``, bit for bit."""
    n, w = A.shape
    scale = np.array(SCALE, via)
    block = max(1, BLOCK_BYTES // (max(w, 1) * dtype.itemsize))
    back = np.empty((min(n, block), w), dtype)
    wide = np.empty(back.shape, via) if via != dtype else None
    bits = np.dtype(f"u{dtype.itemsize}")  # compared bit for bit: -0.0 is not 0.0
    with np.errstate(invalid="ignore", over="ignore"):  # NaN, inf, < 0: they fail below
        for first in range(0, n, block):
            a, c = A[first:first + block], codes[first:first + block]
            b = back[:len(a)]
            np.multiply(a, SCALE, b)
            np.add(b, 0.5, b)
            np.copyto(c, b, casting="unsafe")  # truncates: the nearest byte (if any)
            if wide is None:
                decode(c, b, scale)
            else:
                decode(c, wide[:len(b)], scale)
                np.copyto(b, wide[:len(b)])  # exact: float32 -> float64
            if not np.array_equal(b.view(bits), np.ascontiguousarray(a).view(bits)):
                return False
    return True
