"""Checkpoints are read as hostile input (issue 26): declared sizes and shapes are checked
before anything is inflated or allocated, and every field's problem names the file and
the field.

The hostile archives are written by hand (:func:`write_zip`), so a member can declare
what no honest writer would: 2**26 float64 in a file of a few kilobytes (a hole in a
sparse file, or a deflate stream of zeros), a ``meta`` of 256 MiB, members gpunet never
writes. Each is refused with the peak of traced allocations under 32 MiB (the old
reader inflated such a member whole before it refused it).
"""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest

import gpunet
from gpunet.training.checkpoint import load_checkpoint

SMALL_PEAK = 32 * 2**20


# ----------------------------------------------------------- archives by hand
def npy_header(dtype: Any, shape: tuple[int, ...], fortran: bool = False) -> bytes:
    """The ``.npy`` magic and header NumPy writes for an array of ``dtype`` and
    ``shape`` (no data)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": fortran, "shape": shape})
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def meta_npy(meta: Any) -> bytes:
    return npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


def deflated_zeros(prefix: bytes, n_zeros: int) -> bytes:
    """A raw deflate stream of ``prefix`` then ``n_zeros`` zero bytes, made without
    compressing them all: after a full flush a chunk of zeros compresses to the same
    bytes each time, so one chunk's output is repeated."""
    chunk = 1 << 20
    assert n_zeros % chunk == 0
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    return head + block * (n_zeros // chunk) + c.flush(zlib.Z_FINISH)


def write_zip(path: Path, members: list[dict[str, Any]]) -> None:
    """A zip archive of ``members``: each ``{"name", "data"}`` with optionally ``"hole"``
    (that many zero bytes after the data, left as a hole in a sparse file),
    ``"method"`` (0 stored, 8 deflated: ``data`` is then the deflate stream) and
    ``"size"`` and ``"csize"`` (the uncompressed and compressed sizes declared;
    default: what is there)."""
    directory = b""
    with open(path, "wb") as f:
        for m in members:
            name, data, hole = m["name"].encode(), m["data"], m.get("hole", 0)
            method = m.get("method", 0)
            stored = m.get("csize", len(data) + hole)
            size = m.get("size", len(data) + hole)
            crc = zlib.crc32(data) if not hole and method == 0 else 0
            offset = f.tell()
            f.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 33,
                                crc, stored, size, len(name), 0) + name + data)
            if hole:
                f.seek(hole, 1)
            directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0,
                                     33, crc, stored, size, len(name), 0, 0, 0, 0, 0,
                                     offset) + name
        start = f.tell()
        f.write(directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members),
                                        len(members), len(directory), start, 0))


def peak_of(call: Any) -> tuple[Optional[BaseException], int]:
    """What ``call()`` raised (or ``None``) and the peak of traced allocations."""
    tracemalloc.start()
    try:
        call()
        raised = None
    except BaseException as exc:  # noqa: BLE001 (reported to the test)
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak


# ------------------------------------------------------------------ fixtures
def checkpoint_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((20, 4)), rng.integers(0, 2, 20)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> tuple[dict[str, Any], np.ndarray]:
    """A real checkpoint's meta and parameters: [4, 3, 2], float32, 2 epochs."""
    path = tmp_path_factory.mktemp("good") / "run.ckpt"
    X, y = checkpoint_data()
    gpunet.Network([4, 3, 2], seed=0, device="cpu", dtype="float32").SGD(
        (X, y), 2, 5, 0.5, evaluation_data=(X, y), monitor_evaluation_accuracy=True,
        verbose=False, checkpoint=path)
    with np.load(path) as archive:
        return json.loads(archive["meta"].tobytes()), archive["parameters"]


@pytest.fixture(scope="module")
def stack_good(tmp_path_factory) -> tuple[dict[str, Any], np.ndarray]:
    """A stack's checkpoint (layout 2): three networks, the last one diverged."""
    path = tmp_path_factory.mktemp("stack") / "stack.ckpt"
    X, y = checkpoint_data()
    gpunet.NetworkStack([4, 3, 2], seeds=[0, 1, 2], device="cpu").SGD(
        (X, y), 3, 5, eta=[0.5, 1.0, 3.0], lmbda=[0.0, 0.0, 1e6],
        evaluation_data=(X, y), monitor_evaluation_accuracy=True, verbose=False,
        checkpoint=path)
    with np.load(path) as archive:
        return json.loads(archive["meta"].tobytes()), archive["parameters"]


# ------------------------------------------------------ refused before spent
def test_a_parameters_member_declaring_2_26_float64_is_refused_unread(tmp_path, good):
    """The member's header says (2**26,) float64, 512 MiB, where the meta's sizes allow
    23 numbers; the data is a 512 MiB hole in a sparse file. The old reader read it
    whole (peak > 512 MiB) before it compared shapes."""
    meta, _ = good
    path = tmp_path / "huge.ckpt"
    header = npy_header(np.float64, (2**26,))
    write_zip(path, [{"name": "meta.npy", "data": meta_npy(meta)},
                     {"name": "parameters.npy", "data": header, "hole": 8 * 2**26}])
    raised, peak = peak_of(lambda: load_checkpoint(path))
    assert peak < SMALL_PEAK, peak  # first: what the old reader failed
    assert isinstance(raised, ValueError) and str(raised).startswith(str(path))
    assert "'parameters'" in str(raised) and "(1 x 23)" in str(raised)


def test_a_deflate_bomb_member_is_refused_uninflated(tmp_path, good):
    """The same 2**26 float64 as a deflate stream of zeros (some 500 KiB): gpunet
    writes its members stored, so a compressed one is refused before it is inflated
    (the old reader inflated 512 MiB first)."""
    meta, _ = good
    path = tmp_path / "bomb.ckpt"
    header = npy_header(np.float64, (2**26,))
    data = deflated_zeros(header, 8 * 2**26)
    write_zip(path, [{"name": "meta.npy", "data": meta_npy(meta)},
                     {"name": "parameters.npy", "data": data, "method": 8,
                      "size": len(header) + 8 * 2**26}])
    raised, peak = peak_of(lambda: load_checkpoint(path))
    assert peak < SMALL_PEAK, peak  # first: what the old reader failed
    assert isinstance(raised, ValueError) and str(raised).startswith(str(path))
    assert "compressed" in str(raised)


def test_a_huge_meta_is_refused_unread(tmp_path, good):
    """A ``meta`` that declares 256 MiB of JSON (a hole): more than a checkpoint's
    header may hold, refused before it is read (the old reader read it whole)."""
    _, parameters = good
    path = tmp_path / "meta.ckpt"
    write_zip(path, [{"name": "meta.npy", "data": npy_header(np.uint8, (2**28,)),
                      "hole": 2**28},
                     {"name": "parameters.npy", "data": npy(parameters)}])
    raised, peak = peak_of(lambda: load_checkpoint(path))
    assert peak < SMALL_PEAK, peak  # first: what the old reader failed
    assert isinstance(raised, ValueError) and "'meta'" in str(raised)


def test_a_member_larger_than_the_file_is_refused(tmp_path, good):
    """A stored member whose declared size runs past the end of the file."""
    meta, parameters = good
    path = tmp_path / "lies.ckpt"
    write_zip(path, [{"name": "meta.npy", "data": meta_npy(meta)},
                     {"name": "parameters.npy", "data": npy(parameters),
                      "size": 2**31, "csize": 2**31}])
    with pytest.raises(ValueError, match="declares 2,147,483,648 bytes"):
        load_checkpoint(path)


@pytest.mark.parametrize("case", ["extra member", "repeated member", "many members",
                                  "object dtype", "other dtype", "meta not bytes",
                                  "header and size disagree", "wrong shape"])
def test_members_gpunet_never_writes_are_refused(tmp_path, good, case):
    """Each names the file and the member. The old reader took an extra member of the
    right shape as a sweep's (an 'evil' member was accepted), and parameters in the
    other float dtype (cast without a word when resumed)."""
    meta, parameters = good
    members = [{"name": "meta.npy", "data": meta_npy(meta)},
               {"name": "parameters.npy", "data": npy(parameters)}]
    if case == "extra member":
        members.append({"name": "evil.npy", "data": npy(parameters[None, :])})
    elif case == "repeated member":
        members.append({"name": "parameters.npy", "data": npy(parameters)})
    elif case == "many members":
        members += [{"name": f"m{i}.npy", "data": b""} for i in range(5000)]
    elif case == "object dtype":
        members[1]["data"] = npy_header(object, parameters.shape) + bytes(8 * 23)
    elif case == "other dtype":
        members[1]["data"] = npy(parameters.astype(np.float64))
    elif case == "meta not bytes":
        members[0]["data"] = npy(np.frombuffer(json.dumps(meta).encode(), np.uint8)
                                 .astype(np.float64))
    elif case == "header and size disagree":
        members[1]["data"] = npy(parameters) + bytes(16)
    elif case == "wrong shape":  # a network's (K, P) parameters are (1, P) in layout 3
        members[1]["data"] = npy(parameters.reshape(-1))
    path = tmp_path / "odd.ckpt"
    write_zip(path, members)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert any(word in message for word in ("member", "'parameters'", "'meta'")), message


def test_the_finished_member_is_checked_against_the_meta(tmp_path, stack_good):
    """A sweep's ``finished`` member: parameters of the stack's sizes and dtype."""
    meta, parameters = stack_good
    path = tmp_path / "sweep.ckpt"
    for finished, ok in ((parameters[:2], True), (parameters[:, :-1], False),
                         (parameters.astype(np.float64), False)):
        write_zip(path, [{"name": "meta.npy", "data": meta_npy(meta)},
                         {"name": "parameters.npy", "data": npy(parameters)},
                         {"name": "finished.npy", "data": npy(finished)}])
        if ok:
            assert load_checkpoint(path).arrays["finished"].shape == (2, 23)
        else:
            with pytest.raises(ValueError, match="the member 'finished'"):
                load_checkpoint(path)


# ------------------------------------------------------- fields named, by type
def _edited(meta: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """``meta`` with the field at dotted ``field`` (``rngs.1``: an index) set to
    ``value``."""
    meta = json.loads(json.dumps(meta))
    *parents, last = field.split(".")
    node: Any = meta
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return meta


ONE_NETWORK = [  # (field, edited value, the field named in the error)
    ("epochs_done", "2", "epochs_done"),
    ("epochs_done", 9, "epochs_done"),
    ("network", 5, "network"),
    ("network.sizes", "4,3,2", "network.sizes"),
    ("network.sizes", [4, 3.0, 2], "network.sizes"),
    ("network.cost", ["QuadraticCost"], "network.cost"),
    ("network.dtype", "float16", "network.dtype"),
    ("training.epochs", 2.5, "training.epochs"),
    ("training.mini_batch_size", "5", "training.mini_batch_size"),
    ("training.monitor_training_cost", 1, "training.monitor_training_cost"),
    ("training.engine", None, "training.engine"),
    ("data.n_train", 20.0, "data.n_train"),
    ("data.labels_sha256", 7, "data.labels_sha256"),
    ("data.n_evaluation", None, "data.n_evaluation"),
    ("run", [], "run"),
    ("engine", 3, "engine"),
    ("gpunet_version", {}, "gpunet_version"),
]

LAYOUT_1 = [  # a network's fields as layout 1 holds them: single values
    ("network.seed", "0", "network.seed"),
    ("network.seed", True, "network.seed"),
    ("training.eta", "fast", "training.eta"),
    ("training.eta", [0.5], "training.eta"),
    ("training.lmbda", -1.0, "training.lmbda"),
    ("rng", "PCG64", "rng"),
    ("rng.state.state", -1, "rng"),
    ("history", {}, "history"),
    ("history.1", [], "history[1]"),
    ("history.1.epoch", 0, "history[1].epoch"),
    ("history.0.evaluation_correct", "14", "history[0].evaluation_correct"),
    ("history.0.evaluation_correct", 21, "history[0].evaluation_correct"),
    ("history.0.train_seconds", None, "history[0].train_seconds"),
]

LAYOUT_3 = [  # a network's fields as layout 3 holds them: a stack of one
    ("kind", None, "kind"),
    ("network.seeds", ["0"], "network.seeds[0]"),
    ("network.seeds", [0, 1], "network.seeds"),
    ("training.eta", "fast", "training.eta"),
    ("training.eta", 0.5, "training.eta"),
    ("training.lmbda", [-1.0], "training.lmbda[0]"),
    ("rngs.0", "PCG64", "rngs[0]"),
    ("rngs.0.state.state", -1, "rngs[0]"),
    ("histories.0", {}, "histories[0]"),
    ("histories.0.1", [], "histories[0][1]"),
    ("histories.0.1.epoch", 0, "histories[0][1].epoch"),
    ("histories.0.0.evaluation_correct", "14", "histories[0][0].evaluation_correct"),
    ("histories.0.0.train_seconds", None, "histories[0][0].train_seconds"),
    ("seconds", [1.0], "seconds"),
]

STACK = [
    ("kind", "stacks", "kind"),
    ("network.seeds", 3, "network.seeds"),
    ("network.seeds", [0, 1, "2"], "network.seeds[2]"),
    ("network.seeds", [], "network.seeds"),
    ("training.eta", 0.5, "training.eta"),
    ("training.eta", [0.5, 1.0], "training.eta"),
    ("training.eta", [0.5, "1", 3.0], "training.eta[1]"),
    ("training.lmbda", [0.0, 0.0, None], "training.lmbda[2]"),
    ("rngs", {}, "rngs"),
    ("rngs.2", [], "rngs[2]"),
    ("diverged", [[2, 1, 0]], "diverged[0]"),
    ("diverged", [[3, 1]], "diverged[0][0]"),
    ("diverged", [[2, 5]], "diverged[0][1]"),
    ("diverged", [[2, 1], [2, 1]], "diverged"),
    ("seconds", [1.0], "seconds"),
    ("seconds", ["1", 1.0, 1.0], "seconds[0]"),
    ("histories", [[], [], []], "histories[0]"),
    ("histories.1.2.evaluation_total", 0, "histories[1][2].evaluation_total"),
]


def as_layout_1(meta: dict[str, Any]) -> dict[str, Any]:
    """A network's layout-3 header as layout 1 held it (what gpunets before layout 3
    wrote for one network)."""
    old = {k: v for k, v in meta.items()
           if k not in ("kind", "rngs", "histories", "diverged", "seconds")}
    network = {k: v for k, v in meta["network"].items() if k != "seeds"}
    training = dict(meta["training"], eta=meta["training"]["eta"][0],
                    lmbda=meta["training"]["lmbda"][0])
    return {**old, "version": 1, "network": {**network, "seed": meta["network"]["seeds"][0]},
            "training": training, "rng": meta["rngs"][0], "history": meta["histories"][0]}


@pytest.mark.parametrize("layout, field, value, named",
                         [(3, *case) for case in ONE_NETWORK + LAYOUT_3]
                         + [(1, *case) for case in ONE_NETWORK + LAYOUT_1])
def test_each_edited_field_of_a_network_checkpoint_is_named(tmp_path, good, layout, field,
                                                          value, named):
    """One ``ValueError`` naming the file and the field, for a value of another type or
    out of range, in a network's checkpoint of layout 3 (today's) and of layout 1 (the
    old reader's messages named neither the field nor, for some, the file; a list for
    ``training.eta`` in layout 1 was taken)."""
    meta, parameters = good
    if layout == 1:
        meta, parameters = as_layout_1(meta), parameters.reshape(-1)
    path = tmp_path / "edited.ckpt"
    write_zip(path, [{"name": "meta.npy", "data": meta_npy(_edited(meta, field, value))},
                     {"name": "parameters.npy", "data": npy(parameters)}])
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(f"{path}: {named} "), str(info.value)


@pytest.mark.parametrize("field, value, named", STACK)
def test_each_edited_field_of_a_stack_checkpoint_is_named(tmp_path, stack_good, field,
                                                        value, named):
    meta, parameters = stack_good
    assert meta["diverged"] == [[2, 1]]  # the fixture's third network diverged in epoch 1
    path = tmp_path / "edited.ckpt"
    write_zip(path, [{"name": "meta.npy", "data": meta_npy(_edited(meta, field, value))},
                     {"name": "parameters.npy", "data": npy(parameters)}])
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(f"{path}: {named} "), str(info.value)


# ------------------------------------------------------ old files still load
def _layout_1_meta(labels_sha256: str) -> dict[str, Any]:
    """A checkpoint's header exactly as gpunet wrote layout 1 from its first
    checkpoints (eed3045) on: keys, types and nesting frozen here."""
    return {
        "format": "gpunet-checkpoint", "version": 1, "gpunet_version": "0.1.0",
        "epochs_done": 1,
        "network": {"sizes": [4, 3, 2], "cost": "CrossEntropyCost", "init": "default",
                    "dtype": "float64", "seed": 5},
        "training": {"epochs": 3, "mini_batch_size": 5, "eta": 0.5, "lmbda": 0.0,
                     "monitor_evaluation_cost": False, "monitor_evaluation_accuracy": True,
                     "monitor_training_cost": True, "monitor_training_accuracy": False,
                     "engine": "auto"},
        "data": {"n_train": 20, "labels_sha256": labels_sha256, "n_evaluation": 20},
        "run": {"options": {"sizes": [4, 3, 2]}},
        "rng": np.random.default_rng(5).bit_generator.state,
        "engine": "eager",
        "history": [{"epoch": 0, "train_seconds": 0.01, "training_cost": 0.7,
                     "evaluation_correct": 11, "evaluation_total": 20}],
    }


def test_layout_1_and_2_files_of_earlier_gpunets_load_and_resume(tmp_path):
    from gpunet.training.checkpoint import labels_fingerprint
    from gpunet.io.datasets import as_examples

    X, y = checkpoint_data()
    digest = labels_fingerprint(as_examples((X, y), 4, 2))
    old = tmp_path / "layout1.ckpt"
    parameters = np.random.default_rng(1).standard_normal(23)
    write_zip(old, [{"name": "meta.npy", "data": meta_npy(_layout_1_meta(digest))},
                    {"name": "parameters.npy", "data": npy(parameters)}])
    saved = load_checkpoint(old)
    assert saved.kind == "network" and saved.epochs_done == 1
    assert np.array_equal(saved.parameters, parameters)
    net = gpunet.resume(old, (X, y), (X, y), device="cpu", checkpoint=None, verbose=False)
    assert net.history.epochs == [0, 1, 2]

    meta = _layout_1_meta(digest)  # the same run as a stack of two (layout 2, 370600f)
    meta.update(version=2, kind="stack", rngs=[meta["rng"]] * 2,
                histories=[meta["history"]] * 2, diverged=[], seconds=[0.01])
    del meta["rng"], meta["history"]
    meta["network"]["seeds"] = [5, 6]
    del meta["network"]["seed"]
    meta["training"].update(eta=[0.5, 1.0], lmbda=[0.0, 0.0])
    stack = tmp_path / "layout2.ckpt"
    write_zip(stack, [{"name": "meta.npy", "data": meta_npy(meta)},
                      {"name": "parameters.npy", "data": npy(np.stack([parameters] * 2))}])
    assert load_checkpoint(stack).kind == "stack"
    resumed = gpunet.resume(stack, (X, y), (X, y), device="cpu", checkpoint=None,
                            verbose=False)
    assert [h.epochs for h in resumed.histories] == [[0, 1, 2]] * 2
