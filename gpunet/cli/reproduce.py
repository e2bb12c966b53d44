"""``gpunet reproduce``: the book's published numbers, side by side with ours."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_device, path


def add_parser(sub: Any, formatter: type) -> None:
    rep = sub.add_parser(
        "reproduce",
        help="reproduce the book's published numbers, with a Markdown report and plots",
        description="Run the book's MNIST experiments (several seeds each), the 10 vs "
        "4-bit output comparison, the baselines and the toy neuron; write "
        "OUT/results.md, OUT/results/results.json and PNG plots.",
        formatter_class=formatter,
    )
    add_device(rep)
    rep.add_argument("--seeds", type=int, default=None,
                     help="runs per experiment (default 3; with --studies: seeds per "
                     "setting, default 10)")
    rep.add_argument("--only", action="append", default=[], metavar="NAME",
                     help="run only this experiment (repeatable): chapter1, hidden100, "
                     "eta-small, eta-large, no-hidden, ce30, ce100, binary4, l2-small, l2-30, "
                     "l2-100, l2-100-60, softmax100, baselines, toy; default: all")
    rep.add_argument("--quick", action="store_true",
                     help="smoke run: 1,000 images, one seed, two epochs")
    rep.add_argument("--out", default="reproduction", type=path, help="directory for the report")
    rep.add_argument("--no-svm", action="store_true",
                     help="skip the (slow) scikit-learn SVM baseline")
    rep.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    rep.add_argument("--studies", action="store_true",
                     help="instead of the book's numbers, run the studies of its claims "
                     "(issue 20: costs at their tuned η, η curve, 30 vs 100 hidden, best of "
                     "three, init and λ; 10 seeds each): OUT/studies.md, OUT/studies/; "
                     "resumes where a previous run stopped")
    rep.add_argument("--render-only", action="store_true",
                     help="run nothing: rewrite the report from OUT/results/results.json")
    rep.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..book.reproduce import Options, render, reproduce
    from ..io.outputs import check_output_dir, check_outputs

    # Before any work: the folder, and the files the report is written to.
    out = check_output_dir(args.out, "--out")
    if args.studies:
        return _studies(args, out)
    if out.is_dir():
        check_outputs({"--out (results.md)": out / "results.md"},
                      directories={"--out (results/)": out / "results"})
    if args.render_only:
        render(args.out, plots=not args.no_plots)
        return 0
    reproduce(Options(device=args.device, seeds=3 if args.seeds is None else args.seeds,
                      only=args.only,
                      quick=args.quick, out=args.out, svm=not args.no_svm,
                      plots=not args.no_plots))
    return 0


def _studies(args: argparse.Namespace, out: Any) -> int:
    """``--studies``: train what the studies still miss, then write the page."""
    from ..book.studies import Options, results_path, run_studies
    from ..io.outputs import check_outputs

    if args.only or args.no_svm:
        raise ValueError("--only and --no-svm belong to the book's reproduction; "
                         "leave them out with --studies.")
    if out.is_dir():
        check_outputs({"--out (studies.md)": out / "studies.md"},
                      directories={"--out (studies/)": out / "studies"})
    run_studies(Options(device=args.device, seeds=args.seeds, quick=args.quick, out=out,
                        plots=not args.no_plots, render_only=args.render_only))
    print(f"results: {results_path(out)}")
    return 0
