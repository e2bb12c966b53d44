"""The fused SGD kernel (``kernels/fused_sgd.cu``): its plan, and two ways to launch it.

One launch trains ``K`` networks of the same sizes for a whole epoch, one thread
block per network (see the kernel's header comment for the algorithm and memory
layout). This module holds what the host must know about the kernel:

* :class:`SgdEpochPlan`: for given sizes, mini-batch size, dtype and block size, how
  much shared memory a block needs, whether the parameters fit there, and whether the
  kernel can train the network at all on a device with a given shared-memory limit;
* :class:`CudaSgdEpoch`: the kernel compiled by CuPy (NVRTC) and launched on a GPU;
* :class:`EmulatedSgdEpoch`: the *same source* compiled by the system C++ compiler
  with ``-DGPUNET_EMULATE`` and run on the CPU by ``kernels/emulator.cpp``, each
  CUDA thread a coroutine, in ascending, descending or shuffled thread order. Tests
  and ``gpunet check`` use it to prove the kernel right without a GPU.

Both launchers take the same arguments: device (or host) arrays for the parameters
``(K, P)``, the working copies ``(K, P)``, the training inputs ``X (n, n_in)`` and
desired outputs ``Y (n, n_out)``, the permutations ``(K, n)`` (int64), ``eta`` and
``lmbda`` ``(K,)`` (float64) and the layer sizes (int32), every one C-contiguous and of
exactly that dtype. The kernel gets bare pointers and reads rows by ``row * width``: a
Fortran-ordered ``X`` (CuPy keeps NumPy's order, and pandas' ``to_numpy()`` often gives
one) would train on scrambled examples without any error. So both launchers refuse
other layouts and dtypes (:func:`check_arguments`), and
:class:`~gpunet.engines.fused.FusedSgd` converts the data once, at setup.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .base import BackendUnavailable
from .nvrtc import RAW_MODULE_OPTIONS

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
KERNEL_PATH = KERNEL_DIR / "fused_sgd.cu"
EMULATOR_PATH = KERNEL_DIR / "emulator.cpp"
KERNEL_NAME = "gpunet_sgd_epoch"
MAX_LAYERS = 16  # GPUNET_MAX_LAYERS in the kernel
#: GPUNET_MAX_THREADS in the kernel: its ``__launch_bounds__``, the most threads per block.
MAX_THREADS = 256
#: The launchers' array arguments, in the kernel's order.
ARGUMENTS = ("params", "work", "X", "Y", "perm", "eta", "lmbda", "sizes")
COSTS = {"quadratic": 0, "cross-entropy": 1}
REAL = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def kernel_source() -> str:
    """The CUDA source of the fused kernel, exactly as shipped."""
    return KERNEL_PATH.read_text(encoding="utf-8")


@dataclass(frozen=True)
class SgdEpochPlan:
    """The shared-memory budget of one block of the fused kernel.

    The block always keeps the mini-batch's inputs, desired outputs, activations,
    errors and partial sums in shared memory; the parameters too when they fit in
    ``max_shared_bytes`` (the device's opt-in limit per block: 227 KiB on an H100),
    else in a global working copy (then L2-resident for networks of a few MB).
    """

    sizes: tuple[int, ...]
    mini_batch_size: int
    dtype: np.dtype
    threads: int
    max_shared_bytes: int

    @property
    def n_parameters(self) -> int:
        s = self.sizes
        return sum(s[l + 1] * s[l] for l in range(len(s) - 1)) + sum(s[1:])

    @property
    def partial_capacity(self) -> int:
        """Reals for feedforward's partial sums (``split_count`` keeps within this):
        about one slice per thread and output tile (``TILE_OUT = 2`` outputs) for up to
        16 examples, and at least one slice."""
        m = self.mini_batch_size
        return 2 * self.threads * min(m, 16) + m * max(self.sizes[1:])

    def _scratch_reals(self) -> int:
        s, m = self.sizes, self.mini_batch_size
        return m * s[0] + m * s[-1] + 2 * m * sum(s[1:]) + self.partial_capacity

    @property
    def params_in_shared(self) -> bool:
        itemsize = self.dtype.itemsize
        return (self.n_parameters + self._scratch_reals()) * itemsize <= self.max_shared_bytes

    @property
    def shared_bytes(self) -> int:
        reals = self._scratch_reals() + (self.n_parameters if self.params_in_shared else 0)
        return reals * self.dtype.itemsize

    def why_not(self) -> str:
        """Empty when the kernel can train this network, else the reason in a few words."""
        if self.dtype not in REAL:
            return f"dtype {self.dtype} (use float32 or float64)"
        if not 0 < self.threads <= MAX_THREADS:
            return f"{self.threads} threads per block (the kernel runs 1 to {MAX_THREADS})"
        if len(self.sizes) - 1 > MAX_LAYERS:
            return f"more than {MAX_LAYERS} weight layers"
        if self.shared_bytes > self.max_shared_bytes:
            return (f"a mini-batch of {self.mini_batch_size} needs "
                    f"{self.shared_bytes // 1024} KiB of shared memory, more than the "
                    f"device's {self.max_shared_bytes // 1024} KiB per block")
        return ""


def _launch_arguments(plan: SgdEpochPlan, n: int, cost: str) -> tuple[int, ...]:
    return (len(plan.sizes), n, plan.mini_batch_size, COSTS[cost],
            int(plan.params_in_shared), plan.partial_capacity)


def check_arguments(plan: SgdEpochPlan, arrays: Sequence[Any], what: str) -> None:
    """Raise ``TypeError`` unless every array of :data:`ARGUMENTS` is C-contiguous and
    of the dtype the kernel reads (the plan's real, int64 permutations, float64 η and λ,
    int32 sizes): the kernel sees bare pointers and would read anything else wrongly."""
    int64, float64 = np.dtype(np.int64), np.dtype(np.float64)
    dtypes = (plan.dtype,) * 4 + (int64, float64, float64, np.dtype(np.int32))
    for name, a, dtype in zip(ARGUMENTS, arrays, dtypes):
        if np.dtype(a.dtype) != dtype:
            raise TypeError(f"{what}: {name} has dtype {a.dtype}, the kernel reads {dtype}")
        if not a.flags.c_contiguous:
            raise TypeError(f"{what}: {name} is not C-contiguous (the kernel reads rows "
                            f"by pointer); convert it once with ascontiguousarray")


class CudaSgdEpoch:
    """The fused kernel on a CUDA device, compiled once per dtype by CuPy."""

    _modules: dict[tuple[int, str], Any] = {}

    def __init__(self, cupy: Any, dtype: Any) -> None:
        self.cupy = cupy
        self.dtype = np.dtype(dtype)
        device = cupy.cuda.Device()
        key = (device.id, REAL[self.dtype])
        if key not in self._modules:
            # The options the compile test (tests/test_compile.py) builds it with.
            options = RAW_MODULE_OPTIONS + (f"-DGPUNET_REAL={REAL[self.dtype]}",)
            module = cupy.RawModule(code=kernel_source(), options=options)
            self._modules[key] = module.get_function(KERNEL_NAME)
        self.kernel = self._modules[key]
        runtime = cupy.cuda.runtime
        self.max_shared_bytes = int(runtime.deviceGetAttribute(
            runtime.cudaDevAttrMaxSharedMemoryPerBlockOptin, device.id))
        #: the most threads per block this build launches with (``__launch_bounds__``
        #: and its registers, as the driver reports them).
        self.max_threads = int(self.kernel.max_threads_per_block)

    def __call__(self, plan: SgdEpochPlan, params: Any, work: Any, X: Any, Y: Any,
                 perm: Any, eta: Any, lmbda: Any, sizes: Any, cost: str) -> None:
        check_arguments(plan, (params, work, X, Y, perm, eta, lmbda, sizes), "the CUDA kernel")
        if plan.threads > self.max_threads:
            raise ValueError(f"the fused kernel, as compiled for this device, runs at most "
                             f"{self.max_threads} threads per block; the plan asks for "
                             f"{plan.threads}: use fewer threads")
        if self.kernel.max_dynamic_shared_size_bytes < plan.shared_bytes:
            self.kernel.max_dynamic_shared_size_bytes = plan.shared_bytes
        K, n = perm.shape
        args = (params, work, X, Y, perm, eta, lmbda, sizes,
                *(np.int32(v) for v in _launch_arguments(plan, n, cost)))
        self.kernel((K,), (plan.threads,), args, shared_mem=plan.shared_bytes)


class SharedMemoryFault(RuntimeError):
    """The emulated kernel touched memory outside its block's shared-memory buffer."""


#: Arithmetic of the emulator's builds: the host compiler's IEEE default, or the GPU's
#: (see :func:`_arithmetic_flags`).
ARITHMETICS = ("ieee", "gpu")


class EmulatedSgdEpoch:
    """The fused kernel's source compiled for the CPU and run by the block emulator.

    ``order``: ``"ascending"``, ``"descending"`` or ``"shuffle:SEED"``, the order in
    which the threads of a block run each phase. ``arithmetic``: ``"ieee"`` (each
    operation rounded on its own, denormals kept) or ``"gpu"``, as NVRTC builds the
    kernel for CuPy: multiply-adds contracted into FMAs (``-mfma -ffp-contract=fast``,
    where the CPU has FMA: :data:`CPU_FMA`) and, in float32, denormals flushed to zero
    for the launch (CuPy compiles with ``-ftz=true``, which flushes single precision
    only). Each block's shared memory is exactly ``plan.shared_bytes``, fenced: an
    access outside it raises :class:`SharedMemoryFault`. Needs a C++ compiler (``g++``
    or ``$CXX``); raises :class:`BackendUnavailable` saying so when there is none.
    """

    def __init__(self, dtype: Any, order: str = "ascending", drop_barrier: int = 0,
                 max_shared_bytes: int = 227 * 1024, arithmetic: str = "ieee") -> None:
        if arithmetic not in ARITHMETICS:
            raise ValueError(f"unknown arithmetic {arithmetic!r}; use one of {ARITHMETICS}")
        self.dtype = np.dtype(dtype)
        self.order = _order_code(order)
        self.max_shared_bytes = max_shared_bytes
        self.arithmetic = arithmetic
        self.flush_denormals = arithmetic == "gpu" and self.dtype == np.float32
        self.library = _emulator_library(REAL[self.dtype], drop_barrier, arithmetic)
        #: bytes of shared memory up to the last one the last launch wrote (its blocks' most).
        self.high_water_bytes = 0

    def __call__(self, plan: SgdEpochPlan, params: np.ndarray, work: np.ndarray,
                 X: np.ndarray, Y: np.ndarray, perm: np.ndarray, eta: np.ndarray,
                 lmbda: np.ndarray, sizes: np.ndarray, cost: str) -> None:
        self.launch(plan, (params, work, X, Y, perm, eta, lmbda, sizes), cost)

    def launch(self, plan: SgdEpochPlan, arrays: Sequence[np.ndarray], cost: str,
               shared_bytes: Optional[int] = None) -> None:
        """One launch with :data:`ARGUMENTS` ``arrays``; ``shared_bytes`` (default the
        plan's) is the buffer each block gets: the guard tests give less than the kernel
        uses, to see the fence catch it."""
        for name, a in zip(ARGUMENTS, arrays):
            if not isinstance(a, np.ndarray):
                raise TypeError(f"the emulated kernel takes NumPy arrays; {name} is a "
                                f"{type(a).__name__}")
        check_arguments(plan, arrays, "the emulated kernel")
        K, n = arrays[4].shape
        size = plan.shared_bytes if shared_bytes is None else int(shared_bytes)
        status = self.library.gpunet_emulate_sgd_epoch(
            *(a.ctypes.data_as(ctypes.c_void_p) for a in arrays),
            *(ctypes.c_int(v) for v in _launch_arguments(plan, n, cost)),
            ctypes.c_int(K), ctypes.c_int(plan.threads), ctypes.c_longlong(size),
            ctypes.c_int(self.order), ctypes.c_int(int(self.flush_denormals)))
        self.high_water_bytes = int(self.library.gpunet_emulate_high_water())
        self._raise_for(status, size)

    def fence_probe(self, shared_bytes: int, offset: int, write: bool) -> None:
        """Touch byte ``offset`` of a fenced ``shared_bytes`` buffer from one emulated
        thread (the fence's own test): :class:`SharedMemoryFault` outside the buffer."""
        status = self.library.gpunet_emulate_fence_probe(
            ctypes.c_longlong(shared_bytes), ctypes.c_longlong(offset), ctypes.c_int(write))
        self._raise_for(status, shared_bytes)

    def _raise_for(self, status: int, shared_bytes: int) -> None:
        if status == -1:
            raise RuntimeError("emulated kernel: the threads of a block passed different "
                               "numbers of barriers (a barrier in divergent code)")
        if status in (-3, -4):
            offset = int(self.library.gpunet_emulate_fault_offset())
            where = "past its end" if offset >= shared_bytes else "before its start"
            raise SharedMemoryFault(f"emulated kernel: shared-memory access at byte {offset} "
                                    f"of a {shared_bytes}-byte buffer ({where})")
        if status != 0:
            raise MemoryError("emulated kernel: out of memory")

    def arithmetic_probe(self) -> tuple[float, float, float]:
        """What this build's float32 arithmetic does under its launches' settings:
        ``a·a - c`` for a = 1 + 2⁻¹², c = 1 + 2⁻¹¹ (2⁻²⁴ when fused, 0 when not),
        2⁻¹⁰⁰ · 2⁻³⁰ (0 when results are flushed) and 2⁻¹⁴⁰ · 1 (0 when denormal
        inputs read as zero)."""
        out = (ctypes.c_float * 3)()
        self.library.gpunet_emulate_arithmetic(ctypes.c_int(int(self.flush_denormals)), out)
        return float(out[0]), float(out[1]), float(out[2])


def _order_code(order: str) -> int:
    if order == "ascending":
        return 0
    if order == "descending":
        return 1
    if order.startswith("shuffle:"):
        return 2 + int(order.split(":", 1)[1])
    raise ValueError(f"unknown thread order {order!r}; use ascending, descending or shuffle:SEED")


def _cpu_has_fma() -> bool:
    """Whether this CPU runs fused multiply-adds: always on 64-bit Arm, on x86-64 when
    /proc/cpuinfo lists ``fma`` (FMA3: Haswell, Zen and later)."""
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return True
    if machine in ("x86_64", "amd64"):
        try:
            text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        return any(line.startswith("flags") and " fma " in f"{line} "
                   for line in text.splitlines())
    return False


#: Whether the emulator's GPU-arithmetic build contracts multiply-adds here.
CPU_FMA = _cpu_has_fma()


def _arithmetic_flags(arithmetic: str) -> list[str]:
    """Compiler flags for the emulator's ``arithmetic``. ``gpu``: contract ``a * b + c``
    into one FMA wherever the compiler can, as nvcc and NVRTC do by default (``-fmad=true``);
    x86-64 needs ``-mfma`` to have the instruction at all."""
    if arithmetic == "ieee":
        return ["-ffp-contract=off"]
    flags = ["-ffp-contract=fast"]
    if CPU_FMA and platform.machine().lower() in ("x86_64", "amd64"):
        flags.append("-mfma")
    return flags


_libraries: dict[tuple[str, int, str], Any] = {}


def _emulator_library(real: str, drop_barrier: int, arithmetic: str = "ieee") -> Any:
    """Build (once, cached on disk by source hash) and load the emulator for ``real``."""
    key = (real, drop_barrier, arithmetic)
    if key in _libraries:
        return _libraries[key]
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not compiler:
        raise BackendUnavailable("the kernel emulator needs a C++ compiler (g++); "
                                 "install one or set CXX", reason="no C++ compiler")
    flags = ["-O2", "-shared", "-fPIC", "-std=c++17", "-DGPUNET_EMULATE",
             *_arithmetic_flags(arithmetic),
             f"-DGPUNET_REAL={real}", f"-DGPUNET_DROP_BARRIER={drop_barrier}",
             f'-DGPUNET_KERNEL_SOURCE="{KERNEL_PATH}"']
    digest = hashlib.sha256(
        (kernel_source() + EMULATOR_PATH.read_text(encoding="utf-8") + " ".join(flags)
         + compiler).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("GPUNET_CACHE", Path(tempfile.gettempdir()) / "gpunet-cache"))
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"emulator-{real}-{drop_barrier}-{arithmetic}-{digest}.so"
    if not target.exists():
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        run = subprocess.run([compiler, *flags, str(EMULATOR_PATH), "-o", str(partial)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"building the kernel emulator failed:\n{run.stderr}")
        os.replace(partial, target)
    library = ctypes.CDLL(str(target))
    library.gpunet_emulate_sgd_epoch.restype = ctypes.c_int
    library.gpunet_emulate_fault_offset.restype = ctypes.c_longlong
    library.gpunet_emulate_high_water.restype = ctypes.c_longlong
    library.gpunet_emulate_arithmetic.restype = None
    library.gpunet_emulate_fence_probe.restype = ctypes.c_int
    _libraries[key] = library
    return library


def plan_for(sizes: Sequence[int], mini_batch_size: int, dtype: Any, threads: int,
             max_shared_bytes: int) -> SgdEpochPlan:
    """The :class:`SgdEpochPlan` for a network (mini-batch size capped at ``n`` by the caller)."""
    return SgdEpochPlan(tuple(int(s) for s in sizes), int(mini_batch_size), np.dtype(dtype),
                        int(threads), int(max_shared_bytes))
