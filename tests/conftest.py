"""Shared fixtures: the backends every numerical test runs on, and MNIST subsets."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gpunet.backends import BackendUnavailable, get_backend
from gpunet.backends.testing import StrictBackend


@functools.lru_cache(maxsize=None)
def cuda_unavailable_reason() -> str:
    """Empty when CuPy sees a GPU, else why the CUDA tests skip."""
    try:
        get_backend("cuda")
    except BackendUnavailable as exc:
        return str(exc)
    return ""


def make_backend(name: str):
    if name == "cpu":
        return get_backend("cpu")
    if name == "strict":
        return StrictBackend()
    if name == "cuda":
        reason = cuda_unavailable_reason()
        if reason:
            pytest.skip(f"no GPU here: {reason}")
        return get_backend("cuda")
    raise AssertionError(name)


@pytest.fixture(params=["cpu", "strict", "cuda"])
def backend(request):
    """Each available backend in turn (CUDA skips, saying why, without a GPU)."""
    return make_backend(request.param)


@pytest.fixture(scope="session")
def mnist():
    import gpunet

    return gpunet.load_mnist()


def host(backend, a) -> np.ndarray:
    """A backend array as a NumPy array (explicit transfer)."""
    return backend.to_host(a)


ROOT = Path(__file__).resolve().parents[1]


def run_gpunet(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m gpunet ARGS`` in a subprocess, as a user would (gpunet installed)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "gpunet", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
