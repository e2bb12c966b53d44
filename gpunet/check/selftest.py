"""``gpunet check``: prove that a device computes what the book's algorithm computes.

Shipped in the package so that anyone can run it on their own machine and GPU. Each
check compares what gpunet computes on the device against an independent oracle and
reports the measured error beside its threshold:

* ``forward``: the network's output on real MNIST rows against
  :mod:`gpunet.check.reference` (the book's per-example ``network2.py`` in plain NumPy,
  sharing no code with the backends), chapter 1, eq. 22;
* ``backprop-<cost>``: the gradient of each cost, summed over a mini-batch, against the
  reference's per-example backpropagation (chapter 2, BP1-BP4);
* ``finite-differences``: backprop against central differences of the cost itself,
  ``(C(w + h) - C(w - h)) / 2h`` (chapter 2, "In what sense is backpropagation a fast
  algorithm?"), in float64, which needs no reference at all;
* ``trajectory-<engine>``: three epochs of SGD with L2 (chapter 3, eq. 93, 94) by each
  training engine against the reference's epochs, with the same shuffles;
* ``kernel-<name>``: each fused operation of the backend against its formula;
* on a GPU also ``probe`` (the start-up self-test of every kernel and cuBLAS) and
  ``float32-accuracy-parity`` (a float32 run's test accuracy against NumPy's).

Thresholds: float64 results agree with the float64 reference to a relative 1e-9 (they
differ only by summation order); float32 results to what float32's 24-bit mantissa
allows. New checks join with :func:`register_check`; engines join the trajectory
check by being listed in :data:`gpunet.engines.ENGINE_NAMES`.
"""

from __future__ import annotations

import copy
import datetime
import math
import platform
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator, Literal, Optional, Sequence

import numpy as np

from . import reference
from ..backends import Backend

SIZES = (784, 30, 10)
TRAJECTORY_ROWS = 500
TRAJECTORY_EPOCHS = 3

DTypeName = Literal["float32", "float64"]
"""The dtypes the checks run in (the keys of :data:`TOLERANCES`)."""


@dataclass(frozen=True)
class Tolerances:
    """How far a result may be from the float64 oracle, relative to its largest entry."""

    forward: float
    gradient: float
    trajectory: float
    kernel: float


TOLERANCES = {
    # float64: only the order of summation differs from the reference.
    "float64": Tolerances(forward=1e-9, gradient=1e-9, trajectory=1e-9, kernel=1e-12),
    # float32: a unit roundoff of 6e-8, grown by sums over 784 inputs and a mini-batch
    # (forward, gradient) and by 150 SGD steps that feed on their own rounding errors
    # (trajectory).
    # float32 rounding differences are ~1e-7 here (CPU); the margin is for a GPU's
    # fused multiply-adds and other summation orders.
    "float32": Tolerances(forward=1e-5, gradient=1e-5, trajectory=1e-4, kernel=1e-6),
}
FINITE_DIFFERENCE_TOLERANCE = 1e-6  # float64, h = 1e-5: truncation and rounding ~1e-9
# Percentage points of test accuracy. The run is chapter 3's cross-entropy network at
# η = 0.5, which is not chaotic: float32 and float64 runs, NumPy's and other summation
# orders, end within 0.03 points of each other (3 epochs, 10,000 images, 6 seeds), so
# 0.3 is out of rounding's reach. (Chapter 1's quadratic cost at η = 3 is chaotic:
# another summation order alone moves it by 0.2 points or more.)
ACCURACY_PARITY_POINTS = 0.3


@dataclass
class CheckResult:
    """One line of the report: what was measured, against which threshold."""

    name: str
    measured: float
    threshold: float
    passed: Optional[bool]  # None: skipped
    detail: str = ""

    @property
    def line(self) -> str:
        status = {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]
        if self.passed is None:
            return f"{status}  {self.name:<44} not run here: {self.detail}"
        text = f"{status}  {self.name:<44} {self.measured:9.3g}  (threshold {self.threshold:.0e})"
        return f"{text}  {self.detail}" if self.detail else text


def _result(name: str, measured: float, threshold: float, detail: str = "") -> CheckResult:
    passed = bool(np.isfinite(measured) and measured < threshold)
    return CheckResult(name, float(measured), threshold, passed, detail)


def _skip(name: str, why: str) -> CheckResult:
    """A check that cannot run on this device: ``why`` in words for the user."""
    return CheckResult(name, float("nan"), float("nan"), None, why)


def _engine_unfit(engine: str, exc: ValueError) -> str:
    """Why ``engine`` cannot train here, from the library's error, without its advice
    (which engine to choose instead): the user of ``gpunet check`` chose none."""
    text = str(exc)
    marker = "cannot train this network: "
    if marker not in text:
        return text
    cause = text.split(marker, 1)[1].split("; ", 1)[0].rstrip(".")
    return f"{cause} (the {engine} engine is checked where it can run)"


@dataclass
class CheckContext:
    """What every check gets: the backend, the dtype under test, and MNIST rows."""

    backend: Backend
    dtype: DTypeName
    X: np.ndarray  # (n, 784) float64 training inputs
    labels: np.ndarray  # (n,) digits
    X_test: np.ndarray
    labels_test: np.ndarray
    seed: int = 1

    @property
    def Y(self) -> np.ndarray:
        return reference.one_hot(self.labels, 10)

    @property
    def tol(self) -> Tolerances:
        return TOLERANCES[self.dtype]

    def network(self, sizes: Sequence[int] = SIZES, cost: str = "cross-entropy",
                dtype: Optional[DTypeName] = None, seed: Optional[int] = None) -> Any:
        from ..networks.network import Network

        return Network(list(sizes), cost=cost, init="default", dtype=dtype or self.dtype,
                       device=self.backend, seed=self.seed if seed is None else seed)


CheckFunction = Callable[[CheckContext], Iterable[CheckResult]]


@dataclass(frozen=True)
class Check:
    name: str
    function: CheckFunction
    gpu_only: bool = False
    once: bool = False  # independent of the dtype under test: run once per device


CHECKS: list[Check] = []
"""Every check, in the order they run; add to it with :func:`register_check`."""


def register_check(name: str, *, gpu_only: bool = False,
                   once: bool = False) -> Callable[[CheckFunction], CheckFunction]:
    """Add a check: a function of a :class:`CheckContext` yielding :class:`CheckResult`.

    ``gpu_only`` checks run only on a device backend; ``once`` checks run once per device rather
    than once per dtype. An exception in a check is reported as its failure.
    """
    def add(function: CheckFunction) -> CheckFunction:
        CHECKS.append(Check(name, function, gpu_only, once))
        return function
    return add


# ------------------------------------------------------------------ helpers
def _host_params(net: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    to_host = net.backend.to_host
    return ([to_host(w).astype(np.float64) for w in net.weights],
            [to_host(b).astype(np.float64) for b in net.biases])


def _relative(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> float:
    """Largest absolute difference over the largest reference magnitude, over all arrays."""
    diff = max(float(np.max(np.abs(np.asarray(a, np.float64) - e))) for a, e in zip(actual, expected))
    scale = max(float(np.max(np.abs(e))) for e in expected)
    return diff / scale if scale else diff


# ------------------------------------------------------------------ the checks
@register_check("forward")
def check_forward(ctx: CheckContext) -> Iterator[CheckResult]:
    """The output for 100 MNIST rows against the reference's ``feedforward``."""
    net = ctx.network()
    X = ctx.X[:100]
    out = net.backend.to_host(net.feedforward(X.astype(ctx.dtype)))
    w, b = _host_params(net)
    expected = np.stack([reference.feedforward(w, b, x.reshape(-1, 1)).ravel() for x in X])
    yield _result("forward", _relative([out], [expected]), ctx.tol.forward)


@register_check("backprop")
def check_backprop(ctx: CheckContext) -> Iterator[CheckResult]:
    """Summed gradients of a 20-row mini-batch, each cost, against the reference."""
    X, labels = ctx.X[:20], ctx.labels[:20]
    for cost in ("quadratic", "cross-entropy"):
        net = ctx.network(sizes=(784, 30, 20, 10), cost=cost)
        nabla_b, nabla_w = net.backprop(X.astype(ctx.dtype), labels)
        to_host = net.backend.to_host
        w, b = _host_params(net)
        ref_w, ref_b = reference.gradient(w, b, X, reference.one_hot(labels, 10), cost)
        measured = _relative([to_host(g) for g in nabla_w + nabla_b], ref_w + ref_b)
        yield _result(f"backprop-{cost}", measured, ctx.tol.gradient)


@register_check("finite-differences", once=True)
def check_finite_differences(ctx: CheckContext) -> Iterator[CheckResult]:
    """Backprop against central differences of the device's own cost, in float64."""
    X, labels = ctx.X[:10], ctx.labels[:10]
    net = ctx.network(sizes=(784, 12, 10), cost="cross-entropy", dtype="float64", seed=7)
    data = (X, labels)
    nabla_b, nabla_w = net.backprop(X, labels)
    grads = [net.backend.to_host(g) for g in nabla_w + nabla_b]
    w, b = _host_params(net)
    params = w + b
    rng = np.random.default_rng(0)
    active = np.flatnonzero(X.sum(axis=0) > 0)  # inputs that are not always 0
    picks = [(0, (int(rng.integers(12)), int(rng.choice(active)))) for _ in range(8)]
    picks += [(1, (int(rng.integers(10)), int(rng.integers(12)))) for _ in range(6)]
    picks += [(2, (int(rng.integers(12)), 0)) for _ in range(3)]
    picks += [(3, (int(rng.integers(10)), 0)) for _ in range(3)]
    h, n = 1e-5, len(X)
    errors, scale = [], 0.0
    for which, index in picks:
        costs = []
        for sign in (1, -1):
            shifted = [p.copy() for p in params]
            shifted[which][index] += sign * h
            net.set_parameters(shifted[:2], shifted[2:])
            costs.append(net.total_cost(data) * n)  # Σ_x C_x, as backprop sums
        numeric = (costs[0] - costs[1]) / (2 * h)
        errors.append(abs(numeric - grads[which][index]))
        scale = max(scale, abs(numeric))
    net.set_parameters(w, b)
    yield _result("finite-differences", max(errors) / scale, FINITE_DIFFERENCE_TOLERANCE,
                  f"{len(picks)} parameters, float64")


def _engines() -> list[str]:
    from ..engines import ENGINE_NAMES

    return [name for name in ENGINE_NAMES if name != "auto"]


@register_check("trajectory")
def check_trajectory(ctx: CheckContext) -> Iterator[CheckResult]:
    """Three epochs of SGD with L2 by each engine against the reference's epochs."""
    n, m, eta, lmbda = TRAJECTORY_ROWS, 10, 0.5, 2.0
    X, labels = ctx.X[:n], ctx.labels[:n]
    Y = reference.one_hot(labels, 10)
    for engine in _engines():
        name = f"trajectory-{engine}"
        net = ctx.network(cost="cross-entropy")
        w, b = _host_params(net)
        shuffles = copy.deepcopy(net.rng)  # the same permutations SGD will draw
        try:
            net.SGD((X.astype(ctx.dtype), labels), TRAJECTORY_EPOCHS, m, eta, lmbda=lmbda,
                    verbose=False, engine=engine)
        except ValueError as exc:  # this engine cannot train this network here
            yield _skip(name, _engine_unfit(engine, exc))
            continue
        for _ in range(TRAJECTORY_EPOCHS):
            w, b = reference.sgd_epoch(w, b, X, Y, shuffles.permutation(n), m, eta, lmbda,
                                       "cross-entropy")
        got_w, got_b = _host_params(net)
        yield _result(name, _relative(got_w + got_b, w + b), ctx.tol.trajectory,
                      f"{TRAJECTORY_EPOCHS} epochs, {n} rows")


@register_check("kernels")
def check_kernels(ctx: CheckContext) -> Iterator[CheckResult]:
    """Each fused operation of the backend against its formula, in plain NumPy."""
    backend, dtype = ctx.backend, np.dtype(ctx.dtype)
    rng = np.random.default_rng(3)
    z = rng.normal(0, 4, (33, 17))
    z[0, :4] = [-1e4, -100.0, 100.0, 1e4]  # saturation: must give 0 and 1, never NaN
    a = rng.uniform(0.01, 0.99, (33, 17))
    y = rng.uniform(0, 1, (33, 17))
    g = rng.normal(0, 1, (33, 17))
    bias = rng.normal(0, 1, (1, 17))
    # inputs rounded to the dtype first, so only the kernel's arithmetic is measured
    z, a, y, g, bias = (v.astype(dtype).astype(np.float64) for v in (z, a, y, g, bias))

    def dev(v: np.ndarray) -> Any:
        return backend.asarray(v.astype(dtype))

    def empty() -> Any:
        return backend.xp.empty((33, 17), dtype=dtype)

    sig, sig_b = reference.sigmoid(z), reference.sigmoid(z + bias)
    flat_z, flat_g = z.ravel(), g.ravel()
    decay = np.where(np.arange(flat_z.size) < 200, 0.99, 1.0)
    cases: list[tuple[str, Callable[[], Any], np.ndarray]] = [
        ("sigmoid", lambda: backend.sigmoid(dev(z), empty()), sig),
        ("add_bias_sigmoid", lambda: backend.add_bias_sigmoid(dev(z), dev(bias), empty()), sig_b),
        ("sigmoid_prime_mul", lambda: backend.sigmoid_prime_mul(dev(g), dev(a), empty()),
         g * a * (1 - a)),
        ("quadratic_output_error",
         lambda: backend.quadratic_output_error(dev(a), dev(y), empty(), empty()),
         (a - y) * a * (1 - a)),
        ("cross_entropy_output_error",
         lambda: backend.cross_entropy_output_error(dev(a), dev(y), empty()), a - y),
        ("sgd_update", lambda: backend.sgd_update(dev(flat_z), dev(flat_g), 0.3, 0.99, decayed=200),
         decay * flat_z - 0.3 * flat_g),
    ]
    for name, compute, expected in cases:
        got = backend.to_host(compute()).astype(np.float64)
        error = np.abs(got - expected) / np.maximum(np.abs(expected), 1.0)
        measured = float(np.max(error)) if np.all(np.isfinite(got)) else math.inf
        yield _result(f"kernel-{name}", measured, ctx.tol.kernel)


@register_check("probe", gpu_only=True, once=True)
def check_probe(ctx: CheckContext) -> Iterator[CheckResult]:
    """The CUDA backend's start-up self-test: every kernel launched, one cuBLAS product
    (skipped on a device backend that runs none)."""
    steps = ctx.backend.probe_errors
    if steps is None:
        yield _skip("probe", f"the {ctx.backend.device} device runs no start-up probe")
        return
    if not steps:
        yield CheckResult("probe", math.inf, math.nan, False, "the backend ran no probe")
        return
    for name, error, tolerance in steps:
        yield _result(f"probe-{name}", error, tolerance)


@register_check("float32-accuracy-parity", gpu_only=True, once=True)
def check_accuracy_parity(ctx: CheckContext) -> Iterator[CheckResult]:
    """A float32 run on the device scores like the same run with NumPy (same seed)."""
    from ..networks.network import Network

    n = 3000
    data = (ctx.X[:n].astype(np.float32), ctx.labels[:n])
    test = (ctx.X_test.astype(np.float32), ctx.labels_test)
    scores = []
    for device in (ctx.backend, "cpu"):
        net = Network(list(SIZES), cost="cross-entropy", init="default", dtype="float32",
                      device=device, seed=4)
        net.SGD(data, 2, 10, 0.5, verbose=False)
        scores.append(100.0 * net.accuracy(test) / len(ctx.labels_test))
    yield _result("float32-accuracy-parity", abs(scores[0] - scores[1]),
                  ACCURACY_PARITY_POINTS,
                  f"test accuracy {scores[0]:.2f}% vs NumPy {scores[1]:.2f}%")


# ------------------------------------------------------------------ running them
@dataclass
class CheckReport:
    """Every result for one device, with what the device is."""

    device: str
    info: dict[str, Any]
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed is not False for r in self.results)

    def as_json(self) -> dict[str, Any]:
        return {
            **self.info,
            "passed": self.passed,
            "checks": [
                {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in asdict(r).items()}
                for r in self.results
            ],
        }


def device_info(backend: Backend) -> dict[str, Any]:
    """The device, driver, CUDA and library versions, and the date: the report's header."""
    from .._version import __version__

    info: dict[str, Any] = {
        "device": backend.description,
        "backend": backend.name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gpunet": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": f"{platform.system()} {platform.machine()}",
    }
    info.update(backend.device_details())
    return info


def run_checks(backend: Backend, dtypes: Sequence[DTypeName] = ("float32", "float64"),
               on_result: Optional[Callable[[CheckResult], None]] = None,
               gpu_checks: Optional[bool] = None) -> CheckReport:
    """Run every registered check on ``backend`` in each of ``dtypes``.

    ``gpu_checks`` runs the GPU-only checks too (default: on a device backend, whose
    ``kind`` is ``"device"``: CUDA, or the strict stand-in in the tests).
    """
    from ..io.mnist import load_mnist

    data = load_mnist()
    X, labels = data.training
    X_test, labels_test = data.test
    report = CheckReport(backend.description, device_info(backend))
    on_gpu = backend.kind == "device" if gpu_checks is None else gpu_checks
    for dtype_index, dtype in enumerate(dtypes):
        ctx = CheckContext(backend, dtype, np.asarray(X[:TRAJECTORY_ROWS * 6], np.float64),
                           np.asarray(labels[:TRAJECTORY_ROWS * 6]),
                           np.asarray(X_test[:2000], np.float64),
                           np.asarray(labels_test[:2000]))
        for check in CHECKS:
            if check.gpu_only and not on_gpu or check.once and dtype_index > 0:
                continue
            for result in _run_one(check, ctx, dtype, suffix=not check.once and len(dtypes) > 1):
                report.results.append(result)
                if on_result is not None:
                    on_result(result)
    return report


def _run_one(check: Check, ctx: CheckContext, dtype: DTypeName,
             suffix: bool) -> Iterator[CheckResult]:
    try:
        with ctx.backend.scope():  # cuda:N: the checks' own arrays go to that device
            results = list(check.function(ctx))
        for result in results:
            if suffix:
                result.name = f"{result.name} [{dtype}]"
            yield result
    except Exception as exc:  # a crash is a failure of this check, reported, not raised
        first = (str(exc).strip().splitlines() or [""])[0]
        name = f"{check.name} [{dtype}]" if suffix else check.name
        yield CheckResult(name, math.inf, math.nan, False, f"error: {type(exc).__name__}: {first}")
