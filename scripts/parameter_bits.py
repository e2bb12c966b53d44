"""Every parameter, bit for bit, before and after a change that must not change arithmetic.

    python scripts/parameter_bits.py write OUT.npz     # with the code before the change
    python scripts/parameter_bits.py compare OUT.npz   # with the code after it

Trains the cases a refactor must leave bit for bit (issue 27's list): the cpu, eager and
fused engines (the fused kernel run by the CPU emulator, ``backends/testing``), float32
and float64, the quadratic and cross-entropy costs each with and without L2 (λ = 5),
one network and a stack of 3 (η 0.5/3.0/1.0, seeds 0-2), 2 epochs of 2,000 MNIST
images in mini-batches of 10 on [784, 30, 10], and stores (or compares) every final
parameter. ``compare`` prints one line per case and exits 1 if any bit differs.
Run both sides on one machine: BLAS kernels round differently.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

import numpy as np

import gpunet

N, EPOCHS, M, SIZES = 2000, 2, 10, [784, 30, 10]


def _settings_class() -> Any:
    for where in ("gpunet.training.settings", "gpunet.training.loop", "gpunet.engines"):
        try:
            module = __import__(where, fromlist=["TrainingSettings"])
            return module.TrainingSettings
        except (ImportError, AttributeError):
            continue
    raise ImportError("TrainingSettings not found")


def _fused(sizes: list[int], K: int, cost: str, dtype: str, eta: list[float],
           lmbda: float, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    from gpunet.backends.testing.emulator import EmulatedSgdEpoch
    from gpunet.engines.fused import FusedEngine

    kw = dict(cost=cost, init="default", dtype=dtype, device="cpu")
    model: Any = (gpunet.Network(sizes, seed=0, **kw) if K == 1
                  else gpunet.NetworkStack(sizes, list(range(K)), **kw))
    settings = _settings_class()(epochs=EPOCHS, mini_batch_size=M, eta=tuple(eta),
                                 lmbda=(lmbda,) * K)
    engine = FusedEngine(model, X.astype(dtype), Y.astype(dtype), settings,
                         launcher=EmulatedSgdEpoch(np.dtype(dtype).type, "ascending"),
                         threads=64)
    rng = np.random.default_rng(100)
    for _ in range(EPOCHS):
        perms = np.stack([rng.permutation(N) for _ in range(K)])
        engine.train_epoch(perms[0] if K == 1 else perms)
    return np.array(model.parameters, copy=True)


def _trained(engine: str, sizes: list[int], K: int, cost: str, dtype: str,
             lmbda: float, data: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    X, y = data
    eta = [0.5, 3.0, 1.0][:K]
    if engine == "fused":
        return _fused(sizes, K, cost, dtype, eta, lmbda, X, np.eye(10)[y])
    kw = dict(cost=cost, init="default", dtype=dtype, device="cpu")
    if K == 1:
        net = gpunet.Network(sizes, seed=0, **kw)
        net.SGD((X, y), EPOCHS, M, eta[0], lmbda=lmbda, verbose=False, engine=engine)
        return np.array(net.parameters, copy=True)
    stack = gpunet.NetworkStack(sizes, list(range(K)), **kw)
    stack.SGD((X, y), EPOCHS, M, eta, lmbda=[lmbda] * K, verbose=False, engine=engine,
              workers=1)
    return np.array(stack.parameters, copy=True)


def cases() -> list[tuple[str, str, str, float, int]]:
    return list(itertools.product(("cpu", "eager", "fused"), ("float32", "float64"),
                                  ("quadratic", "cross-entropy"), (0.0, 5.0), (1, 3)))


def run_all() -> dict[str, np.ndarray]:
    mnist = gpunet.load_mnist()
    data = (mnist.training[0][:N], mnist.training[1][:N])
    out = {}
    for engine, dtype, cost, lmbda, K in cases():
        key = f"{engine}-{dtype}-{cost}-lmbda{lmbda:g}-K{K}"
        out[key] = _trained(engine, SIZES, K, cost, dtype, lmbda, data)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("write", "compare"):
        print(__doc__)
        return 2
    results = run_all()
    if argv[0] == "write":
        np.savez(argv[1], **results)
        print(f"wrote {len(results)} cases to {argv[1]}")
        return 0
    with np.load(argv[1]) as before:
        differ = 0
        for key, after in results.items():
            same = (before[key].dtype == after.dtype and before[key].shape == after.shape
                    and before[key].tobytes() == after.tobytes())
            differ += not same
            print(f"{key}: {'bit for bit' if same else 'DIFFERS'}")
    print(f"{len(results) - differ} of {len(results)} cases bit for bit")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
