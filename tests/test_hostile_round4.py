"""The fourth round of hostile inputs (cases not seen in issue 26): what a run writes
never replaces a file the user did not name as that output, nor one of the run's own
inputs; data files with bad contents are refused naming the file; arrays and images
that are not one digit are refused, not misread.

Every run here trains a network of 784-6-10 on 80 random examples for one epoch on the
CPU, so each costs a fraction of a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gpunet.cli import main
from test_readers_recorded import rewritten  # an edited checkpoint, as there

RUN = ["train", "--device", "cpu", "--quiet", "--sizes", "784,6,10", "--epochs", "1",
       "--seed", "1", "--validation", "20", "--evaluate", "validation"]


def write_npz(path: Path, n: int = 80, **changes: Any) -> Path:
    """Keras-style arrays of ``n`` random 28x28 uint8 images and labels 0..9."""
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
              "y_train": np.arange(n) % 10}
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


def one_error(capsys) -> str:
    """The one ``gpunet: error:`` line the command printed (and nothing else on stderr)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gpunet: error: "), err
    return err[0][len("gpunet: error: "):]


@pytest.fixture(scope="module")
def run_ckpt(tmp_path_factory) -> Path:
    """A finished one-epoch run's checkpoint, which recorded ``--save``."""
    folder = tmp_path_factory.mktemp("run")
    data = write_npz(folder / "data.npz")
    path = folder / "run.ckpt"
    assert main([*RUN, "--data", str(data), "--checkpoint", str(path), "--save",
                 str(folder / "net.json")]) == 0
    return path


# ------------------------------------------------- outputs a checkpoint records
def with_outputs(source: Path, folder: Path, **outputs: str) -> Path:
    """``source``'s checkpoint copied into ``folder``, recording ``outputs`` (every
    other output: a file in ``folder`` not there yet)."""
    def change(meta: dict[str, Any]) -> None:
        recorded = meta["run"]["outputs"]
        recorded.update({k: None for k in recorded}, save=str(folder / "new.json"))
        recorded.update(outputs)
    return rewritten(source, folder / "c.ckpt", change)


@pytest.mark.parametrize("output", ["save", "plot"])
def test_a_checkpoint_never_replaces_a_file_it_did_not_write(tmp_path, run_ckpt, capsys,
                                                             output):
    """A checkpoint from elsewhere (or edited) whose ``run.outputs`` names a file of the
    user's: ``--resume`` without that option would have replaced it with a network
    (or a plot). Seen failing before the fix: the file became a network file."""
    victim = tmp_path / "notes.txt"
    victim.write_text("precious\n")
    ckpt = with_outputs(run_ckpt, tmp_path, **{output: str(victim)})
    assert main(["train", "--resume", str(ckpt), "--epochs", "2", "--device", "cpu",
                 "--quiet"]) == 2
    message = one_error(capsys)
    assert str(victim) in message and f"--{output}" in message
    assert victim.read_text() == "precious\n"


def test_a_recorded_output_must_be_an_absolute_path(tmp_path, run_ckpt, capsys,
                                                    monkeypatch):
    """Runs record absolute paths; a relative one (``../../etc/passwd``) would be
    resolved against wherever the user resumes. Seen failing: it was written."""
    (tmp_path / "here").mkdir()
    victim = tmp_path / "notes.txt"
    victim.write_text("precious\n")
    ckpt = with_outputs(run_ckpt, tmp_path, save="../notes.txt")
    monkeypatch.chdir(tmp_path / "here")
    assert main(["train", "--resume", str(ckpt), "--epochs", "2", "--device", "cpu",
                 "--quiet"]) == 2
    assert "run.outputs.save" in one_error(capsys)
    assert victim.read_text() == "precious\n"


def test_a_resumed_run_goes_on_writing_its_own_network_file(tmp_path, run_ckpt, capsys):
    """The check lets through what the run wrote: its network file is replaced."""
    net = tmp_path / "net.json"
    net.write_bytes((run_ckpt.parent / "net.json").read_bytes())
    ckpt = with_outputs(run_ckpt, tmp_path, save=str(net))
    before = net.read_bytes()
    assert main(["train", "--resume", str(ckpt), "--epochs", "2", "--device", "cpu",
                 "--quiet"]) == 0
    assert net.read_bytes() != before and json.loads(net.read_text())["sizes"] == [784, 6, 10]


# ------------------------------------------------- outputs that are the run's data
@pytest.mark.parametrize("output", ["--save", "--metrics", "--plot", "--save-best",
                                    "--checkpoint"])
def test_no_output_replaces_the_runs_data_file(tmp_path, capsys, monkeypatch, output):
    """The data file named again as an output, under another spelling: the run refuses
    before any work. Seen failing: each output replaced the data set."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    before = write_npz(tmp_path / "data.npz").read_bytes()
    extra = ["--overwrite"] if output == "--checkpoint" else []
    assert main([*RUN, "--data", "data.npz", output, "sub/../data.npz", *extra]) == 2
    message = one_error(capsys)
    assert message.startswith(f"--data and {output} name the same file")
    assert (tmp_path / "data.npz").read_bytes() == before


def test_no_output_replaces_the_test_data_or_a_data_folders_file(tmp_path, capsys):
    """``--test-data`` through a symbolic link, and a file of a ``--data`` folder."""
    data = write_npz(tmp_path / "data.npz")
    test = write_npz(tmp_path / "test.npz", n=20)
    (tmp_path / "link.json").symlink_to(test)
    before = test.read_bytes()
    assert main([*RUN[:-4], "--data", str(data), "--test-data", str(test), "--save",
                 str(tmp_path / "link.json")]) == 2
    assert one_error(capsys).startswith("--test-data and --save name the same file")
    assert test.read_bytes() == before

    folder = tmp_path / "csv"
    folder.mkdir()
    rows = "\n".join(",".join([str(i % 10)] + ["0"] * 784) for i in range(30)) + "\n"
    for name in ("train.csv", "test.csv"):
        (folder / name).write_text(rows)
    assert main([*RUN[:-4], "--data", str(folder), "--metrics",
                 str(folder / "test.csv")]) == 2
    assert one_error(capsys).startswith(f"--data ({folder / 'test.csv'}) and --metrics")
    assert (folder / "test.csv").read_text() == rows


def test_a_sweep_may_keep_its_data_in_its_save_dir(tmp_path):
    """Inputs are not outputs: data inside ``--save-dir`` is read, and the networks are
    written beside it (failed when the data files were counted as outputs there)."""
    data = write_npz(tmp_path / "data.npz")
    assert main(["sweep", "--device", "cpu", "--quiet", "--sizes", "784,6,10", "--epochs",
                 "1", "--validation", "20", "--evaluate", "validation", "--eta", "1",
                 "--seeds", "0", "--data", str(data), "--save-dir", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.json"))) == 1


# ------------------------------------------------- data files with bad contents
def csv_rows(n: int = 30, value: str = "0") -> list[str]:
    return [",".join([str(i % 10)] + [value] * 784) for i in range(n)]


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "0.5,nan"])
def test_non_finite_csv_inputs_are_named_by_file_and_line(tmp_path, bad):
    """"nan" and "inf" parse as numbers: the integer range check let NaN through, and
    the library's refusal named no file ("training_data inputs contain NaN"). Seen
    failing: no CsvError from the reader."""
    from gpunet.io.mnist import load_mnist

    rows = csv_rows(value="0.25" if bad.startswith("0.5") else "7")
    rows[4] = rows[4].rsplit(",", 2)[0] + "," + (bad if "," in bad else f"0,{bad}")
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"d\.csv: example 5 has NaN or infinite inputs"):
        load_mnist(tmp_path / "d.csv")


@pytest.mark.parametrize("array, value, field", [
    ("x_train", np.float32("nan"), r"x_train\[3\] holds NaN"),
    ("x_train", np.float32("inf"), r"x_train\[3\] holds NaN"),
    ("y_train", -1, r"y_train\[3\] is -1, not a label"),
    ("y_train", 2.5, r"y_train\[3\] is 2.5, not a label"),
    ("y_train", np.nan, r"y_train\[3\] is nan, not a label")])
def test_bad_npz_contents_are_named_by_file_and_array(tmp_path, array, value, field):
    """Seen failing: read without complaint, then refused by the library as
    ``training_data ...`` with no file named."""
    from gpunet.io.mnist import load_mnist

    x = np.random.default_rng(0).random((30, 784), dtype=np.float32)
    y = (np.arange(30) % 10).astype(np.float64 if isinstance(value, float) else np.int64)
    (x if array == "x_train" else y)[3] = value
    write_npz(tmp_path / "d.npz", x_train=x, y_train=y)
    with pytest.raises(ValueError, match=r"d\.npz: " + field):
        load_mnist(tmp_path / "d.npz")


def test_a_csv_saved_with_a_byte_order_mark_keeps_its_first_example(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM, which made the first example look like a
    header line: silently dropped. Seen failing: 29 examples of 30."""
    from gpunet.io.mnist import load_mnist

    text = "\n".join(csv_rows()) + "\n"
    (tmp_path / "d.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    labels = load_mnist(tmp_path / "d.csv").training[1]
    assert len(labels) == 30 and labels[0] == 0


# ------------------------------------------------- pictures that are not one digit
def seven(side: int = 40) -> np.ndarray:
    """A dark 7 on white paper, 8-bit grey."""
    g = np.full((side, side), 255, np.uint8)
    g[6:10, 8:32] = 0
    for i in range(26):
        g[10 + i, 28 - i // 2:32 - i // 2] = 0
    return g


@pytest.mark.parametrize("shape", [(2, 784), (784, 3), (10, 784)])
def test_several_mnist_rows_are_not_read_as_one_picture(shape):
    """A batch of flattened images (``x_test[:2]``) was read as a 2 × 784 picture and
    given a confident digit. Seen failing: no error."""
    from gpunet.io.images import read_digit

    rows = np.zeros(shape)
    with pytest.raises(ValueError, match=r"array: shape .* rows of 784 values"):
        read_digit(rows)


@pytest.mark.parametrize("form", ["gif", "tiff", "png"])
def test_a_picture_of_several_frames_is_refused(tmp_path, form):
    """An animated GIF or PNG, a TIFF of two pages: only the first was read, silently
    (here a 7 after a blank page would be "no ink"; a 1 before it, a confident 1).
    Seen failing: the first frame was read."""
    pytest.importorskip("PIL")
    from PIL import Image

    from gpunet.io.images import read_digit

    path = tmp_path / f"digit.{form}"
    digit = Image.fromarray(seven())
    digit.save(path, save_all=True, append_images=[Image.fromarray(255 - seven())])
    with pytest.raises(ValueError, match="holds several pictures"):
        read_digit(path)
    digit.save(tmp_path / f"one.{form}")  # one frame: read as before
    assert read_digit(tmp_path / f"one.{form}").max() == pytest.approx(1.0)


def test_a_phones_mpo_is_read_by_its_first_picture(tmp_path):
    """MPO (a JPEG with a second picture) stays read, as before."""
    pytest.importorskip("PIL")
    from PIL import Image

    from gpunet.io.images import read_digit

    path = tmp_path / "photo.jpg"
    Image.fromarray(seven()).convert("RGB").save(
        path, format="MPO", save_all=True, append_images=[Image.new("RGB", (40, 40))])
    assert read_digit(path).max() == pytest.approx(1.0)


@pytest.mark.parametrize("command", [["evaluate", "NET"], ["find-eta"]])
def test_evaluate_and_find_eta_never_replace_a_data_folders_file(tmp_path, capsys,
                                                                 command):
    """``--plot`` / ``--json`` naming a file of the ``--data`` folder. Seen failing:
    evaluate replaced the test file with its plot (find-eta checked only the folder's
    own path)."""
    folder = tmp_path / "csv"
    folder.mkdir()
    rows = "\n".join(csv_rows()) + "\n"
    for name in ("train.csv", "test.csv"):
        (folder / name).write_text(rows)
    (tmp_path / "net.json").write_text("{}")
    args = [str(tmp_path / "net.json") if a == "NET" else a for a in command]
    option = "--plot" if command[0] == "evaluate" else "--json"
    test = folder / "test.csv"
    assert main([*args, "--device", "cpu", "--data", str(folder), option, str(test)]) == 2
    assert one_error(capsys).startswith(f"--data ({test}) and {option} name the same")
    assert test.read_text() == rows


# ------------------------------------------------- files gpunet keeps for itself
def test_a_link_planted_as_the_expanded_cache_is_never_written_through(tmp_path):
    """The cache's name is predictable (the SHA-256 of the data); a link planted there,
    in a shared cache folder, made the rebuild replace the file it points to with the
    cache. Seen failing: the victim held the cache's bytes."""
    from gpunet.io import expand
    from gpunet.io.mnist import load_mnist

    data = load_mnist(write_npz(tmp_path / "d.npz", n=20))
    cache = tmp_path / "cache"
    expand.expand_data(data, cache_dir=cache)  # the cache file, built once
    (built,) = cache.iterdir()
    built.unlink()
    victim = tmp_path / "notes.txt"
    victim.write_text("precious\n")
    built.symlink_to(victim)
    with pytest.raises(ValueError, match="is a symbolic link, not a gpunet cache file"):
        expand.expand_data(data, cache_dir=cache)
    assert victim.read_text() == "precious\n"


# ------------------------------------------------- the library's inputs
def test_integer_pixels_given_to_the_library_are_refused_with_the_scaling():
    """Keras' MNIST is uint8 0..255; the CLI scales such pixels, the library took them
    as inputs of up to 255 and trained to chance (8.9% on MNIST after 3 epochs),
    silently. Seen failing: SGD and feedforward accepted them."""
    import gpunet

    pixels = np.random.default_rng(0).integers(0, 256, (20, 784), dtype=np.uint8)
    labels = np.arange(20) % 10
    net = gpunet.Network([784, 6, 10], device="cpu", seed=0)
    with pytest.raises(ValueError, match=r"training_data inputs are integers from 0 to 255; "
                                         r"pixels \(0\.\.255\) must be scaled"):
        net.SGD((pixels, labels), 1, 10, 3.0, verbose=False)
    for model in (net, gpunet.NetworkStack([784, 6, 10], seeds=[0, 1], device="cpu")):
        with pytest.raises(ValueError, match="feedforward inputs are integers"):
            model.feedforward(pixels)
        with pytest.raises(ValueError, match="feedforward inputs have dtype <U"):
            model.feedforward(pixels.astype(str))
    pairs = [(x.reshape(784, 1), int(y)) for x, y in zip(pixels, labels)]  # the book's
    with pytest.raises(ValueError, match="training_data inputs are integers from 0 to 255"):
        net.SGD(pairs, 1, 10, 3.0, verbose=False)
    net.SGD((pixels > 127, labels), 1, 10, 3.0, verbose=False)  # 0/1 inputs: as before
    net.SGD(((pixels > 127).astype(np.int64), labels), 1, 10, 3.0, verbose=False)
    assert net.feedforward(pixels / 255.0).shape == (20, 10)


# ------------------------------------------------- evaluate's data
@pytest.mark.parametrize("case, expected", [
    ("no test set", "has no test set, which evaluate scores"),
    ("labels to 12", "has test labels from 0 to 12, but"),
    ("100 inputs", "has 100 inputs per test image, but"),
    ("one-hot", None)])
def test_evaluate_checks_the_test_set_against_the_network(tmp_path, capsys, case,
                                                          expected):
    """Seen failing: an IndexError traceback (labels 10-12, one-hot targets), "need at
    least one array to concatenate" (no test set), a feedforward shape message naming
    no data (100 inputs)."""
    import gpunet

    net = tmp_path / "net.json"
    gpunet.Network([784, 6, 10], device="cpu", seed=0).save(str(net))
    folder = tmp_path / "data"
    folder.mkdir()
    width = 100 if case == "100 inputs" else 784
    for name, classes in (("train.csv", 10), ("test.csv", 13 if "12" in case else 10)):
        rows = [",".join([str(i % classes)] + ["3"] * width) for i in range(26)]
        (folder / name).write_text("\n".join(rows) + "\n")
    data = {"no test set": folder / "train.csv", "one-hot": tmp_path / "h.npz"}.get(case,
                                                                                   folder)
    if case == "one-hot":
        x = np.random.default_rng(0).random((20, 784))
        y = np.eye(10)[np.arange(20) % 10]
        np.savez(data, x_train=x, y_train=y, x_test=x, y_test=y)
    status = main(["evaluate", str(net), "--data", str(data), "--device", "cpu"])
    if expected is None:
        assert status == 0 and " / 20 (" in capsys.readouterr().out
    else:
        assert status == 2 and expected in one_error(capsys)


def test_resuming_a_metrics_file_says_what_it_is(tmp_path, capsys):
    """A new user's mix-up. Seen failing: "It looks like a saved network (JSON, from
    --save)", which it is not."""
    metrics = tmp_path / "m.jsonl"
    metrics.write_text('{"gpunet_metrics": 1, "settings": {}}\n{"epoch": 0}\n')
    assert main(["train", "--resume", str(metrics)]) == 2
    assert "It is a metrics file (--metrics)" in one_error(capsys)


# ------------------------------------------------- networks whose outputs overflow
def overflowing_network(path: Path, value: float) -> Path:
    import gpunet

    net = gpunet.Network([784, 6, 10], device="cpu", seed=0, dtype="float64")
    net.save(str(path))
    data = json.loads(path.read_text())
    data["weights"][0][0][:3] = [value, -value, value]
    path.write_text(json.dumps(data))
    return path


def test_weights_beyond_the_dtypes_range_are_refused_at_load(tmp_path):
    """1e308 is a finite float64 (the reader let it through) but infinite as float32:
    every output became NaN. Seen failing: loaded, with a RuntimeWarning only."""
    import gpunet

    path = overflowing_network(tmp_path / "net.json", 1e308)
    with pytest.raises(ValueError, match=r"net\.json: weights\[0\] holds 1e\+308, beyond "
                                         r"float32's range"):
        gpunet.Network.load(str(path), device="cpu")
    assert gpunet.Network.load(str(path), device="cpu", dtype="float64").sizes == [784, 6, 10]


def test_outputs_that_overflow_are_an_error_not_a_digit(tmp_path, capsys, monkeypatch):
    """Sums that overflow give NaN outputs: predict printed "0 (confidence nan)" with no
    low-confidence mark (and NaN, not JSON, under --json), evaluate scored every image as
    a 0. Seen failing: exit status 0 and those lines."""
    pytest.importorskip("PIL")
    from PIL import Image

    import gpunet

    net = tmp_path / "net.json"
    gpunet.Network([784, 6, 10], device="cpu", seed=0).save(str(net))
    image = tmp_path / "seven.png"
    Image.fromarray(seven()).save(image)

    def nan_outputs(self, a):
        return np.full(np.shape(a)[:-1] + (10,), np.nan, dtype=np.float32)

    monkeypatch.setattr(gpunet.Network, "feedforward", nan_outputs)
    assert main(["predict", str(net), str(image), "--device", "cpu", "--json"]) == 2
    captured = capsys.readouterr()
    answers = json.loads(captured.out, parse_constant=pytest.fail)  # no bare NaN: JSON
    assert answers[0]["error"].startswith(f"{image}: the outputs of {net} are NaN or inf")
    assert main(["evaluate", str(net), "--device", "cpu", "--data",
                 str(write_npz(tmp_path / "d.npz", x_test=np.zeros((5, 28, 28), np.uint8),
                               y_test=np.arange(5)))]) == 2
    assert one_error(capsys).startswith(f"the outputs of {net} are NaN or infinite")


# ------------------------------------------------- the book's results files
@pytest.mark.parametrize("which", ["results", "studies"])
def test_a_results_file_that_never_ends_is_refused_unread(tmp_path, which):
    """``--render-only`` and ``--studies`` read OUT/results/results.json and
    OUT/studies/studies.json whole: a link to /dev/zero read until memory ran out (then
    "out of memory: ... make the network or the data smaller"), a pipe hung. Seen
    failing (under ``ulimit -v``): MemoryError."""
    from gpunet.book import reproduce, studies

    path = tmp_path / which / f"{which}.json"
    path.parent.mkdir()
    path.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match=f"is a device or pipe, not a {which}.json"):
        if which == "results":
            reproduce.render(tmp_path, plots=False)
        else:
            studies.load_results(path)


# ------------------------------------------------- find-eta's range
@pytest.mark.parametrize("low, high, per_decade, expected", [
    (1e-320, 1000.0, 4, "spans more decades than a float holds"),
    (1e-300, 1e300, 1, "spans more decades than a float holds"),
    (1e-3, 1e3, 200_000, "more than 1,000,000 candidates")])
def test_a_range_too_wide_to_list_is_one_error(low, high, per_decade, expected):
    """Seen failing: OverflowError tracebacks (high / low, then 10 ** 600), and a
    200,000-a-decade grid listed (1.2 million steps) before anything was checked."""
    from gpunet.sweep.eta_finder import geometric_etas

    with pytest.raises(ValueError, match=expected):
        geometric_etas(low, high, per_decade)
    assert geometric_etas(0.01, 10, 3)[:4] == [0.01, 0.0215, 0.0464, 0.1]  # as before


def test_the_training_data_named_as_its_test_data_is_refused(tmp_path, capsys,
                                                             monkeypatch):
    """``--test-data`` the ``--data`` file again: the "test" scores were the training
    accuracy, silently (and since the inputs joined the output check, the refusal said
    "one would replace the other"). Seen failing: trained; then that message."""
    monkeypatch.chdir(tmp_path)
    write_npz(tmp_path / "d.npz")
    assert main([*RUN[:-4], "--data", "d.npz", "--test-data", "./d.npz"]) == 2
    assert one_error(capsys).startswith("--test-data ./d.npz is the training data")
