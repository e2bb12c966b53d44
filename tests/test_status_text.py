"""Status text that tells the truth (issue 30, points 6 and 7).

Install hints work however gpunet was installed (it is not on the package index, so
``pip install "gpunet[plot]"`` fails, and ``pip install -e ".[plot]"`` works only in a
checkout); a message the library raises names options as Python spells them
(``device="cpu"``) and as the command spells them (``--device cpu``) under the
command; ``gpunet check`` counts a skip as a skip and says why in the user's words;
a smoke run of ``reproduce`` draws no conclusion; ``bench`` gives a skip's hint once.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from conftest import ROOT, cuda_unavailable_reason
from gpunet.backends import BackendUnavailable, get_backend
from gpunet.backends.hints import EXTRAS, command_wording, install_hint
from gpunet.cli import main

NO_GPU = pytest.mark.skipif(not cuda_unavailable_reason(), reason="a GPU is present here")


# ------------------------------------------------------------------ install hints
def test_the_hints_extras_are_pyprojects():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert {name: tuple(packages) for name, packages in extras.items()
            if name not in ("test", "compile")} == EXTRAS  # the developers' own


def test_no_message_spells_an_install_that_fails():
    """``gpunet[plot]`` is not on the index; ``-e ".[plot]"`` works only in a checkout
    and makes an install editable. Every hint goes through install_hint instead."""
    bad = re.compile(r"""gpunet\[|-e\s+\\?['"]?\.\[|\.\[(plot|images|ray|bench|jax|baselines|"""
                     r"""cuda12|cuda13|notebook|test)\]""")
    found = []
    for path in sorted((ROOT / "gpunet").rglob("*.py")) + sorted((ROOT / "backends").rglob("*.py")):
        if path.name == "hints.py" or "testing" in path.parts:
            continue  # it quotes them as what not to say; the test machinery's are a
            # developer's, in a checkout
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if bad.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_install_hint_names_the_extra_and_installs_its_packages_by_name():
    assert install_hint("plot") == 'the plot extra: pip install "matplotlib>=3.7"'
    assert install_hint("bench") == ('the bench extra: pip install "torch>=2.1" '
                                     '"scikit-learn>=1.3" "jax>=0.4.30"')


@pytest.mark.parametrize("module, call, extra", [
    ("matplotlib", "gpunet.reports.plotting:require_matplotlib", "plot"),
    ("PIL", "gpunet.io.images:_pillow", "images"),
    ("ray", "gpunet.sweep.ray:import_ray", "ray"),
])
def test_a_missing_extra_says_the_hint(monkeypatch, module, call, extra):
    import importlib

    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    name, function = call.split(":")
    with pytest.raises(ValueError) as raised:
        getattr(importlib.import_module(name), function)()
    assert install_hint(extra) in str(raised.value)
    assert "-e " not in str(raised.value) and "gpunet[" not in str(raised.value)


# ------------------------------------------------------------------ option spelling
@NO_GPU
def test_the_device_error_speaks_python_in_the_library_and_flags_in_the_command(capsys):
    import gpunet

    with pytest.raises(BackendUnavailable) as raised:
        gpunet.Network([4, 3, 2], device="cuda")
    assert str(raised.value).endswith('or use device="cpu".'), str(raised.value)
    assert "--device" not in str(raised.value)

    assert main(["check", "--device", "cuda"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.endswith("or use --device cpu.") and 'device="cpu"' not in line

    with pytest.raises(BackendUnavailable) as again:  # the command's wording ended with it
        get_backend("cuda")
    assert str(again.value).endswith('or use device="cpu".')


def test_a_network_file_given_as_checkpoint_names_the_right_spelling(tmp_path):
    from gpunet.training import checkpoint

    def message() -> str:
        with pytest.raises(Exception) as raised:
            checkpoint._check_magic(io.BytesIO(b'{"sizes": [2, 2]}'), tmp_path / "net.json")
        return str(raised.value)

    assert "SGD(checkpoint=...)" in message() and "--checkpoint" not in message()
    with command_wording():
        assert "--checkpoint" in message() and "SGD(" not in message()


# ------------------------------------------------------------------ gpunet check
def test_check_counts_a_skip_as_a_skip_and_says_why_in_words(capsys):
    """Before: "all 12 checks passed" after a SKIP line telling the user to "use engine
    'eager' or 'auto'", an engine they never chose."""
    assert main(["check", "--device", "cpu", "--dtype", "float64"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    skips = [line for line in lines if line.startswith("SKIP")]
    assert skips and all("not run here: the fused engine needs a CUDA device" in line
                         for line in skips)
    assert not any("use engine" in line for line in lines)
    last = lines[-1]
    passed = sum(line.startswith("PASS") for line in lines)
    assert last == (f"{passed} of {passed + len(skips)} checks passed, none failed; "
                    f"{len(skips)} skipped, not run on this device (trajectory-fused)")


def test_check_summary_without_skips_and_with_failures():
    from gpunet.check.selftest import CheckResult
    from gpunet.cli.check import summary

    ok, bad = CheckResult("a", 0.0, 1.0, True), CheckResult("b", 2.0, 1.0, False)
    skipped = CheckResult("c", float("nan"), float("nan"), None, "no GPU")
    assert summary([ok, ok]) == "all 2 checks passed"
    assert summary([ok, bad, skipped]) == ("FAILED: 1 of 3 checks (b); 1 skipped, not run "
                                           "on this device (c)")


# ------------------------------------------------------------------ reproduce --quick
def _results(quick: bool) -> dict:
    meta = {"quick": quick, "command": "gpunet reproduce", "date": "2026-12-06",
            "wall_seconds": 60, "device": "cpu", "cpu": "x", "python": "3.11",
            "numpy": "2", "gpunet": "0.1", "platform": "Linux", "dtype": "float32",
            "seeds": 1, "test_images": 1000}

    def experiment(title: str, best: float) -> dict:
        return {"config": {"title": title, "sizes": [784, 30, 10], "cost": "quadratic",
                           "eta": 3.0, "book": "95%", "expected": ">= 94%"},
                "summary": {"best_of_runs_pct": best, "mean_best_pct": best,
                            "std_best_pct": 0.0, "mean_final_pct": best,
                            "within_range": None, "median_epoch_seconds": 0.1},
                "runs": []}

    four = experiment("4 outputs", 80.0)  # a smoke run: 4 bits beat 10 outputs
    four["summary"]["ten_outputs_mean_best_pct"] = 70.0
    return {"meta": meta, "experiments": {"chapter1": experiment("chapter 1", 70.0),
                                          "binary4": four}}


def test_a_smoke_run_draws_no_conclusion():
    """Before: a 1,000-image, two-epoch run wrote "... which is not what the book found"."""
    from gpunet.book.report import render_report

    quick = render_report(_results(quick=True), {})
    assert "not what the book found" not in quick and "as the book says" not in quick
    assert "no conclusion is drawn" in quick
    full = render_report(_results(quick=False), {})
    assert "which is not what the book found" in full  # a full run still concludes


# ------------------------------------------------------------------ bench
@NO_GPU
def test_bench_gives_a_skips_hint_once():
    """Before: `bench --quick` repeated the CuPy hint on every row (16 times)."""
    from gpunet.bench.epochs import CONFIGS, benchmark

    lines: list[str] = []
    configs = [name for name, cfg in CONFIGS.items() if not cfg.networks]
    results = benchmark(configs, ["gpunet-cupy-f32", "gpunet-cupy-f64"], epochs=1, warmup=0,
                        limit=100, log=lines.append)
    skipped = [line for line in lines if "skipped:" in line]
    assert len(skipped) == 2 * len(configs) >= 4
    full = results["results"][0]["skipped"]  # the rows keep every reason in full
    assert full.startswith("CUDA is not usable here: ") and "; " in full
    assert sum(full in line for line in skipped) == 1 and full in skipped[0]
    assert all(line.endswith(f"{full.split(';')[0]} (as above)") for line in skipped[1:])


def test_a_csv_folder_without_its_test_file_names_the_callers_options(tmp_path, capsys):
    import gpunet

    (tmp_path / "train.csv").write_text("label,p1,p2\n5,0,255\n3,17,0\n")
    with pytest.raises(ValueError) as raised:
        gpunet.load_mnist(tmp_path)
    assert "holds train.csv but no test.csv" in str(raised.value)
    assert "--" not in str(raised.value)
    assert main(["train", "--data", str(tmp_path), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "holds train.csv but no test.csv" in err and "--test-data PATH" in err


def test_two_cupy_packages_are_named_with_the_fix(monkeypatch):
    """`pip install -e ".[cuda12,test]"` used to install cupy-cuda12x and cupy-cuda13x."""
    import importlib.util

    from gpunet.backends import cupy_backend

    if importlib.util.find_spec("cupy") is None:
        pytest.skip("CuPy is not installed here")
    monkeypatch.delitem(sys.modules, "cupy", raising=False)  # as in a fresh process
    monkeypatch.setattr(cupy_backend, "installed_cupys", lambda: ("cupy-cuda12x", "cupy-cuda13x"))
    with pytest.raises(BackendUnavailable) as raised:
        get_backend("cuda")
    message = str(raised.value)
    assert "2 CuPy packages are installed (cupy-cuda12x, cupy-cuda13x)" in message
    assert "`pip uninstall cupy-cuda12x cupy-cuda13x`, then install the cuda13 extra" in message
    monkeypatch.delenv("GPUNET_DEVICE", raising=False)  # auto itself, not the stand-in
    assert "auto chose cpu: 2 CuPy packages" in get_backend("auto").selection_note
    monkeypatch.setitem(sys.modules, "cupy", object())  # CuPy imported before gpunet
    with pytest.raises(BackendUnavailable, match="2 CuPy packages are installed"):
        get_backend("cuda")


def test_without_cupy_the_compile_tests_skip_naming_the_install(monkeypatch):
    from gpunet.backends.testing import nvrtc

    monkeypatch.setitem(sys.modules, "cupy", None)
    reason = nvrtc.compiler_available()
    assert reason.startswith("CuPy is not installed") and '.[test,compile]' in reason


def test_a_quick_study_judges_no_claim():
    """`reproduce --studies --quick` (500 images, 2 epochs) used to mark claims
    *confirmed* or *refuted*; its numbers are shown, never judged."""
    import dataclasses

    from gpunet.book.studies import quick_plan
    from gpunet.book.studies_analysis import analyse
    from test_studies import COUNTS, SIZES, _store

    def correct_count(run, epoch, split):  # cross-entropy far ahead: would be "confirmed"
        return 300 + 10 * epoch + run.seed % 3 + (120 if run.cost == "cross-entropy" else 0)

    plan = quick_plan(3)
    quick = analyse(plan, _store(plan, correct_count), SIZES, "float32", COUNTS)
    tested = [v for v in quick["verdicts"] if v.p is not None]
    assert tested and {v.outcome for v in tested} == {"not judged (smoke run)"}
    full = dataclasses.replace(plan, quick=False)
    judged = analyse(full, _store(full, correct_count), SIZES, "float32", COUNTS)
    assert "confirmed" in {v.outcome for v in judged["verdicts"]}  # the same numbers, judged
