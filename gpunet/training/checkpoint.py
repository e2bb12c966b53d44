"""Checkpoints: everything needed to continue a training run exactly where it stopped.

Chapter 1's stochastic gradient descent is a deterministic function of the initial
parameters and the shuffles ("Learning with gradient descent"); every shuffle comes
from a network's host generator, one permutation per epoch. So the state of a run at an
epoch boundary is the parameters and the :class:`~gpunet.training.state.RunState`
(epochs done, histories, generator states, diverged networks, seconds); with the run's
settings (η, λ, m, cost, ...) and the same data, continuing from it gives bit for bit
the parameters of a run that never stopped (same device and dtype).

The file is a NumPy ``.npz`` archive (no pickles), one layout for K ≥ 1 networks (a
:class:`gpunet.Network` is a stack of one; layout 3):

* ``meta``: UTF-8 JSON: ``format`` (``"gpunet-checkpoint"``), ``version``
  (:data:`VERSION`), ``kind`` (``"network"`` or ``"stack"``: which class resumes it),
  the gpunet version, ``epochs_done``, ``network`` (sizes, cost, init, dtype, one seed
  per network), ``training`` (planned epochs, m, one η and one λ per network, monitors,
  engine), ``data`` (sizes, a fingerprint of the training labels), ``run`` (free-form:
  the command's record), ``rngs`` (each generator's ``bit_generator.state``),
  ``engine``, ``histories``, ``diverged`` (the ``[k, epoch]`` pairs of the networks
  that diverged, :mod:`gpunet.training.divergence`) and ``seconds`` (each epoch's
  training time);
* ``parameters``: the ``(K, P)`` flat parameter buffers (:mod:`gpunet.model.parameters`)
  in their own dtype, so nothing is rounded;
* ``finished`` (a sweep's, ``gpunet sweep --checkpoint``): the finished stacks'
  parameters (:class:`CheckpointWriter`'s ``arrays``), their rows in ``run``.

Files of the earlier layouts still resume: layout 1 (one network: ``seed``, ``eta``,
``lmbda``, ``rng`` and ``history`` as single values) and layout 2 (a stack, as layout 3
with ``"kind": "stack"``) are read into the same form (:func:`as_layout_3`).

It is written atomically after every completed epoch, so a crash or Ctrl-C leaves the
previous complete checkpoint in place; while a run writes it, it holds a lock on it
(:func:`gpunet.io.outputs.hold_lock`). Reading one (:func:`load_checkpoint`) validates
every field, naming the file, before any device or data work, so an edited or damaged
file is one clear error, never a run with garbage.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union, cast

import numpy as np

from ..backends.hints import spelled
from ..io.fields import (MISSING, Check, FieldError, agree, anything, check_fields,
                         check_regular_file, choice, each, fail, is_whole, list_of,
                         number, obj, object_of, optional, sha256, shown, sizes, text, whole)
from ..io.zipdir import directory_sizes
from ..model.parameters import n_parameters
from .history import History, check_epoch_record
from .settings import recorded_settings
from .state import RunState
from ..io.outputs import atomic_write_bytes, check_output, hold_lock

if TYPE_CHECKING:
    from ..io.datasets import Examples
    from .settings import TrainingSettings

PathLike = Union[str, "os.PathLike[str]"]

FORMAT = "gpunet-checkpoint"
VERSION = 3
"""The checkpoint layout this gpunet writes, the newest it reads (1 and 2 too)."""

TRAINING_KEYS = tuple(name for name, _, _ in recorded_settings())
"""The :class:`~gpunet.training.settings.TrainingSettings` a checkpoint keeps (those
declared with a ``record`` check; not the callbacks)."""


def labels_fingerprint(examples: "Examples") -> str:
    """SHA-256 of the labels: a cheap check that a resumed run sees the same data."""
    return hashlib.sha256(np.ascontiguousarray(examples.labels, dtype=np.int64).data).hexdigest()


@dataclass
class CheckpointWriter:
    """Writes a checkpoint to ``path`` after each epoch; ``run`` is kept in it verbatim.

    ``run`` is free-form JSON for the caller (the CLI keeps its data source, ``--limit``
    and ``--evaluate`` there, to load the same data on ``--resume``).
    """

    path: Path
    run: dict[str, Any] = field(default_factory=dict)
    #: how errors name the file (``"--checkpoint"`` from the command line)
    option: str = "checkpoint"
    #: more host arrays kept in the file beside ``parameters`` (a sweep's finished
    #: stacks: ``{"finished": (F, P) array}``), read back as :attr:`Checkpoint.arrays`
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    def hold(self) -> Any:
        """Check the path can be written and lock it while the block runs (a second
        run on the same file is refused: :func:`gpunet.io.outputs.hold_lock`)."""
        check_output(self.path, self.option)
        return hold_lock(self.path, self.option)

    def write(self, description: Mapping[str, Any], settings: "TrainingSettings",
              state: RunState, data: dict[str, Any], parameters: np.ndarray,
              arrays: Optional[Mapping[str, np.ndarray]] = None) -> None:
        """The run's ``state`` after its ``epochs_done`` epochs, with the host copy of
        the networks' ``parameters`` at that boundary (``(P,)`` or ``(K, P)``) and of
        its :data:`RUN_ARRAYS` (``velocity``, ``best``: ``(K, P)``) where it has them.

        ``description`` is what the file says of the networks: ``{"kind": "network" or
        "stack", "network": {"sizes", "cost", "init", "dtype", "seeds"}}``."""
        from .._version import __version__

        meta = {
            "format": FORMAT,
            "version": VERSION,
            "kind": description["kind"],
            "gpunet_version": __version__,
            "epochs_done": state.epochs_done,
            "network": dict(description["network"]),
            "training": {k: (list(v) if isinstance(v, tuple) else v)
                         for k in TRAINING_KEYS for v in [getattr(settings, k)]},
            "data": data,
            "run": self.run,
            "rngs": list(state.rng_states),
            "engine": state.histories[0].engine if state.histories else "",
            "histories": [h.records for h in state.histories],
            "diverged": sorted([int(k), int(j)] for k, j in state.diverged.items()),
            "seconds": list(state.seconds),
        }
        if state.stopped:
            meta["stopped"] = sorted([int(k), int(j)] for k, j in state.stopped.items())
        if state.watch:
            meta["watch"] = [w.as_dict() for w in state.watch]
        K = len(state.histories)
        members = {k: v for k, v in self.arrays.items() if k not in RUN_ARRAYS}
        members.update({k: np.asarray(v).reshape(K, -1) for k, v in (arrays or {}).items()})
        _write_archive(self.path, meta, np.asarray(parameters).reshape(K, -1), members,
                       self.option)


def _write_archive(path: PathLike, meta: dict[str, Any], parameters: Any,
                   arrays: Mapping[str, np.ndarray], option: str) -> None:
    """The ``.npz`` (``meta`` as UTF-8 JSON, ``parameters``, any more ``arrays``),
    written atomically."""
    members: dict[str, Any] = {
        **arrays, "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
        "parameters": np.asarray(parameters)}
    buffer = io.BytesIO()
    np.savez(buffer, **members)
    atomic_write_bytes(path, buffer.getvalue(), option)


def as_writer(checkpoint: Union[None, PathLike, CheckpointWriter]) -> Optional[CheckpointWriter]:
    """``SGD(checkpoint=...)``: a path or a :class:`CheckpointWriter` (or ``None``)."""
    if checkpoint is None or isinstance(checkpoint, CheckpointWriter):
        return checkpoint
    return CheckpointWriter(Path(checkpoint))


@dataclass
class Checkpoint:
    """A checkpoint read back: the run's state after ``epochs_done`` epochs.

    ``meta`` is the file's header in layout 3 whatever layout the file has
    (:func:`as_layout_3`). ``kind`` is ``"network"`` (one :class:`gpunet.Network`) or
    ``"stack"`` (a :class:`gpunet.NetworkStack`); ``parameters`` and
    :attr:`network_settings` and :attr:`training` are as that class takes them: a
    network's ``(P,)`` buffer and its seed, η and λ as single values, a stack's
    ``(K, P)`` and K values. This module reads and
    checks the file and knows nothing of the model; :mod:`gpunet.networks.resuming`
    builds the network or stack from it and trains on."""

    path: Path
    meta: dict[str, Any]
    parameters: np.ndarray
    #: the file's further members (a sweep's ``finished`` parameters)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    #: the layout of the file as written (1, 2 or 3)
    layout: int = VERSION

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])

    @property
    def epochs_done(self) -> int:
        return int(self.meta["epochs_done"])

    @property
    def network_settings(self) -> dict[str, Any]:
        """``sizes``, ``cost``, ``init``, ``dtype``, and a stack's ``seeds`` or a
        network's ``seed``."""
        network = dict(self.meta["network"])
        if self.kind == "network":
            network["seed"] = network.pop("seeds")[0]
        return network

    @property
    def training(self) -> dict[str, Any]:
        """The training settings (``TRAINING_KEYS``); a network's per-network settings
        (η, λ, μ, λ₁) are numbers, a stack's one per network."""
        training = dict(self.meta["training"])
        for name, check, each in recorded_settings():  # a setting newer than the file
            if name not in training and hasattr(check, "default"):
                default = getattr(check, "default")
                training[name] = [default] * len(self.meta["rngs"]) if each else default
        if self.kind == "network":  # every per-network setting (η, λ, μ, λ₁) a number
            for name, _, each in recorded_settings():
                if each and isinstance(training.get(name), list):
                    training[name] = training[name][0]
        return training

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.meta["data"])

    @property
    def run(self) -> dict[str, Any]:
        return dict(self.meta.get("run") or {})

    @property
    def histories(self) -> list[History]:
        """Every network's history (new objects each time)."""
        engine = self.meta.get("engine") or ""
        return [History(engine=engine, records=h) for h in self.meta["histories"]]

    @property
    def history(self) -> History:
        """A network's history (the first network's, in a stack)."""
        return self.histories[0]

    @property
    def diverged(self) -> dict[int, int]:
        """The diverged networks: index -> the epoch it diverged in."""
        return {int(k): int(j) for k, j in self.meta["diverged"]}

    @property
    def seconds(self) -> list[float]:
        """Each epoch's training time."""
        return [float(t) for t in self.meta["seconds"]]

    @property
    def stopped(self) -> dict[int, int]:
        """The networks that stopped (early stopping, the schedule): index -> the last
        epoch they trained."""
        return {int(k): int(j) for k, j in self.meta.get("stopped", [])}

    def state(self) -> RunState:
        """The run's state at the checkpoint's boundary, to train on from."""
        from .state import Watch

        watch = [Watch(**w) for w in self.meta.get("watch", [])]
        return RunState(self.epochs_done, self.histories, list(self.meta["rngs"]),
                        self.diverged, self.seconds, self.stopped, watch,
                        self.arrays.get("velocity"), self.arrays.get("best"))

    def check_data(self, train: "Examples", evaluation: Optional["Examples"],
                    evaluation_given: bool) -> None:
        """The resumed run's data is the checkpointed run's (size and labels)."""
        path, data, training = self.path, self.data, self.training
        if len(train) != data["n_train"] or labels_fingerprint(train) != data["labels_sha256"]:
            raise ValueError(f"{path}: the training data differs from the checkpointed run's "
                             f"({len(train)} examples here, {data['n_train']} there, or other "
                             "labels); resume with the run's own data.")
        if not evaluation_given and (training["monitor_evaluation_cost"]
                                     or training["monitor_evaluation_accuracy"]):
            raise ValueError(f"{path}: the run monitored evaluation data; pass it as "
                             "evaluation_data.")

    def total_epochs(self, epochs: Optional[int]) -> int:
        total = self.training["epochs"] if epochs is None else int(epochs)
        if total < self.epochs_done:
            raise ValueError(f"{self.path} has {self.epochs_done} epochs done; ask for at "
                             f"least that many epochs in all, not {total}.")
        return total


ZIP_MAGIC = b"PK\x03\x04"  # an .npz archive is a zip file

MEMBERS = ("meta", "parameters", "finished", "velocity", "best")
"""The members a checkpoint may hold (``finished``: a sweep's finished stacks;
:data:`RUN_ARRAYS`)."""

RUN_ARRAYS = ("velocity", "best")
"""The run's own ``(K, P)`` arrays beside its parameters, where it has them: momentum's
velocities and ``keep_best``'s best epochs (:class:`~gpunet.training.state.RunState`)."""

MAX_META_BYTES = 64 * 2**20
"""The largest ``meta`` a checkpoint may hold: a sweep's finished rows live there, and
64 MiB is some 250,000 rows (thousands of networks of 30 epochs)."""

MAX_NETWORKS = 1_000_000
"""The most networks a stack checkpoint may hold (a sweep's limit)."""

MAX_NPY_HEADER = 4096
"""The longest ``.npy`` header read (NumPy writes 128 bytes for gpunet's arrays)."""

MAX_DIRECTORY_BYTES = 64 * 1024
"""The largest zip directory read: three members need some 200 bytes."""

MONITORS = tuple(k for k in TRAINING_KEYS if k.startswith("monitor_"))


class CheckpointError(ValueError):
    """A file that is not a checkpoint gpunet can resume; the message names it."""


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read a checkpoint; a missing, corrupt, foreign, edited or newer-version file is a
    ``ValueError`` that names it (and the field: :func:`check_meta`).

    Nothing is inflated or allocated before it is checked: the zip directory's size and
    member count, then each member's name and declared size (members are stored, never
    compressed, so no member holds more bytes than the file), then ``meta`` (at most
    :data:`MAX_META_BYTES`) and its every field, and only then each array's ``.npy``
    header against the shape and dtype the meta gives, before its data is read.
    """
    path = Path(path)
    check_regular_file(path, "checkpoint")
    try:
        with open(path, "rb") as f:
            _check_magic(f, path)
            size = os.fstat(f.fileno()).st_size
            _check_directory(f, size, path)
            with zipfile.ZipFile(f) as archive:
                members = _members(archive, size, path)
                meta = _read_meta(archive, members["meta"], path)
                shape, dtype = _checked_meta(meta, path)
                parameters = _read_array(archive, members["parameters"], path, dtype, shape)
                arrays = {name: _read_array(archive, members[name], path, dtype,
                                            (None, shape[-1]) if name not in RUN_ARRAYS
                                            else (shape[0] if len(shape) == 2 else 1,
                                                  shape[-1]))
                          for name in MEMBERS[2:] if name in members}
    except CheckpointError:
        raise
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise ValueError(f"checkpoint not found: {path}") from None
        raise ValueError(f"cannot read checkpoint {path} ({exc.strerror or exc}).") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, struct.error,
            NotImplementedError, RuntimeError, OverflowError, MemoryError) as exc:
        raise ValueError(f"{path} is not a readable gpunet checkpoint (corrupt or "
                         f"truncated: {type(exc).__name__}: {exc}).") from None
    meta3 = as_layout_3(meta)
    if meta3["kind"] == "network":  # a network's (P,) buffer, whatever the layout
        parameters = parameters.reshape(-1)
    return Checkpoint(path, meta3, parameters, arrays, int(meta["version"]))


def as_layout_3(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A checked header of any layout in layout 3's form: layout 1's single network
    (``seed``, ``eta``, ``lmbda``, ``rng``, ``history`` as single values, its epochs'
    seconds in its records) as a stack of one of ``"kind": "network"``; layout 2 and 3
    as they are."""
    if meta.get("version", 1) >= 3 or meta.get("kind") == "stack":
        return dict(meta)
    out = {k: v for k, v in meta.items() if k not in ("rng", "history")}
    network = dict(meta["network"])
    network["seeds"] = [network.pop("seed")]
    training = dict(meta["training"])
    training["eta"], training["lmbda"] = [training["eta"]], [training["lmbda"]]
    out.update(kind="network", network=network, training=training, rngs=[meta["rng"]],
               histories=[meta["history"]], diverged=[],
               seconds=[r["train_seconds"] for r in meta["history"]])
    return out


def _check_magic(f: Any, path: Path) -> None:
    """The file starts as a zip archive does (else: what it looks like instead)."""
    magic = f.read(len(ZIP_MAGIC))
    if magic != ZIP_MAGIC:
        hint = (spelled(" It looks like a saved network (JSON, from save()): a checkpoint "
                        "is the file given to SGD(checkpoint=...).",
                        " It looks like a saved network (JSON, from --save): a checkpoint "
                        "is the file given to --checkpoint.")
                if magic[:1] in (b"{", b"[") else "")
        if (magic + f.read(16)).startswith(b'{"gpunet_metrics"'):
            hint = spelled(" It is a metrics file (gpunet train --metrics): a checkpoint is "
                           "the file given to SGD(checkpoint=...).",
                           " It is a metrics file (--metrics): a checkpoint is the file "
                           "given to --checkpoint.")
        raise CheckpointError(f"{path} is not a gpunet checkpoint (not an .npz "
                              f"archive).{hint}")




def _check_directory(f: Any, size: int, path: Path) -> None:
    """The zip directory is small and lists at most :data:`MEMBERS` members, read from
    the records :mod:`zipfile` will read (the end record, and its zip64 form where
    there is one), before :mod:`zipfile` reads the directory itself."""
    records = directory_sizes(f, size)
    if records is None:
        raise CheckpointError(f"{path} is not a readable gpunet checkpoint (corrupt or "
                              "truncated: no zip directory at its end).")
    for entries, directory in records:
        if entries > len(MEMBERS) or directory > MAX_DIRECTORY_BYTES:
            raise CheckpointError(
                f"{path} is not a gpunet checkpoint: its zip directory lists {entries} "
                f"members in {directory} bytes (a checkpoint holds at most "
                f"{len(MEMBERS)}: {', '.join(MEMBERS)}).")


def _members(archive: zipfile.ZipFile, size: int, path: Path) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name (``meta``, ``parameters``, maybe ``finished``),
    each stored whole inside the file: an unexpected, repeated, compressed or
    oversized member is refused before any is read."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else ""
        if name not in MEMBERS:
            raise CheckpointError(
                f"{path} is not a gpunet checkpoint: it holds the member "
                f"{shown(info.filename)} (a checkpoint holds {', '.join(MEMBERS)}).")
        if name in members:
            raise CheckpointError(f"{path}: the member {name!r} appears twice; the file "
                                  "is corrupt or was edited.")
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
            raise CheckpointError(f"{path}: the member {name!r} is compressed; gpunet "
                                  "writes checkpoints uncompressed (the file was edited).")
        if info.header_offset + info.file_size > size:
            raise CheckpointError(
                f"{path}: the member {name!r} declares {info.file_size:,} bytes, more than "
                f"the file holds ({size:,}); the file is truncated or corrupt.")
        members[name] = info
    missing = [name for name in MEMBERS[:2] if name not in members]
    if missing:
        raise CheckpointError(f"{path} is not a gpunet checkpoint (an .npz archive "
                              f"without gpunet's 'meta' and 'parameters').")
    if members["meta"].file_size > MAX_META_BYTES + MAX_NPY_HEADER:
        raise CheckpointError(
            f"{path}: the member 'meta' declares {members['meta'].file_size:,} bytes, more "
            f"than a checkpoint's header may ({MAX_META_BYTES:,}); the file was edited.")
    return members


def _read_meta(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> dict[str, Any]:
    """``meta``: UTF-8 JSON bytes (a ``uint8`` vector) whose format is gpunet's and
    whose version this gpunet reads."""
    raw = _read_array(archive, info, path, np.dtype(np.uint8), (None,)).tobytes()
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, a 5,000-digit number
        raise CheckpointError(f"{path}: the checkpoint's header is corrupt (not "
                              "JSON).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gpunet checkpoint (its header is not "
                              f"{FORMAT!r}).")
    version = meta.get("version")
    if not is_whole(version) or version < 1:
        raise CheckpointError(f"{path}: checkpoint version {shown(version)} is not valid "
                              "(a whole number from 1); the file is corrupt or was edited.")
    if version > VERSION:
        raise CheckpointError(
            f"{path} was written by a newer gpunet ({shown(meta.get('gpunet_version', '?'))}, "
            f"checkpoint format {version}); this gpunet reads format {VERSION} and older: "
            "upgrade gpunet to resume it.")
    return meta


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path,
                dtype: np.dtype, shape: tuple[Optional[int], ...]) -> np.ndarray:
    """A member's array, its ``.npy`` header checked first: ``dtype`` and ``shape``
    (``None``: any length, up to the member's declared size), and the header's size
    agreeing with the member's; only then is its data read, into an array of that size
    (the member is stored, so the file holds every byte of it)."""
    name = info.filename[:-4]
    with archive.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise CheckpointError(f"{path}: the member {name!r} is not a .npy array of "
                                  f"version 1 or 2 (it says {version}); the file was edited.")
        found, fortran, kind = read_header(fp, max_header_size=MAX_NPY_HEADER)
        expected = " x ".join("N" if n is None else str(n) for n in shape)
        if (kind != dtype or len(found) != len(shape)
                or any(n is not None and n != m for n, m in zip(shape, found))):
            raise CheckpointError(
                f"{path}: the member {name!r} holds {kind} {found}, not {dtype.name} "
                f"({expected}) as the checkpoint's header says; the file is corrupt or was "
                "edited.")
        count = math.prod(found)
        if info.file_size != fp.tell() + count * dtype.itemsize:
            raise CheckpointError(
                f"{path}: the member {name!r} declares {info.file_size:,} bytes, but its "
                f"header says {kind} {found}; the file is corrupt or was edited.")
        if name != "meta" and len(found) == 2 and found[0] > MAX_NETWORKS:
            raise CheckpointError(f"{path}: the member {name!r} holds {found[0]:,} "
                                  f"networks, more than {MAX_NETWORKS:,}.")
        array = np.empty(found, dtype=dtype, order="F" if fortran else "C")
        _read_into(fp, array, path, name)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise CheckpointError(f"{path}: the member {name!r} holds numbers that are not "
                              "finite; the file is corrupt or was edited.")
    return array


def _read_into(fp: Any, array: np.ndarray, path: Path, name: str) -> None:
    """Fill ``array`` from ``fp`` in chunks (no second copy of it), all of it."""
    view = array.reshape(-1, order="A").view(np.uint8).data
    chunk = 1 << 20
    for at in range(0, len(view), chunk):
        data = fp.read(min(chunk, len(view) - at))
        if len(data) != min(chunk, len(view) - at):
            raise CheckpointError(f"{path}: the member {name!r} is truncated; the file is "
                                  "corrupt.")
        view[at:at + len(data)] = data
    if fp.read(1):
        raise CheckpointError(f"{path}: the member {name!r} goes on past its header's "
                              "size; the file is corrupt or was edited.")


# --------------------------------------------------------- the meta's fields
def _checked_meta(meta: dict[str, Any], path: Path) -> tuple[tuple[int, ...], np.dtype]:
    try:
        return check_meta(meta)
    except FieldError as exc:
        raise CheckpointError(str(exc.in_file(path))) from None


def check_meta(meta: Mapping[str, Any]) -> tuple[tuple[int, ...], np.dtype]:
    """Check every field of a checkpoint's header; the shape and dtype its
    ``parameters`` must have (a :class:`~gpunet.io.fields.FieldError` naming the field
    that does not fit).

    One table of fields (:func:`meta_fields`) serves every layout: layout 1 (one
    network, single values) and the stacked form of layouts 2 and 3 (K values, one
    per network; layout 3's ``"kind": "network"`` is a stack of one) differ only in a
    few fields being one value or K values. The checks run in three steps, because
    some fields size others: first the run's frame (epochs done and planned, the
    sizes, the K seeds), then every field, then each network's history, whose length
    is the epochs done (a diverged network's: the epoch it diverged in).
    """
    layout = meta.get("version", 1)
    kind = check_fields(meta, {"kind": (choice("network", "stack") if layout >= 3
                                        else optional(choice("network", "stack")))})["kind"]
    stacked = kind == "stack" or layout >= 3
    agree(kind != "stack" or layout >= 2, "kind",
          "is 'stack', which checkpoint version 1 does not have")
    frame = check_fields(meta, frame_fields(stacked))
    networks = len(frame["network.seeds"]) if stacked else 1
    agree(kind != "network" or networks == 1, "network.seeds",
          f"holds {networks} seeds, but a network's checkpoint (kind 'network') has one")
    done, sizes = frame["epochs_done"], frame["network.sizes"]
    agree(done <= frame["training.epochs"], "epochs_done",
          f"is {done}, more than the run's training.epochs ({frame['training.epochs']})")
    fields = check_fields(meta, meta_fields(stacked, networks, done))
    monitored = any(fields[f"training.{k}"] for k in MONITORS if "evaluation" in k)
    agree(not monitored or fields["data.n_evaluation"] is not None, "data.n_evaluation",
          "is missing, but the run monitored evaluation data")
    diverged = {k: j for k, j in fields.get("diverged", [])}
    agree(len(diverged) == len(fields.get("diverged", [])), "diverged",
          "names a network twice")
    stopped = {k: j for k, j in fields.get("stopped") or []}
    agree(len(stopped) == len(fields.get("stopped") or []), "stopped",
          "names a network twice")
    agree(not set(stopped) & set(diverged), "stopped", "names a network that diverged")
    lengths = {**diverged, **{k: j + 1 for k, j in stopped.items()}}
    check_fields(meta, history_fields(stacked, networks, done, lengths))
    P = n_parameters(sizes)
    return ((networks, P) if stacked else (P,)), np.dtype(fields["network.dtype"])


def frame_fields(stacked: bool) -> dict[str, Check]:
    """The fields that size the others: epochs done and planned, the sizes, the seeds."""
    return {
        "epochs_done": whole(0),
        "training.epochs": whole(1),
        "network.sizes": sizes,
        **({"network.seeds": list_of(whole(0), low=1, high=MAX_NETWORKS)} if stacked else {}),
    }


def meta_fields(stacked: bool, networks: int, done: int) -> dict[str, Check]:
    """Every other field of a checkpoint's header, for ``networks`` networks (layout 2)
    or one (layout 1: a per-network field holds its one value itself)."""
    from ..model.activations import hidden_names_tuple
    from ..model.costs import COSTS

    def per_network(check: Check) -> Check:
        return list_of(check, networks) if stacked else check

    fields = {
        "gpunet_version": optional(text),
        "network.cost": choice(*COSTS),
        "network.init": choice("default", "large"),
        # the hidden layers' activation: one name or one per layer; none: the sigmoid
        "network.activation": optional(_activation(hidden_names_tuple())),
        "network.dtype": choice("float32", "float64"),
        **{f"training.{name}": _recorded(per_network, check, each, networks, stacked)
           for name, check, each in recorded_settings()},
        "data.n_train": whole(1),
        "data.labels_sha256": sha256,
        "data.n_evaluation": optional(whole(1)),
        "run": optional(obj),
        "engine": optional(text),
        ("rngs" if stacked else "rng"): per_network(pcg64_state),
    }
    if stacked:
        fields["diverged"] = each([list_of(list_of(whole(0), 2)),
                                   _diverged_pairs(networks, done)])
        fields["seconds"] = list_of(number(low=0), done)
        fields["stopped"] = optional(each([list_of(list_of(whole(0), 2)),
                                           _diverged_pairs(networks, done)]))
        fields["watch"] = optional(list_of(WATCH, networks))
    else:
        fields["network.seed"] = whole(0)
    return fields


def _activation(names: tuple[str, ...]) -> Check:
    """The hidden layers' activation: one of ``names``, or a list of them (one per
    hidden layer; the network built from it checks the count)."""
    one = choice(*names)
    many = list_of(one)

    def check(value: Any, field: str) -> Any:
        return many(value, field) if isinstance(value, list) else one(value, field)

    return check


WATCH = object_of({"best_epoch": whole(-1), "best_correct": whole(0),
                   "eta_changed": whole(-1), "eta": optional(number(above=0))}, extra=False)
"""A network's :class:`~gpunet.training.state.Watch` in ``watch[k]``."""


def _recorded(per_network: Any, check: Check, each: bool, networks: int,
              stacked: bool) -> Check:
    """A recorded setting's check; a per-network one of a stack, one value per network
    (a setting newer than the file, :func:`gpunet.training.settings.since`: its
    default for each network)."""
    if not each:
        return check
    listed: Check = per_network(check)
    default = getattr(check, "default", MISSING)
    if default is MISSING:
        return listed
    if not stacked:  # layout 1 predates the setting: one value, or the list of one
        def single(value: Any, field: str) -> Any:   # that the layouts after write
            if isinstance(value, list) and len(value) == 1:
                return [check(value[0], f"{field}[0]")]
            return check(value, field)

        return single

    def checked(value: Any, field: str) -> Any:
        return [default] * networks if value is MISSING else listed(value, field)

    return checked


def _diverged_pairs(networks: int, done: int) -> Check:
    def check(pairs: list[list[int]], field: str) -> list[list[int]]:
        for i, (k, j) in enumerate(pairs):
            agree(k < networks, f"{field}[{i}][0]", f"is {k}, not one of the {networks} "
                  "networks")
            agree(j < done, f"{field}[{i}][1]", f"is {j}, not one of the {done} epochs done")
        return pairs

    return check


def history_fields(stacked: bool, networks: int, done: int,
                   diverged: Mapping[int, int]) -> dict[str, Check]:
    """Each network's history: one record per epoch done (a diverged network's end at
    the epoch it diverged in)."""
    if not stacked:
        return {"history": history_check(done)}

    def check(value: Any, field: str) -> Any:
        histories = list_of(anything, networks)(value, field)
        return [history_check(diverged.get(k, done))(h, f"{field}[{k}]")
                for k, h in enumerate(histories)]

    return {"histories": check}


def history_check(epochs: int) -> Check:
    """A history of ``epochs`` records, record ``j`` being epoch ``j``'s."""
    def check(value: Any, field: str) -> Any:
        records = list_of(obj, epochs)(value, field)
        for j, r in enumerate(records):
            check_epoch_record(r, f"{field}[{j}]", epoch=j)
        return records

    return check


def pcg64_state(value: Any, field: str) -> dict[str, Any]:
    """A PCG64 generator's ``bit_generator.state`` that NumPy takes back."""
    expected = "a PCG64 generator's state"
    state = value.get("state") if isinstance(value, dict) else None
    if (not isinstance(value, dict) or value.get("bit_generator") != "PCG64"
            or not isinstance(state, dict) or set(state) != {"state", "inc"}
            or not all(is_whole(v) and 0 <= v < 2**128 for v in state.values())
            or value.get("has_uint32") not in (0, 1) or not is_whole(value.get("has_uint32"))
            or not is_whole(value.get("uinteger")) or not 0 <= value["uinteger"] < 2**32):
        fail(field, value, expected)
    try:
        np.random.PCG64().state = cast(Any, value)
    except (ValueError, TypeError, KeyError, OverflowError):
        fail(field, value, expected)
    return value
