"""The ``gpunet`` command: ``train``, ``reproduce``, ``bench`` and ``info``.

``gpunet train`` with no options is the book's chapter-1 run: [784, 30, 10], quadratic
cost, N(0, 1) initialisation, η = 3.0, mini-batches of 10, 30 epochs, evaluated on the
10,000 test images after each epoch, on the best available device.

Every mistake the user can make (a bad option, an unusable device, a broken data file)
ends with one ``gpunet: error: ...`` line and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from backends import BackendUnavailable, get_backend

from . import __version__
from .bench import IMPLEMENTATIONS
from .checks import check_eta, check_lmbda, check_positive_int
from .mnist import load_mnist
from .network import Network
from .persistence import atomic_write_text


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, BackendUnavailable) as exc:
        print(f"gpunet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpunet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `gpunet train | head`: the reader left; so do we
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpunet",
        description="The sigmoid networks of Nielsen's 'Neural Networks and Deep "
        "Learning' on NumPy (CPU) or CuPy (CUDA GPU).",
    )
    parser.add_argument("--version", action="version", version=f"gpunet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train a network on MNIST (defaults: the book's chapter-1 run)",
        description="Train a sigmoid network on MNIST by mini-batch SGD. The defaults "
        "are the book's chapter-1 run (about 95%% test accuracy after 30 epochs).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    train.add_argument("--sizes", type=_sizes, default=[784, 30, 10],
                       help="neurons per layer, comma-separated")
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--batch-size", type=int, default=10, help="mini-batch size m")
    train.add_argument("--eta", type=float, default=3.0, help="learning rate η")
    train.add_argument("--cost", choices=["quadratic", "cross-entropy"], default="quadratic")
    train.add_argument("--init", choices=["large", "default"], default="large",
                       help="large: N(0,1) (chapter 1); default: N(0,1/n_in) weights")
    train.add_argument("--lmbda", type=float, default=0.0, help="L2 regularization λ")
    train.add_argument("--seed", type=int, default=None,
                       help="random seed (default: a fresh one, printed)")
    train.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    train.add_argument("--data", metavar="DIR", default=None,
                       help="directory of MNIST IDX files (gzipped or not) or the book's "
                       "mnist.pkl.gz (default: the bundled copy)")
    train.add_argument("--limit", type=int, default=None, metavar="N",
                       help="train on the first N training images only")
    train.add_argument("--evaluate", choices=["test", "validation"], default="test",
                       help="the data scored after each epoch")
    train.add_argument("--monitor-training-cost", action="store_true")
    train.add_argument("--monitor-training-accuracy", action="store_true")
    train.add_argument("--monitor-evaluation-cost", action="store_true")
    train.add_argument("--cuda-graph", action="store_true",
                       help="replay each epoch as a captured CUDA graph (CUDA only; "
                       "experimental)")
    train.add_argument("--save", metavar="PATH", default=None,
                       help="write the trained network (network2.py JSON)")
    train.add_argument("--metrics", metavar="PATH", default=None,
                       help="write per-epoch metrics as JSON Lines")
    train.set_defaults(run=cmd_train)

    rep = sub.add_parser(
        "reproduce",
        help="reproduce the book's published numbers, with a Markdown report and plots",
        description="Run the book's MNIST experiments (several seeds each), the 10 vs "
        "4-bit output comparison, the baselines and the toy neuron; write "
        "OUT/results.md, OUT/results/results.json and PNG plots.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    rep.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    rep.add_argument("--seeds", type=int, default=3, help="runs per experiment")
    rep.add_argument("--only", action="append", default=[], metavar="NAME",
                     help="run only this experiment (repeatable): chapter1, hidden100, "
                     "eta-small, eta-large, no-hidden, ce30, ce100, binary4, baselines, toy")
    rep.add_argument("--quick", action="store_true",
                     help="smoke run: 1,000 images, one seed, two epochs")
    rep.add_argument("--out", default="reproduction", help="directory for the report")
    rep.add_argument("--no-svm", action="store_true",
                     help="skip the (slow) scikit-learn SVM baseline")
    rep.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    rep.add_argument("--render-only", action="store_true",
                     help="run nothing: rewrite the report from OUT/results/results.json")
    rep.set_defaults(run=cmd_reproduce)

    bench = sub.add_parser(
        "bench",
        help="seconds per training epoch: gpunet against PyTorch, scikit-learn, the book",
        description="Benchmark training epochs (median after warm-up, device "
        "synchronised) for each configuration and implementation available here; "
        "write OUT/<stamp>.json and OUT/<stamp>.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    bench.add_argument("--configs", default="book,book100,wide,wide-large-batch",
                       help="comma-separated configurations")
    bench.add_argument("--impl", default=",".join(IMPLEMENTATIONS),
                       help="comma-separated implementations")
    bench.add_argument("--epochs", type=int, default=5, help="measured epochs (median)")
    bench.add_argument("--warmup", type=int, default=1, help="epochs run before measuring")
    bench.add_argument("--limit", type=int, default=None, metavar="N",
                       help="use the first N training images (default: all 50,000)")
    bench.add_argument("--quick", action="store_true",
                       help="smoke run: 1,000 images, 2 measured epochs")
    bench.add_argument("--out", default="benchmarks", help="directory for the results")
    bench.add_argument("--stamp", default=None, help="file name stem (default: date-time)")
    bench.set_defaults(run=cmd_bench)

    info = sub.add_parser("info", help="print versions, backends and visible devices")
    info.set_defaults(run=cmd_info)
    return parser


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers like 784,30,10"
        ) from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give at least two positive layer sizes, like 784,30,10"
        )
    return sizes


# --------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    # Check the cheap things before loading anything.
    epochs = check_positive_int(args.epochs, "--epochs")
    batch_size = check_positive_int(args.batch_size, "--batch-size")
    eta = check_eta(args.eta)
    lmbda = check_lmbda(args.lmbda)
    if args.limit is not None:
        check_positive_int(args.limit, "--limit")

    backend = get_backend(args.device)
    note = f"  [{backend.selection_note}]" if backend.selection_note else ""
    print(f"device: {backend.description}{note}", flush=True)

    data = load_mnist(args.data)
    training = data.training
    if args.limit is not None:
        if args.limit > len(training[1]):
            raise ValueError(
                f"--limit {args.limit} exceeds the {len(training[1])} training images."
            )
        training = (training[0][: args.limit], training[1][: args.limit])
    evaluation = data.test if args.evaluate == "test" else data.validation
    print(f"data: {data.describe()}; training on {len(training[1])}, "
          f"evaluating on {len(evaluation[1])} {args.evaluate} images", flush=True)

    net = Network(args.sizes, cost=args.cost, init=args.init, dtype=args.dtype,
                  device=backend, seed=args.seed)
    print(f"network: {net.sizes}, {args.cost} cost, {args.init} init, "
          f"{args.dtype}, eta={eta}, m={batch_size}, lmbda={lmbda}, "
          f"epochs={epochs}, seed={net.seed}", flush=True)

    records: list[dict[str, Any]] = []
    name = args.evaluate

    def on_epoch(record: dict[str, Any]) -> None:
        row = {"epoch": record["epoch"],
               f"{name}_correct": record["evaluation_correct"],
               f"{name}_total": record["evaluation_total"],
               "train_seconds": record["train_seconds"]}
        for key in ("training_cost", "training_correct", "training_total"):
            if key in record:
                row[key] = record[key]
        if "evaluation_cost" in record:
            row[f"{name}_cost"] = record["evaluation_cost"]
        records.append(row)
        extra = "".join(
            f", {k} {row[k]:.4f}" for k in ("training_cost", f"{name}_cost") if k in row
        )
        if "training_correct" in row:
            extra += f", training {row['training_correct']} / {row['training_total']}"
        print(f"Epoch {row['epoch']}: {row[f'{name}_correct']} / {row[f'{name}_total']}"
              f"  ({row['train_seconds']:.2f} s{extra})", flush=True)
        if args.metrics:
            atomic_write_text(args.metrics, "".join(json.dumps(r) + "\n" for r in records))

    started = time.perf_counter()
    net.SGD(training, epochs, batch_size, eta, lmbda=lmbda, evaluation_data=evaluation,
            monitor_evaluation_accuracy=True,
            monitor_evaluation_cost=args.monitor_evaluation_cost,
            monitor_training_cost=args.monitor_training_cost,
            monitor_training_accuracy=args.monitor_training_accuracy,
            verbose=False, callback=on_epoch, graph=args.cuda_graph)
    wall = time.perf_counter() - started

    best = max(records, key=lambda r: r[f"{name}_correct"])
    total = best[f"{name}_total"]
    print(f"best: {best[f'{name}_correct']} / {total} "
          f"({100.0 * best[f'{name}_correct'] / total:.2f}%) at epoch {best['epoch']}; "
          f"final {records[-1][f'{name}_correct']} / {total}; {wall:.1f} s in all")
    if args.save:
        net.save(args.save)
        print(f"saved network to {args.save}")
    if args.metrics:
        print(f"wrote metrics to {args.metrics}")
    return 0


# ----------------------------------------------------------------- reproduce
def cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import Options, render, reproduce

    if args.render_only:
        render(args.out, plots=not args.no_plots)
        return 0
    reproduce(Options(device=args.device, seeds=args.seeds, only=args.only,
                      quick=args.quick, out=args.out, svm=not args.no_svm,
                      plots=not args.no_plots))
    return 0


# --------------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .bench import benchmark, write_results

    limit, epochs = (1000, 2) if args.quick else (args.limit, args.epochs)
    results = benchmark([c for c in args.configs.split(",") if c],
                        [i for i in args.impl.split(",") if i],
                        epochs=epochs, warmup=args.warmup, limit=limit)
    json_path, md_path = write_results(results, Path(args.out), args.stamp)
    print(f"wrote {json_path} and {md_path}")
    return 0


# ---------------------------------------------------------------------- info
def cmd_info(args: argparse.Namespace) -> int:
    print(f"gpunet {__version__}")
    print(f"Python {platform.python_version()} ({platform.system()} {platform.machine()})")
    print(f"NumPy {np.__version__}{_blas()}")
    print("backends:")
    print(f"  cpu     {get_backend('cpu').description}")
    try:
        import cupy
    except ImportError:
        print("  cuda    unavailable: CuPy is not installed "
              "(pip install 'gpunet[cuda12]' or 'gpunet[cuda13]')")
    else:
        print(f"  cuda    CuPy {cupy.__version__}{_cuda_versions(cupy)}")
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:
            print(f"          no CUDA device visible ({exc})")
        else:
            for i in range(count):
                props = cupy.cuda.runtime.getDeviceProperties(i)
                dev_name = props["name"]
                dev_name = dev_name.decode() if isinstance(dev_name, bytes) else dev_name
                print(f"  cuda:{i}  {dev_name}, {props['totalGlobalMem'] / 2**30:.1f} GiB")
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
    fmt = lambda v: f"{v // 1000}.{(v % 1000) // 10}"  # noqa: E731
    driver_text = f"driver supports CUDA {fmt(driver)}" if driver else "no CUDA driver found"
    return f", CUDA runtime {fmt(runtime)}, {driver_text}"


if __name__ == "__main__":
    sys.exit(main())
