"""``gpunet evaluate``: accuracy, confusion matrix and worst mistakes of a saved network."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .options import add_device, path


def add_parser(sub: Any, formatter: type) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        help="score a saved network on the MNIST test set: confusion matrix, worst mistakes",
        description="Score a saved network on the 10,000 MNIST test images: accuracy, the "
        "confusion matrix (rows: true digit, columns: answer) and the most confused pairs.",
        formatter_class=formatter,
    )
    evaluate.add_argument("network", metavar="NET.json", type=path,
                          help="a network saved by gpunet train --save or network2.py")
    evaluate.add_argument("--data", metavar="DIR", type=path, default=None,
                          help="MNIST IDX files or mnist.pkl.gz (default: the bundled copy)")
    evaluate.add_argument("--json", action="store_true",
                          help="print the results as one JSON object")
    evaluate.add_argument("--plot", metavar="PATH", type=path, default=None,
                          help="draw the confusion matrix and the worst mistakes into PATH "
                          "(PNG; needs the plot extra)")
    add_device(evaluate)
    evaluate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..reports.evaluation import evaluate, plot_evaluation
    from ..io.mnist import load_mnist
    from ..io.outputs import check_outputs
    from ..networks.network import Network

    import numpy as np

    from .outputs import data_inputs
    from .predict import overflowed

    check_outputs({"--plot": args.plot},
                  inputs={"NET.json": args.network, **data_inputs(args)})
    if args.plot:
        from ..reports.plotting import check_plot_output

        check_plot_output(args.plot, "--plot")
    net = Network.load(args.network, device=args.device)
    if net.sizes[0] != 784 or net.sizes[-1] != 10:
        raise ValueError(f"{args.network}: sizes {net.sizes} do not fit MNIST (784 inputs, "
                         "10 outputs).")
    data = load_mnist(args.data)
    X, labels = checked_test_set(data, net.sizes, args.network)
    with np.errstate(all="ignore"):  # an overflow is reported below, once
        result = evaluate(net, X, labels)
    if not np.isfinite(result.outputs).all():
        raise ValueError(overflowed(args.network))
    matrix = result.confusion()
    pairs = result.most_confused(5)
    if args.json:
        print(json.dumps({"network": args.network, "correct": result.correct,
                          "total": result.total, "accuracy": result.correct / result.total,
                          "confusion": matrix.tolist(),
                          "most_confused": [{"true": t, "answered": p, "count": c}
                                            for t, p, c in pairs]}))
    else:
        print(f"{args.network}: {result.correct} / {result.total} "
              f"({100.0 * result.correct / result.total:.2f}%) on {data.source} test images")
        print("confusion matrix (rows: true digit, columns: answer)")
        print("     " + "".join(f"{p:>6}" for p in range(matrix.shape[1])))
        for t, row in enumerate(matrix):
            print(f"{t:>5}" + "".join(f"{c:>6}" for c in row))
        print("most confused: " + "; ".join(f"{t} taken for {p} {c} times"
                                             for t, p, c in pairs))
    if args.plot:
        plot_evaluation(result, X, args.plot, title=f"{args.network}: {result.correct} / "
                        f"{result.total} correct", option="--plot")
        if not args.json:
            print(f"wrote {args.plot}")
    return 0


def checked_test_set(data: Any, sizes: list[int], network: str) -> tuple[Any, Any]:
    """The test images and digit labels ``data`` holds, checked against the network
    (``ValueError`` naming the data and what to change): there is a test set, as wide
    as the input layer, its labels digits the output layer has a neuron for (one-hot
    target vectors are taken as their digits)."""
    X, labels = data.test
    if not len(labels):
        raise ValueError(f"--data: {data.source} has no test set, which evaluate scores; "
                         "give data with one (a folder of IDX files or of train.csv and "
                         "test.csv, an .npz archive with x_test and y_test).")
    if X.shape[1] != sizes[0]:
        raise ValueError(f"--data: {data.source} has {X.shape[1]} inputs per test image, "
                         f"but {network} takes {sizes[0]}; give the data it was trained on.")
    if labels.ndim == 2 and labels.shape[1] == sizes[-1]:
        labels = labels.argmax(axis=1)
    if labels.ndim != 1 or labels.min() < 0 or labels.max() >= sizes[-1]:
        shown = (f"labels from {labels.min()} to {labels.max()}" if labels.ndim == 1
                 else f"targets of shape {labels.shape}")
        raise ValueError(f"--data: {data.source} has test {shown}, but {network} has "
                         f"{sizes[-1]} outputs (digits 0 to {sizes[-1] - 1}); give the data "
                         "it was trained on.")
    return X, labels
