"""The book's expanded training data (issue 29, point 4): gpunet.expand_mnist against a
plain copy of the book's ``expand_mnist.py`` loop, and its cache on disk (built once,
its checksum checked on every read, a damaged file rebuilt with a warning).

A small synthetic set of 28x28 8-bit images in an ``.npz`` archive stands in for MNIST;
the cache lives in ``tmp_path``. No device is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import gpunet
from gpunet.io import expand
from gpunet.io.expand import ExpandedCacheWarning, expand_mnist
from gpunet.io.mnist import load_mnist

N = 24  # training images of the synthetic set


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """An .npz archive of N training and 6 test images: 8-bit pixels, ink up to the
    borders (so every shift moves ink and zeroes ink), labels 0..9."""
    rng = np.random.default_rng(29)
    x = rng.integers(0, 256, size=(N + 6, 28, 28), dtype=np.uint8)
    x[rng.random(x.shape) < 0.5] = 0  # MNIST-like: many zeros
    y = rng.integers(0, 10, size=N + 6).astype(np.uint8)
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=x[:N], y_train=y[:N], x_test=x[N:], y_test=y[N:])
    return path


def books_loop(X: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """expand_mnist.py's loop, as the book writes it (without its shuffle)."""
    pairs = []
    for x, label in zip(X, y):
        pairs.append((x, int(label)))
        image = np.reshape(x, (-1, 28))
        for d, axis, index_position, index in [(1, 0, "first", 0), (-1, 0, "first", 27),
                                               (1, 1, "last", 0), (-1, 1, "last", 27)]:
            new_img = np.roll(image, d, axis)
            if index_position == "first":
                new_img[index, :] = np.zeros(28)
            else:
                new_img[:, index] = np.zeros(28)
            pairs.append((np.reshape(new_img, 784), int(label)))
    return pairs


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool(
        np.array_equal(a.view(np.uint8), b.view(np.uint8)))


def expanded(source: Path, cache: Path, **kwargs: object) -> gpunet.MNIST:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExpandedCacheWarning)  # none expected
        return expand_mnist(source, cache_dir=cache, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("shuffle", [False, True])
def test_shifts_are_the_books_loop_bit_for_bit(source: Path, tmp_path: Path,
                                               shuffle: bool) -> None:
    """Every row and label is the book's loop's, in its order or in the documented
    seeded permutation of it (planted: up and down swapped in expand.shifted, failed)."""
    X, y = load_mnist(source).training
    pairs = books_loop(X, y)
    order = (np.random.default_rng(7).permutation(5 * N) if shuffle
             else np.arange(5 * N))
    data = expanded(source, tmp_path / "cache", seed=7, shuffle=shuffle)
    got_X, got_y = data.training
    assert same_bits(got_X, np.stack([pairs[i][0] for i in order]))
    assert got_y.tolist() == [pairs[i][1] for i in order]
    # the cached copy reads back the same, bit for bit
    again = expanded(source, tmp_path / "cache", seed=7, shuffle=shuffle)
    assert same_bits(again.training[0], got_X) and same_bits(again.training[1], got_y)


def test_five_copies_labels_repeated_rest_unchanged(source: Path, tmp_path: Path) -> None:
    """5n examples; each image's label on its five copies (planted: labels[order]
    instead of labels[order // 5], failed); the test set untouched."""
    plain = load_mnist(source)
    data = expanded(source, tmp_path / "cache")
    X, y = data.training
    assert X.shape == (5 * N, 784) and y.shape == (5 * N,) and y.dtype == np.int64
    order = expand.expansion_order(N, 0, True)
    assert y.tolist() == plain.training[1][order // 5].tolist()
    assert np.bincount(y, minlength=10).tolist() == (
        5 * np.bincount(plain.training[1], minlength=10)).tolist()
    originals = order % 5 == 0  # the unshifted copies are the source's images exactly
    assert same_bits(X[originals], plain.training[0][order[originals] // 5])
    assert same_bits(data.test[0], plain.test[0]) and same_bits(data.test[1], plain.test[1])
    assert "expanded 5x" in data.describe() and "seed 0" in data.describe()


def test_a_split_set_expands_its_training_part_only(source: Path, tmp_path: Path) -> None:
    """expand_data (what --expand with --validation uses): the validation examples split
    off first stay out of the expansion, unchanged (planted: the validation part
    expanded with the training part, failed)."""
    from gpunet.io.mnist import split_validation

    data = split_validation(load_mnist(source), 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExpandedCacheWarning)
        out = expand.expand_data(data, shuffle=False, cache_dir=tmp_path / "cache")
    assert out.training[0].shape == (5 * (N - 4), 784)
    assert same_bits(out.training[0][::5], data.training[0])
    assert same_bits(out.validation[0], data.validation[0])
    assert same_bits(out.validation[1], data.validation[1])


def test_the_cache_is_read_not_rebuilt(source: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """One file per source and order, built once: a second call reads it (planted:
    the cache never consulted, failed); another seed is another file."""
    cache = tmp_path / "cache"
    first = expanded(source, cache)
    files = sorted(cache.iterdir())
    assert len(files) == 1 and files[0].stat().st_size < 5 * N * 784 + 4096  # a byte a pixel
    stamp = files[0].stat().st_mtime_ns

    def no_building(*args: object) -> None:
        raise AssertionError("the expanded set was built again")

    monkeypatch.setattr(expand, "expand_codes", no_building)
    second = expanded(source, cache)
    assert same_bits(second.training[0], first.training[0])
    assert files[0].stat().st_mtime_ns == stamp
    monkeypatch.undo()
    other = expanded(source, cache, seed=1)
    assert len(list(cache.iterdir())) == 2
    assert not same_bits(other.training[1], first.training[1])


def _flip(offset_from_end: int):
    def damage(raw: bytes) -> bytes:
        at = len(raw) - offset_from_end
        return raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1:]
    return damage


def _header_field(name: str, value: object):
    def damage(raw: bytes) -> bytes:
        length = int.from_bytes(raw[8:12], "big")
        header = json.loads(raw[12:12 + length])
        header[name] = value
        new = json.dumps(header, sort_keys=True).encode()
        return raw[:8] + len(new).to_bytes(4, "big") + new + raw[12 + length:]
    return damage


DAMAGE = {
    "a pixel": (_flip(1), "checksum does not match"),
    "a label": (_flip(5 * N * 784 + 3), "checksum does not match"),
    "the checksum": (_header_field("sha256", "0" * 64), "checksum does not match"),
    "truncated": (lambda raw: raw[:-100], "but its header declares .*truncated"),
    "appended to": (lambda raw: raw + b"\0" * 784, "but its header declares .*appended"),
    "another key": (_header_field("key", "1" * 64), "fields key differ"),
    "more examples": (_header_field("examples", 5 * N + 1), "fields examples differ"),
    "format true": (_header_field("format", True), "fields format differ"),
    "an extra field": (_header_field("note", 1), "other than written"),
    "a huge header": (lambda raw: raw[:8] + (2**31).to_bytes(4, "big") + raw[12:],
                      "more than 4,096"),
    "not JSON": (lambda raw: raw[:12] + b"\xff" + raw[13:], "not JSON"),
    "a nested header": (lambda raw: raw[:8] + (4000).to_bytes(4, "big") + b"[" * 4000
                        + raw[12 + int.from_bytes(raw[8:12], "big"):], "not JSON"),
    "another format": (lambda raw: b"PK\x03\x04" + raw[4:], "not a gpunet cache file"),
    "empty": (lambda raw: b"", "too short"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_cache_is_detected_and_rebuilt(source: Path, tmp_path: Path,
                                                 kind: str) -> None:
    """A cache changed in any part is never returned: a warning names the file and
    the check it failed, and the set is built again and the file replaced (planted:
    the checksum comparison skipped, failed for a pixel, a label and the checksum; the
    size check skipped, failed for a truncated and an appended file; RecursionError not
    caught, failed for a nested header)."""
    cache = tmp_path / "cache"
    good = expanded(source, cache)
    (file,) = cache.iterdir()
    original = file.read_bytes()
    damage, message = DAMAGE[kind]
    file.write_bytes(damage(original))
    with pytest.warns(ExpandedCacheWarning, match=message) as caught:
        again = expand_mnist(source, cache_dir=cache)
    assert str(file) in str(caught[0].message)
    assert same_bits(again.training[0], good.training[0])
    assert same_bits(again.training[1], good.training[1])
    assert hashlib.sha256(file.read_bytes()).digest() == hashlib.sha256(original).digest()


def test_a_cache_path_that_is_not_a_file_is_refused(source: Path, tmp_path: Path) -> None:
    """A folder where the cache file belongs cannot be replaced: one ValueError naming
    it (planted: the regular-file check dropped, failed with IsADirectoryError)."""
    cache = tmp_path / "cache"
    expanded(source, cache)
    (file,) = cache.iterdir()
    file.unlink()
    file.mkdir()
    with pytest.raises(ValueError, match=f"{file} is a directory"):
        expand_mnist(source, cache_dir=cache)


def test_an_unwritable_cache_warns_and_still_gives_the_data(source: Path,
                                                            tmp_path: Path) -> None:
    """A cache folder that cannot be made (its parent is a file) is a warning; the
    expanded set is returned all the same."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    reference = expanded(source, tmp_path / "cache")
    with pytest.warns(ExpandedCacheWarning, match="could not keep the expanded set"):
        data = expand_mnist(source, cache_dir=blocker / "cache")
    assert same_bits(data.training[0], reference.training[0])


def test_the_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """cache_dir, else $GPUNET_CACHE_DIR, else $XDG_CACHE_HOME/gpunet (absolute), else
    ~/.cache/gpunet."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GPUNET_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert expand.cache_folder() == tmp_path / "home" / ".cache" / "gpunet"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert expand.cache_folder() == tmp_path / "home" / ".cache" / "gpunet"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert expand.cache_folder() == tmp_path / "xdg" / "gpunet"
    monkeypatch.setenv("GPUNET_CACHE_DIR", str(tmp_path / "mine"))
    assert expand.cache_folder() == tmp_path / "mine"
    assert expand.cache_folder(tmp_path / "given") == tmp_path / "given"


def test_sets_the_shifts_do_not_fit_are_refused(tmp_path: Path) -> None:
    """Images that are not 28x28, and float pixels of more than 256 values: a
    ValueError saying which, and nothing written."""
    rng = np.random.default_rng(1)
    wide = tmp_path / "wide.npz"
    np.savez(wide, x_train=rng.integers(0, 256, (4, 30, 30), dtype=np.uint8),
             y_train=np.arange(4))
    with pytest.raises(ValueError, match="shifts 28x28 images .*900 inputs"):
        expand_mnist(wide, cache_dir=tmp_path / "cache")
    floats = tmp_path / "floats.npz"
    np.savez(floats, x_train=rng.random((4, 28, 28)).astype(np.float32),
             y_train=np.arange(4))
    with pytest.raises(ValueError, match="more than 256 distinct pixel values"):
        expand_mnist(floats, cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="seed -1"):
        expand_mnist(floats, seed=-1, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_the_package_exports_it_lazily() -> None:
    assert "expand_mnist" in gpunet.__all__
    assert gpunet.expand_mnist is expand_mnist
    assert os.path.basename(expand.__file__) == "expand.py"
