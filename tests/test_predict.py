"""Predictions on digits as users have them: MNIST test digits redrawn in several styles.

Each style (size, polarity, colour, position, JPEG, transparency) is drawn from the same
MNIST test digits; after ``read_digit``'s MNIST-style preparation the network must
score within a few points of its accuracy on those digits as MNIST has them.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

PIL = pytest.importorskip("PIL", reason="predict needs Pillow: pip install -e '.[images]'")
from PIL import Image  # noqa: E402

import gpunet  # noqa: E402
from gpunet.cli import main

N = 200  # test digits per style
TOLERANCE = 0.04  # at most 4 points below the network's accuracy on the same digits


@pytest.fixture(scope="module")
def trained(mnist, tmp_path_factory):
    X, y = mnist.training
    net = gpunet.Network([784, 30, 10], seed=1, device="cpu")
    net.SGD((X[:10_000], y[:10_000]), 3, 10, 0.5, verbose=False)
    path = tmp_path_factory.mktemp("net") / "net.json"
    net.save(path)
    return net, path


def _upscale(digit: np.ndarray, size: int) -> np.ndarray:
    """A 28 × 28 MNIST digit (ink 1.0) drawn at ``size`` × ``size`` pixels, 0..255."""
    image = Image.fromarray(np.uint8(np.round(digit.reshape(28, 28) * 255)))
    return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64)


def _canvas(ink: np.ndarray, shape: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    canvas = np.zeros(shape)
    canvas[at[0]:at[0] + ink.shape[0], at[1]:at[1] + ink.shape[1]] = ink
    return canvas


def draw(style: str, digit: np.ndarray, path_stem, rng: np.random.Generator) -> str:
    """Write ``digit`` to a file in ``style``; return its path."""
    if style == "large-dark-on-light":  # a scan: black ink on white paper, 280 px
        grey = 255 - _upscale(digit, 280)
        path = f"{path_stem}.png"
        Image.fromarray(np.uint8(np.clip(grey, 0, 255))).save(path)
    elif style == "small-light-on-dark-off-centre":  # chalk, small, in a corner
        ink = _canvas(_upscale(digit, 36), (110, 90), (8, 50))
        path = f"{path_stem}.png"
        Image.fromarray(np.uint8(np.clip(ink, 0, 255))).save(path)
    elif style == "colour-photo":  # blue ink on cream paper, noise, off-centre
        ink = _canvas(_upscale(digit, 120), (200, 260), (60, 20)) / 255.0
        paper, pen = np.array([245, 235, 200]), np.array([30, 40, 160])
        rgb = paper * (1 - ink[..., None]) + pen * ink[..., None]
        rgb += rng.normal(0, 6, rgb.shape)
        path = f"{path_stem}.png"
        Image.fromarray(np.uint8(np.clip(rgb, 0, 255)), mode="RGB").save(path)
    elif style == "jpeg":  # a phone picture: dark on grey paper, JPEG quality 60
        grey = 200 - 0.75 * _canvas(_upscale(digit, 90), (140, 120), (30, 10))
        path = f"{path_stem}.jpg"
        Image.fromarray(np.uint8(np.clip(grey, 0, 255))).convert("RGB").save(path, quality=60)
    elif style == "transparent":  # a drawing app: black strokes on a transparent canvas
        alpha = _upscale(digit, 64)
        rgba = np.zeros((64, 64, 4), dtype=np.uint8)
        rgba[..., 3] = np.uint8(np.clip(alpha, 0, 255))
        path = f"{path_stem}.png"
        Image.fromarray(rgba, mode="RGBA").save(path)
    elif style == "npy":
        path = f"{path_stem}.npy"
        np.save(path, np.uint8(np.round(digit.reshape(28, 28) * 255)))
    else:
        raise AssertionError(style)
    return path


STYLES = ["large-dark-on-light", "small-light-on-dark-off-centre", "colour-photo", "jpeg",
          "transparent", "npy"]


@pytest.mark.parametrize("style", STYLES)
def test_user_style_images_score_close_to_mnist(trained, mnist, tmp_path, style):
    net, _ = trained
    X, y = mnist.test[0][:N], mnist.test[1][:N]
    own = float(np.mean(net.predict(X) == y))
    rng = np.random.default_rng(0)
    inputs = np.stack([gpunet.read_digit(draw(style, X[i], tmp_path / f"d{i}", rng))
                       for i in range(N)])
    assert inputs.shape == (N, 784) and inputs.min() >= 0.0 and inputs.max() <= 1.0
    accuracy = float(np.mean(net.predict(inputs) == y))
    assert own > 0.85
    assert accuracy >= own - TOLERANCE, f"{style}: {accuracy:.3f} against {own:.3f} on MNIST"


def test_mnist_digits_come_back_as_they_were(mnist):
    from gpunet.io.images import mnist_like

    X = mnist.test[0][:100]
    again = np.stack([mnist_like(x.reshape(28, 28)) for x in X])
    assert np.abs(again - X).mean() < 0.01  # already MNIST-shaped: barely touched


def test_predict_command(trained, mnist, tmp_path, capsys):
    net, saved = trained
    X, y = mnist.test
    rng = np.random.default_rng(1)
    # digits the network gets right as MNIST has them
    right = [i for i in range(50) if net.predict(X[i]) == y[i]][:3]
    paths = [draw(s, X[i], tmp_path / f"p{i}", rng)
             for s, i in zip(["large-dark-on-light", "jpeg", "colour-photo"], right)]
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("shopping list")
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    status = main(["predict", str(saved), paths[0], str(not_an_image), paths[1], str(blank),
                   paths[2], "--device", "cpu"])
    out, err = capsys.readouterr()
    assert status == 2  # some images failed; the others still got their answers
    lines = out.splitlines()
    assert len(lines) == 3
    for line, path, i in zip(lines, paths, right):
        assert re.fullmatch(rf"{re.escape(path)}: {y[i]} \(confidence [01]\.\d\d\)", line)
    assert f"{not_an_image} is not an image" in err and f"{blank}: no ink" in err

    assert main(["predict", str(saved), *paths, "--json", "--device", "cpu"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in results] == paths
    assert [r["digit"] for r in results] == [int(y[i]) for i in right]
    assert all(len(r["outputs"]) == 10 for r in results)
    assert all(r["digit"] == int(np.argmax(r["outputs"])) for r in results)


def test_predict_without_pillow_names_the_extra(trained, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "PIL", None)
    _, saved = trained
    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG")
    assert main(["predict", str(saved), str(image), "--device", "cpu"]) == 2
    assert 'the images extra: pip install "pillow' in capsys.readouterr().err


# --------------------------------------------------------- photos (issue 26)
def _photo_digits():
    """scripts/photo_digits.py, which renders MNIST digits as phone photos."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "photo_digits.py"
    spec = importlib.util.spec_from_file_location("photo_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page(digit: np.ndarray) -> np.ndarray:
    """``digit`` written in dark ink (reflectance 0.1) on white paper (0.9), 150 pixels
    tall, off-centre on a 300 × 240 page."""
    ink = np.zeros((300, 240))
    ink[40:190, 70:220] = _upscale(digit, 150) / 255.0
    return 0.9 - 0.8 * ink


def _lights(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Uneven light over a page, each about as strong as a phone photo's."""
    y, x = np.mgrid[0:shape[0], 0:shape[1]] / max(shape)
    r2 = ((y - 0.3) ** 2 + (x - 0.35) ** 2) / 0.4
    return {
        "gradient down": 1.0 - 0.65 * y / y.max(),
        "gradient across": 0.35 + 0.65 * x / x.max(),
        "diagonal": 1.0 - 0.6 * (x + y) / (x + y).max(),
        "vignette": 1.0 - 0.65 * np.clip(r2, 0, 1),
        "shadow across the digit": np.where(x + 0.3 * y > 0.55, 0.45, 1.0),
        "dim": np.full(shape, 0.3),
    }


def _read_png(grey: np.ndarray, path) -> np.ndarray:
    """``grey`` (levels in [0, 1]) saved as an 8-bit PNG at ``path``, read back."""
    Image.fromarray(np.uint8(np.clip(np.round(grey * 255), 0, 255))).save(path)
    return gpunet.read_digit(path)


@pytest.mark.parametrize("light", list(_lights((2, 2))))
def test_uneven_light_is_not_taken_for_ink(mnist, light, tmp_path):
    """The same page photographed under uneven light reads as under even light: the
    background is estimated and removed before the digit is looked for, so the crop,
    the size and the centre of mass are the digit's (before: a gradient or a dark
    corner was cropped as ink, and a dim photo was "light ink on dark")."""
    X = mnist.test[0][:12]
    for x in X:
        page = _page(x)
        even = _read_png(page, tmp_path / "even.png")
        uneven = _read_png(page * _lights(page.shape)[light], tmp_path / "uneven.png")
        # the same box within a pixel and centre of mass within one (the crop's size
        # and the whole-pixel placement can round the other way; before: 4-8 pixels
        # off, or no ink found in the dim photo)
        assert np.abs(_box(uneven) - _box(even)).max() <= 1
        assert np.abs(_com(uneven) - _com(even)).max() < 1.0
        assert np.abs(uneven - even).mean() < 0.06  # (before: 0.16-0.19)


def _box(x: np.ndarray) -> np.ndarray:
    """(top, bottom, left, right) of a 784-pixel input's ink (above 0.2)."""
    ink = x.reshape(28, 28) > 0.2
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return np.array([rows[0], rows[-1], cols[0], cols[-1]])


def _com(x: np.ndarray) -> np.ndarray:
    """(row, column) of a 784-pixel input's centre of mass."""
    a = x.reshape(28, 28)
    ys, xs = np.indices(a.shape)
    return np.array([(ys * a).sum(), (xs * a).sum()]) / a.sum()


def test_thin_strokes_survive(mnist, trained, tmp_path):
    """A digit written with a fine pen (strokes a fifth of MNIST's width) keeps its
    ink through the shrinking to 20 × 20: widened to MNIST's stroke width first
    (before: they faded to a faint grey and were misread)."""
    net, _ = trained
    photos = _photo_digits()
    X, y = mnist.test[0][:40], mnist.test[1][:40]
    thin = np.stack([_read_png(0.9 - 0.8 * photos.ink(x, 200, "thin"), tmp_path / "t.png")
                     for x in X])
    normal = np.stack([_read_png(0.9 - 0.8 * photos.ink(x, 200, "normal"),
                                 tmp_path / "n.png") for x in X])
    mass = thin.sum(axis=1) / normal.sum(axis=1)
    assert np.median(mass) > 0.6, np.median(mass)
    assert np.mean(net.predict(thin) == y) >= np.mean(net.predict(normal) == y) - 0.1


PHOTO_KINDS = ("gradient", "vignette", "shadow", "dim", "texture", "thin", "exif",
               "phone")


def test_photo_like_digits_score_close_to_mnist(trained, mnist, tmp_path):
    """20 digits of each kind of photo (scripts/photo_digits.py: uneven light, shadow,
    underexposure, paper grain, a fine pen, EXIF-turned, all at once; JPEG): the
    network scores within 6 points of its accuracy on the same MNIST digits over all
    of them, and within 20 points on every kind (before: 0-25% on most kinds; 100
    digits of each kind measured with this network: 87-94% against 94%, "phone", all
    at once, the lowest)."""
    net, _ = trained
    photos = _photo_digits()
    n = 20
    X, y = mnist.test[0][:n], mnist.test[1][:n]
    own = float(np.mean(net.predict(X) == y))
    rng = np.random.default_rng(0)
    accuracy = {}
    for kind in PHOTO_KINDS:
        inputs = []
        for i in range(n):
            picture, orientation = photos.render(kind, X[i], rng)
            path = tmp_path / f"{kind}{i}.jpg"
            photos.save(picture, orientation, path, 85)
            try:
                inputs.append(gpunet.read_digit(path))
            except ValueError:  # unreadable counts as wrong
                inputs.append(np.zeros(784, dtype=np.float32))
        accuracy[kind] = float(np.mean(net.predict(np.stack(inputs)) == y))
    assert np.mean(list(accuracy.values())) >= own - 0.06, (accuracy, own)
    assert min(accuracy.values()) >= own - 0.2, (accuracy, own)


# -------------------------------------------------- low confidence (issue 26)
def test_assess_marks_weak_and_close_answers():
    from gpunet.cli.predict import CLOSE, WEAK, assess

    clear = [0.01, 0.02, 0.97, 0.05, 0.0, 0.01, 0.02, 0.03, 0.01, 0.0]
    answer = assess(clear)
    assert answer == {"digit": 2, "confidence": 0.97, "runner_up": 3,
                      "runner_up_confidence": 0.05, "low_confidence": False}
    close = [0.0, 0.38, 0.0, 0.0, 0.0, 0.0, 0.0, 0.41, 0.0, 0.0]
    assert assess(close)["low_confidence"] and assess(close)["runner_up"] == 1
    weak = [0.0] * 10
    weak[4] = WEAK - 0.01
    assert assess(weak)["low_confidence"]  # alone, but weak
    near = [0.0] * 10
    near[5], near[6] = 0.95, 0.95 - CLOSE + 0.01
    assert assess(near)["low_confidence"]  # strong, but the runner-up is close
    apart = [0.0] * 10
    apart[5], apart[6] = 0.95, 0.95 - CLOSE - 0.01
    assert not assess(apart)["low_confidence"]


def test_predict_marks_low_confidence(trained, mnist, tmp_path, capsys):
    """The test digit the network is least sure of (its two top outputs closest) is
    marked, in text and JSON; the one it is surest of is not, and its line keeps the
    plain format."""
    net, saved = trained
    X = mnist.test[0][:1000]
    outputs = np.stack([np.asarray(net.backend.to_host(net.feedforward(x))).ravel()
                        for x in X])
    top_two = np.sort(outputs, axis=1)[:, -2:]
    margins = top_two[:, 1] - top_two[:, 0]
    unsure, sure = int(np.argmin(margins)), int(np.argmax(margins))
    paths = []
    for name, i in (("sure", sure), ("unsure", unsure)):
        path = tmp_path / f"{name}.npy"
        np.save(path, np.uint8(np.round(X[i].reshape(28, 28) * 255)))
        paths.append(str(path))
    assert main(["predict", str(saved), *paths, "--device", "cpu"]) == 0
    sure_line, unsure_line = capsys.readouterr().out.splitlines()
    assert re.fullmatch(rf"{re.escape(paths[0])}: \d \(confidence [01]\.\d\d\)", sure_line)
    assert re.fullmatch(rf"{re.escape(paths[1])}: \d \(confidence [01]\.\d\d, low "
                        r"confidence: runner-up \d at [01]\.\d\d\)", unsure_line)
    assert main(["predict", str(saved), *paths, "--json", "--device", "cpu"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["low_confidence"] for r in records] == [False, True]
    for r in records:
        assert r["confidence"] == max(r["outputs"])
        assert r["digit"] == int(np.argmax(r["outputs"]))
        assert r["runner_up"] != r["digit"]
        assert r["runner_up_confidence"] == sorted(r["outputs"])[-2]


@pytest.mark.parametrize("pen, margin", [("normal", 0), ("thick", 6)])
def test_pictures_cropped_to_the_digit(trained, mnist, tmp_path, pen, margin):
    """A photo cropped to the digit (no margin, or a few pixels), even with a felt pen
    whose strokes take a quarter of the picture, or a "1" mostly ink: there is too
    little paper for the uneven-light estimate, so the paper is read from the border
    (planted bug, that path removed: 42% of the digits cropped with no margin read
    right, against 97.5% of the same MNIST digits)."""
    net, _ = trained
    photos = _photo_digits()
    X, y = mnist.test[0][:40], mnist.test[1][:40]
    own = float(np.mean(net.predict(X) == y))
    inputs = []
    for i, x in enumerate(X):
        ink = photos.ink(x, 200, pen)
        rows = np.flatnonzero((ink > 0.1).any(axis=1))
        cols = np.flatnonzero((ink > 0.1).any(axis=0))
        ink = np.pad(ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], margin)
        try:
            inputs.append(_read_png(0.9 - 0.8 * ink, tmp_path / f"{i}.png"))
        except ValueError:  # unreadable counts as wrong
            inputs.append(np.zeros(784, dtype=np.float32))
    accuracy = float(np.mean(net.predict(np.stack(inputs)) == y))
    assert accuracy >= own - 0.1, (accuracy, own)
