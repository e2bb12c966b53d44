"""What users install: a wheel built from this checkout, in a fresh virtual environment.

Every other test imports gpunet from the source tree (an editable install), so a file
missing from the wheel (``[tool.setuptools.package-data]`` dropped, say) would leave
them green while the installed ``gpunet train`` fails. These tests build the wheel from
a copy of the checkout, install it with pip into a new virtual environment (NumPy
comes from pip's cache or PyPI), and run it from a folder that has its own
``backends/`` package, with no ``PYTHONPATH``: nothing can stand in for the installed
files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import gpunet
from conftest import run_gpunet

ROOT = Path(__file__).resolve().parents[1]
BIN = "Scripts" if os.name == "nt" else "bin"
EXE = ".exe" if os.name == "nt" else ""

# Build outputs and caches: a fresh clone has none of them, and a stale ``build/lib``
# would put files into the wheel that the configuration no longer ships.
_NOT_COPIED = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", ".mypy_cache", ".ci-venv", ".venv",
                                     "runs")

# A research project's own ``backends`` package; it must not shadow gpunet's.
_USER_BACKENDS = '"""A project\'s own backends package: nothing gpunet needs."""\nBACKENDS = []\n'

_USER_SCRIPT = """\
import gpunet
from gpunet.backends import get_backend

data = gpunet.load_mnist()
X, y = data.training
net = gpunet.Network([784, 10], device="cpu", seed=0)
net.SGD((X[:200], y[:200]), 1, 10, 3.0, verbose=False)
print(gpunet.__file__)
print(get_backend("cpu").name, net.accuracy(data.test) > 1000)
"""


def _clean_env() -> dict[str, str]:
    """The environment without anything that would add the checkout to ``sys.path``."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH", "VIRTUAL_ENV"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(args: list, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    run = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                         env=_clean_env(), timeout=timeout)
    assert run.returncode == 0, f"{args} failed:\n{run.stdout}\n{run.stderr}"
    return run


def _pip_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(part) for part in version("pip").split(".")[:2] if part.isdigit())


class Installed:
    """The built wheel, the virtual environment it is installed in, and a user's folder."""

    def __init__(self, wheel: Path, venv: Path, project: Path) -> None:
        self.wheel = wheel
        self.venv = venv
        self.project = project
        self.python = venv / BIN / f"python{EXE}"
        self.script = venv / BIN / f"gpunet{EXE}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    source, wheels, venv, project = (base / n for n in ("source", "wheels", "venv", "project"))
    shutil.copytree(ROOT, source, ignore=_NOT_COPIED)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, source],
         cwd=base)
    (wheel,) = wheels.glob("gpunet-*.whl")
    python = venv / BIN / f"python{EXE}"
    install = ["install", "--quiet", "--disable-pip-version-check", wheel]
    if _pip_version() >= (22, 3):
        # No pip inside the environment (ensurepip is the slow part of venv): this
        # interpreter's pip installs into it with --python.
        _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=base)
        _run([sys.executable, "-m", "pip", "--python", python, *install], cwd=base)
    else:
        _run([sys.executable, "-m", "venv", venv], cwd=base)
        _run([python, "-m", "pip", *install], cwd=base)
    (project / "backends").mkdir(parents=True)
    (project / "backends" / "__init__.py").write_text(_USER_BACKENDS)
    return Installed(wheel, venv, project)


def test_the_wheel_installs_one_top_level_package(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert wheel.read(top_level).decode().split() == ["gpunet"]
    tops = {n.split("/")[0] for n in names}
    assert tops == {"gpunet", f"gpunet-{gpunet.__version__}.dist-info"}, sorted(tops)
    assert "gpunet/backends/__init__.py" in names and "backends/__init__.py" not in names


def test_the_installed_distribution_has_the_data_and_py_typed(installed):
    """Every file of gpunet/data/mnist (IDX files, checksums, notice) and py.typed."""
    listing = _run([installed.python, "-c",
                    "import importlib.metadata as m\n"
                    "for f in m.files('gpunet'): print(f.as_posix())"],
                   cwd=installed.project).stdout.split()
    shipped = {f"gpunet/data/mnist/{p.name}" for p in (ROOT / "gpunet/data/mnist").iterdir()}
    assert {"gpunet/data/mnist/RAW-SHA256SUMS",
            "gpunet/data/mnist/train-images-idx3-ubyte.gz"} <= shipped
    assert shipped | {"gpunet/py.typed"} <= set(listing), sorted(shipped - set(listing))
    site = _run([installed.python, "-c", "import gpunet, os; print(os.path.dirname(gpunet.__file__))"],
                cwd=installed.project).stdout.strip()
    for name in shipped:
        assert (Path(site).parent / name).is_file(), name


def test_the_console_script_trains_beside_a_users_backends_package(installed):
    args = ("train", "--device", "cpu", "--limit", "500", "--epochs", "1", "--seed", "1")
    run = _run([installed.script, *args], cwd=installed.project)
    assert "bundled MNIST" in run.stdout and "training on 500" in run.stdout, run.stdout
    epoch = _epoch_line(run.stdout)
    assert int(epoch.split()[2]) > 2000, epoch  # 500 images, one epoch: above chance (1,000)
    # the same numbers as the source tree gives
    assert epoch == _epoch_line(run_gpunet(*args).stdout)


def _epoch_line(out: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith("Epoch 0: ")]
    return line.split("(")[0].strip()  # without the time


def test_a_users_script_imports_the_installed_gpunet(installed):
    """``python script.py`` puts the script's folder, with its ``backends/``, first on
    ``sys.path``; gpunet must still import its own backends, from the environment."""
    (installed.project / "train_it.py").write_text(_USER_SCRIPT)
    run = _run([installed.python, "train_it.py"], cwd=installed.project)
    module_file, result = run.stdout.strip().splitlines()
    assert Path(module_file).resolve().is_relative_to(installed.venv.resolve()), module_file
    assert result == "numpy True"


def test_the_installed_package_type_checks(installed):
    """``mypy`` with the project's settings (``[tool.mypy]``: strict) on gpunet as a user's
    type checker sees it: the installed package and its ``py.typed``. From the
    checkout mypy cannot resolve ``gpunet.backends`` (the ``backends/`` folder becomes
    ``gpunet.backends`` only when installed), so this is where the package is checked."""
    pytest.importorskip("mypy", reason="mypy is not installed (pip install mypy)")
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", ROOT / "pyproject.toml",
                          "--python-executable", installed.python, "--no-incremental",
                          "-p", "gpunet"], capture_output=True, text=True,
                         cwd=installed.project, env=_clean_env(), timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr

