"""The compiled fused kernel fits the GPUs it ships for: read from ptxas, no GPU needed.

For sm_80 (A100) and sm_90 (H100, H200), float32 and float64, NVRTC from the pip wheels
compiles ``backends/kernels/fused_sgd.cu`` exactly as CuPy will, with ptxas's
resource report on (:mod:`gpunet.backends.testing.kernel_resources`). Checked: no register
spills; registers × 256 threads within the 65,536-register file (so the launch cannot
fail with "too many resources requested"); the kernel's ``__launch_bounds__`` match the
block size gpunet launches; and the dynamic shared memory each shipped configuration
asks for within the device's opt-in limit (227 KiB on H100/H200, 163 KiB on A100) or
declined beforehand, so ``auto`` falls back to the eager engine. Planted builds show
each check failing: registers capped below the kernel's need (spills), and a build
without launch bounds launched with 1,024 threads. Test ids contain ``compile``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from gpunet.backends.testing import kernel_resources as kr
from gpunet.backends.testing import nvrtc
from gpunet.backends.fused_sgd import MAX_THREADS, kernel_source, plan_for
from gpunet.bench import CONFIGS
from gpunet.engines import fused as fused_module

THREADS = fused_module.THREADS
DTYPES = {"float": np.float32, "double": np.float64}
#: The bench configurations the fused engine trains (the others decline: too wide).
FUSED_CONFIGS = ("book", "book100", "book-sweep", "book-stack")


@pytest.fixture(autouse=True)
def _need_cupy():
    reason = nvrtc.compiler_available()
    if reason:
        pytest.skip(reason)


def _resources(arch, real):
    return kr.fused_kernel_resources(arch, real)


def _problems(res, threads=THREADS, shared_bytes=0):
    return kr.launch_problems(res.registers, threads, shared_bytes,
                              kr.OPTIN_SHARED_BYTES[res.arch],
                              spill_bytes=res.spill_store_bytes + res.spill_load_bytes,
                              static_shared_bytes=res.static_shared_bytes)


@pytest.mark.parametrize("real", ["float", "double"])
@pytest.mark.parametrize("arch", nvrtc.ARCHES)
def test_compile_fused_kernel_fits_every_shipped_configuration(arch, real):
    res = _resources(arch, real)
    assert res.kernel == "gpunet_sgd_epoch" and res.arch == arch
    assert res.spill_store_bytes == 0 and res.spill_load_bytes == 0, res
    assert kr.registers_per_block(res.registers, THREADS) <= kr.REGISTER_FILE, res
    optin = kr.OPTIN_SHARED_BYTES[arch]
    dtype = DTYPES[real]
    for name, cfg in CONFIGS.items():
        plan = plan_for(cfg.sizes, cfg.mini_batch_size, dtype, THREADS, optin)
        if name in FUSED_CONFIGS:
            assert plan.why_not() == "", (name, plan.why_not())
            assert _problems(res, shared_bytes=plan.shared_bytes) == [], (name, res)
        else:  # declined before any launch: auto takes the eager engine
            assert "shared memory" in plan.why_not(), name
    # the book's network in float32 keeps its parameters on chip on both GPUs
    book = plan_for(CONFIGS["book"].sizes, 10, np.float32, THREADS, optin)
    assert book.params_in_shared == (real == "float" or book.params_in_shared)


def test_compile_fused_kernel_launch_bounds_match_the_block_size():
    """``__launch_bounds__(GPUNET_MAX_THREADS, 1)``: ptxas keeps registers × threads in
    the register file, so a build (float64 too) can never fail to launch; gpunet
    launches at most that many threads, and plans for more are refused."""
    source = kernel_source()
    assert re.search(r"__launch_bounds__\(GPUNET_MAX_THREADS, 1\)", source)
    default = re.search(r"#define GPUNET_MAX_THREADS (\d+)", source)
    assert default and int(default.group(1)) == MAX_THREADS
    assert THREADS <= MAX_THREADS
    assert "threads per block" in plan_for([784, 30, 10], 10, np.float32, 2 * MAX_THREADS,
                                           227 * 1024).why_not()


def test_compile_resource_check_fails_on_a_register_hungry_build():
    """Planted: the kernel built for blocks of 1,024 threads (``GPUNET_MAX_THREADS``),
    where ptxas may give each thread at most 64 registers, fewer than it needs, as a
    kernel needing more than a thread may have would get: spills, flagged."""
    need = _resources("sm_90", "float").registers
    starved = kr.fused_kernel_resources("sm_90", "float",
                                        extra_options=("-DGPUNET_MAX_THREADS=1024",))
    assert need > 64 >= starved.registers
    assert starved.spill_store_bytes > 0
    problems = _problems(starved, threads=1024)
    assert len(problems) == 1 and "spills" in problems[0], problems


def test_compile_resource_check_fails_on_a_launch_beyond_the_register_file():
    """Planted: without ``__launch_bounds__`` ptxas may use up to 255 registers, and a
    block of 1,024 threads then needs more than the register file: the launch would
    fail, and the check says so (registers x threads)."""
    unbounded = kernel_source().replace("__launch_bounds__(GPUNET_MAX_THREADS, 1)", "")
    assert unbounded != kernel_source()
    res = kr.fused_kernel_resources("sm_90", "float", unbounded)
    assert res.registers > kr.REGISTER_FILE // 1024  # more than 64: true of this kernel
    problems = _problems(res, threads=1024)
    assert any("too many resources requested" in p for p in problems), problems
    assert not any("too many" in p for p in _problems(res, threads=THREADS))


def test_launch_problems_arithmetic():
    # registers are allocated per warp in units of 256: a thread's count rounded up to 8
    assert kr.registers_per_block(119, 256) == 120 * 32 * 8 == 30720
    assert kr.registers_per_block(255, 256) == 65536  # the most a 256-thread block may take
    assert kr.launch_problems(255, 256, 0, 1024) == []
    over = kr.launch_problems(129, 512, 0, 1024)  # 136 x 32 x 16 = 69,632
    assert len(over) == 1 and "69632 registers per block" in over[0]
    assert "opt-in limit of 232448" in kr.launch_problems(64, 256, 232449, 232448)[0]
    assert "runs at most 256" in kr.launch_problems(64, 512, 0, 1024,
                                                    max_threads_per_block=256)[0]


def test_ptxas_report_parsing_refuses_an_empty_report():
    with pytest.raises(ValueError, match="no ptxas resource report"):
        kr.parse_ptxas_report("")
    (entry,) = kr.parse_ptxas_report(
        "ptxas info    : Compiling entry function 'k' for 'sm_90'\n"
        "ptxas info    : Function properties for k\n"
        "ptxas         .     8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads\n"
        "ptxas info    : Used 40 registers, used 1 barriers, 1024 bytes smem\n")
    assert (entry.registers, entry.stack_frame_bytes, entry.spill_store_bytes,
            entry.static_shared_bytes, entry.barriers) == (40, 8, 4, 1024, 1)
