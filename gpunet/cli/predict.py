"""``gpunet predict``: classify the user's own digit images with a saved network."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .options import add_device


def add_parser(sub: Any, formatter: type) -> None:
    predict = sub.add_parser(
        "predict",
        help="classify digit images (PNG, JPEG, .npy) with a saved network",
        description="Classify digit images as users have them: PNG or JPEG (or .npy), "
        "any size, greyscale or colour, dark ink on light paper or light on dark, the "
        "digit anywhere in the picture. Each is prepared as MNIST's digits were (inverted "
        "if the background is light, cropped to the ink, scaled into a 20x20 box, centred "
        "by its centre of mass in 28x28). Prints 'PATH: DIGIT (confidence C)', C being "
        "the winning output neuron's activation. Needs Pillow (the images extra).",
        formatter_class=formatter,
    )
    predict.add_argument("network", metavar="NET.json",
                         help="a network saved by gpunet train --save or network2.py")
    predict.add_argument("images", nargs="+", metavar="IMAGE",
                         help="image files (PNG, JPEG, ... or .npy)")
    predict.add_argument("--json", action="store_true",
                         help='print a JSON list of {"path", "digit", "outputs"} '
                         '(or {"path", "error"})')
    add_device(predict)
    predict.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..images import read_digit
    from ..persistence import load

    net = load(args.network, device=args.device)
    if net.sizes[0] != 784 or net.sizes[-1] != 10:
        raise ValueError(f"{args.network}: sizes {net.sizes} do not fit MNIST digits: a "
                         "digit classifier takes 784 inputs (28x28 pixels) and has 10 "
                         "outputs, one per digit.")
    results: list[dict[str, Any]] = []
    failed = 0
    for path in args.images:
        try:
            x = read_digit(path)
        except ValueError as exc:
            failed += 1
            print(f"gpunet: error: {exc}", file=sys.stderr, flush=True)
            results.append({"path": path, "error": str(exc)})
            continue
        outputs = np.asarray(net.backend.to_host(net.feedforward(x)), dtype=float)
        digit = int(np.argmax(outputs))
        results.append({"path": path, "digit": digit, "outputs": outputs.tolist()})
        if not args.json:
            print(f"{path}: {digit} (confidence {outputs[digit]:.2f})", flush=True)
    if args.json:
        print(json.dumps(results))
    return 2 if failed else 0
