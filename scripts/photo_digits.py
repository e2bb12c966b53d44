"""Photo-like digits: MNIST test digits rendered as a phone would photograph them.

    python scripts/photo_digits.py make DIR [--n 100] [--seed 0]
    python scripts/photo_digits.py score NET.json DIR [--reader PATH/images.py] [--json]

``make`` writes ``n`` digits of every kind in :data:`KINDS` into ``DIR`` (JPEG files,
as phones save them, and ``labels.json``: file name -> ``{"kind", "label", "index"}``).
Everything is drawn from ``numpy.random.default_rng(seed)``, so a seed gives the same
files (bit for bit with the same Pillow and libjpeg). ``score`` reads every file with
``read_digit`` (of the installed gpunet, or of the module file ``--reader`` names, to
score an older version of the reader), classifies it with the network and prints the
accuracy overall and per kind, and how many wrong (and right) answers ``gpunet
predict`` marks as low confidence (:func:`gpunet.cli.predict.assess`, the installed
gpunet's rule, applied to the network's outputs whichever reader made its inputs).

Each kind is one thing that goes wrong in a photo (issue 26): ``scan`` is the control
(dark ink on even white paper); ``gradient`` light falling off across the page;
``vignette`` a lens's dark corners; ``shadow`` a soft shadow over part of the page;
``dim`` an underexposed photo (grey paper, the ink barely darker); ``texture`` paper
grain and blotches; ``thin`` a fine pen (strokes a fifth of MNIST's width); ``thick``
a felt pen; ``off-centre`` a small digit near an edge of a large page; ``exif`` a photo
stored sideways with an EXIF Orientation tag; ``phone`` all of them at once.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

KINDS = ("scan", "gradient", "vignette", "shadow", "dim", "texture", "thin", "thick",
         "off-centre", "exif", "phone")
HEIGHT, WIDTH = 400, 300  # the page, portrait, in pixels
ORIENTATION = 0x0112  # EXIF tag
STORED = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
          8: Image.Transpose.ROTATE_270}
"""EXIF orientation -> how the upright picture is turned to be stored that way (the
inverse of what a viewer, or ``ImageOps.exif_transpose``, does to show it)."""


# --------------------------------------------------------------------------- strokes
def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` moved by (dy, dx), zeros coming in."""
    out = np.zeros_like(a)
    h, w = a.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        a[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def dilate(a: np.ndarray, radius: int) -> np.ndarray:
    """Grey-level dilation by a disc of ``radius`` pixels (a thicker pen)."""
    out = a.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx <= radius * radius:
                out = np.maximum(out, _shift(a, dy, dx))
    return out


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Zhang and Suen's thinning (1984): the one-pixel centre line of a binary shape."""
    s = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = [s[1:-1, 1:-1]] + [s[1 + dy:s.shape[0] - 1 + dy, 1 + dx:s.shape[1] - 1 + dx]
                                   for dy, dx in ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0),
                                                  (1, -1), (0, -1), (-1, -1))]
            n = sum(p[1:]).astype(int)
            ring = p[1:] + p[1:2]
            a = sum(((ring[i] == 0) & (ring[i + 1] == 1)).astype(int) for i in range(8))
            if step == 0:
                c = (p[1] * p[3] * p[5] == 0) & (p[3] * p[5] * p[7] == 0)
            else:
                c = (p[1] * p[3] * p[7] == 0) & (p[1] * p[5] * p[7] == 0)
            remove = (p[0] == 1) & (n >= 2) & (n <= 6) & (a == 1) & c
            if remove.any():
                s[1:-1, 1:-1][remove] = 0
                changed = True
        if not changed:
            return s[1:-1, 1:-1].astype(bool)


def _box_blur(a: np.ndarray) -> np.ndarray:
    """A 3 × 3 mean: soft stroke edges, as a lens gives them."""
    p = np.pad(a, 1, mode="edge")
    return sum(p[dy:dy + a.shape[0], dx:dx + a.shape[1]]
               for dy in range(3) for dx in range(3)) / 9.0


def ink(digit: np.ndarray, size: int, pen: str) -> np.ndarray:
    """The 784-pixel MNIST ``digit`` drawn ``size`` pixels tall as ink cover in [0, 1].

    ``pen``: ``"normal"`` (MNIST's own strokes, enlarged), ``"thin"`` (the strokes'
    centre line redrawn about size/60 pixels wide, a fifth of MNIST's width) or
    ``"thick"`` (the strokes widened by size/25 pixels on each side).
    """
    image = Image.fromarray(np.uint8(np.round(digit.reshape(28, 28) * 255)))
    big = np.asarray(image.resize((size, size), Image.Resampling.BICUBIC),
                     dtype=np.float64) / 255.0
    if pen == "thin":
        line = skeleton(big > 0.5).astype(np.float64)
        return _box_blur(dilate(line, max(1, round(size / 120))))
    if pen == "thick":
        return _box_blur(dilate((big > 0.5).astype(np.float64), max(2, round(size / 25))))
    return np.clip(big, 0.0, 1.0)


# ---------------------------------------------------------------------------- light
def _smooth_noise(rng: np.random.Generator, cells: int, shape: tuple[int, int]) -> np.ndarray:
    """Low-frequency noise (a ``cells`` × ``cells`` grid, bicubic), mean 0, std about 1."""
    grid = rng.normal(0.0, 1.0, (cells, cells)).astype(np.float32)
    field = Image.fromarray(grid, mode="F").resize((shape[1], shape[0]),
                                                   Image.Resampling.BICUBIC)
    return np.asarray(field, dtype=np.float64)


def light(kind: str, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """The illumination over the page for ``kind`` (1.0: full light)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    along = x * np.cos(angle) + y * np.sin(angle)
    along = (along - along.min()) / (along.max() - along.min())
    field = np.ones(shape)
    if kind in ("gradient", "exif", "phone"):
        field *= 1.0 - rng.uniform(0.45, 0.7) * along
    if kind in ("vignette", "phone"):
        cy, cx = rng.uniform(0.3, 0.7) * h / max(h, w), rng.uniform(0.3, 0.7) * w / max(h, w)
        r2 = ((y - cy) ** 2 + (x - cx) ** 2) / 0.5
        field *= 1.0 - rng.uniform(0.5, 0.7) * np.clip(r2, 0, 1)
    if kind == "shadow":
        edge = rng.uniform(0.3, 0.7)
        soft = rng.uniform(0.01, 0.05)
        field *= 1.0 - rng.uniform(0.4, 0.55) / (1.0 + np.exp(-(along - edge) / soft))
    if kind == "dim":
        field *= rng.uniform(0.25, 0.4)
    return field


# ------------------------------------------------------------------------- the photo
def render(kind: str, digit: np.ndarray, rng: np.random.Generator) -> tuple[Image.Image, int]:
    """One photo of ``digit`` in ``kind``: the picture as stored and its EXIF orientation
    (1: upright; 3, 6, 8: stored turned, the tag saying how to show it)."""
    pen = {"thin": "thin", "thick": "thick"}.get(kind, "normal")
    if kind == "phone":
        pen = str(rng.choice(["thin", "normal", "thick"]))
    if kind in ("off-centre", "phone"):
        size = int(rng.integers(60, 110))
    else:
        size = int(rng.integers(150, 240))
    cover = ink(digit, size, pen)
    if kind == "off-centre":  # near one of the page's edges
        top = int(rng.choice([rng.integers(5, 40), rng.integers(HEIGHT - size - 40,
                                                                 HEIGHT - size - 5)]))
        left = int(rng.choice([rng.integers(5, 30), rng.integers(WIDTH - size - 30,
                                                                  WIDTH - size - 5)]))
    else:
        top = int(rng.integers(10, HEIGHT - size - 10))
        left = int(rng.integers(5, WIDTH - size - 5))
    page = np.zeros((HEIGHT, WIDTH))
    page[top:top + size, left:left + size] = cover
    paper, pen_level = rng.uniform(0.82, 0.95), rng.uniform(0.05, 0.2)
    reflectance = paper * (1 - page) + pen_level * page
    if kind in ("texture", "phone"):
        reflectance *= 1.0 + 0.06 * _smooth_noise(rng, 12, page.shape)
        reflectance *= 1.0 + 0.04 * _smooth_noise(rng, 60, page.shape)
    grey = reflectance * light(kind, rng, page.shape)
    tint = np.array([1.0, 0.97, 0.9]) if kind == "phone" else np.ones(3)
    rgb = grey[..., None] * tint + rng.normal(0.0, 0.015 if kind != "texture" else 0.03,
                                              (HEIGHT, WIDTH, 3))
    picture = Image.fromarray(np.uint8(np.clip(np.round(rgb * 255), 0, 255)), mode="RGB")
    orientation = 1
    if kind in ("exif", "phone"):
        orientation = int(rng.choice([3, 6, 8]))
        picture = picture.transpose(STORED[orientation])
    return picture, orientation


def save(picture: Image.Image, orientation: int, path: Path, quality: int) -> None:
    """``picture`` as a JPEG, with an EXIF Orientation tag when it is not upright."""
    exif = Image.Exif()
    if orientation != 1:
        exif[ORIENTATION] = orientation
    picture.save(path, "JPEG", quality=quality, exif=exif.tobytes())


def make_set(directory: Path, n: int, seed: int, kinds: tuple[str, ...] = KINDS
             ) -> dict[str, dict[str, Any]]:
    """Write ``n`` photos of every kind (the first ``n`` MNIST test digits, in order) to
    ``directory``; return and write ``labels.json``."""
    import gpunet

    X, y = gpunet.load_mnist().test
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    labels: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        for i in range(n):
            picture, orientation = render(kind, X[i], rng)
            name = f"{kind}_{i:04d}.jpg"
            save(picture, orientation, directory / name, int(rng.integers(70, 92)))
            labels[name] = {"kind": kind, "label": int(y[i]), "index": i}
    (directory / "labels.json").write_text(json.dumps(labels, indent=1))
    return labels


# ----------------------------------------------------------------------------- score
def load_reader(path: str | None) -> Callable[[Any], np.ndarray]:
    """``read_digit`` of the installed gpunet, or of the module file at ``path``."""
    if path is None:
        from gpunet.io.images import read_digit
        return read_digit
    spec = importlib.util.spec_from_file_location("reader_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reader: Callable[[Any], np.ndarray] = module.read_digit
    return reader


def score(net: Any, directory: Path, reader: Callable[[Any], np.ndarray],
          judge: Callable[[np.ndarray], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Accuracy of ``net`` on the photos in ``directory`` read by ``reader``: overall and
    per kind; with ``judge`` (predict's :func:`assess`), how many wrong answers and
    right answers it marks low confidence."""
    labels = json.loads((directory / "labels.json").read_text())
    rows: dict[str, dict[str, int]] = {}
    for name, entry in labels.items():
        row = rows.setdefault(entry["kind"], {"n": 0, "right": 0, "errors": 0,
                                              "wrong_marked": 0, "right_marked": 0})
        row["n"] += 1
        try:
            x = reader(directory / name)
        except ValueError:
            row["errors"] += 1
            continue
        outputs = np.asarray(net.backend.to_host(net.feedforward(x)), dtype=float).ravel()
        right = int(np.argmax(outputs)) == entry["label"]
        row["right"] += right
        if judge is not None and judge(outputs)["low_confidence"]:
            row["right_marked" if right else "wrong_marked"] += 1
    total = {k: sum(r[k] for r in rows.values()) for k in next(iter(rows.values()))}
    return {"kinds": rows, "total": total}


def _print(result: dict[str, Any]) -> None:
    def line(name: str, r: dict[str, int]) -> str:
        text = f"{name:11s} {r['right'] / r['n']:7.1%}  ({r['right']}/{r['n']}"
        text += f", {r['errors']} unreadable)" if r["errors"] else ")"
        wrong = r["n"] - r["right"]
        text += (f"  low confidence: {r['wrong_marked']}/{wrong} wrong, "
                 f"{r['right_marked']}/{r['right']} right")
        return text
    for kind, r in result["kinds"].items():
        print(line(kind, r))
    print(line("all", result["total"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="write the photo-like set")
    make.add_argument("directory", type=Path)
    make.add_argument("--n", type=int, default=100, help="digits of each kind (100)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--kinds", default=",".join(KINDS))
    scoring = sub.add_parser("score", help="score a network on a photo-like set")
    scoring.add_argument("network")
    scoring.add_argument("directory", type=Path)
    scoring.add_argument("--reader", help="an images.py whose read_digit to use")
    scoring.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "make":
        labels = make_set(args.directory, args.n, args.seed, tuple(args.kinds.split(",")))
        print(f"{len(labels)} photos in {args.directory}")
        return 0
    import gpunet

    net = gpunet.load(args.network, device="cpu")
    from gpunet.cli.predict import assess

    result = score(net, args.directory, load_reader(args.reader), assess)
    if args.json:
        print(json.dumps(result))
    else:
        _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
