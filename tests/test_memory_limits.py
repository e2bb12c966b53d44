"""Memory under a process limit, and a mini-batch too large: one clear line (issue 26).

A process memory limit (``ulimit -v``, RLIMIT_AS) leaves far less than the machine's
available memory, which the up-front check compared with: ``--sizes`` that fit the
machine but not the limit went on to NumPy's ``_ArrayMemoryError`` traceback. Now the
check counts the limit less what the process already maps, and a ``MemoryError`` that
still escapes is one ``gpunet: error:`` line. The limits here let Python, NumPy and
the data load (a few hundred MiB) but not the network.

And ``--batch-size`` larger than memory was blamed on ``--sizes`` ("choose smaller
layers" for a [784, 30, 10] network); the message now names the mini-batch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import ROOT
from gpunet.cli import main

resource = pytest.importorskip("resource")  # POSIX; RLIMIT_AS is enforced on Linux

LIMIT = 1536 * 2**20  # Python, NumPy, gpunet and MNIST fit (~0.5 GiB); 159M parameters do not
HUGE = "784,200000,10"  # 159,000,010 parameters: 1.2 GiB of float64 draws alone


def _limited(args: list[str], limit: int = LIMIT) -> subprocess.CompletedProcess:
    """``python ARGS`` with the address space limited to ``limit`` bytes."""
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPUNET_DEVICE")}
    env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = "1"  # fewer thread stacks
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          cwd=ROOT / "tests", env=env, timeout=300, preexec_fn=preexec)


def test_train_under_an_address_space_limit_is_refused_up_front():
    run = _limited(["-m", "gpunet", "train", "--device", "cpu", "--sizes", HUGE,
                    "--epochs", "1", "--limit", "100", "--quiet"])
    assert "Traceback" not in run.stderr and "MemoryError" not in run.stderr, run.stderr
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gpunet: error: --sizes {HUGE}: "), lines
    assert "address-space limit (ulimit -v) of 1.5 GiB" in lines[0]
    assert lines[0].endswith("choose smaller layers, or raise the limit.")
    assert "device:" not in run.stdout  # before anything was loaded


LIBRARY = """
import gpunet
try:
    gpunet.Network([784, 200000, 10], device="cpu")
except ValueError as exc:
    print(exc)
"""


def test_the_library_counts_the_limit_too():
    run = _limited(["-c", LIBRARY])
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert run.stdout.startswith("sizes 784,200000,10: 159,000,010 parameters need about")
    assert "address-space limit (ulimit -v)" in run.stdout


ESCAPING = """
import sys
import gpunet.model.memory
gpunet.model.memory.check_network_fits = lambda *args, **kwargs: None  # an estimate that missed
from gpunet.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_memory_error_that_escapes_is_one_line():
    """Whatever the estimate misses: NumPy's ``_ArrayMemoryError`` is one line saying
    memory ran out and what to make smaller, exit status 2."""
    run = _limited(["-c", ESCAPING, "train", "--device", "cpu", "--sizes", HUGE,
                    "--epochs", "1", "--limit", "100", "--quiet"])
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("gpunet: error: out of memory (Unable to allocate "), lines
    assert "ulimit -v" in lines[0]
    assert lines[0].endswith("make the network (--sizes) or the mini-batch (--batch-size) "
                             "smaller, or raise the limit")


def test_a_huge_batch_size_is_not_blamed_on_the_sizes(capsys):
    assert main(["train", "--device", "cpu", "--batch-size", "100000000", "--epochs", "1",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpunet: error: --batch-size 100,000,000: a mini-batch of "
                          "100,000,000 examples"), err
    assert "choose a smaller --batch-size" in err and "layers" not in err.split(";")[-1]


def test_the_estimate_counts_the_mini_batch_up_to_the_data(monkeypatch):
    """Where the training set's size is known, a larger mini-batch is sized as the whole
    set (the mini-batch itself is refused apart, naming both numbers)."""
    from gpunet.model import memory

    monkeypatch.setattr(memory, "host_memory", lambda: (2.0 * 2**30, "memory available here"))
    with pytest.raises(ValueError, match="mini_batch_size 100,000,000"):
        memory.check_network_fits([784, 30, 10], "float32", 10**8)
    memory.check_network_fits([784, 30, 10], "float32", 10**8, examples=50_000)


def test_the_limit_left_is_the_limit_less_what_is_mapped(monkeypatch):
    from gpunet.model import memory

    monkeypatch.setattr(resource, "getrlimit", lambda kind: (
        (3 * 2**30, resource.RLIM_INFINITY) if kind == resource.RLIMIT_AS
        else (resource.RLIM_INFINITY, resource.RLIM_INFINITY)))
    monkeypatch.setattr(memory, "_mapped", lambda: (1.0 * 2**30, 0.5 * 2**30))
    monkeypatch.setattr(memory, "machine_memory", lambda: 64.0 * 2**30)
    have, what = memory.host_memory()
    assert have == 2 * 2**30
    assert what == ("memory this process may still use under its address-space limit "
                    "(ulimit -v) of 3.0 GiB")
    with pytest.raises(ValueError, match="more than the 2.0 GiB of memory this process"):
        memory.check_network_fits([784, 100000, 10], "float64")  # ~3.0 GiB
    memory.check_network_fits([784, 3000, 10], "float64")  # ~0.4 GiB


def test_a_limit_too_small_for_numpy_is_one_line():
    """A limit 16 MiB above what Python itself maps: NumPy's libraries cannot even be
    mapped, and its ImportError ("failed to map segment from shared object") was a
    30-line traceback."""
    bare = _limited(["-c", "print(open('/proc/self/statm').read().split()[0])"])
    python = int(bare.stdout) * os.sysconf("SC_PAGE_SIZE")
    run = _limited(["-m", "gpunet", "train", "--device", "cpu", "--epochs", "1"],
                   limit=python + 16 * 2**20)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert lines[0].startswith("gpunet: error: out of memory while starting (")
    assert lines[0].endswith("the process's memory limit (`ulimit -v`) is too small for "
                             "Python and NumPy; raise it")
    assert run.returncode == 2


class OutOfMemoryError(MemoryError):
    """As CuPy's ``cupy.cuda.memory.OutOfMemoryError`` is (a ``MemoryError``)."""


OutOfMemoryError.__module__ = "cupy.cuda.memory"


@pytest.mark.parametrize("error, line, status", [
    (OutOfMemoryError("Out of memory allocating 8,000,000,000 bytes (allocated so far: "
                      "0 bytes)."), "gpunet: error: out of GPU memory (Out of memory "
     "allocating 8,000,000,000 bytes", 2),
    (OSError(12, "Cannot allocate memory"), "gpunet: error: out of memory ([Errno 12] Cannot "
     "allocate memory): more than this process may use", 2),
    (OSError(24, "Too many open files"), "gpunet: error: [Errno 24] Too many open files", 1),
    (RuntimeError("can't start new thread"), "gpunet: error: the system refused a new "
     "thread (can't start new thread): a process limit", 1),
])
def test_a_resource_the_system_refuses_is_one_line(monkeypatch, capsys, error, line, status):
    """Other process limits (open files, processes and threads, ``ulimit -n`` / ``-u``)
    end the same way: one line, no traceback."""
    import gpunet.cli.info

    def refused(args):
        raise error

    monkeypatch.setattr(gpunet.cli.info, "run", refused)
    assert main(["info"]) == status
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1, err
