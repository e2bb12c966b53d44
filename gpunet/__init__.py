"""gpunet: the sigmoid networks of Nielsen's *Neural Networks and Deep Learning*,
on NumPy (CPU) or CuPy (CUDA GPU), chosen at run time.

>>> import gpunet
>>> data = gpunet.load_mnist()
>>> net = gpunet.Network([784, 30, 10], cost=gpunet.QuadraticCost, init="large")
>>> history = net.SGD(data.training, 30, 10, 3.0, test_data=data.test)

It is also a drop-in for the book's modules: ``import gpunet as network2`` and
``import gpunet as mnist_loader`` give ``Network``, the two costs, ``load``,
``sigmoid``, ``sigmoid_prime``, ``vectorized_result``, ``load_data`` and
``load_data_wrapper`` under the book's names.

Importing the package costs nothing: each public name is imported from its module the
first time it is used (PEP 562's module ``__getattr__``), and so is a submodule named
as an attribute (``gpunet.networks``). So the ``gpunet`` command can take charge of
Ctrl-C within microseconds of starting (:func:`gpunet.cli.console`), before NumPy and
the model load; ``from gpunet import *``, ``dir(gpunet)`` and type checkers see every
name as before.
"""

from __future__ import annotations

import sys

# typing's own TYPE_CHECKING, without importing typing at run time (mypy and the other
# checkers treat any name TYPE_CHECKING as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    import numpy as np

    from .backends import DeviceLike as DeviceLike, get_backend as get_backend
    from .training.checkpoint import load_checkpoint as load_checkpoint
    from .model.costs import (CrossEntropyCost as CrossEntropyCost,
                              LogLikelihoodCost as LogLikelihoodCost,
                              QuadraticCost as QuadraticCost)
    from .training.divergence import DivergenceError as DivergenceError
    from .io.expand import expand_mnist as expand_mnist
    from .training.history import History as History
    from .training.table import (MetricsTable as MetricsTable,
                                 read_metrics as read_metrics)
    from .io.mnist import (MNIST as MNIST, load_data as load_data,
                           load_data_wrapper as load_data_wrapper,
                           load_mnist as load_mnist,
                           vectorized_result as vectorized_result)
    from .networks.network import DTypeLike as DTypeLike, Network as Network
    from .io.outputs import PathLike as PathLike
    from .model.activations import sigmoid as sigmoid, sigmoid_prime as sigmoid_prime
    from .networks.resuming import resume as resume
    from .networks.stack import NetworkStack as NetworkStack
    from .sweep.eta_finder import find_eta as find_eta

from ._version import __version__

_LAZY = {
    "CrossEntropyCost": "model.costs",
    "LogLikelihoodCost": "model.costs",
    "DTypeLike": "networks.network",
    "DeviceLike": "backends",
    "DivergenceError": "training.divergence",
    "expand_mnist": "io.expand",
    "History": "training.history",
    "MNIST": "io.mnist",
    "MetricsTable": "training.table",
    "Network": "networks.network",
    "NetworkStack": "networks.stack",
    "PathLike": "io.outputs",
    "QuadraticCost": "model.costs",
    "find_eta": "sweep.eta_finder",
    "get_backend": "backends",
    "load_checkpoint": "training.checkpoint",
    "load_data": "io.mnist",
    "load_data_wrapper": "io.mnist",
    "load_mnist": "io.mnist",
    "read_metrics": "training.table",
    "resume": "networks.resuming",
    "sigmoid": "model.activations",
    "sigmoid_prime": "model.activations",
    "vectorized_result": "io.mnist",
}
"""Each public name the package re-exports, and the module (``gpunet.<module>``) that
defines it."""


def read_digit(path: PathLike) -> np.ndarray:
    """A digit image file (PNG, JPEG, .npy) as the network's ``(784,)`` input, prepared
    the way MNIST was made (see :func:`gpunet.io.images.read_digit`; needs Pillow)."""
    from .io.images import read_digit as _read_digit

    return _read_digit(path)


def load(filename: PathLike, device: DeviceLike = "auto", dtype: DTypeLike = "float32",
         seed: Optional[int] = None) -> Network:
    """Read a network saved by ``Network.save`` or by the book's ``network2.py``; its
    generator takes ``seed``, or a seed drawn from NumPy's global generator."""
    from .networks.network import Network

    return Network.load(filename, device=device, dtype=dtype, seed=seed)


def _lazy_attribute(package: str, names: dict[str, str], name: str) -> object:
    """``package``'s attribute ``name`` on first use: a name of ``names`` (imported from
    ``package.<module>``, then kept in the package), or a submodule; anything else is an
    ``AttributeError`` as for any module. Each package's ``__getattr__`` (PEP 562)."""
    import importlib

    if name in names:
        value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value
    if not name.startswith("__"):
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.{name}":
                raise  # the submodule exists, but something it imports does not
    raise AttributeError(f"module {package!r} has no attribute {name!r}")


if not TYPE_CHECKING:  # hidden from type checkers: an unknown name stays an error there

    def __getattr__(name: str) -> object:
        return _lazy_attribute(__name__, _LAZY, name)

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CrossEntropyCost",
    "LogLikelihoodCost",
    "DivergenceError",
    "expand_mnist",
    "History",
    "MNIST",
    "Network",
    "NetworkStack",
    "QuadraticCost",
    "find_eta",
    "get_backend",
    "load",
    "load_data",
    "load_data_wrapper",
    "load_mnist",
    "load_checkpoint",
    "read_digit",
    "read_metrics",
    "resume",
    "sigmoid",
    "sigmoid_prime",
    "vectorized_result",
    "__version__",
]
