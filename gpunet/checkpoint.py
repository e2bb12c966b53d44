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

A :class:`gpunet.NetworkStack`'s checkpoint (layout 2, ``"kind": "stack"``) is the same
for K networks: ``network`` has ``seeds`` (one per network) for ``seed``, ``training``
one ``eta`` and one ``lmbda`` per network, ``rngs`` K generator states, ``histories``
K histories, ``diverged`` the ``[k, epoch]`` pairs of the networks that diverged
(:mod:`gpunet.divergence`), ``seconds`` each epoch's training time, and
``parameters`` is the ``(K, P)`` array. A sweep (``gpunet sweep --checkpoint``) keeps
its finished stacks' rows in ``run`` and their parameters in one more member,
``finished`` (:class:`CheckpointWriter`'s ``arrays``). A single network's checkpoint is
still written in layout 1, so every gpunet that reads layout 1 resumes it; layout 2 is
refused by those with a clear "written by a newer gpunet".

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
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

import numpy as np

from .history import EPOCH_KEYS, History
from .outputs import atomic_write_bytes, check_output, hold_lock

if TYPE_CHECKING:
    from .datasets import Examples
    from .engines import TrainingSettings
    from .network import Network
    from .stack import NetworkStack

PathLike = Union[str, "os.PathLike[str]"]

FORMAT = "gpunet-checkpoint"
VERSION = 2
"""The newest checkpoint layout this gpunet reads (and writes, for stacks)."""

NETWORK_VERSION = 1
"""The layout of a single network's checkpoint (unchanged since layout 1)."""

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
    #: more host arrays kept in the file beside ``parameters`` (a sweep's finished
    #: stacks: ``{"finished": (F, P) array}``), read back as :attr:`Checkpoint.arrays`
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

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

    def write_stack(self, stack: "NetworkStack", settings: "TrainingSettings",
                    epochs_done: int, histories: list[History], diverged: Mapping[int, int],
                    seconds: list[float], data: dict[str, Any],
                    rng_states: list[Mapping[str, Any]], parameters: Any) -> None:
        """A stack's state after ``epochs_done`` epochs (layout 2, ``"kind": "stack"``)."""
        from . import __version__

        meta = {
            "format": FORMAT,
            "version": VERSION,
            "kind": "stack",
            "gpunet_version": __version__,
            "epochs_done": epochs_done,
            "network": {"sizes": list(stack.sizes), "cost": stack.cost.__name__,
                        "init": stack.init, "dtype": np.dtype(stack.dtype).name,
                        "seeds": list(stack.seeds)},
            "training": {k: (list(v) if isinstance(v, tuple) else v)
                         for k in TRAINING_KEYS for v in [getattr(settings, k)]},
            "data": data,
            "run": self.run,
            "rngs": list(rng_states),
            "engine": histories[0].engine if histories else "",
            "histories": [h.records for h in histories],
            "diverged": sorted([int(k), int(j)] for k, j in diverged.items()),
            "seconds": list(seconds),
        }
        _write_archive(self.path, meta, stack.backend.to_host(parameters), self.arrays,
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
        "version": NETWORK_VERSION,
        "gpunet_version": __version__,
        "epochs_done": epochs_done,
        "network": {"sizes": list(net.sizes), "cost": net.cost.__name__, "init": net.init,
                    "dtype": np.dtype(net.dtype).name, "seed": net.seed},
        # one network's layout: η and λ as plain numbers (layout 1)
        "training": {k: (v[0] if isinstance(v, tuple) else v)
                     for k in TRAINING_KEYS for v in [getattr(settings, k)]},
        "data": data,
        "run": run or {},
        "rng": rng_state,
        "engine": history.engine,
        "history": history.records,
    }
    _write_archive(path, meta, net.backend.to_host(parameters), {}, option)


@dataclass
class Checkpoint:
    """A checkpoint read back: the run's state after ``epochs_done`` epochs.

    ``kind`` is ``"network"`` (one :class:`gpunet.Network`) or ``"stack"`` (a
    :class:`gpunet.NetworkStack`). This module reads and checks the file and knows
    nothing of the model; :mod:`gpunet.resuming` builds the network or stack from it
    and trains on."""

    path: Path
    meta: dict[str, Any]
    parameters: np.ndarray
    #: the file's further members (a sweep's ``finished`` parameters)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.meta.get("kind", "network"))

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

    @property
    def histories(self) -> list[History]:
        """A stack checkpoint's histories, one per network."""
        engine = self.meta.get("engine", "")
        return [History(engine=engine, records=h) for h in self.meta["histories"]]

    @property
    def diverged(self) -> dict[int, int]:
        """A stack checkpoint's diverged networks: index -> the epoch it diverged in."""
        return {int(k): int(j) for k, j in self.meta["diverged"]}

    @property
    def seconds(self) -> list[float]:
        """A stack checkpoint's per-epoch training times."""
        return [float(t) for t in self.meta["seconds"]]

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
            arrays = {name: archive[name] for name in sorted(names - {"meta", "parameters"})}
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
    problem = validate_meta(meta, parameters, arrays)
    if problem:
        raise ValueError(f"{path}: {problem}; the file is corrupt or was edited.")
    return Checkpoint(path, meta, parameters, arrays)


def validate_meta(meta: dict[str, Any], parameters: np.ndarray,
                  arrays: Optional[Mapping[str, np.ndarray]] = None) -> str:
    """What is wrong with a checkpoint's header and parameters, in words ("" if nothing).

    Every field the resumed run uses is checked as the library checks its arguments:
    sizes, cost, init, dtype and seed; epochs, m, η, λ, the monitors and the engine; the
    data's size and fingerprint; the generator's state (it must set a PCG64 generator);
    the history (one record per epoch done); the parameters (a float vector of the
    length the sizes give, all finite). Sizes are checked against the parameters before
    anything is allocated for them. A stack's checkpoint (``"kind": "stack"``, layout
    2) is checked the same way per network: K seeds, η, λ, generator states and
    histories (a diverged network's ends at the epoch it diverged in), the ``(K, P)``
    parameters, and any further member (``finished``: ``(F, P)`` parameters).
    """
    from .arguments import check_eta, check_lmbda, check_positive_int, check_seed, check_sizes
    from .costs import COSTS
    from .engines import ENGINE_NAMES

    def integer(value: Any, low: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low

    kind = meta.get("kind", "network")
    if kind not in ("network", "stack") or (kind == "stack" and meta.get("version", 0) < 2):
        return f"unknown checkpoint kind {kind!r}"
    stacked = kind == "stack"
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
        seeds = network.get("seeds") if stacked else [network.get("seed")]
        if not isinstance(seeds, list) or not seeds:
            return "the stack's seeds are not a list of seeds"
        for seed in seeds:
            check_seed(seed)
        K = len(seeds)
        missing = [k for k in TRAINING_KEYS if k not in training]
        if missing:
            return f"the training settings lack {', '.join(missing)}"
        check_positive_int(training["epochs"], "epochs")
        check_positive_int(training["mini_batch_size"], "mini_batch_size")
        for key, check in (("eta", check_eta), ("lmbda", check_lmbda)):
            values = training[key] if stacked else [training[key]]
            if not isinstance(values, list) or len(values) != K:
                return f"the training settings' {key} is not one number per network ({K})"
            for value in values:
                check(value)
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
    rngs = meta.get("rngs") if stacked else [meta.get("rng")]
    if not isinstance(rngs, list) or len(rngs) != K:
        return f"the random generators' states are not one per network ({K})"
    for rng in rngs:
        try:
            if not isinstance(rng, dict) or rng.get("bit_generator") != "PCG64":
                raise ValueError
            np.random.default_rng(0).bit_generator.state = rng
        except (ValueError, TypeError, KeyError, OverflowError):
            return "the random generator's state is not a PCG64 state"
    diverged: dict[int, int] = {}
    if stacked:
        pairs, seconds = meta.get("diverged"), meta.get("seconds")
        if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 and integer(p[0], 0) and p[0] < K
                and integer(p[1], 0) and p[1] < epochs_done for p in pairs):
            return "the diverged networks are not [network, epoch] pairs of this run"
        diverged = {p[0]: p[1] for p in pairs}
        if not isinstance(seconds, list) or len(seconds) != epochs_done or not all(
                isinstance(t, (int, float)) and not isinstance(t, bool) for t in seconds):
            return f"the epochs' seconds are not one number per epoch done ({epochs_done})"
    histories = meta.get("histories") if stacked else [meta.get("history")]
    if not isinstance(histories, list) or len(histories) != K:
        return f"the histories are not one per network ({K})"
    for index, history in enumerate(histories):
        done = diverged.get(index, epochs_done)
        if not isinstance(history, list) or len(history) != done:
            return (f"the history does not hold one record per epoch done ({done})")
        for j, record in enumerate(history):
            if not isinstance(record, dict) or record.get("epoch") != j or not all(
                    isinstance(record[k], (int, float)) and not isinstance(record[k], bool)
                    for k in EPOCH_KEYS if k in record):
                return f"history record {j} is not epoch {j}'s record of numbers"
    expected = sum(m * n + n for m, n in zip(sizes[:-1], sizes[1:]))
    shape = (K, expected) if stacked else (expected,)
    if parameters.dtype not in (np.float32, np.float64) or parameters.shape != shape:
        return (f"the parameters ({parameters.dtype} {parameters.shape}) do not fit sizes "
                f"{sizes} ({shape} float32 or float64 numbers)")
    if not np.isfinite(parameters).all():
        return "the parameters are not all finite"
    for name, array in (arrays or {}).items():
        if (array.dtype != parameters.dtype or array.ndim != 2
                or array.shape[1:] != (expected,) or not np.isfinite(array).all()):
            return (f"the member {name!r} ({array.dtype} {array.shape}) is not finite "
                    f"parameters of sizes {sizes}")
    return ""
