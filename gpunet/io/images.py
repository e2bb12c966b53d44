"""Digit images as users have them, prepared the way MNIST's own digits were.

Chapter 1 ("Learning with gradient descent") describes MNIST's images: 28 × 28 grey
levels. LeCun, Cortes and Burges made them from NIST's scans by size-normalising each
digit into a 20 × 20 box (keeping the aspect ratio, anti-aliased into grey levels) and
centring it by its centre of mass in a 28 × 28 field; ink is bright (1.0) on a dark
(0.0) background. A network trained on MNIST sees only such images, so a user's photo
or drawing must be brought to the same form first:

1. read it as grey levels in [0, 1], upright, checked before it is decoded
   (:func:`read_grey`): only the raster formats of :data:`FORMATS` (no decoder that
   could start a program or load other code), at most :data:`MAX_FILE_BYTES` bytes and
   :data:`MAX_PIXELS` pixels as the header declares them, PNG metadata at most
   :data:`MAX_METADATA_BYTES` inflated; a ``.npy`` array's header is read and checked
   (shape, size, a numeric dtype, never pickles) before its data. A photo's EXIF
   Orientation is applied first. Colour becomes luminance, transparency ink; images
   deeper than 8 bits are scaled by their own depth (:func:`scale_grey`), never clipped;
   pictures larger than :data:`WORK_SIDE` are area-averaged down to it. 784 values in
   any of the shapes (784,), (784, 1), (1, 784) and (28, 28) are one MNIST image, row
   by row (:func:`as_picture`);
2. find the ink (:func:`ink_map`): decide whether it is dark on light or light on dark
   (the side the picture's sparse outliers lie on, against a coarse local median),
   estimate the paper's uneven light (:func:`background`: a morphological closing, or
   opening for light ink, wider than a stroke: it follows gradients, vignettes and
   shadow edges but not strokes) and remove it (dark ink as a fraction of the paper's
   brightness there, so a shadow does not fade it), then stretch so the ink is 1 and
   the paper 0. A picture cropped to the digit (the digit fills it, or the first guess
   is unsure) has too little paper for that: its paper is the border's level;
3. keep the digit (:func:`digit_crop`): the ink pixels grouped into connected pieces,
   the largest and those near it kept, specks and smudges away from it dropped, then
   cropped to their bounding box;
4. scale it into a 20 × 20 box keeping the aspect ratio, widening strokes thinner than
   a fraction of MNIST's first (:func:`stroke_width`: a fine pen's lines would
   otherwise fade to a faint grey when shrunk);
5. place it in a 28 × 28 field with its centre of mass at the centre.

Reading image files needs Pillow (the ``images`` extra); ``.npy`` files and arrays do
not.
"""

from __future__ import annotations

import math
import os
import struct
import tokenize
import warnings
import zlib
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..backends.hints import install_hint

PathLike = Union[str, "os.PathLike[str]"]

FIELD = 28  # MNIST's image side
BOX = 20  # the box MNIST's digits were scaled into
INK = 0.2  # grey level (after contrast stretch) above which a pixel counts as ink
CONTRAST = 0.15  # weakest ink (as a fraction of the paper's light) that is a digit
EXTRA_HINT = install_hint("images")

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
"""Pillow's decoders a digit image is read with, and no others. Each decodes pixels in
Pillow's own C code (libpng's zlib, libjpeg, libtiff, libwebp) and none starts a program
or loads other code while reading: checked in Pillow's plugins, where only writers call
programs (GIF through netpbm) and JPEG's ``load_djpeg`` calls ``djpeg`` only when called
by name. Left out on purpose: EPS and PostScript (read by running Ghostscript), PDF,
WMF/EMF (drawn by the system on Windows), the GRIB, BUFR and HDF5 stubs (they hand the
file to whatever handler is registered), and formats no camera, scanner or drawing app
writes digits in (FITS, PSD, ICO, JPEG 2000, ...). A phone's MPO (a JPEG with a second
picture) comes through the JPEG decoder, which reads its first picture; PPM covers
PBM, PGM and PPM."""

FORMAT_NAMES = "PNG, JPEG (and phones' MPO), BMP, GIF, TIFF, WebP, PBM/PGM/PPM or .npy"

MAX_PIXELS = 2**26
"""The most pixels (width × height, as the file's header declares them) an image may
have: 67,108,864, e.g. 8192 × 8192, above the 48-50 megapixels of the largest common
phone photos. Checked before any pixel is decoded; a larger image (a decompression bomb
declares billions in a few kilobytes) is refused, never decoded. For ``.npy`` arrays, the
most values."""

MAX_FILE_BYTES = 2**27
"""The largest image or ``.npy`` file read: 128 MiB (a 50-megapixel JPEG is about 20)."""

MAX_METADATA_BYTES = 2**22
"""The most bytes a PNG's metadata (text, ICC profile, EXIF) may take once inflated:
4 MiB, checked chunk by chunk before Pillow reads them (a compressed text chunk can
inflate a thousandfold)."""

WORK_SIDE = 1024
"""Pictures with a longer side are area-averaged down to at most this many pixels before
the digit is looked for: a digit is finally 20 pixels tall."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NPY_MAGIC = b"\x93NUMPY"
LUMINANCE = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, as Pillow's convert("L")


# ----------------------------------------------------------------------- reading
def _pillow() -> Any:
    """Pillow's ``Image`` with the decoders of :data:`FORMATS` registered (importing them
    by name means Pillow never needs to import all its plugins to find one)."""
    try:
        from PIL import Image
        from PIL import (BmpImagePlugin, GifImagePlugin, JpegImagePlugin,  # noqa: F401
                         PngImagePlugin, PpmImagePlugin, TiffImagePlugin)
    except ImportError:
        raise ValueError(f"reading images needs Pillow, which is not installed: "
                         f"install {EXTRA_HINT}.") from None
    try:
        from PIL import WebPImagePlugin  # noqa: F401  (Pillow built without libwebp)
    except ImportError:
        pass
    return Image


def read_grey(path: PathLike) -> np.ndarray:
    """The image at ``path`` as a 2-D float array of grey levels in [0, 1], upright.

    Colour becomes luminance; where the image has transparency, opacity is the ink
    (dark on light), since drawings on a transparent canvas carry the digit there.
    ``.npy`` files (recognised by their content, whatever their name) hold a 2-D array
    of grey levels, a colour array ``(h, w, 3 or 4)``, or 784 values (one MNIST image,
    see :func:`as_picture`). Pictures larger than :data:`WORK_SIDE` come back
    area-averaged down to it. Anything else, or anything over the limits of this module,
    raises one ``ValueError`` naming the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(len(PNG_SIGNATURE))
    except FileNotFoundError:
        raise ValueError(f"image not found: {path}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if not path.is_file():
        raise ValueError(f"{path} is not a file.")
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path} is {size:,} bytes, more than the {MAX_FILE_BYTES:,} a "
                         "digit image may have: scale it down.")
    if path.suffix.lower() == ".npy" or head.startswith(NPY_MAGIC):
        return _read_npy(path, size)
    if head == PNG_SIGNATURE:
        _check_png_metadata(path)
    return _read_image(path)


def _read_npy(path: Path, size: int) -> np.ndarray:
    """A ``.npy`` file's array as grey levels: the header read and checked first."""
    shape, fortran, dtype, offset = _npy_header(path)
    if dtype.kind not in "biuf" or dtype.hasobject or dtype.fields or dtype.subdtype:
        raise ValueError(f"{path}: expected an array of numbers (grey levels), got dtype "
                         f"{dtype}.")
    if len(shape) not in (1, 2, 3) or any(d < 1 for d in shape):
        raise ValueError(f"{path}: expected a 2-D array of grey levels (or 784 values, or "
                         f"a colour image h × w × 3), got shape {shape}.")
    values = math.prod(shape)
    if values > MAX_PIXELS:
        raise ValueError(f"{path}: the array declares {values:,} values, more than the "
                         f"{MAX_PIXELS:,} a digit image may have.")
    nbytes = values * dtype.itemsize
    if size - offset < nbytes:
        raise ValueError(f"{path} is truncated: its header declares shape {shape} of "
                         f"{dtype} ({nbytes:,} bytes), the file holds {size - offset:,}.")
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(nbytes)
    a = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    if dtype.kind == "b":
        a = a.astype(np.uint8)
    return scale_grey(shrink(as_picture(a, str(path))), str(path))


def _npy_header(path: Path) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """(shape, Fortran order, dtype, data offset) from a ``.npy`` header, data unread."""
    from numpy.lib import format as npy

    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    try:
        with open(path, "rb") as f:
            version = npy.read_magic(f)
            if version not in readers:
                raise ValueError(f"format version {version[0]}.{version[1]} is not read "
                                 "here (1.0 and 2.0 are)")
            shape, fortran, dtype = readers[version](f)
            offset = f.tell()
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, KeyError, IndexError,
            AttributeError, RecursionError, struct.error, tokenize.TokenError) as exc:
        # numpy parses the header's text as a Python literal: its tokenizer's errors too
        raise ValueError(f"{path}: not a readable .npy array ({exc}).") from None
    if not all(isinstance(d, int) for d in shape):
        raise ValueError(f"{path}: not a readable .npy array (shape {shape}).")
    return tuple(shape), bool(fortran), np.dtype(dtype), offset


def _check_png_metadata(path: Path) -> None:
    """Refuse a PNG whose metadata chunks (text, ICC profile, EXIF) inflate past
    :data:`MAX_METADATA_BYTES` together, before Pillow reads any of them.

    Walks the chunk headers (skipping image data); compressed text and ICC profiles are
    inflated with a bound, so a bomb costs at most the limit. A damaged PNG is left to
    Pillow, which refuses it."""
    total = 0
    with open(path, "rb") as f:
        f.seek(len(PNG_SIGNATURE))
        while True:
            head = f.read(8)
            if len(head) < 8:
                return
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IEND":
                return
            if kind in (b"IDAT", b"fdAT"):
                f.seek(length + 4, os.SEEK_CUR)
                continue
            if total + length > MAX_METADATA_BYTES:
                break
            total += _inflated_size(kind, f.read(length), MAX_METADATA_BYTES - total)
            if total > MAX_METADATA_BYTES:
                break
            f.seek(4, os.SEEK_CUR)
    raise ValueError(f"{path}: its PNG metadata (text, ICC profile, EXIF) takes more than "
                     f"{MAX_METADATA_BYTES:,} bytes; a digit image needs none: save it "
                     "again without metadata.")


def _inflated_size(kind: bytes, data: bytes, budget: int) -> int:
    """Bytes a PNG chunk takes once read: compressed text and ICC profiles inflated
    (at most ``budget + 1`` bytes of them), others as stored."""
    compressed = b""
    if kind in (b"zTXt", b"iCCP"):
        compressed = data.partition(b"\0")[2][1:]
    elif kind == b"iTXt":
        rest = data.partition(b"\0")[2]
        if rest[:1] == b"\1":
            compressed = rest[2:].partition(b"\0")[2].partition(b"\0")[2]
    if not compressed:
        return len(data)
    try:
        return len(data) + len(zlib.decompressobj().decompress(compressed, budget + 1))
    except zlib.error:
        return len(data)  # damaged: Pillow refuses it


def _read_image(path: Path) -> np.ndarray:
    """Grey levels of an image file decoded by one of :data:`FORMATS`, upright."""
    Image = _pillow()
    from PIL import ImageOps

    formats = [name for name in FORMATS if name in Image.OPEN]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on odd metadata
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=formats) as image:
                _check_pixels(image, path)
                _check_one_picture(image, path)
                if image.format in ("JPEG", "MPO"):
                    _draft(image)  # decode a large JPEG at 1/2 to 1/8 scale
                _stored_size(image)
                image.load()
                return _grey(ImageOps.exif_transpose(image), str(path))
    except Image.UnidentifiedImageError:
        raise ValueError(f"{path} is not an image in a format digits are read from "
                         f"({_sniff(path)}accepted: {FORMAT_NAMES}).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"{path}: too many pixels for a digit image ({exc}); the limit "
                         f"is {MAX_PIXELS:,}: scale it down.") from None
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path} is not an image Pillow can read ({exc}).") from None
    except (OSError, SyntaxError, TypeError, IndexError, KeyError, AttributeError,
            struct.error, EOFError, ZeroDivisionError, OverflowError, MemoryError,
            RuntimeError, zlib.error) as exc:
        raise ValueError(f"{path} is not an image Pillow can read "
                         f"({type(exc).__name__}: {exc}).") from None


def _sniff(path: Path) -> str:
    """A few words on what a refused file seems to be, from its first bytes."""
    with open(path, "rb") as f:
        head = f.read(64).lstrip()
    known = [(b"%!PS", "PostScript or EPS"), (b"\xc5\xd0\xd3\xc6", "EPS"),
             (b"%PDF", "PDF"), (b"<svg", "SVG"), (b"<?xml", "XML or SVG"),
             (b"\xd7\xcd\xc6\x9a", "WMF"), (b"\x01\x00\x00\x00", "EMF")]
    for magic, name in known:
        if head.startswith(magic):
            return f"it looks like {name}, which is never read; "
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "it looks like HEIF or AVIF: save it as JPEG or PNG; "
    return ""


def _check_pixels(image: Any, path: Path) -> None:
    """Refuse an image whose header declares more than :data:`MAX_PIXELS` pixels."""
    width, height = image.size
    if width < 1 or height < 1:
        raise ValueError(f"{path}: the image is empty ({width} × {height} pixels).")
    if width * height > MAX_PIXELS:
        raise ValueError(f"{path}: the image declares {width} × {height} = "
                         f"{width * height:,} pixels, more than the {MAX_PIXELS:,} a digit "
                         "image may have: scale it down.")


def _check_one_picture(image: Any, path: Path) -> None:
    """Refuse an animated GIF, PNG or WebP, or a TIFF of several pages: which one holds
    the digit is not for gpunet to guess (it would read the first, silently). A phone's
    MPO (a JPEG with a second, preview or depth picture) is read by its first."""
    if image.format != "MPO" and getattr(image, "is_animated", False):
        raise ValueError(f"{path} holds several pictures (frames or pages); a digit is "
                         "read from one: save the picture you mean as an image of its "
                         "own.")


def _stored_size(image: Any) -> None:
    """Have a turned TIFF decoded at the size it is stored in.

    Pillow 13 reports a TIFF whose Orientation is 5-8 (turned a quarter) at its upright
    size before decoding, and its uncompressed-strip decoder then fills a buffer of that
    size with rows of the stored width: the picture comes out scrambled (libtiff's
    compressed path is right). Decoded at the stored size, the load's own transpose (or
    :func:`PIL.ImageOps.exif_transpose`, in earlier Pillows) turns it upright."""
    stored = getattr(image, "_tile_size", None)
    if image.format == "TIFF" and stored is not None and tuple(stored) == image.size[::-1]:
        image._size = tuple(stored)


def _draft(image: Any) -> None:
    """Have libjpeg decode a JPEG larger than :data:`WORK_SIDE` at the smallest of its
    scales (1/2, 1/4, 1/8) that keeps it at least that large: less memory, same digit."""
    width, height = image.size
    side = max(width, height)
    if side > WORK_SIDE:
        image.draft(None, (math.ceil(width * WORK_SIDE / side),
                           math.ceil(height * WORK_SIDE / side)))


DEEP_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")
"""Pillow's modes of single-channel images deeper than 8 bits (integer and float)."""


def _grey(image: Any, what: str) -> np.ndarray:
    """A decoded, upright Pillow image as grey levels in [0, 1], shrunk to at most
    :data:`WORK_SIDE` (in its own sample type, so a large image is never float64)."""
    if image.mode in DEEP_MODES:  # more than 8 bits a pixel: scale, not clip
        samples = np.asarray(image)
        low, divisor = _grey_scale(samples, what)
        return (shrink(samples) - low) / divisor
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P"
                                              and "transparency" in image.info):
        rgba = shrink(np.asarray(image.convert("RGBA"))) / 255.0
        alpha = rgba[..., 3]
        if alpha.min() < 1.0:
            grey = rgba[..., :3] @ LUMINANCE
            # opaque pixels are what was drawn: composite over the opposite of the drawn
            # colour, so the ink stands out either way
            drawn = grey[alpha > 0.5]
            paper = 0.0 if drawn.size and drawn.mean() > 0.5 else 1.0
            composite: np.ndarray = alpha * grey + (1.0 - alpha) * paper
            return composite
    return shrink(np.asarray(image.convert("L"))) / 255.0


def shrink(a: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    """``a`` (2-D, or 3-D with channels last) area-averaged by a whole factor so that its
    longer side is at most ``side``; as float64. Averaged in blocks without a float
    copy of the whole array."""
    h, w = a.shape[:2]
    factor = math.ceil(max(h, w) / side)
    if factor <= 1:
        return a.astype(np.float64)
    fy, fx = min(factor, h), min(factor, w)
    rows, cols = h // fy, w // fx
    shrunk = np.empty((rows, cols, *a.shape[2:]))
    band = max(1, 2**20 // (fy * w * max(1, a[0, 0].size)))  # output rows per 8 MB
    for top in range(0, rows, band):
        n = min(band, rows - top)
        block = a[top * fy:(top + n) * fy, :cols * fx].astype(np.float64)
        shrunk[top:top + n] = block.reshape(n, fy, cols, fx, *a.shape[2:]).mean(axis=(1, 3))
    return shrunk


def as_picture(a: np.ndarray, what: str = "image") -> np.ndarray:
    """An array of grey levels as a 2-D picture (channels and a batch of one removed).

    784 values with at most one axis longer than 1 (``(784,)``, the book's column
    ``(784, 1)``, a row ``(1, 784)``) are one MNIST image, row by row, like ``(28, 28)``;
    ``(h, w, 3)`` and ``(h, w, 4)`` are colour (luminance; alpha ignored), ``(h, w, 1)``
    and ``(1, h, w)`` grey. Anything else raises ``ValueError`` naming ``what``.
    """
    a = np.asarray(a)
    if a.size == FIELD * FIELD and sum(d > 1 for d in a.shape) == 1:
        return a.reshape(FIELD, FIELD)
    if a.ndim == 2 and FIELD * FIELD in a.shape and 1 < min(a.shape) < FIELD:
        raise ValueError(f"{what}: shape {a.shape} is {min(a.shape)} rows of 784 values, "
                         "several MNIST images, not one picture; give one image (784 "
                         "values, or 28 × 28).")
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    elif a.ndim == 3 and a.shape[2] in (3, 4):
        luminance = a[..., :3] @ LUMINANCE
        a = np.round(luminance).astype(a.dtype) if a.dtype.kind in "iu" else luminance
    if a.ndim != 2 or min(a.shape) < 1:
        raise ValueError(f"{what}: expected a 2-D array of grey levels (or 784 values, or "
                         f"a colour image h × w × 3), got shape {a.shape}.")
    return a


DEPTHS = (8, 10, 12, 14, 16, 24, 32)
"""Bit depths integer grey levels are scaled by: the smallest that holds the image's
largest value (a 12-bit scan stored in 16-bit samples is scaled by 4095, not 65535)."""


def _grey_scale(a: np.ndarray, what: str) -> tuple[float, float]:
    """(low, divisor) with ``(a - low) / divisor`` the grey levels of ``a`` in [0, 1]:
    see :func:`scale_grey`. Reads ``a`` in its own type (no float copy)."""
    if a.size == 0:
        raise ValueError(f"{what}: the image is empty.")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{what}: the image holds NaN or infinite grey levels.")
    low, high = float(a.min()), float(a.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{what}: the image holds NaN or infinite grey levels.")
    if a.dtype.kind in "iub" and low >= 0:
        depth = next((b for b in DEPTHS if high <= 2**b - 1), DEPTHS[-1])
        return 0.0, float(2**depth - 1)
    if low >= 0 and high <= 1:
        return 0.0, 1.0
    if low >= 0 and high <= 255:
        return 0.0, 255.0
    return (low, high - low) if high > low else (low, 1.0)


def scale_grey(a: np.ndarray, what: str = "image") -> np.ndarray:
    """Grey levels of any depth in [0, 1].

    Integer samples are divided by ``2**b - 1`` for the smallest depth ``b`` of
    :data:`DEPTHS` that holds the largest value (PNG and TIFF store 10-, 12- and 14-bit
    scans in 16-bit samples without saying so). Float samples are taken as they are
    when in [0, 1], divided by 255 when in [0, 255], else stretched from their minimum
    to their maximum. Negative integers (32-bit ``I`` images) are stretched too.
    """
    if a.ndim != 2 or min(a.shape) < 1:
        raise ValueError(f"{what}: expected a 2-D grey image, got shape {a.shape}.")
    low, divisor = _grey_scale(a, what)
    scaled: np.ndarray = (a.astype(np.float64) - low) / divisor
    return scaled


# ------------------------------------------------------------------ finding the ink
def _shift(a: np.ndarray, dy: int, dx: int, fill: float = 0.0) -> np.ndarray:
    """``a`` moved by (dy, dx), ``fill`` coming in."""
    out = np.full_like(a, fill)
    h, w = a.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        a[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _filter(a: np.ndarray, size: int, pick: Any, continued: bool = False) -> np.ndarray:
    """Running maximum (``pick=np.maximum``) or minimum over ``size`` × ``size`` windows
    (separable: one pass per axis, each van Herk and Gil-Werman's: three operations a
    pixel whatever the window). Outside the picture: zeros, or with ``continued``, the
    picture continued past its edge by odd reflection, so a closing follows light that
    keeps falling off to the edge (a vignette's corners) instead of levelling it."""
    r = size // 2
    out = np.asarray(a, dtype=np.float64)
    for axis in (0, 1):
        pad = [(r, r) if ax == axis else (0, 0) for ax in (0, 1)]
        padded = (np.pad(out, pad, mode="reflect", reflect_type="odd") if continued
                  else np.pad(out, pad))
        out = _running(padded, 2 * r + 1, pick, axis)
    return out


def _running(a: np.ndarray, size: int, pick: Any, axis: int) -> np.ndarray:
    """``pick`` (np.maximum or np.minimum) over each run of ``size`` along ``axis``: the
    result is ``size - 1`` shorter. Blocks of ``size``: a window spans the end of one
    block and the start of the next, so it is ``pick`` of a suffix and a prefix."""
    x = np.moveaxis(a, axis, -1)
    length = x.shape[-1]
    n = length - size + 1
    blocks = -(-length // size)
    identity = -np.inf if pick is np.maximum else np.inf
    x = np.concatenate([x, np.full(x.shape[:-1] + (blocks * size - length,), identity)],
                       axis=-1).reshape(x.shape[:-1] + (blocks, size))
    prefix = pick.accumulate(x, axis=-1).reshape(x.shape[:-2] + (-1,))
    suffix = pick.accumulate(x[..., ::-1], axis=-1)[..., ::-1].reshape(x.shape[:-2] + (-1,))
    out: np.ndarray = np.moveaxis(pick(suffix[..., :n], prefix[..., size - 1:size - 1 + n]),
                                  -1, axis)
    return out


def _block_percentile(a: np.ndarray, block: int, q: float) -> np.ndarray:
    """The ``q``-th percentile of each ``block`` × ``block`` tile of ``a`` (edge tiles
    padded by repeating the edge)."""
    h, w = a.shape
    ph, pw = -h % block, -w % block
    p = np.pad(a, ((0, ph), (0, pw)), mode="edge")
    tiles = p.reshape(p.shape[0] // block, block, p.shape[1] // block, block)
    out: np.ndarray = np.percentile(tiles.transpose(0, 2, 1, 3).reshape(
        tiles.shape[0], tiles.shape[2], -1), q, axis=2)
    return out


def _upsample(coarse: np.ndarray, block: int, shape: tuple[int, int]) -> np.ndarray:
    """A per-tile field back to full size, bilinear between tile centres."""
    def axis(n: int, tiles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n) + 0.5) / block - 0.5, 0, tiles - 1)
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, tiles - 1)
        return i0, i1, pos - i0
    y0, y1, fy = axis(shape[0], coarse.shape[0])
    x0, x1, fx = axis(shape[1], coarse.shape[1])
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x1] * fx
    bottom = coarse[y1][:, x0] * (1 - fx) + coarse[y1][:, x1] * fx
    full: np.ndarray = top * (1 - fy[:, None]) + bottom * fy[:, None]
    return full


def dark_ink(g: np.ndarray) -> bool:
    """Whether the ink is darker than the paper (see :func:`polarity`)."""
    return polarity(g)[0]


def polarity(g: np.ndarray) -> tuple[bool, bool]:
    """(whether the ink is darker than the paper, whether that is clear).

    The ink is the picture's strong, one-sided outliers against the paper's light. The
    light is estimated without knowing the ink's side by a median filter of half the
    picture's shorter side (on a grid of at most 32 tiles of medians along the longer
    side): wider than any stroke, it keeps gradients, vignettes and shadow edges and
    drops the strokes, dark or light, and holes between them alike. The pixels more
    than a few noise levels off it lie mostly on the ink's side: the side with more such
    mass wins. Unlike the median of the border, this holds for dim photos (grey paper,
    the ink only a little darker), uneven light and a digit touching the border; unlike
    a closing or opening, for thick strokes as for thin. It is clear when one side has
    at least three times the other's mass; it is not when the ink is no minority
    against the light (a picture cropped tightly to a "1" or a thick digit).
    """
    block = max(1, math.ceil(max(g.shape) / 32))
    coarse = _block_percentile(g, block, 50)
    size = max(3, round(0.5 * min(coarse.shape)) | 1)
    windows = np.lib.stride_tricks.sliding_window_view(
        np.pad(coarse, size // 2, mode="reflect"), (size, size))
    light = np.median(windows, axis=(2, 3))
    r = g - _upsample(light, block, g.shape)
    noise = 1.4826 * float(np.median(np.abs(r)))
    t = max(3 * noise, 0.02)
    darker = float(np.clip(-r - t, 0, None).sum())
    lighter = float(np.clip(r - t, 0, None).sum())
    return darker > lighter, abs(darker - lighter) >= 0.5 * (darker + lighter)


def background(g: np.ndarray, dark: bool) -> np.ndarray:
    """The paper's brightness under the picture's light, without the ink.

    A morphological closing (for dark ink; opening for light ink) with a square window
    of 3/10 of the shorter side: it removes valleys (peaks) narrower than the window,
    which strokes are, and keeps what is broader, which light is: gradients, vignettes,
    and a shadow's edge, sharp as it is (a smooth fit, or a coarse grid, would blur it
    into a band of false ink). The picture is continued past its edges by odd
    reflection, so light falling off towards an edge is followed too."""
    size = max(3, round(0.3 * min(g.shape)) | 1)
    first, second = (np.maximum, np.minimum) if dark else (np.minimum, np.maximum)
    return _filter(_filter(g, size, first, True), size, second, True)


def ink_map(grey: np.ndarray, what: str = "image", tight: bool = False,
            dark: Optional[bool] = None) -> tuple[np.ndarray, float]:
    """(ink, noise): the picture's ink in [0, 1] (1: the ink's core, 0: paper), its
    uneven background removed, and the paper's noise level on that scale.

    ``tight``: the picture is cropped to the digit, so its strokes may be as wide as a
    quarter of it and most of it ink: a background estimate narrower than the strokes,
    and a vote that takes the ink for the minority, would both fail; light cannot vary
    much over so small a part of a page. The paper is then the border's median level,
    dark when that is below the middle of the picture's range (1st to 99th percentile).

    Dark ink is measured as the fraction of the paper's brightness it takes away there
    (so it reads the same in a shadow or a dim corner), light ink as its excess over the
    background. Stretched so that the ink's core (the 95th percentile of what stands
    above the noise, robust to a speck) is 1. Raises ``ValueError`` (naming ``what``)
    when nothing stands out by :data:`CONTRAST`."""
    g = np.asarray(grey, dtype=np.float64)
    border = np.zeros(g.shape, dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    if tight:
        level = float(np.median(g[border]))
        low, high = np.percentile(g, [1, 99])
        dark = level > (low + high) / 2
        paper = np.full_like(g, level)
    else:
        dark = dark_ink(g) if dark is None else dark
        paper = background(g, dark)
    ink = (paper - g) / np.maximum(paper, 0.05) if dark else g - paper
    # the paper's level and noise, where paper is most of the picture: everywhere (a
    # closing sits on the noise's peaks, so paper is a little above 0), or along the
    # border of a tight crop, which the ink may mostly fill
    sample = ink[border] if tight else ink
    floor = float(np.median(sample))
    noise = 1.4826 * float(np.median(np.abs(sample - floor)))
    ink -= floor
    strong = ink[ink > max(5 * noise, 0.05)]
    peak = float(np.percentile(strong, 95)) if strong.size else 0.0
    if peak < CONTRAST:
        raise ValueError(f"{what}: no ink found (nothing stands out from the "
                         "background: one flat shade, or noise); give a picture of a "
                         "digit.")
    return np.clip(ink / peak, 0.0, 1.0), noise / peak


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels (1..n, 0 outside ``mask``) of the 8-connected pieces of ``mask``, and n.

    Runs of each row are joined with the overlapping runs of the row above (union-find
    over runs), so the work grows with the number of runs, not pixels."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded.ravel())
    starts = np.flatnonzero(edges == 1) + 1
    ends = np.flatnonzero(edges == -1) + 1  # exclusive
    rows, first, last = starts // (w + 2), starts % (w + 2) - 1, ends % (w + 2) - 2
    parent = list(range(len(starts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_start = np.searchsorted(rows, np.arange(h + 1))
    for y in range(1, h):
        above = range(row_start[y - 1], row_start[y])
        j = above.start
        for i in range(row_start[y], row_start[y + 1]):
            while j < above.stop and last[j] < first[i] - 1:
                j += 1
            k = j
            while k < above.stop and first[k] <= last[i] + 1:
                ri, rk = root(i), root(k)
                if ri != rk:
                    parent[max(ri, rk)] = min(ri, rk)
                k += 1
    roots = np.array([root(i) for i in range(len(starts))], dtype=np.int64)
    ids, run_label = np.unique(roots, return_inverse=True)
    labels = np.zeros(h * (w + 2), dtype=np.int64)
    lengths = ends - starts
    run_of_pixel = np.repeat(np.arange(len(starts)), lengths)
    pixel = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(
        lengths.sum())
    labels[pixel] = run_label[run_of_pixel] + 1
    return labels.reshape(h, w + 2)[:, 1:-1], len(ids)


def digit_crop(ink: np.ndarray, noise: float = 0.0) -> np.ndarray:
    """The digit cut out of an ink map: specks and smudges away from it removed.

    Ink is what stands above :data:`INK` (or 4 noise levels, on grainy paper). Its
    8-connected pieces are weighed by their ink; the heaviest is the digit's core, and a
    piece joins it when it weighs at least 2% of the core and lies within a third of the
    digit's size of what has joined (a 5's detached bar, a thin pen's broken stroke).
    What stays is cropped to its bounding box, with its faint edges (above half the
    threshold, next to the strokes) and nothing else."""
    threshold = max(INK, 4 * noise)
    mask = ink > threshold
    labels, n = _components(mask)
    if n == 0:
        raise ValueError("no ink")
    weight = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=n + 1)[1:]
    boxes = _boxes(labels, n)
    order = np.argsort(-weight)
    keep = [int(order[0])]
    top, left, bottom, right = boxes[order[0]]
    changed = True
    while changed:
        changed = False
        reach = max(bottom - top, right - left) / 3 + 2
        for c in order[1:]:
            c = int(c)
            if c in keep or weight[c] < 0.02 * weight[order[0]]:
                continue
            t, lf, b, rt = boxes[c]
            gap = max(t - bottom, top - b, lf - right, left - rt, 0)
            if gap <= reach:
                keep.append(c)
                top, left, bottom, right = min(top, t), min(left, lf), max(bottom, b), \
                    max(right, rt)
                changed = True
    kept = np.isin(labels, np.array(keep) + 1)
    near = _filter(kept.astype(np.float64), 3, np.maximum) > 0
    crop = np.where(near & (ink > threshold / 2), ink, 0.0)
    cropped: np.ndarray = crop[top:bottom + 1, left:right + 1]
    return cropped


def _tight_crop(g: np.ndarray, what: str) -> Optional[np.ndarray]:
    """The digit of a picture cropped tightly to it (see :func:`ink_map`'s ``tight``),
    or None when the picture is not one: a tight crop's digit fills it from edge to
    edge, and its border is mostly paper (at most 30% ink: a digit touches the border
    in a few places; a shadow or a dark table would take much of it)."""
    try:
        ink, noise = ink_map(g, what, tight=True)
        crop = digit_crop(ink, noise)
    except ValueError:
        return None
    border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
    if fills_picture(crop, g.shape) and float(np.mean(border > INK)) <= 0.3:
        return crop
    return None


def fills_picture(crop: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Whether a digit's crop spans the picture from edge to edge, but for a margin of
    up to a tenth (a photo cropped to the digit)."""
    return any(c >= s - max(1, 0.1 * s) for c, s in zip(crop.shape, shape))


def _boxes(labels: np.ndarray, n: int) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right), inclusive, of each label 1..n."""
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs] - 1
    top = np.full(n, labels.shape[0]); bottom = np.full(n, -1)  # noqa: E702
    left = np.full(n, labels.shape[1]); right = np.full(n, -1)  # noqa: E702
    np.minimum.at(top, lab, ys)
    np.maximum.at(bottom, lab, ys)
    np.minimum.at(left, lab, xs)
    np.maximum.at(right, lab, xs)
    return [(int(top[i]), int(left[i]), int(bottom[i]), int(right[i])) for i in range(n)]


# ----------------------------------------------------------------- strokes and size
STROKE = 0.09
"""MNIST's stroke width as a fraction of the digit's longer side (the 20-pixel box):
the median over the test set is 0.09 (1.8 pixels; 5% of digits are below 0.06). Strokes
thinner than half of it are widened to it before the digit is shrunk (see
:func:`stroke_width`); a fine pen's are about 0.03."""


def stroke_width(crop: np.ndarray) -> float:
    """The mean stroke width of a cropped digit, in its pixels: twice the ink's area
    over its outline's length (a stroke of width w and length L has area wL and an
    outline of about 2L), the ink taken above half its core."""
    mask = np.pad(crop > 0.5, 1)
    area = int(mask.sum())
    outline = int((mask[1:] != mask[:-1]).sum() + (mask[:, 1:] != mask[:, :-1]).sum())
    return 2.0 * area / outline if outline else 0.0


def _widen_thin_strokes(crop: np.ndarray) -> np.ndarray:
    """A digit drawn with a fine pen, redrawn with MNIST's stroke width.

    Strokes thinner than half :data:`STROKE` (as a fraction of the digit's size) would
    fade to a faint grey in the 20 × 20 box. The crop is brought to 4 × 20 pixels by
    block maxima (a thin stroke stays full ink) and the strokes widened there by a grey
    dilation to :data:`STROKE`; a digit with MNIST-like strokes is left as it is."""
    h, w = crop.shape
    side = max(h, w)
    width = stroke_width(crop)
    if width == 0 or width >= 0.5 * STROKE * side:
        return crop
    factor = max(1, math.ceil(side / (4 * BOX)))
    if factor > 1:
        ph, pw = -h % factor, -w % factor
        p = np.pad(crop, ((0, ph), (0, pw)))
        crop = p.reshape(p.shape[0] // factor, factor, p.shape[1] // factor,
                         factor).max(axis=(1, 3))
        width = max(width / factor, 1.0)
    grow = STROKE * max(crop.shape) - width
    radius = max(1, round(grow / 2))
    crop = np.pad(crop, radius)
    widened = crop.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx <= radius * radius + radius:
                widened = np.maximum(widened, _shift(crop, dy, dx))
    return _trim(widened)


def _trim(a: np.ndarray) -> np.ndarray:
    """``a`` cut to the bounding box of its non-zero pixels."""
    rows = np.flatnonzero(a.any(axis=1))
    cols = np.flatnonzero(a.any(axis=0))
    trimmed: np.ndarray = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return trimmed


def mnist_like(grey: np.ndarray, what: str = "image") -> np.ndarray:
    """Steps 2-5 above: grey levels of any size -> MNIST's ``(784,)`` form in [0, 1].

    ``grey`` may be any shape :func:`as_picture` takes (784 values as a vector are one
    28 × 28 image) with levels of any depth (:func:`scale_grey`)."""
    g = scale_grey(shrink(as_picture(np.asarray(grey), what)), what)
    dark, clear = polarity(g)
    try:
        ink, noise = ink_map(g, what, dark=dark)
        crop: Optional[np.ndarray] = digit_crop(ink, noise)
    except ValueError as exc:  # no ink: unless it is a tight crop of the wrong guess
        crop, error = None, exc
    if (crop is None or not clear or fills_picture(crop, g.shape)
            or max(crop.shape) < 0.4 * min(g.shape)):  # perhaps cropped to the digit
        tight = _tight_crop(g, what)
        if tight is not None:
            crop = tight
        elif crop is None:
            raise error
    assert crop is not None
    crop = _widen_thin_strokes(crop)
    h, w = crop.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    digit = _resize(crop, size)
    com_y, com_x = _centre_of_mass(digit)
    field = np.zeros((FIELD, FIELD))
    top = int(round(FIELD // 2 - com_y))
    left = int(round(FIELD // 2 - com_x))
    top = min(max(top, 0), FIELD - digit.shape[0])
    left = min(max(left, 0), FIELD - digit.shape[1])
    field[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return np.clip(field, 0.0, 1.0).reshape(FIELD * FIELD)


def read_digit(source: Union[PathLike, np.ndarray]) -> np.ndarray:
    """The digit image at ``source`` (a path, or an array of grey levels) as the
    network's ``(784,)`` input (float32 in [0, 1]).

    Any size, greyscale or colour, dark ink on light paper or light on dark, the digit
    anywhere in the picture, the light uneven. A file that is not an image of
    :data:`FORMATS` (or ``.npy``), one over this module's limits, or a picture with no
    ink raises ``ValueError`` naming the file.
    """
    if isinstance(source, np.ndarray):
        return mnist_like(source, "array").astype(np.float32)
    return mnist_like(read_grey(source), str(source)).astype(np.float32)


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``a`` resampled to ``size`` (width, height), anti-aliased (area averaging when
    shrinking, as MNIST's normalisation did)."""
    try:
        Image = _pillow()
    except ValueError:
        return _resize_numpy(a, size)
    image = Image.fromarray(a.astype(np.float32))
    return np.asarray(image.resize(size, Image.Resampling.BOX if size[0] <= a.shape[1]
                                   else Image.Resampling.BILINEAR), dtype=np.float64)


def _resize_numpy(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaging resize without Pillow (for ``.npy`` input)."""
    w, h = size
    rows = np.linspace(0, a.shape[0], h + 1)
    cols = np.linspace(0, a.shape[1], w + 1)
    # sample each target cell densely and average (exact enough for 20x20 output)
    k = 4
    ys = (rows[:-1, None] + (np.arange(k) + 0.5)[None, :] / k * np.diff(rows)[:, None]).ravel()
    xs = (cols[:-1, None] + (np.arange(k) + 0.5)[None, :] / k * np.diff(cols)[:, None]).ravel()
    yi = np.clip(ys.astype(int), 0, a.shape[0] - 1)
    xi = np.clip(xs.astype(int), 0, a.shape[1] - 1)
    resized: np.ndarray = a[np.ix_(yi, xi)].reshape(h, k, w, k).mean(axis=(1, 3))  # stubs: Any
    return resized


def _centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    """(row, column) of the grey-level centre of mass, in pixel indices.

    MNIST's digits have theirs at index (14, 14) of the 28 × 28 field (measured: the
    mean over the test set is 14.0 ± 0.3 in both directions)."""
    total = a.sum()
    ys, xs = np.indices(a.shape)
    return float((ys * a).sum() / total), float((xs * a).sum() / total)
