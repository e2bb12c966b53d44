"""Test machinery for the backends: what proves GPU code right on a machine without a GPU.

Nothing at run time imports this package. Importing it registers the ``strict`` device
(:func:`backends.register_device`), which the tests do: ``tests/conftest.py`` imports it
and names it in ``GPUNET_BACKEND_MODULES`` for the processes they start, so that
``GPUNET_DEVICE=strict`` resolves there too (the pretend-GPU pass):

* :mod:`.strict`: :class:`StrictBackend`, a stand-in for a GPU backend (CuPy-like device
  arrays that refuse implicit host conversion, counted transfers, a current device per
  thread, another summation order than NumPy's);
* :mod:`.nvrtc`: every CUDA kernel compiled with NVRTC from the pip wheels, no GPU or
  driver needed;
* :mod:`.kernel_resources`: the compiled fused kernel's registers, spills and shared
  memory, from ptxas;
* :mod:`.emulator`: the fused kernel's CUDA source compiled for the CPU and run thread by
  thread.
"""

from .. import register_device
from .strict import (
    CAPTURE_CUBLAS_MESSAGE,
    ORDERS,
    DeviceArray,
    StrictBackend,
    current_device,
)

register_device("strict", StrictBackend)

__all__ = ["CAPTURE_CUBLAS_MESSAGE", "ORDERS", "DeviceArray", "StrictBackend",
           "current_device"]
