"""The array-backend interface that gpunet's network code is written against.

A backend bundles four things (docs/backends.md: what a new backend must provide):

* ``xp``, the array module (``numpy`` or ``cupy``) for everything the two share;
* where the arrays live (``device``) and how they move: ``asarray`` copies host data
  to the device once, ``to_host`` copies results back;
* its declared *capabilities*, which the rest of gpunet reads instead of telling
  backends apart by name: :attr:`Backend.kind` (host or device memory),
  :attr:`Backend.supports_out` (the array module writes ``out=`` in place),
  :meth:`Backend.free_memory`, :meth:`Backend.epoch_launcher` (the fused kernel's
  launcher), :meth:`Backend.device_details` and :attr:`Backend.probe_errors`;
* a handful of *fused* operations on the training hot path, where one kernel beats a
  chain of array expressions (and where NumPy can at least avoid temporaries).

Every fused operation writes into an ``out`` (or in-place) argument, so the training
loop allocates its buffers once and never inside an epoch.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import Any, ContextManager, Literal, Optional, Sequence

import numpy as np

Array = Any
"""An array of the backend's module: ``numpy.ndarray`` or ``cupy.ndarray``."""

Kind = Literal["host", "device"]
"""Where a backend's arrays live: see :attr:`Backend.kind`."""


class BackendUnavailable(RuntimeError):
    """The requested device cannot be used here; the message says how to fix it.

    ``reason`` is the cause in a few words (for ``auto``'s note), the message the
    whole line a user reads.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class Backend(ABC):
    """One array module on one device, plus the fused operations of training."""

    #: short name of the implementation (``"numpy"``, ``"cupy"``), for reports and
    #: messages only: gpunet never tells backends apart by it (docs/backends.md).
    name: str = "abstract"
    #: the array module.
    xp: Any = None
    #: the device as a user writes it: ``"cpu"`` or ``"cuda:0"``.
    device: str = "cpu"
    #: why ``get_backend("auto")`` chose this backend (empty when chosen explicitly).
    selection_note: str = ""

    # -------------------------------------------------------------- capabilities
    #: ``"host"``: the arrays are NumPy arrays in the machine's memory, so NumPy's own
    #: functions work on them with no copy (the cpu engine needs that); ``"device"``:
    #: they live on an accelerator (or its stand-in) and move only through
    #: :meth:`asarray` and :meth:`to_host`.
    kind: Kind = "host"
    #: whether ``xp``'s ufuncs and functions (``matmul``, ``sum``, ``take``...) write
    #: into an ``out=`` array in place: the eager engine's buffers, allocated once, need
    #: it.
    supports_out: bool = True
    #: the start-up self-test's results, ``(operation, error, tolerance)`` each, where
    #: the backend runs one when it is made (CUDA's probe); ``None`` where it runs none.
    probe_errors: Optional[Sequence[tuple[str, float, float]]] = None

    def free_memory(self) -> Optional[float]:
        """Bytes the device can still allocate, or ``None`` where the arrays live in the
        host's memory (which :mod:`gpunet.model.memory` measures itself)."""
        return None

    def epoch_launcher(self, dtype: Any) -> Optional[Any]:
        """The fused SGD kernel's launcher on this device for ``dtype``
        (:class:`backends.fused_sgd.CudaSgdEpoch`), or ``None`` where there is none."""
        return None

    def device_details(self) -> dict[str, Any]:
        """What a report says about the device beyond :attr:`description` (driver and
        library versions, the GPU's name): empty on the CPU."""
        return {}

    # ------------------------------------------------------------------ identity
    @property
    @abstractmethod
    def description(self) -> str:
        """Human-readable device name, e.g. ``cuda:0 (NVIDIA H100 80GB HBM3)``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

    # ------------------------------------------------------------ data movement
    def asarray(self, a: Any, dtype: Any = None) -> Array:
        """Copy host data (or a device array) onto this device, optionally casting."""
        return self.xp.asarray(a, dtype=dtype)

    @abstractmethod
    def to_host(self, a: Array) -> np.ndarray:
        """Copy a device array to the host as a new NumPy array (synchronises).

        Always a copy, on every backend, so that later in-place training never
        changes what the caller holds.
        """

    def is_device_array(self, a: Any) -> bool:
        """Whether ``a`` is already an array of this backend (no copy needed)."""
        return isinstance(a, self.xp.ndarray)

    def synchronize(self) -> None:
        """Wait for all queued device work to finish (for honest timing)."""

    def copy_from_host(self, dst: Array, host: np.ndarray) -> None:
        """Copy host data into the existing device array ``dst`` (no new buffer)."""
        self.xp.copyto(dst, self.asarray(host, dtype=dst.dtype))

    # ------------------------------------------------------------ device scope
    def scope(self) -> ContextManager[Any]:
        """Context in which this backend's device is the calling thread's current one.

        CuPy allocates and launches on the *current* device, which is per thread; a
        network on ``cuda:1`` (or one trained from another thread) must enter this
        around every device operation, or it would allocate and launch on whatever
        device the thread happens to have. Re-entrant; a no-op on the CPU.
        """
        return contextlib.nullcontext()

    # ---------------------------------------------------------- fused operations
    # The NumPy-flavoured defaults below use only ``self.xp`` and in-place ufuncs,
    # so they are correct for any array module; the CuPy backend replaces them with
    # single-kernel versions.

    def take_rows(self, a: Array, indices: Array, out: Array) -> Array:
        """``out[...] = a[indices]`` (rows gathered along axis 0) straight into ``out``."""
        return self.xp.take(a, indices, axis=0, out=out)

    def sigmoid(self, z: Array, out: Array) -> Array:
        """``out = 1 / (1 + exp(-z))``; ``out`` may be ``z``. Overflow saturates to 0."""
        xp = self.xp
        xp.negative(z, out=out)
        # exp(-z) overflows to inf for very negative z, and 1 / inf = 0 is the right
        # limit, so NumPy's overflow warning is noise here.
        with np.errstate(over="ignore"):
            xp.exp(out, out=out)
        out += 1
        xp.reciprocal(out, out=out)
        return out

    def add_bias_sigmoid(self, z: Array, b: Array, out: Array) -> Array:
        """``out = σ(z + b)``, ``b`` broadcast along rows; ``out`` may be ``z``.

        This closes every layer's feedforward: ``a^l = σ(a^{l-1} (w^l)ᵀ + (b^l)ᵀ)``.
        """
        self.xp.add(z, b, out=out)
        return self.sigmoid(out, out)

    def sigmoid_prime_mul(self, delta: Array, a: Array, scratch: Array) -> Array:
        """``delta *= σ'(z) = a (1 - a)`` where ``a = σ(z)``; ``scratch`` is a work buffer."""
        xp = self.xp
        xp.subtract(1, a, out=scratch)
        delta *= a
        delta *= scratch
        return delta

    def quadratic_output_error(self, a: Array, y: Array, out: Array, scratch: Array) -> Array:
        """Quadratic cost's ``δ^L = (a - y) ⊙ σ'(z^L)``, with ``σ'(z) = a (1 - a)``."""
        self.xp.subtract(a, y, out=out)
        return self.sigmoid_prime_mul(out, a, scratch)

    def cross_entropy_output_error(self, a: Array, y: Array, out: Array) -> Array:
        """Cross-entropy cost's ``δ^L = a - y`` (the σ' term cancels; never NaN)."""
        return self.xp.subtract(a, y, out=out)

    def sgd_update(self, param: Array, grad: Array, scale: float, decay: float = 1.0,
                   decayed: Optional[int] = None) -> Array:
        """In place: ``param = decay * param - scale * grad``. ``grad`` is clobbered.

        With ``scale = η/m`` and ``decay = 1 - ηλ/n`` this is the L2-regularized
        SGD step (chapter 3, eq. 93, "Regularization"). Only the first ``decayed`` entries of the (flat)
        ``param`` decay (all when ``None``): gpunet keeps the weights there and the
        biases, which are not decayed, after them.
        """
        grad *= scale
        if decay != 1.0:
            if decayed is None:
                param *= decay
            else:
                param[:decayed] *= decay
        param -= grad
        return param
