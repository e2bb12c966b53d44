"""A user's own data (issue 30, point 1): any data set from the command line.

A Fashion-MNIST-shaped set is made here (IDX files of 28x28 uint8 images in ten
classes, fewer than the book's 50,000 training images) and written again as an
``.npz`` archive (Keras' names) and as CSV files (the label first: Kaggle's
``train.csv`` with a header, ``mnist_train.csv`` without): every form reads back the
same arrays and trains to the same epochs. Integer pixels are scaled as MNIST's,
floats taken as given; ``--sizes auto`` takes the input layer from the data, and a
first layer that does not fit is one error before any work; ``--validation`` and
``--test-data`` complete a set that lacks a part. The readers check before they
allocate: bombs and pickles are refused with a small traced peak.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import run_gpunet as gpunet_cmd
import gpunet.io.mnist as mnist_io
from gpunet.io.mnist import MNISTError, load_mnist
from test_readers_checkpoint import SMALL_PEAK, npy_header, peak_of

N_TRAIN, N_TEST = 1200, 300


def fashion_like(seed: int = 0, n: int = N_TRAIN + N_TEST) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 uint8 images in ten classes a small network tells apart (class c: a
    bright bar at rows 2c+4..2c+5, on noise), and their labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 2 * c + 4: 2 * c + 6, 3:25] = 200 + rng.integers(0, 56)
    return images, labels


def write_idx(directory: Path, images: np.ndarray, labels: np.ndarray,
              gzipped: bool = True) -> Path:
    """The four IDX files, MNIST's names, as Fashion-MNIST ships them."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = {"train": slice(0, N_TRAIN), "t10k": slice(N_TRAIN, None)}
    for part, cut in parts.items():
        x, y = images[cut], labels[cut]
        blobs = {f"{part}-images-idx3-ubyte": bytes([0, 0, 8, 3])
                 + struct.pack(">3I", *x.shape) + x.tobytes(),
                 f"{part}-labels-idx1-ubyte": bytes([0, 0, 8, 1])
                 + struct.pack(">I", len(y)) + y.tobytes()}
        for name, blob in blobs.items():
            if gzipped:
                (directory / f"{name}.gz").write_bytes(gzip.compress(blob, 1))
            else:
                (directory / name).write_bytes(blob)
    return directory


def write_csv(path: Path, images: np.ndarray, labels: np.ndarray, header: bool) -> Path:
    rows = np.column_stack([labels, images.reshape(len(labels), -1)]).astype(np.int64)
    with open(path, "w") as f:
        if header:
            f.write("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n")
        np.savetxt(f, rows, fmt="%d", delimiter=",")
    return path


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """The same set as IDX files, an .npz archive and CSV files."""
    root = tmp_path_factory.mktemp("sets")
    images, labels = fashion_like()
    train, test = slice(0, N_TRAIN), slice(N_TRAIN, None)
    write_idx(root / "idx", images, labels)
    np.savez_compressed(root / "fashion.npz", x_train=images[train], y_train=labels[train],
                        x_test=images[test], y_test=labels[test])
    kaggle = root / "kaggle"
    kaggle.mkdir()
    write_csv(kaggle / "train.csv", images[train], labels[train], header=True)
    write_csv(kaggle / "test.csv", images[test], labels[test], header=True)
    plain = root / "plain"
    plain.mkdir()
    write_csv(plain / "mnist_train.csv", images[train], labels[train], header=False)
    write_csv(plain / "mnist_test.csv", images[test], labels[test], header=False)
    return root, images, labels


def _epochs(stdout: str) -> list[str]:
    return [line.split("  (")[0] for line in stdout.splitlines() if line.startswith("Epoch ")]


# ------------------------------------------------------------ every form, one set
def test_a_fashion_mnist_shaped_set_is_a_drop_in(sets):
    """IDX files of the same form as MNIST's, with fewer than 50,000 training images
    (the old reader refused them: "the book's split needs more than 50000"), train
    from the command line to a high accuracy."""
    root, images, labels = sets
    data = load_mnist(root / "idx")
    assert len(data.training[1]) == N_TRAIN and len(data.test[1]) == N_TEST
    assert len(data.validation[1]) == 0
    np.testing.assert_array_equal(data.training[0], images[:N_TRAIN].reshape(-1, 784) / np.float32(255))
    run = gpunet_cmd("train", "--data", str(root / "idx"), "--epochs", "3", "--seed", "1",
                     "--device", "cpu", "--quiet", "--cost", "cross-entropy", "--eta", "0.5")
    assert run.returncode == 0, run.stderr
    last = _epochs(run.stdout)[-1]
    assert int(last.split()[2]) > 0.9 * N_TEST, run.stdout  # 10% is chance; ~100% here


@pytest.mark.parametrize("form", ["fashion.npz", "kaggle", "plain"])
def test_npz_and_csv_read_back_the_same_set_and_train_the_same_epochs(sets, form):
    """An .npz archive (Keras' names) and both CSV folders read as the IDX files do,
    array for array, and a run on each prints the IDX run's epochs exactly. (Old: "is
    a file; give the directory ...", or "MNIST file not found" for the folders.)"""
    root, images, labels = sets
    idx, other = load_mnist(root / "idx"), load_mnist(root / form)
    for part in ("training", "test"):
        np.testing.assert_array_equal(getattr(other, part)[0], getattr(idx, part)[0])
        np.testing.assert_array_equal(getattr(other, part)[1], getattr(idx, part)[1])
    assert getattr(other, "training")[0].dtype == np.float32
    runs = [gpunet_cmd("train", "--data", str(root / d), "--epochs", "2", "--seed", "3",
                       "--device", "cpu", "--quiet", "--limit", "600") for d in ("idx", form)]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert _epochs(runs[0].stdout) == _epochs(runs[1].stdout) != []


def test_a_training_csv_with_its_test_set_named_apart_and_a_validation_split(sets, tmp_path):
    root, images, labels = sets
    train = root / "kaggle" / "train.csv"
    run = gpunet_cmd("train", "--data", str(train), "--test-data", str(root / "kaggle" / "test.csv"),
                     "--epochs", "1", "--seed", "3", "--device", "cpu", "--quiet")
    assert run.returncode == 0, run.stderr
    assert f"training on {N_TRAIN}, evaluating on {N_TEST} test" in run.stdout
    run = gpunet_cmd("train", "--data", str(train), "--validation", "0.25", "--evaluate",
                     "validation", "--epochs", "1", "--seed", "3", "--device", "cpu", "--quiet")
    assert run.returncode == 0, run.stderr
    assert "900 training, 300 validation, 0 test" in run.stdout
    # without a test set, the default --evaluate test says what to give
    run = gpunet_cmd("train", "--data", str(train), "--epochs", "1", "--device", "cpu")
    assert run.returncode == 2
    assert "has no test set; name one with --test-data PATH" in run.stderr
    # a set that has its parts already: each contradiction is one error
    for extra, problem in ((["--validation", "100"], "has its own validation set"),
                           (["--test-data", str(train)], "has its own test set")):
        run = gpunet_cmd("train", "--epochs", "1", "--limit", "100", "--device", "cpu", *extra)
        assert run.returncode == 2 and problem in run.stderr, run.stderr


def test_kaggles_unlabelled_test_csv_is_named_not_misread(sets, tmp_path):
    root, images, labels = sets
    folder = tmp_path / "digit-recognizer"
    folder.mkdir()
    write_csv(folder / "train.csv", images[:N_TRAIN], labels[:N_TRAIN], header=True)
    pixels = images[N_TRAIN:].reshape(N_TEST, -1)
    np.savetxt(folder / "test.csv", pixels, fmt="%d", delimiter=",",
               header=",".join(f"pixel{i}" for i in range(784)), comments="")
    with pytest.raises(MNISTError, match="Kaggle's test.csv has no labels"):
        load_mnist(folder)


# ------------------------------------------------------------ what the values mean
def test_integer_pixels_are_scaled_and_floats_taken_as_given(tmp_path):
    rng = np.random.default_rng(2)
    floats = rng.uniform(-2, 2, (50, 7))
    labels = rng.integers(0, 3, 50)
    np.savez(tmp_path / "f.npz", x_train=floats, y_train=labels)
    data = load_mnist(tmp_path / "f.npz")
    np.testing.assert_array_equal(data.training[0], floats)  # float64, as given
    csv = tmp_path / "f.csv"
    np.savetxt(csv, np.column_stack([labels, floats]), delimiter=",", fmt="%.17g")
    np.testing.assert_array_equal(load_mnist(csv).training[0], floats)
    # a float file whose values are whole numbers is still floats: 1.0 is not 1/255
    np.savetxt(csv, np.column_stack([labels, np.ones((50, 7))]), delimiter=",", fmt="%.1f")
    assert (load_mnist(csv).training[0] == 1.0).all()
    # integers outside 0..255 are not pixels: one error naming the file
    np.savez(tmp_path / "i.npz", x_train=np.full((5, 4), 300, np.int32), y_train=np.zeros(5, int))
    with pytest.raises(MNISTError, match="integers from 300 to 300; integer inputs are pixels"):
        load_mnist(tmp_path / "i.npz")
    np.savetxt(csv, np.column_stack([labels, np.full((50, 7), 256)]), delimiter=",", fmt="%d")
    with pytest.raises(MNISTError, match=f"{csv}: its inputs are whole numbers from 256"):
        load_mnist(csv)


def test_one_hot_labels_in_an_npz_train(tmp_path):
    images, labels = fashion_like(4, 400)
    np.savez(tmp_path / "h.npz", x_train=images[:300], y_train=np.eye(10)[labels[:300]],
             x_test=images[300:], y_test=np.eye(10)[labels[300:]])
    run = gpunet_cmd("train", "--data", str(tmp_path / "h.npz"), "--epochs", "1",
                     "--device", "cpu", "--quiet", "--seed", "0")
    assert run.returncode == 0, run.stderr
    assert _epochs(run.stdout)[0].endswith("/ 100")


def test_sizes_auto_takes_the_input_layer_from_the_data_and_a_mismatch_is_one_error(tmp_path):
    """A 64-wide set (scikit-learn's digits' shape) trains with the default sizes, and
    a first layer that does not fit is one error before any line is printed (old:
    three lines, then "reshape the data")."""
    rng = np.random.default_rng(5)
    X = rng.integers(0, 17, (300, 8, 8)).astype(np.uint8)
    y = rng.integers(0, 10, 300)
    np.savez(tmp_path / "d.npz", x_train=X[:200], y_train=y[:200], x_test=X[200:], y_test=y[200:])
    assert mnist_io.input_width(tmp_path / "d.npz") == 64
    run = gpunet_cmd("train", "--data", str(tmp_path / "d.npz"), "--epochs", "1",
                     "--device", "cpu", "--quiet")
    assert run.returncode == 0, run.stderr
    assert "network: [64, 30, 10]" in run.stdout
    run = gpunet_cmd("train", "--sizes", "64,30,10", "--epochs", "1", "--device", "cpu")
    assert run.returncode == 2 and run.stdout == "", run.stdout
    assert run.stderr.strip().splitlines() == [
        "gpunet: error: --sizes 64,30,10: its first layer has 64 inputs, but the data (the "
        "bundled MNIST) has 784 inputs per example. For hidden and output layers 64,30,10, "
        "give --sizes auto,64,30,10 (the input layer from the data: 784,64,30,10); to "
        "replace the input layer, --sizes auto,30,10."]
    run = gpunet_cmd("sweep", "--data", str(tmp_path / "d.npz"), "--sizes", "auto,12,10",
                     "--epochs", "1", "--seeds", "0-1", "--device", "cpu", "--quiet")
    assert run.returncode == 0, run.stderr
    assert "networks [64, 12, 10]" in run.stdout


def test_a_resumed_run_keeps_its_test_data_and_validation(sets, tmp_path):
    root, _, _ = sets
    train = root / "kaggle" / "train.csv"
    common = ["--data", str(train), "--validation", "200", "--evaluate", "validation",
              "--device", "cpu", "--quiet", "--seed", "2", "--limit", "500"]
    first = gpunet_cmd("train", *common, "--epochs", "1", "--checkpoint", str(tmp_path / "c"))
    assert first.returncode == 0, first.stderr
    resumed = gpunet_cmd("train", "--resume", str(tmp_path / "c"), "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "1000 training, 200 validation" in resumed.stdout
    whole = gpunet_cmd("train", *common, "--epochs", "2")
    assert _epochs(resumed.stdout) == _epochs(whole.stdout)[1:]
    other = gpunet_cmd("train", "--resume", str(tmp_path / "c"), "--validation", "100")
    assert other.returncode == 2 and "--validation 100 contradicts" in other.stderr


# ------------------------------------------------------------ the library's labels
def test_labels_as_lists_train_as_arrays_do():
    """(X, list) pairs: digits or one-hot rows (old: "training_data[0] is not an (x, y)
    pair")."""
    import gpunet

    images, labels = fashion_like(6, 300)
    X = images.reshape(300, -1) / np.float32(255)
    results = []
    for y in (labels.astype(np.int64), labels.tolist(), np.eye(10)[labels].tolist(),
              [np.eye(10)[c].reshape(10, 1) for c in labels]):
        net = gpunet.Network([784, 20, 10], device="cpu", dtype="float64", seed=4)
        history = net.SGD((X[:200], y[:200]), 1, 10, 0.5, verbose=False,
                          test_data=(X[200:], labels[200:].tolist()))
        results.append((history.evaluation_accuracy, net.parameters.copy()))
    for accuracy, parameters in results[1:]:
        assert accuracy == results[0][0]
        np.testing.assert_array_equal(parameters, results[0][1])


# ------------------------------------------------------------ hostile files
def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, blob in members.items():
            archive.writestr(name, blob)


def test_an_npz_declaring_a_huge_array_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.npz"
    _zip(path, {"x_train.npy": npy_header(np.float64, (2**20, 2**20)) + bytes(64),
                "y_train.npy": npy_header(np.int64, (2**20,)) + bytes(64)})
    raised, peak = peak_of(lambda: load_mnist(path))
    assert peak < SMALL_PEAK, peak
    assert isinstance(raised, MNISTError) and "more than gpunet reads" in str(raised), raised


def test_an_npz_member_longer_or_shorter_than_its_header_says_is_refused_unread(tmp_path):
    """The member's size in the zip directory against what its .npy header declares:
    compared before the data is read (a deflated member is inflated only that far)."""
    header = npy_header(np.uint8, (100, 784))
    for data, size in ((bytes(10), len(header) + 10), (bytes(100 * 784 + 7), None)):
        path = tmp_path / "lying.npz"
        _zip(path, {"x_train.npy": header + data,
                    "y_train.npy": npy_header(np.uint8, (100,)) + bytes(100)},
             zipfile.ZIP_DEFLATED)
        raised, peak = peak_of(lambda: load_mnist(path))
        assert peak < SMALL_PEAK, peak
        declared = size or len(header) + 100 * 784 + 7
        assert isinstance(raised, MNISTError), raised
        assert (f"the member 'x_train' declares {declared:,} bytes, but its header says "
                "uint8 (100, 784)") in str(raised), raised


def test_an_npz_of_pickled_objects_is_refused_unloaded(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('ran')",))

    buffer = io.BytesIO()
    np.save(buffer, np.array([Boom()], dtype=object), allow_pickle=True)
    path = tmp_path / "p.npz"
    _zip(path, {"x_train.npy": buffer.getvalue(), "y_train.npy": buffer.getvalue()})
    with pytest.raises(MNISTError, match="never loads pickled objects"):
        load_mnist(path)
    assert pickle  # the payload above is a pickle; it was never unpickled


@pytest.mark.parametrize("content, problem", [
    (b"1," + b"0," * (3 * 2**20), "longer than 4,194,304 bytes"),
    (b"1,2,3\n1,2\n", "line 2: 2 fields, where the first example has 3"),
    (b"label,a\n", "holds no examples"),
    (b"1,2\nx,3\n", "near line 1"),
    (b"-1,2\n", "has the label -1;"),
])
def test_a_csv_that_is_not_a_data_set_is_named(tmp_path, content, problem):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    raised, peak = peak_of(lambda: load_mnist(path))
    assert peak < SMALL_PEAK, peak
    assert isinstance(raised, MNISTError) and str(path) in str(raised), raised
    assert problem in str(raised), raised


def test_a_csv_is_counted_before_it_is_allocated(tmp_path, monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module("gpunet.io.csv_data"), "MAX_EXAMPLES", 100)
    path = tmp_path / "many.csv"
    path.write_bytes(b"1,0,0\n" * 101)
    with pytest.raises(MNISTError, match="more than 100 examples"):
        load_mnist(path)
