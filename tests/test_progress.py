"""The progress line: on terminals only, from host-side counters, never a device sync."""

from __future__ import annotations

import io
import sys
import time

import numpy as np

import gpunet
from gpunet.backends.testing import StrictBackend
from gpunet.training.progress import Progress, fmt_duration


class Terminal(io.StringIO):
    def isatty(self):
        return True


class CountingEngine:
    """An engine that trains step by step from the host and counts what it handed over."""

    name = "fake"

    def __init__(self):
        self.examples_done = 0


def test_line_shows_rate_and_time_left():
    engine = CountingEngine()
    progress = Progress(epochs=10, n=50_000, engine=engine, stream=Terminal())
    progress.epoch = 2
    engine.examples_done = 10_000
    line = progress.line(elapsed=2.0)  # 5,000 examples/s
    assert line.startswith("2 of 10 epochs done [")
    assert "10000/50000" in line and "5,000 examples/s" in line
    assert "0:08 left in epoch" in line  # 40,000 more at 5,000/s
    assert "1:18 in all" in line  # 8 s + 7 more epochs of 10 s


def test_whole_epoch_engines_get_per_epoch_estimates():
    engine = object()  # no counter: the epoch runs in one call
    progress = Progress(epochs=5, n=1000, engine=engine, stream=Terminal())
    progress.epoch = 1
    assert progress.line(elapsed=3.0) == "1 of 5 epochs done  0:03 elapsed"
    progress.epoch_seconds = [10.0]
    line = progress.line(elapsed=4.0)
    assert "~100 examples/s" in line and "~0:36 left" in line  # 6 s + 3 epochs of 10 s


def test_draws_a_few_times_a_second_on_a_terminal_and_clears_after_the_epoch():
    stream, engine = Terminal(), CountingEngine()
    progress = Progress(epochs=2, n=100, engine=engine, stream=stream, interval=0.02)
    progress.start_epoch(0)
    engine.examples_done = 40
    deadline = time.monotonic() + 10  # a guard for a loaded machine, not a measurement
    while stream.getvalue().count("40/100") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    progress.end_epoch(0.3)
    progress.close()
    text = stream.getvalue()
    assert text.count("\r") >= 3 and "40/100" in text
    assert text.endswith("\r\x1b[2K")  # the per-epoch line prints on a clean line


def test_nothing_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(epochs=2, n=100, engine=CountingEngine(), stream=stream,
                        interval=0.01)
    progress.start_epoch(0)
    time.sleep(0.05)
    progress.end_epoch(0.05)
    progress.close()
    assert not progress.enabled and stream.getvalue() == ""


def test_progress_adds_no_device_transfers(mnist, monkeypatch):
    """With the strict stand-in counting device-to-host copies, a run with the progress
    line on a terminal copies exactly as often as one without."""
    X, y = mnist.training
    counts = []
    for progress in (False, True):
        stream = Terminal()
        monkeypatch.setattr(sys, "stderr", stream)
        backend = StrictBackend()
        net = gpunet.Network([784, 10, 10], seed=1, device=backend)
        backend.reset_transfers()
        net.SGD((X[:500], y[:500]), 3, 10, 0.5, verbose=False, progress=progress)
        counts.append(backend.transfers)
        monkeypatch.undo()
    assert counts[0] == counts[1]


def test_fmt_duration():
    assert fmt_duration(75.3) == "1:15" and fmt_duration(3723) == "1:02:03"
    assert fmt_duration(-1) == "0:00"


def test_cli_quiet_and_pipes_get_no_progress_line(tmp_path):
    from conftest import run_gpunet

    run = run_gpunet("train", "--device", "cpu", "--limit", "200", "--epochs", "1")
    assert run.returncode == 0 and "\r" not in run.stderr + run.stdout
    assert "Epoch 0: " in run.stdout  # the book's line stays


def test_step_engines_count_the_examples_of_the_epoch(mnist):
    """The eager and cpu engines keep the host counter the progress line reads."""
    from gpunet.training.settings import TrainingSettings
    from gpunet.engines.cpu import CpuEngine
    from gpunet.engines.eager import EagerEngine

    n = 203  # a partial last mini-batch (and, for the cpu engine, a tail)
    X = mnist.training[0][:n]
    Y = np.eye(10, dtype=np.float32)[mnist.training[1][:n]]
    settings = TrainingSettings(epochs=1, mini_batch_size=10, eta=0.5)
    for engine_class in (EagerEngine, CpuEngine):
        net = gpunet.Network([784, 12, 10], device="cpu", seed=0)
        engine = engine_class(net, X, Y, settings)
        assert engine.examples_done == 0
        for _ in range(2):  # counts each epoch from 0 again
            engine.train_epoch(np.arange(n))
            assert engine.examples_done == n, engine_class.__name__
