"""Stacks and sweeps resume as single runs do (issue 17): a sweep stopped in the middle
ends, resumed, with exactly the rows and networks of a sweep never stopped (bit for bit
on the CPU), and ``NetworkStack.SGD(checkpoint=...)`` / ``gpunet.resume`` do the same for
one stack in Python.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import gpunet
import gpunet.training.hooks
from gpunet import sweep as sw
from gpunet.sweep import local as sweep_local
from gpunet.training.checkpoint import load_checkpoint
from gpunet.cli import main
from gpunet.training.history import read_sweep_metrics
from gpunet.networks.resuming import network_from
from gpunet.networks.stack import NetworkStack

# 6 networks in 3 stacks of 2, 5 epochs: small enough for seconds, big enough that a
# stop lands inside a stack with a finished stack before it and one after it.
SWEEP = ["sweep", "--device", "cpu", "--limit", "300", "--epochs", "5", "--sizes",
         "784,10,10", "--eta", "0.5,3", "--lmbda", "0,5,1", "--seeds", "0", "--stack", "2",
         "--workers", "1", "--quiet"]
# η = 3, λ = 1000 (the last stack's last network) diverges in epoch 1 (ηλ/n > 2): its
# rows say so on both sides of a stop
DIVERGING = ["--lmbda", "0,5,1000"]


def rows_of(path):
    header, *rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert "gpunet_metrics" in header
    return header, sw.without_timing(rows)


def networks(directory):
    return {p.name: np.asarray(gpunet.load(p, device="cpu").parameters)
            for p in sorted(directory.glob("*.json"))}


def stop_at(monkeypatch, stack, epoch):
    """Ctrl-C right after stack ``stack`` (1-based) prints epoch ``epoch``'s line."""
    real = sw.epoch_line

    def line(i, count, rows, epochs=None, *more):
        text = real(i, count, rows, epochs, *more)
        if text.startswith(f"stack {stack}/{count}, {epoch + 1} of {epochs} epochs done:"):
            raise KeyboardInterrupt
        return text

    monkeypatch.setattr(sweep_local, "epoch_line", line)  # where run_local calls it


@pytest.fixture(scope="module")
def never_stopped(tmp_path_factory):
    """Rows and saved networks of the sweep run through without a stop."""
    tmp = tmp_path_factory.mktemp("whole")
    out = {}
    for name, extra in (("plain", []), ("diverging", DIVERGING)):
        metrics, nets = tmp / f"{name}.jsonl", tmp / name
        assert main([*SWEEP, *extra, "--metrics", str(metrics),
                     "--save-dir", str(nets)]) == 0
        out[name] = rows_of(metrics)[1], networks(nets)
    return out


@pytest.mark.parametrize("name", ["plain", "diverging"])
@pytest.mark.parametrize("stack, epoch", [(2, 2), (1, 4), (3, 2)])
def test_a_stopped_sweep_resumes_to_the_rows_and_networks_of_one_never_stopped(
        never_stopped, tmp_path, monkeypatch, capsys, name, stack, epoch):
    """Stopped in stack 2 after epoch 3 of 5 (as 17 of 30), between stacks 1 and 2, and
    in the last stack after a network of it diverged; resumed into fresh output paths."""
    extra = DIVERGING if name == "diverging" else []
    ckpt = tmp_path / "sweep.ckpt"
    stop_at(monkeypatch, stack, epoch)
    assert main([*SWEEP, *extra, "--checkpoint", str(ckpt), "--metrics",
                 str(tmp_path / "first.jsonl")]) == 130
    err = capsys.readouterr().err
    assert f"continue with: gpunet sweep --resume {ckpt}" in err
    saved = load_checkpoint(ckpt)
    assert saved.kind == "stack" and saved.run["sweep"]["stack"] == stack - 1
    assert saved.epochs_done == epoch + 1
    # the rows written before the stop are the first rows of the whole sweep
    rows, nets = never_stopped[name]
    first = rows_of(tmp_path / "first.jsonl")[1]
    assert first and all(r in rows for r in first)

    monkeypatch.undo()
    metrics, directory = tmp_path / "resumed.jsonl", tmp_path / "nets"
    assert main(["sweep", "--resume", str(ckpt), "--device", "cpu", "--metrics", str(metrics),
                 "--save-dir", str(directory), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"resuming {ckpt}: stack {stack} of 3, {epoch + 1} of 5 epochs done" in out
    header, resumed_rows = rows_of(metrics)
    assert header["resumed_from"] == {"stack": stack - 1, "epoch": epoch + 1}
    assert resumed_rows == rows  # every row of every network, in the grid's order
    resumed_nets = networks(directory)
    assert resumed_nets.keys() == nets.keys() and len(nets) == 6
    for file, parameters in nets.items():  # bit for bit
        assert np.array_equal(resumed_nets[file], parameters), file
    assert load_checkpoint(ckpt).epochs_done == 5  # the sweep's end, kept


def test_resuming_a_finished_sweep_writes_its_outputs_again(tmp_path, never_stopped, capsys):
    ckpt = tmp_path / "sweep.ckpt"
    assert main([*SWEEP, "--checkpoint", str(ckpt)]) == 0
    capsys.readouterr()
    assert main(["sweep", "--resume", str(ckpt), "--device", "cpu", "--metrics",
                 str(tmp_path / "m.jsonl"), "--quiet"]) == 0
    assert "stack 1/3, " not in capsys.readouterr().out  # nothing trained again
    assert rows_of(tmp_path / "m.jsonl")[1] == never_stopped["plain"][0]


def test_sweep_checkpoint_errors_are_one_line(tmp_path, capsys):
    ckpt = tmp_path / "sweep.ckpt"
    assert main([*SWEEP, "--epochs", "1", "--checkpoint", str(ckpt)]) == 0
    capsys.readouterr()
    cases = [
        ([*SWEEP, "--epochs", "1", "--checkpoint", str(ckpt)], "already exists"),
        (["sweep", "--resume", str(ckpt), "--eta", "0.1"], "--eta 0.1 contradicts"),
        (["sweep", "--resume", str(ckpt), "--executor", "ray"], "need --executor local"),
    ]
    net_ckpt = tmp_path / "net.ckpt"
    gpunet.Network([784, 10, 10], seed=0, device="cpu").SGD(
        _data(), 1, 10, 3.0, verbose=False, checkpoint=net_ckpt)
    cases.append((["sweep", "--resume", str(net_ckpt)], "not written by gpunet sweep"))
    for args, message in cases:
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    # --overwrite replaces it
    assert main([*SWEEP, "--epochs", "1", "--checkpoint", str(ckpt), "--overwrite"]) == 0


def test_a_resumed_sweep_takes_its_step_engine_in_either_spelling(tmp_path, capsys):
    """The step engine a sweep was started with is its own on ``--resume``: ``--engine``
    (or its old spelling ``--stack-engine``, with a note) must agree with it; the old
    ``--engine ray`` is ``--executor ray``, which a checkpoint refuses."""
    ckpt = tmp_path / "sweep.ckpt"
    assert main([*SWEEP, "--epochs", "1", "--engine", "eager", "--checkpoint", str(ckpt)]) == 0
    capsys.readouterr()
    assert main(["sweep", "--resume", str(ckpt), "--engine", "cpu"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"gpunet: error: --engine cpu contradicts {ckpt}, whose run has --engine eager; leave "
        "--engine out to resume (only --device, --workers, --data (the same data, moved), "
        "--metrics, --save-dir, --plot and --checkpoint may change)."]
    assert main(["sweep", "--resume", str(ckpt), "--stack-engine", "eager", "--quiet"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["gpunet: note: sweep --stack-engine eager is spelled --engine eager now "
                   "(as in gpunet train)"]
    assert load_checkpoint(ckpt).training["engine"] == "eager"
    assert main(["sweep", "--resume", str(ckpt), "--engine", "ray"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("gpunet: note: sweep --engine ray is spelled "
                                               "--executor ray now")
    assert err[1] == "gpunet: error: --checkpoint and --resume need --executor local."


def _data():
    from gpunet.io.mnist import load_mnist

    X, y = load_mnist().training
    return X[:300], y[:300]


# ------------------------------------------------------------- the library
def test_stack_checkpoint_and_resume_in_python(mnist, tmp_path):
    training = _data()
    test = (mnist.test[0][:500], mnist.test[1][:500])
    args = dict(eta=[0.5, 3.0, 3.0], lmbda=[0.0, 1.0, 1000.0], evaluation_data=test,
                monitor_evaluation_accuracy=True, monitor_training_cost=True,
                verbose=False, engine="eager")
    whole = NetworkStack([784, 10, 10], seeds=[0, 1, 2], device="cpu", dtype="float32",
                         cost="quadratic", init="large")
    whole.SGD(training, 4, 10, **args)
    assert whole.diverged == {2: 1}

    path = tmp_path / "stack.ckpt"
    stopped = NetworkStack([784, 10, 10], seeds=[0, 1, 2], device="cpu", dtype="float32",
                         cost="quadratic", init="large")

    def stop(records):
        if records[0]["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stopped.SGD(training, 4, 10, checkpoint=path, callback=stop, **args)
    saved = load_checkpoint(path)
    assert saved.kind == "stack" and saved.epochs_done == 2 and saved.diverged == {2: 1}
    resumed = gpunet.resume(path, training, test, device="cpu", verbose=False)
    assert isinstance(resumed, NetworkStack)
    assert np.array_equal(np.asarray(resumed.parameters), np.asarray(whole.parameters))
    assert [h.records for h in resumed.histories] != []
    for mine, theirs in zip(resumed.histories, whole.histories):
        assert mine.evaluation_accuracy == theirs.evaluation_accuracy
        assert mine.training_cost == theirs.training_cost
    assert resumed.diverged == {2: 1}
    assert load_checkpoint(path).epochs_done == 4
    # a stack checkpoint is not a network's, and the other way round: one clear error
    with pytest.raises(ValueError, match="not of one network"):
        network_from(load_checkpoint(path), "cpu")


def test_old_sweep_files_still_plot(tmp_path):
    """Rows written before the shared vocabulary (test_* / validation_*, no header)."""
    path = tmp_path / "old.jsonl"
    run = {"eta": 3.0, "lmbda": 0.0, "seed": 0}
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"run": run, "epoch": 0, "test_correct": 9000, "test_total": 10000,
         "test_cost": 0.5, "train_seconds": 1.0},
        {"run": run, "epoch": 1, "validation_correct": 9100, "validation_total": 10000,
         "train_seconds": 1.0}]))
    ((label, history),) = read_sweep_metrics(path)
    assert label == "eta=3.0 lmbda=0.0 seed=0"
    assert history.evaluation_accuracy == [9000, 9100] and history.evaluation_cost == [0.5]
    pytest.importorskip("matplotlib")
    assert main(["plot", str(path), "-o", str(tmp_path / "old.png")]) == 0
    assert (tmp_path / "old.png").read_bytes().startswith(b"\x89PNG")


def test_the_sweep_draws_the_progress_line_unless_quiet(tmp_path, monkeypatch):
    """Each stack's epochs drive the progress line (gpunet.training.progress: drawn on a terminal
    only), as train's do; --quiet turns it off; a resumed stack starts at its epoch."""
    import gpunet.training.loop

    made = []

    class Recorder:
        def __init__(self, epochs, n, engine, first_epoch=0):
            made.append({"epochs": epochs, "n": n, "first": first_epoch, "started": []})

        def start_epoch(self, j):
            made[-1]["started"].append(j)

        def end_epoch(self, seconds):
            pass

        def close(self):
            pass

    monkeypatch.setattr(gpunet.training.hooks, "Progress", Recorder)
    loud = [a for a in SWEEP if a != "--quiet"]
    assert main([*loud, "--epochs", "2"]) == 0
    assert made == [{"epochs": 2, "n": 300, "first": 0, "started": [0, 1]}] * 3
    made.clear()
    assert main([*SWEEP, "--epochs", "2"]) == 0
    assert made == []
    ckpt = tmp_path / "sweep.ckpt"
    stop_at(monkeypatch, 2, 0)
    assert main([*SWEEP, "--epochs", "3", "--checkpoint", str(ckpt)]) == 130
    assert main(["sweep", "--resume", str(ckpt), "--device", "cpu"]) == 0
    assert made == [{"epochs": 3, "n": 300, "first": 1, "started": [1, 2]},
                    {"epochs": 3, "n": 300, "first": 0, "started": [0, 1, 2]}]
