"""Checkpoints and resume: a resumed or extended run is bit for bit the uninterrupted one."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import gpunet
import gpunet.training.loop
from conftest import make_backend
from gpunet.backends.testing import StrictBackend
from gpunet.training.checkpoint import VERSION, load_checkpoint


@pytest.fixture(scope="module")
def small(mnist):
    X, y = mnist.training
    return (X[:600], y[:600]), (mnist.test[0][:300], mnist.test[1][:300])


def params(net) -> np.ndarray:
    return np.array(net.backend.to_host(net.parameters))


def train(small, epochs, device="cpu", dtype="float64", **kw):
    training, test = small
    net = gpunet.Network([784, 16, 10], seed=7, dtype=dtype, device=device)
    net.SGD(training, epochs, 10, 0.5, lmbda=1.0, evaluation_data=test,
            monitor_evaluation_accuracy=True, monitor_training_cost=True, verbose=False, **kw)
    return net


@pytest.mark.parametrize("name", ["cpu", "strict", "cuda"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resumed_run_is_bit_identical(small, tmp_path, name, dtype):
    device = make_backend(name)  # skips CUDA without a GPU
    whole = train(small, 4, device=device, dtype=dtype)
    path = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C right after epoch 1
        train(small, 4, device=device, dtype=dtype, checkpoint=path,
              callback=lambda r: r["epoch"] == 1 and _stop())
    assert load_checkpoint(path).epochs_done == 2
    resumed = gpunet.resume(path, *small, device=device, verbose=False)
    assert np.array_equal(params(resumed), params(whole))
    assert resumed.history.evaluation_accuracy == whole.history.evaluation_accuracy
    assert resumed.history.training_cost == whole.history.training_cost
    assert load_checkpoint(path).epochs_done == 4


def _stop():
    raise KeyboardInterrupt


def test_extended_run_equals_a_longer_run(small, tmp_path):
    path = tmp_path / "run.ckpt"
    train(small, 2, checkpoint=path)  # a run planned for 2 epochs, complete
    extended = gpunet.resume(path, *small, epochs=5, device="cpu", verbose=False)
    longer = train(small, 5)
    assert np.array_equal(params(extended), params(longer))
    assert [r["epoch"] for r in extended.history.records] == [0, 1, 2, 3, 4]


class _InterruptMidEpoch:
    """Wraps an engine: at epoch ``at`` it changes the parameters, then Ctrl-C."""

    def __init__(self, engine, at):
        self.engine, self.at, self.epoch, self.name = engine, at, 0, engine.name

    def train_epoch(self, permutation):
        self.engine.train_epoch(permutation)
        if self.epoch == self.at:
            raise KeyboardInterrupt  # as if it came within the epoch's steps
        self.epoch += 1


def test_interrupt_mid_epoch_rolls_back_to_the_last_epoch(small, tmp_path, monkeypatch):
    real = gpunet.training.loop.select_engine
    monkeypatch.setattr(gpunet.training.loop, "select_engine",
                        lambda *a: _InterruptMidEpoch(real(*a), at=3))
    path = tmp_path / "run.ckpt"
    training, test = small
    net = gpunet.Network([784, 16, 10], seed=7, dtype="float64", device="cpu")
    with pytest.raises(KeyboardInterrupt):
        net.SGD(training, 6, 10, 0.5, lmbda=1.0, evaluation_data=test,
                monitor_evaluation_accuracy=True, monitor_training_cost=True,
                verbose=False, checkpoint=path)
    monkeypatch.undo()
    assert len(net.history.records) == 3  # the completed epochs, reachable after Ctrl-C
    three = train(small, 3)
    assert np.array_equal(params(net), params(three))  # the unfinished epoch undone
    saved = load_checkpoint(path)
    assert saved.epochs_done == 3 and np.array_equal(saved.parameters, params(three))
    resumed = gpunet.resume(path, *small, device="cpu", verbose=False)
    assert np.array_equal(params(resumed), params(train(small, 6)))


def test_checkpoint_keeps_the_run(small, tmp_path):
    path = tmp_path / "run.ckpt"
    train(small, 2, checkpoint=path)
    saved = load_checkpoint(path)
    # one layout for K >= 1 (layout 3): a network is a stack of one, of kind "network"
    assert saved.meta["version"] == VERSION == 3 and saved.layout == 3
    assert saved.kind == "network" and saved.meta["network"]["seeds"] == [7]
    assert saved.parameters.shape == (12730,) and saved.epochs_done == 2
    assert saved.network_settings == {"sizes": [784, 16, 10], "cost": "CrossEntropyCost",
                                      "init": "default", "dtype": "float64", "seed": 7}
    assert saved.training["eta"] == 0.5 and saved.training["lmbda"] == 1.0
    assert saved.training["mini_batch_size"] == 10 and saved.training["epochs"] == 2
    assert saved.data["n_train"] == 600 and len(saved.history.records) == 2
    assert saved.parameters.dtype == np.float64


def test_resume_checks_the_data(small, tmp_path):
    path = tmp_path / "run.ckpt"
    train(small, 1, checkpoint=path)
    (X, y), test = small
    with pytest.raises(ValueError, match="training data differs"):
        gpunet.resume(path, (X, np.roll(y, 1)), test, verbose=False)
    with pytest.raises(ValueError, match="monitored evaluation data"):
        gpunet.resume(path, (X, y), verbose=False)
    with pytest.raises(ValueError, match="at least"):
        gpunet.resume(path, (X, y), test, epochs=0, verbose=False)


def _rewrite_meta(path, change):
    with np.load(path) as archive:
        meta = json.loads(archive["meta"].tobytes())
        parameters = archive["parameters"]
    change(meta)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
             parameters=parameters)
    path.write_bytes(buffer.getvalue())


def test_bad_checkpoints_name_the_file(small, tmp_path):
    good = tmp_path / "good.ckpt"
    train(small, 1, checkpoint=good)
    data = good.read_bytes()

    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.ckpt"
    flipped.write_bytes(data[:2000] + bytes([data[2000] ^ 0xFF]) + data[2001:])
    foreign = tmp_path / "net.json"
    gpunet.Network([784, 16, 10], device="cpu").save(foreign)
    other_npz = tmp_path / "other.npz"
    np.savez(other_npz, a=np.zeros(3))
    newer = tmp_path / "newer.ckpt"
    newer.write_bytes(data)
    _rewrite_meta(newer, lambda m: m.update(version=VERSION + 1))
    not_ours = tmp_path / "not_ours.ckpt"
    not_ours.write_bytes(data)
    _rewrite_meta(not_ours, lambda m: m.update(format="something-else"))

    for path, message in [(truncated, "not a"), (flipped, "corrupt"),
                          (foreign, "not a"), (other_npz, "not a gpunet checkpoint"),
                          (newer, "newer gpunet"), (not_ours, "not a gpunet checkpoint"),
                          (tmp_path / "missing.ckpt", "not found")]:
        with pytest.raises(ValueError, match=message) as info:
            load_checkpoint(path)
        assert str(path) in str(info.value)
    assert zipfile.is_zipfile(good)


def test_cli_resume_continues_and_refuses_contradictions(tmp_path):
    from gpunet.cli import main

    ckpt, metrics = tmp_path / "c.ckpt", tmp_path / "m.jsonl"
    common = ["--device", "cpu", "--limit", "500", "--seed", "2", "--quiet",
              "--sizes", "784,12,10", "--eta", "2.0"]
    assert main(["train", *common, "--epochs", "2", "--checkpoint", str(ckpt),
                 "--metrics", str(metrics)]) == 0
    assert main(["train", "--resume", str(ckpt), "--epochs", "3", "--save",
                 str(tmp_path / "resumed.json"), "--metrics", str(metrics),
                 "--device", "cpu"]) == 0
    assert main(["train", *common, "--epochs", "3", "--save",
                 str(tmp_path / "straight.json")]) == 0
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    straight = json.loads((tmp_path / "straight.json").read_text())
    assert resumed == straight
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    # one run in one file: the run's header once, then every epoch (issue 26)
    assert [("header" if "gpunet_metrics" in r else r["epoch"]) for r in lines] == [
        "header", 0, 1, 2]

    # an explicit option equal to the default but not to the run's is a contradiction
    for option in (["--sizes", "784,30,10"], ["--eta", "3.0"], ["--limit", "400"],
                   ["--seed", "3"], ["--epochs", "1"]):
        assert main(["train", "--resume", str(ckpt), *option]) == 2
    assert main(["train", "--resume", str(ckpt), "--seed", "2", "--quiet"]) == 0


def test_resume_on_another_device(small, tmp_path):
    """A checkpoint from the CPU continues on another backend (here the strict stand-in,
    whose engine is the eager one): the same run up to rounding."""
    path = tmp_path / "run.ckpt"
    train(small, 2, checkpoint=path)
    elsewhere = gpunet.resume(path, *small, epochs=4, device=make_backend("strict"),
                              verbose=False)
    assert isinstance(elsewhere.backend, StrictBackend)
    np.testing.assert_allclose(params(elsewhere), params(train(small, 4)), rtol=1e-9,
                               atol=1e-12)
