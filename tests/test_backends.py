"""The backend interface: device selection, fused operations, the strict stand-in."""

from __future__ import annotations

import contextlib
import os
import sys
import types
import warnings

import numpy as np
import pytest

import gpunet.backends as backends
from gpunet.backends import BackendUnavailable, NumpyBackend, array_module, get_backend
from gpunet.backends.testing import DeviceArray, StrictBackend
from gpunet.check.reference import sigmoid

from conftest import assert_close


@pytest.fixture(autouse=True)
def _auto_alone(monkeypatch):
    """These tests are about what ``auto`` takes by itself: without ``GPUNET_DEVICE``
    (the pretend-GPU pass sets it; the tests of ``GPUNET_DEVICE`` set their own)."""
    monkeypatch.delenv("GPUNET_DEVICE", raising=False)


# ------------------------------------------------------------ device choice
def test_cpu_and_case_insensitive():
    assert isinstance(get_backend("cpu"), NumpyBackend)
    assert isinstance(get_backend(" CPU "), NumpyBackend)
    assert get_backend("cpu").description.startswith("cpu (NumPy")


def test_strict_names_the_stand_in_and_gpunet_device_can_choose_it(monkeypatch):
    """``strict`` / ``strict:N``: the stand-in, as ``auto`` when ``GPUNET_DEVICE=strict``
    (the suite's pretend-GPU pass, in this process and in the commands it starts)."""
    assert isinstance(get_backend("strict"), StrictBackend)
    assert get_backend("strict:2").index == 2 and get_backend("strict:2").device == "strict:2"
    monkeypatch.setenv("GPUNET_DEVICE", "strict")
    chosen = get_backend("auto")
    assert isinstance(chosen, StrictBackend) and chosen.order == "reversed"
    assert chosen.selection_note == "GPUNET_DEVICE chose strict"
    assert isinstance(get_backend("cpu"), NumpyBackend)  # a device named explicitly wins
    with pytest.raises(ValueError, match="order must be one of"):
        StrictBackend(order="pairwise")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_strict_sums_in_another_order_than_numpy(dtype):
    """Products and sums of the stand-in run their contraction backwards, as a GPU sums
    in an order of its own: not NumPy's bits, but NumPy's numbers to rounding (products
    of 784 terms: within 784 unit roundoffs of the sum of |terms|, in any order).
    ``order="numpy"`` is NumPy's arithmetic bit for bit."""
    rng = np.random.default_rng(0)
    a, w = rng.normal(size=(10, 784)).astype(dtype), rng.normal(size=(30, 784)).astype(dtype)
    d3 = rng.normal(size=(4, 10, 784)).astype(dtype)
    reference = {"matmul": a @ w.T, "sum0": a.sum(axis=0), "sum": a.sum(),
                 "batched": d3 @ w.T, "sum1": d3.sum(axis=1)}
    bound = 784 * np.finfo(dtype).eps * (np.abs(a) @ np.abs(w.T)).max()
    for order, exact in (("reversed", False), ("numpy", True)):
        backend = StrictBackend(order=order)
        xp, A, W, D = backend.xp, backend.asarray(a), backend.asarray(w), backend.asarray(d3)
        out = xp.empty((10, 30), dtype=dtype)
        xp.matmul(A, W.T, out=out)
        got = {"matmul": out, "sum0": xp.sum(A, axis=0), "sum": A.sum(),
               "batched": D @ W.T, "sum1": xp.sum(D, axis=1)}
        for name, value in got.items():
            value = backend.to_host(value)
            if exact:
                np.testing.assert_array_equal(value, reference[name], err_msg=name)
            else:
                np.testing.assert_allclose(value, reference[name], rtol=0, atol=bound,
                                           err_msg=name)
        differs = [name for name in ("matmul", "batched", "sum0", "sum1")
                   if not np.array_equal(backend.to_host(got[name]), reference[name])]
        assert differs == ([] if exact else ["matmul", "batched", "sum0", "sum1"]), order


def test_backend_instance_passes_through():
    b = StrictBackend()
    assert get_backend(b) is b


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:x", "cuda0", "tpu", ""])
def test_unknown_device_names_the_choices(name):
    with pytest.raises(ValueError, match="use 'cpu', 'cuda', 'cuda:N'"):
        get_backend(name)


def _fake_cupy(monkeypatch, count=None, error=None, driver=13000, runtime=13000,
               probe_error=None):
    """Install a fake ``cupy`` whose runtime reports ``count`` devices (or raises
    ``error``), with the given driver and runtime versions; the start-up probe raises
    ``probe_error`` (or passes)."""
    from gpunet.backends import cupy_backend

    def get_device_count():
        if error is not None:
            raise error
        return count

    runtime_ns = types.SimpleNamespace(getDeviceCount=get_device_count,
                                       driverGetVersion=lambda: driver,
                                       runtimeGetVersion=lambda: runtime)
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=runtime_ns, Device=lambda i: contextlib.nullcontext())
    fake.ElementwiseKernel = lambda *args: None
    monkeypatch.setitem(sys.modules, "cupy", fake)

    def probe(cupy, kernels):
        if probe_error is not None:
            raise probe_error
        return []

    monkeypatch.setattr(cupy_backend, "probe", probe)


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_cuda_without_cupy_gives_an_install_command_that_works(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail
    with pytest.raises(BackendUnavailable) as info:
        get_backend("cuda")
    message = _one_line(info)
    # gpunet is not on PyPI: the hint names the extra and installs CuPy by name
    assert 'the cuda13 extra: pip install "cupy-cuda13x[ctk]' in message
    assert 'the cuda12 extra: pip install "cupy-cuda12x[ctk]' in message
    assert "gpunet[cuda" not in message and "-e " not in message
    assert info.value.reason == "CuPy is not installed"


def test_cuda_without_device_says_so(monkeypatch):
    _fake_cupy(monkeypatch, error=RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"))
    with pytest.raises(BackendUnavailable, match="no CUDA device is visible.*nvidia-smi"):
        get_backend("cuda:0")
    _fake_cupy(monkeypatch, count=0)
    with pytest.raises(BackendUnavailable, match="no CUDA device is visible"):
        get_backend("cuda")


def test_old_driver_is_named_as_the_cause_not_a_missing_device(monkeypatch):
    error = RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient "
                         "for CUDA runtime version")
    _fake_cupy(monkeypatch, error=error, driver=12040, runtime=13000)
    with pytest.raises(BackendUnavailable) as info:
        get_backend("cuda")
    message = _one_line(info)
    assert "driver is too old for this CuPy" in message and "CUDA 12.4" in message
    assert "CUDA 13.0" in message and 'the cuda12 extra: pip install "cupy-cuda12x' in message
    assert "no CUDA device" not in message
    assert "driver is too old" in get_backend("auto").selection_note
    # no driver at all (what CuPy reports on a machine without one)
    _fake_cupy(monkeypatch, error=error, driver=0)
    with pytest.raises(BackendUnavailable) as info:
        get_backend("cuda")
    assert info.value.reason == "no NVIDIA driver found"


@pytest.mark.parametrize("error, cause", [
    (OSError("libcublas.so.13: cannot open shared object file: No such file or directory"),
     "CuPy cannot load cuBLAS"),
    (RuntimeError("CuPy failed to load libnvrtc.so.13: OSError: libnvrtc.so.13: cannot open "
                  "shared object file"), "CuPy cannot load NVRTC"),
    (RuntimeError("Failed to auto-detect CUDA root directory. Please specify `CUDA_PATH`"),
     "the CUDA headers NVRTC needs are missing"),
    (RuntimeError("the probe of gpunet_sigmoid computed a wrong result (error 0.5)"),
     "CUDA failed its start-up self-test"),
])
def test_a_failing_probe_makes_cuda_unavailable_with_the_cause(monkeypatch, error, cause):
    """A driver alone is not enough: the first kernel or matrix product must not be
    where a missing library shows up."""
    _fake_cupy(monkeypatch, count=1, probe_error=error)
    with pytest.raises(BackendUnavailable) as info:
        get_backend("cuda")
    message = _one_line(info)
    assert message.startswith(f"CUDA is not usable here: {cause}")
    assert message.endswith('or use device="cpu".')  # the library's spelling
    if "load" in cause or "headers" in cause:
        assert 'the cuda13 extra: pip install "cupy-cuda13x[ctk]' in message
    note = get_backend("auto").selection_note
    assert note.startswith(f"auto chose cpu: {cause}")


def test_cuda_index_out_of_range(monkeypatch):
    _fake_cupy(monkeypatch, count=1)
    with pytest.raises(BackendUnavailable, match=r"cuda:3 .* only 1 CUDA device.*cuda:0"):
        get_backend("cuda:3")


def test_auto_falls_back_to_cpu_and_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    b = get_backend("auto")
    assert isinstance(b, NumpyBackend)
    assert b.selection_note == "auto chose cpu: CuPy is not installed"
    _fake_cupy(monkeypatch, count=0)
    assert "no CUDA device" in get_backend(None).selection_note


# ------------------------------------------------------------ GPUNET_DEVICE
def test_gpunet_device_sets_what_auto_means(monkeypatch):
    monkeypatch.setenv("GPUNET_DEVICE", "CPU")
    b = get_backend("auto")
    assert isinstance(b, NumpyBackend) and b.selection_note == "GPUNET_DEVICE chose cpu"
    assert isinstance(get_backend(None), NumpyBackend)
    # a device named explicitly wins over the variable
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(BackendUnavailable, match="CuPy is not installed"):
        get_backend("cuda")
    monkeypatch.setenv("GPUNET_DEVICE", "cuda")
    assert isinstance(get_backend("cpu"), NumpyBackend)
    with pytest.raises(BackendUnavailable, match="came from GPUNET_DEVICE=cuda"):
        get_backend("auto")  # asked for by the variable: no silent fallback
    monkeypatch.setenv("GPUNET_DEVICE", "auto")
    assert get_backend("auto").selection_note == "auto chose cpu: CuPy is not installed"


def test_registered_devices_are_what_get_backend_and_gpunet_device_resolve(monkeypatch):
    """A backend's module registers its device name; ``get_backend`` and
    ``GPUNET_DEVICE`` then know it (``name`` is index 0, ``name:N`` index N)."""
    made = []

    class Other(NumpyBackend):
        def __init__(self, index: int) -> None:
            made.append(index)
            self.device = f"other:{index}"

    monkeypatch.setattr(backends, "_registered", dict(backends._registered))
    backends.register_device("other", Other)
    assert "other" in backends.registered_devices() and "strict" in backends.registered_devices()
    assert get_backend("other:3").device == "other:3" and get_backend("OTHER").device == "other:0"
    monkeypatch.setenv("GPUNET_DEVICE", "other:1")
    assert get_backend().selection_note == "GPUNET_DEVICE chose other:1" and made == [3, 0, 1]
    for bad in ("cuda", "auto", "two words", "x:1"):
        with pytest.raises(ValueError, match="cannot register device"):
            backends.register_device(bad, Other)


def test_the_strict_device_reaches_processes_through_the_modules_variable():
    """The resolver imports no test machinery: a process knows ``strict`` only where
    ``GPUNET_BACKEND_MODULES`` names the module that registers it (the tests set it
    for every process they start), and a name there that cannot be imported is one
    error naming the variable."""
    import subprocess

    code = ("import sys, gpunet.backends as b\n"
            "for device in ('auto', 'strict:1'):\n"
            "    try:\n        print(type(b.get_backend(device)).__name__)\n"
            "    except ValueError as e:\n        print('ValueError:', e)\n"
            "print('gpunet.backends.testing' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["GPUNET_DEVICE"] = "strict"

    def run(modules):
        env.pop(backends.BACKEND_MODULES_ENV, None)
        if modules is not None:
            env[backends.BACKEND_MODULES_ENV] = modules
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()

    assert run("gpunet.backends.testing") == ["StrictBackend", "StrictBackend", "True"]
    without = run(None)
    assert without[0].startswith("ValueError: GPUNET_DEVICE='strict' is not a device")
    assert without[1].startswith("ValueError: unknown device 'strict:1'; use 'cpu'")
    assert without[2] == "False"
    wrong = run("gpunet.no_such_module")
    assert wrong[0].startswith("ValueError: GPUNET_BACKEND_MODULES='gpunet.no_such_module': "
                               "cannot import gpunet.no_such_module")


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "tpu"])
def test_invalid_gpunet_device_is_a_clear_error(monkeypatch, value, capsys):
    monkeypatch.setenv("GPUNET_DEVICE", value)
    with pytest.raises(ValueError, match=f"GPUNET_DEVICE='{value}' is not a device; set it to 'cpu'"):
        get_backend("auto")
    from gpunet.cli import main

    assert main(["train", "--epochs", "1", "--limit", "10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "GPUNET_DEVICE" in err[0] and err[0].startswith("gpunet: error:")
    assert main(["train", "--device", "cpu", "--epochs", "1", "--limit", "10"]) == 0


def test_cupy_is_imported_lazily():
    import subprocess

    code = ("import sys, gpunet; gpunet.backends.get_backend('cpu'); "
            "print('cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------- fused operations
@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return {
        "z": rng.normal(0, 4, (7, 5)),
        "a": rng.uniform(0, 1, (7, 5)),
        "y": rng.uniform(0, 1, (7, 5)),
        "g": rng.normal(0, 1, (7, 5)),
        "b": rng.normal(0, 1, (1, 5)),
    }


def test_fused_operations_match_the_formulas(backend_dtype, arrays):
    backend, dtype = backend_dtype
    # the inputs as the dtype holds them; the expected values from those, in float64
    arrays = {k: v.astype(dtype).astype(np.float64) for k, v in arrays.items()}
    # copies: NumPy's asarray may alias the host array, and the operations write in place
    dev = {k: backend.asarray(v.copy(), dtype) for k, v in arrays.items()}
    xp = backend.xp
    out = xp.empty((7, 5), dtype=dtype)
    scratch = xp.empty((7, 5), dtype=dtype)
    z, a, y, g, b = (arrays[k] for k in "zaygb")

    def check(result, expected):
        assert result.dtype == np.dtype(dtype)
        assert_close(backend.to_host(result), expected, dtype)

    check(backend.sigmoid(dev["z"], out), sigmoid(z))
    check(backend.add_bias_sigmoid(dev["z"], dev["b"], out), sigmoid(z + b))
    check(backend.quadratic_output_error(dev["a"], dev["y"], out, scratch), (a - y) * a * (1 - a))
    check(backend.cross_entropy_output_error(dev["a"], dev["y"], out), a - y)
    delta = backend.asarray(g.copy(), dtype)
    check(backend.sigmoid_prime_mul(delta, dev["a"], scratch), g * a * (1 - a))
    param = backend.asarray(z.copy(), dtype)
    grad = backend.asarray(g.copy(), dtype)
    check(backend.sgd_update(param, grad, 0.3, 0.99), 0.99 * z - 0.3 * g)
    param = backend.asarray(z.copy(), dtype)
    grad = backend.asarray(g.copy(), dtype)
    check(backend.sgd_update(param, grad, 0.3), z - 0.3 * g)
    # a flat buffer whose first 12 entries (the weights) decay and the rest do not
    flat_z, flat_g = z.reshape(-1), g.reshape(-1)
    param = backend.asarray(flat_z.copy(), dtype)
    grad = backend.asarray(flat_g.copy(), dtype)
    decay = np.where(np.arange(flat_z.size) < 12, 0.99, 1.0)
    check(backend.sgd_update(param, grad, 0.3, 0.99, decayed=12), decay * flat_z - 0.3 * flat_g)


def test_sigmoid_saturates_without_nan_or_warnings(backend_dtype):
    backend, dtype = backend_dtype
    z = backend.asarray(np.array([-1e4, -100.0, 0.0, 100.0, 1e4]), dtype)
    out = backend.xp.empty_like(z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = backend.to_host(backend.sigmoid(z, out))
    assert a.dtype == np.dtype(dtype)
    np.testing.assert_allclose(a, [0.0, sigmoid(np.float64(-100.0)), 0.5, 1.0, 1.0], rtol=1e-6,
                               atol=1e-30)


def test_float32_stays_float32(backend):
    p = backend.asarray(np.ones((3, 3)), np.float32)
    backend.sgd_update(p, backend.asarray(np.ones((3, 3)), np.float32), 0.1, 0.5)
    assert p.dtype == np.float32
    np.testing.assert_allclose(backend.to_host(p), 0.4, rtol=1e-6)


# ------------------------------------------------------- the strict stand-in
def test_strict_refuses_implicit_conversion_like_cupy():
    b = StrictBackend()
    a = b.asarray(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError, match="host numpy.ndarray was mixed"):
        a + np.ones((2, 3))
    with pytest.raises(TypeError, match="host numpy.ndarray was mixed"):
        b.xp.matmul(a, np.ones((3, 2)))


def test_strict_counts_every_device_to_host_copy():
    b = StrictBackend()
    a = b.asarray(np.arange(6.0).reshape(2, 3))
    s = b.xp.sum(a * 2 + 1)  # device arithmetic: no transfer
    assert isinstance(s, DeviceArray) and b.transfers == 0
    assert float(s) == 36.0
    assert b.transfers == 1
    assert b.to_host(a).shape == (2, 3)
    assert int(a[1, 2]) == 5 and a.tolist()[0] == [0.0, 1.0, 2.0]
    assert b.transfers == 4
    if a.sum() > 0:  # bool() is a transfer too
        pass
    assert b.transfers == 5


def test_array_module():
    assert array_module(np.ones(2)) is np
    b = StrictBackend()
    assert array_module(b.asarray(np.ones(2))).__class__.__name__ == "_StrictNamespace"


def test_backends_never_import_gpunet():
    import pathlib

    for path in pathlib.Path(backends.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "import gpunet" not in text and "from gpunet" not in text, path


def test_strict_capture_refuses_matrix_products_as_cupy_refuses_cublas():
    b = StrictBackend()
    a = b.asarray(np.ones((2, 2)))
    with b.stream_capture():
        b.add_bias_sigmoid(a, a[:1], out=b.xp.empty((2, 2)))  # elementwise kernels: fine
        for product in (lambda: b.xp.matmul(a, a), lambda: a @ a, lambda: b.xp.dot(a, a),
                        lambda: a.dot(a)):
            with pytest.raises(NotImplementedError,
                               match="calling cuBLAS API during stream capture is currently unsupported"):
                product()
        with pytest.raises(RuntimeError, match="synchronises"):
            b.to_host(a)
    assert b.to_host(b.xp.matmul(a, a)).tolist() == [[2.0, 2.0], [2.0, 2.0]]  # after capture


def test_strict_current_device_is_per_thread_and_scoped():
    import threading

    from gpunet.backends.testing import current_device

    b1 = StrictBackend(index=1)
    assert current_device() == 0
    with b1.scope():
        assert current_device() == 1
        seen = []
        t = threading.Thread(target=lambda: seen.append(current_device()))
        t.start()
        t.join()
        assert seen == [0]  # another thread has its own current device
        x = b1.xp.zeros(3)
    assert current_device() == 0 and x.device == 1
    with pytest.raises(ValueError, match="enter backend.scope"):
        x + 1


def test_a_cuda_error_while_running_is_one_cli_line(monkeypatch, capsys):
    """No CUDA failure in the CLI ends in a traceback: CuPy's errors become one line."""
    from gpunet.cli import info, main

    CUDARuntimeError = type("CUDARuntimeError", (RuntimeError,),
                            {"__module__": "cupy_backends.cuda.api.runtime"})

    def fails(args):
        raise CUDARuntimeError("cudaErrorLaunchFailure: unspecified launch failure\nmore")

    monkeypatch.setattr(info, "run", fails)
    assert main(["info"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gpunet: error: CUDA failed: CUDARuntimeError: cudaErrorLaunchFailure: "
                   "unspecified launch failure; test the device with `gpunet check --device cuda`"]
    monkeypatch.setattr(info, "run", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # gpunet's own bugs still show their traceback
        main(["info"])


def test_auto_without_a_driver_does_not_import_cupy():
    """Without an NVIDIA driver, auto says so without paying for CuPy's import."""
    import importlib.util
    import subprocess

    from gpunet.backends.cupy_backend import nvidia_driver_loadable

    if nvidia_driver_loadable() or importlib.util.find_spec("cupy") is None:
        pytest.skip("needs CuPy installed and no NVIDIA driver")
    code = ("import sys, gpunet; b = gpunet.get_backend('auto'); "
            "print(b.selection_note, 'cupy' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "GPUNET_DEVICE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "auto chose cpu: no NVIDIA driver found False"


def test_info_names_an_install_command_that_works(monkeypatch, capsys):
    from gpunet.cli import main

    monkeypatch.setitem(sys.modules, "cupy", None)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "cuda    unavailable: CuPy is not installed" in out
    assert 'the cuda13 extra: pip install "cupy-cuda13x[ctk]' in out
    assert "gpunet[cuda" not in out


def _probe_with(backend, **wrong):
    """Run the CUDA start-up probe on the strict stand-in, kernels called as CuPy calls them."""
    from gpunet.backends import cupy_backend

    fake_cupy = types.SimpleNamespace(
        asarray=backend.asarray, empty_like=backend.xp.empty_like,
        ones_like=backend.xp.ones_like, matmul=backend.xp.matmul,
        cuda=types.SimpleNamespace(
            get_current_stream=lambda: types.SimpleNamespace(synchronize=lambda: None)))
    kernels = types.SimpleNamespace(
        sigmoid=lambda z, out: backend.sigmoid(z, out),
        add_bias_sigmoid=lambda z, b, out: backend.add_bias_sigmoid(z, b, out),
        sigmoid_prime_mul=lambda a, delta: backend.sigmoid_prime_mul(delta, a, backend.xp.empty_like(a)),
        quadratic_output_error=lambda a, y, out: backend.quadratic_output_error(
            a, y, out, backend.xp.empty_like(a)),
        sgd_update=lambda grad, scale, decay, decayed, param: backend.sgd_update(
            param, grad, float(scale), float(decay), int(decayed)),
    )
    for name, kernel in wrong.items():
        setattr(kernels, name, kernel)
    return cupy_backend.probe(fake_cupy, kernels)


def test_probe_passes_correct_kernels_and_catches_a_wrong_one():
    """The probe's own expected values must be right, or every real GPU would be
    refused: run it on correct kernels (the strict stand-in's), then on a wrong one."""
    b = StrictBackend()
    steps = _probe_with(b)
    assert [name for name, _, _ in steps] == [
        "gpunet_sigmoid", "gpunet_add_bias_sigmoid", "gpunet_sigmoid_prime_mul",
        "gpunet_quadratic_delta", "gpunet_sgd_update", "cublas_matmul"]
    assert all(error < 1e-6 for _, error, _ in steps)
    with pytest.raises(RuntimeError, match="probe of gpunet_sgd_update computed a wrong result"):
        # decays the biases too (ignores ``decayed``)
        _probe_with(b, sgd_update=lambda grad, scale, decay, decayed, param: b.sgd_update(
            param, grad, float(scale), float(decay)))
