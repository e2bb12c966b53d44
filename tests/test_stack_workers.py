"""The stacked CPU engine over worker processes (gpunet/engines/stacked_workers.py).

Results must not depend on the number of workers (bit for bit); a worker that fails or
dies is a clear error that leaves the stack at its last completed epoch; workers never
outlive training; a script without a ``__main__`` guard is not re-run in them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gpunet import NetworkStack
from gpunet.engines import stacked_workers
from gpunet.engines.rows import FloatRows
from gpunet.engines.stacked import StackedSettings
from gpunet.engines.stacked_cpu import StackedCpuEngine
from gpunet.engines.stacked_workers import (WORKERS_FROM, WorkerFailed,
                                            WorkerStackedCpuEngine, workers_for)

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
    return StackedSettings(epochs=1, mini_batch_size=10, eta=tuple(ETAS[:K]),
                           lmbda=tuple(LMBDAS[:K]), verbose=False)


def engine_and_data(small, K=4, workers=2, sizes=SIZES, n=None):
    (X, y), _ = small
    X, y = X[:n], y[:n]
    stack = NetworkStack(sizes, SEEDS[:K], cost="quadratic", init="large", device="cpu")
    X = np.asarray(X, np.float32)
    Y = np.zeros((len(y), 10), np.float32)
    Y[np.arange(len(y)), y] = 1
    if workers == 1:
        engine = StackedCpuEngine(stack, X, Y, settings(K))
        engine.close = lambda: None
    else:
        engine = WorkerStackedCpuEngine(stack, X, Y, settings(K), workers)
    perms = np.stack([np.random.default_rng(k).permutation(len(X)) for k in range(K)])
    return stack, engine, perms


def test_a_dead_worker_is_a_clear_error_and_the_stack_keeps_its_last_epoch(small):
    stack, engine, perms = engine_and_data(small)
    engine.train_epoch(perms)
    after_one = stack.parameters.copy()
    engine.workers[0].process.kill()
    engine.workers[0].process.wait()
    with pytest.raises(WorkerFailed, match=r"stopped \(exit code -9\).*--workers 1"):
        engine.train_epoch(perms)
    np.testing.assert_array_equal(stack.parameters, after_one)
    assert all(w.process.poll() is not None for w in engine.workers)
    with pytest.raises(WorkerFailed, match="--workers 1"):  # and again, not a raw error
        engine.train_epoch(perms)


def test_an_error_in_a_worker_comes_back_with_its_traceback(small):
    (X, _), _ = small
    worker = stacked_workers._Worker(
        {"sizes": SIZES, "dtype": "float32", "cost": "NoSuchCost", "count": 1,
         "mini_batch_size": 10, "eta": (1.0,), "lmbda": (0.0,)},
        FloatRows(np.zeros((10, 784), np.float32), np.zeros((10, 10), np.float32)))
    try:
        worker.send(("epoch", np.zeros((1, 10)), np.zeros((1, 10), np.intp)))
        with pytest.raises(WorkerFailed, match=r"(?s)worker process.*failed.*NoSuchCost"):
            worker.receive()
    finally:
        worker.stop()


def test_an_interrupt_stops_the_workers_and_keeps_the_last_epoch(small, monkeypatch):
    stack, engine, perms = engine_and_data(small)
    engine.train_epoch(perms)
    after_one = stack.parameters.copy()

    def interrupted(permutations):
        engine.local.stack.weights[0][...] = 0  # half-trained rows of this process's group
        raise KeyboardInterrupt

    monkeypatch.setattr(engine.local, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.train_epoch(perms)
    np.testing.assert_array_equal(stack.parameters, after_one)
    assert all(w.process.poll() is not None for w in engine.workers)


def test_workers_stop_when_training_ends(small, monkeypatch):
    engines = []
    original = WorkerStackedCpuEngine.__init__

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        engines.append(self)

    monkeypatch.setattr(WorkerStackedCpuEngine, "__init__", record)
    train(small, 3, epochs=1)
    assert len(engines) == 1 and len(engines[0].workers) == 2
    assert all(w.process.poll() is not None for w in engines[0].workers)


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
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return {i["num_threads"] for i in threadpoolctl.threadpool_info()
            if i["user_api"] == "blas"}


@pytest.mark.parametrize("workers,sizes", [(1, SIZES), (2, SIZES), (2, [784, 1024, 10])])
def test_every_group_runs_blas_on_one_thread(small, workers, sizes):
    """As the single CPU engine: a book step's products are microseconds; and with
    workers busy on the other cores a second BLAS thread only competes with them, so
    this process's group keeps to one even where its products are large."""
    stack, engine, perms = engine_and_data(small, K=2, workers=workers, sizes=sizes, n=100)
    local = engine.local if workers > 1 else engine
    seen = []
    local.steps[0].append((lambda: seen.append(blas_threads()), ()))
    before = blas_threads()
    engine.train_epoch(perms)
    engine.close()
    assert seen and all(s == {1} for s in seen), seen
    assert blas_threads() == before


def test_a_worker_that_cannot_start_is_a_clear_error(small, monkeypatch):
    monkeypatch.setattr(stacked_workers, "BOOTSTRAP", "import sys; sys.exit(3)")
    stack, engine, perms = engine_and_data(small)
    before = stack.parameters.copy()
    with pytest.raises(WorkerFailed, match=r"stopped \(exit code 3\).*--workers 1"):
        engine.train_epoch(perms)
    np.testing.assert_array_equal(stack.parameters, before)


def test_the_cli_reports_a_failed_worker_in_one_line(monkeypatch, capsys):
    from gpunet.cli import main

    monkeypatch.setattr(stacked_workers, "BOOTSTRAP", "import sys; sys.exit(3)")
    code = main(["sweep", "--device", "cpu", "--epochs", "1", "--limit", "100",
                 "--seeds", "0-1", "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("gpunet: error: a worker process of the stacked CPU engine "
                          "stopped (exit code 3)") and "--workers 1" in err
    assert "Traceback" not in err


def test_a_worker_that_cannot_be_started_is_a_clear_error(small, monkeypatch):
    monkeypatch.setattr(stacked_workers.sys, "executable", "/nonexistent/python")
    with pytest.raises(WorkerFailed, match="could not start a worker.*--workers 1"):
        engine_and_data(small)
