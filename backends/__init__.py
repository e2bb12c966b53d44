"""Array backends for gpunet: one interface, a NumPy and a CuPy implementation.

>>> from backends import get_backend
>>> get_backend("cpu").description          # doctest: +ELLIPSIS
'cpu (NumPy ...)'

``get_backend`` takes ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when
CuPy and a device are present, else the CPU; the choice and its reason are in
``backend.selection_note``). CuPy is imported only when CUDA is asked for.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Union

import numpy as np

from .base import Array, Backend, BackendUnavailable
from .numpy_backend import NumpyBackend

__all__ = [
    "Array",
    "Backend",
    "BackendUnavailable",
    "NumpyBackend",
    "get_backend",
    "array_module",
    "DEVICES_HELP",
    "DeviceLike",
]

DEVICES_HELP = "'cpu', 'cuda', 'cuda:N' (N = device index) or 'auto'"

_CUDA = re.compile(r"^cuda(?::(\d+))?$")

DeviceLike = Union[str, Backend, None]
"""A device as users write it (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``, ``None``) or a backend."""


def get_backend(device: DeviceLike = "auto") -> Backend:
    """Return the backend for ``device``.

    ``device`` is ``"cpu"``, ``"cuda"`` (device 0), ``"cuda:N"``, ``"auto"`` (or
    ``None``, the same), or a ready :class:`Backend`, returned unchanged.

    Raises ``ValueError`` for a device name it does not know, and
    :class:`BackendUnavailable` (one line naming the fix) when CUDA is asked for and
    cannot be had.
    """
    if isinstance(device, Backend):
        return device
    if device is None:
        device = "auto"
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as {DEVICES_HELP}, got {device!r}")
    name = device.strip().lower()
    if name == "cpu":
        return NumpyBackend()
    if name == "auto":
        try:
            backend: Backend = _cuda_backend(0)
        except BackendUnavailable as why:
            backend = NumpyBackend()
            backend.selection_note = f"auto chose cpu: {why.reason}"
        else:
            backend.selection_note = "auto chose cuda:0"
        logging.getLogger(__name__).info("%s", backend.selection_note)
        return backend
    match = _CUDA.match(name)
    if match:
        return _cuda_backend(int(match.group(1) or 0))
    raise ValueError(f"unknown device {device!r}; use {DEVICES_HELP}.")


def _cuda_backend(index: int) -> Backend:
    from .cupy_backend import CupyBackend

    return CupyBackend(index)


def array_module(*arrays: Any) -> Any:
    """The array module (``numpy`` or ``cupy``, or the strict stand-in) of ``arrays``.

    Like ``cupy.get_array_module``, but never imports CuPy itself.
    """
    for a in arrays:
        namespace = getattr(a, "__gpunet_xp__", None)
        if namespace is not None:
            return namespace
        if type(a).__module__.split(".")[0] == "cupy":
            return sys.modules["cupy"]
    return np
