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
        return f"{self.device} (NumPy {np.__version__})"

    def to_host(self, a: Array) -> np.ndarray:
        # A copy, as on a GPU: what the caller holds must not change under training.
        return np.array(a, copy=True)

    def take_rows(self, a: Array, indices: Array, out: Array) -> Array:
        """``out[...] = a[indices]``, rows gathered straight into ``out``.

        NumPy's ``take`` in its default ``mode="raise"`` gathers into a temporary as
        large as ``out`` and then copies it over (docs/performance.md). The indices come
        from permutations, all valid, so ``mode="clip"`` (which writes ``out``
        directly) never clips.
        """
        return np.take(a, indices, axis=0, out=out, mode="clip")
