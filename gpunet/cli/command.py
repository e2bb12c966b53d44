"""The ``gpunet`` command's parser and dispatch: :func:`run_command` parses the command
line, runs the subcommand and turns what went wrong into one ``gpunet: error:`` line.

One module per subcommand (:mod:`gpunet.cli.train`, ...), each with ``add_parser`` and
``run``; a subcommand imports what it needs only when it runs, so ``gpunet --help``
loads neither the benchmark nor the book's reproduction programs. This module imports
them all (and, through them, the model and NumPy): :mod:`gpunet.cli`, the command's
entry, imports it only once it has taken charge of Ctrl-C.

Every mistake the user can make (a bad option, an unusable device, a broken data file)
ends with one ``gpunet: error: ...`` line and exit status 2, never a traceback; so does
memory running out (a process limit such as ``ulimit -v``, or the machine's), which
asks for a smaller request. A run that fails (an output that cannot be written,
training that diverged, the system refusing a resource) is one such line and exit
status 1. Ctrl-C and SIGTERM are :mod:`gpunet.cli`'s.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import NoReturn, Optional, Sequence

from .._version import __version__
from ..backends import BackendUnavailable
from ..backends.hints import command_wording
from ..training.divergence import DivergenceError
from ..io.outputs import WriteError
from ..training.signals import EXIT_SIGINT, EXIT_SIGTERM, raise_if_interrupted
from . import bench, check, evaluate, find_eta, info, plot, predict, reproduce, sweep, train

COMMANDS = (train, sweep, find_eta, predict, evaluate, plot, info, check, reproduce, bench)

SMALLER = {
    "train": "the network (--sizes) or the mini-batch (--batch-size)",
    "sweep": "the network (--sizes), the mini-batch (--batch-size) or the stacks (--stack)",
}
"""What to make smaller when memory runs out, by subcommand."""


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one ``gpunet: error:`` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"gpunet: error: {self.prog.split(' ', 1)[-1]}: {message} "
              f"(see {self.prog} --help)" if " " in self.prog else
              f"gpunet: error: {message} (see gpunet --help)", file=sys.stderr)
        sys.exit(2)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show each option's default once: not where the help already names it, nor None."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("(default" in text or default is None or default is False
                or default is argparse.SUPPRESS):
            return text
        return super()._get_help_string(action) or text


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gpunet",
        description="The sigmoid networks of Nielsen's 'Neural Networks and Deep "
        "Learning' on NumPy (CPU) or CuPy (CUDA GPU).",
    )
    parser.add_argument("--version", action="version", version=f"gpunet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(sub, HelpFormatter)
    return parser


def run_command(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand; the exit status.

    A subcommand that kept its work through Ctrl-C or SIGTERM (``train``, ``sweep``)
    returns 130 or 143 after its own lines; :func:`gpunet.cli.main` then prints the
    last line, ``gpunet: interrupted`` (or ``terminated``), as for an interruption
    anywhere else.
    """
    args = build_parser().parse_args(argv)
    with command_wording():  # the library's messages name options as --device cpu
        try:
            status = int(args.run(args))
        except Exception as exc:
            raise_if_interrupted(exc)  # a Ctrl-C whose exception became this one
            return _failed(exc, args.command)
    if status not in (EXIT_SIGINT, EXIT_SIGTERM):
        raise_if_interrupted()  # a Ctrl-C whose exception was lost on its way
    return status


def _failed(exc: Exception, command: str) -> int:
    """One ``gpunet: error:`` line for what stopped ``command``; its exit status. An
    exception that is none of these is a bug in gpunet and raised, for its traceback."""
    from ..engines.stacked_workers import WorkerFailed

    if isinstance(exc, (WriteError, DivergenceError, WorkerFailed)):
        return _error(exc, 1)  # not a usage error: the run failed (each says what to do)
    if isinstance(exc, (ValueError, BackendUnavailable)):
        return _error(exc, 2)
    if isinstance(exc, MemoryError) or (isinstance(exc, OSError)
                                        and exc.errno == errno.ENOMEM):
        return _error(out_of_memory(exc, command), 2)  # NumPy's, CuPy's or the system's
    if isinstance(exc, BrokenPipeError):  # `gpunet train | head`: the reader left; so do we
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    if isinstance(exc, OSError):  # the system refused a resource (files, processes)
        return _error(exc, 1)
    if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
        return _error(f"the system refused a new thread ({exc}): a process limit "
                      "(`ulimit -u`, or `ulimit -v` for its stack) is too small; raise it", 1)
    # CuPy's own errors (a launch or driver failure) get one line too.
    if type(exc).__module__.split(".")[0] in ("cupy", "cupy_backends"):
        first = (str(exc).strip().splitlines() or [""])[0]
        return _error(f"CUDA failed: {type(exc).__name__}: {first}; test the device with "
                      "`gpunet check --device cuda`", 2)
    raise exc


def out_of_memory(exc: BaseException, command: str) -> str:
    """The line for memory running out in ``command``: which memory, the allocation that
    failed (NumPy and CuPy say its size), and what to make smaller."""
    where = ("GPU memory" if type(exc).__module__.split(".")[0] in ("cupy", "cupy_backends")
             else "memory")
    detail = (str(exc).strip().splitlines() or [""])[0]
    smaller = SMALLER.get(command, "the network or the data")
    return (f"out of {where}{f' ({detail})' if detail else ''}: more than this process "
            f"may use (its limit, e.g. `ulimit -v`, or the machine's memory); make {smaller} "
            f"smaller, or raise the limit")


def _error(message: object, status: int) -> int:
    print(f"gpunet: error: {message}", file=sys.stderr)
    return status
