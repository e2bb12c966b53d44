"""The fused kernel on the CPU: its CUDA source compiled by the system C++ compiler.

Test machinery (nothing at run time imports it): :class:`EmulatedSgdEpoch` compiles
``kernels/fused_sgd.cu`` with ``-DGPUNET_EMULATE`` and ``kernels/emulator.cpp``, which
runs each CUDA thread of a block as a coroutine, phase by phase between barriers, in
ascending, descending or shuffled thread order, with the block's shared memory exactly
its plan's size and fenced. It takes the CUDA launcher's arguments
(:data:`backends.fused_sgd.ARGUMENTS`), so the tests train through the fused engine on a
machine without a GPU and compare with NumPy.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..base import BackendUnavailable
from ..fused_sgd import (
    ARGUMENTS,
    DEFAULT_ACTIVATION,
    EXTENSION,
    KERNEL_DIR,
    KERNEL_PATH,
    REAL,
    SgdEpochPlan,
    _launch_arguments,
    activation_options,
    dropout_arguments,
    has_velocity,
    check_arguments,
    kernel_source,
    with_extension,
)

EMULATOR_PATH = KERNEL_DIR / "emulator.cpp"


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
        self.drop_barrier = drop_barrier
        #: the build for the kernel's default activation (the probes use it); a launch
        #: runs the build for its plan's activation.
        self.library = _emulator_library(REAL[self.dtype], drop_barrier, arithmetic)
        #: bytes of shared memory up to the last one the last launch wrote (its blocks' most).
        self.high_water_bytes = 0

    def __call__(self, plan: SgdEpochPlan, params: np.ndarray, work: np.ndarray,
                 X: np.ndarray, Y: np.ndarray, perm: np.ndarray, eta: np.ndarray,
                 lmbda: np.ndarray, sizes: np.ndarray, cost: int,
                 velocity: Optional[np.ndarray] = None, momentum: Optional[np.ndarray] = None,
                 l1: Optional[np.ndarray] = None, dropout: Any = None) -> None:
        self.launch(plan, with_extension(np, plan, (params, work, X, Y, perm, eta, lmbda,
                                                    sizes), velocity, momentum, l1), cost,
                    dropout=dropout)

    def launch(self, plan: SgdEpochPlan, arrays: Sequence[np.ndarray], cost: int,
               shared_bytes: Optional[int] = None, dropout: Any = None) -> None:
        """One launch with :data:`ARGUMENTS` ``arrays`` (the first eight: no momentum
        nor L1) and the cost's kernel id ``cost``, of the build for the plan's
        activation; ``shared_bytes`` (default the plan's) is the buffer each block gets:
        the guard tests give less than the kernel uses, to see the fence catch it."""
        if len(arrays) == len(ARGUMENTS) - len(EXTENSION):
            arrays = with_extension(np, plan, arrays, None, None, None)
        for name, a in zip(ARGUMENTS, arrays):
            if not isinstance(a, np.ndarray):
                raise TypeError(f"the emulated kernel takes NumPy arrays; {name} is a "
                                f"{type(a).__name__}")
        check_arguments(plan, arrays, "the emulated kernel")
        K, n = arrays[4].shape
        drop = dropout_arguments(plan, K, dropout, "the emulated kernel")
        keys = ((drop[0].ctypes.data_as(ctypes.c_void_p),
                 drop[1].ctypes.data_as(ctypes.c_void_p), ctypes.c_int(drop[2]))
                if drop else ())
        size = plan.shared_bytes if shared_bytes is None else int(shared_bytes)
        library = _emulator_library(REAL[self.dtype], self.drop_barrier, self.arithmetic,
                                    plan.activation, plan.output, plan.dropout)
        entry = (library.gpunet_emulate_sgd_epoch_dropout if drop
                 else library.gpunet_emulate_sgd_epoch)
        status = entry(
            *(a.ctypes.data_as(ctypes.c_void_p) for a in arrays), *keys,
            *(ctypes.c_int(v) for v in _launch_arguments(plan, n, cost, has_velocity(arrays))),
            ctypes.c_int(K), ctypes.c_int(plan.threads), ctypes.c_longlong(size),
            ctypes.c_int(self.order), ctypes.c_int(int(self.flush_denormals)))
        self.high_water_bytes = int(library.gpunet_emulate_high_water())
        self._raise_for(status, size, library)

    def fence_probe(self, shared_bytes: int, offset: int, write: bool) -> None:
        """Touch byte ``offset`` of a fenced ``shared_bytes`` buffer from one emulated
        thread (the fence's own test): :class:`SharedMemoryFault` outside the buffer."""
        status = self.library.gpunet_emulate_fence_probe(
            ctypes.c_longlong(shared_bytes), ctypes.c_longlong(offset), ctypes.c_int(write))
        self._raise_for(status, shared_bytes)

    def _raise_for(self, status: int, shared_bytes: int, library: Any = None) -> None:
        library = self.library if library is None else library
        if status == -1:
            raise RuntimeError("emulated kernel: the threads of a block passed different "
                               "numbers of barriers (a barrier in divergent code)")
        if status in (-3, -4):
            offset = int(library.gpunet_emulate_fault_offset())
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


_libraries: dict[tuple[str, int, str, int, int, bool], Any] = {}


def _emulator_library(real: str, drop_barrier: int, arithmetic: str = "ieee",
                      activation: int = DEFAULT_ACTIVATION, output: int = 0,
                      dropout: bool = False) -> Any:
    """Build (once, cached on disk by source hash) and load the emulator for ``real``,
    the activation of kernel id ``activation`` and the output layer ``output`` (1: the
    softmax), with dropout's masks where ``dropout`` (its own build)."""
    key = (real, drop_barrier, arithmetic, activation, output, dropout)
    if key in _libraries:
        return _libraries[key]
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not compiler:
        raise BackendUnavailable("the kernel emulator needs a C++ compiler (g++); "
                                 "install one or set CXX", reason="no C++ compiler")
    flags = ["-O2", "-shared", "-fPIC", "-std=c++17", "-DGPUNET_EMULATE",
             *_arithmetic_flags(arithmetic),
             f"-DGPUNET_REAL={real}", f"-DGPUNET_DROP_BARRIER={drop_barrier}",
             *activation_options(activation, output, dropout),
             f'-DGPUNET_KERNEL_SOURCE="{KERNEL_PATH}"']
    digest = hashlib.sha256(
        (kernel_source() + EMULATOR_PATH.read_text(encoding="utf-8") + " ".join(flags)
         + compiler).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("GPUNET_CACHE", Path(tempfile.gettempdir()) / "gpunet-cache"))
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / (f"emulator-{real}-{drop_barrier}-{arithmetic}-{activation}-{output}-"
                      f"{'drop-' if dropout else ''}{digest}.so")
    if not target.exists():
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        run = subprocess.run([compiler, *flags, str(EMULATOR_PATH), "-o", str(partial)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"building the kernel emulator failed:\n{run.stderr}")
        os.replace(partial, target)
    library = ctypes.CDLL(str(target))
    library.gpunet_emulate_sgd_epoch.restype = ctypes.c_int
    library.gpunet_emulate_sgd_epoch_dropout.restype = ctypes.c_int
    library.gpunet_emulate_fault_offset.restype = ctypes.c_longlong
    library.gpunet_emulate_high_water.restype = ctypes.c_longlong
    library.gpunet_emulate_arithmetic.restype = None
    library.gpunet_emulate_fence_probe.restype = ctypes.c_int
    _libraries[key] = library
    return library
