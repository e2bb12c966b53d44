"""gpunet in a Jupyter notebook: a progress bar that updates in place, and ``History``
as a small table.

Nothing here imports IPython or tqdm unless the notebook is there: scripts and the
command pay nothing. The bar is ``tqdm.auto``'s (the ``notebook`` extra installs tqdm
and ipywidgets), the one most notebook users know; without tqdm there is no bar, as in
a log (:mod:`gpunet.training.progress` drives it).
"""

from __future__ import annotations

import html
import importlib
import sys
from typing import Any, Sequence

HTML_ROWS = 5
"""A long history's table shows its first and last this many epochs."""

COLUMNS = (("evaluation", "evaluation_correct", "evaluation_total"),
           ("evaluation cost", "evaluation_cost", None),
           ("training", "training_correct", "training_total"),
           ("training cost", "training_cost", None),
           ("η", "eta", None),
           ("seconds", "train_seconds", None))
"""A table's columns: heading, the record's key, and the total a count is out of."""


def in_notebook() -> bool:
    """Whether this is a Jupyter kernel (IPython running under ipykernel). Only looks at
    what is already imported: importing IPython here would cost a script seconds."""
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython too old or too odd to ask
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def notebook_bar(total: int, description: str) -> Any:
    """A ``tqdm.auto`` bar of ``total`` examples in a notebook (``None`` outside one, or
    where tqdm is not installed: no bar, as in a log)."""
    if not in_notebook():
        return None
    try:
        auto = importlib.import_module("tqdm.auto")
    except ImportError:
        return None
    return auto.tqdm(total=total, desc=description, unit="examples", unit_scale=True,
                     leave=True, dynamic_ncols=True)


def history_html(records: Sequence[dict[str, Any]], engine: str = "") -> str:
    """``records`` (a history's, one per epoch) as an HTML table: the book's epoch label,
    then each monitored metric (counts as ``k / n (p%)``)."""
    columns = [c for c in COLUMNS if any(c[1] in r for r in records)]
    shown: list[Any] = list(records)
    if len(shown) > 2 * HTML_ROWS + 1:
        shown = shown[:HTML_ROWS] + [None] + shown[-HTML_ROWS:]
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _, _ in columns)
    rows = []
    for record in shown:
        if record is None:
            rows.append(f"<tr><td>…</td>{'<td></td>' * len(columns)}</tr>")
            continue
        cells = "".join(f"<td>{_cell(record, key, total)}</td>" for _, key, total in columns)
        rows.append(f"<tr><td>{int(record['epoch'])}</td>{cells}</tr>")
    caption = f"{len(records)} epoch{'s' if len(records) != 1 else ''}" + (
        f", engine {html.escape(engine)}" if engine else "")
    return (f"<table><caption>History: {caption}</caption><thead><tr><th>epoch</th>{head}"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _cell(record: dict[str, Any], key: str, total: Any) -> str:
    if key not in record:
        return ""
    value = record[key]
    if total is not None:
        n = record[total]
        return f"{int(value)} / {int(n)} ({100.0 * value / n:.2f}%)"
    if key == "train_seconds":
        return f"{float(value):.2f}"
    return f"{float(value):.4g}"
