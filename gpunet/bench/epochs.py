"""Benchmarks: seconds per training epoch of gpunet against its peers, in one run.

For each configuration (network, mini-batch size) and each implementation available
here, train on the MNIST training set and report the median seconds per epoch over
several epochs after a warm-up epoch, with the device synchronised, and examples per
second. Peers are optional (the ``bench`` extra); a missing one is skipped
with the reason. Results go to ``benchmarks/<stamp>.json`` (raw, with the machine and
versions) and ``benchmarks/<stamp>.md`` (a table).

Implementations:

* ``gpunet-numpy-f32`` / ``-f64``: gpunet on the CPU as users get it (``engine="auto"``:
  the cpu engine); ``gpunet-numpy-eager-f32`` / ``-f64``: the eager engine, the reference;
  ``gpunet-cupy-f32`` / ``-f64``: on the GPU. Their epoch time is the library's own timer
  (``History.train_seconds``: shuffle plus every mini-batch step, device synchronised);
  ``first_epoch_seconds`` is the warm-up epoch's.
* ``torch-cpu`` / ``torch-cuda``: PyTorch eager, the same network, N(0, 1)
  initialisation, quadratic cost and plain SGD.
* ``jax-cpu``: JAX on the CPU (the ``jax`` extra), the same network and update
  written the way JAX runs fastest: weights ``(in, out)``, the per-example forward pass
  traced under ``vmap``, ``jax.grad`` of the summed quadratic cost, and the whole epoch
  one jitted ``lax.scan`` over the mini-batches (a smaller last mini-batch is one more
  jitted step). ``first_epoch_seconds`` includes the compilation.
* ``sklearn-mlp``: scikit-learn's ``MLPClassifier`` (logistic units, ``sgd``, the same
  batch size, no momentum, no L2); its output layer is softmax with log-loss, the
  nearest it offers.
* ``book-loop``: the book's ``network.py`` update (a Python loop over the examples of
  each mini-batch), one epoch only: the floor to beat.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional, Sequence

import numpy as np
import numpy.typing as npt

from ..backends.hints import install_hint
from ..io.mnist import Split, load_mnist
from ..io.outputs import atomic_write_text

if TYPE_CHECKING:
    from ..networks.network import DTypeLike, EngineName


@dataclass(frozen=True)
class Config:
    name: str
    sizes: tuple[int, ...]
    mini_batch_size: int
    eta: float = 3.0
    #: networks trained at once (a sweep); see :func:`sweep_rows`.
    networks: tuple[int, ...] = ()


CONFIGS = {
    "book": Config("book", (784, 30, 10), 10),
    "book100": Config("book100", (784, 100, 10), 10),
    "wide": Config("wide", (784, 1024, 1024, 10), 128, eta=0.1),
    "wide-large-batch": Config("wide-large-batch", (784, 1024, 1024, 10), 1024, eta=0.1),
    "book-sweep": Config("book-sweep", (784, 30, 10), 10, networks=(1, 10, 100)),
    # The CPU's stacks: what one process gains per network by stacking (issue 11).
    "book-stack": Config("book-stack", (784, 30, 10), 10, networks=(1, 4, 8)),
}

BOOK_LOOP_MAX_EXAMPLES = {"wide": 5000, "wide-large-batch": 5000}

IMPLEMENTATIONS = ("gpunet-numpy-f32", "gpunet-numpy-f64", "gpunet-numpy-eager-f32",
                   "gpunet-numpy-eager-f64", "gpunet-cupy-f32",
                   "gpunet-cupy-f64", "gpunet-cupy-fused-f32", "gpunet-cupy-fused-f64",
                   "gpunet-numpy-stack-f32", "gpunet-numpy-stack-f64",
                   "torch-cpu", "torch-cuda", "jax-cpu", "sklearn-mlp", "book-loop")


class Skip(Exception):
    """This implementation cannot run here; the message says why."""


# ---------------------------------------------------------------- runners
# Each runner trains ``warmup + epochs`` epochs and returns the measured epochs' seconds
# (the warm-up epochs are dropped), plus any facts worth recording.
Result = dict[str, Any]
Runner = Callable[[Config, np.ndarray, np.ndarray, int, int], Result]


def run_gpunet(device: str, dtype: DTypeLike, engine: EngineName = "auto") -> Runner:
    def run(cfg: Config, X: np.ndarray, y: np.ndarray, warmup: int, epochs: int) -> Result:
        from ..backends import BackendUnavailable

        from ..networks.network import Network

        try:
            net = Network(list(cfg.sizes), cost="quadratic", init="large", dtype=dtype,
                          device=device, seed=0)
        except BackendUnavailable as exc:
            raise Skip(str(exc)) from None
        skip = warmup
        try:
            history = net.SGD((X, y), skip + epochs, cfg.mini_batch_size, cfg.eta,
                              verbose=False, engine=engine)
        except ValueError as exc:  # the fused engine cannot train this network here
            raise Skip(str(exc)) from None
        # Same seed, same epochs: the backends should agree on this (within rounding).
        return {"seconds": history.train_seconds[skip:], "device": net.backend.description,
                "engine": history.engine, "first_epoch_seconds": history.train_seconds[0],
                "test_correct": net.accuracy(_test_set())}
    return run


@functools.lru_cache(maxsize=1)
def _test_set() -> Split:
    return load_mnist().test


def run_torch(device: str) -> Runner:
    def run(cfg: Config, X: np.ndarray, y: np.ndarray, warmup: int, epochs: int) -> Result:
        try:
            import torch
        except ImportError:
            raise Skip(f"PyTorch not installed ({install_hint('bench')})") from None
        if device == "cuda" and not torch.cuda.is_available():
            raise Skip("PyTorch sees no CUDA device")
        dev = torch.device(device)
        torch.manual_seed(0)
        layers: list[Any] = []
        for n_in, n_out in zip(cfg.sizes[:-1], cfg.sizes[1:]):
            linear = torch.nn.Linear(n_in, n_out)
            torch.nn.init.normal_(linear.weight)  # N(0, 1), the book's chapter 1
            torch.nn.init.normal_(linear.bias)
            layers += [linear, torch.nn.Sigmoid()]
        model = torch.nn.Sequential(*layers).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.eta)
        Xd = torch.as_tensor(X, device=dev)
        Yd = torch.nn.functional.one_hot(torch.as_tensor(y, device=dev), cfg.sizes[-1]).float()
        n, m = len(y), cfg.mini_batch_size
        sync: Callable[[], None] = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        seconds = []
        for _ in range(warmup + epochs):
            sync()
            start = time.perf_counter()
            perm = torch.randperm(n, device=dev)
            Xs, Ys = Xd[perm], Yd[perm]
            for s in range(0, n, m):
                out = model(Xs[s:s + m])
                # quadratic cost, mean over the batch: the book's (η/m) Σ update
                loss = 0.5 * ((out - Ys[s:s + m]) ** 2).sum() / out.shape[0]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            sync()
            seconds.append(time.perf_counter() - start)
        return {"seconds": seconds[warmup:], "first_epoch_seconds": seconds[0],
                "torch": torch.__version__,
                "threads": torch.get_num_threads()}
    return run


def run_jax(cfg: Config, X: np.ndarray, y: np.ndarray, warmup: int, epochs: int) -> Result:
    """JAX's best form of the book's SGD on the CPU: each epoch one jitted ``lax.scan``."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise Skip(f"JAX not installed ({install_hint('jax')})") from None
    device = jax.devices("cpu")[0]
    rng = np.random.default_rng(0)
    sizes, m, eta = cfg.sizes, cfg.mini_batch_size, cfg.eta
    n = len(y)
    m = min(m, n)
    steps, tail = n // m, n % m

    def forward(params: list[Any], x: Any) -> Any:  # one example, weights (in, out)
        for w, b in params:
            x = jax.nn.sigmoid(x @ w + b)
        return x

    def cost(params: list[Any], xb: Any, yb: Any) -> Any:  # quadratic, summed over the batch
        a = jax.vmap(forward, in_axes=(None, 0))(params, xb)
        return 0.5 * jnp.sum((a - yb) ** 2)

    grad = jax.grad(cost)

    def step(params: list[Any], batch: tuple[Any, Any]) -> tuple[list[Any], None]:
        xb, yb = batch
        scale = eta / xb.shape[0]
        return [(w - scale * gw, b - scale * gb)
                for (w, b), (gw, gb) in zip(params, grad(params, xb, yb))], None

    with jax.default_device(device):
        Xd = jnp.asarray(X, dtype=jnp.float32)
        Yd = jnp.asarray(np.eye(sizes[-1], dtype=np.float32)[y])

        def epoch_steps(params: list[Any], perm: Any) -> list[Any]:
            full = perm[:steps * m]
            xs = Xd[full].reshape(steps, m, -1)
            ys = Yd[full].reshape(steps, m, -1)
            params, _ = jax.lax.scan(step, params, (xs, ys))
            if tail:
                params, _ = step(params, (Xd[perm[steps * m:]], Yd[perm[steps * m:]]))
            return params

        # jax.jit called, not as a decorator: mypy sees jax as Any where it is not installed;
        # block_until_ready through a typed name: JAX leaves it unannotated
        epoch = jax.jit(epoch_steps)
        block_until_ready: Callable[[Any], Any] = jax.block_until_ready
        params = [(jnp.asarray(rng.standard_normal((a, b)), jnp.float32),
                   jnp.asarray(rng.standard_normal(b), jnp.float32))
                  for a, b in zip(sizes[:-1], sizes[1:])]
        seconds = []
        for _ in range(warmup + epochs):
            start = time.perf_counter()
            params = block_until_ready(epoch(params, rng.permutation(n)))
            seconds.append(time.perf_counter() - start)
    host = [(np.asarray(w), np.asarray(b)) for w, b in params]
    Xt, yt = _test_set()
    a = np.asarray(Xt, np.float32)
    with np.errstate(over="ignore"):
        for w, b in host:
            a = 1 / (1 + np.exp(-(a @ w + b)))
    return {"seconds": seconds[warmup:], "first_epoch_seconds": seconds[0],
            "jax": jax.__version__, "test_correct": int(np.sum(np.argmax(a, 1) == yt))}


def run_sklearn(cfg: Config, X: np.ndarray, y: np.ndarray, warmup: int, epochs: int) -> Result:
    try:
        import sklearn
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        raise Skip(f"scikit-learn not installed ({install_hint('baselines')})") from None
    import warnings

    clf = MLPClassifier(hidden_layer_sizes=cfg.sizes[1:-1] or (), activation="logistic",
                        solver="sgd", batch_size=cfg.mini_batch_size, momentum=0.0,
                        nesterovs_momentum=False, alpha=0.0, learning_rate="constant",
                        learning_rate_init=min(cfg.eta, 0.5), shuffle=True, random_state=0)
    classes = np.arange(cfg.sizes[-1])
    seconds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(warmup + epochs):
            start = time.perf_counter()
            clf.partial_fit(X, y, classes=classes)  # one pass over the data: an epoch
            seconds.append(time.perf_counter() - start)
    return {"seconds": seconds[warmup:], "first_epoch_seconds": seconds[0],
            "sklearn": sklearn.__version__}


def run_book_loop(cfg: Config, X: np.ndarray, y: np.ndarray, warmup: int, epochs: int) -> Result:
    """One epoch of the book's ``network.py`` SGD (Python 3 port), no warm-up."""
    rng = np.random.default_rng(0)
    sizes = list(cfg.sizes)
    biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
    weights = [rng.standard_normal((n, k)) for k, n in zip(sizes[:-1], sizes[1:])]
    eye = np.eye(sizes[-1])
    # The wide networks take many minutes per epoch this way: time the first tenth of
    # the examples (at most the cap) and scale the time to the whole set.
    cap = BOOK_LOOP_MAX_EXAMPLES.get(cfg.name)
    count = len(y) if cap is None else min(cap, max(1, len(y) // 10))
    data = [(x.reshape(-1, 1).astype(np.float64), eye[d].reshape(-1, 1))
            for x, d in zip(X[:count], y[:count])]

    def sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return 1.0 / (1.0 + np.exp(-z))

    def backprop(x: np.ndarray,
                 target: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        nabla_b = [np.zeros(b.shape) for b in biases]
        nabla_w = [np.zeros(w.shape) for w in weights]
        activation, activations, zs = x, [x], []
        for b, w in zip(biases, weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = (activations[-1] - target) * sigmoid(zs[-1]) * (1 - sigmoid(zs[-1]))
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, len(sizes)):
            sp = sigmoid(zs[-l]) * (1 - sigmoid(zs[-l]))
            delta = np.dot(weights[-l + 1].transpose(), delta) * sp
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return nabla_b, nabla_w

    m, eta = cfg.mini_batch_size, cfg.eta
    n = len(data)
    start = time.perf_counter()
    order = rng.permutation(len(data))
    with np.errstate(over="ignore"):
        for s in range(0, len(data), m):
            batch = [data[i] for i in order[s:s + m]]
            nabla_b = [np.zeros(b.shape) for b in biases]
            nabla_w = [np.zeros(w.shape) for w in weights]
            for x, target in batch:
                db, dw = backprop(x, target)
                nabla_b = [nb + d for nb, d in zip(nabla_b, db)]
                nabla_w = [nw + d for nw, d in zip(nabla_w, dw)]
            weights = [w - (eta / len(batch)) * nw for w, nw in zip(weights, nabla_w)]
            biases = [b - (eta / len(batch)) * nb for b, nb in zip(biases, nabla_b)]
    elapsed = time.perf_counter() - start
    if n == len(y):
        return {"seconds": [elapsed], "note": "one epoch, no warm-up"}
    return {"seconds": [elapsed * len(y) / n],
            "note": f"measured on the first {n:,} examples, scaled to the epoch"}


def stacks_only(cfg: Config, X: np.ndarray, y: np.ndarray, warmup: int, epochs: int) -> Result:
    """The stacked CPU engine's rows are K networks at once: sweep configurations only."""
    raise Skip("a stack of networks: measured in the book-stack and book-sweep "
               "configurations")


RUNNERS: dict[str, Runner] = {
    "gpunet-numpy-f32": run_gpunet("cpu", "float32"),
    "gpunet-numpy-f64": run_gpunet("cpu", "float64"),
    "gpunet-numpy-eager-f32": run_gpunet("cpu", "float32", "eager"),
    "gpunet-numpy-eager-f64": run_gpunet("cpu", "float64", "eager"),
    "gpunet-cupy-f32": run_gpunet("cuda", "float32"),
    "gpunet-cupy-f64": run_gpunet("cuda", "float64"),
    "gpunet-cupy-fused-f32": run_gpunet("cuda", "float32", "fused"),
    "gpunet-cupy-fused-f64": run_gpunet("cuda", "float64", "fused"),
    "gpunet-numpy-stack-f32": stacks_only,
    "gpunet-numpy-stack-f64": stacks_only,
    "torch-cpu": run_torch("cpu"),
    "jax-cpu": run_jax,
    "torch-cuda": run_torch("cuda"),
    "sklearn-mlp": run_sklearn,
    "book-loop": run_book_loop,
}


# ----------------------------------------------------------- the floor
def epoch_work(cfg: Config, n: int, itemsize: int = 4) -> dict[str, Any]:
    """FLOPs and minimum memory traffic of one training epoch of ``cfg`` on ``n`` examples.

    FLOPs: per example, the forward products ``2 n_l n_{l-1}``, the weight gradients
    ``2 n_l n_{l-1}``, and the error products ``2 n_l n_{l-1}`` for every layer but the
    first; per mini-batch, the update ``2`` per parameter. Elementwise work (sigmoid,
    σ', output error: a few FLOPs per neuron) is counted as 10 per neuron per example.
    Bytes: the shuffle (read and write the inputs and targets once) plus the step's
    read of each mini-batch; parameters are assumed to stay in cache.
    """
    pairs = list(zip(cfg.sizes[:-1], cfg.sizes[1:]))
    weights = sum(a * b for a, b in pairs)
    params = weights + sum(cfg.sizes[1:])
    per_example = 2 * weights + 2 * weights + 2 * sum(a * b for a, b in pairs[1:])
    per_example += 10 * sum(cfg.sizes[1:])
    steps = -(-n // cfg.mini_batch_size)
    flops = n * per_example + steps * 2 * params
    row = (cfg.sizes[0] + cfg.sizes[-1]) * itemsize
    return {"flops": float(flops), "bytes": float(n * row * 3), "steps": steps,
            "parameters": params}


def measure_limits(device: str = "cpu", repeats: int = 5) -> dict[str, Any]:
    """This device's float32 matrix-product rate and copy bandwidth (median of repeats)."""
    from ..backends import get_backend

    backend = get_backend(device)
    xp = backend.xp
    size = 2048 if device == "cpu" else 8192
    a = backend.asarray(np.random.default_rng(0).standard_normal((size, size)), np.float32)
    c = xp.empty_like(a)
    big = xp.ones(64 * 2**20, dtype=np.float32)  # 256 MiB
    dst = xp.empty_like(big)

    def timed(fn: Callable[[], Any]) -> float:
        fn()
        backend.synchronize()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            backend.synchronize()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    t_mm = timed(lambda: xp.matmul(a, a, out=c))
    t_copy = timed(lambda: xp.copyto(dst, big))
    return {"device": backend.description, "matmul_size": size,
            "matmul_flops_per_s": 2 * size**3 / t_mm,
            "copy_bytes_per_s": 2 * big.nbytes / t_copy}


# ------------------------------------------------------------------ driver
class SkipWords:
    """A skip's reason in full the first time, then its first clause and "(as above)":
    a missing peer or GPU skips many rows, and its hint is printed once."""

    def __init__(self) -> None:
        self.said: set[str] = set()

    def __call__(self, why: object) -> str:
        text = str(why)
        if text not in self.said:
            self.said.add(text)
            return text
        return f"{text.split(';', 1)[0].split(' (', 1)[0]} (as above)"


def benchmark(configs: Sequence[str], implementations: Sequence[str], *, epochs: int = 5,
              warmup: int = 1, limit: Optional[int] = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every implementation on every configuration; return raw results."""
    for name in configs:
        if name not in CONFIGS:
            raise ValueError(f"unknown configuration {name!r}; choose from {', '.join(CONFIGS)}.")
    for name in implementations:
        if name not in RUNNERS:
            raise ValueError(f"unknown implementation {name!r}; choose from {', '.join(RUNNERS)}.")
    if epochs < 1 or warmup < 0:
        raise ValueError("--epochs must be >= 1 and --warmup >= 0.")
    data = load_mnist()
    X, y = data.training
    if limit is not None:
        if not 1 <= limit <= len(y):
            raise ValueError(f"--limit must be between 1 and {len(y)}.")
        X, y = X[:limit], y[:limit]
    said = SkipWords()
    results: dict[str, Any] = {"machine": machine_info(), "epochs": epochs, "warmup": warmup,
                               "examples": len(y), "results": [], "limits": {}}
    for device, impl_prefix in (("cpu", "gpunet-numpy"), ("cuda", "gpunet-cupy")):
        if any(i.startswith(impl_prefix) for i in implementations):
            try:
                results["limits"][device] = measure_limits(device)
            except Exception as exc:  # no GPU here: the rows say so too
                results["limits"][device] = {"skipped": str(exc)}
    for cfg_name in configs:
        cfg = CONFIGS[cfg_name]
        if cfg.networks:
            results["results"] += sweep_rows(cfg, implementations, X, y, warmup, epochs, log,
                                             said)
            continue
        for impl in implementations:
            row: dict[str, Any] = {"config": cfg_name, "sizes": list(cfg.sizes),
                                   "mini_batch_size": cfg.mini_batch_size,
                                   "implementation": impl}
            try:
                info = RUNNERS[impl](cfg, X, y, warmup, epochs)
            except Skip as why:
                row["skipped"] = str(why)
                log(f"{cfg_name:17s} {impl:17s} skipped: {said(why)}")
            else:
                seconds = info.pop("seconds")
                median = statistics.median(seconds)
                row.update(seconds=seconds, median_seconds=median,
                           examples_per_second=len(y) / median, **info)
                log(f"{cfg_name:17s} {impl:17s} {median:9.4f} s/epoch "
                    f"{len(y) / median:12,.0f} examples/s  (n={len(seconds)})")
            results["results"].append(row)
    return results


def run_fused_stack(cfg: Config, K: int, dtype: DTypeLike, X: np.ndarray, y: np.ndarray,
                    warmup: int, epochs: int) -> list[float]:
    """Seconds per epoch of ``K`` networks (seeds 0..K-1) in one fused launch per epoch."""
    from ..backends import BackendUnavailable
    from ..io.datasets import as_examples
    from ..engines.fused import FusedSgd, cuda_launcher, unfit_reason
    from ..networks.network import Network

    try:
        nets = [Network(list(cfg.sizes), cost="quadratic", init="large", dtype=dtype,
                        device="cuda", seed=k) for k in range(K)]
    except BackendUnavailable as exc:
        raise Skip(str(exc)) from None
    backend, launcher = nets[0].backend, cuda_launcher(nets[0])
    reason = unfit_reason(nets[0], cfg.mini_batch_size, len(y), launcher)
    if reason:
        raise Skip(reason)
    data = as_examples((X, y), cfg.sizes[0], cfg.sizes[-1], "training data")
    Xd, Yd = backend.asarray(data.X, nets[0].dtype), backend.asarray(data.Y, nets[0].dtype)
    params = backend.xp.stack([net.parameters for net in nets])
    fused = FusedSgd(backend, cfg.sizes, nets[0].dtype, "quadratic", params, Xd, Yd,
                     cfg.mini_batch_size, [cfg.eta] * K, [0.0] * K, launcher)
    seconds = []
    for _ in range(warmup + epochs):
        perms = np.stack([net.rng.permutation(len(y)) for net in nets])
        backend.synchronize()
        start = time.perf_counter()
        fused.train_epoch(perms)
        backend.synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds[warmup:]


def run_cpu_stack(cfg: Config, K: int, dtype: DTypeLike, X: np.ndarray, y: np.ndarray,
                  warmup: int, epochs: int) -> list[float]:
    """Seconds per epoch of ``K`` networks (seeds 0..K-1) as one stack in this process
    (the stacked CPU engine, no workers): the per-network gain of stacking on one core."""
    from ..io.datasets import as_examples
    from ..training.settings import TrainingSettings
    from ..engines.cpu import CpuEngine
    from ..networks.stack import NetworkStack

    stack = NetworkStack(list(cfg.sizes), seeds=list(range(K)), cost="quadratic",
                         init="large", dtype=dtype, device="cpu")
    data = as_examples((X, y), cfg.sizes[0], cfg.sizes[-1], "training data")
    settings = TrainingSettings(epochs=1, mini_batch_size=cfg.mini_batch_size,
                                eta=(cfg.eta,) * K, lmbda=(0.0,) * K, verbose=False)
    engine = CpuEngine(stack, np.asarray(data.X, stack.dtype),
                              np.asarray(data.Y, stack.dtype), settings)
    seconds = []
    for _ in range(warmup + epochs):
        perms = np.stack([rng.permutation(len(y)) for rng in stack.rngs])
        start = time.perf_counter()
        engine.train_epoch(perms)
        seconds.append(time.perf_counter() - start)
    return seconds[warmup:]


STACK_RUNNERS = {"gpunet-cupy-fused": run_fused_stack, "gpunet-numpy-stack": run_cpu_stack}


def sweep_rows(cfg: Config, implementations: Sequence[str], X: np.ndarray, y: np.ndarray,
               warmup: int, epochs: int, log: Callable[[str], None],
               said: Optional[SkipWords] = None) -> list[dict[str, Any]]:
    """``K`` networks at once (fused, one launch) against ``K`` runs one after another.

    The sequential rows are ``K`` times the measured single-network epoch of each
    implementation asked for (marked ``derived``): what training the sweep one run at
    a time would cost. The single network is timed before and after the stacks, and
    its epoch is the median of both (a shared machine's speed drifts within minutes).
    """
    said = said or SkipWords()
    rows: list[dict[str, Any]] = []
    base = {"config": cfg.name, "sizes": list(cfg.sizes), "mini_batch_size": cfg.mini_batch_size}
    single = Config("book", cfg.sizes, cfg.mini_batch_size, cfg.eta)
    singles = [i for i in implementations
               if not i.startswith(tuple(STACK_RUNNERS)) and i in RUNNERS]
    before: dict[str, list[float]] = {}
    skipped: dict[str, str] = {}
    for impl in singles:
        try:
            before[impl] = RUNNERS[impl](single, X, y, warmup, epochs)["seconds"]
        except Skip as why:
            skipped[impl] = str(why)
    dtypes: tuple[Literal["float32", "float64"], ...] = ("float32", "float64")
    for (prefix, runner), dtype in itertools.product(STACK_RUNNERS.items(), dtypes):
        impl = f"{prefix}-{dtype[0]}{dtype[-2:]}"
        if impl not in implementations:
            continue
        for K in cfg.networks:
            row = dict(base, implementation=f"{impl} (K at once)", networks=K)
            try:
                seconds = runner(cfg, K, dtype, X, y, warmup, epochs)
            except Skip as why:
                row["skipped"] = str(why)
                log(f"{cfg.name:17s} {impl:17s} K={K:<4d} skipped: {said(why)}")
                rows.append(row)
                break
            median = statistics.median(seconds)
            row.update(seconds=seconds, median_seconds=median,
                       examples_per_second=K * len(y) / median,
                       network_epochs_per_second=K / median)
            log(f"{cfg.name:17s} {impl:17s} K={K:<4d} {median:9.4f} s/epoch "
                f"{K / median:10.1f} network-epochs/s")
            rows.append(row)
    for impl in singles:
        if impl in skipped:
            rows.append(dict(base, implementation=f"{impl} (K runs in turn)",
                             skipped=skipped[impl]))
            continue
        seconds = before[impl] + RUNNERS[impl](single, X, y, warmup, epochs)["seconds"]
        t1 = statistics.median(seconds)
        for K in cfg.networks:
            rows.append(dict(base, implementation=f"{impl} (K runs in turn)", networks=K,
                             derived=True, median_seconds=K * t1, seconds=seconds,
                             examples_per_second=len(y) / t1,
                             network_epochs_per_second=1 / t1))
        log(f"{cfg.name:17s} {impl:17s} one network {t1:9.4f} s/epoch "
            f"(before and after the stacks)")
    return rows


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
    }
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:
        pass
    for module in ("torch", "jax", "sklearn", "cupy"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    if info["cupy"]:
        try:
            import cupy

            props = cupy.cuda.runtime.getDeviceProperties(0)
            name = props["name"]
            info["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
            info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
            info["cuda_driver"] = cupy.cuda.runtime.driverGetVersion()
        except Exception as exc:
            info["gpu"] = f"none visible ({exc})"
    return info


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def markdown_table(results: dict[str, Any]) -> str:
    """One table per configuration, with each implementation's speed relative to gpunet."""
    m = results["machine"]
    lines = [f"Machine: {m['cpu']} ({m['cpu_count']} CPUs), {m.get('gpu') or 'no GPU'}; "
             f"Python {m['python']}, NumPy {m['numpy']} ({m.get('blas', '?')}), "
             f"PyTorch {m['torch']}, scikit-learn {m['sklearn']}, CuPy {m['cupy']}; "
             f"{m['date']}. Median of {results['epochs']} epochs after {results['warmup']} "
             f"warm-up epoch(s) on {results['examples']:,} MNIST training images "
             "(the book loop: one epoch).", ""]
    by_config: dict[str, list[dict[str, Any]]] = {}
    for row in results["results"]:
        by_config.setdefault(row["config"], []).append(row)
    for cfg, rows in by_config.items():
        c = CONFIGS[cfg]
        if c.networks:
            lines += sweep_table(c, rows)
            continue
        ref = next((r for r in rows if r["implementation"] == "gpunet-numpy-f32"
                    and "median_seconds" in r), None)
        lines += [f"### `{cfg}`: {list(c.sizes)}, m = {c.mini_batch_size}", "",
                  "| implementation | s / epoch | examples / s | time vs gpunet-numpy-f32 "
                  "| first epoch, s | test correct after the run |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in rows:
            if "median_seconds" not in r:
                lines.append(f"| {r['implementation']} | skipped: {r['skipped']} | | | | |")
                continue
            ratio = f"{r['median_seconds'] / ref['median_seconds']:.2f}×" if ref else ""
            correct = f"{r['test_correct']:,}" if "test_correct" in r else ""
            first = (f"{r['first_epoch_seconds']:.4f}"
                     if "first_epoch_seconds" in r and results["warmup"] else "")
            lines.append(f"| {r['implementation']} | {r['median_seconds']:.4f} | "
                         f"{r['examples_per_second']:,.0f} | {ratio} | {first} | {correct} |")
        lines.append("")
    lines += floor_table(results)
    return "\n".join(lines)


def sweep_table(cfg: Config, rows: list[dict[str, Any]]) -> list[str]:
    """``book-sweep``: seconds per epoch of K networks, at once or one after another."""
    lines = [f"### `{cfg.name}`: K networks {list(cfg.sizes)}, m = {cfg.mini_batch_size}", "",
             "| implementation | K | s / epoch (all K) | network-epochs / s |",
             "|---|---:|---:|---:|"]
    for r in rows:
        if "median_seconds" not in r:
            lines.append(f"| {r['implementation']} | | skipped: {r['skipped']} | |")
            continue
        derived = " (K × one run)" if r.get("derived") else ""
        lines.append(f"| {r['implementation']} | {r['networks']} | "
                     f"{r['median_seconds']:.4f}{derived} | "
                     f"{r['network_epochs_per_second']:,.1f} |")
    return lines + [""]


def floor_table(results: dict[str, Any]) -> list[str]:
    """The ``book`` epoch against what the device's arithmetic and memory allow."""
    cfg = CONFIGS["book"]
    work = epoch_work(cfg, results["examples"])
    lines = []
    for device, impl in (("cpu", "gpunet-numpy-f32"), ("cuda", "gpunet-cupy-f32"),
                         ("cuda", "gpunet-cupy-fused-f32")):
        limits = results.get("limits", {}).get(device, {})
        row = next((r for r in results["results"] if r["config"] == "book"
                    and r["implementation"] == impl and "median_seconds" in r), None)
        if "matmul_flops_per_s" not in limits or row is None:
            continue
        t_flops = work["flops"] / limits["matmul_flops_per_s"]
        t_bytes = work["bytes"] / limits["copy_bytes_per_s"]
        floor = max(t_flops, t_bytes)
        lines += [
            f"### The floor for `book` on {limits['device']}", "",
            f"- work per epoch: {work['flops'] / 1e9:.2f} GFLOP in {work['steps']:,} "
            f"mini-batch steps; at least {work['bytes'] / 1e6:.0f} MB moved",
            f"- measured: float32 matrix product {limits['matmul_flops_per_s'] / 1e9:.0f} "
            f"GFLOP/s ({limits['matmul_size']}²), copy {limits['copy_bytes_per_s'] / 1e9:.1f} GB/s",
            f"- floor: {t_flops:.4f} s of arithmetic, {t_bytes:.4f} s of memory traffic: "
            f"{floor:.4f} s per epoch",
            f"- {impl}: {row['median_seconds']:.4f} s per epoch, "
            f"{row['median_seconds'] / floor:.1f}× the floor "
            f"({row['median_seconds'] / work['steps'] * 1e6:.1f} µs per mini-batch step)",
            "",
        ]
    return lines


def write_results(results: dict[str, Any], directory: Path,
                  stamp: Optional[str] = None, suffix: str = "",
                  table: Optional[str] = None) -> tuple[Path, Path]:
    """``directory/STAMP[SUFFIX].json`` (the raw results) and ``.md`` (``table``, by
    default :func:`markdown_table` of them), written atomically; STAMP defaults to now."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (stamp or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")) + suffix
    json_path, md_path = directory / f"{stamp}.json", directory / f"{stamp}.md"
    atomic_write_text(json_path, json.dumps(results, indent=1))
    atomic_write_text(md_path, markdown_table(results) if table is None else table)
    return json_path, md_path
