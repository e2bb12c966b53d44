"""Every build of the fused kernel the CUDA launcher can run compiles and fits the GPU.

The launcher (:class:`gpunet.backends.fused_sgd.CudaSgdEpoch`) compiles one build per
dtype and row tile (``-DGPUNET_ROW_TILE``, :func:`~gpunet.backends.fused_sgd.build_options`):
seven tiles, two reals. Each is compiled here for sm_80 and sm_90 with NVRTC from the pip
wheels, as CuPy would, and ptxas's report checked: no register spills, registers × 256
threads within the register file. (tests/test_compile.py and
tests/test_kernel_resources.py check the build of every tile at once, the emulator's.)
Test ids contain ``compile``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from gpunet.backends import fused_sgd
from gpunet.backends.fused_sgd import (KERNEL_NAME, MAX_THREADS, ROW_TILES, CudaSgdEpoch,
                                       build_options, kernel_source, row_tile)
from gpunet.backends.testing import kernel_resources as kr
from gpunet.backends.testing import nvrtc


@pytest.mark.parametrize("real", ["float", "double"])
@pytest.mark.parametrize("arch", nvrtc.ARCHES)
def test_compile_every_launcher_build_fits(arch, real):
    reason = nvrtc.compiler_available()
    if reason:
        pytest.skip(reason)
    for tile in ROW_TILES:
        res = kr.fused_kernel_resources(arch, real, extra_options=build_options(real, tile)[2:])
        assert res.kernel == KERNEL_NAME
        problems = kr.launch_problems(res.registers, MAX_THREADS, 0, kr.OPTIN_SHARED_BYTES[arch],
                                      spill_bytes=res.spill_store_bytes + res.spill_load_bytes,
                                      static_shared_bytes=res.static_shared_bytes)
        assert problems == [], (tile, res)


def test_compile_row_tiles_match_the_kernel():
    """The host's tiles are the kernel's, in its order (largest first), so that
    ``row_tile(m)`` on the host is the tile the kernel runs full mini-batches with."""
    found = re.search(r"#define GPUNET_ALL_ROW_TILES\(X\) ((?:X\(\d+\) ?)+)", kernel_source())
    assert found, "GPUNET_ALL_ROW_TILES not found in the kernel"
    assert tuple(int(t) for t in re.findall(r"\d+", found.group(1))) == ROW_TILES
    assert [row_tile(m) for m in (10, 30, 32, 7, 1, 36, 20)] == [10, 10, 16, 1, 1, 12, 10]
    with pytest.raises(ValueError, match="row tile 3"):
        build_options("float", 3)


class _RecordingCupy:
    """The parts of CuPy CudaSgdEpoch touches, recording what it compiles."""

    compiled: list = []

    class RawModule:
        def __init__(self, code, options):
            _RecordingCupy.compiled.append(options)

        def get_function(self, name):
            assert name == KERNEL_NAME
            return object()

    class cuda:
        class Device:
            id = 98

        class runtime:
            cudaDevAttrMaxSharedMemoryPerBlockOptin = 97

            @staticmethod
            def deviceGetAttribute(attribute, device):
                return 227 * 1024


def test_launcher_compiles_the_build_of_each_mini_batch_size_once():
    CudaSgdEpoch._modules.clear()
    _RecordingCupy.compiled.clear()
    try:
        launcher = CudaSgdEpoch(_RecordingCupy, np.float32)
        assert _RecordingCupy.compiled == []  # nothing before a launch needs a build
        first = launcher.build(10)
        assert launcher.build(30) is first  # the same tile, 10: one build
        launcher.build(16)
        CudaSgdEpoch(_RecordingCupy, np.float64).build(10)
        assert _RecordingCupy.compiled == [build_options("float", 10),
                                           build_options("float", 16),
                                           build_options("double", 10)]
        assert fused_sgd.RAW_MODULE_OPTIONS == build_options("float", 10)[:1]
    finally:
        CudaSgdEpoch._modules.clear()
