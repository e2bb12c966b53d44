"""The ``gpunet`` command end to end, in a subprocess, as a user runs it."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gpunet
from gpunet.backends import get_backend
from conftest import cuda_unavailable_reason
from conftest import run_gpunet as gpunet_cmd


def test_train_end_to_end(tmp_path):
    metrics, saved = tmp_path / "m.jsonl", tmp_path / "net.json"
    run = gpunet_cmd("train", "--device", "cpu", "--limit", "3000", "--epochs", "3",
                     "--seed", "1", "--monitor-training-cost", "--metrics", str(metrics),
                     "--save", str(saved))
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "device: cpu" in out and "bundled MNIST" in out and "training on 3000" in out
    lines = out.splitlines()
    engine_line = next(i for i, line in enumerate(lines) if line.startswith("engine: "))
    assert lines[engine_line].startswith("engine: cpu (")  # auto's choice on the CPU
    assert lines[engine_line + 1].startswith("Epoch 0: ")
    epoch_lines = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert len(epoch_lines) == 3 and epoch_lines[0].startswith("Epoch 0: ")
    assert " / 10000  (" in epoch_lines[0] and " s" in epoch_lines[0]
    header, *rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert header["gpunet_metrics"] == 1 and header["evaluation_data"] == "test"
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    for r in rows:
        assert {"epoch", "evaluation_correct", "evaluation_total", "train_seconds",
                "training_cost"} <= r.keys()
        assert r["evaluation_total"] == 10000 and r["train_seconds"] > 0
    assert rows[-1]["evaluation_correct"] > 7000  # 3,000 images, 3 epochs: far above chance
    net = gpunet.load(saved, device="cpu")
    mnist = gpunet.load_mnist()
    assert net.accuracy(mnist.test) == rows[-1]["evaluation_correct"]
    assert f"best: {max(r['evaluation_correct'] for r in rows)} / 10000" in out
    assert "\r" not in run.stderr + out  # no progress line when not on a terminal


def test_same_seed_same_output():
    args = ("train", "--device", "cpu", "--limit", "500", "--epochs", "2", "--seed", "3")
    first, second = gpunet_cmd(*args), gpunet_cmd(*args)
    epochs = lambda r: [l.split("(")[0] for l in r.stdout.splitlines() if l.startswith("Epoch")]
    assert epochs(first) == epochs(second) and len(epochs(first)) == 2


@pytest.mark.skipif(not cuda_unavailable_reason(), reason="a GPU is present here")
def test_cuda_without_gpu_is_one_clear_line():
    run = gpunet_cmd("train", "--device", "cuda")
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    # the real cause (here: CuPy missing, or no driver), and a fix that works
    assert len(lines) == 1 and lines[0].startswith(
        f"gpunet: error: CUDA is not usable here: {cuda_unavailable_reason()}")
    assert 'the cuda13 extra: pip install "cupy-cuda13x' in lines[0] or "nvidia-smi" in lines[0]
    assert lines[0].endswith("or use --device cpu.")  # the command's spelling
    assert "gpunet[cuda" not in lines[0] and "Traceback" not in run.stderr


@pytest.mark.parametrize("args, message", [
    (["--eta", "-1"], "eta (the learning rate) must be a positive number"),
    (["--eta", "0"], "eta"),
    (["--epochs", "0"], "--epochs must be a positive integer"),
    (["--batch-size", "0"], "--batch-size must be a positive integer"),
    (["--lmbda", "-0.5"], "lmbda"),
    (["--limit", "0"], "--limit must be a positive integer"),
    (["--limit", "60000"], "--limit 60000 exceeds the 50000 training images"),
    (["--cost", "hinge"], "invalid choice: 'hinge'"),
    (["--init", "xavier"], "invalid choice: 'xavier'"),
    (["--dtype", "float16"], "invalid choice: 'float16'"),
    (["--sizes", "784,x,10"], "not a comma-separated list of integers"),
    (["--sizes", "784"], "at least two positive layer sizes"),
    (["--sizes", "100,30,10"], "its first layer has 100 inputs, but the data (the bundled "
     "MNIST) has 784 inputs per example. For hidden and output layers 100,30,10, give "
     "--sizes auto,100,30,10"),
    (["--sizes", "784,30,5"], "the output layer has 5 neurons, but the data has labels up "
     "to 9; make the last size 10"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--device", "cpu", "--cuda-graph"], "unrecognized arguments: --cuda-graph"),
    (["--data", "/nonexistent/mnist"], "MNIST data path /nonexistent/mnist does not exist"),
])
def test_bad_input_exits_2_with_a_message(args, message):
    # quick defaults first: argparse keeps an option's last value, so args override them
    run = gpunet_cmd("train", "--epochs", "1", "--limit", "100", *args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_info():
    """Versions (gpunet, Python, NumPy, CuPy when installed), one line per backend, and
    what ``--device auto`` takes here and why."""
    import platform
    import re

    import numpy as np

    run = gpunet_cmd("info")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"gpunet {gpunet.__version__}"
    assert lines[1].startswith(f"Python {platform.python_version()} (")
    assert lines[2].startswith(f"NumPy {np.__version__}")
    backends = lines.index("backends:")
    assert re.fullmatch(rf"  cpu +cpu \(NumPy {re.escape(np.__version__)}.*\)", lines[backends + 1])
    cuda = lines[backends + 2]
    assert re.match(r"  cuda +\S", cuda), cuda
    try:
        import cupy
    except ImportError:
        assert "unavailable: CuPy is not installed" in cuda
    else:
        assert f"CuPy {cupy.__version__}" in cuda
    (auto,) = [line for line in lines if line.startswith("auto:")]
    reason = cuda_unavailable_reason()
    if os.environ.get("GPUNET_DEVICE", "auto").strip().lower() != "auto":  # the variable chose
        chosen = get_backend("auto")
        assert re.fullmatch(rf"auto: +{re.escape(chosen.device)} +\[{chosen.selection_note}\]",
                            auto), auto
    elif reason:  # no GPU here: auto takes the CPU and says why
        assert re.fullmatch(r"auto: +cpu +\[auto chose cpu: .+\]", auto), auto
        assert reason in auto
    else:
        assert re.fullmatch(r"auto: +cuda:0 +\[auto chose cuda:0.*\]", auto), auto


def test_console_script_is_installed():
    script = shutil.which("gpunet") or shutil.which("gpunet", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("gpunet is not installed as a console script in this environment")
    run = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == f"gpunet {gpunet.__version__}"


def test_train_says_which_engine_it_was_asked_for():
    run = gpunet_cmd("train", "--device", "cpu", "--limit", "200", "--epochs", "1",
                     "--engine", "eager")
    assert run.returncode == 0, run.stderr
    assert "engine: eager (" in run.stdout
    run = gpunet_cmd("train", "--device", "cpu", "--limit", "200", "--epochs", "1",
                     "--engine", "fused")
    assert run.returncode == 2
    assert run.stderr.strip() == ("gpunet: error: engine 'fused' cannot train this network: "
                                  "the fused engine needs a CUDA device, not cpu; use engine "
                                  "'eager' or 'auto'.")


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_a_batch_larger_than_the_data_is_named_as_such(command, capsys):
    """--batch-size above the training examples (after --limit) is one error naming
    both numbers, not a memory problem blamed on --sizes (issue 26)."""
    from gpunet.cli import main

    assert main([command, "--device", "cpu", "--limit", "100", "--batch-size", "500",
                 "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--batch-size 500 is larger than the 100 training examples" in err
    assert "--sizes" not in err and "Traceback" not in err


def test_train_and_sweep_declare_their_shared_options_once():
    """The options ``train`` and ``sweep`` share are one declaration each: the same
    flags, choices and defaults in both parsers (``--cost`` lists every declared cost);
    the sweep's own are its grid, ``--executor`` and the stacks."""
    from gpunet.cli.command import build_parser
    from gpunet.model.costs import COSTS

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore
    train, sweep = ({a.dest: a for a in reversed(commands[c]._actions)  # the first per dest
                     if a.help != argparse.SUPPRESS}  # not the other command's, refused
                    for c in ("train", "sweep"))
    shared = {"device", "sizes", "epochs", "batch_size", "cost", "init", "dtype", "engine",
              "data", "limit", "evaluate", "monitor_training_cost",
              "monitor_training_accuracy", "monitor_evaluation_cost", "metrics", "plot",
              "checkpoint", "resume", "overwrite", "quiet", "early_stopping_n",
              "eta_schedule", "eta_schedule_n", "eta_floor"}
    for dest in shared:
        mine, theirs = train[dest], sweep[dest]
        assert mine.option_strings == theirs.option_strings, dest
        assert mine.default == theirs.default, dest
        assert list(mine.choices or []) == list(theirs.choices or []), dest
    assert tuple(train["cost"].choices) == tuple(dict.fromkeys(c.name for c in COSTS.values()))
    assert set(sweep) - set(train) == {"seeds", "executor", "stack", "workers", "save_dir",
                                       "ray_address", "ray_runtime_env", "ray_cpus_per_task"}
    assert set(train) - set(sweep) == {"seed", "save", "save_best"}
