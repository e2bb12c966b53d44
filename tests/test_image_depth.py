"""Images deeper than 8 bits read as the same digit as their 8-bit version (issue 18).

Pillow's ``convert("L")`` clips 16-bit grey levels to 255 instead of scaling them, so a
dark-on-light 16-bit scan read through it is all "white" (or a 12-bit scan stored in 16
bits all but saturated): the digit is lost, silently. Each deep image here is the 8-bit
image of the same MNIST digit with its levels scaled to the deeper range; read back it
must give the 8-bit image's input to within the deeper format's rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpunet.images import read_digit, scale_grey

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
