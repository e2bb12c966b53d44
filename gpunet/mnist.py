"""MNIST: the bundled copy, a user's IDX files, or the book's ``mnist.pkl.gz``.

:func:`load_mnist` returns the book's split (chapter 1, "Implementing our network to classify digits"): the first 50,000 training
images train, the last 10,000 validate, the 10,000 t10k images test. Images are float32
rows of 784 pixels in [0, 1] (ink = 1), labels int64 digits.

The bundled files are checked against the SHA-256 of their decompressed contents
(``RAW-SHA256SUMS``, shipped beside them); a user's directory is checked the same way
when it holds a ``RAW-SHA256SUMS``, and always for the IDX structure. Every problem is
reported as a :class:`MNISTError` (a ``ValueError``) naming the file and what is wrong.

:func:`load_data`, :func:`load_data_wrapper` and :func:`vectorized_result` are the
book's ``mnist_loader`` interface (``import gpunet as mnist_loader``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

BUNDLED = Path(__file__).parent / "data" / "mnist"
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
        eye = np.eye(10)
        return [(x.reshape(784, 1), eye[d].reshape(10, 1)) for x, d in zip(*split)]

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
def _from_idx_dir(directory: Path, source: str, require_checksums: bool) -> MNIST:
    sums = _read_sums(directory / "RAW-SHA256SUMS")
    if require_checksums and not sums:
        raise MNISTError(f"{directory / 'RAW-SHA256SUMS'} is missing; reinstall gpunet.")
    arrays = {}
    for role, names in IDX_FILES.items():
        file = _find(directory, names)
        if file is None:
            raise MNISTError(
                f"MNIST file not found in {directory}: expected {names[0]} or {names[0]}.gz"
            )
        raw = _read_bytes(file)
        expected = sums.get(names[0])
        if expected is not None:
            digest = hashlib.sha256(raw).hexdigest()
            if digest != expected:
                raise MNISTError(
                    f"{file}: checksum mismatch (SHA-256 of the decompressed file is "
                    f"{digest}, expected {expected}); the file is corrupt or not the "
                    f"original MNIST. Replace it with a fresh copy."
                )
        arrays[role] = _parse_idx(raw, file, ndim=3 if role.endswith("images") else 1)
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


def _find(directory: Path, names: tuple[str, ...]) -> Optional[Path]:
    for name in names:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_sums(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def _read_bytes(file: Path) -> bytes:
    """The file's contents, decompressed if it is gzip (detected by its magic bytes)."""
    data = file.read_bytes()
    if data[:2] != b"\x1f\x8b":
        if file.suffix == ".gz":
            raise MNISTError(f"{file} is not a gzip file; replace it with the original .gz.")
        return data
    try:
        return gzip.decompress(data)
    except EOFError:
        raise MNISTError(f"{file} is truncated (the gzip stream ends early); download it again.") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise MNISTError(f"{file} is a corrupt gzip file ({exc}); download it again.") from None


def _parse_idx(raw: bytes, file: Path, ndim: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes with ``ndim`` dimensions."""
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MNISTError(f"{file} is too short to be an IDX file ({len(raw)} bytes); it is truncated.")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != ndim:
        kind = "images (magic 2051)" if ndim == 3 else "labels (magic 2049)"
        raise MNISTError(
            f"{file} is not an IDX file of {kind}: its header is {raw[:4].hex()}. "
            f"Check that the file names match their contents."
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(dims)  # exact: NumPy's int64 product would wrap
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "longer than its header says"
        raise MNISTError(
            f"{file} is {problem}: its header declares shape {dims} ({expected} bytes) "
            f"but it holds {len(raw)} bytes."
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


def _from_pickle(file: Path) -> MNIST:
    raw = _read_bytes(file)
    try:
        parts = _ArraysOnly(io.BytesIO(raw), encoding="latin1").load()
    except Exception as exc:
        raise MNISTError(f"{file} is not the book's mnist.pkl.gz ({exc}).") from None
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
