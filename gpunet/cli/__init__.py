"""The ``gpunet`` command: ``train``, ``predict``, ``evaluate``, ``plot``, ``info``,
``reproduce`` and ``bench``.

One module per subcommand (:mod:`gpunet.cli.train`, ...), each with ``add_parser`` and
``run``; a subcommand imports what it needs only when it runs, so ``gpunet --help``
loads neither the benchmark nor the book's reproduction programs.

Every mistake the user can make (a bad option, an unusable device, a broken data file)
ends with one ``gpunet: error: ...`` line and exit status 2, never a traceback. A run
that fails (an output that cannot be written, training that diverged) is one such line
and exit status 1; Ctrl-C exits with 130 and SIGTERM with 143, after the command has
kept what it completed (:mod:`gpunet.signals`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Optional, Sequence

from .. import __version__
from ..backends import BackendUnavailable
from . import bench, check, evaluate, info, plot, predict, reproduce, sweep, train

COMMANDS = (train, sweep, predict, evaluate, plot, info, check, reproduce, bench)


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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``gpunet`` command with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    from ..divergence import DivergenceError
    from ..outputs import WriteError
    from ..signals import exit_status, terminate_as_interrupt

    args = build_parser().parse_args(argv)
    try:
        with terminate_as_interrupt():  # SIGTERM (kill, timeout, SLURM) as Ctrl-C
            return int(args.run(args))
    except (WriteError, DivergenceError) as exc:  # not a usage error: the run failed
        print(f"gpunet: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, BackendUnavailable) as exc:
        print(f"gpunet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C: 130; SIGTERM: 143
        print("gpunet: " + ("terminated" if exit_status(exc) != 130 else "interrupted"),
              file=sys.stderr)
        return exit_status(exc)
    except BrokenPipeError:  # e.g. `gpunet train | head`: the reader left; so do we
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        from ..engines.stacked_workers import WorkerFailed

        if isinstance(exc, WorkerFailed):  # its message says what failed and what to do
            print(f"gpunet: error: {exc}", file=sys.stderr)
            return 1
        # CuPy's own errors (out of memory, a launch or driver failure) get one line too.
        if type(exc).__module__.split(".")[0] not in ("cupy", "cupy_backends"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"gpunet: error: CUDA failed: {type(exc).__name__}: {first}; test the device "
              "with `gpunet check --device cuda`", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
