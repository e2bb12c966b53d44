"""The CuPy (CUDA) backend: device-resident arrays and fused elementwise kernels.

CuPy is imported only when this backend is constructed, so the package imports on
machines without it. Each fused operation of :class:`backends.base.Backend` is one
``ElementwiseKernel`` launch here instead of three or four array expressions; the
kernels are declared once, in :data:`KERNELS`, so that CI can compile exactly these
sources without a GPU (:mod:`backends.testing.nvrtc`) and ``gpunet check`` can test each one
against its formula.

Constructing :class:`CupyBackend` *proves* the device works before anything trusts it
(:func:`probe`): every fused kernel is compiled by NVRTC and launched once, and one
small matrix product runs on cuBLAS, with the results checked, once per device and
process (a sweep of 100 networks builds 100 backends and pays one probe). Whatever fails there
(no driver, a driver too old for this CuPy, a missing CUDA library) becomes
:class:`BackendUnavailable` with the precise cause and the fix, so ``--device auto``
falls back to the CPU saying why and ``--device cuda`` is one error line.

Devices and streams: CuPy works on the calling thread's *current* device and stream.
:meth:`CupyBackend.scope` makes this backend's device current (the network enters it
in every public method); all work runs on the thread's current stream, one stream
per run, so no two streams ever need ordering.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ContextManager, Optional

import numpy as np

from .base import Array, Backend, BackendUnavailable
from .hints import CUDA_HINT, install_hint, spelled

#: How to install CuPy with the CUDA libraries it loads (cuBLAS, NVRTC, headers).
INSTALL_HINT = CUDA_HINT


# ------------------------------------------------------------------ the kernels
@dataclass(frozen=True)
class KernelSpec:
    """One fused ``ElementwiseKernel``: its CuPy definition and how gpunet launches it.

    ``launches`` lists the argument layouts gpunet's calls produce, one string per
    argument (inputs, then outputs) after CuPy's dimension reduction: ``"a1"`` a
    contiguous array seen as 1-D, ``"a2"`` a contiguous 2-D array, ``"a2s"`` a strided
    (broadcast) 2-D array, ``"s"`` a scalar. The compile test generates the kernel's
    CUDA source for each, in float32 and float64, exactly as CuPy would.
    """

    name: str
    in_params: str
    out_params: str
    operation: str
    launches: tuple[tuple[str, ...], ...]
    formula: str


KERNELS: tuple[KernelSpec, ...] = (
    KernelSpec("gpunet_sigmoid", "T z", "T a", "a = 1 / (1 + exp(-z))",
               launches=(("a1", "a1"),),
               formula="a = 1 / (1 + exp(-z))  (chapter 1, eq. 3)"),
    # feedforward: a = σ(z + bᵀ) with the bias row broadcast down a mini-batch (a2s),
    # or a single example (everything contiguous, 1-D).
    KernelSpec("gpunet_add_bias_sigmoid", "T z, T b", "T a", "a = 1 / (1 + exp(-(z + b)))",
               launches=(("a2", "a2s", "a2"), ("a1", "a1", "a1")),
               formula="a = σ(z + b)  (chapter 1, eq. 25 then eq. 3)"),
    KernelSpec("gpunet_sigmoid_prime_mul", "T a", "T delta", "delta = delta * a * (1 - a)",
               launches=(("a1", "a1"),),
               formula="δ = δ ⊙ a(1 - a) = δ ⊙ σ'(z)  (chapter 2, BP2)"),
    KernelSpec("gpunet_quadratic_delta", "T a, T y", "T delta", "delta = (a - y) * a * (1 - a)",
               launches=(("a1", "a1", "a1"),),
               formula="δ^L = (a - y) ⊙ σ'(z^L)  (chapter 2, BP1, quadratic cost)"),
    KernelSpec("gpunet_sgd_update", "T grad, T scale, T decay, int64 decayed", "T param",
               "param = (i < decayed ? decay : (T)1) * param - scale * grad",
               launches=(("a1", "s", "s", "s", "a1"),),
               formula="w = (1 - ηλ/n) w - (η/m) ∇w, b = b - (η/m) ∇b  (chapter 3, eq. 93, 94)"),
)


def kernel_spec(name: str) -> KernelSpec:
    """The :class:`KernelSpec` called ``name``."""
    for spec in KERNELS:
        if spec.name == name:
            return spec
    raise KeyError(name)


class _Kernels:
    """The fused kernels as CuPy ``ElementwiseKernel`` objects (compiled per dtype on use)."""

    def __init__(self, cupy: Any) -> None:
        def make(name: str) -> Any:
            spec = kernel_spec(name)
            return cupy.ElementwiseKernel(spec.in_params, spec.out_params, spec.operation,
                                          spec.name)

        self.sigmoid = make("gpunet_sigmoid")
        self.add_bias_sigmoid = make("gpunet_add_bias_sigmoid")
        self.sigmoid_prime_mul = make("gpunet_sigmoid_prime_mul")
        self.quadratic_output_error = make("gpunet_quadratic_delta")
        self.sgd_update = make("gpunet_sgd_update")


# ------------------------------------------------------------------ diagnosis
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _unavailable(cause: str, fix: str) -> BackendUnavailable:
    cpu = spelled('device="cpu"', "--device cpu")
    return BackendUnavailable(f"CUDA is not usable here: {cause}; {fix}, or use {cpu}.",
                              reason=cause)


def _cuda_version(v: int) -> str:
    return f"{v // 1000}.{(v % 1000) // 10}"


def import_cupy() -> Any:
    """Import CuPy, or raise :class:`BackendUnavailable` saying what to install."""
    try:
        import cupy
    except ImportError as exc:  # not installed (or None in sys.modules), or broken
        if isinstance(exc, ModuleNotFoundError) and exc.name == "cupy":
            raise _unavailable("CuPy is not installed", INSTALL_HINT) from None
        raise _unavailable(f"CuPy is installed but cannot be imported: {_first_line(exc)}",
                           f"reinstall it: {INSTALL_HINT[len('install '):]}") from None
    return cupy


def diagnose(cupy: Any, exc: BaseException) -> BackendUnavailable:
    """Turn whatever CuPy raised while starting up into the cause and its fix."""
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    runtime: Any = getattr(getattr(cupy, "cuda", None), "runtime", None)
    driver = runtime_version = 0
    try:
        driver = int(runtime.driverGetVersion())
    except Exception:
        pass
    try:
        runtime_version = int(runtime.runtimeGetVersion())
    except Exception:
        pass
    if "insufficientdriver" in lowered or "driver version is insufficient" in lowered:
        if driver == 0:
            return _unavailable(
                "no NVIDIA driver found",
                "on a machine with an NVIDIA GPU install its driver (check with `nvidia-smi`)")
        major, driver_major = runtime_version // 1000, driver // 1000
        fix = f"update the NVIDIA driver to one for CUDA {major or 'of this CuPy'}"
        if driver_major in (12, 13) and driver_major != major:
            fix += (f", or use the CuPy for CUDA {driver_major}: `pip uninstall "
                    f"cupy-cuda{major}x`, then install {install_hint(f'cuda{driver_major}')}")
        return _unavailable(
            f"the NVIDIA driver is too old for this CuPy: it supports CUDA "
            f"{_cuda_version(driver)}, CuPy needs CUDA {_cuda_version(runtime_version)}", fix)
    if "nodevice" in lowered or "no cuda-capable device" in lowered:
        return _unavailable("no CUDA device is visible",
                            "check the GPU with `nvidia-smi` and CUDA_VISIBLE_DEVICES")
    if "invaliddevice" in lowered:
        return _unavailable("the CUDA device index is not valid here",
                            "check CUDA_VISIBLE_DEVICES and the index in cuda:N")
    for library, what in (("cublas", "cuBLAS"), ("nvrtc", "NVRTC"), ("curand", "cuRAND"),
                          ("cudart", "the CUDA runtime")):
        if library in lowered and ("no such file" in lowered or "cannot open" in lowered
                                   or "not found" in lowered or "failed to load" in lowered
                                   or "could not" in lowered or "unable to" in lowered):
            return _unavailable(f"CuPy cannot load {what} ({_first_line(exc)})",
                                f"{INSTALL_HINT} (CuPy with its CUDA libraries)")
    if ("cuda root directory" in lowered or "cuda_fp16" in lowered
            or ("cannot open source file" in lowered and ".h" in lowered)):
        return _unavailable(f"the CUDA headers NVRTC needs are missing ({_first_line(exc)})",
                            f"{INSTALL_HINT} (CuPy with its CUDA libraries)")
    if type(exc).__name__ == "CompileException":
        return _unavailable(f"NVRTC failed to compile gpunet's kernels ({_first_line(exc)})",
                            "report this with the output of `gpunet info`")
    return _unavailable(f"CUDA failed its start-up self-test ({_first_line(exc)})",
                        f"check the driver with `nvidia-smi` and the install ({INSTALL_HINT})")


def nvidia_driver_loadable() -> bool:
    """Whether the NVIDIA driver's library (``libcuda`` / ``nvcuda.dll``) loads here.

    Cheap (no CuPy import, which takes a second or two), and exact for what matters:
    without it CuPy cannot reach a device either. On other systems: assume it might.
    """
    import ctypes
    import sys

    names = {"linux": ("libcuda.so.1", "libcuda.so"), "win32": ("nvcuda.dll",)}.get(sys.platform)
    if names is None:
        return True
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            pass
    return False


def quick_unavailable_reason() -> Optional[BackendUnavailable]:
    """Why CUDA cannot work here, found without importing CuPy, or ``None``.

    CuPy not installed, or no NVIDIA driver: then ``auto`` need not pay for importing
    CuPy to learn that. Used only while CuPy is not imported yet.
    """
    import importlib.util
    import sys

    if "cupy" in sys.modules:
        return None
    if importlib.util.find_spec("cupy") is None:
        return _unavailable("CuPy is not installed", INSTALL_HINT)
    several = several_cupys()
    if several is not None:
        return several
    if not nvidia_driver_loadable():
        return _unavailable(
            "no NVIDIA driver found",
            "on a machine with an NVIDIA GPU install its driver (check with `nvidia-smi`)")
    return None


@functools.lru_cache(maxsize=1)
def installed_cupys() -> tuple[str, ...]:
    """The CuPy distributions installed here (``cupy-cuda12x``, ``cupy-cuda13x``, ...).

    Each installs the same ``cupy`` package, so two overwrite each other's files: CuPy
    then reports the wrong CUDA runtime and breaks when either is removed.
    """
    from importlib import metadata

    names = {(dist.metadata["Name"] or "").lower() for dist in metadata.distributions()}
    return tuple(sorted(n for n in names if n == "cupy" or n.startswith("cupy-cuda")
                        or n.startswith("cupy-rocm")))


def several_cupys() -> Optional[BackendUnavailable]:
    """Why CUDA cannot be trusted when two CuPy packages are installed, else ``None``."""
    cupys = installed_cupys()
    if len(cupys) < 2:
        return None
    return _unavailable(
        f"{len(cupys)} CuPy packages are installed ({', '.join(cupys)}), which overwrite "
        "each other's files", f"`pip uninstall {' '.join(cupys)}`, then {INSTALL_HINT}")


def cuda_device_count(cupy: Any) -> int:
    """Number of visible CUDA devices, or raise :class:`BackendUnavailable` saying why none."""
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError: no driver, old driver, no device, ...
        raise diagnose(cupy, exc) from None
    if count == 0:
        raise _unavailable("no CUDA device is visible",
                           "check the GPU with `nvidia-smi` and CUDA_VISIBLE_DEVICES")
    return count


#: The probe's tolerances, relative to max(1, |expected|): float32 rounding for the
#: kernels; for the matrix product room for TF32 (``CUPY_TF32=1``), since the probe asks
#: only whether cuBLAS works.
PROBE_TOLERANCES = {"kernel": 1e-5, "cublas": 1e-2}


def probe(cupy: Any, kernels: _Kernels) -> list[tuple[str, float, float]]:
    """Build and launch every fused kernel once and run one matrix product (float32).

    Returns ``(name, error, tolerance)`` per step, the error relative to
    ``max(1, |expected|)``. Raises whatever CuPy raises (the caller diagnoses it) and
    ``RuntimeError`` if a result is wrong. Run inside the device's scope; it
    synchronises, so that asynchronous launch errors surface here.
    """
    f32 = np.float32
    host_z = np.linspace(-3, 3, 12, dtype=f32).reshape(3, 4)
    host_b = np.linspace(-1, 1, 4, dtype=f32).reshape(1, 4)
    z, b = cupy.asarray(host_z), cupy.asarray(host_b)
    sig = 1 / (1 + np.exp(-host_z))
    a = cupy.asarray(sig)
    y = cupy.asarray(np.full((3, 4), 0.25, dtype=f32))
    out = cupy.empty_like(z)
    flat_b = np.repeat(host_b, 3, axis=0).ravel()
    decay = np.where(np.arange(12) < 5, f32(0.5), f32(1))
    steps: list[tuple[str, Any, np.ndarray, str]] = [
        ("gpunet_sigmoid", kernels.sigmoid(z, out).get(), sig, "kernel"),
        ("gpunet_add_bias_sigmoid", kernels.add_bias_sigmoid(z, b, out).get(),
         1 / (1 + np.exp(-(host_z + host_b))), "kernel"),
        ("gpunet_sigmoid_prime_mul", kernels.sigmoid_prime_mul(a, cupy.ones_like(z)).get(),
         sig * (1 - sig), "kernel"),
        ("gpunet_quadratic_delta", kernels.quadratic_output_error(a, y, out).get(),
         (sig - 0.25) * sig * (1 - sig), "kernel"),
        ("gpunet_sgd_update",
         kernels.sgd_update(cupy.asarray(flat_b), f32(0.25), f32(0.5), np.int64(5),
                            cupy.asarray(host_z.ravel())).get(),
         decay * host_z.ravel() - f32(0.25) * flat_b, "kernel"),
        ("cublas_matmul", cupy.matmul(z, z.T).get(), host_z @ host_z.T, "cublas"),
    ]
    cupy.cuda.get_current_stream().synchronize()
    results = []
    for name, got, expected, kind in steps:
        error = float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))
        tolerance = PROBE_TOLERANCES[kind]
        if not error <= tolerance:  # NaN fails too
            raise RuntimeError(f"the probe of {name} computed a wrong result "
                               f"(error {error:.3g}, tolerance {tolerance:g})")
        results.append((name, error, tolerance))
    return results


#: The probe's results per device index, once it passed there: a device that worked
#: once in this process is not probed again. A failed probe is not kept (the next
#: backend probes again, and says why it fails).
_probed: dict[int, list[tuple[str, float, float]]] = {}
#: The fused kernels, made once per process (CuPy compiles them per device on first use).
_kernels: dict[int, _Kernels] = {}


def _kernels_of(cupy: Any) -> _Kernels:
    if id(cupy) not in _kernels:
        _kernels[id(cupy)] = _Kernels(cupy)
    return _kernels[id(cupy)]


# ------------------------------------------------------------------ the backend
class CupyBackend(Backend):
    """Arrays on one CUDA device, computed by CuPy, cuBLAS and fused kernels.

    Construction probes the device (:func:`probe`; the first time for each device in the
    process) and raises :class:`BackendUnavailable` with the cause and fix if anything
    fails; the probe's per-kernel errors are kept in :attr:`probe_errors`.
    """

    name = "cupy"
    kind = "device"

    def __init__(self, index: int = 0) -> None:
        quick = quick_unavailable_reason() or several_cupys()  # (CuPy imported already)
        if quick is not None:
            raise quick
        cupy = import_cupy()
        count = cuda_device_count(cupy)
        if not 0 <= index < count:
            raise BackendUnavailable(
                f"cuda:{index} was requested but only {count} CUDA device(s) are "
                f"visible (cuda:0 to cuda:{count - 1}); pick one of those.",
                reason=f"cuda:{index} is not visible",
            )
        self.xp = cupy
        self.index = index
        self.device = f"cuda:{index}"
        self._device = cupy.cuda.Device(index)
        try:
            with self._device:
                self._kernels = _kernels_of(cupy)
                if index not in _probed:
                    _probed[index] = probe(cupy, self._kernels)
                self.probe_errors = _probed[index]
        except BackendUnavailable:
            raise
        except Exception as exc:  # anything at all: the device is not usable as it is
            raise diagnose(cupy, exc) from None

    @property
    def description(self) -> str:
        props = self.xp.cuda.runtime.getDeviceProperties(self.index)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        return f"{self.device} ({name}, CuPy {self.xp.__version__})"

    def scope(self) -> ContextManager[Any]:
        # cupy.cuda.Device is a re-entrant context manager that restores the previous
        # current device on exit. CuPy is untyped: mypy sees Any.
        return self._device  # type: ignore[no-any-return]

    def asarray(self, a: Any, dtype: Any = None) -> Array:
        with self._device:
            return self.xp.asarray(a, dtype=dtype)

    def to_host(self, a: Array) -> np.ndarray:
        return np.asarray(self.xp.asnumpy(a))

    def synchronize(self) -> None:
        self._device.synchronize()

    def free_memory(self) -> Optional[float]:
        with self._device:
            return float(self.xp.cuda.runtime.memGetInfo()[0])

    def epoch_launcher(self, dtype: Any) -> Any:
        from .fused_sgd import CudaSgdEpoch

        with self._device:
            return CudaSgdEpoch(self.xp, dtype)

    def device_details(self) -> dict[str, Any]:
        info = cuda_versions(self.xp)
        props = self.xp.cuda.runtime.getDeviceProperties(self.index)
        name = props["name"]
        info["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        info["compute_capability"] = f"{props['major']}.{props['minor']}"
        return info

    def copy_from_host(self, dst: Array, host: np.ndarray) -> None:
        # ndarray.set copies on the current stream into the existing buffer.
        with self._device:
            dst.set(np.ascontiguousarray(host, dtype=dst.dtype))

    def sigmoid(self, z: Array, out: Array) -> Array:
        return self._kernels.sigmoid(z, out)

    def add_bias_sigmoid(self, z: Array, b: Array, out: Array) -> Array:
        return self._kernels.add_bias_sigmoid(z, b, out)

    def sigmoid_prime_mul(self, delta: Array, a: Array, scratch: Array) -> Array:
        return self._kernels.sigmoid_prime_mul(a, delta)

    def quadratic_output_error(self, a: Array, y: Array, out: Array, scratch: Array) -> Array:
        return self._kernels.quadratic_output_error(a, y, out)

    def sgd_update(self, param: Array, grad: Array, scale: float, decay: float = 1.0,
                   decayed: Optional[int] = None) -> Array:
        # NumPy scalars of the parameter's dtype keep the kernel in that precision;
        # ``i`` in the kernel is the element's index in the flat buffer.
        t = param.dtype.type
        decayed = param.size if decayed is None else decayed
        return self._kernels.sgd_update(grad, t(scale), t(decay), np.int64(decayed), param)


def cuda_versions(cupy: Any) -> dict[str, Any]:
    """Driver, runtime, NVRTC and CuPy versions, as far as they can be read (no raising)."""
    info: dict[str, Any] = {"cupy": getattr(cupy, "__version__", None)}
    runtime = cupy.cuda.runtime
    for key, read in (("cuda_driver", runtime.driverGetVersion),
                      ("cuda_runtime", runtime.runtimeGetVersion)):
        try:
            v = int(read())
            info[key] = _cuda_version(v) if v else None
        except Exception:
            info[key] = None
    try:
        info["nvrtc"] = ".".join(map(str, cupy.cuda.nvrtc.getVersion()))
    except Exception:
        info["nvrtc"] = None
    return info
