"""One epoch convention and sweeps that explain themselves (issue 30, points 3 and 4).

The book's ``Epoch j:`` line stays exactly as it is (j counts from 0); every other
line that counts epochs says how many are complete, in the same words: "N of M epochs
done". A sweep's per-epoch line names its best and worst networks by their (η, λ,
seed) under a key printed once, within 80 columns; contradictory options are one error.
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import interrupt_after, run_gpunet
from gpunet.cli import main

BOOK_LINE = re.compile(r"^Epoch \d+: \d+ / \d+  \(\d+\.\d\d s\)$")
OLD_WORDS = re.compile(r"\bepochs? \d|\bepoch \{|\d+/\d+ epoch|as of epoch|at epoch|"
                       r"during epoch|completed epoch")
DONE = re.compile(r"\b(\d+) of (\d+) epochs? done\b")


def _counting_lines(text: str) -> list[str]:
    """Every line but the book's that speaks of epochs."""
    return [line for line in text.splitlines()
            if "epoch" in line.lower() and not line.startswith("Epoch ")]


def test_every_line_that_counts_epochs_says_how_many_are_done(tmp_path, monkeypatch, capsys):
    """After ``Epoch 1:`` (two epochs done), Ctrl-C, the saved network, the checkpoint,
    the resume and the summaries all say "2 of 5 epochs done" (old: "during epoch 2",
    "as of epoch 2", "holds epoch 2", "at epoch 1": labels and counts mixed)."""
    ckpt, saved = tmp_path / "run.ckpt", tmp_path / "net.json"
    interrupt_after(monkeypatch, after=2)
    args = ["train", "--device", "cpu", "--limit", "300", "--epochs", "5", "--seed", "3",
            "--quiet", "--checkpoint", str(ckpt), "--save", str(saved)]
    assert main(args) == 130
    first = capsys.readouterr()
    monkeypatch.undo()
    assert main(["train", "--resume", str(ckpt), "--quiet"]) == 0
    second = capsys.readouterr()
    text = first.out + first.err + second.out + second.err
    book = [line for line in text.splitlines() if line.startswith("Epoch ")]
    assert [line.split(":")[0] for line in book] == [f"Epoch {j}" for j in range(5)]
    assert all(BOOK_LINE.match(line) for line in book), book  # the book's line, exactly
    lines = _counting_lines(text)
    assert not [line for line in lines if OLD_WORDS.search(line)], lines
    counts = [DONE.search(line).groups() for line in lines if DONE.search(line)]
    assert ("2", "5") in counts and all(total == "5" for _, total in counts), lines
    assert "interrupted with 2 of 5 epochs done; keeping them" in first.err
    assert f"saved network to {saved} (2 of 5 epochs done)" in first.out
    assert f"checkpoint {ckpt} holds 2 of 5 epochs done; continue with" in first.err
    assert f"resuming {ckpt}: 2 of 5 epochs done" in second.out
    best = max(book, key=lambda line: int(line.split()[2]))
    assert f"with {int(best.split()[1][:-1]) + 1} of 5 epochs done" in second.out


def test_the_progress_line_counts_epochs_done():
    from gpunet.training.progress import Progress

    class Terminal:
        def isatty(self):
            return True

    progress = Progress(epochs=30, n=100, engine=object(), stream=Terminal())
    progress.epoch = 13  # "Epoch 13:" not printed yet: 13 done
    assert progress.line(elapsed=1.0).startswith("13 of 30 epochs done ")


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    metrics = tmp_path_factory.mktemp("sweep") / "m.jsonl"
    run = run_gpunet("sweep", "--device", "cpu", "--limit", "300", "--epochs", "2",
                     "--eta", "0.5,3", "--lmbda", "0,5", "--seeds", "0-9", "--stack", "20",
                     "--sizes", "784,12,10", "--metrics", str(metrics), "--quiet")
    assert run.returncode == 0, run.stderr
    return run.stdout, [json.loads(line) for line in metrics.read_text().splitlines()][1:]


def test_a_sweeps_epoch_lines_name_the_best_and_worst_network(sweep_run):
    """Old: "stack 1/2 epoch 0: 7640 7491 7656 9042 ..." (forty numbers, no names)."""
    out, rows = sweep_run
    lines = [line for line in out.splitlines() if line.startswith("stack ")]
    assert len(lines) == 2 * 2  # two stacks of 20, two epochs each
    assert out.count("key: best and worst test accuracy of 10000, each with its "
                     "(eta, lmbda, seed)") == 1
    pattern = re.compile(r"^stack (\d)/2, (\d) of 2 epochs done: best (\d+) \(([\d.]+), "
                         r"([\d.]+), (\d+)\), worst (\d+) \(([\d.]+), ([\d.]+), (\d+)\)$")
    for line in lines:
        assert len(line) <= 80, line
        match = pattern.match(line)
        assert match, line
        stack, done = int(match[1]), int(match[2])
        mine = [r for r in rows if r["epoch"] == done - 1]
        mine = mine[(stack - 1) * 20: stack * 20]  # the grid's order: the stack's networks
        for correct, eta, lmbda, seed, pick in ((match[3], match[4], match[5], match[6], max),
                                                (match[7], match[8], match[9], match[10], min)):
            extreme = pick(r["evaluation_correct"] for r in mine)
            assert int(correct) == extreme
            named = [r for r in mine if r["run"] == {"eta": float(eta), "lmbda": float(lmbda),
                                                     "seed": int(seed)}]
            assert named and named[0]["evaluation_correct"] == extreme


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0-1", "--seed", "3"], "--seed 3 contradicts --seeds 0-1"),
    (["--engine", "ray", "--executor", "local"], "--executor local contradicts --engine ray"),
    (["--stack-engine", "eager", "--engine", "cpu"], "--engine cpu contradicts --stack-engine eager"),
    (["--save", "net.json"], "a sweep saves every network it trains: give --save-dir DIR"),
])
def test_contradictory_or_foreign_options_are_one_error(args, message, capsys):
    """Old: --seeds 0-1 --seed 3 trained one network (seed 3) without a word; --save
    was argparse's "unrecognized arguments"."""
    with pytest.raises(SystemExit) as info:
        main(["sweep", "--device", "cpu", "--limit", "100", "--epochs", "1", *args])
    out, err = capsys.readouterr()
    assert info.value.code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_one_flag_given_twice_keeps_its_last_value(capsys):
    """Not a contradiction: scripts override an option by repeating it."""
    assert main(["train", "--device", "cpu", "--limit", "50", "--limit", "100", "--epochs",
                 "1", "--quiet"]) == 0
    assert "training on 100" in capsys.readouterr().out
