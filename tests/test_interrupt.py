"""Ctrl-C keeps the work: a real SIGINT to ``gpunet train`` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

import gpunet
from conftest import ROOT, interrupt_after
from gpunet.training.checkpoint import load_checkpoint
from gpunet.cli import main


def test_ctrl_c_saves_the_last_epoch_and_resume_finishes_the_run(tmp_path):
    ckpt, saved, metrics = tmp_path / "run.ckpt", tmp_path / "net.json", tmp_path / "m.jsonl"
    args = ["--device", "cpu", "--limit", "2000", "--seed", "5", "--sizes", "784,20,10"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpunet", "train", *args, "--epochs", "400",
         "--checkpoint", str(ckpt), "--save", str(saved), "--metrics", str(metrics)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
        # a child started from a shell that ignores SIGINT would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = []
        while not any(line.startswith("Epoch 1:") for line in lines):
            line = proc.stdout.readline()
            assert line, "gpunet train ended before its second epoch: " + proc.stderr.read()
            lines.append(line)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=60)
        stopped_after = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert stopped_after < 10.0  # promptly, not at the end of 400 epochs
    assert f"gpunet train --resume {ckpt}" in err
    out = "".join(lines) + out
    assert "best: " in out and f"saved network to {saved}" in out

    checkpoint = load_checkpoint(ckpt)
    done = checkpoint.epochs_done
    assert 2 <= done < 400 and len(checkpoint.history.records) == done
    assert f"({done} of 400 epochs done)" in out
    net = gpunet.load(saved, device="cpu")
    assert np.array_equal(np.asarray(net.parameters, dtype=np.float32), checkpoint.parameters)
    header, *rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows][: done] == list(range(done))

    # Resumed to done + 2 epochs: exactly the run that was never interrupted.
    resumed, straight = tmp_path / "resumed.json", tmp_path / "straight.json"
    assert main(["train", "--resume", str(ckpt), "--device", "cpu", "--epochs", str(done + 2),
                 "--quiet", "--save", str(resumed)]) == 0
    assert main(["train", *args, "--epochs", str(done + 2), "--quiet",
                 "--save", str(straight)]) == 0
    assert json.loads(resumed.read_text()) == json.loads(straight.read_text())


def test_ctrl_c_without_checkpoint_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    interrupt_after(monkeypatch, 1)
    saved = tmp_path / "net.json"
    status = main(["train", "--device", "cpu", "--limit", "300", "--epochs", "5", "--quiet",
                   "--save", str(saved)])
    captured = capsys.readouterr()
    assert status == 130
    assert "interrupted with 1 of 5 epochs done; keeping them" in captured.err
    assert "--checkpoint PATH" in captured.err
    # what was kept first, then the line every interruption ends with (issue 26)
    assert captured.err.splitlines()[-1] == "gpunet: interrupted"
    assert saved.exists() and "(1 of 5 epochs done)" in captured.out


def test_ctrl_c_inside_a_long_epoch_stops_promptly(tmp_path):
    """SIGINT during an epoch (50,000 images through a wider network: seconds an epoch)
    ends within a moment, not at the epoch's end, keeping only completed epochs."""
    ckpt, saved = tmp_path / "run.ckpt", tmp_path / "net.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpunet", "train", "--device", "cpu", "--sizes", "784,200,10",
         "--epochs", "3", "--seed", "1", "--checkpoint", str(ckpt), "--save", str(saved)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        while not proc.stdout.readline().startswith("network:"):
            assert proc.poll() is None, proc.stderr.read()
        time.sleep(1.0)  # well inside epoch 0
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=60)
        stopped_after = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    assert stopped_after < 5.0
    done = out.count("Epoch ")
    assert load_checkpoint(ckpt).epochs_done == done
    if done == 0:
        assert "with 0 of" in err and "keeping nothing" in err and not saved.exists()
        assert "epochs done; " in out and "not written" in out
