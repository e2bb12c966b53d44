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
    """Load MNIST and split it as the book does.

    ``path`` is ``None`` for the bundled copy, a directory of the four IDX files
    (gzipped or not), or the book's ``mnist.pkl.gz`` (or a directory holding it).
    """
    if path is None:
        return _from_idx_dir(BUNDLED, "bundled MNIST", require_checksums=True)
    path = Path(path)
    if path.is_file():
        if path.name.endswith((".pkl.gz", ".pkl")):
            return _from_pickle(path)
        raise MNISTError(
            f"{path} is a file; give the directory holding the four MNIST IDX files, "
            f"or the book's mnist.pkl.gz."
        )
    if not path.is_dir():
        if path.exists():  # a device (/dev/zero never ends) or a pipe
            raise MNISTError(f"{path} is a device or pipe, not MNIST data.")
        raise MNISTError(f"MNIST data path {path} does not exist.")
    if not _find(path, IDX_FILES["train_images"]) and (path / "mnist.pkl.gz").is_file():
        return _from_pickle(path / "mnist.pkl.gz")
    return _from_idx_dir(path, f"MNIST from {path}", require_checksums=False)


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
    if len(train_y) <= TRAINING_SIZE:
        raise MNISTError(
            f"{directory}: the training files hold {len(train_y)} images; the book's split "
            f"needs more than {TRAINING_SIZE} (50,000 to train, the rest to validate)."
        )
    return MNIST(
        training=(train_X[:TRAINING_SIZE], train_y[:TRAINING_SIZE]),
        validation=(train_X[TRAINING_SIZE:], train_y[TRAINING_SIZE:]),
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
    if labels.size and labels.max() > 9:
        raise MNISTError(f"{directory}: {part} labels go up to {labels.max()}; digits are 0..9.")
    return labels


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
