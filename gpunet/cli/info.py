"""``gpunet info``: versions, backends and the devices this machine can see."""

from __future__ import annotations

import argparse
import platform
from typing import Any

import numpy as np

from .._version import __version__
from ..backends import BackendUnavailable, get_backend


def add_parser(sub: Any, formatter: type) -> None:
    info = sub.add_parser("info", help="print versions, backends and visible devices",
                          description="Print gpunet's, Python's, NumPy's and CuPy's "
                          "versions, the CUDA devices visible here, and what "
                          "--device auto would choose.", formatter_class=formatter)
    info.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(f"gpunet {__version__}")
    print(f"Python {platform.python_version()} ({platform.system()} {platform.machine()})")
    print(f"NumPy {np.__version__}{_blas()}")
    print("backends:")
    print(f"  cpu     {get_backend('cpu').description}")
    try:
        import cupy
    except ImportError:
        from ..backends.cupy_backend import INSTALL_HINT

        print(f"  cuda    unavailable: CuPy is not installed ({INSTALL_HINT})")
    else:
        print(f"  cuda    CuPy {cupy.__version__}{_cuda_versions(cupy)}")
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception:
            count = 0
        for i in range(count):
            props = cupy.cuda.runtime.getDeviceProperties(i)
            dev_name = props["name"]
            dev_name = dev_name.decode() if isinstance(dev_name, bytes) else dev_name
            print(f"  cuda:{i}  {dev_name}, {props['totalGlobalMem'] / 2**30:.1f} GiB, "
                  f"compute capability {props['major']}.{props['minor']}")
        try:  # the backend's own start-up probe: kernels compiled and run, cuBLAS
            get_backend("cuda")
        except BackendUnavailable as why:
            print(f"          unavailable: {why}")
        else:
            print("          cuda:0 passed the start-up probe (kernels, cuBLAS)")
    auto = get_backend("auto")
    print(f"auto:     {auto.device}  [{auto.selection_note}]")
    return 0


def _blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f" (BLAS: {blas.get('name')} {blas.get('version', '')})".rstrip()
    except Exception:
        return ""


def _cuda_versions(cupy: Any) -> str:
    try:
        runtime = cupy.cuda.runtime.runtimeGetVersion()
        driver = cupy.cuda.runtime.driverGetVersion()
    except Exception:
        return ""

    def fmt(v: int) -> str:  # CUDA's version numbers: 1000 * major + 10 * minor
        return f"{v // 1000}.{(v % 1000) // 10}"

    driver_text = f"driver supports CUDA {fmt(driver)}" if driver else "no CUDA driver found"
    return f", CUDA runtime {fmt(runtime)}, {driver_text}"


