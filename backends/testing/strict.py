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
  ``int(x)``, ``bool(x)``, ``.tolist()``) is counted in :attr:`StrictBackend.transfers`;
* there is a *current device* per thread, as in CUDA: arrays live on the device that
  was current when they were made, and an operation on an array of another device
  raises ``ValueError`` (as CuPy does where peer access is unavailable). A network on
  ``StrictBackend(index=1)`` that forgets to enter ``backend.scope()`` is caught;
* inside :meth:`StrictBackend.stream_capture` (CUDA stream capture), matrix products
  raise ``NotImplementedError`` with CuPy's own message, since CuPy refuses every cuBLAS
  call while a stream captures, and device-to-host copies raise (they synchronise);
* it sums in another order than NumPy, as another device does (``order="reversed"``,
  the default): every matrix product runs its contraction index backwards and every
  ``sum`` adds its reduced axes backwards. cuBLAS and CuPy's reductions sum in orders of
  their own, so float32 results on a GPU differ from NumPy's by rounding; a test that
  only passes where the stand-in rounds exactly as NumPy does is not a parity test.
  ``order="numpy"`` gives NumPy's own arithmetic, bit for bit.

``GPUNET_DEVICE=strict`` (or ``strict:N``) makes ``device="auto"`` resolve to this
stand-in, in the test process and in every ``gpunet`` command it starts: the suite's
pretend-GPU pass (``tests/test_pretend_gpu.py``), which catches tests and code that
assume ``auto`` means NumPy.
"""

from __future__ import annotations

import contextlib
import functools
import numbers
import threading
from typing import Any, Iterator

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from ..base import Backend


#: CuPy's message when cuBLAS is called during stream capture
#: (``cupy_backends/cuda/libs/cublas.pyx``, ``setStream``).
CAPTURE_CUBLAS_MESSAGE = "calling cuBLAS API during stream capture is currently unsupported"

# Matrix products: cuBLAS calls in CuPy.
_CUBLAS_FUNCTIONS = frozenset({"matmul", "dot", "vdot", "inner", "outer", "tensordot",
                               "einsum", "kron"})

_thread = threading.local()


def current_device() -> int:
    """The calling thread's current strict device (0 until a scope says otherwise)."""
    return getattr(_thread, "device", 0)


#: The summation orders of :class:`StrictBackend`.
ORDERS = ("reversed", "numpy")

# Reductions whose summation order the stand-in changes (the rest are exact or
# order-free: argmax, max, comparisons).
_SUM_FUNCTIONS = frozenset({"sum"})


class _TransferCounter:
    """State shared by one backend's arrays: host copies made, capture in progress,
    and the summation order of their products and sums."""

    def __init__(self, order: str = "reversed") -> None:
        self.count = 0
        self.capturing = False
        self.reversed = order == "reversed"


def _reversed_matmul(a: np.ndarray, b: np.ndarray, **kwargs: Any) -> Any:
    """``a @ b`` with the contraction index run backwards (another summation order).

    The reversed operands are copied contiguous so that the product still goes to BLAS
    (NumPy's own loop would be exact in another way, and slow)."""
    a = np.asarray(a)
    b = np.asarray(b)
    a_rev = np.ascontiguousarray(a[..., ::-1])
    b_rev = np.ascontiguousarray(b[::-1] if b.ndim == 1 else b[..., ::-1, :])
    return np.matmul(a_rev, b_rev, **kwargs)


def _reversed_sum(a: Any, axis: Any = None, *args: Any, **kwargs: Any) -> Any:
    """``np.sum`` adding the reduced axes backwards (another summation order)."""
    if not isinstance(a, np.ndarray) or a.ndim == 0:
        return np.sum(a, axis, *args, **kwargs)
    return np.sum(np.flip(a, axis=axis), axis, *args, **kwargs)


def _reordered(name: str, func: Any, counter: _TransferCounter) -> Any:
    """``func`` (a NumPy function or method called ``name``) in the stand-in's order."""
    if not counter.reversed:
        return func
    if name == "matmul":
        return _reversed_matmul
    if name == "dot":
        return lambda a, b, *rest, **kw: (_reversed_matmul(a, b, *rest, **kw)
                                          if np.ndim(a) and np.ndim(b) else np.dot(a, b, *rest, **kw))
    if name in _SUM_FUNCTIONS:
        return _reversed_sum
    return func


def _check_device(arrays: Any) -> int:
    """The current device, after checking every strict array in ``arrays`` lives there."""
    device = current_device()
    for a in arrays:
        if isinstance(a, DeviceArray) and a._device != device:
            raise ValueError(
                f"The device where the array resides ({a._device}) is different from the "
                f"current device ({device}) (strict stand-in, as CuPy without peer access): "
                "enter backend.scope() around the operation."
            )
    return device


def _flatten(x: Any) -> Iterator[Any]:
    if isinstance(x, (tuple, list)):
        for v in x:
            yield from _flatten(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _flatten(v)
    else:
        yield x


class DeviceArray(NDArrayOperatorsMixin):
    """A NumPy array posing as a device array: no implicit host conversion."""

    __slots__ = ("_a", "_counter", "_device")

    def __init__(self, a: np.ndarray, counter: _TransferCounter, device: int = 0) -> None:
        self._a: np.ndarray = a
        self._counter = counter
        self._device = device

    # --- what CuPy forbids -------------------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed (strict device "
            "array, as in CuPy). Use backend.to_host() explicitly."
        )

    # --- explicit (counted) device-to-host copies ----------------------------
    def _transfer(self) -> np.ndarray:
        if self._counter.capturing:
            raise RuntimeError(
                "a device-to-host copy synchronises, which a capturing stream refuses "
                "(cudaErrorStreamCaptureUnsupported)"
            )
        self._counter.count += 1
        return np.array(self._a, copy=True)

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
        _refuse_during_capture(self._counter, ufunc.__name__)
        device = _check_device(_flatten((inputs, kwargs)))
        inputs = tuple(_unwrap(x) for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(_unwrap(x) for x in kwargs["out"])
        operation = getattr(ufunc, method)
        if self._counter.reversed and ufunc is np.matmul and method == "__call__":
            out = kwargs.pop("out", None)
            operation = _reversed_matmul
            if out is not None:
                kwargs["out"] = out[0]
        elif self._counter.reversed and ufunc is np.add and method == "reduce":
            inputs = (np.flip(inputs[0], axis=kwargs.get("axis", 0)),) + inputs[1:]
        result = operation(*inputs, **kwargs)
        return _wrap(result, self._counter, device)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        _refuse_during_capture(self._counter, func.__name__)
        device = _check_device(_flatten((args, kwargs)))
        args = _unwrap(args)
        kwargs = _unwrap(kwargs)
        func = _reordered(func.__name__, func, self._counter)
        return _wrap(func(*args, **kwargs), self._counter, device)

    # --- ndarray look-alike ------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: DeviceArray(self._a.T, self._counter, self._device))
    flags = property(lambda self: self._a.flags)

    @property
    def __gpunet_xp__(self) -> "_StrictNamespace":
        """The array module these arrays belong to (see ``backends.array_module``)."""
        return _StrictNamespace(self._counter)

    @property
    def device(self) -> int:
        """Index of the strict device the array lives on (CuPy: ``a.device.id``)."""
        return self._device

    def __len__(self) -> int:
        return len(self._a)

    def __getitem__(self, key: Any) -> Any:
        # A view (basic indexing launches nothing) stays on the array's device.
        return _wrap(self._a[_unwrap(key)], self._counter, self._device)

    def __setitem__(self, key: Any, value: Any) -> None:
        _check_device((self, key, value))  # a copy kernel on the current device
        self._a[_unwrap(key)] = _unwrap(value)

    def __iter__(self) -> Any:
        return (_wrap(row, self._counter, self._device) for row in self._a)

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype})"

    def __getattr__(self, name: str) -> Any:
        # Methods such as sum, argmax, reshape, astype, copy, fill, ravel. Dunder
        # names stay hidden: __array_interface__ would let NumPy read the data.
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            if self._counter.reversed and name in ("sum", "dot"):
                attr = functools.partial(_reordered(name, getattr(np, name), self._counter),
                                         self._a)

            def method(*args: Any, **kwargs: Any) -> Any:
                _refuse_during_capture(self._counter, name)
                device = _check_device(_flatten((self, args, kwargs)))
                return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)), self._counter, device)
            return method
        return attr


def _refuse_during_capture(state: _TransferCounter, name: str) -> None:
    """Raise as CuPy does for a matrix product (a cuBLAS call) while a stream captures."""
    if state.capturing and name in _CUBLAS_FUNCTIONS:
        raise NotImplementedError(CAPTURE_CUBLAS_MESSAGE)


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


def _wrap(x: Any, counter: _TransferCounter, device: int) -> Any:
    """Wrap NumPy results (arrays and NumPy scalars: they live on ``device``)."""
    if isinstance(x, np.ndarray):
        return DeviceArray(x, counter, device)
    if isinstance(x, np.generic):
        return DeviceArray(np.asarray(x), counter, device)
    if isinstance(x, tuple):
        return tuple(_wrap(v, counter, device) for v in x)
    if isinstance(x, list):
        return [_wrap(v, counter, device) for v in x]
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
        attr = _reordered(name, attr, counter)

        def function(*args: Any, **kwargs: Any) -> Any:
            # Like CuPy: new arrays on the current device, inputs must live there.
            _refuse_during_capture(counter, name)
            device = _check_device(_flatten((args, kwargs)))
            return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)), counter, device)

        function.__name__ = name
        return function


class StrictBackend(Backend):
    """NumPy arithmetic behind CuPy-like device arrays, counting host transfers.

    ``index`` is the strict device the backend owns (``device`` is ``"strict"`` for 0,
    ``"strict:N"`` otherwise); its arrays are made there and :meth:`scope` makes it
    the current device, as :class:`~backends.cupy_backend.CupyBackend` does for
    ``cuda:N``. ``order`` is how its products and sums add up: ``"reversed"`` (another
    order than NumPy's, as a GPU has) or ``"numpy"`` (NumPy's, bit for bit).
    """

    name = "strict"
    kind = "device"

    def __init__(self, index: int = 0, order: str = "reversed") -> None:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.order = order
        self._counter = _TransferCounter(order)
        self.xp = _StrictNamespace(self._counter)
        self.index = index
        self.device = "strict" if index == 0 else f"strict:{index}"

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        previous = current_device()
        _thread.device = self.index
        try:
            yield
        finally:
            _thread.device = previous

    @contextlib.contextmanager
    def stream_capture(self) -> Iterator[None]:
        """Emulate CUDA stream capture: the work runs, but what CuPy refuses raises.

        Inside, matrix products raise ``NotImplementedError`` with CuPy's message
        (:data:`CAPTURE_CUBLAS_MESSAGE`), and device-to-host copies raise. Work that
        passes here has at least no cuBLAS call and no synchronisation in it.
        """
        self._counter.capturing = True
        try:
            yield
        finally:
            self._counter.capturing = False

    @property
    def description(self) -> str:
        return f"{self.device} (NumPy behind CuPy-like device arrays, for tests)"

    @property
    def transfers(self) -> int:
        """Device-to-host copies made so far."""
        return self._counter.count

    def reset_transfers(self) -> None:
        self._counter.count = 0

    def asarray(self, a: Any, dtype: Any = None) -> DeviceArray:
        # Onto this backend's device, whatever the current one (as CupyBackend.asarray).
        if isinstance(a, DeviceArray):
            a = a._a
        elif not isinstance(a, (np.ndarray, numbers.Number, list, tuple)):
            raise TypeError(f"cannot move {type(a).__name__} to the strict device")
        return DeviceArray(np.array(a, dtype=dtype), self._counter, self.index)

    def is_device_array(self, a: Any) -> bool:
        return isinstance(a, DeviceArray)

    def to_host(self, a: Any) -> np.ndarray:
        if not isinstance(a, DeviceArray):
            raise TypeError(f"to_host expects a device array, got {type(a).__name__}")
        return a._transfer()
