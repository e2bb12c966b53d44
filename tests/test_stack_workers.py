"""The stacked CPU engine over worker processes (gpunet/engines/stacked_workers.py).

Results must not depend on the number of workers (bit for bit); a worker that fails or
dies is a clear error that leaves the stack at its last completed epoch; workers ignore
Ctrl-C and never outlive training; a script without a ``__main__`` guard is not re-run
in them.

The workers are loky's processes; loky starts them with multiprocessing's process
objects, so ``multiprocessing.active_children()`` lists them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import numpy_blas_threads

from gpunet import NetworkStack
from gpunet.engines import stacked_workers
from gpunet.training.settings import TrainingSettings
from gpunet.engines.cpu import CpuEngine
from gpunet.engines.stacked_workers import (WORKERS_FROM, WorkerFailed, WorkerCpuEngine,
                                            workers_for)

from conftest import ROOT

SIZES = [784, 12, 10]
SEEDS = [3, 0, 7, 1, 4]
ETAS = [0.5, 3.0, 1.0, 2.0, 0.1]
LMBDAS = [0.0, 5.0, 1.0, 0.0, 2.0]


@pytest.fixture(scope="module")
def small(mnist):
    X, y = mnist.training
    Xt, yt = mnist.test
    return (X[:1003], y[:1003]), (Xt[:300], yt[:300])


def train(small, workers, epochs=2, dtype="float32"):
    train_data, test = small
    stack = NetworkStack(SIZES, SEEDS, cost="quadratic", init="large", dtype=dtype,
                         device="cpu")
    histories = stack.SGD(train_data, epochs, 10, ETAS, LMBDAS, test_data=test,
                          verbose=False, engine="cpu", workers=workers)
    return stack, histories


@pytest.mark.parametrize("workers", [2, 3, 5])
def test_results_do_not_depend_on_workers(small, workers):
    reference, expected = train(small, 1)
    stack, got = train(small, workers)
    np.testing.assert_array_equal(stack.parameters, reference.parameters)
    assert [h.evaluation_accuracy for h in got] == [h.evaluation_accuracy for h in expected]


def test_float64_results_do_not_depend_on_workers(small):
    reference, _ = train(small, 1, epochs=1, dtype="float64")
    stack, _ = train(small, 2, epochs=1, dtype="float64")
    np.testing.assert_array_equal(stack.parameters, reference.parameters)


def settings(K):
    return TrainingSettings(epochs=1, mini_batch_size=10, eta=tuple(ETAS[:K]),
                           lmbda=tuple(LMBDAS[:K]), verbose=False)


def engine_and_data(small, K=4, workers=2, sizes=SIZES, n=None):
    (X, y), _ = small
    X, y = X[:n], y[:n]
    stack = NetworkStack(sizes, SEEDS[:K], cost="quadratic", init="large", device="cpu")
    X = np.asarray(X, np.float32)
    Y = np.zeros((len(y), 10), np.float32)
    Y[np.arange(len(y)), y] = 1
    if workers == 1:
        engine = CpuEngine(stack, X, Y, settings(K))
        engine.close = lambda: None
    else:
        engine = WorkerCpuEngine(stack, X, Y, settings(K), workers)
    perms = np.stack([np.random.default_rng(k).permutation(len(X)) for k in range(K)])
    return stack, engine, perms


def workers_alive():
    """The worker processes alive now (loky starts multiprocessing process objects)."""
    return set(multiprocessing.active_children())


def test_a_dead_worker_is_a_clear_error_and_the_stack_keeps_its_last_epoch(small):
    before = workers_alive()
    stack, engine, perms = engine_and_data(small, K=4, workers=3)
    engine.train_epoch(perms)
    after_one = stack.parameters.copy()
    workers = workers_alive() - before
    assert len(workers) == 2
    os.kill(next(iter(workers)).pid, signal.SIGKILL)
    with pytest.raises(WorkerFailed,
                       match=r"stopped \(exit code \{SIGKILL\(-9\)\}\).*--workers 1"):
        engine.train_epoch(perms)
    np.testing.assert_array_equal(stack.parameters, after_one)
    assert not any(w.is_alive() for w in workers)  # the other worker is stopped too
    with pytest.raises(WorkerFailed, match="--workers 1"):  # and again, not a raw error
        engine.train_epoch(perms)
    np.testing.assert_array_equal(stack.parameters, after_one)


def test_an_error_in_a_worker_comes_back_with_its_traceback(small):
    stack, engine, perms = engine_and_data(small)
    before = stack.parameters.copy()
    engine.setups[0]["cost"] = "NoSuchCost"  # the worker's group cannot be built
    with pytest.raises(WorkerFailed,
                       match=r"(?s)worker process.*failed:\n.*Traceback.*_train_group"
                             r".*NoSuchCost"):
        engine.train_epoch(perms)
    np.testing.assert_array_equal(stack.parameters, before)


def test_workers_ignore_ctrl_c(small):
    """Ctrl-C reaches every process of the terminal's group: the workers go on (this
    process decides what an interrupt means) and train exactly as before."""
    reference, one_process, perms = engine_and_data(small, workers=1)
    alive = workers_alive()
    stack, engine, _ = engine_and_data(small, K=4, workers=3)
    engine.train_epoch(perms)
    workers = workers_alive() - alive
    assert len(workers) == 2
    for worker in workers:
        os.kill(worker.pid, signal.SIGINT)
    engine.train_epoch(perms)
    engine.close()
    one_process.train_epoch(perms)
    one_process.train_epoch(perms)
    np.testing.assert_array_equal(stack.parameters, reference.parameters)
    assert not any(w.is_alive() for w in workers)


def test_an_interrupt_stops_the_workers_and_keeps_the_last_epoch(small, monkeypatch):
    alive = workers_alive()
    stack, engine, perms = engine_and_data(small)
    engine.train_epoch(perms)
    after_one = stack.parameters.copy()
    workers = workers_alive() - alive
    assert len(workers) == 1

    def interrupted(permutations):
        engine.local.params.weights[0][...] = 0  # half-trained rows of this process's group
        raise KeyboardInterrupt

    monkeypatch.setattr(engine.local, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.train_epoch(perms)
    np.testing.assert_array_equal(stack.parameters, after_one)
    assert not any(w.is_alive() for w in workers)


def test_workers_stop_when_training_ends(small, monkeypatch):
    seen = []
    alive = workers_alive()
    original = WorkerCpuEngine.train_epoch

    def record(self, permutations):
        original(self, permutations)
        seen.append(workers_alive() - alive)

    monkeypatch.setattr(WorkerCpuEngine, "train_epoch", record)
    train(small, 3, epochs=1)
    assert len(seen) == 1 and len(seen[0]) == 2
    assert not any(w.is_alive() for w in seen[0])


def running(pid):
    """Whether process ``pid`` exists and is not a zombie (Linux's /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_workers_exit_when_this_process_is_killed(tmp_path, mnist):
    """SIGKILL (the OOM killer, a scheduler's time limit) leaves this process no chance
    to stop its workers: they see their parent is gone and exit, where loky's workers
    would wait for a task for ever."""
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing, os, signal
        import gpunet
        from gpunet.engines.stacked_workers import WorkerCpuEngine

        def train_then_die(self, permutations, train=WorkerCpuEngine.train_epoch):
            train(self, permutations)
            with open("workers.txt", "w") as pids:
                pids.write(" ".join(str(p.pid) for p in multiprocessing.active_children()))
            os.kill(os.getpid(), signal.SIGKILL)

        WorkerCpuEngine.train_epoch = train_then_die
        X, y = gpunet.load_mnist().training
        stack = gpunet.NetworkStack([784, 10, 10], seeds=[0, 1, 2], device="cpu")
        stack.SGD((X[:200], y[:200]), 2, 10, 1.0, verbose=False, engine="cpu", workers=3)
    """))
    # Output to a file, not a pipe that workers left running would hold open.
    with open(tmp_path / "stderr.txt", "w+") as stderr:
        done = subprocess.run([sys.executable, str(script)], stdout=stderr, stderr=stderr,
                              cwd=tmp_path, timeout=120)
        stderr.seek(0)
        output = stderr.read()
    pids = [int(pid) for pid in (tmp_path / "workers.txt").read_text().split()]
    try:
        assert done.returncode == -signal.SIGKILL and len(pids) == 2, output
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(running(pid) for pid in pids)
    finally:
        for pid in filter(running, pids):  # orphans of a failed run: not left behind
            os.kill(pid, signal.SIGKILL)


class FakeStack:
    sizes = [784, 30, 10]

    def __init__(self, K):
        self.K = K

    def __len__(self):
        return self.K


def test_auto_starts_workers_only_for_stacks_worth_it(monkeypatch):
    monkeypatch.setattr(stacked_workers, "default_workers", lambda: 2)
    P = 784 * 30 + 30 + 30 * 10 + 10
    assert workers_for(FakeStack(8), 50_000, None) == 2  # the book's sweep
    assert 50_000 * 8 * P >= WORKERS_FROM
    assert workers_for(FakeStack(8), 1_000, None) == 1  # a small stack: not worth it
    assert workers_for(FakeStack(1), 50_000, None) == 1  # one network: nothing to split
    assert workers_for(FakeStack(8), 1_000, 3) == 3  # asked for: honoured
    assert workers_for(FakeStack(2), 1_000, 3) == 2  # never more than the networks


def test_a_script_without_a_main_guard_is_not_rerun_in_the_workers(tmp_path, mnist):
    script = tmp_path / "sweep_script.py"
    script.write_text(textwrap.dedent("""
        import pathlib
        import gpunet
        with open(pathlib.Path(__file__).with_name("runs.txt"), "a") as runs:
            runs.write("ran\\n")
        data = gpunet.load_mnist()
        X, y = data.training
        stack = gpunet.NetworkStack([784, 10, 10], seeds=[0, 1, 2], device="cpu")
        stack.SGD((X[:200], y[:200]), 1, 10, 1.0, verbose=False, engine="cpu", workers=3)
        print("trained", flush=True)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["trained"]
    assert (tmp_path / "runs.txt").read_text() == "ran\n"  # once: not in the workers


def test_workers_import_the_gpunet_this_process_runs(tmp_path, mnist):
    """From a checkout's own folder with nothing installed, the workers find gpunet
    through this process's sys.path (a stale gpunet elsewhere on the path loses)."""
    decoy = tmp_path / "decoy" / "gpunet"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy gpunet was imported')")
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import gpunet
        data = gpunet.load_mnist()
        X, y = data.training
        stack = gpunet.NetworkStack([784, 10, 10], seeds=[0, 1], device="cpu")
        stack.SGD((X[:100], y[:100]), 1, 10, 1.0, verbose=False, engine="cpu", workers=2)
        print("ok")
    """)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "decoy")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def blas_threads():
    return numpy_blas_threads()  # NumPy's BLAS, not one SciPy loaded beside it


@pytest.mark.parametrize("workers,sizes", [(1, SIZES), (2, SIZES), (2, [784, 1024, 10])])
def test_every_group_runs_blas_on_one_thread(small, workers, sizes):
    """As the single CPU engine: a book step's products are microseconds; and with
    workers busy on the other cores a second BLAS thread only competes with them, so
    this process's group keeps to one even where its products are large, and so does
    the worker's."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    stack, engine, perms = engine_and_data(small, K=2, workers=workers, sizes=sizes, n=100)
    local = engine.local if workers > 1 else engine
    seen = []
    local.steps[0].append((lambda: seen.append(blas_threads()), ()))
    before = blas_threads()
    engine.train_epoch(perms)
    in_worker = (engine.pools[0].submit(threadpoolctl.threadpool_info).result()
                 if workers > 1 else [])
    engine.close()
    assert seen and all(s == {1} for s in seen), seen
    assert blas_threads() == before
    assert {i["num_threads"] for i in in_worker if i["user_api"] == "blas"} <= {1}
    assert workers == 1 or any(i["user_api"] == "blas" for i in in_worker), in_worker


@pytest.fixture
def dying_workers(tmp_path, monkeypatch):
    """Workers whose Python exits (status 3) as it starts: a broken environment."""
    (tmp_path / "sitecustomize.py").write_text("import os\nos._exit(3)\n")
    monkeypatch.setitem(stacked_workers.ONE_BLAS_THREAD, "PYTHONPATH", str(tmp_path))


def test_a_worker_that_dies_as_it_starts_is_a_clear_error(small, dying_workers):
    stack, engine, perms = engine_and_data(small)
    before = stack.parameters.copy()
    with pytest.raises(WorkerFailed, match=r"^a worker process of the stacked CPU engine "
                                           r"stopped \(exit code \{EXIT\(3\)\}\).*"
                                           r"--workers 1"):
        engine.train_epoch(perms)
    np.testing.assert_array_equal(stack.parameters, before)


def test_the_cli_reports_a_failed_worker_in_one_line(dying_workers, capsys):
    from gpunet.cli import main

    code = main(["sweep", "--device", "cpu", "--epochs", "1", "--limit", "100",
                 "--seeds", "0-1", "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("gpunet: error: a worker process of the stacked CPU engine "
                          "stopped (exit code {EXIT(3)})")
    assert "--workers 1" in err and err.count("\n") == 1, err


def test_a_worker_that_cannot_be_started_is_a_clear_error(small, monkeypatch):
    monkeypatch.setattr(stacked_workers.sys, "executable", "/nonexistent/python")
    with pytest.raises(WorkerFailed,
                       match="cannot start.*'/nonexistent/python'.*--workers 1"):
        engine_and_data(small)
