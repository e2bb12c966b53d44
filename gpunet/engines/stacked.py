"""Stacked engines: K networks of the same sizes, one SGD step (or epoch) for all of them.

Three engines train a :class:`gpunet.NetworkStack`, chosen by
:func:`select_stacked_engine` as ``Network.SGD`` chooses for one network: ``eager``
(here, any backend), ``cpu`` (:mod:`gpunet.engines.stacked_cpu`, NumPy) and ``fused``
(the CUDA kernel of :mod:`gpunet.engines.fused`, one launch per epoch for all K).
The rest of this module is the eager one.

Chapter 1's stochastic gradient descent and chapter 2's matrix-based backpropagation,
exactly as :mod:`gpunet.engines.eager` runs them for one network, but for ``K``
networks at once: every array gains a leading axis of length ``K`` and every matrix
product becomes one *batched* product (``xp.matmul`` on 3-D arrays: a loop of BLAS
calls inside NumPy, one batched GEMM on CuPy). A step therefore costs the same number
of array calls whatever ``K`` is, which is what makes a sweep of small networks cheap:
on the CPU a step of the book's network is mostly per-call overhead (see
``docs/performance.md``), paid once for all ``K`` networks here.

Each network keeps everything a single :class:`gpunet.Network` has: its own mini-batches
(row ``k`` of the epoch's permutations, gathered on the device per step), its own ``η``
and ``λ`` (per-network columns in the update), and its own parameters.

Parameter storage (the seam for the fused CUDA kernel): one ``(K, P)`` array whose row
``k`` is network ``k``'s flat buffer in exactly :mod:`gpunet.parameters`' layout
(every weight matrix row-major, then every bias), with per-layer views of shapes
``(K, n_out, n_in)`` and ``(K, n_out, 1)``. A kernel that trains K networks from K flat
buffers reads and writes this array as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Sequence

import numpy as np

from ..backprop import output_error
from ..parameters import bias_shapes, n_parameters, n_weights, weight_shapes

if TYPE_CHECKING:
    from ..backends import Array, Backend
    from ..parameters import StackedParameters

STACKED_ENGINE_NAMES = ("auto", "eager", "cpu", "fused")
"""Values of ``NetworkStack.SGD(engine=...)``; stacked engines add their names here."""


@dataclass(frozen=True)
class StackedSettings:
    """Everything one call of ``NetworkStack.SGD`` was asked to do, checked.

    ``eta`` and ``lmbda`` hold one value per network (in the stack's order).
    """

    epochs: int
    mini_batch_size: int
    eta: tuple[float, ...]
    lmbda: tuple[float, ...]
    monitor_evaluation_cost: bool = False
    monitor_evaluation_accuracy: bool = False
    monitor_training_cost: bool = False
    monitor_training_accuracy: bool = False
    verbose: bool = True
    callback: Optional[Callable[[list[dict[str, Any]]], None]] = None
    engine: str = "auto"
    #: processes the stacked CPU engine splits the networks over (this one and workers;
    #: :mod:`gpunet.engines.stacked_workers`); None: one per CPU for a large stack
    workers: Optional[int] = None

    @property
    def monitor_evaluation(self) -> bool:
        return self.monitor_evaluation_cost or self.monitor_evaluation_accuracy


class StackedEngine(Protocol):
    """Runs the mini-batch steps of one epoch for every network of a stack.

    Built once per ``NetworkStack.SGD`` call with the training data on the device; must
    leave ``stack.parameters`` (the ``(K, P)`` array) updated in device order and must
    neither wait on the device nor copy anything to the host.
    """

    name: str

    def train_epoch(self, permutations: np.ndarray) -> None:
        """One epoch: network ``k`` visits the examples in the order ``permutations[k]``."""


def select_stacked_engine(stack: "StackedParameters", X: "Array", Y: "Array",
                          settings: StackedSettings) -> StackedEngine:
    """The stacked engine ``settings.engine`` names; ``auto`` picks the best one here.

    ``auto`` picks for a stack what ``Network.SGD``'s ``auto`` picks for one of its
    networks, so that each stacked run is the single run: ``fused`` (the CUDA kernel
    that trains K networks in one launch, block ``k`` on row ``k`` of the ``(K, P)``
    array) where a launcher exists and the networks fit; on NumPy ``cpu``
    (:mod:`gpunet.engines.stacked_cpu`) once the single-network CPU engine is an
    engine name; else ``eager``. Further engines add their name to
    :data:`STACKED_ENGINE_NAMES` and are chosen here.
    """
    from . import fused

    name = settings.engine
    if name not in STACKED_ENGINE_NAMES:
        raise ValueError(
            f"unknown engine {name!r} for a network stack; use one of "
            f"{', '.join(STACKED_ENGINE_NAMES)}.")
    if name in ("fused", "auto"):
        # The fused kernel's checks read backend, cost, sizes and dtype (Parameters).
        launcher = fused.cuda_launcher(stack)
        reason = fused.unfit_reason(stack, settings.mini_batch_size, X.shape[0],
                                    launcher, fused.THREADS)
        if not reason:
            return StackedFusedEngine(stack, X, Y, settings, launcher)
        if name == "fused":
            raise ValueError(f"engine 'fused' cannot train this stack: {reason}; "
                             f"use engine 'eager' or 'auto'.")
    if name == "cpu" or (name == "auto" and _single_auto_takes_cpu()):
        from .stacked_cpu import StackedCpuEngine, unfit_reason
        from .stacked_workers import WorkerStackedCpuEngine, workers_for

        if name == "cpu" or not unfit_reason(stack):
            workers = workers_for(stack, X.shape[0], settings.workers)
            if workers > 1:
                return WorkerStackedCpuEngine(stack, X, Y, settings, workers)
            return StackedCpuEngine(stack, X, Y, settings)
    return StackedEagerEngine(stack, X, Y, settings)


def _single_auto_takes_cpu() -> bool:
    """Whether ``Network.SGD``'s ``auto`` knows the CPU engine: then a stack's ``auto``
    takes the stacked CPU engine on NumPy, so each network's run stays the single run."""
    from . import ENGINE_NAMES

    return "cpu" in ENGINE_NAMES


class StackedFusedEngine:
    """The fused kernel (:mod:`gpunet.engines.fused`) on the stack's ``(K, P)`` array:
    one launch per epoch trains all K networks, thread block ``k`` network ``k``."""

    name = "fused"

    def __init__(self, stack: "StackedParameters", X: "Array", Y: "Array",
                 settings: StackedSettings, launcher: Any) -> None:
        from . import fused

        self.fused = fused.FusedSgd(
            stack.backend, stack.sizes, stack.dtype, fused.COST_NAMES[stack.cost],
            stack.parameters, X, Y, settings.mini_batch_size, settings.eta, settings.lmbda,
            launcher, fused.THREADS)

    def train_epoch(self, permutations: np.ndarray) -> None:
        self.fused.train_epoch(permutations)


# ---------------------------------------------------------------- storage
def stacked_layers(sizes: Sequence[int], K: int, xp: Any,
                   dtype: Any) -> tuple["Array", list["Array"], list["Array"]]:
    """A new ``(K, P)`` parameter array for K networks of ``sizes``, and its layer views.

    Row ``k`` is network ``k``'s flat buffer in :mod:`gpunet.parameters`' layout.
    Returns ``(flat, weights, biases)``: ``weights[l]`` of shape ``(K, n_{l+1}, n_l)``
    and ``biases[l]`` of shape ``(K, n_{l+1}, 1)``, views of ``flat``.
    """
    flat = xp.empty((K, n_parameters(sizes)), dtype=dtype)
    views, offset = [], 0
    for rows, cols in weight_shapes(sizes) + bias_shapes(sizes):
        views.append(flat[:, offset:offset + rows * cols].reshape(K, rows, cols))
        offset += rows * cols
    n_layers = len(sizes) - 1
    return flat, views[:n_layers], views[n_layers:]


class StackedWorkspace:
    """Buffers for K mini-batches of exactly ``k`` rows each, allocated once per run.

    A full mini-batch and a smaller last one get a workspace each, so every buffer is
    contiguous (no ``[:, :k]`` slices, which batched GEMM would have to copy). The
    gradient has the parameters' ``(K, P)`` layout.
    """

    def __init__(self, sizes: Sequence[int], K: int, xp: Any, dtype: Any, k: int) -> None:
        self.k = k
        self.X = xp.empty((K, k, sizes[0]), dtype=dtype)
        self.Y = xp.empty((K, k, sizes[-1]), dtype=dtype)
        self.activations = [xp.empty((K, k, n), dtype=dtype) for n in sizes[1:]]
        self.deltas = [xp.empty((K, k, n), dtype=dtype) for n in sizes[1:]]
        self.scratch = [xp.empty((K, k, n), dtype=dtype) for n in sizes[1:]]
        self.gradient, self.nabla_w, nabla_b = stacked_layers(sizes, K, xp, dtype)
        self.nabla_b = [nb.reshape(K, -1) for nb in nabla_b]


# ---------------------------------------------------------------- the step
def stacked_backprop_into(backend: "Backend", cost: Any, weights: Sequence["Array"],
                          biases: Sequence["Array"], ws: StackedWorkspace) -> None:
    """Fill ``ws.gradient`` with each network's ``Σ_x ∂C_x/∂w`` and ``Σ_x ∂C_x/∂b``.

    Chapter 2's four equations (BP1 to BP4) for ``ws.X`` (``(K, k, n_in)``: network
    ``k``'s mini-batch in slice ``k``), as :func:`gpunet.backprop.backprop_into` computes
    them for one network, with batched products.
    """
    xp = backend.xp
    a = ws.X
    for w, b, z in zip(weights, biases, ws.activations):
        xp.matmul(a, w.transpose(0, 2, 1), out=z)  # Z = A Wᵀ (eq. 25, rows)
        a = backend.add_bias_sigmoid(z, b.transpose(0, 2, 1), out=z)
    delta = ws.deltas[-1]
    output_error(backend, cost, a, ws.Y, delta, ws.scratch[-1])  # BP1
    for l in range(len(weights) - 1, -1, -1):
        a_prev = ws.X if l == 0 else ws.activations[l - 1]
        xp.matmul(delta.transpose(0, 2, 1), a_prev, out=ws.nabla_w[l])  # BP4
        xp.sum(delta, axis=1, out=ws.nabla_b[l])  # BP3
        if l > 0:
            prev = ws.deltas[l - 1]
            xp.matmul(delta, weights[l], out=prev)  # BP2
            backend.sigmoid_prime_mul(prev, a_prev, ws.scratch[l - 1])
            delta = prev


class StackedEagerEngine:
    """K networks' mini-batch SGD as batched array operations, buffers allocated once.

    Per step: one gather of the K mini-batches (``take`` with a ``(K, k)`` index
    array), batched backprop, and the update ``w → (1 - η_k λ_k/n) w - (η_k/k) ∇w``,
    ``b → b - (η_k/k) ∇b`` (chapter 3, eq. 93 and 94) with per-network columns of
    ``η_k/k`` and ``1 - η_k λ_k/n``, kept in the parameters' dtype so that each row
    rounds exactly as a single network's update with Python-float scalars does.
    """

    name = "eager"

    def __init__(self, stack: "StackedParameters", X: "Array", Y: "Array",
                 settings: StackedSettings) -> None:
        self.stack, self.X, self.Y = stack, X, Y
        backend, xp, K = stack.backend, stack.xp, len(stack)
        self.n = n = X.shape[0]
        self.m = m = min(settings.mini_batch_size, n)
        last = n - (n // m) * m
        self.workspaces = {m: StackedWorkspace(stack.sizes, K, xp, stack.dtype, m)}
        if last:
            self.workspaces[last] = StackedWorkspace(stack.sizes, K, xp, stack.dtype, last)
        self.perm = xp.empty((K, n), dtype=np.int64)
        self.n_weights = n_weights(stack.sizes)
        eta = np.asarray(settings.eta, dtype=np.float64)
        lmbda = np.asarray(settings.lmbda, dtype=np.float64)

        def column(values: np.ndarray) -> "Array":
            return backend.asarray(values.reshape(K, 1), stack.dtype)

        self.scale = {k: column(eta / k) for k in self.workspaces}
        decay = 1.0 - eta * lmbda / n
        self.decay = column(decay) if (decay != 1.0).any() else None

    def train_epoch(self, permutations: np.ndarray) -> None:
        self.stack.backend.copy_from_host(self.perm, permutations)
        n, m = self.n, self.m
        for s in range(0, n, m):
            self._step(self.workspaces[min(m, n - s)], s)

    def _step(self, ws: StackedWorkspace, s: int) -> None:
        stack = self.stack
        backend, xp = stack.backend, stack.xp
        index = self.perm[:, s:s + ws.k]
        xp.take(self.X, index, axis=0, out=ws.X)
        xp.take(self.Y, index, axis=0, out=ws.Y)
        stacked_backprop_into(backend, stack.cost, stack.weights, stack.biases, ws)
        params, grad = stack.parameters, ws.gradient
        grad *= self.scale[ws.k]
        if self.decay is not None:
            params[:, :self.n_weights] *= self.decay
        params -= grad
