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
        # A copy, as on a GPU: what the caller holds must not change under training.
        return np.array(a, copy=True)
