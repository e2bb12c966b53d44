"""What ``Network.SGD`` returns: the book's tuple of four lists, one record per epoch behind it.

One vocabulary for every per-epoch record, in memory (:class:`History`) and on disk
(``gpunet train --metrics`` and ``gpunet sweep --metrics``, read back by ``gpunet
plot``): the keys of :data:`EPOCH_KEYS`, a sweep's rows with the ``run`` beside them. The metrics file is JSON Lines: a header record
(``{"gpunet_metrics": 1, ...}``: the run's settings, seed, device, versions, and which
data set ``evaluation_*`` is), then one record per epoch exactly as ``History`` holds
it. A file may hold several runs (files joined, runs written one after another):
:func:`read_metrics_runs` reads each apart (a header starts a run; one with
``resumed_from_epoch`` continues the run before it), and every field of every record is
checked, naming the file, the line and the field.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Union

from ..io.fields import (MISSING, Check, FieldError, agree, boolean, check_fields,
                         read_capped, is_whole, number, obj, object_of, optional,
                         since, text, whole)

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
    #: the epoch of the best evaluation accuracy so far, where the run watched it
    #: (``early_stopping_n``, ``eta_schedule``, ``keep_best``; ``None``: none yet)
    best_epoch: Optional[int] = None
    #: ``keep_best``: the parameters of that epoch (as the run started while there is
    #: none), a flat ``(P,)`` buffer on the device (:mod:`gpunet.model.parameters`;
    #: ``net.parameters[...] = net.history.best_parameters`` puts the network there)
    best_parameters: Any = None

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

    def _repr_html_(self) -> str:
        """The history as a small table in a Jupyter notebook: a row per epoch (of a
        long run the first and last :data:`gpunet.training.notebook.HTML_ROWS`), a column
        per monitored metric.
        (``repr`` stays the book's tuple.)"""
        from .notebook import history_html

        return history_html(self.records, self.engine)

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


# ------------------------------------------------------------ epoch records
COUNTS = (("evaluation_correct", "evaluation_total"), ("training_correct", "training_total"))
"""Each count of correct answers and the total it is out of."""


COST = number(finite=False)
"""A cost: any number (a network that saturates may record an infinite one)."""


def check_epoch_record(record: Any, field: str = "", epoch: Optional[int] = None
                       ) -> dict[str, Any]:
    """``record`` if it is an epoch's record gpunet can use: a JSON object whose
    ``epoch`` is a whole number (``epoch`` itself, where given), ``train_seconds`` a
    number >= 0, each ``*_correct`` a whole number out of its ``*_total`` (a positive
    whole number), each cost a number, ``diverged`` true or false; else a
    :class:`~gpunet.io.fields.FieldError` naming the field (``field.epoch``, ...)."""
    def name(key: str) -> str:
        return f"{field}.{key}" if field else key

    obj(record, field or "the record")
    j = whole(0)(record.get("epoch", MISSING), name("epoch"))
    if epoch is not None:
        agree(j == epoch, name("epoch"), f"is {j}, not {epoch} (one record per epoch, "
              "in order)")
    for key, check in (("train_seconds", number(low=0)), ("evaluation_cost", COST),
                       ("training_cost", COST), ("diverged", boolean),
                       ("stopped", boolean), ("eta", number(above=0))):
        if key in record:
            check(record[key], name(key))
    for correct, total in COUNTS:
        if correct in record or total in record:
            c = whole(0)(record.get(correct, MISSING), name(correct))
            t = whole(1)(record.get(total, MISSING), name(total))
            agree(c <= t, name(correct), f"is {c}, more than {total} ({t})")
    return dict(record)


# ------------------------------------------------------------- metrics files
MAX_METRICS_BYTES = 256 * 2**20
"""The largest metrics file read: a million rows of a sweep's (thousands of networks of
hundreds of epochs)."""

HEADER_FIELDS: dict[str, Check] = {
    "settings": optional(obj),
    "seed": optional(whole(0)),
    "device": optional(text),
    "evaluation_data": optional(text),
    "versions": optional(obj),
    "started": optional(text),
    "resumed_from_epoch": optional(whole(0)),
    "sweep": optional(obj),
    "resumed_from": optional(object_of({"stack": whole(0), "epoch": whole(0)})),
}
"""A metrics header's fields (:func:`gpunet.cli.train.metrics_header` writes them; a
resumed train run's adds ``resumed_from_epoch``, a resumed sweep's ``resumed_from``)."""

RUN_FIELDS: dict[str, Check] = {"eta": number(above=0), "lmbda": number(low=0),
                                "seed": whole(0), "momentum": since(0.0, number(low=0)),
                                "l1": since(0.0, number(low=0)),
                                "dropout": since(0.0, number(low=0))}
"""A sweep row's ``run`` (chapter 3's ``momentum``, ``l1`` and ``dropout`` only where
used)."""

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class MetricsRun:
    """One run read from a metrics file: its header and its epochs."""

    header: dict[str, Any]
    history: History = field(default_factory=History)

    @property
    def evaluation_data(self) -> str:
        """The data set ``evaluation_*`` was measured on (``"test"``, ``"validation"``)."""
        return str(self.header.get("evaluation_data", "evaluation"))


@dataclass
class SweepMetrics:
    """One sweep read from a metrics file: its header and one history per run,
    labelled by its setting (``eta=0.5 lmbda=0.0 seed=3``)."""

    header: dict[str, Any]
    runs: list[tuple[str, History]] = field(default_factory=list)

    @property
    def evaluation_data(self) -> str:
        """The data set ``evaluation_*`` was measured on (``"test"`` for files written
        before sweeps had a header)."""
        return str(self.header.get("evaluation_data", "test"))


def read_metrics_records(path: PathLike) -> list[tuple[int, dict[str, Any]]]:
    """A metrics file's records with their line numbers: JSON objects, one a line (at
    most :data:`MAX_METRICS_BYTES` read). ``ValueError`` naming the file (and the line)
    for a missing, unreadable, oversized or non-JSON-Lines file."""
    raw = read_capped(path, "metrics file", MAX_METRICS_BYTES,
                      "is this a gpunet --metrics file?")
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a gpunet metrics file (not UTF-8 text: byte "
                         f"{exc.start}).") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or a 5,000-digit number
            raise ValueError(f"{path}, line {number}: not JSON; is this a gpunet "
                             "--metrics file?") from None
        if not isinstance(value, dict):
            raise ValueError(f"{path}, line {number}: not a metrics record (a JSON "
                             "object).")
        records.append((number, value))
    return records


def check_header(header: dict[str, Any]) -> dict[str, Any]:
    """A metrics header's fields (:data:`HEADER_FIELDS`); one written by a newer gpunet
    (a ``gpunet_metrics`` format above :data:`METRICS_FORMAT`) is refused."""
    version = header.get("gpunet_metrics")
    if is_whole(version) and version > METRICS_FORMAT:
        raise FieldError("gpunet_metrics", f"is {version}: written by a newer gpunet "
                         f"(this one reads metrics format {METRICS_FORMAT}); upgrade gpunet")
    whole(1, METRICS_FORMAT)(version, "gpunet_metrics")
    check_fields(header, HEADER_FIELDS)
    return header


def _continues(earlier: dict[str, Any], header: dict[str, Any]) -> bool:
    """Whether ``header`` (a resumed run's) continues the run ``earlier`` began: the
    same settings but for what a resumed run may change (its epochs, where its data
    lies), the same seed and evaluation data. An earlier run with no header is taken
    to be it."""
    if not earlier:
        return True

    def fixed(h: dict[str, Any]) -> tuple[Any, ...]:
        settings = h.get("settings") or {}
        return ({k: v for k, v in settings.items() if k not in ("epochs", "data")},
                h.get("seed"), h.get("evaluation_data"))

    return bool(fixed(earlier) == fixed(header))


def _runs(path: PathLike, sweep: bool) -> list[tuple[dict[str, Any], dict[Any, Any]]]:
    """A metrics file split into its runs (or sweeps): ``(header, {key: record})``,
    ``key`` the epoch (a sweep's: the run's label and the epoch).

    A header without ``resumed_from_epoch`` (a sweep's: ``resumed_from``) starts a new
    run; one with it continues the run before it, where it agrees with its settings,
    and its records replace those the run had from its resumed epoch on (epochs written
    before an interruption that the checkpoint did not keep). Without a header, a record
    whose epoch the run already has starts a new run: two runs' records concatenated
    read as two runs, never as one whose epochs replace each other's.
    """
    resumed_key = "resumed_from" if sweep else "resumed_from_epoch"
    runs: list[tuple[dict[str, Any], dict[Any, Any]]] = []
    for number, value in read_metrics_records(path):
        where = f"{path}, line {number}"
        try:
            if "gpunet_metrics" in value:
                header = check_header(value)
                if ("sweep" in header) != sweep:
                    raise ValueError(f"{where}: a gpunet {'train' if sweep else 'sweep'} "
                                     f"header in a {'sweep' if sweep else 'train'} metrics "
                                     "file (two kinds of file joined into one?).")
                resumed = header.get(resumed_key)
                if resumed is not None and runs and _continues(runs[-1][0], header):
                    earlier = runs[-1][1]
                    start = resumed["epoch"] if sweep else resumed
                    runs[-1] = (runs[-1][0] or header,
                                {k: r for k, r in earlier.items() if r["epoch"] < start})
                else:
                    runs.append((header, {}))
                continue
            if ("run" in value) != sweep:
                raise ValueError(
                    f"{where}: a gpunet sweep row; read sweep files with read_sweeps."
                    if not sweep else f"{where}: not a gpunet sweep row (no 'run').")
            if sweep:
                value = {OLD_SWEEP_KEYS.get(k, k): v for k, v in value.items()}
                check_fields(value, {"run": object_of(RUN_FIELDS)})
            row = check_epoch_record(value)
        except FieldError as exc:
            raise ValueError(f"{where}: {exc}; the file is corrupt or was edited.") from None
        key = (_label(row["run"]), row["epoch"]) if sweep else row["epoch"]
        if not runs or key in runs[-1][1]:
            runs.append(({}, {}))
        runs[-1][1][key] = row
    if not runs or not any(records for _, records in runs):
        raise ValueError(f"{path}: no epochs recorded; is this a gpunet --metrics file?")
    return runs


def _label(run: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in run.items())


def read_metrics_runs(path: PathLike) -> list[MetricsRun]:
    """Every run of a ``gpunet train --metrics`` file, in order (a file may hold
    several: metrics files joined by ``cat``, or runs written one after another). A
    resumed run's segments join into one run (:func:`_runs` says how runs are told
    apart). Raises ``ValueError`` naming the file (and the line, and the field) when it
    is missing, too large, or not a gpunet metrics file."""
    return [MetricsRun(header, History(records=[records[j] for j in sorted(records)]))
            for header, records in _runs(path, sweep=False) if records]


def read_metrics(path: PathLike) -> MetricsRun:
    """Read a ``--metrics`` file of one run; a resumed run's segments join into one
    history. A file that holds several runs is refused (read it with
    :func:`read_metrics_runs`): its epochs would otherwise replace each other's."""
    runs = read_metrics_runs(path)
    if len(runs) > 1:
        raise ValueError(f"{path} holds {len(runs)} runs (each starts its epochs again); "
                         "read them with gpunet.training.history.read_metrics_runs, or draw them "
                         "with gpunet plot, which draws each as its own curve.")
    return runs[0]


OLD_SWEEP_KEYS = {f"{name}_{what}": f"evaluation_{what}"
                  for name in ("test", "validation") for what in ("correct", "total", "cost")}
"""Sweep rows written before sweeps took :data:`EPOCH_KEYS` (``test_correct``,
``validation_total``, ...): read as the ``evaluation_*`` keys they were."""


def is_sweep_metrics(path: PathLike) -> bool:
    """Whether ``path`` holds ``gpunet sweep --metrics`` rows: a header that says
    ``sweep``, or (files written before sweeps had a header) a first row that names its
    ``run``."""
    try:
        first = read_metrics_records(path)[0][1]
    except (ValueError, IndexError):
        return False
    return bool("run" in first or ("gpunet_metrics" in first and "sweep" in first))


def read_sweeps(path: PathLike) -> list[SweepMetrics]:
    """Every sweep of a ``gpunet sweep --metrics`` file, in order, each with one history
    per run labelled by its setting. Header records start a sweep (or, with
    ``resumed_from``, continue the one before); rows written before sweeps used
    :data:`EPOCH_KEYS` (``test_correct`` / ``validation_correct``, ...) become the
    histories' ``evaluation_*`` records (:data:`OLD_SWEEP_KEYS`)."""
    sweeps = []
    for header, rows in _runs(path, sweep=True):
        if not rows:
            continue
        per_run: dict[str, list[dict[str, Any]]] = {}
        for (label, _), row in rows.items():
            per_run.setdefault(label, []).append(
                {k: v for k, v in row.items() if k != "run"})
        sweeps.append(SweepMetrics(header, [
            (label, History(records=sorted(records, key=lambda r: int(r["epoch"]))))
            for label, records in per_run.items()]))
    return sweeps


def read_sweep_metrics(path: PathLike) -> list[tuple[str, History]]:
    """Read a ``gpunet sweep --metrics`` file of one sweep as one history per run,
    labelled by its setting; a file that holds several sweeps is refused (read it with
    :func:`read_sweeps`)."""
    sweeps = read_sweeps(path)
    if len(sweeps) > 1:
        raise ValueError(f"{path} holds {len(sweeps)} sweeps (rows of a run and epoch "
                         "repeat); read them with gpunet.training.history.read_sweeps, or draw "
                         "them with gpunet plot, which draws each sweep's runs apart.")
    return sweeps[0].runs
