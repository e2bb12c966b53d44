"""Test machinery for the backends: what proves GPU code right on a machine without a GPU.

Nothing at run time imports this package, except :func:`backends.get_backend` when a
test asks for the ``strict`` device by name (``GPUNET_DEVICE=strict``):

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

from .strict import (
    CAPTURE_CUBLAS_MESSAGE,
    ORDERS,
    DeviceArray,
    StrictBackend,
    current_device,
)

__all__ = ["CAPTURE_CUBLAS_MESSAGE", "ORDERS", "DeviceArray", "StrictBackend",
           "current_device"]
