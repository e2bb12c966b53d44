"""Chapter 3's techniques from the command line (issue 28): ``--momentum``, ``--l1``,
``--early-stop``, ``--save-best`` and ``--eta-schedule`` reach ``SGD``, are recorded in
checkpoints and metrics, and a resumed run stops where one never interrupted would.
A sweep takes ``--momentum`` and ``--l1`` as lists, swept like ``--eta``."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import gpunet.sweep.local
from conftest import interrupt_after
from gpunet.cli import main
from gpunet.training.checkpoint import load_checkpoint

BASE = ["train", "--device", "cpu", "--limit", "500", "--seed", "1", "--quiet"]
EPOCH = re.compile(r"^Epoch (\d+): (\d+) / (\d+)")


def _epochs(text: str) -> list[tuple[int, int]]:
    return [(int(m[1]), int(m[2])) for m in map(EPOCH.match, text.splitlines()) if m]


def test_early_stop_ends_the_run_and_save_best_writes_the_best_epoch(tmp_path, capsys):
    """--early-stop 2: the run ends two epochs after its best; --save-best holds that
    epoch's network (its accuracy on the validation images is the best line's)."""
    best = tmp_path / "best.json"
    args = BASE + ["--epochs", "40", "--eta", "6", "--evaluate", "validation",
                   "--early-stop", "2", "--save-best", str(best)]
    assert main(args) == 0
    out = capsys.readouterr().out
    epochs = _epochs(out)
    assert len(epochs) < 40
    top = max(c for _, c in epochs)
    top_epoch = next(j for j, c in epochs if c == top)
    assert epochs[-1][0] - top_epoch == 2  # no better accuracy for exactly 2 epochs
    assert f"stopped with {len(epochs)} of 40 epochs done: no better validation accuracy " \
           "in 2 epochs (--early-stop)" in out
    assert f"(with {top_epoch + 1} of 40 epochs done: {top} / 10000)" in out
    net = gpunet.Network.load(best, device="cpu", dtype="float64")
    validation = gpunet.load_data()[1]
    assert net.evaluate(validation) == top


@pytest.mark.parametrize("option", [["--early-stop", "3"], ["--save-best", "b.json"],
                                    ["--eta-schedule", "halve"]])
def test_options_that_choose_epochs_need_the_validation_set(tmp_path, capsys, monkeypatch,
                                                            option):
    monkeypatch.chdir(tmp_path)
    assert main(BASE + ["--epochs", "2"] + option) == 2
    err = capsys.readouterr().err
    assert f"{option[0]} chooses epochs by the accuracy on the evaluated data, which is " \
           "the test set here" in err and "--evaluate validation" in err
    assert not (tmp_path / "b.json").exists()


@pytest.mark.parametrize("option, words", [
    (["--momentum", "1.5"], "--momentum: momentum"),
    (["--l1", "-1"], "--l1: l1"),
    (["--early-stop", "-2"], "--early-stop: early_stopping_n"),
    (["--eta-schedule-n", "0"], "--eta-schedule-n: eta_schedule_n"),
    (["--eta-floor", "2"], "--eta-floor: eta_floor"),
])
def test_a_bad_technique_value_is_one_error_before_any_work(capsys, option, words):
    assert main(BASE + ["--epochs", "2"] + option) == 2
    captured = capsys.readouterr()
    assert words in captured.err and "Epoch" not in captured.out
    assert "network:" not in captured.out  # before the network is built


def test_momentum_and_l1_reach_sgd_and_are_recorded(tmp_path, capsys):
    """The checkpoint's training settings and the metrics header hold μ and λ₁, and the
    network equals the library's trained with them, bit for bit."""
    ckpt, metrics, saved = tmp_path / "c.ckpt", tmp_path / "m.jsonl", tmp_path / "n.json"
    assert main(BASE + ["--epochs", "2", "--momentum", "0.5", "--l1", "0.2", "--checkpoint",
                        str(ckpt), "--metrics", str(metrics), "--save", str(saved),
                        "--dtype", "float64"]) == 0
    assert "momentum=0.5, l1=0.2" in capsys.readouterr().out
    training = load_checkpoint(ckpt).training
    assert training["momentum"] == 0.5 and training["l1"] == 0.2
    header = json.loads(metrics.read_text().splitlines()[0])["settings"]
    assert header["momentum"] == 0.5 and header["l1"] == 0.2
    X, y = gpunet.load_data()[0]
    train = (X[:500], y[:500])
    net = gpunet.Network([784, 30, 10], cost="quadratic", init="large", seed=1,
                         device="cpu", dtype="float64")
    net.SGD(train, 2, 10, 3.0, momentum=0.5, l1=0.2, verbose=False)
    cli = gpunet.Network.load(saved, device="cpu", dtype="float64")
    for a, b in zip(cli.weights + cli.biases, net.weights + net.biases):
        assert np.array_equal(a, b)


def test_the_schedule_halves_eta_and_records_it(tmp_path, capsys):
    metrics = tmp_path / "m.jsonl"
    assert main(BASE + ["--epochs", "12", "--evaluate", "validation", "--eta-schedule",
                        "halve", "--eta-schedule-n", "1", "--metrics", str(metrics)]) == 0
    out = capsys.readouterr().out
    etas = [json.loads(line)["eta"] for line in metrics.read_text().splitlines()[1:]]
    assert etas[0] == 3.0 and min(etas) < 3.0
    assert all(b in (a, a / 2) for a, b in zip(etas, etas[1:]))  # only ever halved
    assert f", eta {etas[-1]:g})" in out.splitlines()[-1] or "eta" in out


def test_a_resumed_run_stops_and_keeps_its_best_as_one_never_interrupted(tmp_path, capsys,
                                                                         monkeypatch):
    """Interrupted after 3 epochs and resumed (--save-best and --metrics recorded in the
    checkpoint): the same epochs, the same stop, the same best file, byte for byte."""
    opts = ["--epochs", "30", "--eta", "6", "--evaluate", "validation", "--early-stop", "2",
            "--eta-schedule", "halve", "--eta-schedule-n", "1", "--momentum", "0.3"]
    whole = tmp_path / "whole"
    whole.mkdir()
    assert main(BASE + opts + ["--save-best", str(whole / "best.json"), "--metrics",
                               str(whole / "m.jsonl")]) == 0
    expected = _epochs(capsys.readouterr().out)
    cut = tmp_path / "cut"
    cut.mkdir()
    interrupt_after(monkeypatch, after=3)
    assert main(BASE + opts + ["--save-best", str(cut / "best.json"), "--metrics",
                               str(cut / "m.jsonl"), "--checkpoint", str(cut / "c.ckpt")]) \
        == 130
    first = _epochs(capsys.readouterr().out)
    monkeypatch.undo()
    assert main(["train", "--resume", str(cut / "c.ckpt"), "--quiet", "--device", "cpu"]) == 0
    assert first + _epochs(capsys.readouterr().out) == expected
    assert (cut / "best.json").read_bytes() == (whole / "best.json").read_bytes()

    def rows(path):
        return [{k: v for k, v in json.loads(line).items() if k != "train_seconds"}
                for line in path.read_text().splitlines()[1:]]

    assert rows(cut / "m.jsonl") == rows(whole / "m.jsonl")


def test_resuming_with_other_techniques_is_refused(tmp_path, capsys):
    ckpt = tmp_path / "c.ckpt"
    assert main(BASE + ["--epochs", "2", "--momentum", "0.5", "--checkpoint", str(ckpt)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(ckpt), "--momentum", "0.9", "--epochs", "3"]) == 2
    assert "--momentum 0.9 contradicts" in capsys.readouterr().err


SWEEP = ["sweep", "--device", "cpu", "--limit", "500", "--quiet"]


def test_a_sweep_sweeps_momentum_and_l1_like_eta(tmp_path, capsys):
    """--momentum 0,0.5 --l1 0,0.1: four settings per seed, named in the key, the table,
    the rows and the files; each network is the library's trained with its μ and λ₁."""
    nets, metrics = tmp_path / "nets", tmp_path / "m.jsonl"
    assert main(SWEEP + ["--epochs", "2", "--momentum", "0,0.5", "--l1", "0,0.1", "--seeds",
                         "3", "--dtype", "float64", "--save-dir", str(nets), "--metrics",
                         str(metrics)]) == 0
    out = capsys.readouterr().out
    assert "each with its (eta, lmbda, momentum, l1, seed)" in out
    assert re.search(r"momentum +l1 seeds", out)
    runs = [json.loads(line)["run"] for line in metrics.read_text().splitlines()[1::2]]
    assert runs == [{"eta": 3.0, "lmbda": 0.0, "seed": 3},
                    {"eta": 3.0, "lmbda": 0.0, "l1": 0.1, "seed": 3},
                    {"eta": 3.0, "lmbda": 0.0, "momentum": 0.5, "seed": 3},
                    {"eta": 3.0, "lmbda": 0.0, "momentum": 0.5, "l1": 0.1, "seed": 3}]
    X, y = gpunet.load_data()[0]
    stack = gpunet.NetworkStack([784, 30, 10], [3] * 4, cost="quadratic", init="large",
                                device="cpu", dtype="float64")
    stack.SGD((X[:500], y[:500]), 2, 10, 3.0, momentum=[0, 0, 0.5, 0.5],
              l1=[0, 0.1, 0, 0.1], verbose=False)
    names = ["eta3_lmbda0_seed3.json", "eta3_lmbda0_l1_0.1_seed3.json",
             "eta3_lmbda0_momentum0.5_seed3.json", "eta3_lmbda0_momentum0.5_l1_0.1_seed3.json"]
    for k, name in enumerate(names):
        saved = gpunet.Network.load(nets / name, device="cpu", dtype="float64")
        mine = stack.network(k)
        for a, b in zip(saved.weights + saved.biases, mine.weights + mine.biases):
            assert np.array_equal(a, b), name


def test_a_sweep_sweeps_dropout_like_eta_and_resumes_it(tmp_path, capsys, monkeypatch):
    """--dropout 0,0.5: two settings per seed, named in the key, the table, the rows and
    the files; each network is the library's stack trained with its own rate; a sweep
    stopped after its first epoch resumes to the same networks."""
    nets, metrics = tmp_path / "nets", tmp_path / "m.jsonl"
    opts = ["--epochs", "2", "--sizes", "784,20,10", "--dropout", "0,0.5", "--seeds", "3",
            "--dtype", "float64"]
    assert main(SWEEP + opts + ["--save-dir", str(nets), "--metrics", str(metrics)]) == 0
    out = capsys.readouterr().out
    assert "each with its (eta, lmbda, dropout, seed)" in out
    assert re.search(r"dropout seeds", out)
    runs = [json.loads(line)["run"] for line in metrics.read_text().splitlines()[1::2]]
    assert runs == [{"eta": 3.0, "lmbda": 0.0, "seed": 3},
                    {"eta": 3.0, "lmbda": 0.0, "dropout": 0.5, "seed": 3}]
    X, y = gpunet.load_data()[0]
    stack = gpunet.NetworkStack([784, 20, 10], [3] * 2, cost="quadratic", init="large",
                                device="cpu", dtype="float64")
    stack.SGD((X[:500], y[:500]), 2, 10, 3.0, dropout=[0, 0.5], verbose=False)
    names = ["eta3_lmbda0_seed3.json", "eta3_lmbda0_dropout0.5_seed3.json"]
    for k, name in enumerate(names):
        saved = gpunet.Network.load(nets / name, device="cpu", dtype="float64")
        mine = stack.network(k)
        for a, b in zip(saved.weights + saved.biases, mine.weights + mine.biases):
            assert np.array_equal(a, b), name
    ckpt, again = tmp_path / "s.ckpt", tmp_path / "again"
    interrupt_after(monkeypatch, 1)
    assert main(SWEEP + opts + ["--checkpoint", str(ckpt), "--save-dir", str(again)]) == 130
    monkeypatch.undo()
    assert main(["sweep", "--resume", str(ckpt), "--device", "cpu", "--quiet"]) == 0
    for name in names:
        a = gpunet.Network.load(nets / name, device="cpu", dtype="float64")
        b = gpunet.Network.load(again / name, device="cpu", dtype="float64")
        assert all(np.array_equal(u, v) for u, v in zip(a.weights + a.biases,
                                                        b.weights + b.biases)), name


def test_a_sweep_stops_each_network_on_its_own_and_resumes_so(tmp_path, capsys, monkeypatch):
    """--early-stop 1: a stopped network's rows end, the others go on ('1 stopped' in the
    line); stopped in the second stack and resumed, the rows and networks are those of
    the sweep never stopped (a finished stack's stopped network included)."""
    opts = ["--epochs", "12", "--eta", "3,60", "--seeds", "0-1", "--evaluate", "validation",
            "--early-stop", "1", "--stack", "2"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    whole.mkdir()
    cut.mkdir()
    assert main(SWEEP + opts + ["--metrics", str(whole / "m.jsonl"), "--save-dir",
                                str(whole / "nets")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"stack 1/2, \d+ of 12 epochs done: \d+ \(3, 0, \d\); 1 stopped", out)
    rows = [json.loads(line) for line in (whole / "m.jsonl").read_text().splitlines()[1:]]
    counts = {}
    for r in rows:
        counts[tuple(r["run"].values())] = counts.get(tuple(r["run"].values()), 0) + 1
    assert min(counts.values()) < 12 and max(counts.values()) == 12

    real = gpunet.sweep.local.epoch_line

    def line(i, count, rows, *more):
        if i == 1 and rows[0]["epoch"] == 0:
            raise KeyboardInterrupt
        return real(i, count, rows, *more)

    monkeypatch.setattr(gpunet.sweep.local, "epoch_line", line)
    assert main(SWEEP + opts + ["--metrics", str(cut / "m.jsonl"), "--save-dir",
                                str(cut / "nets"), "--checkpoint", str(cut / "s.ckpt")]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["sweep", "--resume", str(cut / "s.ckpt"), "--quiet", "--device", "cpu"]) == 0

    def without_time(path):
        return [{k: v for k, v in json.loads(line).items() if k != "train_seconds"}
                for line in path.read_text().splitlines()[1:]]

    assert without_time(cut / "m.jsonl") == without_time(whole / "m.jsonl")
    for saved in sorted((whole / "nets").iterdir()):
        assert (cut / "nets" / saved.name).read_bytes() == saved.read_bytes()


def test_the_metrics_table_gives_each_network_its_own_momentum(tmp_path):
    """A sweep's rows leave out μ = 0; the table still says 0 there, not the header's
    '0,0.5' (it did before: the column mixed the list and the numbers)."""
    metrics = tmp_path / "m.jsonl"
    assert main(SWEEP + ["--epochs", "1", "--momentum", "0,0.5", "--l1", "0.1", "--metrics",
                         str(metrics)]) == 0
    rows = gpunet.read_metrics(metrics)
    assert sorted((r["momentum"], r["l1"]) for r in rows) == [(0.0, 0.1), (0.5, 0.1)]


def test_dropout_reaches_sgd_is_recorded_and_resumes(tmp_path, capsys, monkeypatch):
    """--dropout 0.5: the network is the library's SGD(dropout=0.5), bit for bit; the
    checkpoint records it, and an interrupted run resumes to the same network; a sweep's
    checkpoint (one rate per network) passes its record check on resume."""
    ckpt, saved = tmp_path / "c.ckpt", tmp_path / "n.json"
    opts = BASE + ["--sizes", "auto,40,10", "--dropout", "0.5", "--dtype", "float64",
                   "--save", str(saved)]
    interrupt_after(monkeypatch, after=1)
    assert main(opts + ["--epochs", "3", "--checkpoint", str(ckpt)]) == 130
    monkeypatch.undo()
    assert load_checkpoint(ckpt).training["dropout"] == 0.5
    assert main(["train", "--resume", str(ckpt), "--quiet", "--device", "cpu"]) == 0
    X, y = gpunet.load_data()[0]
    net = gpunet.Network([784, 40, 10], cost="quadratic", init="large", seed=1,
                         device="cpu", dtype="float64")
    net.SGD((X[:500], y[:500]), 3, 10, 3.0, dropout=0.5, verbose=False)
    net.save(tmp_path / "library.json")  # as the command saves it (whatever the scaling)
    cli = gpunet.Network.load(saved, device="cpu", dtype="float64")
    library = gpunet.Network.load(tmp_path / "library.json", device="cpu", dtype="float64")
    for a, b in zip(cli.weights + cli.biases, library.weights + library.biases):
        assert np.array_equal(a, b)
    sweep = tmp_path / "s.ckpt"
    assert main(SWEEP + ["--epochs", "1", "--dropout", "0.5", "--seeds", "0-1",
                         "--checkpoint", str(sweep)]) == 0
    assert main(["sweep", "--resume", str(sweep), "--device", "cpu", "--quiet"]) == 0
    capsys.readouterr()
