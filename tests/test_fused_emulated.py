"""The fused CUDA kernel, run on the CPU by the block emulator, against the NumPy engine.

The kernel source (backends/kernels/fused_sgd.cu) is compiled with the system C++
compiler and each CUDA thread runs as a coroutine; each phase runs its threads in
ascending, descending or shuffled order, so a missing barrier or a read of another
thread's result within a phase changes the numbers. Test ids contain ``emulat``.
"""

from __future__ import annotations

import ctypes
import shutil

import numpy as np
import pytest

import gpunet
from gpunet.backends.fused_sgd import plan_for
from gpunet.backends.testing.emulator import EmulatedSgdEpoch
from gpunet.training.settings import TrainingSettings
from gpunet.engines import fused as fused_module
from gpunet.engines.eager import EagerEngine

from conftest import float32_steps_bound
from gpunet.engines.fused import FusedEngine, FusedSgd

pytestmark = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="no C++ compiler for the kernel emulator")

H100_SHARED = 227 * 1024
THREADS = 64  # any block size works; small keeps the emulation fast


def _data(mnist, n, dtype):
    X = mnist.training[0][:n].astype(dtype)
    Y = np.eye(10, dtype=dtype)[mnist.training[1][:n]]
    return X, Y


def _pair(sizes, cost, dtype, seed=1):
    kw = dict(cost=cost, init="default", dtype=dtype, device="cpu", seed=seed)
    return gpunet.Network(sizes, **kw), gpunet.Network(sizes, **kw)


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _run_both(mnist, sizes, cost, dtype, epochs, m, eta, lmbda, n, order="ascending",
              max_shared=H100_SHARED, drop_barrier=0, arithmetic="ieee"):
    """Train a NumPy-engine network and an emulated-fused one on the same shuffles."""
    X, Y = _data(mnist, n, dtype)
    ref, fused = _pair(sizes, cost, dtype)
    settings = TrainingSettings(epochs=epochs, mini_batch_size=m, eta=eta, lmbda=lmbda)
    launcher = EmulatedSgdEpoch(dtype, order, drop_barrier=drop_barrier,
                                max_shared_bytes=max_shared, arithmetic=arithmetic)
    eager = EagerEngine(ref, X, Y, settings)
    engine = FusedEngine(fused, X, Y, settings, launcher=launcher, threads=THREADS)
    rng = np.random.default_rng(7)
    for _ in range(epochs):
        perm = rng.permutation(n)
        eager.train_epoch(perm)
        engine.train_epoch(perm)
    return ref, fused, engine


@pytest.mark.parametrize("order", ["ascending", "descending", "shuffle:5"])
@pytest.mark.parametrize("sizes, cost, lmbda", [
    ([784, 16, 10], "quadratic", 0.0),
    ([784, 16, 10], "cross-entropy", 5.0),
    ([784, 12, 8, 10], "quadratic", 2.0),          # two hidden layers
    ([784, 12, 9, 7, 10], "cross-entropy", 0.0),   # three hidden layers
    ([784, 10], "quadratic", 1.0),                 # no hidden layer
])
def test_emulated_kernel_follows_numpy_float64(mnist, order, sizes, cost, lmbda):
    # 203 examples, m = 10: a partial last mini-batch of 3 every epoch.
    ref, fused, engine = _run_both(mnist, sizes, cost, np.float64, epochs=2, m=10,
                                   eta=0.5, lmbda=lmbda, n=203, order=order)
    assert engine.plan.params_in_shared
    assert _relative(fused.parameters, ref.parameters) < 1e-9


def test_emulated_kernel_with_parameters_in_global_memory(mnist):
    # A shared-memory limit too small for the parameters: they live in `work`.
    ref, fused, engine = _run_both(mnist, [784, 12, 8, 10], "quadratic", np.float64,
                                   epochs=2, m=10, eta=0.5, lmbda=2.0, n=203,
                                   order="descending", max_shared=90 * 1024)
    assert not engine.plan.params_in_shared
    assert _relative(fused.parameters, ref.parameters) < 1e-9


def test_emulated_thread_orders_agree_bit_for_bit(mnist):
    results = [_run_both(mnist, [784, 12, 8, 10], "cross-entropy", np.float64, 1, 7, 1.0,
                         1.0, 100, order=order)[1].parameters.copy()
               for order in ("ascending", "descending", "shuffle:1", "shuffle:2")]
    for r in results[1:]:
        assert np.array_equal(r, results[0])


@pytest.mark.parametrize("barrier", [1, 2, 3, 4, 5, 6])
def test_emulated_kernel_needs_every_barrier(mnist, barrier):
    """Drop one barrier: some thread order must then give wrong numbers."""
    errors = []
    for order in ("ascending", "descending"):
        with np.errstate(all="ignore"):
            ref, fused, _ = _run_both(mnist, [784, 12, 8, 10], "quadratic", np.float64, 1,
                                      10, 0.5, 0.0, 53, order=order, drop_barrier=barrier)
            error = _relative(fused.parameters, ref.parameters)
        errors.append(1.0 if np.isnan(error) else error)
    assert max(errors) > 1e-6, f"dropping barrier {barrier} changed nothing"


@pytest.mark.parametrize("arithmetic", ["ieee", "gpu"])
def test_emulated_kernel_float32_matches_numpy_accuracy(mnist, arithmetic):
    """600 float32 steps of chapter 3's cross-entropy network (η = 0.5, not chaotic), the
    kernel in the host's arithmetic and in the GPU's (FMA contraction, flush-to-zero):
    parameters within twice ``float32_steps_bound(600)`` of NumPy's (each run is within
    the bound of float64), and the same accuracy within 4 of 2,000 images (float32 and
    float64 end within 3 of 10,000 in this regime, tests/test_parity.py)."""
    n_test = 2000
    ref, fused, _ = _run_both(mnist, [784, 30, 10], "cross-entropy", np.float32, epochs=2,
                              m=10, eta=0.5, lmbda=0.0, n=3000, arithmetic=arithmetic)
    test = (mnist.test[0][:n_test], mnist.test[1][:n_test])
    a_ref, a_fused = ref.accuracy(test), fused.accuracy(test)
    assert a_ref > 0.8 * n_test  # it learned
    assert abs(a_ref - a_fused) <= 0.002 * n_test  # within 0.2 points
    assert _relative(fused.parameters, ref.parameters) < 2 * float32_steps_bound(600)


def test_emulated_kernel_trains_many_networks_per_launch(mnist):
    """K = 3 blocks, each with its own parameters, permutation, eta and lambda."""
    sizes, n, m, dtype = [784, 12, 10], 97, 10, np.float64
    X, Y = _data(mnist, n, dtype)
    etas, lmbdas, seeds = [0.1, 1.0, 3.0], [0.0, 5.0, 1.0], [3, 4, 5]
    refs = [gpunet.Network(sizes, cost="quadratic", dtype=dtype, device="cpu", seed=s)
            for s in seeds]
    params = np.stack([r.parameters.copy() for r in refs])
    perms = np.stack([np.random.default_rng(s).permutation(n) for s in seeds])
    for r, eta, lmbda, perm in zip(refs, etas, lmbdas, perms):
        EagerEngine(r, X, Y, TrainingSettings(1, m, eta, lmbda)).train_epoch(perm)
    fused = FusedSgd(gpunet.get_backend("cpu"), sizes, dtype, "quadratic", params, X, Y, m,
                     etas, lmbdas, EmulatedSgdEpoch(dtype, "descending"), threads=THREADS)
    fused.train_epoch(perms)
    for k, r in enumerate(refs):
        assert _relative(params[k], r.parameters) < 1e-9


def test_sgd_auto_takes_the_fused_engine_where_a_launcher_exists(mnist, monkeypatch):
    """Network.SGD through the emulated kernel: same history as the eager engine."""
    monkeypatch.setattr(fused_module, "cuda_launcher",
                        lambda net: EmulatedSgdEpoch(net.dtype, "descending"))
    monkeypatch.setattr(fused_module, "THREADS", THREADS)
    train = (mnist.training[0][:500], mnist.training[1][:500])
    test = (mnist.test[0][:500], mnist.test[1][:500])
    kw = dict(cost="cross-entropy", dtype="float64", device="cpu", seed=3)
    histories = {}
    for engine in ("eager", "auto"):
        net = gpunet.Network([784, 20, 10], **kw)
        histories[engine] = net.SGD(train, 2, 10, 0.5, lmbda=1.0, test_data=test,
                                    verbose=False, engine=engine)
    assert histories["auto"].engine == "fused" and histories["eager"].engine == "eager"
    assert histories["auto"].evaluation_accuracy == histories["eager"].evaluation_accuracy


def test_fused_engine_refuses_what_it_cannot_train(mnist):
    train = (mnist.training[0][:50], mnist.training[1][:50])
    net = gpunet.Network([784, 10, 10], device="cpu", seed=0)
    with pytest.raises(ValueError, match="engine 'fused' cannot train this network: "
                       "the fused engine needs a CUDA device, not cpu"):
        net.SGD(train, 1, 10, 0.5, verbose=False, engine="fused")
    assert net.SGD(train, 1, 10, 0.5, verbose=False).engine == "cpu"  # auto on NumPy


def test_plan_states_the_size_limits():
    book32 = plan_for([784, 30, 10], 10, np.float32, 256, H100_SHARED)
    assert book32.params_in_shared and book32.shared_bytes <= H100_SHARED
    book64 = plan_for([784, 30, 10], 10, np.float64, 256, H100_SHARED)
    assert not book64.params_in_shared and book64.why_not() == ""  # params in L2
    huge_batch = plan_for([784, 30, 10], 4096, np.float32, 256, H100_SHARED)
    assert "needs" in huge_batch.why_not() and "shared memory" in huge_batch.why_not()
    deep = plan_for([784] + [10] * 17 + [10], 10, np.float32, 256, H100_SHARED)
    assert "more than 16 weight layers" in deep.why_not()
    # the kernel's __launch_bounds__: more threads per block would fail to launch
    assert "512 threads per block (the kernel runs 1 to 256)" == \
        plan_for([784, 30, 10], 10, np.float32, 512, H100_SHARED).why_not()


class _EmulatingCupy:
    """Just enough of CuPy for :class:`CudaSgdEpoch`: its kernel runs in the emulator.

    It proves the CUDA launcher's side of the contract without a GPU: the compile
    options, the argument order and types, grid, block and shared-memory sizes.
    """

    class _Kernel:
        def __init__(self, real):
            self.launcher = EmulatedSgdEpoch(np.float32 if real == "float" else np.float64,
                                             "descending")
            self.max_dynamic_shared_size_bytes = 48 * 1024
            self.max_threads_per_block = 256  # __launch_bounds__(256, 1)
            self.launches = []

        def __call__(self, grid, block, args, shared_mem=0):
            assert shared_mem <= self.max_dynamic_shared_size_bytes  # CUDA would refuse
            ints = args[11:]
            assert all(type(v) is np.int32 for v in ints), "ints must be np.int32"
            L, n, m, cost, in_shared, capacity, has_velocity = (int(v) for v in ints)
            params, work, X, Y, perm, eta, lmbda, sizes, velocity, mu, l1 = args[:11]
            assert sizes.dtype == np.int32 and perm.dtype == np.int64 and eta.dtype == np.float64
            assert mu.dtype == l1.dtype == np.float64 and velocity.dtype == params.dtype
            assert has_velocity == (velocity.ndim == 2)
            library = self.launcher.library
            status = library.gpunet_emulate_sgd_epoch(
                *(a.ctypes.data_as(ctypes.c_void_p) for a in args[:11]),
                *(ctypes.c_int(int(v)) for v in ints), ctypes.c_int(grid[0]),
                ctypes.c_int(block[0]), ctypes.c_longlong(shared_mem), ctypes.c_int(1),
                ctypes.c_int(0))
            assert status == 0
            self.launches.append((grid, block, shared_mem, L, n, m, cost, in_shared, capacity))

    zeros = staticmethod(np.zeros)  # the launcher's stand-ins for momentum and L1

    class RawModule:
        def __init__(self, code, options):
            assert 'extern "C"' in code and "gpunet_sgd_epoch" in code
            self.real = next(o.split("=")[1] for o in options if o.startswith("-DGPUNET_REAL="))

        def get_function(self, name):
            assert name == "gpunet_sgd_epoch"
            return _EmulatingCupy._Kernel(self.real)

    class cuda:
        class Device:
            id = 99

        class runtime:
            cudaDevAttrMaxSharedMemoryPerBlockOptin = 97

            @staticmethod
            def deviceGetAttribute(attribute, device):
                assert attribute == 97
                return 227 * 1024


def test_emulated_cuda_launcher_marshals_the_kernel_arguments(mnist):
    from gpunet.backends.fused_sgd import CudaSgdEpoch

    X, Y = _data(mnist, 53, np.float64)
    ref, fused = _pair([784, 12, 8, 10], "cross-entropy", np.float64)
    settings = TrainingSettings(epochs=1, mini_batch_size=10, eta=0.5, lmbda=1.0)
    CudaSgdEpoch._modules.clear()
    launcher = CudaSgdEpoch(_EmulatingCupy, np.float64)
    engine = FusedEngine(fused, X, Y, settings, launcher=launcher, threads=THREADS)
    perm = np.random.default_rng(0).permutation(53)
    EagerEngine(ref, X, Y, settings).train_epoch(perm)
    engine.train_epoch(perm)
    CudaSgdEpoch._modules.clear()
    (grid, block, shared, L, n, m, cost, in_shared, _), = launcher.kernel.launches
    assert grid == (1,) and block == (THREADS,) and (L, n, m, cost) == (4, 53, 10, 1)
    assert shared == engine.plan.shared_bytes and in_shared == 1
    assert launcher.kernel.max_dynamic_shared_size_bytes >= shared
    assert _relative(fused.parameters, ref.parameters) < 1e-9
