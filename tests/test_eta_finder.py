"""The η finder (issue 28, point 4): ``gpunet.find_eta`` and ``gpunet find-eta``.

The rule (:mod:`gpunet.sweep.eta_finder`) on crafted cost sequences; the candidates'
grid; a real search on a small MNIST subset (every candidate one network of a stack
from the same seed, as a single network trained at its η would be); the command end to
end: its reasoning and last line, the JSON record, outputs never replaced without
``--overwrite``, and a bad range as one error line before any work. CPU only, small
data and networks (a few seconds in all)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

import gpunet
from gpunet.cli import main
from gpunet.sweep.eta_finder import (PASSES, RULE, falls_steadily, find_eta,
                                     geometric_etas, judge)


# ------------------------------------------------------------------ the grid
def test_the_default_grid_is_four_a_decade_from_a_thousandth_to_a_thousand():
    etas = geometric_etas()
    assert len(etas) == 25 and etas[0] == 0.001 and etas[-1] == 1000.0
    assert etas[:5] == [0.001, 0.00178, 0.00316, 0.00562, 0.01]
    ratios = np.diff(np.log10(etas))
    np.testing.assert_allclose(ratios, 0.25, atol=0.002)  # 3 significant digits
    assert geometric_etas(0.01, 100, 1) == [0.01, 0.1, 1.0, 10.0, 100.0]
    assert geometric_etas(0.1, 0.5, 2) == [0.1, 0.316]  # the end off the grid: left out


@pytest.mark.parametrize("low, high, per_decade, words", [
    (1.0, 0.5, 4, "0 < low < high"), (0.0, 1.0, 4, "0 < low < high"),
    (-1.0, 1.0, 4, "0 < low < high"), (0.1, math.inf, 4, "0 < low < high"),
    (math.nan, 1.0, 4, "0 < low < high"), (0.1, 10.0, 0, "positive whole number"),
    (0.1, 10.0, 1.5, "positive whole number"), (0.1, 10.0, True, "positive whole number"),
    (1.0, 1.2, 4, "holds only one candidate"),
])
def test_a_range_that_cannot_bracket_anything_is_one_error(low, high, per_decade, words):
    with pytest.raises(ValueError, match=words) as error:
        geometric_etas(low, high, per_decade)
    assert "--" not in str(error.value)  # the library's names, not the command's


# ------------------------------------------------------------------ the rule
ETAS = [0.1, 1.0, 10.0]


def test_steady_candidates_then_an_oscillating_one_put_the_threshold_below_it():
    costs = [[5, 4, 3, 2], [5, 3, 2, 1], [5, 2.5, 2.8, 2.0]]  # 10 rises in epoch 2
    passed, threshold, proposal, lines = judge(ETAS, costs)
    assert passed == [True, True, False]
    assert (threshold, proposal) == (1.0, 0.5)
    assert lines[1].endswith(PASSES)
    assert "does not fall in epoch 2 (2.5 to 2.8)" in lines[2]
    assert "Threshold: 1" in lines[-1] and "eta = 0.5" in lines[-1]


def test_a_larger_eta_that_makes_less_progress_has_overshot():
    """The cost at 10 falls at every measurement, but above 1's after epoch 1: it blew
    up inside the epoch (the oscillation the book describes, seen once an epoch)."""
    costs = [[5, 4, 3, 2], [5, 2, 1.5, 1], [5, 3, 2, 0.5]]
    assert all(falls_steadily(c) for c in costs)
    passed, threshold, proposal, lines = judge(ETAS, costs)
    assert passed == [True, True, False] and (threshold, proposal) == (1.0, 0.5)
    assert "overshoots: after epoch 1 its cost 3 is not below 2, eta 1's" in lines[2]


def test_a_diverged_candidate_fails_and_the_first_failure_sets_the_threshold():
    costs = [[5, 4, 3], [5, 3, math.nan], [5, 2, 1]]  # 1 diverged (NaN); 10 looks fine
    passed, threshold, proposal, lines = judge(ETAS, costs)
    assert passed == [True, False, True]
    assert (threshold, proposal) == (0.1, 0.05)
    assert "diverges (not finite) in epoch 2" in lines[1]
    assert not falls_steadily([5, math.inf]) and not falls_steadily([5])


def test_a_range_that_does_not_bracket_the_threshold_says_which_way_to_move():
    below = judge(ETAS, [[5, 5.5, 4], [5, 6, 7], [5, 9, 9]])
    assert below[1:3] == (None, None)
    assert below[3][-1].endswith("the threshold is below the range; try smaller values.")
    above = judge(ETAS, [[5, 4, 3], [5, 3, 2], [5, 2, 1]])
    assert above[0] == [True] * 3 and above[1:3] == (None, None)
    assert above[3][-1].endswith("the threshold is above the range; try larger values.")


def test_the_rule_refuses_candidates_it_cannot_judge():
    with pytest.raises(ValueError, match="ascend"):
        judge([1.0, 0.1], [[2, 1], [2, 1]])
    with pytest.raises(ValueError, match="one cost sequence per candidate"):
        judge(ETAS, [[2, 1], [2, 1]])
    with pytest.raises(ValueError, match="all of one length"):
        judge([0.1, 1.0], [[2, 1], [2, 1, 0.5]])


# ------------------------------------------------------------------ a real search
def _subset(mnist, n=1000):
    return mnist.training[0][:n], mnist.training[1][:n]


@pytest.fixture(scope="module")
def finding(mnist):
    return find_eta(_subset(mnist), [784, 10, 10], cost="cross-entropy", activation="tanh",
                    dtype="float64", device="cpu", seed=3, etas=geometric_etas(0.01, 1000, 2),
                    epochs=2)


def test_a_real_search_brackets_the_threshold_and_proposes_half_of_it(finding):
    etas = finding.etas
    assert finding.threshold is not None and etas[0] < finding.threshold < etas[-1]
    k = etas.index(finding.threshold)
    assert all(finding.passed[: k + 1]) and not finding.passed[k + 1]
    assert finding.proposal == float(f"{finding.threshold / 2:.3g}")
    assert gpunet.find_eta is find_eta  # the public name
    record = json.loads(json.dumps(finding.as_json()))  # JSON-ready
    assert record["rule"] == RULE and record["settings"]["device"] == "cpu"
    assert record["settings"]["examples"] == 1000 and len(record["costs"]) == len(etas)


def test_every_candidate_is_the_single_network_its_eta_would_train(finding, mnist):
    """One stack, one seed: every candidate starts from the same parameters and sees the
    same shuffles, so each cost curve is a lone ``Network(seed=3)``'s at that η (tanh
    hidden neurons: the stack's are the network's)."""
    for k in (0, len(finding.etas) - 1):
        net = gpunet.Network([784, 10, 10], cost="cross-entropy", activation="tanh",
                             dtype="float64", device="cpu", seed=3)
        before = net.total_cost(_subset(mnist))
        history = net.SGD(_subset(mnist), 2, 10, finding.etas[k],
                          monitor_training_cost=True, verbose=False)
        np.testing.assert_allclose(finding.costs[k], [before, *history.training_cost],
                                   rtol=1e-9)


# ------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def small_data(mnist, tmp_path_factory):
    """600 MNIST training images as an .npz archive (quicker to read than MNIST)."""
    path = tmp_path_factory.mktemp("data") / "small.npz"
    X, y = _subset(mnist, 600)
    np.savez(path, x_train=X, y_train=y)
    return path


def _base(data):
    return ["find-eta", "--device", "cpu", "--data", str(data), "--sizes", "784,10,10",
            "--cost", "cross-entropy", "--seed", "3", "--epochs", "2", "--per-decade", "2",
            "--eta-min", "0.01", "--eta-max", "1000"]


def test_the_command_prints_its_reasoning_and_the_train_command_and_writes_json(
        tmp_path, capsys, small_data):
    """It writes the record over an existing file with --overwrite, and a later run
    without it is refused before any work, the file as it was."""
    record, plot = tmp_path / "finding.json", tmp_path / "curves.png"
    record.write_text("earlier work")
    assert main([*_base(small_data), "--json", str(record), "--overwrite", "--momentum", "0.5",
                 "--activation", "tanh"]
                + (["--plot", str(plot)] if _has_matplotlib() else [])) == 0
    out = capsys.readouterr().out.splitlines()
    found = json.loads(record.read_text())
    assert found["proposal"] == float(f"{found['threshold'] / 2:.3g}")
    assert found["rule"] == RULE and len(found["etas"]) == 11
    assert found["settings"]["examples"] == 600 and found["settings"]["momentum"] == 0.5
    assert found["settings"]["activation"] == "tanh"
    assert out[-1] == f"train with: {found['train_command']}"
    assert out[-1] == (f"train with: gpunet train --sizes 784,10,10 --cost cross-entropy "
                       f"--init large --lmbda 0 --batch-size 10 --activation tanh --momentum 0.5 "
                       f"--device cpu --data {small_data} --eta {found['proposal']:g}")
    assert any(line.startswith("rule: a candidate eta passes when") for line in out)
    assert sum(line.startswith("  eta ") for line in out) == 11  # a line per candidate
    assert any(f"Threshold: {found['threshold']:g}." in line for line in out)
    if _has_matplotlib():
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = record.read_text()
    assert main([*_base(small_data), "--json", str(record)]) == 2
    captured = capsys.readouterr()
    assert f"gpunet: error: --json {record} already exists" in captured.err
    assert "--overwrite" in captured.err and "device:" not in captured.out
    assert record.read_text() == written


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("range_, words", [
    (["--eta-min", "10", "--eta-max", "1"], "the range of eta must be 0 < low < high"),
    (["--eta-min", "0"], "the range of eta must be 0 < low < high"),
    (["--eta-min", "1", "--eta-max", "1.5", "--per-decade", "4"],
     "the range 1 to 1.5 holds only one candidate"),
])
def test_a_bad_range_is_one_error_line_before_any_work(range_, words, capsys, tmp_path,
                                                       small_data):
    record = tmp_path / "finding.json"
    assert main([*_base(small_data), *range_, "--json", str(record)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"gpunet: error: {words}") and "Traceback" not in captured.err
    assert "(--eta-min, --eta-max)" in captured.err  # the command's names
    assert "device:" not in captured.out and not record.exists()  # before any work


def test_a_range_entirely_below_the_threshold_has_no_proposal_and_status_1(
        tmp_path, capsys, small_data):
    record = tmp_path / "finding.json"
    assert main([*_base(small_data)[:-4], "--eta-min", "0.001", "--eta-max", "0.01",
                 "--json", str(record)]) == 1
    out = capsys.readouterr().out
    assert "try larger values (--eta-max)" in out and "train with:" not in out
    assert json.loads(record.read_text())["proposal"] is None


def test_the_help_states_the_rule(capsys):
    with pytest.raises(SystemExit):
        main(["find-eta", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the threshold is the largest eta up to which every candidate passes" in text
    assert "the proposal is half the threshold" in text and "--eta-min" in text


# ------------------------------------------------------------------ chapter 3's L1 and dropout
# A small float64 network on 200 images, three candidates, two epochs: the candidates
# train the model the proposal is for (l1 and dropout reach the stack's SGD), and the
# judged cost is the one that model's training monitors.
SMALL = dict(cost="cross-entropy", dtype="float64", device="cpu", seed=7,
             etas=[0.1, 1.0, 10.0], epochs=2, lmbda=1.0)
SIZES = [784, 8, 10]


def _tiny(mnist):
    return _subset(mnist, 200)


def _old_finder_costs(data, momentum):
    """The costs as the finder measured them before it took l1 and dropout: network 0's
    total cost (with L2), then the stack's monitored training costs."""
    stack = gpunet.NetworkStack(SIZES, [SMALL["seed"]] * 3, cost=SMALL["cost"],
                                dtype="float64", device="cpu")
    before = stack.network(0).total_cost(data, SMALL["lmbda"])
    histories = stack.SGD(data, 2, 10, SMALL["etas"], lmbda=SMALL["lmbda"],
                          momentum=momentum, monitor_training_cost=True, verbose=False,
                          progress=False)
    return [[float(before), *h.training_cost] for h in histories]


def test_at_their_defaults_l1_and_dropout_leave_the_finding_bit_for_bit(mnist):
    data = _tiny(mnist)
    old = _old_finder_costs(data, momentum=0.3)
    assert find_eta(data, SIZES, momentum=0.3, **SMALL).costs == old  # exactly
    given = find_eta(data, SIZES, momentum=0.3, l1=0.0, dropout=0.0, **SMALL)
    assert given.costs == old
    assert (given.settings["l1"], given.settings["dropout"]) == (0.0, 0.0)


def _with_l1(net, data, lmbda, l1):
    """The network's own total cost (L2) plus the L1 term computed here, on the host."""
    n = len(data[1])
    return net.total_cost(data, lmbda) + (l1 / n) * sum(float(np.abs(w).sum())
                                                        for w in net.weights)


def test_the_judged_cost_includes_the_l1_term(mnist):
    """Each measurement is the cost a lone network trained at that η with ``l1``
    has, L1 term included (computed here independently of the library's)."""
    data, l1 = _tiny(mnist), 0.05
    finding = find_eta(data, SIZES, l1=l1, **SMALL)
    assert finding.settings["l1"] == l1
    k = 1
    net = gpunet.Network(SIZES, cost="cross-entropy", dtype="float64", device="cpu",
                         seed=SMALL["seed"])
    expected = [_with_l1(net, data, SMALL["lmbda"], l1)]
    plain = [net.total_cost(data, SMALL["lmbda"])]
    net.SGD(data, 2, 10, SMALL["etas"][k], lmbda=SMALL["lmbda"], l1=l1, verbose=False,
            callback=lambda record: expected.append(_with_l1(net, data, SMALL["lmbda"], l1)))
    np.testing.assert_allclose(finding.costs[k], expected, rtol=1e-9)
    assert net.total_cost(data, SMALL["lmbda"], l1=l1) == pytest.approx(expected[-1], rel=1e-12)
    with pytest.raises(ValueError, match="l1 .the L1 regularization. must be a number >= 0"):
        net.total_cost(data, l1=-1.0)
    assert finding.costs[k][0] - plain[0] > 1e-3  # the L1 term is there, and it matters


def test_dropout_reaches_the_stacks_training_and_the_cost_is_the_whole_networks(mnist):
    """With dropout 0.5 the candidates train as a stack's SGD with that dropout does
    (the same costs, exactly), unlike without it; every cost is the whole network's,
    its weights out of the hidden layer halved (the book's oracle, before training and
    after the last epoch)."""
    from gpunet.check import reference as ref

    data, p = _tiny(mnist), 0.5
    finding = find_eta(data, SIZES, dropout=p, **SMALL)
    assert finding.settings["dropout"] == p
    stack = gpunet.NetworkStack(SIZES, [SMALL["seed"]] * 3, cost="cross-entropy",
                                dtype="float64", device="cpu")
    first = [np.array(w[0]) for w in stack.weights], [np.array(b[0]) for b in stack.biases]
    histories = stack.SGD(data, 2, 10, SMALL["etas"], lmbda=SMALL["lmbda"], dropout=p,
                          monitor_training_cost=True, verbose=False, progress=False)
    assert [c[1:] for c in finding.costs] == [list(h.training_cost) for h in histories]
    without = find_eta(data, SIZES, **SMALL)
    assert all(abs(a[1] - b[1]) > 1e-3 for a, b in zip(finding.costs, without.costs))
    X, Y = data[0], np.eye(10)[data[1]]

    def whole(weights, biases):
        return ref.total_cost(ref.dropout_scaled(weights, p), biases, X, Y, "cross-entropy",
                              SMALL["lmbda"])

    assert finding.costs[0][0] == pytest.approx(whole(*first), rel=1e-9)
    assert abs(finding.costs[0][0] - without.costs[0][0]) > 1e-3  # halved: another cost
    last = [np.array(w[2]) for w in stack.weights], [np.array(b[2]) for b in stack.biases]
    assert finding.costs[2][-1] == pytest.approx(whole(*last), rel=1e-9)


@pytest.mark.parametrize("keyword, value, words", [
    ("l1", -1e-4, "l1 (the L1 regularization) must be a number >= 0"),
    ("l1", math.nan, "l1 (the L1 regularization) must be a number >= 0"),
    ("dropout", 1.0, "dropout (the rate at which hidden neurons are removed) must be"),
    ("dropout", [0.5, 0.5, 0.5], "dropout (the rate at which hidden neurons are removed)"),
])
def test_bad_l1_or_dropout_is_one_error_before_any_training(keyword, value, words, mnist):
    epochs: list = []
    with pytest.raises(ValueError, match=re.escape(words)):
        find_eta(_tiny(mnist), SIZES, callback=epochs.append, **{keyword: value}, **SMALL)
    assert epochs == []


def test_the_command_trains_with_l1_and_dropout_and_says_so(tmp_path, capsys, small_data,
                                                            mnist):
    record = tmp_path / "finding.json"
    assert main([*_base(small_data)[:-6], "--per-decade", "1", "--eta-min", "0.1",
                 "--eta-max", "100", "--limit", "200", "--dtype", "float64", "--lmbda", "1",
                 "--l1", "1e-4", "--dropout", "0.5", "--json", str(record)]) == 0
    out = capsys.readouterr().out.splitlines()
    found = json.loads(record.read_text())
    assert (found["settings"]["l1"], found["settings"]["dropout"]) == (1e-4, 0.5)
    assert out[-1] == f"train with: {found['train_command']}"
    assert out[-1] == (f"train with: gpunet train --sizes 784,10,10 --cost cross-entropy "
                       f"--init large --lmbda 1 --batch-size 10 --l1 0.0001 --dropout 0.5 "
                       f"--dtype float64 --device cpu --data {small_data} --limit 200 "
                       f"--eta {found['proposal']:g}")
    library = find_eta(_subset(mnist, 200), [784, 10, 10], cost="cross-entropy",
                       init="large", dtype="float64", device="cpu", seed=3,
                       etas=found["etas"], epochs=2,
                       lmbda=1.0, l1=1e-4, dropout=0.5)
    assert found["costs"] == library.costs  # the options reached the candidates


@pytest.mark.parametrize("given, words", [
    (["--l1", "-0.1"], "--l1: l1 (the L1 regularization) must be a number >= 0, got -0.1"),
    (["--l1", "inf"], "--l1: l1 (the L1 regularization) must be a number >= 0"),
    (["--dropout", "1"], "--dropout: dropout (the rate at which hidden neurons are removed) "
     "must be a number from 0 up to 1 (not 1), got 1.0"),
    (["--dropout", "nan"], "--dropout: dropout (the rate at which hidden neurons are "
     "removed) must be a number from 0 up to 1"),
    (["--momentum", "1.5"], "--momentum: momentum (the coefficient μ) must be a number"),
])
def test_a_bad_l1_dropout_or_momentum_is_one_error_line_before_any_work(
        given, words, capsys, tmp_path, small_data):
    record = tmp_path / "finding.json"
    assert main([*_base(small_data), *given, "--json", str(record)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"gpunet: error: {words}")
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    assert "device:" not in captured.out and not record.exists()  # before any work


def test_the_help_names_l1_and_dropout(capsys):
    with pytest.raises(SystemExit):
        main(["find-eta", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--l1 LAMBDA" in text and "--dropout P" in text
    assert "--momentum, --l1 and --dropout" in text
