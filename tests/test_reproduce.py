"""``gpunet reproduce --quick`` end to end, and the pieces it reports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_gpunet
from gpunet.book.reproduce import BY_NAME, EXPERIMENTS, binary_targets
from gpunet.book.toy import train_toy_neuron


def test_quick_reproduction_writes_report_and_raw_results(tmp_path):
    run = run_gpunet("reproduce", "--quick", "--device", "cpu", "--no-svm", "--out", tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"[{len(EXPERIMENTS)}/{len(EXPERIMENTS)}]" in run.stdout  # progress per run
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["meta"]["quick"] is True and results["meta"]["device"].startswith("cpu")
    assert set(results["experiments"]) == set(BY_NAME)
    for name, exp in results["experiments"].items():
        (only_run,) = exp["runs"]
        assert len(only_run["accuracy"]) == 2  # two epochs, each kept
        assert all(0 <= a <= 1000 for a in only_run["accuracy"])
        assert exp["summary"]["within_range"] is None  # quick runs are not judged
    # even on 1,000 images and two epochs the chapter-1 network is far above chance
    assert results["experiments"]["ce30"]["runs"][0]["best"] > 300
    assert results["baselines"]["average_darkness"]["total"] == 1000
    assert "skipped" in results["baselines"]["svm"]
    toy = results["toy"]
    assert len(toy["quadratic, η=0.15, w=b=2.0"]["outputs"]) == 301
    report = (tmp_path / "results.md").read_text()
    assert "Quick smoke run" in report
    for exp in EXPERIMENTS:
        assert exp.title in report
    assert "average darkness" in report and "toy neuron" in report
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    for name in BY_NAME:
        assert (tmp_path / "results" / f"{name}.png").stat().st_size > 1000
        assert f"(results/{name}.png)" in report


def test_unknown_experiment_is_a_clear_error(tmp_path):
    run = run_gpunet("reproduce", "--only", "chapter9", "--out", tmp_path)
    assert run.returncode == 2 and "unknown experiment(s) ['chapter9']" in run.stderr


def test_binary_targets():
    np.testing.assert_array_equal(binary_targets(np.array([0, 5, 9])),
                                  [[0, 0, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1]])


def test_toy_neuron_matches_the_book():
    """Section 3.1: the quadratic cost's learning slowdown from a saturated start."""
    fast = train_toy_neuron("quadratic", 0.15, 0.6, 0.9)
    slow = train_toy_neuron("quadratic", 0.15, 2.0, 2.0)
    assert fast.outputs[0] == pytest.approx(0.82, abs=0.005)
    assert slow.outputs[0] == pytest.approx(0.98, abs=0.005)
    assert fast.outputs[300] == pytest.approx(0.09, abs=0.01)  # "about 0.09"
    assert slow.outputs[100] > 0.9  # barely moved
    assert slow.costs[100] > 0.9 * slow.costs[0]  # flat start
    assert slow.outputs[300] < 0.5  # then it learns
    ce = train_toy_neuron("cross-entropy", 0.15, 2.0, 2.0)
    assert ce.outputs[50] < 0.2  # same η, no slowdown
    # book's own η for cross-entropy: cost falls from the first epoch
    ce_book = train_toy_neuron("cross-entropy", 0.005, 2.0, 2.0)
    assert ce_book.costs[100] < 0.85 * ce_book.costs[0]


def test_render_only_rewrites_the_report_from_raw_results(tmp_path):
    assert run_gpunet("reproduce", "--quick", "--device", "cpu", "--no-svm", "--no-plots",
                      "--only", "chapter1", "--out", tmp_path).returncode == 0
    report = tmp_path / "results.md"
    report.write_text("stale")
    run = run_gpunet("reproduce", "--render-only", "--no-plots", "--out", tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Chapter 1: [784, 30, 10]" in report.read_text()
    missing = run_gpunet("reproduce", "--render-only", "--out", tmp_path / "none")
    assert missing.returncode == 2 and "not found; run gpunet reproduce" in missing.stderr


def test_the_l2_rows_train_with_their_lambda_on_their_sets(mnist):
    """Chapter 3's L2 rows (issue 28, point 5): each trains with its λ on its training
    images (the first 1,000 for the small one) and is scored on its set (the validation
    images for the [784, 100, 10] rows), as the book's network2.py call does."""
    import gpunet
    from gpunet.book.reproduce import experiment_data, run_experiment
    from gpunet.io.mnist import MNIST

    data = MNIST((mnist.training[0][:1005], mnist.training[1][:1005]),
                 (mnist.validation[0][:300], mnist.validation[1][:300]),
                 (mnist.test[0][:200], mnist.test[1][:200]), "subset")
    for name, n, scored in (("l2-small", 1000, 200), ("l2-100", 1005, 300)):
        exp = BY_NAME[name]
        run = run_experiment(exp, data, 0, gpunet.get_backend("cpu"), 1, lambda text: None)
        training, evaluation = experiment_data(exp, data)
        assert (len(training[1]), run["total"]) == (n, scored)
        net = gpunet.Network(list(exp.sizes), cost=exp.cost, init="large", seed=0,
                             device="cpu")
        net.SGD(training, 1, 10, exp.eta, lmbda=exp.lmbda, evaluation_data=evaluation,
                monitor_evaluation_accuracy=True, verbose=False)
        assert run["accuracy"] == net.history.evaluation_accuracy, name


def test_only_names_every_experiment():
    """``--only``'s help lists each row's name (it is written out by hand there)."""
    from gpunet.book.reproduce import EXPERIMENTS
    from gpunet.cli.command import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["reproduce"]  # type: ignore
    only = next(a for a in sub._actions if a.dest == "only")
    assert all(f" {e.name}," in only.help for e in EXPERIMENTS)
