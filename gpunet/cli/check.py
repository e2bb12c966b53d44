"""``gpunet check``: the numerical self-test of a device (see :mod:`gpunet.check.selftest`).

One line per check with the measured error and its threshold; exit status 0 when every
check passes, 1 when any fails, 2 for bad usage or a device that cannot be used.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, Sequence

from .options import add_device, path

if TYPE_CHECKING:
    from ..check.selftest import CheckResult


def add_parser(sub: Any, formatter: type) -> None:
    check = sub.add_parser(
        "check", help="prove that a device trains correctly (numerical self-test)",
        description="Check on real MNIST rows that the device computes what the book's "
        "algorithm computes: forward pass, backprop gradients (also against finite "
        "differences), a 3-epoch training trajectory per engine and every fused kernel, "
        "each against an independent plain-NumPy reference. On a GPU also the kernel "
        "probe and a float32 accuracy parity run. Exit status 0: all pass; 1: a check "
        "failed; 2: bad usage or the device is unavailable.",
        formatter_class=formatter)
    add_device(check)
    check.add_argument("--dtype", choices=["float32", "float64"], default=None,
                       help="check one precision only (default: both)")
    check.add_argument("--json", metavar="PATH", type=path, default=None,
                       help="also write the device, versions, date and every check as JSON")
    check.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..backends import get_backend
    from ..check.selftest import DTypeName, run_checks
    from ..io.outputs import atomic_write_text, check_outputs

    check_outputs({"--json": args.json})  # before the checks, not after them
    backend = get_backend(args.device)  # BackendUnavailable: exit 2, one line
    note = f"  [{backend.selection_note}]" if backend.selection_note else ""
    print(f"device: {backend.description}{note}", flush=True)
    dtypes: tuple[DTypeName, ...] = (args.dtype,) if args.dtype else ("float32", "float64")
    report = run_checks(backend, dtypes, on_result=lambda r: print(r.line, flush=True))
    print(summary(report.results))
    if args.json:
        atomic_write_text(args.json, json.dumps(report.as_json(), indent=2) + "\n", "--json")
        print(f"wrote {args.json}")
    return 0 if report.passed else 1


def summary(results: Sequence["CheckResult"]) -> str:
    """The last line: how many checks passed, failed and were skipped (a skip is not a
    pass: it says what was not checked on this device)."""
    failed = [r.name for r in results if r.passed is False]
    skipped = [r.name for r in results if r.passed is None]
    passed = sum(r.passed is True for r in results)
    skips = (f"; {len(skipped)} skipped, not run on this device ({', '.join(skipped)})"
             if skipped else "")
    if failed:
        return f"FAILED: {len(failed)} of {len(results)} checks ({', '.join(failed)}){skips}"
    if skipped:
        return f"{passed} of {len(results)} checks passed, none failed{skips}"
    return f"all {passed} checks passed"
