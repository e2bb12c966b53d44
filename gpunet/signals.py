"""SIGTERM handled like Ctrl-C: the training loops keep the completed epochs either way.

``kill``, ``timeout``, SLURM, ``docker stop`` and systemd stop a program with SIGTERM,
not SIGINT. Python's default for SIGTERM ends the process on the spot (no ``finally``,
no ``--save``, no summary); its default for SIGINT raises ``KeyboardInterrupt``, which
the training loops (:mod:`gpunet.training`, :mod:`gpunet.stack`) turn into "roll back to
the last completed epoch, write the checkpoint, propagate". Within
:func:`terminate_as_interrupt` SIGTERM raises :class:`Terminated`, a ``KeyboardInterrupt``
subclass, so every place that keeps work on Ctrl-C keeps it on SIGTERM too, and the
command line can still tell the two apart for the exit status (130 for SIGINT, 143 for
SIGTERM: 128 + the signal's number, the shells' convention).

Only the main thread can set signal handlers, and a handler someone else installed is
theirs: in either case the helpers here change nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from types import FrameType
from typing import Any, Iterator, Optional

EXIT_SIGINT = 128 + int(signal.SIGINT)  # 130
EXIT_SIGTERM = 128 + int(signal.SIGTERM)  # 143


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as for Ctrl-C (a ``KeyboardInterrupt`` subclass)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args or ("terminated (SIGTERM)",))


def exit_status(interrupt: BaseException) -> int:
    """The conventional exit status for an interrupt: 143 for SIGTERM, 130 for SIGINT."""
    return EXIT_SIGTERM if isinstance(interrupt, Terminated) else EXIT_SIGINT


def _raise_terminated(signum: int, frame: Optional[FrameType]) -> None:
    raise Terminated()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated` (where Python's default
    would end the process at once); the handler before it is put back after.

    Does nothing outside the main thread, or where SIGTERM already has a handler other
    than the default (someone else's, or this one from an enclosing block).
    """
    if not _in_main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C or SIGTERM that arrives inside the block until the block is done.

    Used where the loop's state must change all at once (an epoch's commit, the
    roll-back): the interrupt is raised when the block ends, as the exception it would
    have been. Only signals whose handler is the interrupt one are held (SIGINT's
    default, SIGTERM's inside :func:`terminate_as_interrupt`); outside the main thread
    the block runs as it is.
    """
    if not _in_main_thread():
        yield
        return
    held = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: _raise_terminated}
    held = {s: h for s, h in held.items() if signal.getsignal(s) is h}
    received: list[int] = []
    for signum in held:
        signal.signal(signum, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        for signum, handler in held.items():
            signal.signal(signum, handler)
        if received:
            raise Terminated() if received[0] == signal.SIGTERM else KeyboardInterrupt()
