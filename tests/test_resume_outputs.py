"""A run's outputs are part of the run (issue 26): a checkpoint records the files the
run was writing (``--save``, ``--metrics``, ``--plot``, a sweep's ``--save-dir``), and
the printed ``--resume`` command goes on writing them, the metrics file reading as one
run (one header, every epoch once). Each output a sweep writes into ``--save-dir`` is
checked before any work, and one that fails mid-run stops neither the other networks
nor the sweep.
"""

from __future__ import annotations

import json
import shlex
import shutil

import pytest

import gpunet
from gpunet import sweep as sw
from gpunet.training.checkpoint import load_checkpoint
from gpunet.cli import main
from gpunet.training.history import read_metrics
from gpunet.sweep import local as sweep_local

TRAIN = ["train", "--device", "cpu", "--limit", "300", "--sizes", "784,10,10",
         "--seed", "1", "--quiet"]
SWEEP = ["sweep", "--device", "cpu", "--limit", "300", "--epochs", "3", "--sizes",
         "784,10,10", "--eta", "0.5,3", "--lmbda", "0", "--seeds", "0-1", "--stack", "2",
         "--workers", "1", "--quiet"]


def stop_train_after(monkeypatch, epochs_done):
    """Ctrl-C as epoch ``epochs_done`` (0-based count) ends: its line is printed, the
    checkpoint holds it."""
    from gpunet.cli import train as cli_train

    real = cli_train._epoch_line

    def line(record, name):
        if record["epoch"] == epochs_done - 1:
            raise KeyboardInterrupt
        return real(record, name)

    monkeypatch.setattr(cli_train, "_epoch_line", line)


def resume_command(err: str) -> list[str]:
    """The ``gpunet ... --resume ...`` command the run printed, as a shell reads it."""
    line = next(l for l in err.splitlines() if "continue with: gpunet" in l)
    return shlex.split(line.split("continue with: gpunet", 1)[1])


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("folder", ["plain", "with spaces and 'quotes'"])
def test_the_printed_resume_command_finishes_every_output(tmp_path, monkeypatch, capsys,
                                                          folder):
    """Stopped after 2 of 4 epochs; the printed command (pasted into a shell, from
    another folder) writes --save, the whole --metrics and --plot as a run never
    stopped would."""
    where = tmp_path / folder
    where.mkdir()
    outputs = ["--checkpoint", str(where / "t.ckpt"), "--metrics", str(where / "m.jsonl"),
               "--save", str(where / "t.json")]
    stop_train_after(monkeypatch, 2)
    assert main(TRAIN + ["--epochs", "4", *outputs]) == 130
    monkeypatch.undo()
    err = capsys.readouterr().err
    command = resume_command(err)
    assert command == ["train", "--resume", str(where / "t.ckpt")]
    assert [r["epoch"] for r in lines(where / "m.jsonl")[1:]] == [0, 1]
    (where / "t.json").unlink()  # as of epoch 2: the resumed run must write it again
    monkeypatch.chdir(tmp_path)  # pasted in another folder
    assert main(command + ["--device", "cpu", "--quiet"]) == 0  # as the run was
    out = capsys.readouterr().out
    assert f"writing --save {where / 't.json'}, --metrics {where / 'm.jsonl'}" in out

    straight = tmp_path / "straight"
    straight.mkdir()
    assert main(TRAIN + ["--epochs", "4", "--metrics", str(straight / "m.jsonl"),
                         "--save", str(straight / "t.json")]) == 0
    assert (json.loads((where / "t.json").read_text())
            == json.loads((straight / "t.json").read_text()))
    resumed, whole = lines(where / "m.jsonl"), lines(straight / "m.jsonl")
    assert ["gpunet_metrics" in r for r in resumed] == [True] + [False] * 4  # one header
    assert [r["epoch"] for r in resumed[1:]] == [0, 1, 2, 3]
    untimed = [{k: v for k, v in r.items() if k != "train_seconds"} for r in resumed[1:]]
    assert untimed == [{k: v for k, v in r.items() if k != "train_seconds"}
                       for r in whole[1:]]
    assert len(read_metrics(where / "m.jsonl").history.records) == 4


def test_resume_with_the_metrics_named_again_keeps_one_header(tmp_path, monkeypatch,
                                                              capsys):
    ckpt, metrics = tmp_path / "t.ckpt", tmp_path / "m.jsonl"
    stop_train_after(monkeypatch, 1)
    assert main(TRAIN + ["--epochs", "3", "--checkpoint", str(ckpt), "--metrics",
                         str(metrics)]) == 130
    monkeypatch.undo()
    header = lines(metrics)[0]
    assert main(["train", "--resume", str(ckpt), "--metrics", str(metrics), "--quiet"]) == 0
    records = lines(metrics)
    assert records[0] == header  # the run's own header, kept
    assert [("header" if "gpunet_metrics" in r else r["epoch"]) for r in records] == [
        "header", 0, 1, 2]


def test_resume_refuses_to_replace_another_runs_metrics(tmp_path, monkeypatch, capsys):
    ckpt, metrics = tmp_path / "t.ckpt", tmp_path / "m.jsonl"
    other = tmp_path / "other.jsonl"
    assert main(TRAIN + ["--epochs", "1", "--seed", "7", "--metrics", str(other)]) == 0
    before = other.read_bytes()
    stop_train_after(monkeypatch, 1)
    assert main(TRAIN + ["--epochs", "3", "--checkpoint", str(ckpt), "--metrics",
                         str(metrics)]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["train", "--resume", str(ckpt), "--metrics", str(other), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "another run's metrics" in err and "Traceback" not in err
    assert other.read_bytes() == before
    assert load_checkpoint(ckpt).epochs_done == 1  # refused before any work


@pytest.mark.parametrize("monitored", [False, True])
def test_a_metrics_header_without_a_newer_option_is_the_runs_at_its_default(
        tmp_path, monkeypatch, capsys, monitored):
    """A metrics file written before an option existed lacks it in its header: a
    resumed run whose option has its default (what the older run had) goes on writing
    that file, its header kept; one whose option differs is another run's, refused."""
    ckpt, metrics = tmp_path / "t.ckpt", tmp_path / "m.jsonl"
    stop_train_after(monkeypatch, 1)
    extra = ["--monitor-training-cost"] if monitored else []
    assert main(TRAIN + extra + ["--epochs", "3", "--checkpoint", str(ckpt), "--metrics",
                                 str(metrics)]) == 130
    monkeypatch.undo()
    records = lines(metrics)
    del records[0]["settings"]["monitor_training_cost"]  # as an older gpunet's header
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    capsys.readouterr()
    assert main(["train", "--resume", str(ckpt), "--quiet"]) == (2 if monitored else 0)
    if monitored:
        assert "another run's metrics" in capsys.readouterr().err
        assert lines(metrics) == records  # not replaced
    else:
        assert [("header" if "gpunet_metrics" in r else r["epoch"])
                for r in lines(metrics)] == ["header", 0, 1, 2]
        assert lines(metrics)[0] == records[0]  # its own header, kept


def test_a_checkpoint_records_its_runs_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(TRAIN + ["--epochs", "1", "--checkpoint", "t.ckpt", "--metrics", "m.jsonl",
                         "--save", "t.json"]) == 0
    outputs = load_checkpoint(tmp_path / "t.ckpt").run["outputs"]
    assert outputs == {"save": str(tmp_path / "t.json"), "metrics": str(tmp_path / "m.jsonl"),
                       "plot": None, "save_best": None}


def test_a_stopped_sweep_resumes_into_its_own_outputs(tmp_path, monkeypatch, capsys):
    """Stopped after stack 1's epoch 2, the printed command finishes the metrics (one
    header, every row) and --save-dir as a sweep never stopped."""
    ckpt, metrics, nets = tmp_path / "s.ckpt", tmp_path / "m.jsonl", tmp_path / "nets"
    real = sw.epoch_line

    def line(i, count, rows, *more):
        if i == 0 and rows[0]["epoch"] == 1:
            raise KeyboardInterrupt
        return real(i, count, rows, *more)

    monkeypatch.setattr(sweep_local, "epoch_line", line)
    assert main(SWEEP + ["--checkpoint", str(ckpt), "--metrics", str(metrics),
                         "--save-dir", str(nets)]) == 130
    monkeypatch.undo()
    command = resume_command(capsys.readouterr().err)
    assert main(command + ["--device", "cpu", "--quiet"]) == 0
    whole_metrics, whole_nets = tmp_path / "w.jsonl", tmp_path / "whole"
    assert main(SWEEP + ["--metrics", str(whole_metrics), "--save-dir", str(whole_nets)]) == 0
    resumed = lines(metrics)
    assert ["gpunet_metrics" in r for r in resumed].count(True) == 1
    assert (sw.without_timing(resumed[1:]) == sw.without_timing(lines(whole_metrics)[1:]))
    assert sorted(p.name for p in nets.iterdir()) == sorted(p.name for p in whole_nets.iterdir())
    for p in whole_nets.iterdir():
        assert json.loads((nets / p.name).read_text()) == json.loads(p.read_text())


def test_a_sweep_checks_every_network_file_before_any_work(tmp_path, capsys):
    """A directory where a network's file goes is found before the first stack."""
    nets, metrics = tmp_path / "nets", tmp_path / "m.jsonl"
    (nets / sw.network_filename(sw.Run(3.0, 0.0, 1))).mkdir(parents=True)
    assert main(SWEEP + ["--save-dir", str(nets), "--metrics", str(metrics)]) == 2
    out, err = capsys.readouterr()
    assert "eta3_lmbda0_seed1.json" in err and "directory" in err
    assert "device:" not in out and not metrics.exists()


def test_a_network_file_that_fails_mid_sweep_stops_nothing_else(tmp_path, monkeypatch,
                                                                 capsys):
    """Made unwritable after the checks (a directory appears where one file goes): that
    file is one error line, every other network is trained and saved, every metrics row
    written, exit status 1."""
    from gpunet.cli import sweep as cli_sweep

    nets, metrics = tmp_path / "nets", tmp_path / "m.jsonl"
    blocked = nets / sw.network_filename(sw.Run(3.0, 0.0, 1))
    real = cli_sweep._check_network_files

    def check_then_block(runs, save_dir):
        real(runs, save_dir)
        blocked.mkdir(parents=True)

    monkeypatch.setattr(cli_sweep, "_check_network_files", check_then_block)
    sweep = [a if a != "2" else "1" for a in SWEEP]  # stacks of one: 4 stacks
    assert main(sweep + ["--save-dir", str(nets), "--metrics", str(metrics)]) == 1
    err = capsys.readouterr().err
    assert err.count("gpunet: error:") == 1 and "eta3_lmbda0_seed1.json" in err
    assert sorted(p.name for p in nets.iterdir() if p.is_file()) == sorted(
        sw.network_filename(r) for r in sw.expand_grid([0.5, 3.0], [0.0], [0, 1])
        if r != sw.Run(3.0, 0.0, 1))
    assert len(lines(metrics)) == 1 + 4 * 3
