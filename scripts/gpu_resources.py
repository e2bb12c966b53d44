#!/usr/bin/env python3
"""The fused kernel's compiled resources on this GPU, checked: step 'resources' of
``scripts/gpu_verify.sh`` (tier 1).

    python scripts/gpu_resources.py OUT.json [--no-device]

For float32 and float64: ptxas's report for the device's architecture (NVRTC, as CuPy
compiles the kernel: registers, stack frame, spills; ``gpunet.backends.testing.kernel_resources``)
and, from the driver, the kernel CuPy actually loaded (``num_regs``,
``local_size_bytes``, ``shared_size_bytes``, ``max_threads_per_block``) with the
device's facts (name, compute capability, SM count, opt-in shared memory per block,
registers per block). Then, for every bench configuration the fused engine trains,
the dynamic shared memory its plan asks for, and whether anything would stop the launch
(``kernel_resources.launch_problems``). Prints one line per precision and writes
everything to OUT.json (atomically). ``--no-device``: ptxas alone, for sm_90 (the dry
run of ``gpu_verify.sh`` on a machine without a GPU).

Exit status: 0 when every configuration fits, 1 when a problem was found (or no report
could be made), 2 for bad usage.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: The bench configurations the fused engine trains (the wide ones decline: shared memory).
FUSED_CONFIGS = ("book", "book100", "book-sweep")
KERNEL_ATTRIBUTES = ("num_regs", "local_size_bytes", "shared_size_bytes", "const_size_bytes",
                     "max_threads_per_block", "binary_version", "ptx_version")
DEVICE_PROPERTIES = ("name", "major", "minor", "multiProcessorCount", "sharedMemPerBlockOptin",
                     "sharedMemPerMultiprocessor", "regsPerBlock", "regsPerMultiprocessor",
                     "maxThreadsPerBlock", "l2CacheSize", "totalGlobalMem")


def _device(cupy: Any) -> dict[str, Any]:
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    facts = {key: props.get(key) for key in DEVICE_PROPERTIES}
    if isinstance(facts["name"], bytes):
        facts["name"] = facts["name"].decode()
    facts["arch"] = f"sm_{facts['major']}{facts['minor']}"
    return facts


def report(use_device: bool) -> dict[str, Any]:
    from gpunet.backends.testing import kernel_resources as kr
    from gpunet.backends.fused_sgd import REAL, plan_for
    from gpunet.bench import CONFIGS
    from gpunet.engines.fused import THREADS

    cupy = device = None
    if use_device:
        from gpunet.backends.cupy_backend import import_cupy

        cupy = import_cupy()
        device = _device(cupy)
    arch = device["arch"] if device else "sm_90"
    optin = int(device["sharedMemPerBlockOptin"]) if device else kr.OPTIN_SHARED_BYTES[arch]
    result: dict[str, Any] = {"arch": arch, "threads": THREADS, "optin_shared_bytes": optin,
                              "device": device, "kernels": {}, "problems": []}
    for dtype in (np.float32, np.float64):
        real = REAL[np.dtype(dtype)]
        entry: dict[str, Any] = {}
        try:
            ptxas = kr.fused_kernel_resources(arch, real)
            entry["ptxas"] = ptxas.as_dict()
        except Exception as exc:  # an NVRTC too old for this GPU, say: report, go on
            ptxas = None
            entry["ptxas_error"] = f"{type(exc).__name__}: {exc}"[:2000]
        registers = ptxas.registers if ptxas else None
        max_threads = None
        if cupy is not None:
            from gpunet.backends.fused_sgd import CudaSgdEpoch

            CudaSgdEpoch._modules.clear()  # compile and load it here, now
            kernel = CudaSgdEpoch(cupy, dtype).build(10)  # the book's m = 10 build
            entry["driver"] = {key: int(getattr(kernel, key)) for key in KERNEL_ATTRIBUTES}
            registers = entry["driver"]["num_regs"]
            max_threads = entry["driver"]["max_threads_per_block"]
        plans = {}
        for name in FUSED_CONFIGS:
            cfg = CONFIGS[name]
            plan = plan_for(cfg.sizes, cfg.mini_batch_size, dtype, THREADS, optin)
            problems = [plan.why_not()] if plan.why_not() else []
            if registers is None:
                problems.append("no register count: " + entry.get("ptxas_error", "?"))
            else:
                problems += kr.launch_problems(
                    registers, THREADS, plan.shared_bytes, optin,
                    spill_bytes=(ptxas.spill_store_bytes + ptxas.spill_load_bytes) if ptxas else 0,
                    static_shared_bytes=ptxas.static_shared_bytes if ptxas else 0,
                    max_threads_per_block=max_threads)
            plans[name] = {"shared_bytes": plan.shared_bytes,
                           "params_in_shared": plan.params_in_shared, "problems": problems}
            result["problems"] += [f"{real} {name}: {p}" for p in problems]
        entry["plans"] = plans
        result["kernels"][real] = entry
    return result


def summary_lines(result: dict[str, Any]) -> list[str]:
    """One line per precision: what the kernel takes, what the book asks for, verdict."""
    device = result["device"]
    where = (f"{device['name']}, {result['arch']}, {device['multiProcessorCount']} SMs"
             if device else f"{result['arch']} (ptxas only, no device)")
    lines = []
    for real, entry in result["kernels"].items():
        driver, ptxas = entry.get("driver", {}), entry.get("ptxas", {})
        registers = driver.get("num_regs", ptxas.get("registers", "?"))
        local = driver.get("local_size_bytes", ptxas.get("stack_frame_bytes", "?"))
        spills = (ptxas.get("spill_store_bytes", 0) + ptxas.get("spill_load_bytes", 0)
                  if ptxas else "?")
        book = entry["plans"]["book"]
        problems = [p for plan in entry["plans"].values() for p in plan["problems"]]
        lines.append(
            f"{'PASS' if not problems else 'FAIL'} resources {real}: {registers} registers, "
            f"{local} B local, {spills} B spilled, max {driver.get('max_threads_per_block', '-')}"
            f" threads; book asks {book['shared_bytes']} B shared "
            f"({'parameters on chip' if book['params_in_shared'] else 'parameters in L2'}) of "
            f"{result['optin_shared_bytes']} opt-in; {where}"
            + (f"; {problems[0]}" if problems else ""))
    return lines


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--no-device"]
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python scripts/gpu_resources.py OUT.json [--no-device]", file=sys.stderr)
        return 2
    from gpunet.io.outputs import atomic_write_text

    result = report(use_device="--no-device" not in argv)
    atomic_write_text(Path(args[0]), json.dumps(result, indent=1))
    for line in summary_lines(result):
        print(line)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
