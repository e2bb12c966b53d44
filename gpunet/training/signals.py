"""SIGTERM handled like Ctrl-C: the training loops keep the completed epochs either way.

``kill``, ``timeout``, SLURM, ``docker stop`` and systemd stop a program with SIGTERM,
not SIGINT. Python's default for SIGTERM ends the process on the spot (no ``finally``,
no ``--save``, no summary); its default for SIGINT raises ``KeyboardInterrupt``, which
the training loops (:mod:`gpunet.training.loop`, :mod:`gpunet.networks.stack`) turn into "roll back to
the last completed epoch, write the checkpoint, propagate". Within
:func:`terminate_as_interrupt` SIGTERM raises :class:`Terminated`, a ``KeyboardInterrupt``
subclass, so every place that keeps work on Ctrl-C keeps it on SIGTERM too, and the
command line can still tell the two apart for the exit status (130 for SIGINT, 143 for
SIGTERM: 128 + the signal's number, the shells' convention).

Only the main thread can set signal handlers, and a handler someone else installed is
theirs: in either case the helpers here change nothing.
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Callable, Iterator, Optional, Union

EXIT_SIGINT = 128 + int(signal.SIGINT)  # 130
EXIT_SIGTERM = 128 + int(signal.SIGTERM)  # 143

Handler = Union[Callable[[int, Optional[FrameType]], Any], int, signal.Handlers, None]
"""What ``signal.signal`` takes and ``signal.getsignal`` gives."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as for Ctrl-C (a ``KeyboardInterrupt`` subclass)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args or ("terminated (SIGTERM)",))


def exit_status(interrupt: BaseException) -> int:
    """The conventional exit status for an interrupt: 143 for SIGTERM, 130 for SIGINT."""
    return EXIT_SIGTERM if isinstance(interrupt, Terminated) else EXIT_SIGINT


def interrupt_for(signum: int) -> KeyboardInterrupt:
    """The exception a signal raises here: :class:`Terminated` for SIGTERM, else
    ``KeyboardInterrupt``."""
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


class InterruptHandler:
    """A SIGINT or SIGTERM handler that raises the signal's interrupt
    (:func:`interrupt_for`) and remembers that it came (:attr:`arrived`).

    Remembering matters where the exception is lost on its way: a Ctrl-C inside a C
    extension's import (NumPy's, CuPy's) surfaces as an ``ImportError`` that no longer
    mentions it, and one inside C code that clears errors leaves no exception at all.
    """

    def __init__(self) -> None:
        #: the signals that arrived, in order
        self.arrived: list[int] = []

    def __call__(self, signum: int, frame: Optional[FrameType]) -> None:
        self.arrived.append(signum)
        raise interrupt_for(signum)


def _raises_interrupt(handler: Any) -> bool:
    """Whether ``handler`` turns its signal into an interrupt (Python's SIGINT handler,
    or one of ours)."""
    return handler is signal.default_int_handler or isinstance(handler, InterruptHandler)


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
    signal.signal(signal.SIGTERM, InterruptHandler())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def interrupts_raised() -> Iterator[InterruptHandler]:
    """The command line's signals: within the block Ctrl-C raises ``KeyboardInterrupt``
    and SIGTERM :class:`Terminated`, and the handler yielded remembers which arrived
    (:func:`raise_if_interrupted` asks it). Python's own handlers are put back after.

    An interrupt raised where Python cannot raise it (inside a weakref callback or a
    ``__del__``, as the import machinery's module locks have) would be printed as
    "Exception ignored" with its traceback and lost; within the block it is delivered
    again instead, to be raised where the program is (:func:`_redeliver`).

    Only Python's defaults are replaced (SIGINT's ``KeyboardInterrupt``, SIGTERM's
    ending of the process), and only in the main thread; elsewhere the block runs as it
    is and nothing is remembered.
    """
    handler = InterruptHandler()
    if not _in_main_thread():
        yield handler
        return
    defaults: dict[int, Handler] = {signal.SIGINT: signal.default_int_handler,
                                     signal.SIGTERM: signal.SIG_DFL}
    replaced = [s for s, default in defaults.items() if signal.getsignal(s) is default]
    previous_hook = sys.unraisablehook
    try:
        sys.unraisablehook = _redeliver(handler, previous_hook)
        for signum in replaced:
            signal.signal(signum, handler)
        yield handler
    finally:
        for signum in replaced:
            signal.signal(signum, defaults[signum])
        sys.unraisablehook = previous_hook


def _redeliver(handler: InterruptHandler,
               previous: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A ``sys.unraisablehook`` that gives an interrupt ``handler`` raised where it could
    not propagate back to the main thread as the same signal (handled at its next
    step, as any signal is), instead of printing it; anything else goes to
    ``previous``."""
    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and handler.arrived:
            # From another thread, a moment later: called here, the main thread would
            # handle it at once, inside this hook, where it cannot propagate either.
            signum = signal.Signals(handler.arrived[-1])
            threading.Thread(target=_interrupt_main_soon, args=(signum,),
                             daemon=True).start()
            return
        previous(unraisable)

    return hook


def _interrupt_main_soon(signum: signal.Signals) -> None:
    """Signal ``signum`` to the main thread's handler once it has left the hook it is in."""
    time.sleep(0.05)
    _thread.interrupt_main(signum)


def raise_if_interrupted(cause: Optional[BaseException] = None) -> None:
    """Raise the interrupt for the signal that arrived inside the enclosing
    :func:`interrupts_raised` block, if one did, with ``cause`` as its cause.

    Called where an exception, or a plain return, may hide a Ctrl-C whose exception was
    lost (see :class:`InterruptHandler`): that run was interrupted, and says so.
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if isinstance(handler, InterruptHandler) and handler.arrived:
            raise interrupt_for(handler.arrived[0]) from cause


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C or SIGTERM that arrives inside the block until the block is done.

    Used where the loop's state must change all at once (an epoch's commit, the
    roll-back): the interrupt is raised when the block ends, as the exception it would
    have been, by the handler it would have gone to. Only signals whose handler raises
    an interrupt are held (SIGINT's default, :class:`InterruptHandler`); outside the
    main thread the block runs as it is.
    """
    if not _in_main_thread():
        yield
        return
    held: dict[int, Callable[[int, Optional[FrameType]], Any]] = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(number)
        if callable(handler) and _raises_interrupt(handler):
            held[number] = handler
    received: list[int] = []
    for signum in held:
        signal.signal(signum, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        for signum, handler in held.items():
            signal.signal(signum, handler)
        if received:  # the first signal, to the handler it would have gone to
            held[received[0]](received[0], None)
