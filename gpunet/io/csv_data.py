"""A data set in CSV files, the label in the first column, read as hostile input.

The common MNIST CSVs have this form: Kaggle's ``train.csv`` (a header line
``label,pixel0,...``), and the ``mnist_train.csv`` / ``mnist_test.csv`` pair (with or
without a header line). Each line is one example: its label (a whole number), then its
inputs. A first line whose first field is not a number is a header, and skipped.

Nothing is allocated before it is checked: a first pass reads the file a line at a time
(each at most :data:`MAX_LINE_BYTES`) and counts its examples and fields, every line
with as many fields as the first, the counts within
:data:`~gpunet.io.npz.MAX_EXAMPLES` examples and :data:`~gpunet.io.npz.MAX_VALUES`
values; only then is one array of that size made and filled, a few thousand lines at a
time. A file whose inputs are all written as whole numbers (no ``.`` or exponent) holds
integer pixels, which must lie in 0..255 and are scaled as MNIST's are; any other is
taken as given.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Iterator, Optional, Union

import numpy as np

from ..backends.hints import spelled
from .fields import check_regular_file
from .npz import MAX_EXAMPLES, MAX_VALUES

MAX_LINE_BYTES = 4 * 2**20
"""The longest line read (an example of 784 floats written in full takes some 20 KB)."""

CHUNK_LINES = 4096
"""Lines parsed at a time (the array is filled in place, chunk by chunk)."""

PAIRS = (("train.csv", "test.csv"), ("mnist_train.csv", "mnist_test.csv"))
"""The file names a folder of CSVs may hold: the training file and the test file."""


class CsvError(ValueError):
    """A CSV file gpunet cannot take as a data set; the message names it."""


class Scan:
    """What the first pass found: the header (``None``: none), the examples, the
    fields per line, whether any input is written as a float."""

    def __init__(self) -> None:
        self.header: Optional[bytes] = None
        self.header_line = 0  # its line number (0: none)
        self.rows = 0
        self.fields = 0
        self.floats = False


def find_pair(directory: Path) -> Optional[tuple[Path, Path]]:
    """The training and test CSV files of ``directory`` (:data:`PAIRS`), if it holds
    a pair; a training file alone is an error saying what is missing."""
    for train, test in PAIRS:
        if (directory / train).is_file():
            if not (directory / test).is_file():
                raise CsvError(f"{directory} holds {train} but no {test}: " + spelled(
                    f"read the training file itself ({directory / train}) and hold out "
                    "part of it for evaluation, or give its test set apart.",
                    f"give the training file itself (--data {directory / train}) with its "
                    "test set named apart (--test-data PATH), or hold out part of it "
                    "(--validation N --evaluate validation)."))
            return directory / train, directory / test
    return None


def read_csv(path: Union[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """``(X, labels)`` of a CSV file, the label in its first column: ``X`` float32
    scaled to [0, 1] for integer pixels, float64 as given for floats; labels int64.
    Checked before anything is allocated (module docstring); every problem is a
    :class:`CsvError` naming the file and the line."""
    path = Path(path)
    check_regular_file(path, "data file")
    try:
        with open(path, "rb") as f:
            scan = _scan(f, path)
            f.seek(0)
            table = _parse(f, scan, path)
    except OSError as exc:
        raise CsvError(f"cannot read {path} ({exc.strerror or exc}).") from None
    return _inputs(table[:, 1:], path, scan), _labels(table[:, 0], path)


def csv_width(path: Union[str, Path]) -> int:
    """The inputs per example of the CSV file ``path``, from its first lines alone
    (for ``--sizes auto``)."""
    path = Path(path)
    check_regular_file(path, "data file")
    with open(path, "rb") as f:
        for _, line in _lines(f, path):
            if not _is_header(line):
                return line.count(b",")
    raise CsvError(f"{path} holds no examples.")


# ------------------------------------------------------------ the first pass
def _lines(f: BinaryIO, path: Path) -> Iterator[tuple[int, bytes]]:
    """The file's non-empty lines with their numbers, each at most
    :data:`MAX_LINE_BYTES` (a longer one is refused before it is read further)."""
    number = 0
    while True:
        line = f.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES:
            raise CsvError(f"{path}, line {number}: longer than {MAX_LINE_BYTES:,} bytes; "
                           "is this a CSV file of examples?")
        if number == 1:  # Excel's "CSV UTF-8" starts with a byte order mark
            line = line.removeprefix(b"\xef\xbb\xbf")
        line = line.strip()
        if line:
            yield number, line


def _is_header(line: bytes) -> bool:
    first = line.split(b",", 1)[0].strip().strip(b'"')
    try:
        float(first)
    except ValueError:
        return True
    return False


def _scan(f: BinaryIO, path: Path) -> Scan:
    """Count the examples and fields, each line as wide as the first, within limits."""
    scan = Scan()
    for number, line in _lines(f, path):
        fields = line.count(b",") + 1
        if scan.rows == 0 and scan.header is None and _is_header(line):
            scan.header, scan.header_line = line, number
            continue
        if scan.rows == 0:
            if fields < 2:
                raise CsvError(f"{path}, line {number}: one field; each line should be a "
                               "label, then the example's inputs, separated by commas.")
            scan.fields = fields
        elif fields != scan.fields:
            raise CsvError(f"{path}, line {number}: {fields} fields, where the first "
                           f"example has {scan.fields}; every line must have as many.")
        scan.rows += 1
        if scan.rows > MAX_EXAMPLES or scan.rows * scan.fields > MAX_VALUES:
            raise CsvError(f"{path}: more than {MAX_EXAMPLES:,} examples or "
                           f"{MAX_VALUES:,} values; gpunet reads data sets up to that size.")
        if not scan.floats:
            inputs = line.split(b",", 1)[1]
            scan.floats = b"." in inputs or b"e" in inputs or b"E" in inputs
    if scan.rows == 0:
        raise CsvError(f"{path} holds no examples (only a header, or nothing).")
    return scan


# ------------------------------------------------------------ the second pass
def _parse(f: BinaryIO, scan: Scan, path: Path) -> np.ndarray:
    """The examples as one ``(rows, fields)`` array (float32 where every value is a
    whole number, which float32 holds exactly up to 2**24; else float64)."""
    dtype = np.float64 if scan.floats else np.float32
    table = np.empty((scan.rows, scan.fields), dtype=dtype)
    row, first = 0, None
    chunk: list[str] = []
    lines = ((n, line) for n, line in _lines(f, path) if n != scan.header_line)
    for number, line in lines:
        if row + len(chunk) >= scan.rows:
            raise CsvError(f"{path} changed while it was read (it has more lines now).")
        if first is None:
            first = number
        chunk.append(line.decode("latin-1"))
        if len(chunk) == CHUNK_LINES:
            row = _fill(table, row, chunk, first, path)
            chunk, first = [], None
    if chunk:
        row = _fill(table, row, chunk, first or 0, path)
    if row != scan.rows:
        raise CsvError(f"{path} changed while it was read (it has fewer lines now).")
    return table


def _fill(table: np.ndarray, row: int, chunk: list[str], first: int, path: Path) -> int:
    """Parse ``chunk`` into ``table`` from ``row``; the next row."""
    try:
        values = np.loadtxt(chunk, delimiter=",", dtype=table.dtype, ndmin=2)
    except ValueError as exc:
        raise CsvError(f"{path}, near line {first}: {exc}; each field must be a number."
                       ) from None
    if values.shape[1] != table.shape[1]:
        raise CsvError(f"{path} changed while it was read (its lines have other widths now).")
    table[row:row + len(values)] = values
    return row + len(values)


def _labels(column: np.ndarray, path: Path) -> np.ndarray:
    """The first column as integer labels: whole numbers from 0."""
    bad = ~np.isfinite(column) | (column < 0) | (column != np.round(column))
    if bad.any():
        i = int(np.argmax(bad))
        raise CsvError(f"{path}: example {i + 1} has the label {float(column[i]):g}; the first "
                       "column holds labels, whole numbers from 0 (is the label column "
                       "missing? Kaggle's test.csv has none).")
    labels: np.ndarray = column.astype(np.int64)
    return labels


def _inputs(X: np.ndarray, path: Path, scan: Scan) -> np.ndarray:
    """The inputs as the network takes them: integer pixels (0..255) scaled to [0, 1]
    as MNIST's are; floats as given."""
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():  # "nan" and "inf" are read as numbers, and are no inputs
        i = int(np.argmin(finite))
        raise CsvError(f"{path}: example {i + 1} has NaN or infinite inputs; every input "
                       "must be a finite number (clean or drop that line).")
    if scan.floats:
        return np.ascontiguousarray(X)
    if X.size and (X.min() < 0 or X.max() > 255):
        raise CsvError(f"{path}: its inputs are whole numbers from {X.min():g} to "
                       f"{X.max():g}; integer inputs are pixels, 0 to 255 (scaled as "
                       "MNIST's are). Write other inputs as floats (1.0), which are taken "
                       "as given.")
    out = np.ascontiguousarray(X)
    out /= 255.0
    return out

