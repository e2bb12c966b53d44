"""``gpunet predict``: classify the user's own digit images with a saved network.

Each answer says how sure it is. A network's ten outputs are sigmoid activations, each
near 1 for "this digit" and near 0 otherwise, so a clear digit has one output near 1
and the others near 0. An answer is marked **low confidence** when the winning output
is below :data:`WEAK` (0.5) or the runner-up is within :data:`CLOSE` (0.2) of it.

The rule and its thresholds were chosen from measurements (issue 26) with two networks
trained on the book's 50,000 images for 5 epochs ([784, 100, 10] cross-entropy,
η = 0.5, λ = 5: 96.8% on the test set; [784, 30, 10] quadratic, η = 3: 93.9%). On the
10,000 test digits the mark falls on 47% and 46% of the wrong answers and on 1.9% and
2.7% of the right ones; on 1,100 photo-like digits (``scripts/photo_digits.py``: uneven
light, shadows, paper grain, thin and thick pens, off-centre, EXIF-rotated, JPEG;
98.4% and 96.3% read right) on 78% and 61% of the wrong answers and 1.7% and 2.7% of
the right ones. Lower thresholds miss more wrong answers (winning output below 0.3 or
margin below 0.1: 26-49% of them); higher ones mark more right answers (0.6 and 0.4:
3-5%).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .options import add_device, path

WEAK = 0.5
"""A winning output below this is a low-confidence answer."""

CLOSE = 0.2
"""A runner-up output within this of the winning one makes a low-confidence answer."""


def add_parser(sub: Any, formatter: type) -> None:
    predict = sub.add_parser(
        "predict",
        help="classify digit images (PNG, JPEG, .npy) with a saved network",
        description="Classify digit images as users have them: PNG or JPEG (also MPO, "
        "BMP, GIF, TIFF, WebP, PBM/PGM/PPM) or .npy, any size, greyscale or colour, dark "
        "ink on light paper or light on dark, the digit anywhere in the picture, the "
        "light uneven, the photo turned by its EXIF orientation. Each is prepared as "
        "MNIST's digits were (uneven light removed, inverted if the ink is dark, cropped "
        "to the digit, scaled into a 20x20 box, centred by its centre of mass in 28x28). "
        "Prints 'PATH: DIGIT (confidence C)', C being the winning output neuron's "
        f"activation, and adds ', low confidence: runner-up D at C2' when C is below "
        f"{WEAK} or the runner-up's output C2 is within {CLOSE} of it (on MNIST's test "
        "set, about half of a network's wrong answers and 2-3% of its right ones carry "
        "the mark). Other formats (PostScript, PDF, ...) are refused, never opened; so "
        "are images over 67,108,864 pixels. Needs Pillow (the images extra).",
        formatter_class=formatter,
    )
    predict.add_argument("network", metavar="NET.json", type=path,
                         help="a network saved by gpunet train --save or network2.py")
    predict.add_argument("images", nargs="+", metavar="IMAGE", type=path,
                         help="image files (PNG, JPEG, ... or .npy)")
    predict.add_argument("--json", action="store_true",
                         help='print a JSON list of {"path", "digit", "confidence", '
                         '"runner_up", "runner_up_confidence", "low_confidence", '
                         '"outputs"} (or {"path", "error"})')
    add_device(predict)
    predict.set_defaults(run=run)


def assess(outputs: Any) -> dict[str, Any]:
    """The answer the ten ``outputs`` give and how sure it is: ``digit`` (the winning
    output), its ``confidence`` (that output), the ``runner_up`` digit and its
    ``runner_up_confidence``, and ``low_confidence``: the winning output is below
    :data:`WEAK` or the runner-up within :data:`CLOSE` of it."""
    import numpy as np

    values = np.asarray(outputs, dtype=float).ravel()
    order = np.argsort(-values, kind="stable")
    digit, runner_up = int(order[0]), int(order[1])
    confidence, second = float(values[digit]), float(values[runner_up])
    return {"digit": digit, "confidence": confidence, "runner_up": runner_up,
            "runner_up_confidence": second,
            "low_confidence": bool(confidence < WEAK or confidence - second < CLOSE)}


def overflowed(network: str) -> str:
    """Why a network's outputs came out NaN or infinite, and what to do."""
    return (f"the outputs of {network} are NaN or infinite: its weights are so large that "
            "the sums overflow (the file is corrupt, or the run that saved it diverged); "
            "train it again.")


def line(path: str, answer: dict[str, Any]) -> str:
    """The text line of one answer: ``PATH: DIGIT (confidence C)``, with the mark."""
    text = f"{path}: {answer['digit']} (confidence {answer['confidence']:.2f}"
    if answer["low_confidence"]:
        text += (f", low confidence: runner-up {answer['runner_up']} at "
                 f"{answer['runner_up_confidence']:.2f}")
    return text + ")"


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..io.images import read_digit
    from ..networks.network import Network

    net = Network.load(args.network, device=args.device)
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
        with np.errstate(all="ignore"):  # an overflow is reported below, once
            outputs = np.asarray(net.backend.to_host(net.feedforward(x)), dtype=float).ravel()
        if not np.isfinite(outputs).all():  # finite weights whose sums overflow
            failed += 1
            message = f"{path}: {overflowed(args.network)}"
            print(f"gpunet: error: {message}", file=sys.stderr, flush=True)
            results.append({"path": path, "error": message})
            continue
        answer = assess(outputs)
        results.append({"path": path, **answer, "outputs": outputs.tolist()})
        if not args.json:
            print(line(path, answer), flush=True)
    if args.json:
        print(json.dumps(results))
    return 2 if failed else 0
