"""``gpunet sweep`` and :mod:`gpunet.sweep`: the grid, stacks, rows, table, files.

Each run of a sweep must be the run ``gpunet train`` / ``Network.SGD`` makes with the
same settings and seed (the networks are trained stacked, see test_stack.py).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import gpunet
from gpunet import Network
from gpunet import sweep as sw
from gpunet.cli import main

COMMON = ["--device", "cpu", "--limit", "503", "--epochs", "2", "--sizes", "784,10,10"]


# ------------------------------------------------------------------ the grid
def test_parse_seeds_takes_lists_and_ranges():
    assert sw.parse_seeds("0-2,10") == [0, 1, 2, 10]
    assert sw.parse_seeds("7") == [7]
    assert sw.parse_seeds("3-3") == [3]


@pytest.mark.parametrize("text", ["3-1", "a", "-1", "1,,2", "0-x"])
def test_parse_seeds_errors(text):
    with pytest.raises(ValueError, match="--seeds"):
        sw.parse_seeds(text)


def test_parse_floats():
    assert sw.parse_floats("0.025, 0.25,2.5", "--eta") == [0.025, 0.25, 2.5]
    with pytest.raises(ValueError, match="--eta '0.5,x': 'x' is not a number"):
        sw.parse_floats("0.5,x", "--eta")


def test_grid_order_every_combination_times_every_seed():
    runs = sw.expand_grid([0.5, 3.0], [0.0, 1.0], [4, 5])
    assert [(r.eta, r.lmbda, r.seed) for r in runs] == [
        (0.5, 0.0, 4), (0.5, 0.0, 5), (0.5, 1.0, 4), (0.5, 1.0, 5),
        (3.0, 0.0, 4), (3.0, 0.0, 5), (3.0, 1.0, 4), (3.0, 1.0, 5)]


@pytest.mark.parametrize("etas,lmbdas,seeds,match", [
    ([0.5, 0.5], [0.0], [0], "--eta lists 0.5 more than once"),
    ([0.5], [0.0], [1, 1], "--seeds lists 1 more than once"),
    ([0.0], [0.0], [0], "eta"),
    ([0.5], [-1.0], [0], "lmbda"),
    ([], [0.0], [0], "--eta is empty"),
])
def test_grid_errors(etas, lmbdas, seeds, match):
    with pytest.raises(ValueError, match=match):
        sw.expand_grid(etas, lmbdas, seeds)


@pytest.mark.parametrize("n,size,expected", [(8, 8, [8]), (8, 3, [3, 3, 2]),
                                             (10, 4, [4, 4, 2]), (5, 100, [5]),
                                             (3, 1, [1, 1, 1])])
def test_split_into_stacks(n, size, expected):
    runs = sw.expand_grid([0.5], [0.0], list(range(n)))
    stacks = sw.split_into_stacks(runs, size)
    assert [len(s) for s in stacks] == expected
    assert [r for s in stacks for r in s] == runs


def test_default_stack_size_is_positive_and_capped():
    backend = gpunet.get_backend("cpu")
    size = sw.default_stack_size(backend, (784, 30, 10), "float32", 10)
    assert 1 <= size <= sw.MAX_DEFAULT_STACK


def test_summary_mean_std_best_final():
    runs = sw.expand_grid([0.5], [0.0], [0, 1])
    rows = [{"run": runs[0].as_dict(), "epoch": 0, "evaluation_correct": 90,
             "evaluation_total": 100},
            {"run": runs[0].as_dict(), "epoch": 1, "evaluation_correct": 80,
             "evaluation_total": 100},
            {"run": runs[1].as_dict(), "epoch": 0, "evaluation_correct": 70,
             "evaluation_total": 100},
            {"run": runs[1].as_dict(), "epoch": 1, "evaluation_correct": 94,
             "evaluation_total": 100}]
    (t,) = sw.summarize(runs, rows)
    assert t["seeds"] == 2
    assert t["best_mean"] == pytest.approx(92.0) and t["best_max"] == pytest.approx(94.0)
    assert t["best_std"] == pytest.approx(np.std([90, 94], ddof=1))
    assert t["final_mean"] == pytest.approx(87.0)
    assert "92.00 ±" in sw.summary_text([t], "test")


# ------------------------------------------------------------ the command
def run_sweep(tmp_path, *args):
    """The sweep's rows; its metrics file's header is checked and left out."""
    metrics = tmp_path / "m.jsonl"
    code = main(["sweep", *COMMON, "--metrics", str(metrics), *args])
    assert code == 0
    header, *rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert header["gpunet_metrics"] == 1 and "run" not in header
    assert header["settings"]["epochs"] == 2 and header["sweep"]["networks"] >= 1
    assert header["evaluation_data"] == ("validation" if "validation" in args else "test")
    return rows


def test_sweep_runs_equal_single_network_runs(tmp_path, mnist, capsys):
    rows = run_sweep(tmp_path, "--eta", "0.5,3", "--lmbda", "0,2", "--seeds", "0-1",
                     "--stack", "3", "--dtype", "float64", "--save-dir",
                     str(tmp_path / "nets"), "--monitor-evaluation-cost")
    out = capsys.readouterr().out
    assert "3 stack(s) of at most 3" in out
    assert len([l for l in out.splitlines() if l.startswith("stack ")]) == 3 * 2
    assert len(rows) == 8 * 2
    # train's keys (gpunet.History's) plus the run
    assert set(rows[0]) == {"run", "epoch", "evaluation_correct", "evaluation_total",
                            "evaluation_cost", "train_seconds"}
    X, y = mnist.training
    for eta, lmbda, seed in [(0.5, 0.0, 0), (3.0, 2.0, 1), (3.0, 0.0, 1)]:
        net = Network([784, 10, 10], cost="quadratic", init="large", dtype="float64",
                      device="cpu", seed=seed)
        history = net.SGD((X[:503], y[:503]), 2, 10, eta, lmbda=lmbda,
                          evaluation_data=mnist.test, monitor_evaluation_accuracy=True,
                          monitor_evaluation_cost=True, verbose=False)
        mine = [r for r in rows if r["run"] == {"eta": eta, "lmbda": lmbda, "seed": seed}]
        assert [r["epoch"] for r in mine] == [0, 1]
        assert [r["evaluation_correct"] for r in mine] == history.evaluation_accuracy
        np.testing.assert_allclose([r["evaluation_cost"] for r in mine], history.evaluation_cost,
                                   rtol=1e-9)
        saved = gpunet.load(tmp_path / "nets" / f"eta{eta:g}_lmbda{lmbda:g}_seed{seed}.json",
                            device="cpu", dtype="float64")
        np.testing.assert_allclose(saved.parameters, net.parameters, rtol=0, atol=1e-12)
    # rows in the grid's order: run by run, epochs in order
    order = [(r["run"]["eta"], r["run"]["lmbda"], r["run"]["seed"], r["epoch"]) for r in rows]
    assert order == sorted(order)
    assert len(list((tmp_path / "nets").iterdir())) == 8


def test_sweep_on_validation_and_table(tmp_path, capsys):
    rows = run_sweep(tmp_path, "--eta", "3", "--seeds", "2,5", "--evaluate", "validation",
                     "--monitor-training-accuracy")
    assert {"evaluation_correct", "evaluation_total", "training_correct",
            "training_total"} <= set(rows[0])
    out = capsys.readouterr().out
    table = out[out.index("best validation %"):]
    assert "         3          0     2" in table  # η, λ, 2 seeds


def test_sweep_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    run_sweep(tmp_path, "--eta", "0.5,3", "--plot", str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,message", [
    (["--eta", "0.5,abc"], "'abc' is not a number"),
    (["--seeds", "3-1"], "--seeds '3-1'"),
    (["--eta", "1,1"], "--eta lists 1.0 more than once"),
    (["--lmbda", "-1"], "lmbda"),
    (["--stack", "0"], "--stack must be a positive integer"),
    (["--ray-address", "auto"], "need --executor ray"),
    (["--limit", "60001"], "exceeds the 50000 training images"),
    (["--metrics", "/no/such/dir/m.jsonl"], "does not exist"),
])
def test_sweep_errors_are_one_line(args, message, capsys):
    assert main(["sweep", *COMMON, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gpunet: error:") and message in err[0], err


def test_missing_ray_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["sweep", *COMMON, "--executor", "ray"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--executor ray needs Ray" in err[0], err
    assert 'the ray extra: pip install "ray' in err[0], err


# ------------------------------------------------ --executor, --engine, the old spellings
def test_executor_says_where_the_stacks_train(tmp_path, capsys):
    """``--executor local`` (the default) trains the stacks here, as the sweep's line
    says; no note."""
    rows = run_sweep(tmp_path, "--eta", "0.5,3", "--executor", "local")
    captured = capsys.readouterr()
    assert "1 stack(s) of at most 2 on local" in captured.out and captured.err == ""
    assert len(rows) == 2 * 2


def test_sweep_engine_is_the_step_engine_as_in_train(tmp_path, capsys):
    """``sweep --engine`` chooses how the stacks step, as ``train --engine`` does for one
    network; the checkpoint and the metrics header record it as ``stack_engine``, the
    key every gpunet has written (the record's format is unchanged: files written
    before resume and go on as they were)."""
    ckpt = tmp_path / "s.ckpt"
    run_sweep(tmp_path, "--eta", "0.5,3", "--engine", "eager", "--checkpoint", str(ckpt))
    assert capsys.readouterr().err == ""
    saved = gpunet.load_checkpoint(ckpt)
    assert saved.training["engine"] == "eager" and saved.meta["engine"] == "stacked-eager"
    options = saved.run["sweep"]["options"]
    assert options["stack_engine"] == "eager" and not {"engine", "executor"} & set(options)
    header = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[0])
    assert header["settings"]["stack_engine"] == "eager"


def test_sweep_help_shows_executor_and_engine_not_the_old_spelling(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = capsys.readouterr().out
    assert "--executor {local,ray}" in text
    assert "--engine {" + ",".join(gpunet.engines.ENGINE_NAMES) + "}" in text
    assert "--stack-engine" not in text


@pytest.mark.parametrize("old,new,note", [
    (["--engine", "local"], ["--executor", "local"],
     "sweep --engine local is spelled --executor local now (--engine chooses the step "
     "engine, as in gpunet train)"),
    (["--stack-engine", "eager"], ["--engine", "eager"],
     "sweep --stack-engine eager is spelled --engine eager now (as in gpunet train)"),
])
def test_the_old_spellings_still_work_with_a_note(tmp_path, capsys, old, new, note):
    """``--engine local|ray`` (now ``--executor``) and ``--stack-engine`` (now
    ``--engine``) train the same sweep as the new spellings, with one note on stderr."""
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    rows_old = run_sweep(tmp_path / "old", "--eta", "0.5,3", "--workers", "1", *old)
    err_old = capsys.readouterr().err
    rows_new = run_sweep(tmp_path / "new", "--eta", "0.5,3", "--workers", "1", *new)
    err_new = capsys.readouterr().err
    assert err_old.splitlines() == [f"gpunet: note: {note}"] and err_new == ""
    assert sw.without_timing(rows_old) == sw.without_timing(rows_new)
    headers = [json.loads((tmp_path / d / "m.jsonl").read_text().splitlines()[0])
               for d in ("old", "new")]
    assert headers[0]["settings"] == headers[1]["settings"]


def test_the_old_spelling_of_ray_says_so_and_names_the_new_one(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["sweep", *COMMON, "--engine", "ray"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("gpunet: note: sweep --engine ray is spelled --executor ray now "
                      "(--engine chooses the step engine, as in gpunet train)")
    assert len(err) == 2 and "--executor ray needs Ray" in err[1], err


def test_an_unknown_engine_lists_the_step_engines_only(capsys):
    """``--engine`` takes the old executor names quietly, but names only the step
    engines when a value is neither."""
    with pytest.raises(SystemExit):
        main(["sweep", *COMMON, "--engine", "warp"])
    err = capsys.readouterr().err
    assert "invalid choice: 'warp'" in err
    assert all(repr(name) in err for name in gpunet.engines.ENGINE_NAMES)
    assert "'local'" not in err and "'ray'" not in err


# ------------------------------------------------------------ the benchmark
def test_sweep_vs_train_benchmark_runs_and_agrees(tmp_path, capsys):
    """A smoke run of ``gpunet bench --sweep-vs-train`` (its timings mean nothing here):
    K train commands and one sweep give every network the same accuracy per epoch."""
    assert main(["bench", "--sweep-vs-train", "2", "--epochs", "2", "--limit", "300",
                 "--rounds", "2", "--out", str(tmp_path), "--stamp", "s"]) == 0
    result = json.loads((tmp_path / "s-sweep.json").read_text())
    assert result["networks"] == 2 and len(result["train_seconds"]) == 2
    assert len(result["rounds"]) == 2
    assert result["rounds"][result["median_round"]]["speedup"] == result["speedup"]
    assert result["identical_accuracy"] is True
    assert result["sweep_command"] == ("gpunet sweep --device cpu --dtype float32 --epochs 2 "
                                       "--limit 300 --seeds 0-1")
    assert result["speedup"] == pytest.approx(result["sequential_seconds"]
                                              / result["sweep_seconds"])
    assert "speed-up" in (tmp_path / "s-sweep.md").read_text()
