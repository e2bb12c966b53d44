"""Option types and checks shared by the subcommands."""

from __future__ import annotations

import argparse

from ..backends import DEVICES_HELP
from ..engines import ENGINE_NAMES


def sizes(text: str) -> list[int]:
    """``--sizes 784,30,10`` as a list of layer sizes."""
    try:
        values = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers like 784,30,10"
        ) from None
    if len(values) < 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give at least two positive layer sizes, like 784,30,10"
        )
    return values


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help=f"where to compute: {DEVICES_HELP}; auto takes CUDA when "
                        "CuPy and a GPU work here, else the CPU")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """The options of a training run (network, data, SGD, monitors, device), shared by
    ``gpunet train`` and every command that trains networks the same way."""
    add_device(parser)
    parser.add_argument("--sizes", type=sizes, default=[784, 30, 10],
                        help="neurons per layer, comma-separated (default: 784,30,10)")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=10, help="mini-batch size m")
    parser.add_argument("--eta", type=float, default=3.0, help="learning rate η")
    parser.add_argument("--cost", choices=["quadratic", "cross-entropy"], default="quadratic",
                        help="cost function")
    parser.add_argument("--init", choices=["large", "default"], default="large",
                        help="large: N(0,1) weights (chapter 1); default: N(0,1/n_in) "
                        "weights (network2.py)")
    parser.add_argument("--lmbda", type=float, default=0.0, help="L2 regularization λ")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (default: a fresh one, printed)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="floating-point precision")
    parser.add_argument("--engine", choices=ENGINE_NAMES, default="auto",
                        help="how each epoch's steps run: fused (CUDA) trains a whole epoch "
                        "in one kernel launch, eager step by step, cpu step by step in "
                        "fewer NumPy calls; auto takes fused on CUDA where the network "
                        "fits, cpu on the CPU for the book's costs, else eager")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="directory of MNIST IDX files (gzipped or not) or the book's "
                        "mnist.pkl.gz (default: the bundled copy)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="train on the first N training images only (default: all)")
    parser.add_argument("--evaluate", choices=["test", "validation"], default="test",
                        help="the data scored after each epoch")
    parser.add_argument("--monitor-training-cost", action="store_true",
                        help="also report the cost on the training data each epoch")
    parser.add_argument("--monitor-training-accuracy", action="store_true",
                        help="also report the accuracy on the training data each epoch")
    parser.add_argument("--monitor-evaluation-cost", action="store_true",
                        help="also report the cost on the evaluated data each epoch")


def add_long_run_options(parser: argparse.ArgumentParser) -> None:
    """``--overwrite`` and ``--quiet``: the same for ``train`` and ``sweep``."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --checkpoint file (without it, a "
                        "checkpoint is only ever continued, by --resume)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress line (there is none when stderr is not a "
                        "terminal either); the per-epoch lines stay")
