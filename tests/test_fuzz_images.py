"""The digit reader never crashes on edited image headers: Hypothesis fuzzing (issue 26).

tests/test_fuzz.py damages whole files (truncated, bits flipped, bytes inserted). Here
the fields of each format's header are edited the way a hostile file sets them, the
file otherwise kept valid (PNG chunks get their CRC recomputed, so the edit reaches the
decoder): sizes of 0, 1, 2**31 and everything between, bit depths and colour types
that do not exist, chunk and segment lengths past the end, TIFF tags of the wrong type
and count, EXIF orientations out of range, ``.npy`` headers with other shapes, dtypes
and orders. Whatever it gets, ``read_digit`` returns a ``(784,)`` float32 input in [0,
1] or raises one ``ValueError``, never another exception. Example counts are fixed and
the search derandomized, so CI runs the same cases every time, in a few seconds each.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz tests need Hypothesis "
                                 "(the test extra)")
PIL = pytest.importorskip("PIL.Image", reason="reading images needs Pillow (images extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gpunet.io.images import read_digit

FUZZ = settings(max_examples=80, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

#: Values a hostile header puts in a numeric field: the edges of each width, and any.
FIELD_VALUES = (st.sampled_from([0, 1, 2, 3, 7, 8, 15, 16, 255, 256, 65535, 65536,
                                 2**31 - 1, 2**31, 2**32 - 1])
                | st.integers(0, 2**32 - 1))


def _check(path) -> None:
    """``read_digit(path)`` returns a valid input or raises ValueError, nothing else."""
    try:
        x = read_digit(path)
    except ValueError:
        return
    assert x.shape == (784,) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0


@pytest.fixture(scope="module")
def levels(mnist) -> np.ndarray:
    """A test digit as a small scan: dark ink on light paper, 8-bit, 28 × 36 pixels."""
    page = np.full((36, 28), 255, dtype=np.uint8)
    page[4:32] = np.round(255 * (1 - mnist.test[0][0].reshape(28, 28))).astype(np.uint8)
    return page


def _encoded(levels: np.ndarray, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    PIL.fromarray(levels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


# ------------------------------------------------------------------------ PNG
def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        chunks.append((kind, png[at + 8:at + 8 + length]))
        at += 12 + length
    return chunks


def _png(chunks: list[tuple[bytes, bytes]], lengths: dict[int, int] | None = None) -> bytes:
    """A PNG of ``chunks``, CRCs right; ``lengths`` overrides chunk i's declared length."""
    out = [b"\x89PNG\r\n\x1a\n"]
    for i, (kind, data) in enumerate(chunks):
        length = (lengths or {}).get(i, len(data))
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        out.append(struct.pack(">I", length) + kind + data + struct.pack(">I", crc))
    return b"".join(out)


IHDR_FIELDS = {"width": (0, ">I"), "height": (4, ">I"), "bit depth": (8, ">B"),
               "colour type": (9, ">B"), "compression": (10, ">B"), "filter": (11, ">B"),
               "interlace": (12, ">B")}


@st.composite
def edited_png(draw: Any, good: bytes) -> bytes:
    chunks = _chunks(good)
    how = draw(st.sampled_from(["ihdr", "length", "insert chunk", "drop chunk"]))
    if how == "ihdr":
        data = bytearray(chunks[0][1])
        for _ in range(draw(st.integers(1, 3))):
            offset, fmt = IHDR_FIELDS[draw(st.sampled_from(sorted(IHDR_FIELDS)))]
            value = draw(FIELD_VALUES) % (256 ** struct.calcsize(fmt))
            data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
        chunks[0] = (b"IHDR", bytes(data))
        return _png(chunks)
    if how == "length":
        i = draw(st.integers(0, len(chunks) - 1))
        return _png(chunks, {i: draw(FIELD_VALUES)})
    if how == "insert chunk":
        kind = draw(st.sampled_from([b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"eXIf", b"PLTE",
                                     b"tRNS", b"gAMA", b"sBIT", b"pHYs", b"acTL", b"fcTL",
                                     b"IDAT", b"IHDR", b"IEND"]))
        data = draw(st.binary(max_size=40))
        if kind in (b"zTXt", b"iCCP") and draw(st.booleans()):
            data = b"k\0\0" + zlib.compress(draw(st.binary(max_size=200)) * 50)
        i = draw(st.integers(1, len(chunks)))
        return _png(chunks[:i] + [(kind, data)] + chunks[i:])
    i = draw(st.integers(0, len(chunks) - 1))
    return _png(chunks[:i] + chunks[i + 1:])


@FUZZ
@given(data=st.data())
def test_edited_png_headers(tmp_path, levels, data):
    path = tmp_path / "digit.png"
    path.write_bytes(data.draw(edited_png(_encoded(levels, "PNG"))))
    _check(path)


# ----------------------------------------------------------------------- JPEG
def _segments(jpeg: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each marker segment before the scan data."""
    out, at = [], 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF:
        marker = jpeg[at + 1]
        length = struct.unpack(">H", jpeg[at + 2:at + 4])[0]
        out.append((at, length))
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        at += 2 + length
    return out


@st.composite
def edited_jpeg(draw: Any, good: bytes) -> bytes:
    data = bytearray(good)
    segments = _segments(good)
    for _ in range(draw(st.integers(1, 3))):
        at, length = draw(st.sampled_from(segments))
        how = draw(st.sampled_from(["length", "field", "byte"]))
        if how == "length":
            data[at + 2:at + 4] = struct.pack(">H", draw(FIELD_VALUES) % 65536)
        elif how == "field" and good[at + 1] in (0xC0, 0xC1, 0xC2):  # SOF: size, parts
            offset, size = draw(st.sampled_from([(5, 1), (6, 2), (8, 2), (10, 1),
                                                 (12, 1), (13, 1)]))
            value = draw(FIELD_VALUES) % (256 ** size)
            data[at + offset - 1:at + offset - 1 + size] = value.to_bytes(size, "big")
        else:
            i = at + 4 + draw(st.integers(0, max(0, length - 3)))
            if i < len(data):
                data[i] = draw(st.integers(0, 255))
    return bytes(data)


def _with_exif(levels: np.ndarray, fmt: str, orientation: int, **options: Any) -> bytes:
    exif = PIL.Exif()
    exif[0x0112] = orientation
    return _encoded(levels, fmt, exif=exif.tobytes(), **options)


@FUZZ
@given(data=st.data())
def test_edited_jpeg_headers(tmp_path, levels, data):
    good = _with_exif(levels, "JPEG", data.draw(st.sampled_from([1, 6])), quality=90)
    path = tmp_path / "digit.jpg"
    path.write_bytes(data.draw(edited_jpeg(good)))
    _check(path)


@FUZZ
@given(orientation=st.integers(0, 65535), fmt=st.sampled_from(["JPEG", "PNG", "TIFF",
                                                               "WEBP"]))
def test_any_exif_orientation(tmp_path, levels, orientation, fmt):
    """Orientations 1-8 turn the picture; others (0, 9, 65535) are no orientation."""
    path = tmp_path / f"digit.{fmt.lower()}"
    path.write_bytes(_with_exif(levels, fmt, orientation))
    _check(path)


# ----------------------------------------------------------------------- TIFF
TIFF_TAGS = [256, 257, 258, 259, 262, 273, 274, 277, 278, 279, 284, 317, 338, 339]
"""Width, height, bits per sample, compression, photometric, strip offsets, orientation,
samples per pixel, rows per strip, strip byte counts, planar configuration, predictor,
extra samples, sample format."""


@st.composite
def edited_tiff(draw: Any, good: bytes) -> bytes:
    """A little-endian TIFF with some entries of its first directory edited: type,
    count or value (entries are 12 bytes: tag, type, count, value or offset)."""
    data = bytearray(good)
    ifd = struct.unpack("<I", good[4:8])[0]
    n = struct.unpack("<H", good[ifd:ifd + 2])[0]
    entries = {struct.unpack("<H", good[ifd + 2 + 12 * i:ifd + 4 + 12 * i])[0]:
               ifd + 2 + 12 * i for i in range(n)}
    for _ in range(draw(st.integers(1, 3))):
        tag = draw(st.sampled_from([t for t in TIFF_TAGS if t in entries]))
        at = entries[tag]
        field = draw(st.sampled_from(["type", "count", "value"]))
        if field == "type":
            data[at + 2:at + 4] = struct.pack("<H", draw(st.integers(0, 20)))
        elif field == "count":
            data[at + 4:at + 8] = struct.pack("<I", draw(FIELD_VALUES))
        else:
            data[at + 8:at + 12] = struct.pack("<I", draw(FIELD_VALUES))
    return bytes(data)


@FUZZ
@given(data=st.data())
def test_edited_tiff_headers(tmp_path, levels, data):
    options = data.draw(st.sampled_from([{}, {"compression": "tiff_lzw"},
                                         {"compression": "tiff_deflate"}]))
    good = _encoded(levels, "TIFF", **options)
    if data.draw(st.booleans()):
        good = _encoded(levels.astype(np.uint16) * 257, "TIFF", **options)  # 16-bit
    path = tmp_path / "digit.tif"
    path.write_bytes(data.draw(edited_tiff(good)))
    _check(path)


# ------------------------------------------------------------ other headers
@FUZZ
@given(data=st.data(), fmt=st.sampled_from(["BMP", "GIF", "PPM", "WEBP"]))
def test_edited_bytes_in_other_headers(tmp_path, levels, data, fmt):
    """BMP, GIF, PGM and WebP: any of the first 64 bytes set to a field's edge value."""
    good = bytearray(_encoded(levels, fmt))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, min(63, len(good) - 1)))
        size = data.draw(st.sampled_from([1, 2, 4]))
        value = data.draw(FIELD_VALUES) % (256 ** size)
        order = data.draw(st.sampled_from(["big", "little"]))
        good[i:i + size] = value.to_bytes(size, order)
    path = tmp_path / f"digit.{fmt.lower()}"
    path.write_bytes(bytes(good))
    _check(path)


# ------------------------------------------------------------------------ .npy
SHAPES = st.one_of(
    st.lists(st.integers(-2, 40), min_size=0, max_size=4).map(tuple),
    st.sampled_from([(784,), (784, 1), (1, 784), (28, 28), (1, 28, 28), (28, 28, 1),
                     (2**31, 2**31), (2**63 - 1,), (28, 28, 3), (28, 28, 4), (3, 28, 28)]))
DESCRS = st.sampled_from(["<f8", ">f8", "<f4", "<f2", "|u1", "<u2", ">u2", "<i4", "|b1",
                          "|i1", "<c8", "|O", "<U4", "|S3", "|V8", "<M8[s]", "<m8[s]",
                          "<f16"]) | st.text(max_size=6)


@st.composite
def npy_file(draw: Any) -> bytes:
    """A .npy header with any shape, dtype and order, and data of any length."""
    shape = draw(SHAPES)
    header = {"descr": draw(DESCRS), "shape": shape,
              "fortran_order": draw(st.booleans() | st.integers(-1, 2))}
    text = repr(header)
    if draw(st.booleans()):  # the header's text itself edited
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.text(max_size=4)) + text[i + draw(st.integers(0, 3)):]
    raw = text.encode("latin1", "replace")
    raw += b" " * (-(len(raw) + 11) % 64) + b"\n"
    version = draw(st.sampled_from([(1, 0), (2, 0), (3, 0), (0, 9)]))
    prefix = b"\x93NUMPY" + bytes(version)
    prefix += struct.pack("<H" if version[0] < 2 else "<I", len(raw))
    size = draw(st.integers(0, 8 * 28 * 28 * 4))
    fill = draw(st.sampled_from([b"\0", b"\xff", b"\x7f", b"\x3f"]))
    return prefix + raw + fill * size


@FUZZ
@given(content=npy_file(), name=st.sampled_from(["digit.npy", "digit.png"]))
def test_npy_headers(tmp_path, content, name):
    """Whatever its name, a file with the .npy magic is read as .npy, header first."""
    path = tmp_path / name
    path.write_bytes(content)
    _check(path)
