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
"""

from typing import Optional

import numpy as np

from .backends import DeviceLike, get_backend
from .checkpoint import load_checkpoint

from .costs import CrossEntropyCost, QuadraticCost
from .divergence import DivergenceError
from .history import History
from .mnist import MNIST, load_data, load_data_wrapper, load_mnist, vectorized_result
from .network import DTypeLike, Network
from .persistence import PathLike
from .reference import sigmoid, sigmoid_prime
from .resuming import resume
from .stack import NetworkStack

__version__ = "0.1.0"


def read_digit(path: PathLike) -> np.ndarray:
    """A digit image file (PNG, JPEG, .npy) as the network's ``(784,)`` input, prepared
    the way MNIST was made (see :func:`gpunet.images.read_digit`; needs Pillow)."""
    from .images import read_digit as _read_digit

    return _read_digit(path)


def load(filename: PathLike, device: DeviceLike = "auto", dtype: DTypeLike = "float32",
         seed: Optional[int] = None) -> Network:
    """Read a network saved by ``Network.save`` or by the book's ``network2.py``; its
    generator takes ``seed``, or a seed drawn from NumPy's global generator."""
    return Network.load(filename, device=device, dtype=dtype, seed=seed)


__all__ = [
    "CrossEntropyCost",
    "DivergenceError",
    "History",
    "MNIST",
    "Network",
    "NetworkStack",
    "QuadraticCost",
    "get_backend",
    "load",
    "load_data",
    "load_data_wrapper",
    "load_mnist",
    "load_checkpoint",
    "read_digit",
    "resume",
    "sigmoid",
    "sigmoid_prime",
    "vectorized_result",
    "__version__",
]
