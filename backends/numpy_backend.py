"""The NumPy (CPU) backend: plain array expressions, written in place."""

from __future__ import annotations

import numpy as np

from .base import Array, Backend


class NumpyBackend(Backend):
    """Arrays on the host, computed by NumPy and its BLAS."""

    name = "numpy"
    xp = np
    device = "cpu"

    @property
    def description(self) -> str:
        return f"cpu (NumPy {np.__version__})"

    def to_host(self, a: Array) -> np.ndarray:
        return np.asarray(a)

    def sigmoid(self, z: Array, out: Array) -> Array:
        # exp(-z) overflows to inf for very negative z, and 1 / inf = 0 is the right
        # limit, so the overflow warning is noise here.
        with np.errstate(over="ignore"):
            return super().sigmoid(z, out)
