"""``gpunet sweep --executor ray``: stacks as Ray tasks give exactly the local rows.

Starts a local Ray instance (``ray.init(num_cpus=2)``, token authentication off, as a
test instance may) for the module; skips, saying why, where Ray is not installed
(``pip install -e ".[ray]"``; the ``test`` extra includes it, so CI runs these).
"""

from __future__ import annotations

import json
import os

import pytest

ray = pytest.importorskip(
    "ray", reason='Ray is not installed (pip install -e ".[ray]", or ".[test]")')

from gpunet import sweep as sw
from gpunet.cli import main
from gpunet.sweep.ray import blas_threads_here, run_ray

COMMON = ["sweep", "--device", "cpu", "--limit", "503", "--epochs", "2",
          "--eta", "0.5,3", "--lmbda", "0,1", "--seeds", "0-1",
          "--stack", "3", "--monitor-evaluation-cost", "--monitor-training-cost"]


@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # 2 CPUs (CI's machine), or as many as this process's BLAS threads: a task gets as
    # many threads as it asks CPUs, and rows match the local engine's exactly only with
    # the same BLAS thread count.
    ray.init(num_cpus=max(2, blas_threads_here()), include_dashboard=False,
             log_to_driver=False)
    yield ray
    ray.shutdown()


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_ray_rows_equal_local_rows(local_ray, tmp_path, capsys):
    assert main([*COMMON, "--executor", "local", "--metrics", str(tmp_path / "local.jsonl")]) == 0
    assert main([*COMMON, "--executor", "ray", "--metrics", str(tmp_path / "ray.jsonl"),
                 "--save-dir", str(tmp_path / "nets")]) == 0
    out = capsys.readouterr().out
    assert "ray: 3 stack(s) sent to a Ray cluster of" in out
    local, remote = read(tmp_path / "local.jsonl"), read(tmp_path / "ray.jsonl")
    assert "gpunet_metrics" in local[0] and "gpunet_metrics" in remote[0]  # the headers
    local, remote = local[1:], remote[1:]
    assert len(local) == 8 * 2
    assert sw.without_timing(remote) == sw.without_timing(local)
    assert all("train_seconds" in r for r in remote)
    assert len(list((tmp_path / "nets").iterdir())) == 8
    assert ray.is_initialized()  # an instance the caller started stays up


def test_a_failing_task_is_a_clear_error(local_ray):
    settings = sw.SweepSettings(sizes=(784, 10, 10), epochs=1, sgd={"engine": "warp"})
    runs = sw.expand_grid([0.5], [0.0], [0])
    import numpy as np

    data = (np.zeros((20, 784), np.float32), np.zeros(20, np.int64))
    with pytest.raises(ValueError, match="stack 1: unknown engine 'warp'"):
        list(run_ray(settings, [runs], data, data, log=lambda line: None))


def test_gpu_sweep_on_a_cluster_without_gpus_is_refused(local_ray):
    settings = sw.SweepSettings(sizes=(784, 10, 10), epochs=1, device="cuda")
    runs = sw.expand_grid([0.5], [0.0], [0])
    with pytest.raises(ValueError, match="the Ray cluster has none"):
        list(run_ray(settings, [runs], None, None, log=lambda line: None))
