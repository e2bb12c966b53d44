"""The CUDA start-up probe runs once per device and process, not once per backend.

``CupyBackend`` proves a device works before trusting it (every fused kernel compiled
and launched, a cuBLAS product, results checked: ``backends.cupy_backend.probe``). A
sweep builds one network, so one backend, per member: a K = 100 benchmark paid 100
probes. Here CuPy is a stand-in with two devices and the probe is counted.
"""

from __future__ import annotations

import contextlib

import pytest

from gpunet.backends import BackendUnavailable, cupy_backend, get_backend


class _FakeCupy:
    __version__ = "stand-in"

    class cuda:
        @staticmethod
        def Device(index):
            return contextlib.nullcontext()


class _Probes:
    """The probe's calls by device index; ``failing``: devices whose probe fails."""

    def __init__(self):
        self.calls, self.failing, self.index = [], set(), 0

    def __call__(self, cupy, kernels):
        self.calls.append(self.index)
        if self.index in self.failing:
            raise RuntimeError("the probe of gpunet_sigmoid computed a wrong result")
        return [("gpunet_sigmoid", 0.0, 1e-5)]


@pytest.fixture
def probes(monkeypatch):
    """CuPy and two devices stood in, and the probe counted."""
    counted = _Probes()
    original_init = cupy_backend.CupyBackend.__init__

    def init(self, index=0):
        counted.index = index
        original_init(self, index)

    monkeypatch.setattr(cupy_backend, "quick_unavailable_reason", lambda: None)
    monkeypatch.setattr(cupy_backend, "import_cupy", lambda: _FakeCupy)
    monkeypatch.setattr(cupy_backend, "cuda_device_count", lambda cupy: 2)
    monkeypatch.setattr(cupy_backend, "_Kernels", lambda cupy: object())
    monkeypatch.setattr(cupy_backend, "probe", counted)
    monkeypatch.setattr(cupy_backend, "_probed", {})
    monkeypatch.setattr(cupy_backend, "_kernels", {})
    monkeypatch.setattr(cupy_backend.CupyBackend, "__init__", init)
    return counted


def test_probe_runs_once_per_device(probes):
    backends = [get_backend("cuda") for _ in range(100)] + [get_backend("cuda:0")]
    assert probes.calls == [0]
    assert all(b.probe_errors == [("gpunet_sigmoid", 0.0, 1e-5)] for b in backends)
    assert len({id(b._kernels) for b in backends}) == 1  # the kernels are made once too
    get_backend("cuda:1")
    get_backend("cuda:1")
    assert probes.calls == [0, 1]


def test_a_failed_probe_is_not_remembered(probes):
    probes.failing.add(1)
    for _ in range(2):
        with pytest.raises(BackendUnavailable, match="failed its start-up self-test"):
            get_backend("cuda:1")
    assert probes.calls == [1, 1]  # asked again, failed again, said why each time
    probes.failing.clear()
    get_backend("cuda:1")
    get_backend("cuda:1")
    assert probes.calls == [1, 1, 1]
