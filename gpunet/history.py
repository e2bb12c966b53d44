"""What ``Network.SGD`` returns: the book's tuple of four lists, one record per epoch behind it.

One vocabulary for every per-epoch record, in memory (:class:`History`) and on disk
(``gpunet train --metrics`` and ``gpunet sweep --metrics``, read back by ``gpunet
plot``): the keys of :data:`EPOCH_KEYS`, a sweep's rows with the ``run`` beside them. The metrics file is JSON Lines: a header record
(``{"gpunet_metrics": 1, ...}``: the run's settings, seed, device, versions, and which
data set ``evaluation_*`` is), then one record per epoch exactly as ``History`` holds
it. A resumed run appends a new header (with ``resumed_from_epoch``) and its epochs.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Union

EPOCH_KEYS = ("epoch", "train_seconds", "training_cost", "training_correct",
              "training_total", "evaluation_cost", "evaluation_correct",
              "evaluation_total")
"""The keys of a per-epoch record; those of unmonitored metrics are absent."""

METRICS_FORMAT = 1
"""Version of the metrics file's layout, in its header as ``gpunet_metrics``."""


class History(tuple[list[float], list[int], list[float], list[int]]):
    """What ``SGD`` returns: ``network2.py``'s tuple of four per-epoch lists, and more.

    It *is* the book's return value, a tuple of four lists (chapter 3's
    ``network2.py``)::

        evaluation_cost, evaluation_accuracy, training_cost, training_accuracy = history

    so everything a script does with the book's result works unchanged: indexing
    (``history[1]``), ``len(history) == 4``, ``history == (ev_cost, ev_acc, tr_cost,
    tr_acc)``, ``json.dump(history, f)`` (the same JSON as the book's), ``print``, and
    ``pickle`` (it pickles as the book's plain tuple, so the file loads anywhere,
    without gpunet). A list is empty when its metric was not monitored.

    gpunet's extras are attributes: ``records`` (one dict per epoch, with ``epoch``,
    ``train_seconds``, the wall time of the epoch's training with the device
    synchronised, and whichever of ``training_cost``, ``training_correct`` /
    ``training_total``, ``evaluation_cost``, ``evaluation_correct`` /
    ``evaluation_total`` were monitored), ``epochs`` (the epoch numbers),
    ``train_seconds`` and ``engine``. The four lists are views of the records kept in
    step by :meth:`append`; they are also named ``evaluation_cost``,
    ``evaluation_accuracy``, ``training_cost`` and ``training_accuracy``.
    """

    #: the record key behind each of the four lists, in the book's order
    COLUMNS = ("evaluation_cost", "evaluation_correct", "training_cost", "training_correct")

    records: list[dict[str, Any]]
    engine: str

    def __new__(cls, engine: str = "",
                records: Optional[Iterable[dict[str, Any]]] = None) -> "History":
        return super().__new__(cls, ([], [], [], []))

    def __init__(self, engine: str = "",
                 records: Optional[Iterable[dict[str, Any]]] = None) -> None:
        self.records = []
        #: the engine that ran the epochs (``"eager"``, ...), see :mod:`gpunet.engines`.
        self.engine = engine
        for record in records or []:
            self.append(dict(record))

    def append(self, record: dict[str, Any]) -> None:
        """Add an epoch's record, and its monitored values to the four lists."""
        self.records.append(record)
        columns: tuple[list[Any], ...] = self
        for column, key in zip(columns, self.COLUMNS):
            if key in record:
                column.append(record[key])

    def __reduce__(self) -> tuple[type, tuple[tuple[list[Any], ...]]]:
        """Pickle as the book's plain tuple of four lists (loads without gpunet)."""
        return tuple, (tuple(self),)

    def __copy__(self) -> "History":
        return History(self.engine, self.records)

    def __deepcopy__(self, memo: dict[int, Any]) -> "History":
        return History(self.engine, copy.deepcopy(self.records, memo))

    @property
    def evaluation_cost(self) -> list[float]:
        return self[0]

    @property
    def evaluation_accuracy(self) -> list[int]:
        return self[1]

    @property
    def training_cost(self) -> list[float]:
        return self[2]

    @property
    def training_accuracy(self) -> list[int]:
        return self[3]

    @property
    def epochs(self) -> list[int]:
        """The epoch numbers recorded, ``[0, 1, ...]`` (later ones for a resumed run)."""
        return [int(r["epoch"]) for r in self.records]

    @property
    def train_seconds(self) -> list[float]:
        return [r["train_seconds"] for r in self.records if "train_seconds" in r]

    @staticmethod
    def book_lines(record: dict[str, Any]) -> str:
        """The lines the book's programs print after an epoch."""
        j = record["epoch"]
        if "evaluation_correct" in record:
            lines = [f"Epoch {j}: {record['evaluation_correct']} / {record['evaluation_total']}"]
        else:
            lines = [f"Epoch {j} training complete"]
        if "training_cost" in record:
            lines.append(f"Cost on training data: {record['training_cost']}")
        if "training_correct" in record:
            lines.append(
                f"Accuracy on training data: {record['training_correct']} / {record['training_total']}"
            )
        if "evaluation_cost" in record:
            lines.append(f"Cost on evaluation data: {record['evaluation_cost']}")
        return "\n".join(lines)


@dataclass
class MetricsRun:
    """One run read from a metrics file: its header and its epochs."""

    header: dict[str, Any]
    history: History = field(default_factory=History)

    @property
    def evaluation_data(self) -> str:
        """The data set ``evaluation_*`` was measured on (``"test"``, ``"validation"``)."""
        return str(self.header.get("evaluation_data", "evaluation"))


def read_metrics(path: Union[str, "os.PathLike[str]"]) -> MetricsRun:
    """Read a ``--metrics`` file; a resumed run's segments join into one history.

    Where epochs repeat (a run interrupted after writing an epoch's record but before
    its checkpoint, then resumed) the later record wins. Raises ``ValueError`` naming
    the file when it is missing or not a gpunet metrics file.
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
    except FileNotFoundError:
        raise ValueError(f"metrics file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read metrics file {path} ({exc}).") from None
    header: Optional[dict[str, Any]] = None
    epochs: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise ValueError(f"{path}, line {number}: not JSON; is this a gpunet "
                             "--metrics file?") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}, line {number}: not a metrics record.")
        if "gpunet_metrics" in record:
            if header is None:
                header = record
            continue
        if "run" in record:
            raise ValueError(f"{path}, line {number}: a gpunet sweep row; read sweep files "
                             "with read_sweep_metrics.")
        if not isinstance(record.get("epoch"), int):
            raise ValueError(f"{path}, line {number}: a record without an epoch number; "
                             "is this a gpunet --metrics file?")
        epochs[record["epoch"]] = record
    if header is None and not epochs:
        raise ValueError(f"{path}: no records; is this a gpunet --metrics file?")
    return MetricsRun(header or {}, History(records=[epochs[j] for j in sorted(epochs)]))


OLD_SWEEP_KEYS = {f"{name}_{what}": f"evaluation_{what}"
                  for name in ("test", "validation") for what in ("correct", "total", "cost")}
"""Sweep rows written before sweeps took :data:`EPOCH_KEYS` (``test_correct``,
``validation_total``, ...): read as the ``evaluation_*`` keys they were."""


def is_sweep_metrics(path: Union[str, "os.PathLike[str]"]) -> bool:
    """Whether ``path`` holds ``gpunet sweep --metrics`` rows: a header that says
    ``sweep``, or (files written before sweeps had a header) a first row that names its
    ``run``."""
    try:
        with open(path, encoding="utf-8") as f:
            first = json.loads(next((line for line in f if line.strip()), ""))
        return "run" in first or ("gpunet_metrics" in first and "sweep" in first)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, RecursionError):
        return False


def read_sweep_metrics(path: Union[str, "os.PathLike[str]"]) -> list[tuple[str, History]]:
    """Read ``gpunet sweep --metrics`` rows as one history per run, labelled by its setting.

    Header records (``{"gpunet_metrics": ...}``) are skipped; rows written before sweeps
    used :data:`EPOCH_KEYS` (``test_correct`` / ``validation_correct``, ...) become the
    histories' ``evaluation_*`` records (:data:`OLD_SWEEP_KEYS`).
    """
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row: dict[str, Any] = json.loads(line)  # checked just below
                if isinstance(row, dict) and "gpunet_metrics" in row:
                    continue  # a header
                if (not isinstance(row, dict) or not isinstance(row.get("run"), dict)
                        or type(row.get("epoch")) is not int):
                    raise ValueError(f"{path}, line {number}: not a gpunet sweep row.")
                label = " ".join(f"{k}={v}" for k, v in row["run"].items())
                runs.setdefault(label, []).append(
                    {OLD_SWEEP_KEYS.get(k, k): v for k, v in row.items() if k != "run"})
    except FileNotFoundError:
        raise ValueError(f"metrics file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"cannot read sweep metrics file {path} ({exc}).") from None
    return [(label, History(records=sorted(rows, key=lambda r: int(r["epoch"]))))
            for label, rows in runs.items()]
