"""Memory estimated before allocating: hostile or mistyped sizes are a clear error.

``--sizes 784,100000000,10`` asks for 79 billion weights. Allocating them first and
failing after (a ``MemoryError`` traceback, or minutes of swapping before one) is the
wrong order: the numbers are known from the sizes alone. A network of sizes
``[n_1, ..., n_L]`` has ``P = Σ n_l n_{l-1} + n_l`` parameters (chapter 1's weights and
biases); creating it draws them in float64 on the host (the seeded generator, so every
backend starts from the same numbers), and training holds them in the network's dtype
with a gradient and a copy at the last epoch boundary, plus each layer's activations,
weighted inputs and errors for a mini-batch. :func:`check_network_fits` compares that
estimate, for ``count`` networks, with the memory available now, and says the numbers
when it does not fit. Small networks are never measured against the system (reading the
available memory costs more than they do).
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import numpy as np

from .parameters import n_parameters

ALWAYS_FITS = 256 * 2**20
"""Estimates below this many bytes are not checked against the system."""


def training_bytes(sizes: Sequence[int], dtype: Any, mini_batch_size: int) -> int:
    """Bytes one network of ``sizes`` needs to be created and trained (an estimate).

    The float64 draws of its initial parameters, then in ``dtype`` the parameters, their
    gradient, the epoch-boundary copy and an engine's working copy (``4 P``), and the
    mini-batch workspace (inputs, targets and three buffers per layer and row).
    """
    itemsize = np.dtype(dtype).itemsize
    P = n_parameters([int(n) for n in sizes])
    per_row = int(sizes[0]) + int(sizes[-1]) + 3 * sum(int(n) for n in sizes[1:])
    return int(8 * P + itemsize * (4 * P + 2 * int(mini_batch_size) * per_row))


def available_memory(backend: Optional[Any] = None) -> float:
    """Bytes of memory available now: the device's free memory for a CUDA backend,
    else the host's (``MemAvailable`` on Linux: free memory plus what the page cache
    would give back)."""
    if backend is not None and getattr(backend, "name", "") == "cupy":
        with backend.scope():
            return float(backend.xp.cuda.runtime.memGetInfo()[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2.0**31


def check_network_fits(sizes: Sequence[int], dtype: Any, mini_batch_size: int = 10,
                       count: int = 1, what: str = "sizes",
                       backend: Optional[Any] = None) -> None:
    """``ValueError`` with the numbers when ``count`` networks of ``sizes`` would not fit
    in the memory available (host, and the device's for a CUDA ``backend``)."""
    need = count * training_bytes(sizes, dtype, max(1, int(mini_batch_size)))
    if need < ALWAYS_FITS:
        return
    places = [("memory", None)]
    if backend is not None and getattr(backend, "name", "") == "cupy":
        places.append(("GPU memory", backend))
    for name, where in places:
        have = available_memory(where)
        if need > have:
            nets = f"{count} networks of " if count > 1 else ""
            raise ValueError(
                f"{what} {','.join(map(str, sizes))}: {nets}{n_parameters(sizes):,} "
                f"parameters need about {_gb(need)} to create and train, more than the "
                f"{_gb(have)} of {name} available here; choose smaller layers"
                + (" or fewer networks per stack (--stack)" if count > 1 else "") + ".")


def _gb(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"
