"""A progress line for training on a terminal (examples per second and time left), and
a progress bar in a Jupyter notebook.

Why our own and not tqdm or rich: gpunet's only run-time dependency is NumPy, and what
is needed is small and specific: a background thread that reads a *host-side* counter a
few times a second. An engine that trains step by step from the host may keep
``examples_done`` (examples of the current epoch already handed to the device, a plain
Python int it updates anyway in its loop); reading it never waits on the device, so the
bar adds no synchronisation inside a GPU epoch (chapter 1's mini-batch loop runs exactly
as without it). An engine that runs a whole epoch in one call has no such counter; then
the line shows the epoch's elapsed time and the time left estimated from earlier
epochs. On anything but a terminal (a pipe, a file, a CI log) nothing is written.

In a Jupyter notebook (an IPython kernel, whose output is no terminal) the same counter
drives a bar that updates in place, drawn by ``tqdm.auto`` where tqdm is installed (the
``notebook`` extra: tqdm and ipywidgets), the ecosystem's usual bar; without tqdm there
is none, as in a log.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Optional, TextIO

from .notebook import notebook_bar

BAR_WIDTH = 24


def epochs_done(done: int, epochs: Optional[int] = None) -> str:
    """How many epochs are complete, in the words every line but the book's ``Epoch
    j:`` uses (the progress line, Ctrl-C, resuming, the summaries, a sweep's lines):
    ``"4 of 30 epochs done"`` (``"4 epochs done"`` where the total is not known)."""
    of = f" of {epochs}" if epochs is not None else ""
    return f"{done}{of} epoch{'s' if (done if epochs is None else epochs) != 1 else ''} done"


def fmt_duration(seconds: float) -> str:
    """``75.3`` -> ``"1:15"``; hours when needed (``"1:02:03"``)."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Draws one self-overwriting status line on ``stream`` while epochs run.

    The training loop calls :meth:`start_epoch` before an engine's epoch and
    :meth:`end_epoch` after it (which clears the line, so the per-epoch line prints
    cleanly); :meth:`close` stops the thread. Disabled (every method a no-op) unless
    ``stream`` is a terminal, or this is a Jupyter notebook with tqdm (then the bar is
    :func:`notebook_bar`'s, over every example of the epochs still to train).
    """

    def __init__(self, epochs: int, n: int, engine: Any, stream: Optional[TextIO] = None,
                 interval: float = 0.25, first_epoch: int = 0) -> None:
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty())
        self.epochs, self.n, self.engine, self.interval = epochs, n, engine, interval
        self.epoch = first_epoch
        self.epoch_seconds: list[float] = []
        self._started = 0.0
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._drawn = False
        self.first_epoch = first_epoch
        self.bar: Any = None if self.enabled else notebook_bar(
            (epochs - first_epoch) * n, epochs_done(first_epoch, epochs))
        self.enabled = self.enabled or self.bar is not None

    # -------------------------------------------------------------- the loop's side
    def start_epoch(self, epoch: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            self.epoch, self._started = epoch, time.perf_counter()
            self._running.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gpunet-progress",
                                            daemon=True)
            self._thread.start()

    def end_epoch(self, seconds: float) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._running.clear()
            self.epoch_seconds.append(seconds)
            if self.bar is not None:
                self._advance(self.n, self.epoch + 1)
            self._clear()

    def close(self) -> None:
        if not self.enabled:
            return
        self._stop.set()  # first: a thread woken by the next line sees it (see _run)
        self._running.set()  # wake the thread so it can end
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        with self._lock:
            self._clear()
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ drawing
    def _run(self) -> None:
        while not self._stop.is_set():
            self._running.wait()
            if self._stop.wait(self.interval):
                break
            with self._lock:
                if self._stop.is_set():  # close() sets _running only to wake us: no tick
                    break
                if self._running.is_set() and self.bar is not None:
                    done = getattr(self.engine, "examples_done", None)
                    if isinstance(done, int) and 0 <= done <= self.n:
                        self._advance(done, self.epoch)
                elif self._running.is_set():
                    self._draw(self.line(time.perf_counter() - self._started))

    def line(self, elapsed: float) -> str:
        """The status text ``elapsed`` seconds into the current epoch."""
        head = epochs_done(self.epoch, self.epochs)
        epochs_after = self.epochs - self.epoch - 1
        done = getattr(self.engine, "examples_done", None)
        if isinstance(done, int) and 0 < done <= self.n and elapsed > 0:
            rate = done / elapsed
            left = (self.n - done) / rate
            run_left = left + epochs_after * self.n / rate
            filled = int(BAR_WIDTH * done / self.n)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            return (f"{head} [{bar}] {done}/{self.n}  {rate:,.0f} examples/s  "
                    f"{fmt_duration(left)} left in epoch, {fmt_duration(run_left)} in all")
        text = f"{head}  {fmt_duration(elapsed)} elapsed"
        if self.epoch_seconds:
            per_epoch = sum(self.epoch_seconds) / len(self.epoch_seconds)
            rate = self.n / per_epoch if per_epoch > 0 else 0.0
            run_left = max(per_epoch - elapsed, 0.0) + epochs_after * per_epoch
            text += (f"  ~{rate:,.0f} examples/s  ~{fmt_duration(run_left)} left")
        return text

    def _advance(self, done: int, epochs_complete: int) -> None:
        """The notebook bar at ``done`` examples of the current epoch, its label the
        epochs complete."""
        bar: Any = self.bar
        try:
            bar.n = (self.epoch - self.first_epoch) * self.n + done
            bar.set_description(epochs_done(epochs_complete, self.epochs), refresh=False)
            bar.refresh()
        except Exception:  # the front end went away: stop drawing
            self.bar, self.enabled = None, False
            self._stop.set()

    def _draw(self, text: str) -> None:
        try:
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()
            self._drawn = True
        except (OSError, ValueError):  # the terminal went away: stop drawing
            self.enabled = False
            self._stop.set()

    def _clear(self) -> None:
        if self._drawn:
            try:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._drawn = False
