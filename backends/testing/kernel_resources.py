"""What the compiled fused kernel takes of an SM, read without a GPU, and whether it fits.

A kernel that compiles can still fail on a GPU, or run slowly, for reasons the
compiler reports but nobody reads: registers × threads beyond the register file (the
launch fails: "too many resources requested"), registers spilled to local memory (every
spill is a round trip to L1/L2 inside the inner loops), more dynamic shared memory than
the device lets one block opt in to (the launch fails). ptxas prints all of it with
``-v``; NVRTC passes ``--ptxas-options=-v`` on and returns the report in its log
(:func:`backends.testing.nvrtc.compile_cuda_source`), so CI reads it for every architecture and
precision from the pip wheels, with no GPU and no driver.

* :func:`fused_kernel_resources`: the report for ``backends/kernels/fused_sgd.cu``
  (or any variant of its source) for one architecture and real type;
* :func:`launch_problems`: what would go wrong launching it with ``threads`` per block
  and ``shared_bytes`` of dynamic shared memory on a device of that architecture
  (empty when nothing would).

On a GPU, ``scripts/gpu_resources.py`` reads the same numbers from the driver (CuPy's
function attributes) and applies the same rules.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Optional

#: Registers in one SM's register file, and the most one block may hold (sm_80, sm_90).
REGISTER_FILE = 65536
#: The most registers one thread may use.
MAX_REGISTERS_PER_THREAD = 255
#: Registers are allocated per warp, in units of this many (CUDA occupancy calculator,
#: compute capability 8.0 and 9.0): a thread's count rounded up to a multiple of 8.
REGISTER_ALLOCATION_UNIT = 256
WARP = 32

#: Dynamic shared memory one block may opt in to (``cudaDevAttrMaxSharedMemoryPerBlockOptin``):
#: A100 (sm_80) 163 KiB, H100 and H200 (sm_90) 227 KiB.
OPTIN_SHARED_BYTES = {"sm_80": 163 * 1024, "sm_90": 227 * 1024}


@dataclass(frozen=True)
class KernelResources:
    """ptxas's report for one kernel (one entry function) on one architecture."""

    kernel: str
    arch: str
    registers: int
    stack_frame_bytes: int
    spill_store_bytes: int
    spill_load_bytes: int
    static_shared_bytes: int
    barriers: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\w+)'")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_BARRIERS = re.compile(r"used (\d+) barriers")
_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas_report(log: str) -> list[KernelResources]:
    """Every entry function's resources in a ``ptxas -v`` report (NVRTC's log).

    Raises ``ValueError`` when the log holds no complete report (no ``-v``, or a format
    this parser does not know): a resource check must never pass on nothing.
    """
    found: list[KernelResources] = []
    blocks = _ENTRY.split(log)
    # split: [before, name1, arch1, text1, name2, arch2, text2, ...]
    for i in range(1, len(blocks) - 2, 3):
        name, arch, text = blocks[i], blocks[i + 1], blocks[i + 2]
        frame, used = _FRAME.search(text), _USED.search(text)
        if frame is None or used is None:
            raise ValueError(f"ptxas's report for {name} ({arch}) has no register or stack "
                             f"line:\n{text.strip()}")
        barriers, smem = _BARRIERS.search(text), _SMEM.search(text)
        found.append(KernelResources(
            kernel=name, arch=arch, registers=int(used.group(1)),
            stack_frame_bytes=int(frame.group(1)), spill_store_bytes=int(frame.group(2)),
            spill_load_bytes=int(frame.group(3)),
            static_shared_bytes=int(smem.group(1)) if smem else 0,
            barriers=int(barriers.group(1)) if barriers else 0))
    if not found:
        raise ValueError(f"no ptxas resource report in the compiler's log:\n{log.strip()}")
    return found


def fused_kernel_resources(arch: str, real: str, source: Optional[str] = None,
                           extra_options: tuple[str, ...] = ()) -> KernelResources:
    """ptxas's report for the fused kernel compiled for ``arch`` with ``GPUNET_REAL=real``.

    ``source`` defaults to the shipped ``fused_sgd.cu``; the options are the launcher's
    (:class:`backends.fused_sgd.CudaSgdEpoch`), with ptxas's report. Needs CuPy and
    the NVRTC wheel (``ImportError`` / :class:`backends.testing.nvrtc.CompilerAPIMoved` otherwise).
    """
    from ..fused_sgd import KERNEL_NAME, kernel_source
    from .nvrtc import RAW_MODULE_OPTIONS, compile_cuda_source

    # the options of the compile test's RawModule sources (nvrtc.raw_module_sources):
    # one compile serves both
    options = RAW_MODULE_OPTIONS + (f"-DGPUNET_REAL={real}",) + tuple(extra_options)
    compiled = compile_cuda_source(kernel_source() if source is None else source, arch,
                                   options, filename=f"fused_sgd-{real}.cu")
    for entry in parse_ptxas_report(compiled.log):
        if entry.kernel == KERNEL_NAME:
            return entry
    raise ValueError(f"ptxas reported no {KERNEL_NAME} in:\n{compiled.log}")


def registers_per_block(registers: int, threads: int) -> int:
    """Registers a block of ``threads`` takes from the register file: each warp's
    ``32 × registers`` rounded up to the allocation unit (256), times the warps."""
    per_warp = -(-registers * WARP // REGISTER_ALLOCATION_UNIT) * REGISTER_ALLOCATION_UNIT
    return per_warp * -(-threads // WARP)


def launch_problems(registers: int, threads: int, shared_bytes: int, max_shared_bytes: int,
                    spill_bytes: int = 0, static_shared_bytes: int = 0,
                    max_threads_per_block: Optional[int] = None) -> list[str]:
    """What would go wrong launching a kernel with these resources (empty: nothing).

    ``registers`` per thread (ptxas, or ``num_regs`` on a GPU), ``threads`` per block,
    ``shared_bytes`` of dynamic shared memory asked for, ``max_shared_bytes`` the
    device's opt-in limit per block, ``spill_bytes`` spill stores plus loads,
    ``max_threads_per_block`` the compiled function's limit (``__launch_bounds__`` and
    registers; from the driver on a GPU).
    """
    problems = []
    if spill_bytes:
        problems.append(f"{spill_bytes} bytes of register spills to local memory "
                        f"(spill stores + loads): a slow inner loop")
    if registers > MAX_REGISTERS_PER_THREAD:
        problems.append(f"{registers} registers per thread, more than the "
                        f"{MAX_REGISTERS_PER_THREAD} a thread may have")
    block = registers_per_block(registers, threads)
    if block > REGISTER_FILE:
        problems.append(f"{registers} registers x {threads} threads take {block} registers "
                        f"per block, more than the {REGISTER_FILE} of an SM: the launch "
                        f"fails (too many resources requested)")
    if max_threads_per_block is not None and threads > max_threads_per_block:
        problems.append(f"{threads} threads per block, but the compiled kernel runs at most "
                        f"{max_threads_per_block}: the launch fails")
    if shared_bytes + static_shared_bytes > max_shared_bytes:
        problems.append(f"{shared_bytes + static_shared_bytes} bytes of shared memory per "
                        f"block, more than the device's opt-in limit of {max_shared_bytes}")
    return problems
