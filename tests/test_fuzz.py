"""The file readers never crash on malformed input: fuzzed with Hypothesis (issue 18).

Each reader gets valid files damaged the ways files get damaged: truncated, bits
flipped, bytes inserted, and (for JSON content) a field replaced by another JSON value
or deleted. Whatever it gets, a reader returns or raises one ``ValueError`` (the CLI's
one-line ``gpunet: error:``), never another exception. Example counts are fixed and the
search derandomized, so CI runs the same cases every time, in a few seconds each.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz tests need Hypothesis "
                                 "(the test extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import gpunet  # noqa: E402
from gpunet.training.checkpoint import load_checkpoint
from gpunet.cli import main

FUZZ = settings(max_examples=60, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=8)
    | st.floats(allow_nan=True, allow_infinity=True),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6)


@st.composite
def damaged(draw: Any, good: bytes) -> bytes:
    """``good`` truncated, with bits flipped, or with bytes inserted."""
    data = bytearray(good)
    how = draw(st.sampled_from(["truncate", "flip", "insert"]))
    if how == "truncate":
        return bytes(data[:draw(st.integers(0, max(len(data) - 1, 0)))])
    if how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    i = draw(st.integers(0, len(data)))
    return bytes(data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:])


@st.composite
def field_edited(draw: Any, value: Any) -> Any:
    """A deep copy of the JSON ``value`` with one field replaced or deleted."""
    value = json.loads(json.dumps(value))
    node, parent, key = value, None, None
    for _ in range(draw(st.integers(0, 4))):  # how deep the edited field lies
        if not isinstance(node, (dict, list)) or not node:
            break
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, draw(st.sampled_from(keys))
        node = node[key]
    if parent is None:
        return draw(JSON_VALUES)
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[key]
    else:
        parent[key] = draw(JSON_VALUES)
    return value


def _returns_or_value_error(read: Any, *args: Any) -> None:
    try:
        read(*args)
    except ValueError:
        pass


# --------------------------------------------------------------- network files
@pytest.fixture(scope="module")
def network_json(tmp_path_factory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("net") / "net.json"
    gpunet.Network([4, 3, 2], seed=0, device="cpu").save(path)
    return json.loads(path.read_text())


@FUZZ
@given(data=st.data())
def test_load_never_crashes(tmp_path, network_json, data):
    path = tmp_path / "net.json"
    good = json.dumps(network_json).encode()
    if data.draw(st.booleans()):
        path.write_bytes(data.draw(damaged(good)))
    else:
        path.write_text(json.dumps(data.draw(field_edited(network_json))))
    _returns_or_value_error(gpunet.load, path, "cpu")


# ------------------------------------------------------------------ checkpoints
def checkpoint_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((20, 4)), rng.integers(0, 2, 20)


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "run.ckpt"
    X, y = checkpoint_data()
    gpunet.Network([4, 3, 2], seed=0, device="cpu").SGD(
        (X, y), 2, 5, 0.5, evaluation_data=(X, y), monitor_evaluation_accuracy=True,
        verbose=False, checkpoint=path)
    return path


def _with_meta(meta: Any, parameters: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
             parameters=parameters)
    return buffer.getvalue()


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_load_checkpoint_never_crashes(tmp_path, checkpoint_file, data):
    path = tmp_path / "run.ckpt"
    if data.draw(st.booleans()):
        path.write_bytes(data.draw(damaged(checkpoint_file.read_bytes())))
    else:
        with np.load(checkpoint_file) as archive:
            meta, parameters = json.loads(archive["meta"].tobytes()), archive["parameters"]
        path.write_bytes(_with_meta(data.draw(field_edited(meta)), parameters))
    try:
        saved = load_checkpoint(path)
    except ValueError:
        return
    # What it accepted resumes like a checkpoint (no garbage got through): one more
    # epoch on the run's data, or a ValueError about the data, or divergence (an η
    # that is valid but huge).
    X, y = checkpoint_data()
    try:
        gpunet.resume(path, (X, y), (X, y), epochs=saved.epochs_done + 1, device="cpu",
                      checkpoint=None, verbose=False)
    except (ValueError, FloatingPointError):
        pass


# ------------------------------------------------------------------ digit images
@pytest.fixture(scope="module")
def png_digit(mnist) -> bytes:
    PIL = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    levels = np.round(255 * (1 - mnist.test[0][0].reshape(28, 28))).astype(np.uint8)
    PIL.fromarray(levels).save(buffer, format="PNG")
    return buffer.getvalue()


@FUZZ
@given(data=st.data())
def test_read_digit_never_crashes_on_damaged_images(tmp_path, png_digit, data):
    path = tmp_path / "digit.png"
    path.write_bytes(data.draw(damaged(png_digit)))
    _returns_or_value_error(gpunet.read_digit, path)


@FUZZ
@given(a=st.one_of(
    st.builds(lambda shape, fill: np.full(shape, fill),
              st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple),
              st.floats(allow_nan=True, allow_infinity=True) | st.integers(-300, 300)),
    st.builds(lambda shape, seed: np.random.default_rng(seed).random(shape) * 300,
              st.lists(st.integers(1, 40), min_size=1, max_size=3).map(tuple),
              st.integers(0, 9)),
    st.sampled_from([np.array(["a", "b"]), np.array([True, False]), np.zeros((2, 2, 5))])))
def test_read_digit_never_crashes_on_odd_arrays(tmp_path, a):
    path = tmp_path / "digit.npy"
    np.save(path, a)
    _returns_or_value_error(gpunet.read_digit, path)


# --------------------------------------------------------------- metrics files
@pytest.fixture(scope="module")
def metrics_lines(tmp_path_factory) -> list[Any]:
    path = tmp_path_factory.mktemp("metrics") / "m.jsonl"
    assert main(["train", "--device", "cpu", "--limit", "100", "--epochs", "2", "--sizes",
                 "784,5,10", "--quiet", "--monitor-training-cost", "--metrics",
                 str(path)]) == 0
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.filterwarnings("ignore")
@FUZZ
@given(data=st.data())
def test_plot_never_crashes(tmp_path, metrics_lines, data, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "m.jsonl"
    good = "".join(json.dumps(r) + "\n" for r in metrics_lines).encode()
    if data.draw(st.booleans()):
        path.write_bytes(data.draw(damaged(good)))
    else:
        edited = data.draw(field_edited(metrics_lines))
        lines = edited if isinstance(edited, list) else [edited]
        path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert main(["plot", str(path), "-o", str(tmp_path / "c.png")]) in (0, 2)
    assert "Traceback" not in capsys.readouterr().err


# ----------------------------------------------------- reproduce --render-only
@pytest.fixture(scope="module")
def results_json(tmp_path_factory) -> Any:
    out = tmp_path_factory.mktemp("reproduction")
    assert main(["reproduce", "--quick", "--only", "toy", "--no-plots", "--no-svm",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results" / "results.json").read_text())
    # a small experiment entry, as a run of chapter1 writes it, so every section renders
    results["experiments"]["chapter1"] = {
        "config": {"title": "Chapter 1", "sizes": [784, 30, 10], "cost": "quadratic",
                   "eta": 3.0, "book": "95.42%", "expected": ">= 95%"},
        "epochs": 2, "runs": [{"seed": 0, "accuracy": [900, 920], "total": 1000,
                               "best": 920, "best_epoch": 1, "final": 920,
                               "train_seconds": [0.1, 0.1]}],
        "summary": {"best_of_runs_pct": 92.0, "mean_best_pct": 92.0, "std_best_pct": 0.0,
                    "mean_final_pct": 92.0, "median_epoch_seconds": 0.1,
                    "within_range": None}}
    return results


@FUZZ
@given(data=st.data())
def test_render_only_never_crashes(tmp_path, results_json, data, capsys):
    path = tmp_path / "out" / "results" / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    good = json.dumps(results_json).encode()
    if data.draw(st.booleans()):
        path.write_bytes(data.draw(damaged(good)))
    else:
        path.write_text(json.dumps(data.draw(field_edited(results_json))))
    assert main(["reproduce", "--render-only", "--no-plots", "--out",
                 str(tmp_path / "out")]) in (0, 2)
    assert "Traceback" not in capsys.readouterr().err
    shutil.rmtree(tmp_path / "out")


def test_an_idx_header_whose_shape_overflows_is_named(tmp_path):
    """2**31 × 2**31 × 4 wraps to 0 in int64: the length check once passed and NumPy's
    reshape message came out instead of one naming the file."""
    import gzip
    import struct

    from gpunet.io.mnist import BUNDLED, load_mnist

    for f in BUNDLED.glob("*.gz"):
        shutil.copy(f, tmp_path)
    header = bytes([0, 0, 8, 3]) + struct.pack(">III", 2**31, 2**31, 4)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: its header declares "
                       r"shape \(2147483648, 2147483648, 4\)"):
        load_mnist(tmp_path)


# ======================================= issue 26: readers that refuse before they spend
from test_readers_checkpoint import (SMALL_PEAK, meta_npy, npy, npy_header,  # noqa: E402
                                     peak_of, write_zip)
from test_readers_recorded import (rewritten, sweep_ckpt,  # noqa: E402,F401
                                   tiny_data, train_ckpt)

JSON_TYPES = (type(None), bool, int, float, str, list, dict)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every field's path in a JSON document (keys and indices), sections included."""
    out = []
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else ())
    for key, child in items:
        out.append(prefix + (key,))
        out.extend(_paths(child, prefix + (key,)))
    return out


@st.composite
def retyped(draw: Any, meta: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``meta`` with one field, anywhere (the run section's too), replaced by a value
    of another JSON type; and the field's name."""
    meta = json.loads(json.dumps(meta))
    path = draw(st.sampled_from(_paths(meta)))
    node = meta
    for key in path[:-1]:
        node = node[key]
    old = node[path[-1]]
    node[path[-1]] = draw(JSON_VALUES.filter(lambda v: type(v) is not type(old)))
    return meta, ".".join(map(str, path))


def _meta_of(path: Path) -> dict[str, Any]:
    with np.load(path) as archive:
        return json.loads(archive["meta"].tobytes())


def _read_and_check(path: Path, command: str) -> None:
    from gpunet.cli.recorded import check_sweep_record, check_train_record

    saved = load_checkpoint(path)
    {"train": check_train_record, "sweep": check_sweep_record}[command](saved)


@pytest.mark.parametrize("command", ["train", "sweep"])
@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_checkpoint_fields_by_type(tmp_path, train_ckpt, sweep_ckpt, command, data):
    """Every field of a train and a sweep checkpoint, the run section included, replaced
    by a value of another JSON type: the reader and the record's check return or raise
    one ValueError naming the file."""
    source = train_ckpt if command == "train" else sweep_ckpt
    meta, field = data.draw(retyped(_meta_of(source)))
    path = rewritten(source, tmp_path / "edited.ckpt", lambda m: (m.clear(), m.update(meta)))
    try:
        _read_and_check(path, command)
    except ValueError as exc:
        assert str(exc).startswith(str(path)), (field, str(exc))


@pytest.mark.parametrize("command", ["train", "sweep"])
@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_resume_of_edited_checkpoints_is_one_line(tmp_path, train_ckpt, sweep_ckpt,
                                                  capsys, command, data):
    """The same through ``gpunet train --resume`` and ``gpunet sweep --resume``: one
    ``gpunet: error:`` line and exit 2, or the run resumed (exit 0); never a
    traceback."""
    source = train_ckpt if command == "train" else sweep_ckpt
    meta, field = data.draw(retyped(_meta_of(source)))
    path = rewritten(source, tmp_path / "edited.ckpt", lambda m: (m.clear(), m.update(meta)))
    status = main([command, "--resume", str(path), "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert status in (0, 2), (field, status, err)
    if status == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"gpunet: error: {path}"), (field, err)


NPY_DTYPES = ["<f4", "<f8", ">f8", "<i8", "|u1", "<c16", "|O", "<U3", "|V8", "<f2"]


@FUZZ
@given(dtype=st.sampled_from(NPY_DTYPES), fortran=st.booleans(),
       shape=st.lists(st.integers(0, 2**40) | st.integers(0, 30), max_size=3).map(tuple),
       data_bytes=st.integers(0, 400), size=st.none() | st.integers(0, 2**40),
       member=st.sampled_from(["parameters", "finished", "meta"]))
def test_npz_member_headers(tmp_path, dtype, fortran, shape, data_bytes, size, member):
    """A member whose ``.npy`` header declares any dtype and shape, and whose zip entry
    declares any size: refused (one ValueError naming the file) or read, and never more
    than 32 MiB allocated, whatever the declarations say."""
    path = tmp_path / "member.ckpt"
    meta = _meta_of_small()
    parameters = np.zeros(23, dtype=np.float32)
    members = {"meta": meta_npy(meta), "parameters": npy(parameters)}
    members[member] = npy_header(dtype, shape, fortran) + bytes(data_bytes)
    entries = [{"name": f"{name}.npy", "data": blob} for name, blob in members.items()]
    if size is not None:
        entries[-1]["size"] = entries[-1]["csize"] = size
    write_zip(path, entries)
    raised, peak = peak_of(lambda: load_checkpoint(path))
    assert raised is None or (isinstance(raised, ValueError)
                              and str(raised).startswith(str(path))), raised
    assert peak < SMALL_PEAK, peak


_SMALL_META: list[dict[str, Any]] = []


def _meta_of_small() -> dict[str, Any]:
    """A [4, 3, 2] float32 network's checkpoint meta (made once)."""
    if not _SMALL_META:
        import tempfile

        from test_readers_checkpoint import checkpoint_data

        with tempfile.TemporaryDirectory() as tmp:
            X, y = checkpoint_data()
            path = Path(tmp) / "c.ckpt"
            gpunet.Network([4, 3, 2], seed=0, device="cpu").SGD(
                (X, y), 1, 5, 0.5, verbose=False, checkpoint=path)
            _SMALL_META.append(_meta_of(path))
    return _SMALL_META[0]


IDX_NAMES = {"train-images-idx3-ubyte": 3, "train-labels-idx1-ubyte": 1,
             "t10k-images-idx3-ubyte": 3, "t10k-labels-idx1-ubyte": 1}


@FUZZ
@given(name=st.sampled_from(sorted(IDX_NAMES)),
       magic=st.sampled_from([b"\0\0\x08\x03", b"\0\0\x08\x01", b"\0\0\x09\x03"])
       | st.binary(min_size=4, max_size=4),
       dims=st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 70000)
                     | st.sampled_from([28, 10000, 60000]), min_size=0, max_size=4),
       body=st.integers(0, 3000), gzipped=st.booleans(), cut=st.integers(0, 40))
def test_idx_and_gzip_headers(tmp_path, name, magic, dims, body, gzipped, cut):
    """One MNIST file with any IDX header (magic, dimensions) and a little data, gzipped
    or not, its gzip stream cut short or not: one MNISTError naming a file of the
    folder, never another exception (the other three files are the bundled ones)."""
    import gzip as gz
    import struct

    from gpunet.io.mnist import BUNDLED, load_mnist

    import tempfile

    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))  # a folder of its own per example
    for other in IDX_NAMES:
        if other != name:
            (tmp_path / f"{other}.gz").symlink_to(BUNDLED / f"{other}.gz")
    raw = magic + struct.pack(f">{len(dims)}I", *dims) + bytes(body)
    if gzipped:
        raw = gz.compress(raw)
        raw = raw[:len(raw) - cut] if cut < len(raw) else raw
        (tmp_path / f"{name}.gz").write_bytes(raw)
    else:
        (tmp_path / name).write_bytes(raw)
    with pytest.raises(ValueError) as info:
        load_mnist(tmp_path)
    assert str(info.value).startswith(str(tmp_path)), str(info.value)


@st.composite
def runs_file(draw: Any, sweep: bool) -> tuple[list[dict[str, Any]], int]:
    """Metrics records of runs written one after another, with or without headers:
    the records, and how many epoch records they hold."""
    records: list[dict[str, Any]] = []
    count = 0
    for k in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            header: dict[str, Any] = {"gpunet_metrics": 1, "seed": k,
                                      "settings": {"eta": 3.0}}
            if sweep:
                header["sweep"] = {"networks": 2}
            records.append(header)
        epochs = draw(st.lists(st.integers(0, 5), min_size=1, max_size=6, unique=True))
        for j in epochs:
            record = {"epoch": j, "evaluation_correct": 10 * j, "evaluation_total": 100}
            for seed in ([0, 1] if sweep else [None]):
                records.append({"run": {"eta": 3.0, "lmbda": 0.0, "seed": seed}, **record}
                               if sweep else record)
                count += 1
    return records, count


def _read_runs(path: Path, sweep: bool) -> tuple[list[Any], bool, Any]:
    """The histories of every run in ``path``, whether it holds several runs (sweeps),
    and the reader of a file of one."""
    from gpunet.training.history import (read_metrics, read_metrics_runs,
                                         read_sweep_metrics, read_sweeps)

    if sweep:
        sweeps = read_sweeps(path)
        return [h for s in sweeps for _, h in s.runs], len(sweeps) > 1, read_sweep_metrics
    runs = read_metrics_runs(path)
    return [r.history for r in runs], len(runs) > 1, read_metrics


@pytest.mark.parametrize("sweep", [False, True])
@FUZZ
@given(data=st.data())
def test_metrics_files_with_several_runs(tmp_path, sweep, data):
    """Runs joined in one file: every epoch record is read into exactly one run (none
    replaced by another run's), each run's epochs once; the one-run reader refuses a
    file of several."""
    records, count = data.draw(runs_file(sweep))
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    found, several, one = _read_runs(path, sweep)
    assert sum(len(h.records) for h in found) == count
    assert all(len(set(h.epochs)) == len(h.epochs) for h in found)
    if several:
        with pytest.raises(ValueError, match=r"holds \d+ (runs|sweeps)"):
            one(path)
    else:
        one(path)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("sweep", [False, True])
@settings(FUZZ, max_examples=8)
@given(data=st.data())
def test_plot_draws_every_run_of_a_file(tmp_path, capsys, sweep, data):
    """``gpunet plot`` of such a file draws one curve per run (per network and sweep)."""
    pytest.importorskip("matplotlib")
    records, _ = data.draw(runs_file(sweep))
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    n = len(_read_runs(path, sweep)[0])
    capsys.readouterr()
    assert main(["plot", str(path), "-o", str(tmp_path / "p.png")]) == 0
    assert f"({n} run{'s' if n != 1 else ''})" in capsys.readouterr().out
