"""``gpunet train --expand`` and ``sweep --expand`` (issue 29, point 4): the book's
expanded training set from the command line, split before it is expanded, recorded for
``--resume``. A small synthetic set stands in for MNIST; the cache lives in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_gpunet

N = 24


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An .npz of N training and 10 test 8-bit images (no validation set); the cache
    folder in tmp_path for the commands run."""
    monkeypatch.setenv("GPUNET_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, size=(N + 10, 28, 28), dtype=np.uint8)
    y = np.arange(N + 10) % 10
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=x[:N], y_train=y[:N], x_test=x[N:], y_test=y[N:])
    return path


def test_train_expand_trains_on_five_times_the_images_and_resumes(source: Path,
                                                                  tmp_path: Path) -> None:
    """--expand: 5n training examples, said on the data line and recorded; --resume
    adopts it (the checkpoint's label fingerprint is the expanded set's); --expand
    against a run without it is refused (without the patch: unknown option)."""
    ck, metrics = tmp_path / "run.npz", tmp_path / "run.jsonl"
    run = run_gpunet("train", "--data", source, "--expand", "--epochs", "1", "--seed", "1",
                     "--device", "cpu", "--checkpoint", ck, "--metrics", metrics)
    assert run.returncode == 0, run.stderr
    assert f"expanded 5x" in run.stdout and f"training on {5 * N}," in run.stdout
    header = json.loads(metrics.read_text().splitlines()[0])
    assert json.dumps(header).count('"expand": true') == 1
    resumed = run_gpunet("train", "--resume", ck, "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "Epoch 1:" in resumed.stdout
    plain = tmp_path / "plain.npz"
    assert run_gpunet("train", "--data", source, "--epochs", "1", "--seed", "1", "--device",
                      "cpu", "--checkpoint", plain).returncode == 0
    refused = run_gpunet("train", "--resume", plain, "--epochs", "2", "--expand")
    assert refused.returncode == 2 and "--expand" in refused.stderr


def test_validation_is_split_before_the_expansion(source: Path) -> None:
    """--validation 4 --expand: the last 4 images validate, the other N - 4 and their
    shifts train (expanding first would put the validation images' shifts in training)."""
    run = run_gpunet("train", "--data", source, "--validation", "4", "--expand",
                     "--evaluate", "validation", "--epochs", "1", "--seed", "1",
                     "--device", "cpu")
    assert run.returncode == 0, run.stderr
    assert f"training on {5 * (N - 4)}, evaluating on 4 validation" in run.stdout


def test_sweep_expand(source: Path) -> None:
    run = run_gpunet("sweep", "--data", source, "--expand", "--eta", "1,3", "--epochs", "1",
                     "--device", "cpu")
    assert run.returncode == 0, run.stderr
    assert f"training on {5 * N}," in run.stdout
