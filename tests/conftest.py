"""Shared fixtures: the backends and dtypes every numerical test runs on, and MNIST.

Numerical tests take ``backend_dtype`` (every backend in float32 and in float64, ids
such as ``cpu-float32``, ``strict-float64``, ``cuda-float32``) and compare with
:mod:`gpunet.check.reference` within ``tolerance(dtype)``; tests about one precision only
(finite differences need float64) take ``backend``. CUDA cases skip without a GPU,
giving the cause in a few words.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gpunet.backends import BACKEND_MODULES_ENV, BackendUnavailable, get_backend
from gpunet.backends.testing import StrictBackend  # registers the "strict" device here


def _register_strict_for_subprocesses() -> None:
    """Every process the tests start (``gpunet`` commands, the pretend-GPU pass's suite,
    the installed package's checks) imports the strict stand-in's module when it meets a
    device name it does not know, so ``GPUNET_DEVICE=strict`` resolves there as here."""
    module = "gpunet.backends.testing"
    named = [m.strip() for m in os.environ.get(BACKEND_MODULES_ENV, "").split(",") if m.strip()]
    if module not in named:
        os.environ[BACKEND_MODULES_ENV] = ",".join([*named, module])


_register_strict_for_subprocesses()


def _python_handles_ctrl_c() -> None:
    """The tests of Ctrl-C (``test_signals``, ``test_startup_interrupt``) need Python's
    own SIGINT handling; a suite started in the background by a non-interactive shell
    (``cmd &``, as some CI runners and nohup scripts do) inherits SIGINT ignored, and
    Python then installs no handler. Restore it (here and in the processes tests start)."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_python_handles_ctrl_c()


BACKENDS = ("cpu", "strict", "cuda")
DTYPES = ("float32", "float64")


@functools.lru_cache(maxsize=None)
def cuda_unavailable_reason() -> str:
    """Empty when CuPy sees a GPU, else the cause in a few words ("CuPy is not installed")."""
    try:
        get_backend("cuda")
    except BackendUnavailable as exc:
        return exc.reason.split(" (")[0]  # the cause, not the install hint
    return ""


def make_backend(name: str):
    """The backend called ``name`` in :data:`BACKENDS`; skips the test for CUDA without a GPU."""
    if name == "cpu":
        return get_backend("cpu")
    if name == "strict":
        return StrictBackend()
    if name == "cuda":
        reason = cuda_unavailable_reason()
        if reason:
            pytest.skip(f"no GPU: {reason}")
        return get_backend("cuda")
    raise AssertionError(name)


def backend_dtype_combinations() -> Iterator[tuple[str, str]]:
    """Every ``(backend name, dtype)`` pair a numerical test runs on.

    Modelled on scikit-learn's ``yield_namespace_device_dtype_combinations``: names
    only, so collecting the tests never touches a device; :func:`make_backend` builds
    the backend (and skips) when a test runs.
    """
    for name in BACKENDS:
        for dtype in DTYPES:
            yield name, dtype


@pytest.fixture(params=[pytest.param(pair, id="-".join(pair))
                        for pair in backend_dtype_combinations()])
def backend_dtype(request):
    """``(backend, dtype)``: each backend in float32 and float64 (CUDA skips without a GPU)."""
    name, dtype = request.param
    return make_backend(name), dtype


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each available backend in turn, for tests about one dtype (CUDA skips without a GPU)."""
    return make_backend(request.param)


#: How far a result in each dtype may be from the float64 reference, relative to the
#: largest magnitude compared (``atol``) and entry by entry (``rtol``). float32 keeps
#: about 7 significant digits; sums over 784 inputs and a mini-batch lose about two.
TOLERANCES = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-12)}


#: float32's unit roundoff, 2**-24: the largest relative error of one rounding.
UNIT_ROUNDOFF_32 = 2.0 ** -24


def float32_steps_bound(steps: int) -> float:
    """How far float32 parameters may be from float64 ones after ``steps`` SGD steps from
    the same seed, relative to the parameters' largest magnitude: ``(2 + 2 steps) u``.

    Why it holds whatever the summation order: storing the initial parameters in float32
    costs at most ``u |w|`` (u = 2⁻²⁴). A step ``w ← (1 - ηλ/n) w - (η/m) Σ ∇w`` (eq. 93)
    rounds its subtraction (at most ``u |w|``) and adds the gradient's error. That error
    is a fraction ``≤ γ`` (784 terms: ``784 u`` at worst, in any order, with or without
    FMA) of the step, and the step is small against the parameters (``η/m |Σ ∇w|`` is
    about 1% of ``max |w|`` for these networks), so it adds well under ``u |w|``. Over a
    few hundred steps, with η small against the cost's curvature, the errors add rather
    than grow. Flush-to-zero changes numbers below 1e-38 only. Measured (NumPy, the
    strict stand-in reversed and in NumPy's order, 1 and 2 BLAS threads, both costs):
    1 step ≤ 1.6 u, 10 steps ≤ 7.2 u, 100 steps ≤ 34 u, 202 steps ≤ 21 u: a margin of
    2.5-20. 1,000 steps of the quadratic cost at η = 3 reach 300 u, the start of chaos,
    which is why no test goes that far. Two float32 runs of one seed (another engine,
    device or summation order) are each within the bound of float64, so within twice it
    of each other.
    """
    return (2 + 2 * steps) * UNIT_ROUNDOFF_32


def tolerance(dtype: str) -> dict:
    return dict(TOLERANCES[dtype])


def assert_close(actual, expected, dtype: str, err_msg: str = "") -> None:
    """``actual`` (host array in ``dtype``) equals the float64 ``expected`` within
    :data:`TOLERANCES`; ``atol`` scales with the largest entry of ``expected``."""
    expected = np.asarray(expected, dtype=np.float64)
    tol = TOLERANCES[dtype]
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected,
                               rtol=tol["rtol"], atol=tol["atol"] * max(scale, 1e-30),
                               err_msg=err_msg)


@pytest.fixture(scope="session")
def mnist():
    import gpunet

    return gpunet.load_mnist()


def host(backend, a) -> np.ndarray:
    """A backend array as a NumPy array (explicit transfer)."""
    return backend.to_host(a)


ROOT = Path(__file__).resolve().parents[1]


def run_gpunet(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m gpunet ARGS`` in a subprocess, as a user would (gpunet installed)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "gpunet", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def interrupt_after(monkeypatch, after: int) -> None:
    """Ctrl-C as the epoch after ``after`` completed ones starts: the training loop's
    engine wrapped so that its ``after + 1``-th ``train_epoch`` raises
    ``KeyboardInterrupt`` (``monkeypatch.undo()`` ends it)."""
    import gpunet.training.loop

    real = gpunet.training.loop.select_engine

    class Interrupting:
        def __init__(self, engine):
            self.engine, self.name, self.epochs = engine, engine.name, 0

        def train_epoch(self, permutation):
            if self.epochs == after:
                raise KeyboardInterrupt
            self.engine.train_epoch(permutation)
            self.epochs += 1

        def __getattr__(self, name):
            return getattr(self.engine, name)

    monkeypatch.setattr(gpunet.training.loop, "select_engine",
                        lambda *a: Interrupting(real(*a)))


def numpy_blas_threads() -> set:
    """The thread counts of NumPy's BLAS (threadpoolctl): the libraries loaded when the
    CPU engines' controller was made, NumPy's among them as NumPy is imported first. A
    BLAS another package loads later (SciPy's own OpenBLAS, with scikit-learn) serves
    no product of gpunet's, is not limited, and is not counted here."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from gpunet.engines import cpu

    with cpu.one_blas_thread():  # the controller exists from here
        pass
    numpys = {lib.filepath for lib in cpu._threadpools.lib_controllers}
    assert numpys, "threadpoolctl found no BLAS NumPy loaded"
    return {i["num_threads"] for i in threadpoolctl.threadpool_info()
            if i["user_api"] == "blas" and i["filepath"] in numpys}
