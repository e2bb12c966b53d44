"""Memory estimated before allocating: hostile or mistyped sizes are a clear error.

``--sizes 784,100000000,10`` asks for 79 billion weights. Allocating them first and
failing after (a ``MemoryError`` traceback, or minutes of swapping before one) is the
wrong order: the numbers are known from the sizes alone. A network of sizes
``[n_1, ..., n_L]`` has ``P = Σ n_l n_{l-1} + n_l`` parameters (chapter 1's weights and
biases); creating it draws them in float64 on the host (the seeded generator, so every
backend starts from the same numbers), and training holds them in the network's dtype
with a gradient and a copy at the last epoch boundary, plus each layer's activations,
weighted inputs and errors for a mini-batch. :func:`check_network_fits` compares that
estimate, for ``count`` networks, with the memory this process can have now, and says
the numbers when it does not fit, naming what to make smaller: the layers, or the
mini-batch where the mini-batch's share is the larger.

What the process can have is the least of the memory available (``MemAvailable``; the
device's free memory for CUDA) and what its own limits leave: the address-space limit
(``ulimit -v``, ``RLIMIT_AS``) less what the process already maps, and the data limit
(``ulimit -d``, ``RLIMIT_DATA``) less its data. Under such a limit NumPy's allocation
fails long before the machine's memory runs out. Small networks are never measured
against the machine's memory (reading it costs more than they do); a process limit is
cheap to read and always counts.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import numpy as np

from .parameters import n_parameters

ALWAYS_FITS = 256 * 2**20
"""Estimates below this many bytes are not checked against the machine's memory."""

UNDER_LIMIT = "memory this process may still use under its"
"""How a message names the memory a process limit leaves (then: the limit)."""


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
    """Bytes of memory this process can allocate now: the device's free memory where the
    backend has its own (:meth:`backends.base.Backend.free_memory`: CUDA's), else the
    host's (:func:`host_memory`)."""
    free = None if backend is None else backend.free_memory()
    return host_memory()[0] if free is None else float(free)


def host_memory() -> tuple[float, str]:
    """Bytes this process can allocate on the host now, and what sets that number (in
    words, for a message): the machine's available memory, or the process's own limit
    where that leaves less."""
    left, limit = limits_left()
    machine = machine_memory()
    return (left, limit) if left < machine else (machine, "memory available here")


def limits_left() -> tuple[float, str]:
    """Bytes the process's own limits still allow (infinity without any), and which
    limit that is, in words."""
    have, what = float("inf"), ""
    for limit, used, name in process_limits():
        left = max(0.0, limit - used)
        if left < have:
            have, what = left, f"{UNDER_LIMIT} {name} of {_gb(limit)}"
    return have, what


def machine_memory() -> float:
    """``MemAvailable`` on Linux (free memory plus what the page cache would give back),
    else the free pages."""
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


def process_limits() -> list[tuple[float, float, str]]:
    """The process's memory limits that are set: ``(limit, bytes already counted
    against it, its name)``. The address space (``ulimit -v``) counts every mapping
    (``VmSize``); the data limit (``ulimit -d``) private writable memory (``VmData``,
    the stack included here). Where the usage cannot be read, it counts as 0."""
    try:
        import resource
    except ImportError:  # not on this system (Windows)
        return []
    usage = _mapped()
    limits = []
    for kind, name, used in (("RLIMIT_AS", "address-space limit (ulimit -v)", usage[0]),
                             ("RLIMIT_DATA", "data limit (ulimit -d)", usage[1])):
        resource_id = getattr(resource, kind, None)
        if resource_id is None:
            continue
        try:
            soft = resource.getrlimit(resource_id)[0]
        except (OSError, ValueError):
            continue
        if soft != resource.RLIM_INFINITY and soft >= 0:
            limits.append((float(soft), used, name))
    return limits


def _mapped() -> tuple[float, float]:
    """Bytes the process maps in all (``VmSize``) and its data and stack, from
    ``/proc/self/statm`` (pages); zeros where there is no such file."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            fields = f.read().split()
        page = os.sysconf("SC_PAGE_SIZE")
        return float(fields[0]) * page, float(fields[5]) * page
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0, 0.0


def check_network_fits(sizes: Sequence[int], dtype: Any, mini_batch_size: int = 10,
                       count: int = 1, what: str = "sizes",
                       backend: Optional[Any] = None, examples: Optional[int] = None,
                       batch_what: Optional[str] = None) -> None:
    """``ValueError`` with the numbers when ``count`` networks of ``sizes`` would not fit
    in the memory this process can have (host, and the device's for a CUDA
    ``backend``).

    The mini-batch counts at most ``examples`` rows where the training set's size is
    known (a larger one is an error of its own: :func:`gpunet.model.arguments.
    check_mini_batch`). The message names ``what`` (the sizes' option) or, where the
    mini-batch's share of the estimate is the larger, ``batch_what`` (default:
    ``--batch-size`` when ``what`` is an option, else ``mini_batch_size``).
    """
    m = max(1, int(mini_batch_size))
    if examples is not None:
        m = max(1, min(m, int(examples)))
    need = count * training_bytes(sizes, dtype, m)
    # A small estimate is checked against the process's limits only (cheap to read).
    have, where = limits_left() if need < ALWAYS_FITS else host_memory()
    if need > have:
        raise ValueError(_too_large(sizes, dtype, m, count, what, batch_what, need, have,
                                    where))
    free = backend.free_memory() if need >= ALWAYS_FITS and backend is not None else None
    if free is not None and need > free:
        raise ValueError(_too_large(sizes, dtype, m, count, what, batch_what, need, free,
                                    "GPU memory available here"))


def _too_large(sizes: Sequence[int], dtype: Any, m: int, count: int, what: str,
               batch_what: Optional[str], need: float, have: float, where: str) -> str:
    """The message: the estimate, the memory there is, and what to make smaller."""
    digits = next((d for d in (1, 2, 3) if _gb(need, d) != _gb(have, d)), 4)  # not "0.6
    need_text, have_text = _gb(need, digits), _gb(have, digits)  # more than the 0.6 MiB"
    nets = f"{count} networks of " if count > 1 else ""
    stack = ("" if count == 1 else " or fewer networks per stack (--stack)"
             if what.startswith("--") else " or fewer networks in the stack")
    if where.startswith(UNDER_LIMIT):  # the process's own limit, not the machine
        stack += ", or raise the limit"
    batch = count * (training_bytes(sizes, dtype, m) - training_bytes(sizes, dtype, 0))
    if 2 * batch > need:  # the mini-batch's workspace is the larger share
        option = batch_what or ("--batch-size" if what.startswith("--") else "mini_batch_size")
        return (f"{option} {m:,}: {nets}a mini-batch of {m:,} examples through layers "
                f"{','.join(map(str, sizes))} needs about {need_text} to train, more than "
                f"the {have_text} of {where}; choose a smaller {option}{stack}.")
    return (f"{what} {','.join(map(str, sizes))}: {nets}{n_parameters(sizes):,} "
            f"parameters need about {need_text} to create and train, more than the "
            f"{have_text} of {where}; choose smaller layers{stack}.")


def _gb(n: float, digits: int = 1) -> str:
    if n >= 2**30:
        return f"{n / 2**30:,.{digits}f} GiB"
    return f"{n / 2**20:,.{digits - 1}f} MiB"
