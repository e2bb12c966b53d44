"""``--resume`` for ``train`` and ``sweep``: the checkpoint's record of the command's
options and outputs, taken back into the command's arguments.

A command records its options (:func:`run_record`, by each command's ``RECORD``: the
names as the record spells them) and the outputs it writes (:func:`outputs_record`) in
its checkpoint. :func:`load_resumed` reads a checkpoint to resume, checks the record
(:mod:`gpunet.cli.recorded`) and adopts it: every recorded option is the run's own
(one the user typed must agree, unless the command lets it change), and the run goes on
writing its outputs unless the user names others.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

from .options import explicit_options
from .recorded import recorded_outputs

if TYPE_CHECKING:
    from ..training.checkpoint import Checkpoint


@dataclass(frozen=True)
class Record:
    """What a command keeps in its checkpoints: its options (``keys``, as the record
    spells them; ``renamed``: record key -> the option's ``dest`` where they differ) and
    the outputs it writes besides the checkpoint."""

    keys: tuple[str, ...]
    outputs: tuple[str, ...]
    renamed: Mapping[str, str]
    #: options a resumed run may change (their ``dest``); every other must agree
    may_change: frozenset[str]
    #: how the error message names them
    changeable: str

    def dest(self, key: str) -> str:
        return self.renamed.get(key, key)


def data_source(data: Optional[str]) -> Optional[str]:
    """``--data`` as an absolute path (``None``: the bundled MNIST)."""
    return None if data is None else str(Path(data).expanduser().resolve())


def run_record(args: argparse.Namespace, record: Record) -> dict[str, Any]:
    """The options to record, by the record's keys (``--data`` as an absolute path)."""
    options = {key: getattr(args, record.dest(key)) for key in record.keys}
    options["data"] = data_source(args.data)
    if "test_data" in options:
        options["test_data"] = data_source(args.test_data)
    return options


def outputs_record(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The run's outputs for its checkpoint: each option's file as an absolute path (a
    resumed run may start in another folder), ``None`` when not given."""
    return {name: None if getattr(args, name) in (None, "-")  # --metrics -: not a file
            else os.path.abspath(os.path.expanduser(getattr(args, name))) for name in names}


def load_resumed(args: argparse.Namespace, command: str, record: Record,
                 check: Callable[["Checkpoint"], dict[str, Any]]) -> "Checkpoint":
    """The checkpoint ``--resume`` names, its record checked by ``check`` (which returns
    the recorded options) and adopted into ``args``; ``--checkpoint`` defaults to it."""
    from ..training.checkpoint import load_checkpoint

    saved = load_checkpoint(args.resume)
    options = check(saved)  # every recorded option, and that they agree
    explicit = explicit_options(args)
    adopt_options(args, saved.path, {record.dest(k): v for k, v in options.items()},
                  explicit, record)
    adopt_outputs(args, saved, explicit, command)
    if args.checkpoint is None:
        args.checkpoint = args.resume
    return saved


def adopt_outputs(args: argparse.Namespace, saved: "Checkpoint", explicit: set[str],
                  command: str) -> None:
    """A resumed run goes on writing the outputs its checkpoint records (``--save``,
    ``--metrics``, ...; none in files written before runs kept them), except those the
    user names anew."""
    for name, path in recorded_outputs(saved, command).items():
        if name not in explicit and path is not None:
            check_recorded_output(saved.path, name, path)
            setattr(args, name, path)


WRITTEN = {"save": (b'{"sizes": ', "a network file"),
           "save_best": (b'{"sizes": ', "a network file"),
           "plot": (b"\x89PNG\r\n\x1a\n", "a PNG image")}
"""How each recorded output gpunet rewrites starts, as gpunet writes it (the metrics
file is checked as one of the run's when it is continued)."""


def check_recorded_output(checkpoint: Any, name: str, path: str) -> None:
    """A recorded output the user did not name is replaced only if it is what the run
    wrote there: the path absolute (as runs record them), and an existing file starting
    as gpunet writes that output. A checkpoint from elsewhere (or edited) could
    otherwise name any file, and resuming it would replace that file unasked."""
    flag = "--" + name.replace("_", "-")
    if not os.path.isabs(path):
        raise ValueError(f"{checkpoint}: run.outputs.{name} is {path!r}, not an absolute "
                         "path (runs record their outputs as absolute paths); the file is "
                         f"corrupt or was edited. Name the output yourself ({flag} PATH) "
                         "to resume it.")
    start, kind = WRITTEN.get(name, (b"", ""))
    try:
        regular = os.path.isfile(path) and os.path.getsize(path) > 0
        head = start
        if start and regular:
            with open(path, "rb") as f:
                head = f.read(len(start))
    except OSError:
        return  # unreadable or gone: checking the outputs says why, before any work
    if not head.startswith(start):
        raise ValueError(f"{checkpoint} records {flag} {path}, but that file is not {kind} "
                         "gpunet wrote: resuming would replace it. Name the output yourself "
                         f"({flag} PATH) to resume, or check where the checkpoint came "
                         "from.")


def adopt_options(args: argparse.Namespace, path: Any, options: dict[str, Any],
                  explicit: set[str], record: Record) -> None:
    """Set ``args`` to a checkpointed run's ``options`` (by ``dest``): an option the
    user typed (``explicit``) that the record may not change must agree with the run's
    (else one error naming both values and the options that may change); ``--data`` may
    name the run's data in a new place (its fingerprint is checked as training starts)."""
    moved_data = _moved_data(args, path, options, explicit)
    for dest in sorted(explicit - record.may_change - {"data"}):
        if dest in options and getattr(args, dest) != options[dest]:
            flag = "--" + dest.replace("_", "-")
            raise ValueError(
                f"{flag} {_show(getattr(args, dest))} contradicts {path}, whose run "
                f"has {flag} {_show(options[dest])}; leave {flag} out to resume (only "
                f"{record.changeable} may change).")
    for dest, value in options.items():
        setattr(args, dest, value)
    if moved_data is not None:
        args.data = moved_data


def _moved_data(args: argparse.Namespace, path: Any, options: dict[str, Any],
                explicit: set[str]) -> Optional[str]:
    """``--data`` where the user gives the run's data in a new place (accepted when it
    is the same data, which the run's fingerprint, size and labels, checks as training
    starts); ``None`` when the run's own place is used, which must still exist."""
    if "data" in explicit and data_source(args.data) != options["data"]:
        return str(args.data)
    if options["data"] is not None and not Path(options["data"]).exists():
        raise ValueError(f"{path} trained on --data {options['data']}, which no longer "
                         "exists; if the data moved, give its new place with --data (it is "
                         "checked against the run's fingerprint).")
    return None


def _show(value: Any) -> str:
    """An option's value as it is typed (``784,30,10`` for sizes)."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "(not given)" if value is None else str(value)
