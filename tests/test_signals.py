"""SIGTERM keeps the work as Ctrl-C does, in train, sweep and the library (issue 18).

``kill``, ``timeout``, SLURM, ``docker stop`` and systemd send SIGTERM; before, it ended
the process on the spot: no --save, no summary. And Ctrl-C on a sweep lost every network
of the running stack, however many epochs it had completed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import gpunet
from conftest import ROOT
from gpunet.training.checkpoint import load_checkpoint
from gpunet.training.signals import (InterruptHandler, Terminated, interrupts_deferred,
                                     interrupts_raised, raise_if_interrupted,
                                     terminate_as_interrupt)


def _start(*args: str) -> subprocess.Popen:
    """``python -m gpunet ARGS`` as conftest.run_gpunet runs it, but left running."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen(
        [sys.executable, "-m", "gpunet", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
        preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL),
                            signal.signal(signal.SIGTERM, signal.SIG_DFL)))


def _signal_after(proc: subprocess.Popen, marker: str, signum: int) -> tuple[str, str]:
    """Read stdout until a line starts with ``marker``, send ``signum``, collect."""
    lines = []
    try:
        while not any(line.startswith(marker) for line in lines):
            line = proc.stdout.readline()
            assert line, f"ended before {marker!r}: " + proc.stderr.read()
            lines.append(line)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return "".join(lines) + out, err


def test_sigterm_to_train_keeps_the_completed_epochs(tmp_path):
    ckpt, saved, metrics = tmp_path / "run.ckpt", tmp_path / "net.json", tmp_path / "m.jsonl"
    proc = _start("train", "--device", "cpu", "--limit", "2000", "--seed", "5", "--sizes",
                  "784,20,10", "--epochs", "400", "--checkpoint", str(ckpt), "--save",
                  str(saved), "--metrics", str(metrics))
    out, err = _signal_after(proc, "Epoch 1:", signal.SIGTERM)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM) with " in err and "Traceback" not in err
    assert err.splitlines()[-1] == "gpunet: terminated"  # as every interruption ends
    assert "best: " in out and f"saved network to {saved}" in out
    done = load_checkpoint(ckpt).epochs_done
    assert 2 <= done < 400 and f"({done} of 400 epochs done)" in out
    net = gpunet.load(saved, device="cpu")
    assert np.array_equal(np.asarray(net.parameters, dtype=np.float32),
                          load_checkpoint(ckpt).parameters)
    rows = [json.loads(line) for line in metrics.read_text().splitlines()][1:]
    assert [r["epoch"] for r in rows][:done] == list(range(done))


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stopping_a_sweep_keeps_every_networks_completed_epochs(tmp_path, signum, status):
    metrics, nets = tmp_path / "m.jsonl", tmp_path / "nets"
    proc = _start("sweep", "--device", "cpu", "--limit", "1000", "--sizes", "784,20,10",
                  "--epochs", "400", "--eta", "0.5,3", "--seeds", "0-1", "--metrics",
                  str(metrics), "--save-dir", str(nets), "--workers", "1")
    out, err = _signal_after(proc, "stack 1/1, 2 of 400 epochs done:", signum)
    assert proc.returncode == status, err
    assert "keeping every network's completed epochs" in err and "Traceback" not in err
    assert "best test %" in out  # the summary table
    header, *rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert "gpunet_metrics" in header
    per_run: dict = {}
    for r in rows:
        per_run.setdefault((r["run"]["eta"], r["run"]["seed"]), []).append(r["epoch"])
    assert len(per_run) == 4
    done = len(next(iter(per_run.values())))
    assert done >= 2 and all(e == list(range(done)) for e in per_run.values())
    assert len(list(nets.glob("*.json"))) == 4
    assert all(np.isfinite(np.asarray(gpunet.load(p, device="cpu").parameters)).all()
               for p in nets.glob("*.json"))


def test_library_sigterm_rolls_back_and_raises_terminated(mnist, tmp_path):
    path = tmp_path / "run.ckpt"
    net = gpunet.Network([784, 10, 10], seed=1, device="cpu")

    def terminate_after_second(record):
        if record["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.0)  # the handler runs here, as it would mid-epoch

    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with pytest.raises(Terminated):
        net.SGD((mnist.training[0][:300], mnist.training[1][:300]), 10, 10, 0.5,
                test_data=mnist.validation, callback=terminate_after_second, verbose=False,
                checkpoint=path)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back
    assert len(net.history.records) == 2 and load_checkpoint(path).epochs_done == 2
    assert np.array_equal(load_checkpoint(path).parameters, np.asarray(net.parameters))


def test_a_stack_interrupted_inside_an_epoch_goes_back_to_the_last_one(mnist, monkeypatch):
    import gpunet.training.loop
    from gpunet.networks.stack import NetworkStack

    real = gpunet.training.loop.select_engine

    class InterruptedInEpoch2:  # the eager engine updates in place: a partial epoch 2
        def __init__(self, engine):
            self.engine, self.name, self.epochs = engine, engine.name, 0

        def train_epoch(self, permutations):
            self.engine.train_epoch(permutations)
            self.epochs += 1
            if self.epochs == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr(gpunet.training.loop, "select_engine",
                        lambda *a: InterruptedInEpoch2(real(*a)))
    stack = NetworkStack([784, 10, 10], seeds=[0, 1], device="cpu")
    training = (mnist.training[0][:300], mnist.training[1][:300])
    with pytest.raises(KeyboardInterrupt):
        stack.SGD(training, 5, 10, 0.5, verbose=False, engine="eager")
    monkeypatch.setattr(gpunet.training.loop, "select_engine", real)
    two = NetworkStack([784, 10, 10], seeds=[0, 1], device="cpu")
    two.SGD(training, 2, 10, 0.5, verbose=False, engine="eager")
    assert np.array_equal(np.asarray(stack.parameters), np.asarray(two.parameters))
    assert [len(h.records) for h in stack.histories] == [2, 2]


def test_interrupts_deferred_holds_sigterm_until_the_block_ends():
    done = []
    with pytest.raises(Terminated):
        with terminate_as_interrupt():
            with interrupts_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.2)
                done.append("block finished")
    assert done == ["block finished"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_deferred_interrupt_reaches_the_handler_it_was_held_from():
    """interrupts_deferred replays a held Ctrl-C into the handler it would have gone to:
    the command line's handler then knows it came (issue 26), and Python's defaults are
    back after the block."""
    with pytest.raises(KeyboardInterrupt):
        with interrupts_raised() as handler:
            with interrupts_deferred():
                signal.raise_signal(signal.SIGINT)
                time.sleep(0.1)
                assert handler.arrived == []  # held
    assert handler.arrived == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_an_interrupt_whose_exception_was_lost_is_still_raised():
    """A Ctrl-C turned into another exception (NumPy's import makes it an ImportError)
    or swallowed: raise_if_interrupted raises it, with the exception as its cause."""
    with interrupts_raised() as handler:
        raise_if_interrupted()  # nothing arrived: nothing raised
        try:
            signal.raise_signal(signal.SIGTERM)
        except Terminated:
            pass  # swallowed
        with pytest.raises(Terminated) as info:
            raise_if_interrupted(ImportError("lost"))
        assert isinstance(info.value.__cause__, ImportError)
    assert isinstance(handler, InterruptHandler) and handler.arrived == [signal.SIGTERM]
    raise_if_interrupted()  # outside the block: our handlers are gone, nothing raised


def test_an_interrupt_python_cannot_raise_is_delivered_again_not_printed(capsys):
    """A Ctrl-C whose handler runs inside a ``__del__`` (or a weakref callback, as the
    import machinery's module locks have) cannot propagate: Python printed it as
    "Exception ignored ... KeyboardInterrupt" with a traceback and lost it. Inside the
    command's block it is raised again where the program is."""
    class Finalized:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)  # its handler raises inside __del__

    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_raised() as handler:
            Finalized()  # collected at once: the interrupt is raised in __del__
            reached.append("after the __del__")
            for _ in range(1000):  # the next steps: where the interrupt is raised again
                time.sleep(0.001)
            reached.append("the end")
    assert reached == ["after the __del__"]
    assert "Exception ignored" not in capsys.readouterr().err
    assert handler.arrived[0] == signal.SIGINT
