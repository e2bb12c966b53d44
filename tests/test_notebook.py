"""gpunet in a Jupyter notebook (issue 30, point 5): a progress bar that updates in
place (``tqdm.auto``, where installed), none in logs and pipes; ``History`` as a small
HTML table.

A notebook is an IPython kernel: here one is stood in for by the modules a kernel has
imported (``IPython`` whose ``get_ipython()`` has a ``kernel``, and ``ipykernel``), and
tqdm by a recorder with ``tqdm.auto.tqdm``'s interface, so the tests hold without
Jupyter.
"""

from __future__ import annotations

import io
import re
import sys
import time
import types

import pytest

import gpunet
from gpunet.training.progress import Progress


class Bar:
    """``tqdm.auto.tqdm`` as far as gpunet uses it, recording what it was told."""

    made: list["Bar"] = []

    def __init__(self, total, desc, **kwargs):
        self.total, self.desc, self.kwargs = total, desc, kwargs
        self.n, self.closed, self.seen = 0, False, []
        Bar.made.append(self)

    def set_description(self, desc, refresh=True):
        self.desc = desc

    def refresh(self):
        self.seen.append((self.n, self.desc))

    def close(self):
        self.closed = True


@pytest.fixture
def notebook(monkeypatch):
    """A Jupyter kernel's modules, and tqdm.auto as :class:`Bar`."""
    kernel = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "IPython",
                        types.SimpleNamespace(get_ipython=lambda: kernel))
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = Bar
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    Bar.made = []
    return Bar.made


def _in_notebook() -> bool:
    from gpunet.training.notebook import in_notebook

    return in_notebook()


def test_a_notebook_is_told_from_a_script(notebook, monkeypatch):
    assert _in_notebook()
    monkeypatch.setitem(sys.modules, "IPython",
                        types.SimpleNamespace(get_ipython=lambda: None))  # plain IPython
    assert not _in_notebook()
    monkeypatch.delitem(sys.modules, "ipykernel")
    assert not _in_notebook()


class Counting:
    """An engine that counts its examples on the host, as the step engines do."""

    examples_done = 0


def test_the_bar_counts_every_example_and_names_the_epochs_done(notebook):
    """Old: in a notebook (output that is no terminal) there was nothing."""
    engine = Counting()
    stream = io.StringIO()  # a kernel's stderr: no terminal
    bar = Progress(epochs=3, n=100, engine=engine, stream=stream, interval=0.01,
                   first_epoch=1)
    assert bar.enabled and len(notebook) == 1
    made = notebook[0]
    assert made.total == 2 * 100 and made.desc == "1 of 3 epochs done"
    bar.start_epoch(1)
    engine.examples_done = 40
    deadline = time.monotonic() + 10
    while (40, "1 of 3 epochs done") not in made.seen and time.monotonic() < deadline:
        time.sleep(0.01)  # the drawing thread's next tick (a guard, not a measurement)
    assert (40, "1 of 3 epochs done") in made.seen  # 40 examples into the second epoch
    bar.end_epoch(0.1)
    assert made.seen[-1] == (100, "2 of 3 epochs done")
    bar.start_epoch(2)
    bar.end_epoch(0.1)
    bar.close()
    assert made.seen[-1] == (200, "3 of 3 epochs done") and made.closed
    assert stream.getvalue() == ""  # the terminal line is not drawn beside it


def test_no_bar_without_tqdm_nor_outside_a_notebook(notebook, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # tqdm not installed
    assert not Progress(epochs=3, n=100, engine=Counting(), stream=io.StringIO()).enabled
    monkeypatch.undo()  # a script (or a log, a pipe): tqdm installed or not, nothing
    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = Bar
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    Bar.made = []
    assert not Progress(epochs=3, n=100, engine=Counting(), stream=io.StringIO()).enabled
    assert Bar.made == []


def _small():
    data = gpunet.load_mnist()
    return (data.training[0][:200], data.training[1][:200]), (data.test[0][:100],
                                                                 data.test[1][:100])


def test_sgd_in_a_notebook_shows_the_bar_unless_asked_not_to(notebook):
    train, test = _small()
    net = gpunet.Network([784, 10, 10], device="cpu", seed=0)
    net.SGD(train, 2, 10, 0.5, test_data=test, verbose=False)
    assert len(notebook) == 1 and notebook[0].total == 400 and notebook[0].closed
    net.SGD(train, 2, 10, 0.5, test_data=test, verbose=False, progress=False)
    assert len(notebook) == 1  # none the second time
    with pytest.raises(ValueError, match="progress"):
        net.SGD(train, 1, 10, 0.5, verbose=False, progress="yes")


def test_a_history_is_a_small_table_in_a_notebook():
    """Old: no _repr_html_, so a notebook showed the book's tuple of lists."""
    train, test = _small()
    net = gpunet.Network([784, 10, 10], device="cpu", seed=0)
    history = net.SGD(train, 3, 10, 0.5, test_data=test, verbose=False,
                      monitor_training_cost=True)
    table = history._repr_html_()
    assert repr(history) == repr(tuple(history))  # the book's value, as before
    assert table.startswith("<table><caption>History: 3 epochs, engine cpu</caption>")
    assert re.findall(r"<th>([^<]*)</th>", table) == ["epoch", "evaluation",
                                                     "training cost", "seconds"]
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\d+) / 100 \(([\d.]+)%\)</td>", table)
    assert [(int(j), int(k)) for j, k, _ in rows] == list(enumerate(history[1]))
    long = gpunet.History(records=[dict(r, epoch=j) for j in range(40)
                                   for r in history.records[:1]])
    table = long._repr_html_()
    epochs = [int(j) for j in re.findall(r"<tr><td>(\d+)</td>", table)]
    assert epochs == [0, 1, 2, 3, 4, 35, 36, 37, 38, 39] and "<td>…</td>" in table


class LateStop(type(__import__("threading").Event())):
    """A stop event whose timed wait, like a real one, can time out in the instant
    ``close()`` sets it: it returns ``False`` (timed out) only once the event is set."""

    def wait(self, timeout=None):
        super().wait()
        return False


def test_a_tick_racing_close_draws_nothing_after_the_last_epoch(notebook):
    """CI once saw the bar end at (140, "2 of 3 epochs done") instead of 200: close()
    wakes the drawing thread by setting ``_running``, and a tick whose wait timed out
    just then drew the stale count. Here that interleaving is forced, not waited for."""
    engine = Counting()
    bar = Progress(epochs=3, n=100, engine=engine, stream=io.StringIO(), interval=0.01,
                   first_epoch=1)
    made = notebook[0]
    bar._stop = LateStop()
    bar.start_epoch(1)
    engine.examples_done = 40
    bar.end_epoch(0.1)
    bar.start_epoch(2)
    bar.end_epoch(0.1)
    bar.close()
    assert not bar._thread.is_alive()
    assert made.seen[-1] == (200, "3 of 3 epochs done") and made.closed
