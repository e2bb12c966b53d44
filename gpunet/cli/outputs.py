"""What ``train`` and ``sweep`` write besides training: checked before any work, then
written so that one output that fails does not stop the others.

* :func:`check_run_outputs`: every output path, the checkpoint's (never replaced but by
  ``--resume`` of it or ``--overwrite``) and its lock, before anything is loaded;
* :class:`Outputs`: each output written on its own; a write error is one ``gpunet:
  error:`` line, noted (the command's exit status is then 1) and not tried again;
* the metrics file: its header (:func:`metrics_header`; a resumed run's own,
  :func:`continued_header`), then its records, rewritten whole each time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from typing import Any, Callable, ContextManager, Iterator, Mapping, Optional

from .options import OPTIONS, default_of


def check_run_outputs(args: argparse.Namespace, outputs: Mapping[str, Optional[str]],
                      directories: Optional[Mapping[str, Optional[str]]] = None) -> None:
    """The run's ``outputs`` (and ``--checkpoint``, ``--metrics``, ``--plot``) and
    ``directories`` can be written, none of them is an input (``--resume`` goes on
    writing its own file), and an existing checkpoint is replaced only by resuming it
    or with ``--overwrite``."""
    from ..io.outputs import check_new_checkpoint, check_outputs

    outputs = {k: None if v == STDOUT else v for k, v in outputs.items()}  # --metrics -
    inputs = {"--resume": args.resume, **data_inputs(args)}
    check_outputs({**outputs, "--checkpoint": args.checkpoint}, inputs=inputs,
                  directories=directories, may_share=[("--resume", "--checkpoint")])
    if args.checkpoint:
        check_new_checkpoint(args.checkpoint, "--checkpoint", args.resume, args.overwrite)


def data_inputs(args: argparse.Namespace) -> dict[str, str]:
    """The files ``--data`` and ``--test-data`` read (a directory's data files each), by
    how an error names them, so that no output of the run replaces its data."""
    from ..io.mnist import data_files

    inputs: dict[str, str] = {}
    for option in ("--data", "--test-data"):
        given = getattr(args, option[2:].replace("-", "_"), None)
        if given is not None:
            folder = os.path.isdir(given)
            inputs.update({f"{option} ({file})" if folder else option: str(file)
                           for file in data_files(given)})
    return inputs


def checkpoint_lock(args: argparse.Namespace) -> ContextManager[Any]:
    """The lock on ``--checkpoint`` while the run writes it (nothing without one)."""
    from ..io.outputs import hold_lock

    if args.checkpoint:
        return hold_lock(args.checkpoint, "--checkpoint")
    return contextlib.nullcontext()


class Outputs:
    """A run's outputs, each written on its own: a write error is one line, noted in
    :attr:`failed` (by option) and that output is not written again; the others are."""

    def __init__(self) -> None:
        self.failed: dict[str, Exception] = {}

    def ok(self, option: str) -> bool:
        """``option``'s file has not failed."""
        return option not in self.failed

    def write(self, option: str, write: Callable[[], Any]) -> bool:
        """Run ``write()`` unless ``option`` failed before; whether it wrote."""
        from ..io.outputs import WriteError

        if not self.ok(option):
            return False
        try:
            write()
        except WriteError as exc:
            self.note(exc, option)
            return False
        return True

    def note(self, exc: Exception, option: str, then: str = "") -> None:
        """``exc`` stopped ``option``'s file (the first error kept): its line, with
        what happens ``then``."""
        self.failed.setdefault(option, exc)
        print(f"gpunet: error: {exc}{then}", file=sys.stderr, flush=True)


def stopped_by(interruption: BaseException) -> str:
    """How the line that keeps a run's work names what stopped it."""
    from ..training.signals import exit_status

    return "terminated (SIGTERM)" if exit_status(interruption) != 130 else "interrupted"


STDOUT = "-"
"""``--metrics -``: the metrics to standard output (every other line to stderr)."""

_STANDARD_OUTPUT: list[Any] = []
"""The standard output the metrics go to while :func:`metrics_on_stdout` holds it."""


@contextlib.contextmanager
def metrics_on_stdout(args: argparse.Namespace) -> Iterator[None]:
    """``--metrics -``: standard output carries the metrics alone (JSON Lines, for a
    pipe), every other line the command prints goes to stderr."""
    if getattr(args, "metrics", None) != STDOUT:
        yield
        return
    _STANDARD_OUTPUT.append(sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _STANDARD_OUTPUT.pop()


class MetricsFile:
    """``--metrics``: the header, then every record so far, rewritten whole (atomically)
    each time, so the file always reads as one run; ``-``: each record written once to
    standard output as it comes."""

    def __init__(self, path: str, header: dict[str, Any]) -> None:
        self.path, self.header = path, header
        self.sent: set[str] = set()

    def write(self, records: Any) -> None:
        from ..io.outputs import atomic_write_text

        lines = [json.dumps(r) + "\n" for r in [self.header, *records]]
        if self.path != STDOUT:
            atomic_write_text(self.path, "".join(lines), "--metrics")
            return
        stream = _STANDARD_OUTPUT[-1] if _STANDARD_OUTPUT else sys.stdout
        stream.write("".join(line for line in lines if line not in self.sent))
        stream.flush()
        self.sent.update(lines)

    @property
    def file(self) -> bool:
        """Whether the metrics go to a file (not standard output)."""
        return self.path != STDOUT


def metrics_header(settings: dict[str, Any], device: str, evaluate: str) -> dict[str, Any]:
    """A metrics file's header record (:mod:`gpunet.training.history`): the run's
    ``settings`` as the command line spells them, the device, which data
    ``evaluation_*`` is, versions, and when it started (``gpunet train`` and ``gpunet
    sweep`` write the same)."""
    import numpy as np

    from .._version import __version__
    from ..training.history import METRICS_FORMAT

    return {
        "gpunet_metrics": METRICS_FORMAT,
        "settings": settings,
        "device": device,
        "evaluation_data": evaluate,
        "versions": {"gpunet": __version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


MAY_DIFFER = ("epochs", "data")
"""Settings a resumed run's metrics header may differ in from the file's: a run may be
extended, and its data may have moved (its fingerprint is checked)."""


def continued_header(path: str, options: dict[str, Any],
                     seed: Optional[int] = None) -> Optional[dict[str, Any]]:
    """The header of the metrics file ``path`` a resumed run goes on writing: its
    first record when the file is this run's metrics (one run, the same settings but
    for :data:`MAY_DIFFER`), ``None`` when there is no file yet. A file that holds
    another run's metrics, several runs, or no metrics is a ``ValueError``: it is not
    replaced (the resumed run rewrites its file whole, every epoch once)."""
    if path == STDOUT or not os.path.lexists(path):
        return None
    first, problem = _metrics_problem(path, options, seed)
    if problem:
        raise ValueError(f"--metrics {path}: a resumed run rewrites its metrics file with "
                         f"the run's epochs so far, but {problem}; give --metrics another "
                         "path.")
    return first


def _metrics_problem(path: str, options: dict[str, Any],
                     seed: Optional[int]) -> tuple[dict[str, Any], str]:
    """The file's header, and why it is not the header of the run ``options`` and
    ``seed`` describe (``""``: it is)."""
    from ..training.history import check_header, read_metrics_records

    try:
        records = read_metrics_records(path)  # size-capped, a regular file, JSON Lines
        first = check_header(dict(records[0][1])) if records else {}
    except ValueError as exc:
        return {}, f"it is not a readable metrics file ({exc})"
    settings = first.get("settings")
    starts = [r for _, r in records if "gpunet_metrics" in r
              and not ({"resumed_from_epoch", "resumed_from"} & r.keys())]
    if not isinstance(settings, dict):
        return first, "it does not start with a gpunet metrics header"
    if (_compared(settings, settings) != _compared(options, settings)
            or (seed is not None and first.get("seed", seed) != seed)):
        return first, "it holds another run's metrics (its header's settings differ)"
    if len(starts) > 1:
        return first, f"it holds {len(starts)} runs' metrics"
    return first, ""


def _compared(settings: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    """The settings a resumed run's header must agree on: all but :data:`MAY_DIFFER`,
    and but an option newer than the header's run (absent there) that has its default
    (what that run had)."""
    return {k: v for k, v in settings.items() if k not in MAY_DIFFER and not (
        k not in header and k in OPTIONS and v == default_of(k))}
