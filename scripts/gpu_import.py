#!/usr/bin/env python3
"""Turn what ``scripts/gpu_verify.sh`` brought back from a GPU machine into committed results.

    python scripts/gpu_import.py OUTDIR [--benchmarks DIR]

Reads OUTDIR's summary.txt, resources.json, check.json, targets.json and bench.json
(whichever the tiers that ran wrote), writes them as one file,
``benchmarks/gpu-<device>-<date>.json`` (atomically; the device from resources.json,
the date from the summary's first tier line), and prints the GPU section for
docs/performance.md in Markdown: the targets' verdicts, the kernel's resources, and the
benchmark's tables (``gpunet.bench.markdown_table``). Exit status: 0, or 2 when OUTDIR
holds no summary (not a gpu_verify.sh folder).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

FILES = ("resources.json", "check.json", "targets.json", "bench.json")


def _slug(name: str) -> str:
    name = re.sub(r"^nvidia\s+", "", name.strip().lower())
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "unknown-gpu"


def collect(outdir: Path) -> dict[str, Any]:
    """Everything in ``outdir`` as one dictionary (missing files are absent keys)."""
    summary = (outdir / "summary.txt").read_text(encoding="utf-8")
    result: dict[str, Any] = {"summary": summary}
    for name in FILES:
        path = outdir / name
        if path.is_file():
            result[name[:-len(".json")]] = json.loads(path.read_text(encoding="utf-8"))
    device = (result.get("resources") or {}).get("device") or {}
    result["device"] = device.get("name") or "no GPU"
    stamp = re.search(r"== tier \d.*?, (\d{4})-(\d\d)-(\d\d)T", summary)
    result["date"] = "".join(stamp.groups()) if stamp else "unknown-date"
    return result


def markdown(result: dict[str, Any]) -> str:
    """The GPU section of docs/performance.md for these results."""
    lines = [f"## GPU: {result['device']}, {result['date']}", "",
             "From `scripts/gpu_verify.sh` (tiers run: "
             + ", ".join(sorted(set(re.findall(r"== tier (\d) verdict", result["summary"]))))
             + "); raw files in the benchmarks JSON named below.", ""]
    targets = result.get("targets")
    if targets:
        lines += ["| target | verdict | measured |", "|---|---|---|"]
        lines += [f"| {t} | {s} | {m} |" for s, t, m in targets["verdicts"]]
        lines.append("")
    resources = result.get("resources")
    if resources:
        lines += ["| fused kernel | registers | local memory | spills | book: shared memory asked"
                  " | opt-in limit |", "|---|---:|---:|---:|---:|---:|"]
        for real, entry in resources["kernels"].items():
            driver, ptxas = entry.get("driver", {}), entry.get("ptxas", {})
            spills = ptxas.get("spill_store_bytes", 0) + ptxas.get("spill_load_bytes", 0)
            lines.append(f"| {real} ({resources['arch']}) "
                         f"| {driver.get('num_regs', ptxas.get('registers', '?'))} "
                         f"| {driver.get('local_size_bytes', ptxas.get('stack_frame_bytes', '?'))} B "
                         f"| {spills} B | {entry['plans']['book']['shared_bytes']:,} B "
                         f"| {resources['optin_shared_bytes']:,} B |")
        lines.append("")
    if result.get("bench"):
        from gpunet.bench import markdown_table

        lines += [markdown_table(result["bench"]), ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = list(argv)
    benchmarks = Path("benchmarks")
    if "--benchmarks" in args:
        i = args.index("--benchmarks")
        if i + 1 >= len(args):
            args = []
        else:
            benchmarks = Path(args[i + 1])
            del args[i:i + 2]
    if len(args) != 1 or not (Path(args[0]) / "summary.txt").is_file():
        print("usage: python scripts/gpu_import.py OUTDIR [--benchmarks DIR]  (OUTDIR: the "
              "folder scripts/gpu_verify.sh wrote, with its summary.txt)", file=sys.stderr)
        return 2
    from gpunet.io.outputs import atomic_write_text

    result = collect(Path(args[0]))
    target = benchmarks / f"gpu-{_slug(result['device'])}-{result['date']}.json"
    benchmarks.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(result, indent=1))
    print(markdown(result))
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
