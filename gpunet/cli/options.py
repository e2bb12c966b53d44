"""Option types and checks shared by the subcommands."""

from __future__ import annotations

import argparse

from ..backends import DEVICES_HELP


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
