"""A strict stand-in for a GPU backend, for testing on machines without one.

CI has no GPU, yet the bugs that only show on CuPy are the ones worth catching early:
code that hands a device array to NumPy (CuPy raises ``TypeError`` on implicit
conversion), code that mixes host and device arrays in one operation (CuPy raises),
and code that quietly copies results to the host inside the training loop (CuPy
allows it, but every copy synchronises the device and stalls the epoch).

:class:`StrictBackend` computes with NumPy but hands out :class:`DeviceArray`
wrappers that behave like ``cupy.ndarray`` in exactly those respects:

* ``numpy.asarray(x)`` raises ``TypeError``, as CuPy does;
* mixing a ``numpy.ndarray`` with a device array in a ufunc or array function raises;
* every device-to-host copy (``to_host``, ``.get()``, ``.item()``, ``float(x)``,
  ``int(x)``, ``bool(x)``, ``.tolist()``) is counted in :attr:`StrictBackend.transfers`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from .base import Backend


class _TransferCounter:
    def __init__(self) -> None:
        self.count = 0


class DeviceArray(NDArrayOperatorsMixin):
    """A NumPy array posing as a device array: no implicit host conversion."""

    __slots__ = ("_a", "_counter")

    def __init__(self, a: np.ndarray, counter: _TransferCounter) -> None:
        self._a = a
        self._counter = counter

    # --- what CuPy forbids -------------------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed (strict device "
            "array, as in CuPy). Use backend.to_host() explicitly."
        )

    # --- explicit (counted) device-to-host copies ----------------------------
    def _transfer(self) -> np.ndarray:
        self._counter.count += 1
        return self._a.copy()

    def get(self) -> np.ndarray:
        return self._transfer()

    def item(self) -> Any:
        return self._transfer().item()

    def tolist(self) -> Any:
        return self._transfer().tolist()

    def __float__(self) -> float:
        return float(self._transfer())

    def __int__(self) -> int:
        return int(self._transfer())

    def __index__(self) -> int:
        return int(self._transfer())

    def __bool__(self) -> bool:
        return bool(self._transfer())

    # --- array protocol ----------------------------------------------------
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(_unwrap(x) for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(_unwrap(x) for x in kwargs["out"])
        result = getattr(ufunc, method)(*inputs, **kwargs)
        return _wrap(result, self._counter)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        args = _unwrap(args)
        kwargs = _unwrap(kwargs)
        return _wrap(func(*args, **kwargs), self._counter)

    # --- ndarray look-alike ------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: DeviceArray(self._a.T, self._counter))
    flags = property(lambda self: self._a.flags)

    @property
    def __gpunet_xp__(self) -> "_StrictNamespace":
        """The array module these arrays belong to (see ``backends.array_module``)."""
        return _StrictNamespace(self._counter)

    def __len__(self) -> int:
        return len(self._a)

    def __getitem__(self, key: Any) -> Any:
        return _wrap(self._a[_unwrap(key)], self._counter)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._a[_unwrap(key)] = _unwrap(value)

    def __iter__(self) -> Any:
        return (_wrap(row, self._counter) for row in self._a)

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype})"

    def __getattr__(self, name: str) -> Any:
        # Methods such as sum, argmax, reshape, astype, copy, fill, ravel. Dunder
        # names stay hidden: __array_interface__ would let NumPy read the data.
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            def method(*args: Any, **kwargs: Any) -> Any:
                return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)), self._counter)
            return method
        return attr


def _unwrap(x: Any) -> Any:
    """Replace device arrays by their NumPy arrays; reject bare host arrays."""
    if isinstance(x, DeviceArray):
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(
            "A host numpy.ndarray was mixed with device arrays (CuPy raises here too); "
            "move it to the device with backend.asarray() first."
        )
    if isinstance(x, tuple):
        return tuple(_unwrap(v) for v in x)
    if isinstance(x, list):
        return [_unwrap(v) for v in x]
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(x: Any, counter: _TransferCounter) -> Any:
    """Wrap NumPy results (arrays and NumPy scalars: they live on the 'device')."""
    if isinstance(x, np.ndarray):
        return DeviceArray(x, counter)
    if isinstance(x, np.generic):
        return DeviceArray(np.asarray(x), counter)
    if isinstance(x, tuple):
        return tuple(_wrap(v, counter) for v in x)
    if isinstance(x, list):
        return [_wrap(v, counter) for v in x]
    return x


class _StrictNamespace:
    """``xp`` of the strict backend: NumPy's functions, returning device arrays."""

    def __init__(self, counter: _TransferCounter) -> None:
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        attr = getattr(np, name)
        if isinstance(attr, np.ufunc) or not callable(attr) or isinstance(attr, type):
            # ufuncs dispatch through DeviceArray.__array_ufunc__ already; dtypes
            # and constants pass through unchanged.
            return attr
        counter = self._counter

        def function(*args: Any, **kwargs: Any) -> Any:
            return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)), counter)

        function.__name__ = name
        return function


class StrictBackend(Backend):
    """NumPy arithmetic behind CuPy-like device arrays, counting host transfers."""

    name = "strict"
    device = "strict"

    def __init__(self, capture: bool = False) -> None:
        self._counter = _TransferCounter()
        self.xp = _StrictNamespace(self._counter)
        self.can_capture = capture
        self.captures = 0

    def capture(self, work: Any) -> Any:
        """Emulate graph capture: record nothing, replay by calling ``work``.

        Like a CUDA graph capture, capturing does *not* run the work; the caller must
        replay it. Training code that forgets to is caught by the parity tests.
        """
        if not self.can_capture:
            return None
        self.captures += 1
        return work

    @property
    def description(self) -> str:
        return "strict (NumPy behind CuPy-like device arrays, for tests)"

    @property
    def transfers(self) -> int:
        """Device-to-host copies made so far."""
        return self._counter.count

    def reset_transfers(self) -> None:
        self._counter.count = 0

    def asarray(self, a: Any, dtype: Any = None) -> DeviceArray:
        if isinstance(a, DeviceArray):
            a = a._a
        elif not isinstance(a, (np.ndarray, numbers.Number, list, tuple)):
            raise TypeError(f"cannot move {type(a).__name__} to the strict device")
        return DeviceArray(np.array(a, dtype=dtype), self._counter)

    def is_device_array(self, a: Any) -> bool:
        return isinstance(a, DeviceArray)

    def to_host(self, a: Any) -> np.ndarray:
        if not isinstance(a, DeviceArray):
            raise TypeError(f"to_host expects a device array, got {type(a).__name__}")
        return a._transfer()
