"""Learning curves: ``gpunet train --plot`` and ``gpunet plot METRICS... -o PNG``."""

from __future__ import annotations

import sys

import pytest

from gpunet.cli import main


def _train(tmp_path, name, *extra):
    metrics = tmp_path / f"{name}.jsonl"
    assert main(["train", "--device", "cpu", "--limit", "300", "--epochs", "2", "--quiet",
                 "--sizes", "784,10,10", "--seed", "1", "--metrics", str(metrics),
                 *extra]) == 0
    return metrics


def test_plot_overlays_runs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    a = _train(tmp_path, "eta3")
    b = _train(tmp_path, "eta1", "--eta", "1.0", "--monitor-training-cost",
               "--plot", str(tmp_path / "own.png"))
    assert (tmp_path / "own.png").read_bytes().startswith(b"\x89PNG")
    out = tmp_path / "curves.png"
    assert main(["plot", str(a), str(b), "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG") and "2 runs" in capsys.readouterr().out

    import matplotlib.pyplot as plt

    from gpunet.reports import plotting

    figures = []
    monkey = plotting.save_figure
    plotting.save_figure = lambda fig, path, *option: figures.append(fig)
    try:
        from gpunet.training.history import read_metrics

        runs = [(p.stem, read_metrics(p).history, "test") for p in (a, b)]
        plotting.plot_learning_curves(runs, out)
    finally:
        plotting.save_figure = monkey
    accuracy, cost = figures[0].axes
    assert [t.get_text() for t in accuracy.get_legend().get_texts()] == [
        "eta3: test", "eta1: test"]
    assert [len(line.get_xdata()) for line in accuracy.lines] == [2, 2]
    assert [t.get_text() for t in cost.get_legend().get_texts()] == ["eta1: training"]
    plt.close(figures[0])


def test_plot_errors(tmp_path, capsys):
    not_metrics = tmp_path / "notes.jsonl"
    not_metrics.write_text("hello\n")
    assert main(["plot", str(not_metrics), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert str(not_metrics) in err
    assert main(["plot", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "x.png")]) == 2
    assert "not found" in capsys.readouterr().err


def test_without_matplotlib_the_message_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["plot", "m.jsonl", "-o", str(tmp_path / "x.png")]) == 2
    assert 'the plot extra: pip install "matplotlib' in capsys.readouterr().err
    # train --plot says so before training, not after
    assert main(["train", "--device", "cpu", "--limit", "100", "--epochs", "1",
                 "--plot", str(tmp_path / "x.png")]) == 2
    captured = capsys.readouterr()
    assert 'the plot extra: pip install "matplotlib' in captured.err and "Epoch" not in captured.out


def test_plot_reads_sweep_metrics_one_curve_per_run(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from gpunet.training.history import read_sweep_metrics

    metrics = tmp_path / "sweep.jsonl"
    assert main(["sweep", "--device", "cpu", "--limit", "300", "--epochs", "2",
                 "--sizes", "784,10,10", "--eta", "1.0,3.0", "--seeds", "0",
                 "--metrics", str(metrics)]) == 0
    runs = read_sweep_metrics(metrics)
    assert [label for label, _ in runs] == ["eta=1.0 lmbda=0.0 seed=0",
                                            "eta=3.0 lmbda=0.0 seed=0"]
    for _, history in runs:
        assert history.epochs == [0, 1] and len(history.evaluation_accuracy) == 2
        assert all(0 < c <= 10000 for c in history.evaluation_accuracy)
    out = tmp_path / "sweep.png"
    capsys.readouterr()
    assert main(["plot", str(metrics), "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG") and "2 runs" in capsys.readouterr().out


@pytest.mark.parametrize("command", [
    ["train", "--device", "cpu", "--limit", "100", "--epochs", "1", "--plot"],
    ["sweep", "--device", "cpu", "--limit", "100", "--epochs", "1", "--plot"],
    ["find-eta", "--device", "cpu", "--limit", "100", "--plot"],
    ["evaluate", "net.json", "--plot"],
    ["plot", "m.jsonl", "--output"],
], ids=lambda c: c[0])
@pytest.mark.parametrize("name", ["curves.pdf", "curves.SVG", "curves.jpg"])
def test_a_plot_named_for_another_format_is_refused_before_any_work(tmp_path, capsys,
                                                                     command, name):
    """Every plot is PNG: a name promising PDF, SVG or JPEG got PNG bytes (after the
    whole run); now one error first, naming the option and the fix."""
    path = tmp_path / name
    assert main([*command, str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    option = command[-1]
    assert len(err) == 1 and err[0].startswith(f"gpunet: error: {option} {path}: ")
    assert "name the file .png" in err[0] and not path.exists()


def test_a_plot_name_without_a_format_is_the_users_choice(tmp_path):
    pytest.importorskip("matplotlib")
    metrics = _train(tmp_path, "run")
    out = tmp_path / "curves.v2"
    assert main(["plot", str(metrics), "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
