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
crash or Ctrl-C leaves the previous complete checkpoint in place.
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

from .history import History
from .persistence import atomic_write_bytes

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

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    def write(self, net: "Network", settings: "TrainingSettings", epochs_done: int,
              history: History, data: dict[str, Any], rng_state: Mapping[str, Any],
              parameters: Any) -> None:
        write_checkpoint(self.path, net, settings, epochs_done, history, data, rng_state,
                         parameters, run=self.run)


def as_writer(checkpoint: Union[None, PathLike, CheckpointWriter]) -> Optional[CheckpointWriter]:
    """``SGD(checkpoint=...)``: a path or a :class:`CheckpointWriter` (or ``None``)."""
    if checkpoint is None or isinstance(checkpoint, CheckpointWriter):
        return checkpoint
    return CheckpointWriter(Path(checkpoint))


def write_checkpoint(path: PathLike, net: "Network", settings: "TrainingSettings",
                     epochs_done: int, history: History, data: dict[str, Any],
                     rng_state: Mapping[str, Any], parameters: Any,
                     run: Optional[dict[str, Any]] = None) -> None:
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
    atomic_write_bytes(path, buffer.getvalue())


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


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read a checkpoint; a missing, corrupt, foreign or newer-version file is a
    ``ValueError`` that names it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
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
        raise ValueError(f"{path} is not a gpunet checkpoint ({exc}).") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise ValueError(f"{path} is not a readable gpunet checkpoint (corrupt or "
                         f"truncated: {exc}).") from None
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path}: the checkpoint's header is corrupt (not JSON).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a gpunet checkpoint (its header is not "
                         f"{FORMAT!r}).")
    version = meta.get("version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: checkpoint version {version!r} is not valid.")
    if version > VERSION:
        raise ValueError(
            f"{path} was written by a newer gpunet ({meta.get('gpunet_version', '?')}, "
            f"checkpoint format {version}); this gpunet reads format {VERSION} and older: "
            "upgrade gpunet to resume it.")
    try:
        sizes = [int(n) for n in meta["network"]["sizes"]]
        expected = sum(m * n + n for m, n in zip(sizes[:-1], sizes[1:]))
        meta["epochs_done"], meta["rng"], meta["history"], meta["training"], meta["data"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: the checkpoint's header lacks {exc}; the file is "
                         "corrupt.") from None
    if parameters.shape != (expected,) or not np.isfinite(parameters).all():
        raise ValueError(f"{path}: the checkpoint's parameters do not fit sizes {sizes} "
                         "or are not finite; the file is corrupt.")
    return Checkpoint(path, meta, parameters)


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
