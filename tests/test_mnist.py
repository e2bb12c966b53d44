"""The MNIST loader: bundled copy, user IDX directories, the book's pickle, and errors."""

from __future__ import annotations

import gzip
import pickle
import shutil

import numpy as np
import pytest

import gpunet
from gpunet.io.mnist import BUNDLED, MNISTError, load_mnist

# Published label counts (shared/data/mnist/README.md).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def test_bundled_split(mnist):
    (X, y), (Xv, yv), (Xt, yt) = mnist.training, mnist.validation, mnist.test
    assert X.shape == (50000, 784) and Xv.shape == (10000, 784) and Xt.shape == (10000, 784)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert list(np.bincount(yt)) == TEST_COUNTS
    assert list(np.bincount(np.concatenate([y, yv]))) == TRAIN_COUNTS
    assert mnist.test[0][0].reshape(28, 28)[14].max() > 0.9  # ink is 1.0: the first '7'
    assert yt[0] == 7 and y[0] == 5


def test_bundled_notice_ships_with_the_data():
    notice = (BUNDLED / "README.md").read_text()
    assert "Creative Commons Attribution-Share Alike 3.0" in notice and "LeCun" in notice


@pytest.fixture
def copy_dir(tmp_path):
    """A copy of the bundled files that a test may damage."""
    for name in NAMES:
        shutil.copy(BUNDLED / f"{name}.gz", tmp_path / f"{name}.gz")
    shutil.copy(BUNDLED / "RAW-SHA256SUMS", tmp_path / "RAW-SHA256SUMS")
    return tmp_path


def test_user_directory_loads(copy_dir, mnist):
    data = load_mnist(copy_dir)
    np.testing.assert_array_equal(data.test[1], mnist.test[1])
    assert str(copy_dir) in data.source


def test_uncompressed_files_without_checksums(tmp_path, mnist):
    for name in NAMES:
        (tmp_path / name).write_bytes(gzip.decompress((BUNDLED / f"{name}.gz").read_bytes()))
    data = load_mnist(tmp_path)
    np.testing.assert_array_equal(data.training[0][:100], mnist.training[0][:100])


def test_checksum_mismatch_names_the_file(copy_dir):
    path = copy_dir / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # a wrong label: still a valid IDX file
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(MNISTError, match=r"train-labels-idx1-ubyte.gz: checksum mismatch"):
        load_mnist(copy_dir)


def test_truncated_file(copy_dir):
    path = copy_dir / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:50000])
    with pytest.raises(MNISTError, match=r"t10k-images-idx3-ubyte.gz is truncated"):
        load_mnist(copy_dir)


def test_truncated_idx_without_checksums(tmp_path):
    for name in NAMES:
        raw = gzip.decompress((BUNDLED / f"{name}.gz").read_bytes())
        (tmp_path / name).write_bytes(raw[:-10] if name.startswith("t10k-labels") else raw)
    with pytest.raises(MNISTError, match=r"t10k-labels-idx1-ubyte is truncated: its header declares shape \(10000,\)"):
        load_mnist(tmp_path)


def test_missing_file(copy_dir):
    (copy_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MNISTError, match="MNIST file not found .*t10k-labels-idx1-ubyte"):
        load_mnist(copy_dir)


def test_swapped_files(tmp_path):
    for name in NAMES:
        raw = gzip.decompress((BUNDLED / f"{name}.gz").read_bytes())
        swapped = {"t10k-images-idx3-ubyte": "t10k-labels-idx1-ubyte",
                   "t10k-labels-idx1-ubyte": "t10k-images-idx3-ubyte"}.get(name, name)
        (tmp_path / swapped).write_bytes(raw)
    with pytest.raises(MNISTError, match="not an IDX file of"):
        load_mnist(tmp_path)


def test_not_gzip(copy_dir):
    (copy_dir / "train-labels-idx1-ubyte.gz").write_bytes(b"hello, not gzip")
    with pytest.raises(MNISTError, match="is not a gzip file"):
        load_mnist(copy_dir)


def test_missing_directory(tmp_path):
    with pytest.raises(MNISTError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")


def _book_pickle(path, mnist, n=100):
    parts = tuple((X[:n], y[:n]) for X, y in (mnist.training, mnist.validation, mnist.test))
    with gzip.open(path, "wb") as f:
        pickle.dump(parts, f, protocol=2)


def test_book_pickle(tmp_path, mnist):
    _book_pickle(tmp_path / "mnist.pkl.gz", mnist)
    for where in (tmp_path / "mnist.pkl.gz", tmp_path):
        data = load_mnist(where)
        np.testing.assert_array_equal(data.validation[0], mnist.validation[0][:100])
        np.testing.assert_array_equal(data.test[1], mnist.test[1][:100])


def test_pickle_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    with gzip.open(tmp_path / "mnist.pkl.gz", "wb") as f:
        pickle.dump(Evil(), f, protocol=2)
    with pytest.raises(MNISTError, match=r"refusing to load .*print"):
        load_mnist(tmp_path / "mnist.pkl.gz")


def test_load_data_wrapper_matches_the_book():
    training, validation, test = gpunet.load_data_wrapper()
    assert (len(training), len(validation), len(test)) == (50000, 10000, 10000)
    x, y = training[0]
    assert x.shape == (784, 1) and y.shape == (10, 1) and y[5, 0] == 1.0 and y.sum() == 1
    x, d = test[0]
    assert x.shape == (784, 1) and d == 7
