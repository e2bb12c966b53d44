"""Every CUDA kernel gpunet ships compiles, for sm_80 and sm_90, in float32 and float64.

With NVRTC from the pip wheels and no GPU or driver (:mod:`gpunet.backends.testing.nvrtc`):
the fused ``ElementwiseKernel`` sources exactly as CuPy generates them for gpunet's
calls, and every ``backends/kernels/*.cu`` file as its ``RawModule`` compiles it. A
kernel that does not compile fails here, in CI, not on a user's GPU. Test ids contain
``compile``. Without CuPy installed these tests skip; if CuPy's private compile API
moved, they fail (never skip), naming what moved.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpunet.backends.testing import nvrtc
from gpunet.backends.cupy_backend import KERNELS, KernelSpec


SHIPPED = nvrtc.shipped_kernels()


def _need_cupy():
    reason = nvrtc.compiler_available()
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("arch", nvrtc.ARCHES)
@pytest.mark.parametrize("kernel", SHIPPED, ids=[f"compile-{k.id}" for k in SHIPPED])
def test_compile_shipped_kernel(kernel, arch):
    _need_cupy()
    compiled = nvrtc.compile_kernel_source(kernel, arch)
    assert compiled.binary[:4] == b"\x7fELF"  # a cubin for that architecture
    assert compiled.arch == arch


def test_compile_collects_every_kernel():
    """The list compiled above holds every fused kernel (both precisions) and every
    ``.cu`` file in backends/kernels (both reals): nothing can drop out unnoticed."""
    ids = {k.id for k in SHIPPED}
    for spec in KERNELS:
        for real in ("float", "double"):
            assert any(i.startswith(f"{spec.name}-{real}-") for i in ids), spec.name
    for path in nvrtc.cuda_files():
        assert {f"{path.stem}-float", f"{path.stem}-double"} <= ids, path.name
    assert len(ids) == len(SHIPPED)


def test_compile_generates_cupys_source_for_gpunets_launches():
    _need_cupy()
    spec = KERNELS[1]  # add_bias_sigmoid: a strided (broadcast) bias in a mini-batch
    source = nvrtc.elementwise_kernel_source(spec, np.float32, ("a2", "a2s", "a2"))
    assert 'extern "C" __global__ void gpunet_add_bias_sigmoid(' in source
    assert "const CArray<float, 2, 1, 1> _raw_z" in source
    assert "const CArray<float, 2, 0, 1> _raw_b" in source  # not contiguous
    assert "CIndexer<2, 1> _ind" in source and spec.operation in source
    update = nvrtc.elementwise_kernel_source(KERNELS[-1], np.float64, KERNELS[-1].launches[0])
    assert "const double scale" in update and "const long long decayed" in update


def test_compile_fails_on_a_planted_error(tmp_path):
    """A kernel with an error must fail to compile, loudly, with NVRTC's log."""
    _need_cupy()
    broken = KernelSpec("gpunet_broken", "T z", "T a", "a = 1 / (1 + exp(-z)", launches=(("a1", "a1"),),
                        formula="")
    kernel = next(nvrtc.elementwise_sources([broken]))
    with pytest.raises(nvrtc.CompileError, match=r"gpunet_broken.*error"):
        nvrtc.compile_kernel_source(kernel, "sm_80")
    # a RawModule source: an undeclared name, only wrong in double precision
    (tmp_path / "planted.cu").write_text(
        'extern "C" __global__ void planted(GPUNET_REAL *x) {\n'
        '#if GPUNET_IS_DOUBLE\n  x[0] = undeclared;\n#endif\n  x[threadIdx.x] *= 2; }\n')
    float_src, double_src = nvrtc.raw_module_sources(tmp_path)
    nvrtc.compile_kernel_source(float_src, "sm_90")
    double_src = nvrtc.KernelSource(double_src.id, double_src.options + ("-DGPUNET_IS_DOUBLE=1",),
                                    False, double_src.load)
    with pytest.raises(nvrtc.CompileError, match="undeclared"):
        nvrtc.compile_kernel_source(double_src, "sm_90")


def test_compile_helper_takes_any_source_and_lowers_template_names():
    """``compile_cuda_source`` is the entry point for kernels to come (the fused engine)."""
    _need_cupy()
    source = ("template <typename T> __global__ void scale(T *x, T a) { x[threadIdx.x] *= a; }\n")
    compiled = nvrtc.compile_cuda_source(source, "sm_80", ("-std=c++17",),
                                         name_expressions=("scale<float>", "scale<double>"))
    assert set(compiled.lowered_names) == {"scale<float>", "scale<double>"}
    assert all(name.startswith("_Z") for name in compiled.lowered_names.values())
    with pytest.raises(ValueError, match="sm_80"):
        nvrtc.compile_cuda_source(source, "80")


def test_compile_fails_loudly_if_cupys_private_api_moves(monkeypatch):
    """The compile check rests on private CuPy functions: if one moves, the tests fail
    naming it (they never skip, so the check cannot quietly vanish)."""
    _need_cupy()
    from cupy._core import _kernel

    monkeypatch.delattr(_kernel, "_get_elementwise_kernel_code")
    with pytest.raises(nvrtc.CompilerAPIMoved, match="written against CuPy 14.2.0"):
        SHIPPED[0].source()
