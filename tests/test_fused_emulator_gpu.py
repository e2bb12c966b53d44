"""The fused kernel in the emulator as the GPU runs it: 256 threads, GPU arithmetic, fenced
shared memory.

``tests/test_fused_emulated.py`` proves the kernel's algorithm on small blocks with
IEEE arithmetic. This file closes the gaps to a real launch, without a GPU:

* the production block size (``gpunet.engines.fused.THREADS``, 256), where every phase's
  work is spread differently than on 64 threads, with every barrier shown necessary;
* the emulator's *GPU-arithmetic* build: multiply-adds contracted into FMAs and float32
  denormals flushed to zero, as NVRTC builds the kernel for CuPy (``-fmad=true``,
  ``-ftz=true``); parity bounds derived from rounding, over one and a few steps
  (training's end state is chaotic; a step is not);
* shared memory of exactly the plan's size, fenced by guard pages: one element past
  the end faults, and the launch says where.

Test ids contain ``emulat``.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import gpunet
from gpunet.backends.testing.emulator import CPU_FMA, EmulatedSgdEpoch, SharedMemoryFault
from gpunet.training.settings import TrainingSettings
from gpunet.engines import fused as fused_module
from gpunet.engines.eager import EagerEngine
from gpunet.engines.fused import FusedEngine
from gpunet.model.costs import QuadraticCost

pytestmark = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="no C++ compiler for the kernel emulator")

THREADS = fused_module.THREADS  # what a GPU launch uses
BOOK = [784, 30, 10]


def _unit_roundoff(dtype) -> float:
    return float(np.finfo(dtype).eps) / 2  # u: 2^-24 (float32), 2^-53 (float64)


def _gamma(n: int, dtype) -> float:
    """γ_n = n u / (1 - n u): the relative error bound of a sum of n products, taken
    over the sum of their absolute values, in any order, with or without FMAs (an FMA
    rounds once where a multiply and an add round twice)."""
    nu = n * _unit_roundoff(dtype)
    return nu / (1 - nu)


def _step_bound(sizes, m, dtype) -> float:
    """How far, relative to max |p|, one SGD step of the kernel in ``dtype`` may land from
    the same step in float64 (exact by comparison), with GPU or IEEE arithmetic.

    A step is three chained sums per weight: feedforward over n_in + 1 terms, the error
    back over n_out terms of the next layer, the gradient over the m examples; each
    carries at most γ_n of its absolute sum. The chain does not amplify: σ'(z) ≤ 1/4,
    the output error's factors (a - y), a, 1 - a are at most 1 in size, and MNIST's
    inputs lie in [0, 1]. Each term's absolute sum stays within a small factor of
    max |p| (the book's N(0, 1) biases, weights N(0, 1/n_in)), and sigmoid, exp and the
    division add a few units of rounding (CUDA's expf: 2 ulp). Doubling the sum of the
    γ's covers those; everything else in the step (η/m, the decay, the store) rounds
    once more: + 4u."""
    widest = max(sizes[:-1]) + 1
    return 2 * (_gamma(widest, dtype) + _gamma(max(sizes[1:]), dtype) + _gamma(m, dtype)) \
        + 4 * _unit_roundoff(dtype)


def _mnist_rows(mnist, n, dtype):
    X = mnist.training[0][:n].astype(dtype)
    Y = np.eye(10, dtype=dtype)[mnist.training[1][:n]]
    return X, Y


def _against_float64(mnist, dtype, arithmetic, cost, steps, m=10, eta=3.0, lmbda=0.0,
                     order="shuffle:3", sizes=BOOK, drop_barrier=0):
    """Train ``steps`` mini-batches with the emulated kernel in ``dtype`` (256 threads)
    and with the NumPy engine in float64 from the same parameters and data (both exactly
    representable in ``dtype``): max |p_kernel - p_float64| / max |p_float64|."""
    n = steps * m
    X, Y = _mnist_rows(mnist, n, dtype)
    kernel = gpunet.Network(sizes, cost=cost, dtype=dtype, device="cpu", seed=1)
    exact = gpunet.Network(sizes, cost=cost, dtype="float64", device="cpu", seed=1)
    exact.parameters[:] = kernel.parameters.astype(np.float64)
    settings = TrainingSettings(epochs=1, mini_batch_size=m, eta=eta, lmbda=lmbda)
    launcher = EmulatedSgdEpoch(dtype, order, drop_barrier=drop_barrier,
                                arithmetic=arithmetic)
    engine = FusedEngine(kernel, X, Y, settings, launcher=launcher, threads=THREADS)
    assert engine.plan.threads == 256
    perm = np.random.default_rng(0).permutation(n)
    EagerEngine(exact, X.astype(np.float64), Y.astype(np.float64), settings).train_epoch(perm)
    with np.errstate(all="ignore"):
        engine.train_epoch(perm)
        error = np.max(np.abs(kernel.parameters - exact.parameters))
        relative = float(error / np.max(np.abs(exact.parameters)))
    return 1.0 if np.isnan(relative) else relative


# ------------------------------------------------------------ GPU arithmetic
def test_emulator_gpu_build_fuses_multiply_adds_and_flushes_float32_denormals():
    """The GPU build really computes as the GPU: a * a - c keeps the product's low bits
    (one rounding: FMA) where the CPU has FMA, and float32 denormals become 0 (results
    flushed, inputs read as zero); the IEEE build does neither, and float64 is never
    flushed (``-ftz=true`` is single precision only)."""
    fused, tiny_product, denormal = EmulatedSgdEpoch(np.float32, arithmetic="gpu") \
        .arithmetic_probe()
    assert fused == (2.0 ** -24 if CPU_FMA else 0.0)
    assert tiny_product == 0.0 and denormal == 0.0
    assert EmulatedSgdEpoch(np.float32, arithmetic="ieee").arithmetic_probe() == \
        (0.0, 2.0 ** -130, 2.0 ** -140)
    fused64, tiny64, denormal64 = EmulatedSgdEpoch(np.float64, arithmetic="gpu") \
        .arithmetic_probe()
    assert fused64 == (2.0 ** -24 if CPU_FMA else 0.0)
    assert (tiny64, denormal64) == (2.0 ** -130, 2.0 ** -140)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
@pytest.mark.parametrize("steps", [1, 5])
def test_emulated_gpu_arithmetic_stays_within_rounding_of_float64(mnist, dtype, cost, steps):
    """One step, and five (before trajectories drift apart: parity over whole epochs is
    chaotic), at the production block size with the GPU's arithmetic: within
    ``steps`` × the one-step bound of :func:`_step_bound` (errors of earlier steps
    pass through later ones with a gain near 1 this early: η ‖∇²C‖ is small for
    m = 10). Float32: about 1e-4 a step, measured 1e-7 to 3e-7; float64: 2e-13,
    measured about 1e-15."""
    bound = steps * _step_bound(BOOK, 10, dtype)
    error = _against_float64(mnist, dtype, "gpu", cost, steps, lmbda=1.0)
    assert error <= bound, f"{error:.3g} > {bound:.3g}"


def test_emulated_gpu_arithmetic_changes_the_kernels_rounding(mnist):
    """The flags reach the kernel's own arithmetic (not only the probe): its float32
    results differ from the IEEE build's by rounding, and only by rounding."""
    if not CPU_FMA:
        pytest.fail("this CPU has no FMA: the GPU-arithmetic build cannot contract here")
    runs = {}
    for arithmetic in ("ieee", "gpu"):
        X, Y = _mnist_rows(mnist, 20, np.float32)
        net = gpunet.Network(BOOK, dtype="float32", device="cpu", seed=1)
        launcher = EmulatedSgdEpoch(np.float32, "ascending", arithmetic=arithmetic)
        FusedEngine(net, X, Y, TrainingSettings(1, 10, 3.0), launcher=launcher,
                    threads=THREADS).train_epoch(np.arange(20))
        runs[arithmetic] = net.parameters.copy()
    assert not np.array_equal(runs["ieee"], runs["gpu"])
    assert np.max(np.abs(runs["ieee"] - runs["gpu"])) <= 2 * _step_bound(BOOK, 10, np.float32) \
        * np.max(np.abs(runs["ieee"]))


# ------------------------------------------------------------ 256 threads
@pytest.mark.parametrize("cost, lmbda", [("quadratic", 0.0), ("cross-entropy", 5.0)])
def test_emulated_kernel_at_256_threads_follows_numpy_float64(mnist, cost, lmbda):
    """The book's network at the production block size, IEEE arithmetic, two epochs of
    203 examples (a partial last mini-batch of 3); in float64 the parameters do not fit
    beside the mini-batch in 227 KiB, so they live in the global working copy."""
    n, m = 203, 10
    X, Y = _mnist_rows(mnist, n, np.float64)
    kw = dict(cost=cost, dtype="float64", device="cpu", seed=2)
    ref, net = gpunet.Network(BOOK, **kw), gpunet.Network(BOOK, **kw)
    settings = TrainingSettings(epochs=2, mini_batch_size=m, eta=0.5, lmbda=lmbda)
    eager = EagerEngine(ref, X, Y, settings)
    engine = FusedEngine(net, X, Y, settings,
                         launcher=EmulatedSgdEpoch(np.float64, "shuffle:11"))
    assert engine.plan.threads == THREADS == 256
    rng = np.random.default_rng(4)
    for _ in range(2):
        perm = rng.permutation(n)
        eager.train_epoch(perm)
        engine.train_epoch(perm)
    # 41 steps in float64: the two engines' summation orders differ, each step by
    # γ_785 ≈ 9e-14 at most (see _step_bound); 1e-9 leaves room for the drift of 41.
    error = np.max(np.abs(net.parameters - ref.parameters)) / np.max(np.abs(ref.parameters))
    assert error < 1e-9


@pytest.mark.parametrize("barrier", [1, 2, 3, 4, 5, 6])
def test_emulated_kernel_at_256_threads_needs_every_barrier(mnist, barrier):
    """Drop one barrier at the production block size (GPU arithmetic): ascending or
    descending thread order must then land far outside the rounding bound."""
    errors = [_against_float64(mnist, np.float64, "gpu", "quadratic", 2, order=order,
                               drop_barrier=barrier)
              for order in ("ascending", "descending")]
    assert max(errors) > 1e-6, f"dropping barrier {barrier} changed nothing: {errors}"


# ------------------------------------------------------------ fenced shared memory
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_shared", [227 * 1024, 128 * 1024])
def test_emulated_shared_memory_is_exact_and_fenced(mnist, dtype, max_shared):
    """The plan's buffer holds everything the kernel touches (no fault, results right),
    and a buffer one element shorter than what the kernel writes faults, naming the
    byte: an off-by-one between the kernel's layout and the plan's size cannot pass
    unnoticed (before, the emulator gave every block 16 bytes of slack). Parameters in
    shared memory and, with a 128 KiB limit, in the global working copy."""
    n, m = 25, 10
    X, Y = _mnist_rows(mnist, n, dtype)
    net = gpunet.Network(BOOK, dtype=dtype, device="cpu", seed=3)
    launcher = EmulatedSgdEpoch(dtype, "descending", max_shared_bytes=max_shared)
    engine = FusedEngine(net, X, Y, TrainingSettings(1, m, 3.0), launcher=launcher)
    engine.train_epoch(np.arange(n))
    used = launcher.high_water_bytes
    assert 0 < used <= engine.plan.shared_bytes
    assert engine.plan.params_in_shared == (max_shared > 200 * 1024 and dtype == np.float32)
    f = engine.fused
    arrays = (f.params, f.work, f.X, f.Y, f.perm, f.eta, f.lmbda, f.sizes)
    short = used - np.dtype(dtype).itemsize
    with pytest.raises(SharedMemoryFault, match=rf"at byte {short} of a {short}-byte buffer"):
        launcher.launch(engine.plan, arrays, QuadraticCost.kernel_id, shared_bytes=short)
    launcher.launch(engine.plan, arrays, QuadraticCost.kernel_id, shared_bytes=used)  # exactly enough


@pytest.mark.parametrize("size", [4096, 1000, 36])
def test_emulated_fence_catches_one_byte_either_side(size):
    """The fence alone (``fence_probe``: one thread touching one byte of a fenced
    buffer): every byte inside is free to read and write; reading or writing the first
    byte past the end faults (guard page), and writing the byte before the start is
    caught (the guard page itself when the buffer starts a page, else the canary bytes
    checked after each phase)."""
    launcher = EmulatedSgdEpoch(np.float32)
    for offset in (0, size // 2, size - 1):
        for write in (False, True):
            launcher.fence_probe(size, offset, write)  # no fault
    for write in (False, True):
        with pytest.raises(SharedMemoryFault, match=rf"at byte {size} of a {size}-byte "
                           r"buffer \(past its end\)"):
            launcher.fence_probe(size, size, write)
    with pytest.raises(SharedMemoryFault, match=r"at byte -1 .*\(before its start\)"):
        launcher.fence_probe(size, -1, True)
