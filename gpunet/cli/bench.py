"""``gpunet bench``: seconds per training epoch against PyTorch, scikit-learn, the book."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .options import path


def add_parser(sub: Any, formatter: type) -> None:
    bench = sub.add_parser(
        "bench",
        help="seconds per training epoch: gpunet against PyTorch, scikit-learn, the book",
        description="Benchmark training epochs (median after warm-up, device "
        "synchronised) for each configuration and implementation available here; "
        "write OUT/<stamp>.json and OUT/<stamp>.md.",
        formatter_class=formatter,
    )
    bench.add_argument("--configs", default="book,book100,wide,wide-large-batch",
                       help="comma-separated configurations")
    bench.add_argument("--impl", default="all", metavar="LIST",
                       help="comma-separated implementations, or all (see the module "
                       "gpunet.bench.epochs for the list)")
    bench.add_argument("--epochs", type=int, default=None,
                       help="measured epochs (median; default 5; with --sweep-vs-train: "
                       "epochs per network, default 30)")
    bench.add_argument("--warmup", type=int, default=1, help="epochs run before measuring")
    bench.add_argument("--limit", type=int, default=None, metavar="N",
                       help="use the first N training images (default: all 50,000)")
    bench.add_argument("--quick", action="store_true",
                       help="smoke run: 1,000 images, 2 measured epochs")
    bench.add_argument("--out", default="benchmarks", type=path, help="directory for the results")
    bench.add_argument("--stamp", default=None, help="file name stem (default: date-time)")
    bench.add_argument("--sweep-vs-train", type=int, default=None, metavar="K",
                       help="instead: time K book networks as one `gpunet sweep` against K "
                       "`gpunet train` runs in turn (whole commands, wall time; --epochs "
                       "and --limit apply; gpunet.bench.sweep_vs_train)")
    bench.add_argument("--rounds", type=int, default=3, metavar="N",
                       help="with --sweep-vs-train: rounds of (K train runs, one sweep); "
                       "the median round's speed-up is reported")
    bench.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bench import IMPLEMENTATIONS, benchmark, write_results

    stamp = _check_out(args)  # before any work: a benchmark takes minutes
    if args.sweep_vs_train is not None:
        from ..bench import sweep_vs_train

        epochs = 30 if args.epochs is None else args.epochs
        result = sweep_vs_train.sweep_vs_train(args.sweep_vs_train, epochs=epochs,
                                            limit=args.limit, rounds=args.rounds)
        json_path, md_path = sweep_vs_train.write(result, Path(args.out), stamp)
        print(f"wrote {json_path} and {md_path}")
        return 0
    impls = list(IMPLEMENTATIONS) if args.impl == "all" else [i for i in args.impl.split(",") if i]
    if args.quick:
        limit, epochs = 1000, 2
    else:
        limit, epochs = args.limit, 5 if args.epochs is None else args.epochs
    results = benchmark([c for c in args.configs.split(",") if c], impls,
                        epochs=epochs, warmup=args.warmup, limit=limit)
    json_path, md_path = write_results(results, Path(args.out), stamp)
    print(f"wrote {json_path} and {md_path}")
    return 0


def _check_out(args: argparse.Namespace) -> str:
    """The results' file stem, once ``--out`` is known to take them: a folder (or one
    that can be made) whose ``STAMP.json`` and ``STAMP.md`` do not exist yet, since
    earlier results are never replaced."""
    import datetime

    from ..io.outputs import check_output_dir, check_outputs

    out = check_output_dir(args.out, "--out")
    stamp = args.stamp or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    if "/" in stamp or stamp in (".", ".."):
        raise ValueError(f"--stamp {stamp!r}: give a file name stem, not a path.")
    suffix = "-sweep" if args.sweep_vs_train is not None else ""
    files = {f"--out ({stamp}{suffix}{ext})": out / f"{stamp}{suffix}{ext}"
             for ext in (".json", ".md")}
    for option, path in files.items():
        if path.exists() or path.is_symlink():
            raise ValueError(f"{option}: {path} already exists (earlier results); choose "
                             "another --stamp or --out.")
    if out.is_dir():
        check_outputs(files)
    return stamp
