"""What ``gpunet train`` and ``gpunet sweep`` record in a checkpoint, checked before a
resume (issue 26, gpunet/cli/recorded.py): every recorded option's type and range,
the fields that must agree with each other, and a checkpoint of the other kind refused
with the command that resumes it. Each problem is one error naming the file and the
field.

The commands call ``check_train_record`` / ``check_sweep_record`` right after
``load_checkpoint``. The runs train on a small copy of the book's ``mnist.pkl.gz`` (100
training images), so a resume costs milliseconds.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import gpunet
from gpunet.training.checkpoint import load_checkpoint
from gpunet.cli import main
from gpunet.cli.recorded import check_sweep_record, check_train_record, recorded_outputs

COMMON = ["--device", "cpu", "--quiet", "--sizes", "784,6,10", "--epochs", "2"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, mnist) -> Path:
    """The book's pickle of 100 training, 20 validation and 20 test images."""
    path = tmp_path_factory.mktemp("data") / "tiny.pkl.gz"
    parts = tuple((X[:n], y[:n]) for (X, y), n in zip(
        (mnist.training, mnist.validation, mnist.test), (100, 20, 20)))
    with gzip.open(path, "wb") as f:
        pickle.dump(parts, f, protocol=2)
    return path


@pytest.fixture(scope="module")
def train_ckpt(tmp_path_factory, tiny_data) -> Path:
    path = tmp_path_factory.mktemp("train") / "train run.ckpt"  # a space: quoted
    assert main(["train", *COMMON, "--data", str(tiny_data), "--seed", "3", "--eta",
                 "3.0", "--checkpoint", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def sweep_ckpt(tmp_path_factory, tiny_data) -> Path:
    """Six networks in two stacks of three: the file holds stack 2 (at its end), stack
    1's rows and parameters finished."""
    path = tmp_path_factory.mktemp("sweep") / "sweep.ckpt"
    assert main(["sweep", *COMMON, "--data", str(tiny_data), "--eta", "1,2,3", "--lmbda",
                 "0,0.5", "--seeds", "0", "--stack", "4", "--workers", "1",
                 "--checkpoint", str(path)]) == 0
    return path


def rewritten(source: Path, target: Path, change: Callable[[dict[str, Any]], Any]) -> Path:
    """``source``'s checkpoint with its meta changed by ``change(meta)``, as ``target``
    (every other member as it was)."""
    with np.load(source) as archive:
        members = {name: archive[name] for name in archive.files}
    meta = json.loads(members["meta"].tobytes())
    change(meta)
    members["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **members)
    target.write_bytes(buffer.getvalue())
    return target


def setter(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """``change(meta)`` setting dotted ``path`` to ``value`` (``DELETE``: removing it)."""
    def change(meta: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = meta
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is DELETE:
            del node[last]
        else:
            node[int(last) if isinstance(node, list) else last] = value

    return change


DELETE = object()


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gpunet: error: "), err
    return err[0][len("gpunet: error: "):]


# ---------------------------------------------------------- recorded options
TRAIN_EDITS = [  # (field, value of another type or out of range)
    ("run.options", [1, 2]),
    ("run.options.sizes", "784,6,10"), ("run.options.sizes", 784),
    ("run.options.sizes", [784, "6", 10]),
    ("run.options.batch_size", "10"), ("run.options.batch_size", 0),
    ("run.options.eta", "3.0"), ("run.options.eta", [3.0]), ("run.options.eta", -1),
    ("run.options.cost", 1), ("run.options.cost", "hinge"),
    ("run.options.init", None), ("run.options.dtype", "float16"),
    ("run.options.lmbda", {}), ("run.options.seed", 3.5), ("run.options.seed", "3"),
    ("run.options.engine", "turbo"),
    ("run.options.data", 5), ("run.options.data", ""), ("run.options.data", ["x"]),
    ("run.options.data", DELETE),
    ("run.options.limit", "100"), ("run.options.limit", 0),
    ("run.options.evaluate", True),
    ("run.options.monitor_training_cost", "false"),
    ("run.options.monitor_evaluation_cost", 0),
    ("run.outputs", "x.json"), ("run.outputs.save", 5), ("run.outputs.save", ""),
    ("run.outputs.metrics", "m\0.jsonl"), ("run.outputs.plot", []),
    ("run.outputs.save_dir", "nets"),
]


@pytest.mark.parametrize("field, value", TRAIN_EDITS)
def test_each_recorded_train_option_is_checked_and_named(tmp_path, train_ckpt, capsys,
                                                         field, value):
    """The old command used what it found: a number where the data's path goes, a
    string where the sizes or a count go, gave TypeError or AttributeError tracebacks
    (often from the run's later use of it), or a message naming neither file nor field."""
    path = rewritten(train_ckpt, tmp_path / "edited.ckpt", setter(field, value))
    with pytest.raises(ValueError) as info:
        check_train_record(load_checkpoint(path))
    assert str(info.value).startswith(f"{path}: {field}"), str(info.value)
    assert main(["train", "--resume", str(path), "--device", "cpu", "--quiet"]) == 2
    assert one_error_line(capsys).startswith(f"{path}: {field}")


SWEEP_EDITS = [  # (field, value, the field named: the edited one, or one it breaks)
    ("run.sweep", 3, "run.sweep"), ("run.sweep.options", None, "run.sweep.options"),
    ("run.sweep.options.eta", 0.5, "run.sweep.options.eta"),
    ("run.sweep.options.eta", "1,x", "run.sweep.options.eta"),
    ("run.sweep.options.eta", "1,1,2,3", "run.sweep.options "),  # the grid
    ("run.sweep.options.lmbda", ["0"], "run.sweep.options.lmbda"),
    ("run.sweep.options.seeds", 0, "run.sweep.options.seeds"),
    ("run.sweep.options.seeds", "3-1", "run.sweep.options.seeds"),
    ("run.sweep.options.stack", "4", "run.sweep.options.stack"),
    ("run.sweep.options.stack", 0, "run.sweep.options.stack"),
    ("run.sweep.options.epochs", 2.0, "run.sweep.options.epochs"),
    ("run.sweep.options.stack_engine", "ray", "run.sweep.options.stack_engine"),
    ("run.sweep.options.sizes", {"0": 784}, "run.sweep.options.sizes"),
    ("run.sweep.options.data", 1, "run.sweep.options.data"),
    ("run.sweep.stack", "1", "run.sweep.stack"), ("run.sweep.stack", -1, "run.sweep.stack"),
    ("run.sweep.stack", 2, "run.sweep.stack"),
    ("run.sweep.rows", {}, "run.sweep.rows"),
    ("run.sweep.rows.0", "row", "run.sweep.rows[0]"),
    ("run.sweep.rows.0.run", None, "run.sweep.rows[0].run"),
    ("run.sweep.rows.0.run.eta", "1.0", "run.sweep.rows[0].run.eta"),
    ("run.sweep.rows.0.run.seed", 7, "run.sweep.rows[0].run"),  # not a finished network
    ("run.sweep.rows.0.run.colour", "red", "run.sweep.rows[0].run.colour"),
    ("run.sweep.rows.0.epoch", 5, "run.sweep.rows[0].epoch"),
    ("run.sweep.rows.0.epoch", None, "run.sweep.rows[0].epoch"),
    ("run.sweep.rows.0.evaluation_correct", "12", "run.sweep.rows[0].evaluation_correct"),
    ("run.outputs.save_dir", 7, "run.outputs.save_dir"),
    ("run.outputs.save", "net.json", "run.outputs.save"),
]


@pytest.mark.parametrize("field, value, named", SWEEP_EDITS)
def test_each_recorded_sweep_field_is_checked_and_named(tmp_path, sweep_ckpt, capsys,
                                                        field, value, named):
    path = rewritten(sweep_ckpt, tmp_path / "edited.ckpt", setter(field, value))
    with pytest.raises(ValueError) as info:
        check_sweep_record(load_checkpoint(path))
    assert str(info.value).startswith(f"{path}: {named}"), str(info.value)
    assert main(["sweep", "--resume", str(path), "--device", "cpu", "--quiet"]) == 2
    assert one_error_line(capsys).startswith(f"{path}: {named}")


# -------------------------------------------------------- fields that agree
TRAIN_DISAGREEMENTS = [  # (recorded option, value, the checkpoint's own field)
    ("eta", 0.5, "training.eta"),
    ("lmbda", 1.0, "training.lmbda"),
    ("batch_size", 5, "training.mini_batch_size"),
    ("sizes", [784, 7, 10], "network.sizes"),
    ("cost", "cross-entropy", "network.cost"),
    ("init", "default", "network.init"),
    ("dtype", "float64", "network.dtype"),
    ("seed", 4, "network.seed"),
    ("engine", "eager", "training.engine"),
    ("monitor_training_cost", True, "training.monitor_training_cost"),
    ("limit", 50, "data.n_train"),
]


@pytest.mark.parametrize("option, value, other", TRAIN_DISAGREEMENTS)
def test_recorded_train_options_must_agree_with_the_training_settings(
        tmp_path, train_ckpt, capsys, option, value, other):
    """η 0.5 recorded against η 3.0 in the training settings: the old command printed
    and recorded 0.5 and trained with 3.0 (exit 0); so for every setting that is kept
    twice."""
    path = rewritten(train_ckpt, tmp_path / "edited.ckpt",
                     setter(f"run.options.{option}", value))
    with pytest.raises(ValueError, match=f"they must agree") as info:
        check_train_record(load_checkpoint(path))
    assert str(info.value).startswith(f"{path}: run.options.{option} is ")
    assert f" but {other} is " in str(info.value)
    assert main(["train", "--resume", str(path), "--device", "cpu", "--quiet"]) == 2
    assert one_error_line(capsys).startswith(f"{path}: run.options.{option}")
    assert "Epoch" not in capsys.readouterr().out


SWEEP_DISAGREEMENTS = [  # (field, value, the field named)
    # the grid: η 1, 2, 3 × λ 0, 0.5 in stacks of 3; stack 2 is η 2, 3, 3 and λ 0.5, 0, 0.5
    ("training.eta", [3.0, 2.0, 3.0], "training.eta"),
    ("training.lmbda", [0.0, 0.0, 0.5], "training.lmbda"),
    ("network.seeds", [1, 0, 0], "network.seeds"),
    ("run.sweep.options.eta", "1,2,4", "training.eta"),
    ("run.sweep.options.stack", 2, "network.seeds"),  # stacks of 2: stack 2 is η 2, 2
    ("run.sweep.options.epochs", 3, "run.sweep.options.epochs"),
    ("run.sweep.options.batch_size", 5, "run.sweep.options.batch_size"),
    ("run.sweep.options.stack_engine", "eager", "run.sweep.options.stack_engine"),
    ("run.sweep.options.cost", "cross-entropy", "run.sweep.options.cost"),
    ("run.sweep.options.limit", 60, "run.sweep.options.limit"),
    ("run.sweep.rows", [], "run.sweep.rows"),
]


@pytest.mark.parametrize("field, value, named", SWEEP_DISAGREEMENTS)
def test_a_sweeps_state_must_be_its_grids(tmp_path, sweep_ckpt, capsys,
                                          field, value, named):
    """The running stack is the grid's stack at its index (its seeds, η and λ), the
    finished rows every epoch of the stacks before it, the shared settings the
    training's."""
    path = rewritten(sweep_ckpt, tmp_path / "edited.ckpt", setter(field, value))
    with pytest.raises(ValueError) as info:
        check_sweep_record(load_checkpoint(path))
    assert str(info.value).startswith(f"{path}: {named} "), str(info.value)
    assert main(["sweep", "--resume", str(path), "--device", "cpu", "--quiet"]) == 2
    assert one_error_line(capsys).startswith(f"{path}: {named} ")


def test_the_finished_rows_and_parameters_must_agree(tmp_path, sweep_ckpt):
    saved = load_checkpoint(sweep_ckpt)
    rows = saved.run["sweep"]["rows"]
    assert saved.run["sweep"]["stack"] == 1 and len(rows) == 3 * 2  # 3 networks, 2 epochs
    cases = [(rows[:-1], "run.sweep.rows has 1 rows of .* not the 2 epochs of a finished "
                         "network;"),
             (rows + rows[:1], "run.sweep.rows[6] repeats epoch 0")]
    for edited, message in cases:
        path = rewritten(sweep_ckpt, tmp_path / "rows.ckpt", setter("run.sweep.rows", edited))
        with pytest.raises(ValueError, match=message.replace("[", r"\[")):
            check_sweep_record(load_checkpoint(path))
    with np.load(sweep_ckpt) as archive:
        members = {name: archive[name] for name in archive.files}
    members["finished"] = members["finished"][:2]
    path = tmp_path / "finished.ckpt"
    with path.open("wb") as f:
        np.savez(f, **members)
    with pytest.raises(ValueError, match="finished holds 2 networks' parameters, not the 3"):
        check_sweep_record(load_checkpoint(path))


def test_good_records_pass_and_give_their_options(train_ckpt, sweep_ckpt, tiny_data):
    options = check_train_record(load_checkpoint(train_ckpt))
    assert options["eta"] == 3.0 and options["seed"] == 3
    assert options["data"] == str(tiny_data.resolve())
    sweep = check_sweep_record(load_checkpoint(sweep_ckpt))
    assert sweep["eta"] == "1,2,3" and sweep["stack"] == 4
    outputs = recorded_outputs(load_checkpoint(train_ckpt), "train")
    assert set(outputs) == {"save", "metrics", "plot", "save_best"}


# -------------------------------------------------------- the wrong command
def test_a_checkpoint_of_the_other_command_names_the_command_that_resumes_it(
        tmp_path, train_ckpt, sweep_ckpt, capsys):
    """Both said "use gpunet.resume() in Python"; the path is shell-quoted."""
    import shlex

    with pytest.raises(ValueError) as info:
        check_train_record(load_checkpoint(sweep_ckpt))
    assert str(info.value) == (f"{sweep_ckpt} is a gpunet sweep checkpoint; continue it "
                               f"with: gpunet sweep --resume {shlex.quote(str(sweep_ckpt))}")
    with pytest.raises(ValueError) as info:
        check_sweep_record(load_checkpoint(train_ckpt))
    quoted = shlex.quote(str(train_ckpt))
    assert quoted.startswith("'") and str(info.value).endswith(
        f"continue it with: gpunet train --resume {quoted}")
    assert main(["train", "--resume", str(sweep_ckpt)]) == 2
    assert one_error_line(capsys).endswith(f"gpunet sweep --resume {sweep_ckpt}")
    assert main(["sweep", "--resume", str(train_ckpt)]) == 2
    assert one_error_line(capsys).endswith(f"gpunet train --resume {quoted}")


def test_a_library_checkpoint_says_to_resume_it_in_python(tmp_path, mnist):
    path = tmp_path / "lib.ckpt"
    X, y = mnist.training[0][:50], mnist.training[1][:50]
    gpunet.Network([784, 6, 10], seed=0, device="cpu").SGD(
        (X, y), 1, 10, 3.0, verbose=False, checkpoint=path)
    for check, command in ((check_train_record, "train"), (check_sweep_record, "sweep")):
        with pytest.raises(ValueError, match=rf"not written by gpunet {command} .*"
                                             r"gpunet\.resume\(\) in Python"):
            check(load_checkpoint(path))


def test_a_record_of_the_wrong_kind_of_checkpoint_is_named(tmp_path, train_ckpt,
                                                           sweep_ckpt):
    """A train record in a stack checkpoint (or a sweep's in one network's)."""
    saved = load_checkpoint(sweep_ckpt)
    path = rewritten(train_ckpt, tmp_path / "odd.ckpt",
                     setter("run", {"sweep": saved.run["sweep"]}))
    with pytest.raises(ValueError, match=r'odd.ckpt: kind is "network", but run.sweep'):
        check_sweep_record(load_checkpoint(path))


def test_a_record_without_an_option_added_since_holds_its_default():
    """An option added to the commands later is missing from older checkpoints'
    records: ``since`` reads it as the default the older run had, and checks it where
    it is there."""
    from gpunet.cli.options import since
    from gpunet.io.fields import MISSING, FieldError, number

    check = since(0.0, number(low=0))
    assert check(MISSING, "run.options.new") == 0.0
    assert check(2.5, "run.options.new") == 2.5
    with pytest.raises(FieldError, match="run.options.new"):
        check(-1.0, "run.options.new")
    with pytest.raises(FieldError, match="run.options.new"):
        check(None, "run.options.new")  # null is an edit, not an older file
