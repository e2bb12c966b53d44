"""The ``gpunet`` command: ``train``, ``sweep``, ``predict``, ``evaluate``, ``plot``,
``info``, ``check``, ``reproduce`` and ``bench``.

This module is the command's entry, and it imports nothing at first: :func:`main`
takes charge of Ctrl-C before it imports NumPy, the model and the subcommands (the
parser and the dispatch are :mod:`gpunet.cli.command`; ``build_parser`` and the rest
are still reachable here). So Ctrl-C at any moment, start-up included, is one line,
``gpunet: interrupted``, and exit status 130, never a traceback; SIGTERM (``kill``,
``timeout``, SLURM) is ``gpunet: terminated`` and 143. A command that keeps its work
through an interruption (``train``, ``sweep``: :mod:`gpunet.training.signals`) prints what it
kept first and returns 130 or 143; :func:`main` prints the same line last. Nothing
below imports this module (the command's modules import one way, down). :func:`console`, the installed script and
``python -m gpunet``, guards the process's exit as well.

Every mistake the user can make ends with one ``gpunet: error: ...`` line and exit
status 2; a run that fails, with such a line and exit status 1
(:func:`gpunet.cli.command.run_command`).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing's, without importing typing (see gpunet/__init__.py)
if TYPE_CHECKING:
    from types import FrameType
    from typing import Optional, Sequence

    from .command import (COMMANDS as COMMANDS, HelpFormatter as HelpFormatter,
                          Parser as Parser, build_parser as build_parser)

EXIT_SIGINT = 130
"""Ctrl-C's exit status, 128 + SIGINT (:data:`gpunet.training.signals.EXIT_SIGINT`, which this
module does not import before it has to)."""

EXIT_SIGTERM = 143
"""SIGTERM's, 128 + SIGTERM."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``gpunet`` command with ``argv`` (default: ``sys.argv[1:]``); the exit status.

    Ctrl-C anywhere inside, the imports and the argument parsing included, prints
    ``gpunet: interrupted`` and returns 130; SIGTERM (in the main thread) ``gpunet:
    terminated`` and 143.
    """
    try:
        from ..training.signals import interrupts_raised, raise_if_interrupted

        with interrupts_raised():  # SIGTERM (kill, timeout, SLURM) as Ctrl-C
            try:
                from .command import run_command
            except Exception as exc:  # NumPy's import turns a Ctrl-C into ImportError
                raise_if_interrupted(exc)
                starved = _starved(exc)  # or a ulimit -v too small for NumPy's libraries
                if not starved:
                    raise
                print(f"gpunet: error: out of memory while starting ({starved}): "
                      "the process's memory limit (`ulimit -v`) is too small for Python "
                      "and NumPy; raise it", file=sys.stderr)
                return 2
            status = run_command(argv)
            # a command that kept its work through Ctrl-C or SIGTERM said what it kept
            return stopped(status) if status in (EXIT_SIGINT, EXIT_SIGTERM) else status
    except KeyboardInterrupt as exc:
        return stopped(_status(exc))


def _starved(exc: BaseException) -> str:
    """The first line of the error in ``exc``'s chain that says memory ran out, as a
    library failing to load under a small ``ulimit -v`` says it ("failed to map
    segment from shared object"); "" if none does."""
    seen: list[BaseException] = []
    cause: Optional[BaseException] = exc
    while cause is not None and cause not in seen:
        seen.append(cause)
        text = str(cause)
        if isinstance(cause, MemoryError) or any(
                words in text for words in ("failed to map segment", "Cannot allocate memory")):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            return next((line for line in lines if "map segment" in line or "allocate" in line),
                        lines[0] if lines else type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return ""


def console() -> int:
    """The ``gpunet`` console script and ``python -m gpunet``: :func:`main` for this
    process's command line, and its exit guarded too.

    After the command, until the process ends, Ctrl-C stops it at once with the same
    ``gpunet: interrupted`` line and status 130, SIGTERM with ``gpunet: terminated``
    and 143 (Python's exit work, joining threads and running exit callbacks, would
    otherwise print a traceback); after an interrupt was reported, or once the last
    exit callback has run, both are ignored and the process ends with its status.
    """
    try:
        import atexit

        # Exit callbacks run in reverse order of registration: this one runs last.
        atexit.register(_ignore_interrupts)
        try:
            status = main()
        except SystemExit as exc:  # --help, --version, a usage error: argparse's exit
            status = _exit_status(exc)
        try:
            sys.stdout.flush()  # while Ctrl-C and a closed pipe are still handled here
        except BrokenPipeError:
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            status = status or 141
        _exit_on_interrupt()
    except KeyboardInterrupt as exc:  # in the flush, or in main's own report of one
        _ignore_interrupts()
        status = stopped(_status(exc))
    # A Ctrl-C inside a string eval (namedtuple's, in an import) leaves CPython noting
    # an "unhandled" KeyboardInterrupt, and `python -m` would then end the process by
    # SIGINT instead of with this status; a string eval of its own clears the note.
    eval("None")
    return status


def _exit_status(exc: SystemExit) -> int:
    """The status ``SystemExit`` would end the process with (a message is printed, 1)."""
    if exc.code is None or isinstance(exc.code, int):
        return int(exc.code or 0)
    print(exc.code, file=sys.stderr)
    return 1


def stopped(status: int) -> int:
    """Print the line that ends an interrupted command (``gpunet: interrupted`` for 130,
    ``gpunet: terminated`` for 143) on stderr; return ``status``."""
    try:
        print("gpunet: " + ("interrupted" if status == EXIT_SIGINT else "terminated"),
              file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed or gone: the status still says it
        pass
    return status


def _status(interrupt: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (:class:`gpunet.training.signals.Terminated`, which exists
    only once that module is imported)."""
    signals = sys.modules.get("gpunet.training.signals")
    return EXIT_SIGINT if signals is None else int(signals.exit_status(interrupt))


def _exit_on_interrupt() -> None:
    """From now on Ctrl-C (SIGTERM) ends the process at once: the line, then status
    130 (143). Only in the main thread, and only in place of Python's own handling (not
    someone else's handler)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _exit_interrupted)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_interrupted)


def _exit_interrupted(signum: int, frame: Optional[FrameType]) -> None:
    import os
    import signal

    try:
        sys.stdout.flush()
    except Exception:  # a closed pipe, or a write this handler interrupted
        pass
    try:
        os.write(2, b"gpunet: interrupted\n" if signum == signal.SIGINT else b"gpunet: terminated\n")
    finally:
        os._exit(128 + signum)


def _ignore_interrupts() -> None:
    """Ctrl-C and SIGTERM are ignored from here on (main thread only): the command is
    over, and so is Python's exit work."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


if not TYPE_CHECKING:  # hidden from type checkers: an unknown name stays an error there

    def __getattr__(name: str) -> object:
        """The parser's names from :mod:`gpunet.cli.command`, and the subcommands'
        modules, imported when first used."""
        from .. import _lazy_attribute

        return _lazy_attribute(__name__, dict.fromkeys(
            ("COMMANDS", "HelpFormatter", "Parser", "build_parser"), "command"), name)


if __name__ == "__main__":
    sys.exit(console())
