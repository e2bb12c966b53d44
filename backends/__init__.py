"""Array backends for gpunet: one interface, a NumPy and a CuPy implementation.

>>> from backends import get_backend
>>> get_backend("cpu").description          # doctest: +ELLIPSIS
'cpu (NumPy ...)'

``get_backend`` takes ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when
CuPy and a working device are present, else the CPU; the choice and its reason are in
``backend.selection_note``). CuPy is imported only when CUDA is asked for.

The environment variable ``GPUNET_DEVICE`` sets what ``"auto"`` (and ``None``) means,
like ``KERAS_BACKEND``: ``GPUNET_DEVICE=cpu gpunet train`` trains on the CPU. A device
named explicitly (``device="cuda:1"``, ``--device cpu``) wins over it.

Other devices are *registered* (:func:`register_device`): a module that defines a
backend registers a device name for it when imported, and the modules named in the
environment variable ``GPUNET_BACKEND_MODULES`` (comma-separated) are imported the first
time a device name that is not ``cpu`` or ``cuda`` is resolved. That is how the tests
have the strict stand-in for a GPU (:mod:`backends.testing`, whose import registers
``"strict"`` and ``"strict:N"``: NumPy arithmetic in another summation order behind
CuPy-like device arrays) in their own process and in every process they start:
``tests/conftest.py`` imports it and sets ``GPUNET_BACKEND_MODULES=gpunet.backends.testing``,
so ``GPUNET_DEVICE=strict python -m pytest`` is the suite's pretend-GPU pass, in which
``auto`` means a device that is not NumPy, as it does on a machine with a GPU. The
runtime itself never imports the test machinery.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
from typing import Any, Callable, Optional, Union

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
    "DEVICE_ENV",
    "BACKEND_MODULES_ENV",
    "DeviceLike",
    "register_device",
    "registered_devices",
]

DEVICES_HELP = "'cpu', 'cuda', 'cuda:N' (N = device index) or 'auto'"

DEVICE_ENV = "GPUNET_DEVICE"
"""The environment variable that sets the device ``auto`` resolves to."""

BACKEND_MODULES_ENV = "GPUNET_BACKEND_MODULES"
"""The environment variable naming modules (comma-separated) that register devices when
imported; they are imported when a device name other than ``cpu`` or ``cuda`` is
resolved (the tests name :mod:`backends.testing`, the strict stand-in)."""

_CUDA = re.compile(r"^cuda(?::(\d+))?$")
_REGISTERED_NAME = re.compile(r"^([a-z][a-z0-9_]*)(?::(\d+))?$")
_BUILT_IN = ("cpu", "cuda", "auto")

BackendFactory = Callable[[int], Backend]
"""What makes a registered device's backend: its index N (0 for ``name``) in, the
backend out."""

_registered: dict[str, BackendFactory] = {}


def register_device(name: str, factory: BackendFactory) -> None:
    """Make ``name`` and ``name:N`` devices: :func:`get_backend` resolves them to
    ``factory(N)`` (``factory(0)`` for ``name``), and ``GPUNET_DEVICE`` may name them.

    ``name`` is a lower-case word other than ``cpu``, ``cuda`` and ``auto``;
    registering it again replaces its factory.
    """
    match = _REGISTERED_NAME.match(name)
    if match is None or match.group(2) is not None or name in _BUILT_IN:
        raise ValueError(f"cannot register device {name!r}: a device name is a lower-case "
                         f"word other than {', '.join(_BUILT_IN)}")
    _registered[name] = factory


def registered_devices() -> tuple[str, ...]:
    """The names registered so far (after importing ``GPUNET_BACKEND_MODULES``)."""
    _import_backend_modules()
    return tuple(_registered)


def _import_backend_modules() -> None:
    """Import the modules ``GPUNET_BACKEND_MODULES`` names (each registers its devices);
    ``ValueError`` naming the variable for one that cannot be imported."""
    value = os.environ.get(BACKEND_MODULES_ENV, "")
    for module in (m.strip() for m in value.split(",")):
        if not module or module in sys.modules:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"{BACKEND_MODULES_ENV}={value!r}: cannot import {module} "
                             f"({exc}); fix the name or unset it.") from None


def _registered_backend(name: str) -> Optional[Backend]:
    """The backend of a registered device name, or ``None`` for a name not registered."""
    match = _REGISTERED_NAME.match(name)
    if match is None or match.group(1) in _BUILT_IN:
        return None
    _import_backend_modules()
    factory = _registered.get(match.group(1))
    return None if factory is None else factory(int(match.group(2) or 0))

DeviceLike = Union[str, Backend, None]
"""A device as users write it (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``, ``None``) or a backend."""


def get_backend(device: DeviceLike = "auto") -> Backend:
    """Return the backend for ``device``.

    ``device`` is ``"cpu"``, ``"cuda"`` (device 0), ``"cuda:N"``, ``"auto"`` (or
    ``None``, the same: the device ``GPUNET_DEVICE`` names if set, else CUDA when it
    works here, else the CPU), or a ready :class:`Backend`, returned unchanged.

    Raises ``ValueError`` for a device name it does not know (or an invalid
    ``GPUNET_DEVICE``), and :class:`BackendUnavailable` (one line naming the cause and
    the fix) when CUDA is asked for and cannot be had.
    """
    if isinstance(device, Backend):
        return device
    if device is None:
        device = "auto"
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as {DEVICES_HELP}, got {device!r}")
    name = device.strip().lower()
    if name == "auto":
        from_env = os.environ.get(DEVICE_ENV, "").strip().lower()
        if from_env and from_env != "auto":
            if from_env != "cpu" and not (_CUDA.match(from_env) or _is_registered(from_env)):
                raise ValueError(
                    f"{DEVICE_ENV}={os.environ[DEVICE_ENV]!r} is not a device; set it to "
                    f"{DEVICES_HELP}, or unset it."
                )
            try:
                backend = _named_backend(from_env)
            except BackendUnavailable as why:
                raise BackendUnavailable(f"{why} (the device came from {DEVICE_ENV}={from_env})",
                                         reason=why.reason) from None
            backend.selection_note = f"{DEVICE_ENV} chose {backend.device}"
            return backend
        try:
            backend = _cuda_backend(0)
        except BackendUnavailable as why:
            backend = NumpyBackend()
            backend.selection_note = f"auto chose cpu: {why.reason}"
        else:
            backend.selection_note = "auto chose cuda:0"
        logging.getLogger(__name__).info("%s", backend.selection_note)
        return backend
    return _named_backend(name, device)


def _named_backend(name: str, original: Optional[str] = None) -> Backend:
    """The backend of a device name other than ``auto`` (lower-case, stripped)."""
    if name == "cpu":
        return NumpyBackend()
    match = _CUDA.match(name)
    if match:
        return _cuda_backend(int(match.group(1) or 0))
    backend = _registered_backend(name)
    if backend is not None:
        return backend
    raise ValueError(f"unknown device {original if original is not None else name!r}; "
                     f"use {DEVICES_HELP}.")


def _is_registered(name: str) -> bool:
    """Whether ``name`` (``name`` or ``name:N``) is a registered device's."""
    match = _REGISTERED_NAME.match(name)
    return match is not None and match.group(1) in registered_devices()


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
