"""Digit images as users have them, prepared the way MNIST's own digits were.

Chapter 1 ("Learning with gradient descent") describes MNIST's images: 28 × 28 grey
levels. LeCun, Cortes and Burges made them from NIST's scans by size-normalising each
digit into a 20 × 20 box (keeping the aspect ratio, anti-aliased into grey levels) and
centring it by its centre of mass in a 28 × 28 field; ink is bright (1.0) on a dark
(0.0) background. A network trained on MNIST sees only such images, so a user's photo
or drawing must be brought to the same form first:

1. read it as grey levels in [0, 1] (PNG, JPEG, TIFF, ... through Pillow; or a NumPy
   ``.npy`` array), colour to luminance, transparency as ink; images deeper than 8 bits
   (16-bit PNG and TIFF, 12-bit scans stored in 16 bits, float TIFF) scaled by their
   own depth (:func:`scale_grey`), never clipped to 8 bits;
2. find the background (the median of the border) and invert when it is light, so ink
   is bright on dark, and stretch the contrast so the background is 0 and the darkest
   ink 1;
3. crop to the ink's bounding box (ignoring faint noise such as JPEG ringing);
4. scale it into a 20 × 20 box keeping the aspect ratio;
5. place it in a 28 × 28 field with its centre of mass at the centre.

Reading image files needs Pillow (the ``images`` extra).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

FIELD = 28  # MNIST's image side
BOX = 20  # the box MNIST's digits were scaled into
INK = 0.2  # grey level (after contrast stretch) above which a pixel counts as ink
EXTRA_HINT = 'pip install -e ".[images]" (from a gpunet checkout)'


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ValueError(f"reading images needs Pillow, which is not installed: "
                         f"{EXTRA_HINT}.") from None
    return Image


def read_grey(path: PathLike) -> np.ndarray:
    """The image at ``path`` as a 2-D float array of grey levels in [0, 1].

    Colour becomes luminance; where the image has transparency, opacity is the ink
    (dark on light), since drawings on a transparent canvas carry the digit there.
    ``.npy`` files hold a 2-D array (or 784 values, one MNIST image) of grey levels in
    [0, 1] or [0, 255].
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            a: np.ndarray = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable .npy array ({exc}).") from None
        try:
            a = np.asarray(a, dtype=np.float64)
        except (ValueError, TypeError):
            raise ValueError(f"{path}: expected an array of numbers (grey levels), got "
                             f"dtype {a.dtype}.") from None
        if a.ndim == 1 and a.size == FIELD * FIELD:
            a = a.reshape(FIELD, FIELD)
        if a.ndim == 3 and a.shape[2] in (3, 4):
            a = a[..., :3] @ np.array([0.299, 0.587, 0.114])
        if a.ndim != 2 or min(a.shape) < 1 or not np.isfinite(a).all():
            raise ValueError(f"{path}: expected a 2-D array of finite grey levels, "
                             f"got shape {a.shape}.")
        return a / 255.0 if a.max() > 1.0 else a
    Image = _pillow()
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in DEEP_MODES:  # more than 8 bits a pixel: scale, not clip
                return scale_grey(np.asarray(image), str(path))
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P"
                                                      and "transparency" in image.info):
                rgba = image.convert("RGBA")
                alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64) / 255.0
                if alpha.min() < 1.0:
                    grey = np.asarray(rgba.convert("L"), dtype=np.float64) / 255.0
                    # opaque pixels are what was drawn: composite over the opposite of
                    # the drawn colour, so the ink stands out either way
                    drawn = grey[alpha > 0.5]
                    paper = 0.0 if drawn.size and drawn.mean() > 0.5 else 1.0
                    return alpha * grey + (1.0 - alpha) * paper
            return np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    except FileNotFoundError:
        raise ValueError(f"image not found: {path}") from None
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path} is not an image Pillow can read ({exc}).") from None
    except (OSError, SyntaxError, TypeError, IndexError, KeyError, struct.error, EOFError,
            ZeroDivisionError, MemoryError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path} is not an image Pillow can read "
                         f"({type(exc).__name__}: {exc}).") from None


DEEP_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")
"""Pillow's modes of single-channel images deeper than 8 bits (integer and float)."""

DEPTHS = (8, 10, 12, 14, 16, 24, 32)
"""Bit depths integer grey levels are scaled by: the smallest that holds the image's
largest value (a 12-bit scan stored in 16-bit samples is scaled by 4095, not 65535)."""


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
    grey = a.astype(np.float64)
    if not np.isfinite(grey).all():
        raise ValueError(f"{what}: the image holds NaN or infinite grey levels.")
    low, high = float(grey.min()), float(grey.max())
    if np.issubdtype(a.dtype, np.integer) and low >= 0:
        depth = next((b for b in DEPTHS if high <= 2**b - 1), DEPTHS[-1])
        scaled: np.ndarray = grey / (2**depth - 1)  # NumPy's stubs: Any
    elif low >= 0 and high <= 1:
        scaled = grey
    elif low >= 0 and high <= 255:
        scaled = grey / 255.0
    else:
        scaled = (grey - low) / (high - low) if high > low else np.zeros_like(grey)
    return scaled


def mnist_like(grey: np.ndarray, what: str = "image") -> np.ndarray:
    """Steps 2-5 above: grey levels of any size -> MNIST's ``(784,)`` form in [0, 1]."""
    g = np.asarray(grey, dtype=np.float64)
    border = np.concatenate([g[0], g[-1], g[1:-1, 0], g[1:-1, -1]])
    background = float(np.median(border))
    ink = 1.0 - g if background > 0.5 else g
    floor = 1.0 - background if background > 0.5 else background
    peak = float(ink.max())
    if peak - floor < 0.15:
        raise ValueError(f"{what}: no ink found (the picture is one flat shade); "
                         "give a picture of a digit.")
    ink = np.clip((ink - floor) / (peak - floor), 0.0, 1.0)
    rows = np.flatnonzero((ink > INK).any(axis=1))
    cols = np.flatnonzero((ink > INK).any(axis=0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    crop = np.where(crop > INK / 2, crop, 0.0)  # drop faint noise around the strokes
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


def read_digit(path: PathLike) -> np.ndarray:
    """The digit image at ``path`` as the network's ``(784,)`` input (float32 in [0, 1]).

    Any size, greyscale or colour, dark ink on light paper or light on dark, the digit
    anywhere in the picture. A file that is not an image, or a picture with no ink,
    raises ``ValueError`` naming the file.
    """
    return mnist_like(read_grey(path), str(path)).astype(np.float32)


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``a`` resampled to ``size`` (width, height), anti-aliased (area averaging when
    shrinking, as MNIST's normalisation did)."""
    try:
        Image = _pillow()
    except ValueError:
        return _resize_numpy(a, size)
    image = Image.fromarray(a.astype(np.float32), mode="F")
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
