"""MNIST files, network files and metrics files read as hostile input (issue 26): what a
file declares is checked before anything is inflated, a file that goes on past what it
declares stops there, and every problem names the file.

The bombs are made cheaply (:func:`gzip_of_zeros`: a gzip stream of zeros whose
deflate blocks are one compressed chunk repeated) and are large enough that the old
readers' allocations (the whole inflated file) show in the traced peak, which the new
readers keep under 32 MiB.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import gpunet
from gpunet.cli import main
from gpunet.io.mnist import BUNDLED, MNISTError, load_mnist
from test_readers_checkpoint import SMALL_PEAK, deflated_zeros, peak_of

NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
BOMB = 256 * 2**20  # zeros past what the file declares: the old readers inflated them all


def gzip_of_zeros(prefix: bytes, n_zeros: int) -> bytes:
    """A valid gzip file of ``prefix`` then ``n_zeros`` zero bytes."""
    crc, chunk = zlib.crc32(prefix), bytes(1 << 20)
    for _ in range(n_zeros // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + deflated_zeros(prefix, n_zeros)
            + struct.pack("<2L", crc, (len(prefix) + n_zeros) & 0xFFFFFFFF))


@pytest.fixture
def copy_dir(tmp_path):
    """A copy of the bundled files (with their checksums) that a test may damage."""
    for name in NAMES:
        shutil.copy(BUNDLED / f"{name}.gz", tmp_path / f"{name}.gz")
    shutil.copy(BUNDLED / "RAW-SHA256SUMS", tmp_path / "RAW-SHA256SUMS")
    return tmp_path


# ----------------------------------------------------------------- IDX files
def test_a_gzip_bomb_is_refused_without_inflating_it(copy_dir):
    """The labels file declares its 60,000 labels, then inflates 256 MiB further (the
    old reader inflated it all: a 4 GiB one was a MemoryError traceback)."""
    path = copy_dir / "train-labels-idx1-ubyte.gz"
    header = bytes([0, 0, 8, 1]) + struct.pack(">I", 60000)
    path.write_bytes(gzip_of_zeros(header + bytes(60000), BOMB))
    assert path.stat().st_size < 2**20
    raised, peak = peak_of(lambda: load_mnist(copy_dir))
    assert peak < SMALL_PEAK, peak  # first: what the old reader failed
    assert isinstance(raised, MNISTError), raised
    assert str(raised).startswith(f"{path} is longer than its header says"), raised


@pytest.mark.parametrize("name, dims, problem", [
    ("train-images-idx3-ubyte.gz", (2**31, 2**31, 4), "2,147,483,648 examples"),
    ("train-images-idx3-ubyte.gz", (60000, 28, 29), "images of 28x29 pixels"),
    ("t10k-labels-idx1-ubyte.gz", (1_000_001,), "1,000,001 examples"),
])
def test_declared_shapes_are_checked_before_anything_is_inflated(copy_dir, name, dims,
                                                                problem):
    """The header's shape against the limits, the data behind it a bomb that is never
    reached (the old reader inflated it before comparing its length)."""
    path = copy_dir / name
    header = bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    path.write_bytes(gzip_of_zeros(header, BOMB))
    raised, peak = peak_of(lambda: load_mnist(copy_dir))
    assert peak < SMALL_PEAK, peak  # first: what the old reader failed
    assert isinstance(raised, MNISTError) and str(raised).startswith(f"{path}:"), raised
    assert problem in str(raised)


def test_labels_and_images_counts_agree_before_either_is_inflated(copy_dir):
    path = copy_dir / "t10k-labels-idx1-ubyte.gz"
    header = bytes([0, 0, 8, 1]) + struct.pack(">I", 9999)
    path.write_bytes(gzip.compress(header + bytes(9999)))
    with pytest.raises(MNISTError, match="test has 10000 images but 9999 labels"):
        load_mnist(copy_dir)


@pytest.mark.parametrize("content, problem", [
    (bytes(range(256)) * 4, "not UTF-8 text"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "not UTF-8 text"),
    (b"0fa7898d  t10k-images-idx3-ubyte\n", "line 1: "),
    (b"x" * (64 * 1024 + 1), "more than 65,536"),
])
def test_a_checksum_file_that_is_not_one_is_named(copy_dir, capsys, content, problem):
    """A binary RAW-SHA256SUMS was a UTF-8 decoding message that named no file; a
    malformed line was skipped without a word (its file then went unchecked)."""
    sums = copy_dir / "RAW-SHA256SUMS"
    sums.write_bytes(content)
    with pytest.raises(MNISTError) as info:
        load_mnist(copy_dir)
    assert str(info.value).startswith(str(sums)) and problem in str(info.value)
    assert main(["train", "--device", "cpu", "--epochs", "1", "--data", str(copy_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"gpunet: error: {sums}"), err


def test_checksum_comments_and_names_with_spaces_are_read(copy_dir):
    sums = copy_dir / "RAW-SHA256SUMS"
    sums.write_text("# the raw files' digests\n\n" + sums.read_text()
                    + "0" * 64 + "  some other file.txt\n")
    assert len(load_mnist(copy_dir).test[1]) == 10000


# -------------------------------------------------------- the book's pickle
@pytest.mark.parametrize("what", ["zeros", "a huge bytes object"])
def test_a_pickle_bomb_is_refused_without_inflating_it(tmp_path, what):
    """Old code inflated the whole gzip before unpickling; the unpickler now reads
    through a stream that refuses to go past the limit before it reads."""
    path = tmp_path / "mnist.pkl.gz"
    if what == "zeros":
        path.write_bytes(gzip_of_zeros(b"", BOMB))
    else:  # protocol 4: BINBYTES8 declaring 1 TiB, then a stream of zeros
        prefix = b"\x80\x04\x8e" + struct.pack("<Q", 2**40)
        path.write_bytes(gzip_of_zeros(prefix, BOMB))
    raised, peak = peak_of(lambda: load_mnist(path))
    assert peak < SMALL_PEAK, peak  # first: what the old reader failed
    assert isinstance(raised, MNISTError) and str(raised).startswith(str(path)), raised


def test_the_book_pickle_still_loads(tmp_path, mnist):
    parts = tuple((X[:50], y[:50]) for X, y in (mnist.training, mnist.validation, mnist.test))
    with gzip.open(tmp_path / "mnist.pkl.gz", "wb") as f:
        pickle.dump(parts, f, protocol=2)
    data = load_mnist(tmp_path / "mnist.pkl.gz")
    np.testing.assert_array_equal(data.test[0], mnist.test[0][:50])
    with gzip.open(tmp_path / "mnist.pkl.gz", "ab") as f:  # a second pickle after it
        pickle.dump(parts, f, protocol=2)
    with pytest.raises(MNISTError, match="goes on past the book's pickle"):
        load_mnist(tmp_path / "mnist.pkl.gz")


# ------------------------------------------------------ files too large to read
def _sparse(path: Path, size: int, start: bytes = b"") -> Path:
    with open(path, "wb") as f:
        f.write(start)
        f.truncate(size)
    return path


def test_a_network_file_too_large_is_refused_unread(tmp_path):
    """600 MiB (a hole): the old reader parsed it whole (peak > 600 MiB)."""
    path = _sparse(tmp_path / "net.json", 600 * 2**20, b'{"sizes": [784, 10], "weights": [')
    raised, peak = peak_of(lambda: gpunet.load(path, device="cpu"))
    assert peak < SMALL_PEAK, peak  # first: what the old reader failed
    assert isinstance(raised, ValueError) and str(raised).startswith(str(path)), raised
    assert "more than a network file may hold" in str(raised)


def test_a_metrics_file_too_large_is_refused_unread(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = _sparse(tmp_path / "m.jsonl", 300 * 2**20, b'{"gpunet_metrics": 1}\n')
    from gpunet.training.history import read_metrics

    raised, peak = peak_of(lambda: read_metrics(path))
    assert peak < SMALL_PEAK, peak  # first: what the old reader failed
    assert isinstance(raised, ValueError) and "more than a metrics file may" in str(raised)
    assert main(["plot", str(path), "-o", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0]


def test_a_flat_bias_list_still_loads(tmp_path):
    """network2.py's biases are (n, 1) columns; a flat list of n was read too."""
    path = tmp_path / "net.json"
    path.write_text('{"sizes": [2, 1], "weights": [[[0.5, -1.0]]], "biases": [[0.25]]}')
    net = gpunet.load(path, device="cpu", dtype="float64")
    assert np.asarray(net.biases[0]).tolist() == [[0.25]]
    assert os.path.getsize(path) < 100


def test_a_number_of_thousands_of_digits_names_the_file(tmp_path):
    """Python refuses to convert an integer of more than 4,300 digits with its own
    ValueError, which the old readers passed on without the file's name."""
    from gpunet.training.history import read_metrics

    huge = "1" + "0" * 5000
    net = tmp_path / "net.json"
    net.write_text('{"sizes": [2, 1], "weights": [[[%s, 1.0]]], "biases": [[[0.0]]]}' % huge)
    metrics = tmp_path / "m.jsonl"
    metrics.write_text('{"gpunet_metrics": 1}\n{"epoch": %s}\n' % huge)
    for path, read in ((net, lambda p: gpunet.load(p, device="cpu")), (metrics, read_metrics)):
        with pytest.raises(ValueError) as info:
            read(path)
        assert str(info.value).startswith(str(path)), str(info.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
@pytest.mark.parametrize("reader", ["network", "metrics", "checkpoint", "mnist"])
def test_devices_pipes_and_folders_are_refused_unopened(tmp_path, reader):
    """A pipe (opening one waits for a writer: the old network and metrics readers hung
    there), a device that never ends (/dev/zero: the old readers read 512 MiB of it),
    a folder: each one error naming it, before it is opened."""
    import signal

    from gpunet.training.checkpoint import load_checkpoint
    from gpunet.training.history import read_metrics

    read = {"network": lambda p: gpunet.load(p, device="cpu"), "metrics": read_metrics,
            "checkpoint": load_checkpoint, "mnist": load_mnist}[reader]
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    folder = tmp_path / "folder"
    folder.mkdir()

    def hung(*_: object) -> None:
        raise AssertionError("the reader waits on the pipe")

    old = signal.signal(signal.SIGALRM, hung)
    try:
        for path in [pipe, Path("/dev/zero")] + ([folder] if reader != "mnist" else []):
            signal.alarm(20)  # a guard against a hang, not a measurement
            raised, peak = peak_of(lambda: read(path))
            signal.alarm(0)
            assert peak < SMALL_PEAK, (path, peak)
            assert isinstance(raised, ValueError) and str(path) in str(raised), raised
            assert "device or pipe" in str(raised) or "directory" in str(raised), raised
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
