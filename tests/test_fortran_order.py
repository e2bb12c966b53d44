"""Fortran-ordered training data trains as C-ordered data does, through every engine.

NumPy arrays come Fortran-ordered from many places (pandas' ``to_numpy()``, a
transpose, ``np.asfortranarray``), and CuPy keeps that order when it copies them to
the GPU. The fused kernel reads bare pointers, rows by ``row * width``: before,
its CUDA launcher passed such an ``X`` through unchecked and trained on scrambled
examples without any error. Now the fused engine converts the data once at setup and
both launchers refuse any other layout. Each engine here trains on the same examples
in C and in Fortran order: the fused engine through the emulated launcher and through
the CUDA launcher with the CuPy stand-in of ``tests/test_fused_emulated.py`` (its
kernel runs in the emulator, reading memory as the GPU would), the others on NumPy and
on the strict stand-in.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import gpunet
from gpunet.backends.fused_sgd import CudaSgdEpoch
from gpunet.backends.testing.emulator import EmulatedSgdEpoch
from gpunet.backends.testing import StrictBackend
from gpunet.engines import fused as fused_module
from gpunet.model.costs import QuadraticCost
from gpunet.networks.stack import NetworkStack

from test_fused_emulated import _EmulatingCupy  # the CuPy stand-in

needs_compiler = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="no C++ compiler for the kernel emulator")

SIZES = [784, 12, 10]
N, M = 53, 10  # a partial last mini-batch of 3


def _data(mnist, order):
    """Inputs and desired-output vectors (they too may arrive Fortran-ordered)."""
    X = mnist.training[0][:N].astype(np.float64)
    Y = np.eye(10)[mnist.training[1][:N]]
    if order == "F":
        X, Y = np.asfortranarray(X), np.asfortranarray(Y)
        assert X.flags.f_contiguous and not X.flags.c_contiguous
    return X, Y


def _launchers():
    return {
        "emulated": lambda net: EmulatedSgdEpoch(net.dtype, "descending"),
        "cuda-stand-in": lambda net: CudaSgdEpoch(_EmulatingCupy, net.dtype),
    }


def _train(mnist, order, engine, device="cpu"):
    net = gpunet.Network(SIZES, cost="cross-entropy", dtype="float64", device=device, seed=5)
    history = net.SGD(_data(mnist, order), 2, M, 0.5, lmbda=1.0, verbose=False,
                      engine=engine)
    assert history.engine == engine
    return net.backend.to_host(net.parameters) if device != "cpu" else net.parameters.copy()


@pytest.mark.parametrize("engine, device", [("eager", "cpu"), ("cpu", "cpu"),
                                            ("eager", "strict")])
def test_fortran_ordered_data_trains_as_c_ordered(mnist, engine, device):
    backend = StrictBackend() if device == "strict" else "cpu"
    c_run = _train(mnist, "C", engine, backend)
    f_run = _train(mnist, "F", engine, backend)
    # the same arithmetic on the same numbers; BLAS may sum a differently laid-out
    # operand in another order: float64 rounding over 12 steps, far below 1e-12
    np.testing.assert_allclose(f_run, c_run, rtol=0, atol=1e-12 * np.max(np.abs(c_run)))


@needs_compiler
@pytest.mark.parametrize("launcher", ["emulated", "cuda-stand-in"])
def test_fortran_ordered_data_trains_as_c_ordered_through_the_fused_kernel(
        mnist, monkeypatch, launcher):
    """Bit for bit: the fused engine copies the data to C order once and the kernel then
    computes on identical rows. (Planted: without the copy the CUDA stand-in run trains
    on scrambled rows, the emulated launcher refuses the array.)"""
    _EmulatingCupy_modules_cleared()
    monkeypatch.setattr(fused_module, "cuda_launcher", _launchers()[launcher])
    c_run = _train(mnist, "C", "fused")
    f_run = _train(mnist, "F", "fused")
    assert np.array_equal(f_run, c_run)
    eager = _train(mnist, "C", "eager")
    assert np.max(np.abs(f_run - eager)) < 1e-9 * np.max(np.abs(eager))
    _EmulatingCupy_modules_cleared()


@needs_compiler
@pytest.mark.parametrize("engine", ["eager", "cpu", "fused"])
def test_fortran_ordered_data_trains_stacks_as_c_ordered(mnist, monkeypatch, engine):
    """NetworkStack.SGD: two networks, each engine (fused through the CUDA stand-in)."""
    _EmulatingCupy_modules_cleared()
    monkeypatch.setattr(fused_module, "cuda_launcher", _launchers()["cuda-stand-in"])
    runs = {}
    for order in ("C", "F"):
        stack = NetworkStack(SIZES, seeds=[5, 6], cost="quadratic", dtype="float64",
                             device="cpu")
        histories = stack.SGD(_data(mnist, order), 2, M, [0.5, 1.0], verbose=False,
                              engine=engine, workers=1)
        assert histories[0].engine.endswith(engine)  # stacked-eager, stacked-cpu, fused
        runs[order] = np.array(stack.parameters, copy=True)
    scale = np.max(np.abs(runs["C"]))
    assert np.max(np.abs(runs["F"] - runs["C"])) <= 1e-12 * scale
    _EmulatingCupy_modules_cleared()


@needs_compiler
def test_fused_launchers_refuse_other_layouts_and_dtypes(mnist):
    """The launchers themselves: a Fortran-ordered X, a float32 X for a float64 kernel,
    int32 permutations: each one clear TypeError, before anything runs."""
    from gpunet.backends.fused_sgd import plan_for

    X, Y = _data(mnist, "C")
    plan = plan_for(SIZES, M, np.float64, fused_module.THREADS, 227 * 1024)
    P = plan.n_parameters
    good = [np.zeros((1, P)), np.zeros((1, P)), X, Y, np.arange(N).reshape(1, N),
            np.ones(1), np.zeros(1), np.asarray(SIZES, np.int32)]
    _EmulatingCupy_modules_cleared()
    for launcher in (EmulatedSgdEpoch(np.float64), CudaSgdEpoch(_EmulatingCupy, np.float64)):
        for index, bad, message in ((2, np.asfortranarray(X), "X is not C-contiguous"),
                                    (2, X.astype(np.float32), "X has dtype float32"),
                                    (4, good[4].astype(np.int32), "perm has dtype int32")):
            arrays = list(good)
            arrays[index] = bad
            with pytest.raises(TypeError, match=message):
                launcher(plan, *arrays, QuadraticCost.kernel_id)
    _EmulatingCupy_modules_cleared()


def _EmulatingCupy_modules_cleared():
    """CudaSgdEpoch caches compiled modules per (device, real): the stand-in's must not
    leak into other tests."""
    CudaSgdEpoch._modules.clear()
