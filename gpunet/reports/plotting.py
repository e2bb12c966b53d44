"""Learning curves as PNG: accuracy per epoch, and the costs when they were monitored.

Chapter 3 ("Overfitting and regularization") reads training runs from exactly these
plots: the accuracy on the evaluation data per epoch, the cost on the training and
evaluation data per epoch. Several runs are overlaid with a legend. Needs the ``plot``
extra (matplotlib); without it :func:`require_matplotlib` says how to get it. The book
reproduction's own figures are in :mod:`gpunet.book.plots`.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any, Sequence, Union

from ..backends.hints import install_hint
from ..io.outputs import atomic_write_bytes

if TYPE_CHECKING:
    from ..training.history import History

PathLike = Union[str, "os.PathLike[str]"]

EXTRA_HINT = install_hint("plot")


def require_matplotlib(what: str = "plotting") -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend, or a ``ValueError`` naming the
    ``plot`` extra."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError(f"{what} needs matplotlib, which is not installed: "
                         f"install {EXTRA_HINT}.") from None
    matplotlib.use("Agg")  # files only, no screen needed
    import matplotlib.pyplot as plt

    return plt


#: Suffixes of image and document formats other than PNG (matplotlib's and the usual
#: ones): a plot named so would hold PNG bytes under a name that promises another format.
OTHER_FORMATS = frozenset({".pdf", ".svg", ".svgz", ".eps", ".ps", ".pgf", ".jpg", ".jpeg",
                           ".tif", ".tiff", ".webp", ".gif", ".bmp", ".raw", ".rgba",
                           ".html", ".htm"})


def check_plot_output(path: PathLike, option: str, what: str = "") -> None:
    """Before any work: ``option``'s ``path`` can hold what every plot here writes, a
    PNG image (a name like ``curves.pdf`` is refused, not filled with PNG bytes; a name
    without a suffix, or another suffix, is the user's choice), and matplotlib is
    installed (:func:`require_matplotlib`; ``what`` needs it, default ``option``)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix in OTHER_FORMATS:
        raise ValueError(f"{option} {path}: gpunet draws PNG images, and this name says "
                         f"{suffix[1:].upper()}; name the file .png.")
    require_matplotlib(what or option)


def save_figure(fig: Any, path: PathLike, option: str = "") -> None:
    """Write ``fig`` as PNG to ``path`` atomically, then free it (a failed write is a
    :class:`gpunet.io.outputs.WriteError` naming ``option`` and the file)."""
    plt = require_matplotlib()
    buffer = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue(), option)


def check_records(records: Sequence[Any], what: str) -> None:
    """``ValueError`` naming ``what`` unless every record can be drawn: an epoch's
    record whose every field fits (:func:`gpunet.training.history.check_epoch_record`: a whole
    epoch number, numbers for the costs, each ``*_correct`` a count out of a positive
    ``*_total``), so a file edited or damaged by hand is one clear error, not a
    traceback from inside the plotting."""
    from ..io.fields import FieldError
    from ..training.history import check_epoch_record

    for i, r in enumerate(records):
        try:
            check_epoch_record(r)
        except FieldError as exc:
            raise ValueError(f"{what}: record {i + 1}: {exc}.") from None


def plot_learning_curves(runs: Sequence[tuple[str, "History", str]], path: PathLike,
                         option: str = "") -> None:
    """Draw ``runs`` (``(label, history, evaluation data name)`` each) into ``path``.

    Left: accuracy (%) per epoch on the evaluation data (solid) and, where monitored,
    the training data (dashed). Right, when any run monitored a cost: the cost per epoch
    on the training (dashed) and evaluation (solid) data.
    """
    for label, history, _ in runs:
        check_records(history.records, label)
    plt = require_matplotlib()
    has_cost = any(h.training_cost or h.evaluation_cost for _, h, _ in runs)
    fig, axes = plt.subplots(1, 2 if has_cost else 1, figsize=(11 if has_cost else 6.5, 4),
                             squeeze=False)
    acc_ax = axes[0][0]
    for i, (label, history, name) in enumerate(runs):
        colour = f"C{i % 10}"
        for prefix, style, what in (("evaluation", "-", name), ("training", "--", "training")):
            points = [(r["epoch"], 100.0 * r[f"{prefix}_correct"] / r[f"{prefix}_total"])
                      for r in history.records if f"{prefix}_correct" in r]
            if points:
                acc_ax.plot(*zip(*points), style, color=colour, marker=".",
                            label=f"{label}: {what}")
        if has_cost:
            for key, style, what in (("evaluation_cost", "-", name),
                                     ("training_cost", "--", "training")):
                points = [(r["epoch"], r[key]) for r in history.records if key in r]
                if points:
                    axes[0][1].plot(*zip(*points), style, color=colour, marker=".",
                                    label=f"{label}: {what}")
    acc_ax.set_title("Accuracy per epoch")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("accuracy (%)")
    if has_cost:
        axes[0][1].set_title("Cost per epoch")
        axes[0][1].set_xlabel("epoch")
        axes[0][1].set_ylabel("cost")
    from matplotlib.ticker import MaxNLocator

    for ax in axes[0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    save_figure(fig, path, option)
