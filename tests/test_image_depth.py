"""Reading users' image files: deep images (issue 18) and hostile files (issue 26).

Deep images. Pillow's ``convert("L")`` clips 16-bit grey levels to 255 instead of scaling
them, so a dark-on-light 16-bit scan read through it is all "white" (or a 12-bit scan
stored in 16 bits all but saturated): the digit is lost, silently. Each deep image here
is the 8-bit image of the same MNIST digit with its levels scaled to the deeper range;
read back it must give the 8-bit image's input to within the deeper format's rounding.

Hostile and odd files (issue 26), each class with several cases: a file in a format
outside the allow-list (PostScript named ``digit.png`` would be handed to Ghostscript)
is refused, whatever its name, and no program is started; every allowed format reads
the same digit; decompression bombs (pixels a PNG header declares, inflating text
chunks, a ``.npy`` header declaring a huge shape) are refused before the memory is
spent (``tracemalloc`` peak); a photo stored turned or mirrored with an EXIF
Orientation reads as the upright one; 784 values in any vector shape are one 28 × 28
image, in a file or in memory.
"""

from __future__ import annotations

import io
import re
import struct
import subprocess
import tracemalloc
import zlib

import numpy as np
import pytest

from gpunet.io import images
from gpunet.io.images import read_digit, scale_grey

PIL = pytest.importorskip("PIL.Image", reason="reading images needs Pillow (images extra)")


@pytest.fixture(scope="module")
def digit_8bit(mnist):
    """A test-set digit as a user's scan: dark ink on light paper, 2x upscaled, 8-bit."""
    x, label = mnist.test[0][0], int(mnist.test[1][0])
    levels = np.round(255 * (1.0 - x.reshape(28, 28))).astype(np.uint8)
    return np.kron(levels, np.ones((2, 2), dtype=np.uint8)), label


def _write(tmp_path, name, array, mode=None):
    path = tmp_path / name
    PIL.fromarray(array, mode=mode).save(path) if mode else PIL.fromarray(array).save(path)
    return path


@pytest.mark.parametrize("name, make", [
    ("digit16.png", lambda a: a.astype(np.uint16) * 257),  # full 16-bit range
    ("digit12.png", lambda a: np.round(a * (4095 / 255)).astype(np.uint16)),  # 12 in 16
    ("digit16.tif", lambda a: a.astype(np.uint16) * 257),
    ("digitf.tif", lambda a: (a / 255.0).astype(np.float32)),  # float TIFF in [0, 1]
])
def test_deep_images_read_as_their_8bit_version(tmp_path, digit_8bit, name, make):
    levels, _ = digit_8bit
    reference = read_digit(_write(tmp_path, "digit8.png", levels))
    deep = make(levels)
    path = _write(tmp_path, name, deep)
    with PIL.open(path) as image:
        assert image.mode in ("I;16", "I", "F"), image.mode  # really a deep image
    got = read_digit(path)
    # 8-bit levels scaled to 12 or 16 bits come back within their rounding (1/4095)
    np.testing.assert_allclose(got, reference, atol=2e-3)


def test_a_deep_digit_is_classified_as_its_8bit_version(tmp_path, digit_8bit, mnist):
    import gpunet

    levels, label = digit_8bit
    net = gpunet.Network([784, 30, 10], seed=3, device="cpu", cost="cross-entropy")
    net.SGD((mnist.training[0][:5000], mnist.training[1][:5000]), 2, 10, 0.5, verbose=False)
    eight = net.predict(read_digit(_write(tmp_path, "d8.png", levels)))
    sixteen = net.predict(read_digit(_write(tmp_path, "d16.png",
                                            levels.astype(np.uint16) * 257)))
    assert int(sixteen) == int(eight) == label


def test_scale_grey_by_depth():
    assert scale_grey(np.array([[0, 4095]], dtype=np.uint16)).max() == 1.0  # 12-bit
    assert scale_grey(np.array([[0, 4096]], dtype=np.uint16)).max() == pytest.approx(
        4096 / 16383)  # 14-bit
    assert scale_grey(np.array([[0, 65535]], dtype=np.uint16)).max() == 1.0
    assert scale_grey(np.array([[0.0, 0.5]], dtype=np.float32)).tolist() == [[0.0, 0.5]]
    assert scale_grey(np.array([[0.0, 127.5]], dtype=np.float32)).tolist() == [[0.0, 0.5]]
    with pytest.raises(ValueError, match="NaN"):
        scale_grey(np.array([[0.0, np.nan]], dtype=np.float32))


# --------------------------------------------------------------- formats (issue 26)
def _png_of(levels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PIL.fromarray(levels).save(buffer, format="PNG")
    return buffer.getvalue()


def _saved(levels: np.ndarray, fmt: str, **options) -> bytes:
    image = PIL.fromarray(levels)
    if fmt in ("MPO", "JPEG2000", "ICNS", "AVIF", "WEBP"):
        image = image.convert("RGB")
    if fmt in ("XBM", "MSP"):
        image = image.convert("1")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


POSTSCRIPT = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 56 56\n"
              b"newpath 10 10 moveto 46 46 lineto 8 setlinewidth stroke showpage\n%%EOF\n")


@pytest.mark.parametrize("name", ["digit.png", "digit.jpg", "digit.eps", "digit"])
def test_postscript_is_refused_and_no_program_runs(tmp_path, monkeypatch, name):
    """Pillow's EPS reader renders by running Ghostscript (``gs``): a PostScript file
    named digit.png must be refused by its content, before any program could start."""
    from PIL import EpsImagePlugin

    started = []

    def no_program(*args, **kwargs):
        started.append(args)
        raise OSError("a digit image started a program")

    monkeypatch.setattr(subprocess, "Popen", no_program)
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # would look for gs again
    path = tmp_path / name
    path.write_bytes(POSTSCRIPT)
    with pytest.raises(ValueError) as error:
        read_digit(path)
    assert started == []  # (before: Pillow's EPS reader ran `gs --version`, then gs)
    assert re.match(rf"{re.escape(str(path))} is not an image .*PostScript.*accepted: "
                    "PNG, JPEG", str(error.value))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Pillow deprecates IM
@pytest.mark.parametrize("fmt", ["EPS", "PDF", "ICO", "TGA", "PCX", "SGI", "IM", "DDS",
                                 "XBM", "SPIDER", "MSP", "JPEG2000", "ICNS", "AVIF"])
def test_formats_outside_the_allow_list_are_refused(tmp_path, digit_8bit, fmt):
    """Every format Pillow can write but a digit is not read from, named digit.png."""
    levels, _ = digit_8bit
    try:
        data = _saved(levels, fmt)
    except (OSError, KeyError, ValueError) as exc:  # this Pillow has no writer for it
        pytest.skip(f"Pillow cannot write {fmt} here: {exc}")
    path = tmp_path / "digit.png"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="accepted: PNG, JPEG"):
        read_digit(path)


@pytest.mark.parametrize("fmt, options, tolerance", [
    ("PNG", {}, 0.0), ("BMP", {}, 0.0), ("GIF", {}, 0.0), ("TIFF", {}, 0.0),
    ("TIFF", {"compression": "tiff_lzw"}, 0.0), ("PPM", {}, 0.0),
    ("WEBP", {"lossless": True}, 0.0), ("JPEG", {"quality": 95}, 0.02),
    ("MPO", {"quality": 95}, 0.02)])
def test_every_allowed_format_reads_the_same_digit(tmp_path, digit_8bit, fmt, options,
                                                   tolerance):
    levels, _ = digit_8bit
    reference = read_digit(_write(tmp_path, "reference.png", levels))
    path = tmp_path / f"digit.{fmt.lower()}"
    path.write_bytes(_saved(levels, fmt, **options))
    got = read_digit(path)
    assert np.abs(got - reference).mean() <= tolerance + 1e-6


def _read_traced(path) -> tuple[np.ndarray, int]:
    """read_digit(path) and the most memory (traced) it held."""
    tracemalloc.start()
    try:
        got = read_digit(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return got, peak


def test_a_large_photo_is_read_at_a_working_size(tmp_path, digit_8bit):
    """Scans of 2,016 and 4,032 pixels a side read as the same digit as their 56-pixel
    original, and the larger costs little more memory: pictures are shrunk to the
    working size (in blocks, never as a float copy of the whole), then prepared."""
    levels, _ = digit_8bit
    reference = read_digit(_write(tmp_path, "small.png", levels))
    paths = [_write(tmp_path, f"big{k}.png", np.kron(levels, np.ones((k, k), np.uint8)))
             for k in (36, 72)]
    (got, peak), (got4, peak4) = _read_traced(paths[0]), _read_traced(paths[1])
    assert np.abs(got - reference).mean() < 0.02 and np.abs(got4 - reference).mean() < 0.02
    assert peak4 < 1.5 * peak  # 4 times the pixels


# ------------------------------------------------------------ bombs (issue 26)
def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _png(width: int, height: int, idat: bytes, before_idat: bytes = b"") -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + before_idat
            + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


def _zero_rows(width: int, height: int) -> bytes:
    """The zlib stream of ``height`` all-zero rows of a grey PNG: ~1/1000 of their size."""
    deflate = zlib.compressobj(9)
    row, parts = b"\0" * (width + 1), []
    for start in range(0, height, 256):
        parts.append(deflate.compress(row * min(256, height - start)))
    return b"".join(parts) + deflate.flush()


def _peak_while(read, *args) -> tuple[BaseException, int]:
    """The exception ``read(*args)`` raised and the most memory (traced) it held."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as error:
            read(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return error.value, peak


def test_a_png_pixel_bomb_is_refused_before_decoding(tmp_path):
    """A valid 64 KB PNG of 8,200 × 8,200 pixels (67 megapixels, just over the limit):
    refused from its header, without decoding its 67 MB of pixels."""
    path = tmp_path / "bomb.png"
    path.write_bytes(_png(8200, 8200, _zero_rows(8200, 8200)))
    assert path.stat().st_size < 100_000
    error, peak = _peak_while(read_digit, path)
    assert "8200 × 8200" in str(error) and "67,108,864" in str(error)
    assert peak < 4 * 2**20


@pytest.mark.parametrize("width, height", [
    (9000, 8000),  # over the limit, under Pillow's warning (89 Mpx)
    (10000, 9500),  # Pillow's DecompressionBombWarning, made an error
    (30000, 30000),  # Pillow's DecompressionBombError
    (1, 2**27), (2**31 - 1, 1), (65535, 65535)])
def test_declared_pixel_counts_over_the_limit_are_refused(tmp_path, width, height):
    path = tmp_path / "digit.png"
    path.write_bytes(_png(width, height, zlib.compress(b"\0" * 64)))
    with pytest.raises(ValueError, match=r"pixels.*scale it down"):
        read_digit(path)


def test_png_text_chunks_that_inflate_are_refused(tmp_path, digit_8bit):
    """40 compressed text chunks of 1,000,000 bytes each (each under Pillow's own limit
    of 1 MiB a chunk, 40 MB together, from 40 KB of file)."""
    levels, _ = digit_8bit
    good = _png_of(levels)
    text = _chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"7" * 1_000_000, 9))
    at = good.index(b"IDAT") - 4
    path = tmp_path / "digit.png"
    path.write_bytes(good[:at] + text * 40 + good[at:])
    assert path.stat().st_size < 100_000
    error, peak = _peak_while(read_digit, path)
    assert "metadata" in str(error) and str(error).startswith(str(path))
    assert peak < 8 * 2**20
    path.write_bytes(good[:at] + text + good[at:])  # one such chunk is no bomb
    np.testing.assert_array_equal(read_digit(path), read_digit(_write(tmp_path, "p.png",
                                                                      levels)))


def _npy_header(shape, descr="|u1") -> bytes:
    from numpy.lib import format as npy

    buffer = io.BytesIO()
    npy.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False,
                                        "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize("shape, descr", [
    ((2**20, 2**20), "<f8"),  # 2**40 values: 8 TB declared in a 100-byte file
    ((2**40,), "|u1"), ((2**13, 2**13, 2), "<f4"), ((-28, -28), "<f8"), ((0, 28), "<f8"),
    ((28, 28), "|O"), ((28, 28), "<U3"), ((28, 28), "<c16"), ((28, 28), "<M8[s]"),
    ((28, 28), [("a", "<f4")])])
def test_npy_headers_are_checked_before_their_data(tmp_path, shape, descr):
    path = tmp_path / "digit.npy"
    path.write_bytes(_npy_header(shape, descr) + b"\0" * 1024)
    error, peak = _peak_while(read_digit, path)
    assert str(error).startswith(str(path))
    assert peak < 2**20


def test_a_npy_pixel_bomb_is_refused_before_it_is_read(tmp_path):
    """A valid (sparse) 72 MB .npy of 9,000 × 8,000 bytes: refused from its header."""
    path = tmp_path / "digit.npy"
    with open(path, "wb") as f:
        f.write(_npy_header((9000, 8000)))
        f.truncate(f.tell() + 9000 * 8000)
    error, peak = _peak_while(read_digit, path)
    assert "72,000,000 values" in str(error)
    assert peak < 2**20


def test_a_truncated_npy_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "digit.npy"
    path.write_bytes(_npy_header((28, 28)) + b"\0" * 700)
    with pytest.raises(ValueError, match="truncated"):
        read_digit(path)


# ------------------------------------------------------- orientation (issue 26)
STORED = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
          6: "ROTATE_90", 7: "TRANSVERSE", 8: "ROTATE_270"}
"""EXIF orientation -> how the upright picture is turned to be stored with it (the
inverse of what a viewer does to show it)."""


@pytest.mark.parametrize("orientation", sorted(STORED))
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_exif_orientation_is_applied(tmp_path, digit_8bit, orientation, fmt):
    """A phone photo stored turned (or mirrored) with an EXIF Orientation tag reads as
    the upright photo. The digit sits off-centre on a portrait page so that every
    orientation moves it."""
    levels, _ = digit_8bit
    page = np.full((120, 80), 255, dtype=np.uint8)
    page[10:66, 4:60] = levels
    upright = PIL.fromarray(page)
    stored = upright.transpose(getattr(PIL.Transpose, STORED[orientation]))
    exif = PIL.Exif()
    exif[0x0112] = orientation
    options = {"quality": 95} if fmt == "JPEG" else {}
    path, reference = tmp_path / f"turned.{fmt.lower()}", tmp_path / f"upright.{fmt.lower()}"
    stored.save(path, format=fmt, exif=exif.tobytes(), **options)
    upright.save(reference, format=fmt, **options)
    got, want = read_digit(path), read_digit(reference)
    assert np.abs(got - want).mean() < (0.02 if fmt == "JPEG" else 1e-6)


# ------------------------------------------------------------ shapes (issue 26)
@pytest.mark.parametrize("shape", [(784,), (784, 1), (1, 784), (28, 28), (1, 28, 28),
                                   (28, 28, 1), (1, 1, 784)])
def test_784_values_in_any_shape_are_one_mnist_image(tmp_path, mnist, shape):
    """The book's column (784, 1), a row (1, 784), the flat (784,) and the picture
    (28, 28) are the same image, from a .npy file or an array in memory."""
    x = mnist.test[0][0]
    reference = read_digit(x.reshape(28, 28))
    np.testing.assert_array_equal(read_digit(x.reshape(shape)), reference)
    path = tmp_path / "digit.npy"
    np.save(path, x.reshape(shape))
    np.testing.assert_array_equal(read_digit(path), reference)
    np.testing.assert_array_equal(images.mnist_like(x.reshape(shape)), reference)
