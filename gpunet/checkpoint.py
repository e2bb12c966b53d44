"""Checkpoints: everything needed to continue a training run exactly where it stopped.

Chapter 1's stochastic gradient descent is a deterministic function of the initial
parameters and the shuffles ("Learning with gradient descent"); every shuffle comes
from the network's host generator, one permutation per epoch. So the state of a run
at an epoch boundary is the parameters, the generator's state and the epoch count;
with the run's settings (η, λ, m, cost, ...) and the same data, continuing from it
gives bit for bit the parameters of a run that never stopped (same device and dtype).

The file is a NumPy ``.npz`` archive (no pickles) with two members:

* ``meta``: UTF-8 JSON: ``format`` (``"gpunet-checkpoint"``), ``version``
  (:data:`VERSION`), the gpunet version, ``epochs_done``, the network's settings
  (sizes, cost, init, dtype, seed), the training settings (planned epochs, m, η, λ,
  monitors, engine), what the data was (sizes, a fingerprint of the training labels,
  and where the CLI got it), the generator's ``bit_generator.state`` and the history so
  far;
* ``parameters``: the network's flat parameter buffer (:mod:`gpunet.parameters`) in
  its own dtype, so nothing is rounded.

It is written atomically after every completed epoch (:func:`write_checkpoint`), so a
crash or Ctrl-C leaves the previous complete checkpoint in place; while a run writes it,
it holds a lock on it (:func:`gpunet.outputs.hold_lock`). Reading one
(:func:`load_checkpoint`) validates every field, naming the file, before any device or
data work, so an edited or damaged file is one clear error, never a run with garbage.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Union

import numpy as np

from .history import EPOCH_KEYS, History
from .outputs import atomic_write_bytes, check_output, hold_lock

if TYPE_CHECKING:
    from .backends import DeviceLike
    from .datasets import Examples
    from .engines import TrainingSettings
    from .network import Network

PathLike = Union[str, "os.PathLike[str]"]

FORMAT = "gpunet-checkpoint"
VERSION = 1
"""The checkpoint layout this gpunet writes and the newest it reads."""

TRAINING_KEYS = ("epochs", "mini_batch_size", "eta", "lmbda", "monitor_evaluation_cost",
                 "monitor_evaluation_accuracy", "monitor_training_cost",
                 "monitor_training_accuracy", "engine")
"""The :class:`~gpunet.engines.TrainingSettings` a checkpoint keeps (not the callbacks)."""


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

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    def hold(self) -> Any:
        """Check the path can be written and lock it while the block runs (a second
        run on the same file is refused: :func:`gpunet.outputs.hold_lock`)."""
        check_output(self.path, self.option)
        return hold_lock(self.path, self.option)

    def write(self, net: "Network", settings: "TrainingSettings", epochs_done: int,
              history: History, data: dict[str, Any], rng_state: Mapping[str, Any],
              parameters: Any) -> None:
        write_checkpoint(self.path, net, settings, epochs_done, history, data, rng_state,
                         parameters, run=self.run, option=self.option)


def as_writer(checkpoint: Union[None, PathLike, CheckpointWriter]) -> Optional[CheckpointWriter]:
    """``SGD(checkpoint=...)``: a path or a :class:`CheckpointWriter` (or ``None``)."""
    if checkpoint is None or isinstance(checkpoint, CheckpointWriter):
        return checkpoint
    return CheckpointWriter(Path(checkpoint))


def write_checkpoint(path: PathLike, net: "Network", settings: "TrainingSettings",
                     epochs_done: int, history: History, data: dict[str, Any],
                     rng_state: Mapping[str, Any], parameters: Any,
                     run: Optional[dict[str, Any]] = None, option: str = "") -> None:
    """Atomically write the state of ``net`` after ``epochs_done`` epochs to ``path``.

    ``rng_state`` and ``parameters`` (a device array) are as of that epoch boundary.
    """
    from . import __version__

    meta = {
        "format": FORMAT,
        "version": VERSION,
        "gpunet_version": __version__,
        "epochs_done": epochs_done,
        "network": {"sizes": list(net.sizes), "cost": net.cost.__name__, "init": net.init,
                    "dtype": np.dtype(net.dtype).name, "seed": net.seed},
        "training": {k: getattr(settings, k) for k in TRAINING_KEYS},
        "data": data,
        "run": run or {},
        "rng": rng_state,
        "engine": history.engine,
        "history": history.records,
    }
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
             parameters=np.asarray(net.backend.to_host(parameters)))
    atomic_write_bytes(path, buffer.getvalue(), option)


@dataclass
class Checkpoint:
    """A checkpoint read back: the run's state after ``epochs_done`` epochs."""

    path: Path
    meta: dict[str, Any]
    parameters: np.ndarray

    @property
    def epochs_done(self) -> int:
        return int(self.meta["epochs_done"])

    @property
    def network_settings(self) -> dict[str, Any]:
        return dict(self.meta["network"])

    @property
    def training(self) -> dict[str, Any]:
        return dict(self.meta["training"])

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.meta["data"])

    @property
    def run(self) -> dict[str, Any]:
        return dict(self.meta.get("run", {}))

    @property
    def history(self) -> History:
        return History(engine=self.meta.get("engine", ""), records=self.meta["history"])

    def network(self, device: "DeviceLike" = "auto") -> "Network":
        """The network as of the checkpoint, on ``device``, generator state included."""
        from .network import Network

        s = self.network_settings
        net = Network(s["sizes"], cost=s["cost"], init=s["init"], dtype=s["dtype"],
                      device=device, seed=s["seed"])
        with net.backend.scope():
            net.parameters[...] = net.backend.asarray(
                self.parameters.astype(net.dtype, copy=False))
        net.rng.bit_generator.state = self.meta["rng"]
        return net

    def continue_run(self, net: "Network", training_data: Any,
                     evaluation_data: Any = None, *, epochs: Optional[int] = None,
                     checkpoint: Optional[CheckpointWriter] = None, verbose: bool = True,
                     callback: Optional[Callable[[dict[str, Any]], None]] = None,
                     progress: bool = False) -> History:
        """Train ``net`` (from :meth:`network`) on from this checkpoint; see :func:`resume`."""
        from .engines import TrainingSettings
        from .training import run_sgd

        path, training = self.path, self.training
        total = training["epochs"] if epochs is None else int(epochs)
        if total < self.epochs_done:
            raise ValueError(f"{path} has {self.epochs_done} epochs done; ask for at least "
                             f"that many epochs in all, not {total}.")
        train = net._examples(training_data, "training_data")
        data = self.data
        if len(train) != data["n_train"] or labels_fingerprint(train) != data["labels_sha256"]:
            raise ValueError(f"{path}: the training data differs from the checkpointed run's "
                             f"({len(train)} examples here, {data['n_train']} there, or other "
                             "labels); resume with the run's own data.")
        monitor_evaluation = (training["monitor_evaluation_cost"]
                              or training["monitor_evaluation_accuracy"])
        evaluation = None
        if evaluation_data is not None:
            evaluation = net._examples(evaluation_data, "evaluation_data")
        elif monitor_evaluation:
            raise ValueError(f"{path}: the run monitored evaluation data; pass it as "
                             "evaluation_data.")
        settings = TrainingSettings(**{**training, "epochs": total, "verbose": verbose,
                                       "callback": callback})
        with net.backend.scope():  # the network's device current, as in SGD
            return run_sgd(net, train, evaluation, settings, start_epoch=self.epochs_done,
                           history=self.history, checkpoint=checkpoint, progress=progress)


ZIP_MAGIC = b"PK\x03\x04"  # an .npz archive is a zip file


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read a checkpoint; a missing, corrupt, foreign, edited or newer-version file is a
    ``ValueError`` that names it (every field is checked: :func:`validate_meta`)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
    try:
        with open(path, "rb") as f:
            magic = f.read(len(ZIP_MAGIC))
    except OSError as exc:
        raise ValueError(f"cannot read checkpoint {path} ({exc.strerror or exc}).") from None
    if magic != ZIP_MAGIC:
        hint = (" It looks like a saved network (JSON, from --save): a checkpoint is the "
                "file given to --checkpoint." if magic[:1] in (b"{", b"[") else "")
        raise ValueError(f"{path} is not a gpunet checkpoint (not an .npz archive).{hint}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            if not {"meta", "parameters"} <= names:
                raise ValueError(f"{path} is not a gpunet checkpoint (an .npz archive "
                                 f"without gpunet's 'meta' and 'parameters').")
            meta_bytes = archive["meta"].tobytes()
            parameters = archive["parameters"]
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path} is not a readable gpunet checkpoint ({exc}).") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError,
            NotImplementedError, RuntimeError, OverflowError, MemoryError) as exc:
        raise ValueError(f"{path} is not a readable gpunet checkpoint (corrupt or "
                         f"truncated: {type(exc).__name__}: {exc}).") from None
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError(f"{path}: the checkpoint's header is corrupt (not JSON).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a gpunet checkpoint (its header is not "
                         f"{FORMAT!r}).")
    version = meta.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: checkpoint version {version!r} is not valid.")
    if version > VERSION:
        raise ValueError(
            f"{path} was written by a newer gpunet ({meta.get('gpunet_version', '?')}, "
            f"checkpoint format {version}); this gpunet reads format {VERSION} and older: "
            "upgrade gpunet to resume it.")
    problem = validate_meta(meta, parameters)
    if problem:
        raise ValueError(f"{path}: {problem}; the file is corrupt or was edited.")
    return Checkpoint(path, meta, parameters)


def validate_meta(meta: dict[str, Any], parameters: np.ndarray) -> str:
    """What is wrong with a checkpoint's header and parameters, in words ("" if nothing).

    Every field the resumed run uses is checked as the library checks its arguments:
    sizes, cost, init, dtype and seed; epochs, m, η, λ, the monitors and the engine; the
    data's size and fingerprint; the generator's state (it must set a PCG64 generator);
    the history (one record per epoch done); the parameters (a float vector of the
    length the sizes give, all finite). Sizes are checked against the parameters before
    anything is allocated for them.
    """
    from .arguments import check_eta, check_lmbda, check_positive_int, check_seed, check_sizes
    from .costs import COSTS
    from .engines import ENGINE_NAMES

    def integer(value: Any, low: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low

    sections = {k: meta.get(k) for k in ("network", "training", "data")}
    for name, section in sections.items():
        if not isinstance(section, dict):
            return f"the checkpoint's header lacks its {name!r} section"
    network, training, data = sections["network"], sections["training"], sections["data"]
    assert isinstance(network, dict) and isinstance(training, dict) and isinstance(data, dict)
    try:
        sizes = check_sizes(network.get("sizes"))
        if network.get("cost") not in COSTS:
            return f"unknown cost {network.get('cost')!r}"
        if network.get("init") not in ("default", "large"):
            return f"unknown init {network.get('init')!r}"
        if network.get("dtype") not in ("float32", "float64"):
            return f"unsupported dtype {network.get('dtype')!r}"
        check_seed(network.get("seed"))
        missing = [k for k in TRAINING_KEYS if k not in training]
        if missing:
            return f"the training settings lack {', '.join(missing)}"
        check_positive_int(training["epochs"], "epochs")
        check_positive_int(training["mini_batch_size"], "mini_batch_size")
        check_eta(training["eta"])
        check_lmbda(training["lmbda"])
    except (ValueError, TypeError) as exc:
        return str(exc).rstrip(".")
    for key in TRAINING_KEYS:
        if key.startswith("monitor_") and not isinstance(training[key], bool):
            return f"{key} is {training[key]!r}, not true or false"
    if training["engine"] not in ENGINE_NAMES:
        return f"unknown engine {training['engine']!r}"
    epochs_done = meta.get("epochs_done")
    if not integer(epochs_done, 0) or epochs_done > training["epochs"]:
        return (f"epochs_done {epochs_done!r} is not a whole number from 0 to the run's "
                f"{training['epochs']} epochs")
    if not integer(data.get("n_train"), 1):
        return f"the data's n_train {data.get('n_train')!r} is not a positive integer"
    digest = data.get("labels_sha256")
    if (not isinstance(digest, str) or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)):
        return "the data's labels_sha256 is not a SHA-256 digest"
    if data.get("n_evaluation") is not None and not integer(data.get("n_evaluation"), 1):
        return f"the data's n_evaluation {data.get('n_evaluation')!r} is not a positive integer"
    if not isinstance(meta.get("run", {}), dict):
        return "the 'run' section is not a JSON object"
    if not isinstance(meta.get("engine", ""), str):
        return "the engine name is not a string"
    rng = meta.get("rng")
    try:
        if not isinstance(rng, dict) or rng.get("bit_generator") != "PCG64":
            raise ValueError
        np.random.default_rng(0).bit_generator.state = rng
    except (ValueError, TypeError, KeyError, OverflowError):
        return "the random generator's state is not a PCG64 state"
    history = meta.get("history")
    if not isinstance(history, list) or len(history) != epochs_done:
        return (f"the history does not hold one record per epoch done ({epochs_done})")
    for j, record in enumerate(history):
        if not isinstance(record, dict) or record.get("epoch") != j or not all(
                isinstance(record[k], (int, float)) and not isinstance(record[k], bool)
                for k in EPOCH_KEYS if k in record):
            return f"history record {j} is not epoch {j}'s record of numbers"
    expected = sum(m * n + n for m, n in zip(sizes[:-1], sizes[1:]))
    if parameters.dtype not in (np.float32, np.float64) or parameters.shape != (expected,):
        return (f"the parameters ({parameters.dtype} {parameters.shape}) do not fit sizes "
                f"{sizes} ({expected} float32 or float64 numbers)")
    if not np.isfinite(parameters).all():
        return "the parameters are not all finite"
    return ""


def resume(path: PathLike, training_data: Any, evaluation_data: Any = None, *,
           epochs: Optional[int] = None, device: "DeviceLike" = "auto",
           checkpoint: Union[None, PathLike, CheckpointWriter] = "same",
           verbose: bool = True, callback: Optional[Callable[[dict[str, Any]], None]] = None,
           progress: bool = False) -> "Network":
    """Continue the run saved in checkpoint ``path`` until ``epochs`` epochs in all.

    ``training_data`` (and ``evaluation_data`` if the run monitored it) must be the
    run's own data; its size and labels are checked against the checkpoint. ``epochs``
    defaults to the run's planned total; a larger number extends the run, and the result
    equals a run trained that long from the start. ``device`` may differ from the
    original run's. New checkpoints go on to ``path`` (``checkpoint="same"``), to
    another path, or nowhere (``None``).

    Returns the network; ``net.history`` holds every epoch, those before the checkpoint
    included. Ctrl-C behaves as in :meth:`Network.SGD`.
    """
    saved = load_checkpoint(path)
    net = saved.network(device)
    writer = (CheckpointWriter(saved.path, saved.run) if checkpoint == "same"
              else as_writer(checkpoint))
    saved.continue_run(net, training_data, evaluation_data, epochs=epochs,
                       checkpoint=writer, verbose=verbose, callback=callback,
                       progress=progress)
    return net
