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
from gpunet.cli import main  # noqa: E402

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
    from gpunet.images import mnist_like

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
    assert '.[images]' in capsys.readouterr().err
