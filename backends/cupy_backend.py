"""The CuPy (CUDA) backend: device-resident arrays and fused elementwise kernels.

CuPy is imported only when this backend is constructed, so the package imports on
machines without it. Each fused operation of :class:`backends.base.Backend` is one
``ElementwiseKernel`` launch here instead of three or four array expressions.
"""

from __future__ import annotations

from typing import Any, Callable, ContextManager, Optional

import numpy as np

from .base import Array, Backend, BackendUnavailable

INSTALL_HINT = (
    "install CuPy with `pip install 'gpunet[cuda12]'` (CUDA 12) or "
    "`pip install 'gpunet[cuda13]'` (CUDA 13), or use --device cpu"
)


def import_cupy() -> Any:
    """Import CuPy, or raise :class:`BackendUnavailable` saying what to install."""
    try:
        import cupy
    except ImportError as exc:  # not installed, or a broken install
        raise BackendUnavailable(
            f"CUDA was requested but CuPy cannot be imported ({exc}); {INSTALL_HINT}.",
            reason="CuPy is not installed (pip install 'gpunet[cuda12]' for a GPU)",
        ) from None
    return cupy


def cuda_device_count(cupy: Any) -> int:
    """Number of visible CUDA devices, or raise :class:`BackendUnavailable` why none."""
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError: no driver, no device, ...
        raise BackendUnavailable(
            "CUDA was requested but no CUDA device is visible "
            f"(CuPy says: {exc}); check the driver with `nvidia-smi` and "
            "CUDA_VISIBLE_DEVICES, or use --device cpu.",
            reason="no CUDA device is visible",
        ) from None
    if count == 0:
        raise BackendUnavailable(
            "CUDA was requested but no CUDA device is visible; check the driver with "
            "`nvidia-smi` and CUDA_VISIBLE_DEVICES, or use --device cpu.",
            reason="no CUDA device is visible",
        )
    return count


class _Kernels:
    """The fused kernels, compiled lazily by CuPy on first use (per dtype)."""

    def __init__(self, cupy: Any) -> None:
        ek = cupy.ElementwiseKernel
        self.sigmoid = ek("T z", "T a", "a = 1 / (1 + exp(-z))", "gpunet_sigmoid")
        self.add_bias_sigmoid = ek(
            "T z, T b", "T a", "a = 1 / (1 + exp(-(z + b)))", "gpunet_add_bias_sigmoid"
        )
        self.sigmoid_prime_mul = ek(
            "T a", "T delta", "delta = delta * a * (1 - a)", "gpunet_sigmoid_prime_mul"
        )
        self.quadratic_output_error = ek(
            "T a, T y", "T delta", "delta = (a - y) * a * (1 - a)", "gpunet_quadratic_delta"
        )
        self.sgd_update = ek(
            "T grad, T scale, T decay, int64 decayed",
            "T param",
            "param = (i < decayed ? decay : (T)1) * param - scale * grad",
            "gpunet_sgd_update",
        )


class CupyBackend(Backend):
    """Arrays on one CUDA device, computed by CuPy, cuBLAS and fused kernels."""

    name = "cupy"

    def __init__(self, index: int = 0) -> None:
        cupy = import_cupy()
        count = cuda_device_count(cupy)
        if not 0 <= index < count:
            raise BackendUnavailable(
                f"cuda:{index} was requested but only {count} CUDA device(s) are "
                f"visible (cuda:0 to cuda:{count - 1}); pick one of those."
            )
        self.xp = cupy
        self.index = index
        self.device = f"cuda:{index}"
        self._device = cupy.cuda.Device(index)
        self._device.use()
        self._kernels = _Kernels(cupy)
        self._stream: Any = None

    @property
    def description(self) -> str:
        props = self.xp.cuda.runtime.getDeviceProperties(self.index)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        return f"{self.device} ({name}, CuPy {self.xp.__version__})"

    def asarray(self, a: Any, dtype: Any = None) -> Array:
        with self._device:
            return self.xp.asarray(a, dtype=dtype)

    def to_host(self, a: Array) -> np.ndarray:
        return self.xp.asnumpy(a)

    def synchronize(self) -> None:
        self._device.synchronize()

    def copy_from_host(self, dst: Array, host: np.ndarray) -> None:
        # ndarray.set copies on the current stream into the existing buffer.
        dst.set(np.ascontiguousarray(host, dtype=dst.dtype))

    can_capture = True

    def capture_stream(self) -> ContextManager[Any]:
        # Capture needs a stream other than the legacy default stream.
        if self._stream is None:
            with self._device:
                self._stream = self.xp.cuda.Stream(non_blocking=True)
        return self._stream

    def capture(self, work: Callable[[], None]) -> Optional[Callable[[], None]]:
        stream = self.xp.cuda.get_current_stream()
        if stream.ptr == 0:  # the legacy default stream cannot capture
            return None
        stream.begin_capture()
        try:
            work()
        finally:
            graph = stream.end_capture()
        return lambda: graph.launch(stream)

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
