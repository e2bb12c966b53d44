"""Ctrl-C at any moment of the ``gpunet`` command, start-up and exit included, is one
line, ``gpunet: interrupted``, and exit status 130: never a traceback (issue 26).

Before, Ctrl-C in the first fraction of a second printed a 20-line ``KeyboardInterrupt``
traceback from the imports (``gpunet/__init__.py`` imported NumPy and the whole model
before the command's handler existed), and one that landed inside NumPy's C extensions
came out as NumPy's ``ImportError`` ("Importing the numpy C-extensions failed").

The moments are the child's own, not guessed delays: with ``PYTHONPROFILEIMPORTTIME``
Python writes a line to stderr as each import finishes, and the test sends SIGINT as
soon as it reads the line of a chosen module (the first module the command imports,
one inside NumPy, one of the model, the parser), then at fixed delays after the
imports (during data loading and training). So the test holds on a slow or loaded
machine: a late signal lands later in the command, where the answer must be the same.
Both launchers are tested: the console script in this environment's ``bin`` (the
installed wheel's is run by tests/test_installed.py) and ``python -m gpunet``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPT = Path(sys.executable).parent / "gpunet"
LAUNCHERS = {"script": [str(SCRIPT)], "module": [sys.executable, "-m", "gpunet"]}

LAST_IMPORT = "gpunet.cli.command"  # the parser with every subcommand: start-up is done

# Long enough that every chosen moment falls inside it: 100,000 epochs of 500 images.
TRAIN = ["train", "--device", "cpu", "--limit", "500", "--epochs", "100000", "--quiet",
         "--sizes", "784,30,10"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPUNET_DEVICE")}
    env["PYTHONPROFILEIMPORTTIME"] = "1"
    return env


def _interrupt(launcher: str, args: list[str], marker: str, after: float = 0.0,
               startup: bool = True) -> tuple[int, list[str]]:
    """Start ``gpunet ARGS``, send SIGINT ``after`` seconds after the import of module
    ``marker`` finished (one of start-up's, at the latest :data:`LAST_IMPORT`, unless
    not ``startup``); the exit status and stderr's lines (the import lines left out)."""
    proc = subprocess.Popen(
        [*LAUNCHERS[launcher], *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, cwd=ROOT / "tests", env=_env(),
        # a child started from a shell that ignores SIGINT would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    guard = threading.Timer(300, proc.kill)  # never a hung test: not a time limit on gpunet
    guard.start()
    try:
        while True:
            line = proc.stderr.readline()
            assert line, f"gpunet ended before importing {marker}:\n{''.join(lines)}"
            lines.append(line)
            module = line.rsplit("|", 1)[-1].strip() if line.startswith("import time:") else ""
            if module == marker:
                break
            assert module != LAST_IMPORT or not startup, f"{marker} is not one of start-up's"
        time.sleep(after)
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=300)[1]
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
    err = [line.rstrip("\n") for line in "".join(lines).splitlines(True) + rest.splitlines()]
    return proc.returncode, [line for line in err if not line.startswith("import time:")]


def _assert_one_interrupted_line(status: int, err: list[str]) -> None:
    text = "\n".join(err)
    assert "Traceback" not in text and "Error" not in text, text
    assert err and err[-1] == "gpunet: interrupted", text
    assert err.count("gpunet: interrupted") == 1, text
    assert status == 130, text


# The first module the command imports (gpunet.training.signals: before it, only Python's own
# start-up and the two small package files run), one inside NumPy's import, the array
# backends (NumPy done), and the parser with every subcommand (the last).
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
@pytest.mark.parametrize("marker", ["gpunet.training.signals", "numpy.linalg", "gpunet.backends",
                                    LAST_IMPORT])
def test_ctrl_c_during_the_imports_is_one_line(launcher, marker):
    _assert_one_interrupted_line(*_interrupt(launcher, TRAIN, marker))


# After the imports: loading the data, building the network, the first epochs (a
# Ctrl-C in an epoch keeps the completed ones and says so first; the last line is the
# same).
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
@pytest.mark.parametrize("after", [0.2, 1.5])
def test_ctrl_c_while_the_command_runs_is_one_last_line(launcher, after):
    _assert_one_interrupted_line(*_interrupt(launcher, TRAIN, LAST_IMPORT, after))


def test_ctrl_c_while_help_is_written():
    """``locale`` is imported as argparse formats the help (its translations)."""
    status, err = _interrupt("module", ["train", "--help"], "locale", startup=False)
    if status == 0 and not err:  # the help was out and the process gone first
        return
    _assert_one_interrupted_line(status, err)


# ---------------------------------------------------------------- in this process

def _raise_keyboard_interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["parse_known_args", "format_help"])
def test_ctrl_c_while_parsing_arguments_or_writing_help(where, monkeypatch, capsys):
    import argparse

    from gpunet.cli import main

    monkeypatch.setattr(argparse.ArgumentParser, where, _raise_keyboard_interrupt)
    assert main(["train", "--help"]) == 130
    assert capsys.readouterr().err == "gpunet: interrupted\n"


def test_a_ctrl_c_an_import_turned_into_an_import_error_is_still_an_interrupt(
        monkeypatch, capsys):
    """A Ctrl-C inside a C extension's import comes out as an ``ImportError`` that no
    longer mentions it (NumPy's PyCapsule_Import, CuPy's); the signal's arrival, not
    the exception, says what happened."""
    import gpunet.cli.info

    def lost_interrupt(args):
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:  # what a C extension's import does with it
            raise ImportError("PyCapsule_Import could not import module \"datetime\"")

    monkeypatch.setattr(gpunet.cli.info, "run", lost_interrupt)
    from gpunet.cli import main

    assert main(["info"]) == 130
    assert capsys.readouterr().err == "gpunet: interrupted\n"


# ---------------------------------------------------------------- the process's end

AT_EXIT = textwrap.dedent("""
    import os, runpy, signal, sys, threading, time

    SIGNUM = int(sys.argv[1])

    def at_exit():  # Python's exit work: joining this thread, then the exit callbacks
        threading.main_thread().join()
        os.kill(os.getpid(), SIGNUM)
        time.sleep(2)

    threading.Thread(target=at_exit).start()
    sys.argv = ["gpunet", "--version"]
    runpy.run_module("gpunet", run_name="__main__", alter_sys=True)  # python -m gpunet
""")


@pytest.mark.parametrize("signum, line, status", [
    (signal.SIGINT, "gpunet: interrupted", 130), (signal.SIGTERM, "gpunet: terminated", 143)])
def test_a_signal_after_the_command_while_python_exits(signum, line, status):
    """The command is done (its output written) and Python is ending the process,
    joining a thread: Ctrl-C there is the same one line and 130 (it was a
    ``KeyboardInterrupt`` traceback "ignored" in ``threading``), SIGTERM its line and
    143 (it ended the process silently)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", AT_EXIT, str(int(signum))],
                         capture_output=True, text=True, cwd=ROOT / "tests", env=env,
                         timeout=120,
                         preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL),
                                             signal.signal(signal.SIGTERM, signal.SIG_DFL)))
    assert run.stdout == "gpunet 0.1.0\n"
    assert run.stderr == line + "\n" and run.returncode == status, run.stderr


# ---------------------------------------------------------------- the lazy packages

LAZY = """
import sys
import gpunet, gpunet.cli
loaded = sorted(m for m in sys.modules if m.startswith(("gpunet", "numpy")))
print(" ".join(loaded))
"""


def test_importing_the_package_and_the_command_loads_nothing_else():
    """What runs before the command's Ctrl-C handler: the two package files, nothing
    of NumPy or the model (they loaded the whole model before)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True,
                         cwd=ROOT / "tests", env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["gpunet", "gpunet._version", "gpunet.cli"]


def test_the_lazy_package_still_has_every_public_name():
    import gpunet
    import gpunet.cli

    namespace: dict = {}
    exec("from gpunet import *", namespace)
    assert sorted(set(namespace) - {"__builtins__"}) == sorted(gpunet.__all__)
    from gpunet.networks.network import Network
    from gpunet.networks.resuming import resume

    assert gpunet.Network is Network and namespace["resume"] is resume
    assert set(gpunet.__all__) <= set(dir(gpunet))
    assert gpunet.__version__ == "0.1.0"
    assert gpunet.training.checkpoint.load_checkpoint is gpunet.load_checkpoint  # a submodule
    assert callable(gpunet.cli.build_parser) and gpunet.cli.train.run  # the parser's names
    with pytest.raises(AttributeError, match="module 'gpunet' has no attribute 'Netwrok'"):
        gpunet.Netwrok
    assert not hasattr(gpunet, "no_such_module")
