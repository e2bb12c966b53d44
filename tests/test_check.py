"""``gpunet check``: passes on a correct device, fails on a wrong kernel, exits 2 without one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpunet.check import selftest as checks
from gpunet.backends import NumpyBackend
from gpunet.cli import main

from conftest import cuda_unavailable_reason


def test_check_passes_on_the_cpu_and_writes_json(tmp_path, capsys):
    path = tmp_path / "check.json"
    assert main(["check", "--device", "cpu", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "checks passed, none failed" in out and "FAIL" not in out  # fused: skipped
    for name in ("forward [float64]", "backprop-quadratic [float32]", "finite-differences",
                 "trajectory-eager [float64]", "kernel-sgd_update [float32]"):
        assert f"PASS  {name}" in out, name
    report = json.loads(path.read_text())
    assert report["passed"] is True and report["device"].startswith("cpu (NumPy")
    assert {"date", "gpunet", "numpy", "python"} <= set(report)
    results = {c["name"]: c for c in report["checks"]}
    assert set(results["forward [float64]"]) >= {"name", "measured", "threshold", "passed"}
    # float64 agrees with the reference to rounding, far inside the 1e-9 threshold
    assert results["forward [float64]"]["measured"] < 1e-12
    assert results["trajectory-eager [float64]"]["threshold"] == 1e-9


def test_a_wrong_kernel_makes_check_fail(monkeypatch, capsys):
    """σ'(z) off by 0.1%: a planted bug the kernel check and backprop both catch."""
    def wrong(self, delta, a, scratch):
        delta *= a * (1 - a) * 1.001
        return delta

    monkeypatch.setattr(NumpyBackend, "sigmoid_prime_mul", wrong)
    assert main(["check", "--device", "cpu", "--dtype", "float64"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  kernel-sigmoid_prime_mul" in out
    assert "FAIL  backprop-quadratic" in out and "FAIL  trajectory-eager" in out
    assert "PASS  kernel-sigmoid " in out  # only what is wrong fails


def test_biases_decayed_by_l2_make_the_trajectory_fail(monkeypatch, capsys):
    """L2 decaying the biases too (chapter 3 decays weights only): caught in float32."""
    original = NumpyBackend.sgd_update

    def decays_everything(self, param, grad, scale, decay=1.0, decayed=None):
        return original(self, param, grad, scale, decay, None)

    monkeypatch.setattr(NumpyBackend, "sgd_update", decays_everything)
    assert main(["check", "--device", "cpu", "--dtype", "float32"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  kernel-sgd_update" in out and "FAIL  trajectory-eager" in out


def test_a_registered_check_runs_and_a_crash_is_a_failure_not_a_traceback(monkeypatch, capsys):
    def crashes(ctx):
        raise RuntimeError("kernel launch failed\nsecond line")
        yield  # a generator, like every check

    def measures(ctx):
        yield checks._result("extra-check", 0.5 if ctx.dtype == "float32" else 0.0, 0.1)

    monkeypatch.setattr(checks, "CHECKS", list(checks.CHECKS))
    checks.register_check("crashes")(crashes)
    checks.register_check("extra")(measures)
    assert main(["check", "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  crashes [float32]" in out and "RuntimeError: kernel launch failed" in out
    assert "second line" not in out
    assert "FAIL  extra-check [float32]" in out and "PASS  extra-check [float64]" in out


def test_check_runs_every_engine(monkeypatch):
    """New engines are checked by being listed in ENGINE_NAMES; one that cannot train
    here is reported as skipped, with the reason."""
    from gpunet.engines import ENGINE_NAMES

    assert checks._engines() == [name for name in ENGINE_NAMES if name != "auto"]
    monkeypatch.setattr(checks, "_engines", lambda: ["eager", "imaginary"])
    report = checks.run_checks(NumpyBackend(), ("float64",))
    results = {r.name: r for r in report.results}
    assert results["trajectory-eager"].passed is True
    skipped = results["trajectory-imaginary"]
    assert skipped.passed is None and "unknown engine 'imaginary'" in skipped.detail
    assert report.passed


@pytest.mark.skipif(not cuda_unavailable_reason(), reason="a GPU is present here")
def test_check_on_cuda_without_a_gpu_is_one_line_exit_2(capsys):
    assert main(["check", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gpunet: error: CUDA is not usable here: ")
    assert cuda_unavailable_reason() in err[0]


def test_check_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["check", "--dtype", "float16"])
    assert info.value.code == 2
    assert main(["check", "--device", "tpu"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err


def test_every_check_passes_on_the_strict_stand_in_gpu_checks_included():
    """The strict stand-in behaves like CuPy where it matters (no implicit host copies,
    no host/device mixing, a current device): the checks, the GPU-only ones too, run
    there as they will on a GPU."""
    from gpunet.backends.testing import StrictBackend

    from test_backends import _probe_with

    backend = StrictBackend(index=1)  # and not the current device: scopes are needed
    with backend.scope():
        backend.probe_errors = _probe_with(backend)
    report = checks.run_checks(backend, ("float32",), gpu_checks=True)
    names = {r.name: r for r in report.results}
    assert names["probe-cublas_matmul"].passed and names["probe-gpunet_sgd_update"].passed
    assert names["float32-accuracy-parity"].passed, names["float32-accuracy-parity"]
    assert "test accuracy" in names["float32-accuracy-parity"].detail
    failed = [r for r in report.results if r.passed is False]
    assert not failed, [(r.name, r.detail) for r in failed]
