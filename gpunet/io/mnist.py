"""MNIST: the bundled copy, a user's IDX files, or the book's ``mnist.pkl.gz``.

:func:`load_mnist` returns the book's split (chapter 1, "Implementing our network to classify digits"): the first 50,000 training
images train, the last 10,000 validate, the 10,000 t10k images test. Images are float32
rows of 784 pixels in [0, 1] (ink = 1), labels int64 digits.

The bundled files are checked against the SHA-256 of their decompressed contents
(``RAW-SHA256SUMS``, shipped beside them); a user's directory is checked the same way
when it holds a ``RAW-SHA256SUMS``, and always for the IDX structure. Every problem is
reported as a :class:`MNISTError` (a ``ValueError``) naming the file and what is wrong.
Nothing is inflated before it is checked: each IDX header's shape against the limits
(:data:`MAX_EXAMPLES` 28×28 images, the labels as many as the images), then exactly the
bytes it declares, a file that goes on past them refused; the book's pickle is read by
an unpickler that builds NumPy arrays and tuples only, through a stream that refuses to
go past :data:`MAX_PICKLE_BYTES`.

:func:`load_data`, :func:`load_data_wrapper` and :func:`vectorized_result` are the
book's ``mnist_loader`` interface (``import gpunet as mnist_loader``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import math
import os
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional, Union, cast

import numpy as np

from .datasets import one_hot

BUNDLED = Path(__file__).parent.parent / "data" / "mnist"
TRAINING_SIZE = 50_000  # the rest of the 60,000 training images validate

# role -> (standard IDX name, alternative spelling some mirrors use)
IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}

Split = tuple[np.ndarray, np.ndarray]


class MNISTError(ValueError):
    """A missing, truncated, corrupt or malformed MNIST file."""


@dataclass(frozen=True)
class MNIST:
    """The three parts of the book's split, each ``(images, labels)``."""

    training: Split
    validation: Split
    test: Split
    source: str

    def describe(self) -> str:
        return (f"{self.source}: {len(self.training[1])} training, "
                f"{len(self.validation[1])} validation, {len(self.test[1])} test images")


def load_mnist(path: Union[str, Path, None] = None) -> MNIST:
    """Load MNIST (or a data set of another form) and split it as the book does.

    ``path`` is ``None`` for the bundled copy, or:

    * a directory of the four IDX files (gzipped or not): MNIST, or any set of the same
      form (Fashion-MNIST, KMNIST), split as the book splits MNIST where it has more
      than 50,000 training images, else all of them training;
    * the book's ``mnist.pkl.gz`` (or a directory holding it);
    * an ``.npz`` archive with Keras' arrays ``x_train``, ``y_train`` (and ``x_test``,
      ``y_test``): :mod:`gpunet.io.npz`;
    * a CSV file, the label in the first column (the training set), or a directory
      holding ``train.csv`` and ``test.csv`` (or ``mnist_train.csv`` and
      ``mnist_test.csv``): :mod:`gpunet.io.csv_data`.

    Integer pixels (0..255) are scaled to [0, 1] as MNIST's are; float inputs are
    taken as given. A set without a validation part has an empty one (split one off
    with :func:`split_validation`); a single training file has an empty test part.
    """
    if path is None:
        return _from_idx_dir(BUNDLED, "bundled MNIST", require_checksums=True)
    path = Path(path)
    if path.is_file():
        return _from_file(path)
    if not path.is_dir():
        if path.exists():  # a device (/dev/zero never ends) or a pipe
            raise MNISTError(f"{path} is a device or pipe, not MNIST data.")
        raise MNISTError(f"MNIST data path {path} does not exist.")
    if not _find(path, IDX_FILES["train_images"]):
        if (path / "mnist.pkl.gz").is_file():
            return _from_pickle(path / "mnist.pkl.gz")
        pair = _csv_pair(path)
        if pair is not None:
            return _from_csv(*pair)
    return _from_idx_dir(path, f"MNIST from {path}", require_checksums=False)


FORMS = ("a directory holding the four IDX files (or train.csv and test.csv), the book's "
         "mnist.pkl.gz, an .npz archive (x_train, y_train, x_test, y_test) or a CSV file "
         "(the label first)")
"""What ``--data`` (and :func:`load_mnist`) take, as errors name them."""


def _from_file(path: Path) -> MNIST:
    """A data file, by its name (the book's pickle, a CSV file) or its content (an
    ``.npz`` archive starts as a zip file does)."""
    if path.name.endswith((".pkl.gz", ".pkl")):
        return _from_pickle(path)
    if path.suffix.lower() == ".csv":
        return _from_csv(path, None)
    with open(path, "rb") as f:
        magic = f.read(4)
    if path.suffix.lower() == ".npz" or magic == b"PK\x03\x04":
        return _from_npz(path)
    raise MNISTError(f"{path} is a file gpunet does not read as data; give {FORMS}.")


def _csv_pair(directory: Path) -> Optional[tuple[Path, Path]]:
    from .csv_data import CsvError, find_pair

    try:
        return find_pair(directory)
    except CsvError as exc:
        raise MNISTError(str(exc)) from None


def _from_csv(train: Path, test: Optional[Path]) -> MNIST:
    """A training CSV file (and a test one): label first, one example a line."""
    from .csv_data import CsvError, read_csv

    try:
        training = read_csv(train)
        tested = read_csv(test) if test is not None else None
    except CsvError as exc:
        raise MNISTError(str(exc)) from None
    if tested is not None:
        _same_width(training[0], tested[0], train, test)
    where = f"{train.parent}" if test is not None else f"{train}"
    return MNIST(training, _none_like(training), tested or _none_like(training),
                 source=f"CSV {where}")


def _from_npz(path: Path) -> MNIST:
    """Keras' arrays of an ``.npz`` archive (:mod:`gpunet.io.npz`)."""
    from .datasets import pixels_as_inputs
    from .npz import NpzError, read_npz

    try:
        arrays = read_npz(path)
    except NpzError as exc:
        raise MNISTError(str(exc)) from None

    def part(name: str) -> Split:
        try:
            X = pixels_as_inputs(arrays[f"x_{name}"], f"{path}: x_{name}")
        except ValueError as exc:
            raise MNISTError(str(exc)) from None
        y = arrays[f"y_{name}"]
        if y.ndim == 3:  # the book's (k, 1) columns
            y = y.reshape(y.shape[0], y.shape[1])
        return _checked(X, y, path, name)

    training = part("train")
    test = part("test") if "x_test" in arrays else _none_like(training)
    return MNIST(training, _none_like(training), test, source=f".npz {path}")


def _checked(X: np.ndarray, y: np.ndarray, path: Path, part: str) -> Split:
    """An archive's ``x_PART`` and ``y_PART`` as read, refused (naming the file and the
    array) where an input is NaN or infinite, a label is not a whole number from 0 or a
    target vector not finite: the library would refuse them only as training starts,
    without naming the file."""
    finite = np.isfinite(X).all(axis=1) if X.dtype.kind == "f" else None
    if finite is not None and not finite.all():
        i = int(np.argmin(finite))
        raise MNISTError(f"{path}: x_{part}[{i}] holds NaN or infinite inputs; every input "
                         "must be a finite number (clean or drop that example).")
    if y.ndim == 1:
        bad = y < 0
        if y.dtype.kind == "f":
            bad |= ~np.isfinite(y) | (y != np.round(y))
    else:
        bad = ~np.isfinite(y).all(axis=1) if y.dtype.kind == "f" else np.zeros(len(y), bool)
    if bad.any():
        i = int(np.argmax(bad))
        what = "label" if y.ndim == 1 else "target vector"
        raise MNISTError(f"{path}: y_{part}[{i}] is {y[i].tolist()}, not a {what} (labels are "
                         "whole numbers from 0, target vectors finite numbers).")
    return X, y


def _none_like(split: Split) -> Split:
    """An empty part with ``split``'s inputs per example."""
    X, y = split
    return X[:0], y[:0]


def _same_width(train: np.ndarray, test: np.ndarray, train_path: Any, test_path: Any) -> None:
    if train.shape[1] != test.shape[1]:
        raise MNISTError(
            f"{test_path} has {test.shape[1]} inputs per example but {train_path} "
            f"{train.shape[1]}; a test set must match its training set (Kaggle's "
            "test.csv has no labels: it cannot be scored; hold out part of the training "
            "data instead).")


def input_width(path: Union[str, Path, None] = None) -> int:
    """The inputs per example of the data set :func:`load_mnist` would read from
    ``path``, from its headers alone (an IDX images header, an ``.npz`` archive's
    ``x_train`` header, a CSV file's first lines; the book's pickle is 784 wide). A
    path :func:`load_mnist` cannot read is its error."""
    from .csv_data import csv_width
    from .npz import archive_width

    if path is None:
        return IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    path = Path(path)
    if path.is_dir() and _find(path, IDX_FILES["train_images"]):
        dims = _idx_dims(cast(Path, _find(path, IDX_FILES["train_images"])), 3)
        return dims[1] * dims[2]
    if path.is_dir() and (path / "mnist.pkl.gz").is_file():
        return 784
    if path.is_dir():
        pair = _csv_pair(path)
        if pair is not None:
            return csv_width(pair[0])
    if path.is_file() and path.name.endswith((".pkl.gz", ".pkl")):
        return 784
    if path.is_file() and path.suffix.lower() == ".csv":
        return csv_width(path)
    width = archive_width(path) if path.is_file() else None
    return width if width is not None else load_mnist(path).training[0].shape[1]


def data_files(path: Union[str, Path]) -> list[Path]:
    """The files :func:`load_mnist` may read for ``path``: the file itself, or the data
    files a directory holds (IDX files gzipped or not, their checksums, the book's
    pickle, CSV pairs), so that a run's outputs can be checked not to replace them."""
    from .csv_data import PAIRS

    path = Path(path)
    if not path.is_dir():
        return [path]
    names = [name + gz for spellings in IDX_FILES.values() for name in spellings
             for gz in ("", ".gz")]
    names += ["RAW-SHA256SUMS", "mnist.pkl.gz", *(name for pair in PAIRS for name in pair)]
    return [path / name for name in names if os.path.lexists(path / name)]


def split_validation(data: MNIST, count: Union[int, float], what: str = "validation") -> MNIST:
    """``data`` with its last ``count`` training examples (a fraction in (0, 1): that
    share of them) as its validation part, as the book keeps MNIST's last 10,000
    training images to validate; refused where it has a validation part already."""
    n = len(data.training[1])
    if len(data.validation[1]):
        raise MNISTError(f"{what}: {data.source} has its own validation set "
                         f"({len(data.validation[1])} examples); leave {what} out.")
    if isinstance(count, float):
        if not 0 < count < 1:
            raise MNISTError(f"{what} {count}: give a count of examples, or a fraction "
                             "between 0 and 1.")
        count = max(1, round(count * n))
    if not 1 <= count < n:
        raise MNISTError(f"{what} {count}: the training data has {n} examples; hold out "
                         f"between 1 and {n - 1}.")
    X, y = data.training
    return MNIST((X[:n - count], y[:n - count]), (X[n - count:], y[n - count:]), data.test,
                 source=data.source)


def with_test(data: MNIST, path: Union[str, Path], what: str = "test data") -> MNIST:
    """``data`` with the test set of ``path`` (a CSV file, label first, or an ``.npz``
    archive's ``x_test`` and ``y_test``, else its ``x_train`` and ``y_train``);
    refused where ``data`` has a test part already."""
    if len(data.test[1]):
        raise MNISTError(f"{what}: {data.source} has its own test set "
                         f"({len(data.test[1])} examples); leave {what} out.")
    tested = load_mnist(path)
    test = tested.test if len(tested.test[1]) else tested.training
    _same_width(data.training[0], test[0], data.source, path)
    return MNIST(data.training, data.validation, test,
                 source=f"{data.source}, tested on {path}")


def load_data_wrapper(
    path: Union[str, Path, None] = None,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, int]],
           list[tuple[np.ndarray, int]]]:
    """The book's ``mnist_loader.load_data_wrapper()``: lists of ``(x, y)`` pairs.

    Training pairs hold a ``(784, 1)`` image and a one-hot ``(10, 1)`` target;
    validation and test pairs an image and its digit. :func:`load_mnist`'s arrays
    are faster to train on; this is for code written against the book.
    """
    data = load_mnist(path)

    def targets(split: Split) -> list[tuple[np.ndarray, np.ndarray]]:
        X, labels = split
        return [(x.reshape(784, 1), y.reshape(10, 1)) for x, y in zip(X, one_hot(labels, 10))]

    def digits(split: Split) -> list[tuple[np.ndarray, int]]:
        return [(x.reshape(784, 1), int(d)) for x, d in zip(*split)]

    return targets(data.training), digits(data.validation), digits(data.test)


def load_data(path: Union[str, Path, None] = None) -> tuple[Split, Split, Split]:
    """The book's ``mnist_loader.load_data()``: ``(training, validation, test)``.

    Each part is a pair ``(images, labels)`` as the book's ``mnist.pkl.gz`` holds it:
    images a float32 array of shape ``(n, 784)`` (one image per row, pixels in [0, 1]),
    labels an int64 array of digits; 50,000, 10,000 and 10,000 images. ``path`` is
    :func:`load_mnist`'s (``None``: the bundled copy).
    """
    data = load_mnist(path)
    return data.training, data.validation, data.test


def vectorized_result(j: int) -> np.ndarray:
    """The book's ``vectorized_result(j)``: a ``(10, 1)`` column, 1.0 at row ``j``, 0 elsewhere.

    The desired output of the network for the digit ``j`` (``mnist_loader.py`` and
    ``network2.py``).
    """
    if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 0 <= j <= 9:
        raise ValueError(f"vectorized_result takes a digit 0..9, got {j!r}.")
    e = np.zeros((10, 1))
    e[j] = 1.0
    return e


# ----------------------------------------------------------------- IDX files
MAX_EXAMPLES = 1_000_000
"""The most examples an IDX file may declare (MNIST has 70,000; EMNIST's largest split
some 700,000): checked in its header, before anything is inflated."""

IMAGE_SHAPE = (28, 28)
"""The shape of an MNIST image, as an IDX images file declares it."""

MAX_SUMS_BYTES = 64 * 1024
"""The largest checksum file read (four lines need some 360 bytes)."""

MAX_PICKLE_BYTES = 512 * 2**20
"""The most the book's ``mnist.pkl.gz`` may inflate to (it inflates to some 210 MiB):
the unpickler reads through a stream that refuses a read past it before it is made."""

GZIP_MAGIC = b"\x1f\x8b"


def _from_idx_dir(directory: Path, source: str, require_checksums: bool) -> MNIST:
    sums = _read_sums(directory / "RAW-SHA256SUMS")
    if require_checksums and not sums:
        raise MNISTError(f"{directory / 'RAW-SHA256SUMS'} is missing; reinstall gpunet.")
    files = {}
    for role, names in IDX_FILES.items():
        file = _find(directory, names)
        if file is None:
            raise MNISTError(
                f"MNIST file not found in {directory}: expected {names[0]} or {names[0]}.gz"
            )
        files[role] = file
    # Every header first: what each file declares is checked (and the images' count
    # against the labels') before any file is inflated.
    dims = {role: _idx_dims(file, _ndim(role)) for role, file in files.items()}
    for part in ("train", "test"):
        n_images, n_labels = dims[f"{part}_images"][0], dims[f"{part}_labels"][0]
        if n_images != n_labels:
            raise MNISTError(
                f"{directory}: {part} has {n_images} images but {n_labels} labels; "
                f"the image and label files do not belong together."
            )
    arrays = {role: _read_idx(files[role], dims[role], sums.get(IDX_FILES[role][0]))
              for role in sorted(files, key=lambda r: math.prod(dims[r]))}  # small first
    train_X, train_y = _images(arrays, "train"), _labels(arrays, "train", directory)
    test_X, test_y = _images(arrays, "test"), _labels(arrays, "test", directory)
    split = TRAINING_SIZE if len(train_y) > TRAINING_SIZE else len(train_y)
    return MNIST(  # the book's split; a smaller set trains on all of its training images
        training=(train_X[:split], train_y[:split]),
        validation=(train_X[split:], train_y[split:]),
        test=(test_X, test_y),
        source=source,
    )


def _ndim(role: str) -> int:
    return 3 if role.endswith("images") else 1


def _find(directory: Path, names: tuple[str, ...]) -> Optional[Path]:
    for name in names:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_sums(path: Path) -> dict[str, str]:
    """``RAW-SHA256SUMS`` (``sha256sum``'s lines: a digest, then a file name), if there
    is one; a file that is not such lines (binary, too large, a malformed line, a name
    given two digests) is an error naming it, never a checksum silently skipped."""
    if not path.is_file():
        return {}
    problem = "it should hold lines 'SHA256  FILENAME' as sha256sum writes them"
    try:
        size = path.stat().st_size
        if size > MAX_SUMS_BYTES:
            raise MNISTError(f"{path} is not a checksum file: {size:,} bytes, more than "
                             f"{MAX_SUMS_BYTES:,}; {problem}.")
        content = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise MNISTError(f"{path} is not a checksum file: it is not UTF-8 text (a binary "
                         f"file?); {problem}.") from None
    except OSError as exc:
        raise MNISTError(f"cannot read {path} ({exc.strerror or exc}).") from None
    sums: dict[str, str] = {}
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.strip().split(None, 1)
        digest = parts[0].lower()
        if (len(parts) != 2 or len(digest) != 64
                or any(c not in "0123456789abcdef" for c in digest)):
            raise MNISTError(f"{path}, line {number}: {line[:80]!r} is not a checksum "
                             f"line; {problem}.")
        name = parts[1].lstrip("*")
        if sums.get(name, digest) != digest:
            raise MNISTError(f"{path}, line {number}: {name} has two different "
                             "checksums.")
        sums[name] = digest
    return sums


@contextlib.contextmanager
def _open(file: Path) -> Iterator[BinaryIO]:
    """``file`` as a stream of its contents: inflated as it is read if it is gzip
    (detected by its magic bytes), else as it is."""
    with open(file, "rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        if magic != GZIP_MAGIC:
            if file.suffix == ".gz":
                raise MNISTError(f"{file} is not a gzip file; replace it with the original "
                                 ".gz.")
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            yield cast(BinaryIO, stream)


@contextlib.contextmanager
def _inflating(file: Path) -> Iterator[None]:
    """A damaged gzip stream read in the block is an error naming ``file``."""
    try:
        yield
    except EOFError:
        raise MNISTError(f"{file} is truncated (the gzip stream ends early); download it "
                         "again.") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise MNISTError(f"{file} is a corrupt gzip file ({exc}); download it "
                         "again.") from None


def _read_at_most(file: Path, stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes of ``stream`` (fewer at its end)."""
    with _inflating(file):
        return stream.read(n)


def _idx_dims(file: Path, ndim: int) -> tuple[int, ...]:
    """The shape an IDX file of ``ndim`` dimensions declares in its header, checked
    against the limits (:data:`MAX_EXAMPLES`, :data:`IMAGE_SHAPE`); nothing past the
    header is read."""
    size = 4 + 4 * ndim
    with _open(file) as stream:
        header = _read_at_most(file, stream, size)
    if len(header) < size:
        raise MNISTError(f"{file} is too short to be an IDX file ({len(header)} bytes); it "
                         "is truncated.")
    if header[0] != 0 or header[1] != 0 or header[2] != 0x08 or header[3] != ndim:
        kind = "images (magic 2051)" if ndim == 3 else "labels (magic 2049)"
        raise MNISTError(
            f"{file} is not an IDX file of {kind}: its header is {header[:4].hex()}. "
            f"Check that the file names match their contents."
        )
    dims = tuple(int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if dims[0] > MAX_EXAMPLES or (ndim == 3 and dims[1:] != IMAGE_SHAPE):
        what = (f"{dims[0]:,} examples (at most {MAX_EXAMPLES:,})" if dims[0] > MAX_EXAMPLES
                else f"images of {dims[1]}x{dims[2]} pixels (MNIST's are 28x28)")
        raise MNISTError(f"{file}: its header declares shape {dims}, {what}; it is not an "
                         "MNIST file, or it is corrupt.")
    return dims


def _read_idx(file: Path, dims: tuple[int, ...], checksum: Optional[str]) -> np.ndarray:
    """The IDX file's unsigned bytes in the shape ``dims`` its header declares: exactly
    the header and ``prod(dims)`` bytes are inflated, and a file that goes on past them
    is refused (a file that inflates to gigabytes stops there)."""
    header = 4 + 4 * len(dims)
    expected = header + math.prod(dims)
    with _open(file) as stream:
        raw = _read_at_most(file, stream, expected)
        more = _read_at_most(file, stream, 1) if len(raw) == expected else b""
    if len(raw) != expected or more:
        holds = (f"it holds {len(raw)} bytes" if not more
                 else "it goes on past them")
        problem = "truncated" if not more else "longer than its header says"
        raise MNISTError(
            f"{file} is {problem}: its header declares shape {dims} ({expected} bytes) "
            f"but {holds}."
        )
    if checksum is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != checksum:
            raise MNISTError(
                f"{file}: checksum mismatch (SHA-256 of the decompressed file is "
                f"{digest}, expected {checksum}); the file is corrupt or not the "
                f"original MNIST. Replace it with a fresh copy."
            )
    array: np.ndarray = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    return array


def _images(arrays: dict[str, np.ndarray], part: str) -> np.ndarray:
    images = arrays[f"{part}_images"]
    X = images.reshape(images.shape[0], -1).astype(np.float32)
    X /= 255.0
    return X


def _labels(arrays: dict[str, np.ndarray], part: str, directory: Path) -> np.ndarray:
    labels: np.ndarray = arrays[f"{part}_labels"].astype(np.int64)
    n_images = arrays[f"{part}_images"].shape[0]
    if len(labels) != n_images:
        raise MNISTError(
            f"{directory}: {part} has {n_images} images but {len(labels)} labels; "
            f"the image and label files do not belong together."
        )
    return labels  # 0..255: the network's output layer must have a neuron for each


# -------------------------------------------------------- the book's pickle
class _ArraysOnly(pickle.Unpickler):
    """Unpickle NumPy arrays and tuples, nothing else (a pickle can run code)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core"):  # NumPy 2 renamed numpy.core
            module = "numpy._core" + module[len("numpy.core"):]
            try:
                __import__(module)
            except ImportError:
                module = "numpy.core" + module[len("numpy._core"):]
        return super().find_class(module, name)


class _Capped:
    """A stream read by the unpickler that refuses to hand out more than ``limit``
    bytes in all: a read that would pass it is refused before it is made, so a pickle
    that declares a huge object, or a gzip stream that inflates without end, stops
    there."""

    def __init__(self, stream: BinaryIO, limit: int, file: Path) -> None:
        self.stream, self.left, self.file = stream, limit, file

    def _take(self, n: int) -> int:
        if n < 0 or n > self.left:
            n = self.left + 1  # read one byte past the limit: is there more?
        return n

    def _check(self, data: bytes) -> bytes:
        if len(data) > self.left:
            raise MNISTError(f"{self.file} holds more than {MAX_PICKLE_BYTES // 2**20} MiB "
                             "(the book's mnist.pkl.gz inflates to some 210 MiB); it is not "
                             "the book's file.")
        self.left -= len(data)
        return data

    def read(self, n: int = -1) -> bytes:
        return self._check(_read_at_most(self.file, self.stream, self._take(n)))

    def readline(self, n: int = -1) -> bytes:
        with _inflating(self.file):
            return self._check(self.stream.readline(self._take(n)))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer).cast("B")))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)


def _from_pickle(file: Path) -> MNIST:
    with _open(file) as stream:
        capped = _Capped(stream, MAX_PICKLE_BYTES, file)
        try:
            parts = _ArraysOnly(capped, encoding="latin1").load()
            rest = capped.read(1)
        except MNISTError:
            raise
        except Exception as exc:
            raise MNISTError(f"{file} is not the book's mnist.pkl.gz ({exc}).") from None
    if rest:
        raise MNISTError(f"{file} goes on past the book's pickle; it is not the book's "
                         "mnist.pkl.gz.")
    try:
        (trX, trY), (vaX, vaY), (teX, teY) = parts
        splits = [_check_pickled(X, y) for X, y in ((trX, trY), (vaX, vaY), (teX, teY))]
    except (TypeError, ValueError) as exc:
        raise MNISTError(
            f"{file} does not hold the book's three (images, labels) pairs ({exc})."
        ) from None
    training, validation, test = splits
    return MNIST(training, validation, test, source=f"mnist.pkl.gz from {file}")


def _check_pickled(X: Any, y: Any) -> Split:
    X, y = np.asarray(X, dtype=np.float32), np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 784 or y.shape != (X.shape[0],):
        raise ValueError(f"shapes {X.shape} and {y.shape}, expected (n, 784) and (n,)")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() > 9:
        raise ValueError("labels must be digits 0..9")
    if not np.isfinite(X).all() or X.min() < 0 or X.max() > 1:
        raise ValueError("pixels must lie in [0, 1]")
    return X, y.astype(np.int64)
