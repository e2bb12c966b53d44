"""Metrics files as one flat table: a row per network and epoch, the run's settings as
columns (``gpunet.read_metrics``).

A ``--metrics`` file of ``gpunet train`` or ``gpunet sweep`` is JSON Lines: a header
(the run's settings, seed, device, versions), then one record per epoch (a sweep's with
its ``run``: η, λ and seed). Read as it is (``pandas.read_json(lines=True)``), the
header mixes into the rows and the settings are nested, so every user writes the same
flattening code. :func:`read_metrics` does it once, for any number of files, each read
and checked as :mod:`gpunet.training.history` reads them:

>>> table = gpunet.read_metrics(["a.jsonl", "sweep.jsonl"])   # doctest: +SKIP
>>> df = table.to_frame()          # a pandas DataFrame (pandas installed)   # doctest: +SKIP
>>> df.groupby(["eta", "lmbda"]).evaluation_correct.max()                    # doctest: +SKIP

Each row holds: ``file`` (the path as given), ``run`` (the run's number in the table,
from 0: a file may hold several), ``network`` (the network's number in its run: 0 for
a ``train`` run, its place in the grid for a sweep's), every setting of the run's
header (``sizes``, ``batch_size``, ``cost``, ...; lists as tuples, so a column can be
grouped on), ``seed``, ``device`` and ``evaluation_data``, a sweep's ``eta``, ``lmbda``,
``seed``, ``momentum`` and ``l1`` of that network (numbers, where the header's settings
spell the whole grid), then the epoch's record as ``History`` keeps it (``epoch``, ``train_seconds``,
``evaluation_correct``, ``evaluation_total``, the monitored metrics, ``diverged``).
The headers themselves are :attr:`MetricsTable.headers`.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Iterable, Union

from .history import RUN_FIELDS, _runs, is_sweep_metrics

PathLike = Union[str, "os.PathLike[str]"]

HEADER_COLUMNS = ("seed", "device", "evaluation_data")

RUN_DEFAULTS = {name: getattr(check, "default") for name, check in RUN_FIELDS.items()
                if hasattr(check, "default")}
"""A sweep row's ``run`` fields that rows leave out at their default (μ = λ₁ = 0), so
each row says its network's value, not the header's list."""
"""A header's fields that become columns besides its settings."""

PANDAS_HINT = ("pip install pandas (gpunet does not depend on it; the table itself is "
               "a list of dicts)")


class MetricsTable(list[dict[str, Any]]):
    """What :func:`read_metrics` returns: a list of flat rows (dicts), one per network
    and epoch, with the headers of the runs they come from in :attr:`headers`."""

    def __init__(self, rows: Iterable[dict[str, Any]] = (),
                 headers: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__(rows)
        #: each run's header, in order, with the ``file`` and ``run`` its rows name
        self.headers: list[dict[str, Any]] = list(headers)

    @property
    def columns(self) -> list[str]:
        """Every column of the rows, in the order they first appear."""
        return list(dict.fromkeys(key for row in self for key in row))

    def to_frame(self) -> Any:
        """The rows as a pandas ``DataFrame`` (needs pandas; an ``ImportError`` naming
        how to install it where it is missing). Typed ``Any``: pandas is optional and
        ships no type information of its own."""
        try:
            pandas = importlib.import_module("pandas")
        except ImportError:
            raise ImportError(f"MetricsTable.to_frame() needs pandas: {PANDAS_HINT}."
                              ) from None
        return pandas.DataFrame.from_records(list(self), columns=self.columns)


def read_metrics(paths: Union[PathLike, Iterable[PathLike]]) -> MetricsTable:
    """Every run of every ``--metrics`` file in ``paths`` (one path or several, train
    and sweep files alike) as one flat table (module docstring). Each file is checked
    as it is read: a ``ValueError`` names the file, the line and the field."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    table = MetricsTable()
    for path in paths:
        sweep = is_sweep_metrics(path)
        for header, records in _runs(path, sweep=sweep):
            if not records:
                continue
            run = len(table.headers)
            table.headers.append({"file": str(path), "run": run, **header})
            table.extend(_rows(str(path), run, header, records, sweep))
    return table


def _rows(path: str, run: int, header: dict[str, Any], records: dict[Any, Any],
          sweep: bool) -> list[dict[str, Any]]:
    """One run's rows: its settings, then each network's epochs in order."""
    base: dict[str, Any] = {"file": path, "run": run}
    base.update({k: _cell(v) for k, v in (header.get("settings") or {}).items()})
    base.update({k: header[k] for k in HEADER_COLUMNS if k in header})
    networks: dict[str, int] = {}
    rows = []
    for key in sorted(records, key=lambda k: _order(k, networks)):
        record = dict(records[key])
        row = dict(base)
        if sweep:  # the network's own η, λ, seed, μ and λ₁ (rows leave out μ, λ₁ of 0)
            row["network"] = networks[key[0]]
            row.update(RUN_DEFAULTS)
            row.update(record.pop("run"))
        else:
            row["network"] = 0
        row.update({k: _cell(v) for k, v in record.items()})
        rows.append(row)
    return rows


def _order(key: Any, networks: dict[str, int]) -> tuple[int, int]:
    """A record's place: its network (numbered as first met, the grid's order in a
    file gpunet wrote), then its epoch."""
    if isinstance(key, tuple):
        label, epoch = key
        return networks.setdefault(label, len(networks)), int(epoch)
    return 0, int(key)


def _cell(value: Any) -> Any:
    """A value as a column holds it: lists as tuples (hashable: a column a frame can
    group on)."""
    return tuple(_cell(v) for v in value) if isinstance(value, list) else value
