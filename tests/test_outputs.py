"""One output policy for every command (issue 18, gpunet/outputs.py).

Checked before any work, no shared paths, checkpoints never replaced by another run,
a lock while a run holds one, links written through, write errors that name the file
and leave the other outputs written, hostile sizes and seed ranges refused at once.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import gpunet
from conftest import ROOT
from gpunet.training.checkpoint import load_checkpoint
from gpunet.cli import main
from gpunet.io.outputs import WriteError, atomic_write_text, hold_lock

TRAIN = ["train", "--device", "cpu", "--limit", "300", "--epochs", "2", "--sizes",
         "784,10,10", "--seed", "1", "--quiet"]


@pytest.mark.parametrize("flags", [
    ["--save", "{x}", "--checkpoint", "{x}"],
    ["--save", "{x}", "--metrics", "{x}"],
    ["--metrics", "{x}", "--plot", "{x}"],
])
def test_two_outputs_may_not_share_a_path(tmp_path, capsys, flags):
    x = tmp_path / "out"
    assert main(TRAIN + [f.format(x=x) for f in flags]) == 2
    out, err = capsys.readouterr()
    assert "name the same file" in err and "device:" not in out  # before any work
    assert not x.exists()


def test_resume_may_not_be_overwritten_by_save_but_goes_on_as_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "run.ckpt"
    assert main(TRAIN + ["--checkpoint", str(ckpt)]) == 0
    before = ckpt.read_bytes()
    link = tmp_path / "alias.ckpt"
    link.symlink_to(ckpt)  # the same file by another name
    assert main(["train", "--resume", str(ckpt), "--save", str(link), "--quiet"]) == 2
    assert "name the same file" in capsys.readouterr().err
    assert ckpt.read_bytes() == before
    assert main(["train", "--resume", str(ckpt), "--epochs", "3", "--quiet"]) == 0
    assert load_checkpoint(ckpt).epochs_done == 3


def test_an_existing_checkpoint_is_replaced_only_with_overwrite(tmp_path, capsys):
    ckpt = tmp_path / "run.ckpt"
    assert main(TRAIN + ["--checkpoint", str(ckpt)]) == 0
    before = ckpt.read_bytes()
    capsys.readouterr()
    assert main(TRAIN + ["--checkpoint", str(ckpt), "--seed", "2"]) == 2
    out, err = capsys.readouterr()
    assert "already exists" in err and f"--resume {ckpt}" in err and "device:" not in out
    assert ckpt.read_bytes() == before
    assert main(TRAIN + ["--checkpoint", str(ckpt), "--seed", "2", "--overwrite"]) == 0
    assert load_checkpoint(ckpt).network_settings["seed"] == 2


def test_a_checkpoint_held_by_another_run_is_refused(tmp_path, capsys):
    ckpt = tmp_path / "run.ckpt"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from gpunet.io.outputs import hold_lock\n"
         f"with hold_lock({str(ckpt)!r}):\n print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(TRAIN + ["--checkpoint", str(ckpt)]) == 2
        err = capsys.readouterr().err
        assert "in use by another run" in err and f"process {holder.pid}" in err
        with pytest.raises(ValueError, match="in use"):  # the library's SGD too
            gpunet.Network([784, 10], device="cpu").SGD(
                (np.zeros((10, 784)), np.zeros(10, dtype=int)), 1, 10, 0.1,
                checkpoint=ckpt, verbose=False)
    finally:
        holder.communicate("", timeout=30)
    assert main(TRAIN + ["--checkpoint", str(ckpt)]) == 0  # released with its holder
    assert not (tmp_path / ".run.ckpt.lock").exists()
    with hold_lock(ckpt), hold_lock(ckpt):  # the same process may take it again
        pass


def test_a_symbolic_link_is_written_through_and_stays_a_link(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target, link = real_dir / "metrics.jsonl", tmp_path / "m.jsonl"
    link.symlink_to(target)  # dangling until written
    assert main(TRAIN + ["--metrics", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r.get("epoch") for r in rows[1:]] == [0, 1]
    assert sorted(p.name for p in real_dir.iterdir()) == ["metrics.jsonl"]  # no temp left


def test_a_link_to_something_that_is_not_a_file_is_refused(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "m.jsonl"
    link.symlink_to(fifo)
    assert main(TRAIN + ["--metrics", str(link)]) == 2
    assert "is a pipe, not a file" in capsys.readouterr().err
    assert link.is_symlink() and fifo.exists()  # neither replaced
    with pytest.raises(ValueError, match="pipe"):
        atomic_write_text(fifo, "x")


def _fail_writes_to(monkeypatch, name: str, code: int = errno.ENOSPC):
    """Every atomic write whose temporary file is for ``name`` fails with ``code``."""
    real = os.fsync

    def fsync(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(f".{name}."):
            raise OSError(code, os.strerror(code))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_full_disk_for_the_checkpoint_still_writes_the_other_outputs(
        tmp_path, monkeypatch, capsys):
    ckpt, save, metrics = tmp_path / "run.ckpt", tmp_path / "net.json", tmp_path / "m.jsonl"
    _fail_writes_to(monkeypatch, "run.ckpt")
    status = main(TRAIN + ["--checkpoint", str(ckpt), "--save", str(save),
                           "--metrics", str(metrics)])
    out, err = capsys.readouterr()
    assert status == 1 and "Traceback" not in err
    assert f"cannot write --checkpoint {ckpt}: No space left on device" in err
    assert gpunet.load(save, device="cpu").sizes == [784, 10, 10]  # still saved
    assert len(metrics.read_text().splitlines()) == 2  # header and epoch 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl", "net.json"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EACCES])
def test_a_failed_save_keeps_the_earlier_file_and_the_checkpoint(tmp_path, monkeypatch,
                                                                  capsys, code):
    pytest.importorskip("matplotlib")
    ckpt, save, plot = tmp_path / "run.ckpt", tmp_path / "net.json", tmp_path / "c.png"
    save.write_text("the earlier network")
    _fail_writes_to(monkeypatch, "net.json", code)
    assert main(TRAIN + ["--checkpoint", str(ckpt), "--save", str(save),
                         "--plot", str(plot)]) == 1
    err = capsys.readouterr().err
    assert f"cannot write --save {save}: {os.strerror(code)}" in err
    assert err.count("gpunet: error:") == 1 and "Traceback" not in err
    assert save.read_text() == "the earlier network"  # never half-written
    assert load_checkpoint(ckpt).epochs_done == 2  # the trained network is not lost
    assert plot.read_bytes().startswith(b"\x89PNG")  # the outputs after it still written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "net.json", "run.ckpt"]


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--device", "cpu", "--limit", "300", "--epochs", "1", "--save-dir", "{file}"],
     "exists and is not a directory"),
    (["sweep", "--device", "cpu", "--limit", "300", "--epochs", "1", "--metrics", "{dir}"],
     "is a directory"),
    (["check", "--device", "cpu", "--json", "{dir}"], "is a directory"),
    (["reproduce", "--quick", "--out", "{file}"], "exists and is not a directory"),
    (["evaluate", "{net}", "--plot", "{net}"], "name the same file"),
    (["plot", "{file}", "-o", "{file}"], "name the same file"),
])
def test_every_command_checks_its_outputs_before_any_work(tmp_path, capsys, argv, message):
    file, folder, net = tmp_path / "a_file", tmp_path / "a_dir", tmp_path / "net.json"
    file.write_text("{}")
    folder.mkdir()
    gpunet.Network([784, 10], device="cpu").save(net)
    started = time.perf_counter()
    assert main([a.format(file=file, dir=folder, net=net) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert message in err and "device:" not in out
    assert time.perf_counter() - started < 10  # nothing trained, checked or reproduced


def test_library_checkpoint_in_a_directory_fails_before_training(tmp_path):
    epochs = []
    with pytest.raises(ValueError, match="is a directory"):
        gpunet.Network([784, 10], device="cpu").SGD(
            (np.zeros((10, 784)), np.zeros(10, dtype=int)), 3, 10, 0.1, verbose=False,
            checkpoint=tmp_path, callback=epochs.append)
    assert epochs == []


def test_sweep_file_names_never_collide(tmp_path, capsys):
    nets = tmp_path / "nets"
    assert main(["sweep", "--device", "cpu", "--limit", "200", "--epochs", "1", "--sizes",
                 "784,10,10", "--eta", "0.1234561,0.1234562", "--save-dir", str(nets)]) == 0
    assert len(list(nets.glob("*.json"))) == 2 and "saved 2 networks" in capsys.readouterr().out


def test_hostile_sizes_and_seed_ranges_are_refused_at_once(capsys):
    from gpunet import sweep as sw

    started = time.perf_counter()
    assert main(["train", "--device", "cpu", "--sizes", "784,100000000,10"]) == 2
    out, err = capsys.readouterr()
    assert "parameters need about" in err and "GiB" in err and "device:" not in out
    with pytest.raises(ValueError, match="more than 1,000,000 seeds"):
        sw.parse_seeds("0-10000000000000")
    runs = sw.expand_grid([0.5], [0.0], sw.parse_seeds("0-199999"))  # linear, not n²
    assert len(runs) == 200_000
    with pytest.raises(ValueError, match="lists 3 more than once"):
        sw.expand_grid([0.5], [0.0], list(range(100_000)) + [3])
    assert time.perf_counter() - started < 20


def test_the_library_estimates_memory_before_allocating():
    from gpunet.networks.stack import NetworkStack

    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"79,500,000,010 parameters need about .* GiB"):
        gpunet.Network([784, 10**8, 10], device="cpu")
    with pytest.raises(ValueError, match="1000 networks of"):
        NetworkStack([784, 10**6, 10], seeds=list(range(1000)), device="cpu")
    assert time.perf_counter() - started < 2


def test_a_small_network_file_cannot_claim_a_huge_network(tmp_path):
    path = tmp_path / "huge.json"
    path.write_text(json.dumps({"sizes": [784, 100_000_000, 10], "weights": [[[0.0]], [[0.0]]],
                                "biases": [[0.0], [0.0]], "cost": "QuadraticCost"}))
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"weights\[0\] has 1 item, not 100000000 items"):
        gpunet.load(path, device="cpu")
    assert time.perf_counter() - started < 2


def test_resume_finds_moved_data_by_its_fingerprint(tmp_path, capsys):
    from gpunet.io.mnist import BUNDLED

    data, moved = tmp_path / "mnist", tmp_path / "moved"
    shutil.copytree(BUNDLED, data)
    ckpt = tmp_path / "run.ckpt"
    assert main(TRAIN + ["--data", str(data), "--checkpoint", str(ckpt)]) == 0
    data.rename(moved)
    assert main(["train", "--resume", str(ckpt), "--epochs", "3", "--quiet"]) == 2
    assert "no longer exists" in capsys.readouterr().err
    assert main(["train", "--resume", str(ckpt), "--epochs", "3", "--quiet",
                 "--data", str(moved)]) == 0
    assert load_checkpoint(ckpt).epochs_done == 3
    capsys.readouterr()
    # other data (one training label changed) is refused by the fingerprint
    labels = moved / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[8] = (raw[8] + 1) % 10  # the first image's label (after the 8-byte header)
    labels.write_bytes(gzip.compress(bytes(raw)))
    (moved / "SHA256SUMS").unlink()  # not the bundled copy any more
    (moved / "RAW-SHA256SUMS").unlink()
    assert main(["train", "--resume", str(ckpt), "--epochs", "4", "--quiet",
                 "--data", str(moved)]) == 2
    assert "training data differs" in capsys.readouterr().err
    assert load_checkpoint(ckpt).epochs_done == 3


@pytest.mark.parametrize("field, value, message", [
    (("training", "mini_batch_size"), 0, "training.mini_batch_size is 0"),
    (("training", "eta"), float("nan"), "eta"),
    (("training", "eta"), -3.0, "eta"),
    (("epochs_done",), -1, "epochs_done is -1"),
    (("rngs",), [{"bit_generator": "PCG64", "state": "garbage"}], "PCG64 generator's state"),
    (("network", "sizes"), [784, 10**9, 10], "member 'parameters' holds"),
    (("histories",), [[{"epoch": 5}]], "histories"),
    (("data", "labels_sha256"), "abc", "SHA-256"),
])
def test_every_checkpoint_field_is_validated_on_load(tmp_path, capsys, field, value, message):
    import io

    ckpt = tmp_path / "run.ckpt"
    assert main(TRAIN + ["--checkpoint", str(ckpt)]) == 0
    with np.load(ckpt) as archive:
        meta, parameters = json.loads(archive["meta"].tobytes()), archive["parameters"]
    node = meta
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = value
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
             parameters=parameters)
    ckpt.write_bytes(buffer.getvalue())
    capsys.readouterr()
    assert main(["train", "--resume", str(ckpt), "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert str(ckpt) in err and message in err and "device:" not in out


# ------------------------------------------------- issue 26: locks and names, hostile
@pytest.mark.parametrize("plant", ["symlink", "dangling symlink", "hard link", "directory"])
def test_a_planted_lock_file_is_never_written_through(tmp_path, capsys, plant):
    """A link (or anything but gpunet's own plain file) where the lock goes is refused,
    and the file it points to keeps its bytes: no truncation, no process id."""
    ckpt = tmp_path / "run.ckpt"
    victim = tmp_path / "precious.txt"
    victim.write_text("the user's own work\n")
    lock = tmp_path / ".run.ckpt.lock"
    if plant == "symlink":
        lock.symlink_to(victim)
    elif plant == "dangling symlink":
        lock.symlink_to(tmp_path / "made-by-the-lock")
    elif plant == "hard link":
        os.link(victim, lock)
    else:
        lock.mkdir()
    assert main(TRAIN + ["--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "lock file" in err and "never writes through it" in err and "Traceback" not in err
    assert victim.read_text() == "the user's own work\n"
    assert not (tmp_path / "made-by-the-lock").exists()
    assert not ckpt.exists()  # refused before any work


def test_a_stale_plain_lock_file_is_taken_over(tmp_path):
    """A lock file left by a run that died (no process holds it) is gpunet's own."""
    ckpt = tmp_path / "run.ckpt"
    (tmp_path / ".run.ckpt.lock").write_text("12345")
    assert main(TRAIN + ["--checkpoint", str(ckpt)]) == 0
    assert load_checkpoint(ckpt).epochs_done == 2
    assert not (tmp_path / ".run.ckpt.lock").exists()


@pytest.mark.parametrize("length", [240, 251, 255])
def test_a_long_but_valid_file_name_is_written(tmp_path, length):
    """A name up to the file system's limit (255 bytes) is valid: the temporary file,
    the write probe and the lock beside it are fitted to the limit, not refused."""
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    if limit < length:
        pytest.skip(f"the file system takes names of {limit} bytes")
    stem = "é" * ((length - 10) // 2)  # two bytes a character: cuts fall mid-character
    name = stem + "x" * (length - 10 - len(stem.encode())) + ".jsonlckpt"
    assert len(name.encode()) == length
    ckpt, metrics = tmp_path / name, tmp_path / ("m" + name[1:])
    assert main(TRAIN + ["--checkpoint", str(ckpt), "--metrics", str(metrics)]) == 0
    assert load_checkpoint(ckpt).epochs_done == 2
    assert len(metrics.read_text().splitlines()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ckpt.name, metrics.name])
    with hold_lock(ckpt):  # the lock's name fits too, and two long names' locks differ
        locks = [p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")]
        assert len(locks) == 1 and len(locks[0].encode()) <= limit
        with hold_lock(metrics):
            assert len([p for p in tmp_path.iterdir() if p.name.endswith(".lock")]) == 2
