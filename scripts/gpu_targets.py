"""The GPU targets of issues 9 and 11, measured in one run and judged.

``scripts/gpu_verify.sh`` runs this on a GPU machine::

    python scripts/gpu_targets.py OUT/targets.json

It times, with :func:`gpunet.bench.benchmark`, the book network ([784, 30, 10], m = 10,
float32, 50,000 images) with the fused kernel, the NumPy engine and PyTorch on CUDA,
then K = 1, 10 and 100 book networks in one fused launch per epoch; writes every row
and the verdicts to the JSON file; prints one line per target (``PASS``, ``FAIL``)
and exits 1 unless every target passed:

* issue 9: the fused book epoch at most 30 ms, and at least 10× faster than both the
  NumPy engine and PyTorch on CUDA on the same machine;
* issue 11: K = 100 networks an epoch in at most 3× the time of one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

#: (name, limit) of each target; see :func:`judge`.
FUSED_EPOCH_SECONDS = 0.030
SPEEDUP_OVER_PEERS = 10.0
K100_OVER_K1 = 3.0

FUSED = "gpunet-cupy-fused-f32"
PEERS = (("gpunet-numpy-f32", "the NumPy engine"), ("torch-cuda", "PyTorch on CUDA"))

Verdict = tuple[str, str, str]  # (PASS or FAIL, target, what was measured)


def judge(book: dict[str, Any], sweep: dict[str, Any]) -> list[Verdict]:
    """The verdicts for ``book`` (a ``book`` benchmark with the fused row and the peers)
    and ``sweep`` (a ``book-sweep`` benchmark with the fused rows)."""
    rows = {r["implementation"]: r for r in book["results"] if r["config"] == "book"}
    verdicts: list[Verdict] = []
    fused = rows.get(FUSED, {})
    t = fused.get("median_seconds")
    if t is None:
        why = fused.get("skipped", "no row")
        verdicts.append(("FAIL", "fused book epoch <= 30 ms", f"not measured: {why}"))
    else:
        verdicts.append(("PASS" if t <= FUSED_EPOCH_SECONDS else "FAIL",
                         "fused book epoch <= 30 ms", f"{t * 1e3:.1f} ms"))
    for peer, name in PEERS:
        target = f"fused >= {SPEEDUP_OVER_PEERS:g}x {name}"
        row = rows.get(peer, {})
        if t is None or "median_seconds" not in row:
            why = row.get("skipped", "no row") if t is not None else "no fused epoch"
            verdicts.append(("FAIL", target, f"not measured: {why}"))
            continue
        ratio = row["median_seconds"] / t
        verdicts.append(("PASS" if ratio >= SPEEDUP_OVER_PEERS else "FAIL", target,
                         f"{ratio:.1f}x ({row['median_seconds'] * 1e3:.1f} ms against "
                         f"{t * 1e3:.1f} ms)"))
    at_once = {r["networks"]: r for r in sweep["results"]
               if r["implementation"] == f"{FUSED} (K at once)" and "median_seconds" in r}
    target = f"K = 100 networks <= {K100_OVER_K1:g}x one (fused)"
    if 1 in at_once and 100 in at_once:
        t1, t100 = at_once[1]["median_seconds"], at_once[100]["median_seconds"]
        verdicts.append(("PASS" if t100 <= K100_OVER_K1 * t1 else "FAIL", target,
                         f"{t100 / t1:.2f}x ({t100 * 1e3:.1f} ms against {t1 * 1e3:.1f} ms)"))
    else:
        skipped = [r.get("skipped", "") for r in sweep["results"] if r.get("skipped")]
        verdicts.append(("FAIL", target,
                         "not measured" + (f": {skipped[0]}" if skipped else "")))
    return verdicts


def measure(limit: Optional[int] = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the two benchmarks (``limit``: fewer training images, for a smoke run)."""
    from gpunet.bench import benchmark

    book = benchmark(["book"], [FUSED] + [peer for peer, _ in PEERS], epochs=5, warmup=1,
                     limit=limit, log=log)
    sweep = benchmark(["book-sweep"], [FUSED], epochs=3, warmup=1, limit=limit, log=log)
    return {"book": book, "book_sweep": sweep, "verdicts": judge(book, sweep)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    from gpunet.io.outputs import atomic_write_text

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--limit"):
        print("usage: python scripts/gpu_targets.py OUT.json [--limit N]", file=sys.stderr)
        return 2
    limit = int(args[2]) if len(args) == 3 else None
    result = measure(limit)
    atomic_write_text(Path(args[0]), json.dumps(result, indent=1))
    for status, target, measured in result["verdicts"]:
        print(f"{status} {target}: {measured}")
    return 0 if all(v[0] == "PASS" for v in result["verdicts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
