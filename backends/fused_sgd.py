"""The fused SGD kernel (``kernels/fused_sgd.cu``): its plan, and two ways to launch it.

One launch trains ``K`` networks of the same sizes for a whole epoch, one thread
block per network (see the kernel's header comment for the algorithm and memory
layout). This module holds what the host must know about the kernel:

* :class:`SgdEpochPlan`: for given sizes, mini-batch size, dtype and block size, how
  much shared memory a block needs, whether the parameters fit there, and whether the
  kernel can train the network at all on a device with a given shared-memory limit;
* :class:`CudaSgdEpoch`: the kernel compiled by CuPy (NVRTC) and launched on a GPU;
* :class:`backends.testing.emulator.EmulatedSgdEpoch` (test machinery, not imported
  here): the *same source* compiled by the system C++ compiler with
  ``-DGPUNET_EMULATE`` and run on the CPU by ``kernels/emulator.cpp``, each CUDA thread a
  coroutine, in ascending, descending or shuffled thread order. The tests use it to
  prove the kernel right without a GPU.

Both launchers take the same arguments: device (or host) arrays for the parameters
``(K, P)``, the working copies ``(K, P)``, the training inputs ``X (n, n_in)`` and
desired outputs ``Y (n, n_out)``, the permutations ``(K, n)`` (int64), ``eta`` and
``lmbda`` ``(K,)`` (float64), the layer sizes (int32), and for momentum and L1 the
velocities ``(K, P)`` (the parameters' flat layout and dtype) and μ and λ₁ ``(K,)``
(float64), every one C-contiguous and of exactly that dtype, then the cost's kernel id (``kernel_id`` of a
:class:`gpunet.model.costs.DeclaredCost`); the plan names the activation the kernel is
built for. The kernel gets bare pointers and reads rows by ``row * width``: a
Fortran-ordered ``X`` (CuPy keeps NumPy's order, and pandas' ``to_numpy()`` often gives
one) would train on scrambled examples without any error. So both launchers refuse
other layouts and dtypes (:func:`check_arguments`), and
:class:`~gpunet.engines.fused.FusedSgd` converts the data once, at setup.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np


KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
KERNEL_PATH = KERNEL_DIR / "fused_sgd.cu"
KERNEL_NAME = "gpunet_sgd_epoch"
MAX_LAYERS = 16  # GPUNET_MAX_LAYERS in the kernel
#: GPUNET_MAX_THREADS in the kernel: its ``__launch_bounds__``, the most threads per block.
MAX_THREADS = 256
#: GPUNET_ACTIVATION's default in the kernel: the kernel id of the book's sigmoid
#: (:mod:`gpunet.model.activations`), what a build that names no activation computes.
DEFAULT_ACTIVATION = 0
#: The output layers the kernel has: the sigmoid (every build's but one) and the softmax
#: (the log-likelihood cost's; ``-DGPUNET_SOFTMAX=1``).
SIGMOID_OUTPUT, SOFTMAX_OUTPUT = 0, 1
#: The launchers' array arguments, in the kernel's order: the last three, for momentum
#: and L1 (:data:`EXTENSION`), may be left out (no network has either).
ARGUMENTS = ("params", "work", "X", "Y", "perm", "eta", "lmbda", "sizes", "velocity",
             "momentum", "l1")
#: The arguments of momentum and L1: the velocities ``(K, P)`` (flat layout, the
#: parameters' dtype, in global memory), μ and λ₁ ``(K,)`` (float64).
EXTENSION = ARGUMENTS[8:]
#: The dropout build's further arguments, after :data:`ARGUMENTS`: each network's
#: Philox key ``(K, 2)`` and threshold ``⌊p · 2⁶⁴⌋`` ``(K,)`` (uint64; see
#: :mod:`gpunet.model.dropout`), then the epoch (a 32-bit int) the launch trains.
DROPOUT_ARGUMENTS = ("drop_key", "drop_threshold", "epoch")
REAL = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
#: Options the kernel is compiled with, besides ``-DGPUNET_REAL`` (CuPy adds its own,
#: ``-ftz=true`` among them); CI's NVRTC compiles (:mod:`backends.testing.nvrtc`) use these.
RAW_MODULE_OPTIONS = ("-std=c++17",)
#: The kernel's register tiles of examples (``GPUNET_ALL_ROW_TILES`` in the kernel): a
#: mini-batch of ``m`` runs in tiles of :func:`row_tile` ``(m)`` rows.
ROW_TILES = (16, 12, 10, 8, 4, 2, 1)


def row_tile(mini_batch_size: int) -> int:
    """The kernel's row tile for full mini-batches of ``mini_batch_size``: the largest of
    :data:`ROW_TILES` that divides it (``row_tile`` in the kernel)."""
    return next(r for r in ROW_TILES if mini_batch_size % r == 0)


def build_options(real: str, tile: int, activation: int = DEFAULT_ACTIVATION,
                  output: int = SIGMOID_OUTPUT, dropout: bool = False) -> tuple[str, ...]:
    """The options of the launcher's build for ``GPUNET_REAL=real``, row tile ``tile``,
    the hidden layers' activation whose kernel id is ``activation`` and the output
    layer ``output`` (:data:`SIGMOID_OUTPUT` or :data:`SOFTMAX_OUTPUT`).

    One build per tile holds two template instances of each tiled loop (the tile, and 1
    for a smaller last mini-batch) instead of all seven: NVRTC compiles it in about a
    second instead of ten, which a user pays once per dtype and mini-batch size (CuPy
    then caches the cubin on disk). The tile changes no number, only the speed.
    """
    if tile not in ROW_TILES:
        raise ValueError(f"row tile {tile}: the kernel has tiles {ROW_TILES}")
    options = RAW_MODULE_OPTIONS + (f"-DGPUNET_REAL={real}", f"-DGPUNET_ROW_TILE={tile}")
    return options + activation_options(activation, output, dropout)


def activation_options(activation: int, output: int = SIGMOID_OUTPUT,
                       dropout: bool = False) -> tuple[str, ...]:
    """The options that build the kernel for the hidden layers' activation of kernel id
    ``activation`` and the output layer ``output`` (the softmax: ``-DGPUNET_SOFTMAX=1``,
    a build of its own, so the sigmoid's builds are exactly what they were), with
    dropout's masks where ``dropout`` (``-DGPUNET_DROPOUT=1``, likewise a build of its
    own, whose launches take :data:`DROPOUT_ARGUMENTS`)."""
    softmax = ("-DGPUNET_SOFTMAX=1",) if output == SOFTMAX_OUTPUT else ()
    drop = ("-DGPUNET_DROPOUT=1",) if dropout else ()
    return (f"-DGPUNET_ACTIVATION={int(activation)}", *softmax, *drop)


def kernel_source() -> str:
    """The CUDA source of the fused kernel, exactly as shipped."""
    return KERNEL_PATH.read_text(encoding="utf-8")


def working_stride(n_out: int, n_in: int, itemsize: int, in_shared: bool) -> int:
    """The row stride of a layer's transposed weights (``n_in`` rows of ``n_out``) in the
    kernel's working copy (``working_stride`` in the kernel, which this mirrors).

    In global memory ``n_out``. In shared memory a stride that keeps the backprop's
    transposed reads (a warp's lanes at neighbouring rows, the same column) off each
    other's banks: odd where no pair loads need it even (32 neighbouring rows in 32
    banks), else 2 mod 4 (at most 2 lanes a bank; ``n_out = 32`` had all 32 lanes of a
    float32 warp in one bank)."""
    if not in_shared:
        return n_out
    vw = 16 // itemsize
    ffw, upw = (2 * vw, 4 * vw) if itemsize == 4 else (vw, vw)
    if n_out % 2 == 0 and (n_in % ffw == 0 or n_in % upw == 0):
        return n_out + 2 if n_out % 4 == 0 else n_out
    return n_out + 1 if n_out % 2 == 0 else n_out


def working_offsets(sizes: Sequence[int], itemsize: int, in_shared: bool) -> tuple[list[int], int]:
    """Where each layer's transposed weights start in the working copy (in reals), and
    the copy's size (the weights, each matrix on 16 bytes in shared memory, then the
    biases): ``wk_off`` and ``Pw`` in the kernel."""
    vw = 16 // itemsize
    offsets, total = [], 0
    for l in range(len(sizes) - 1):
        offsets.append(total)
        reals = sizes[l] * working_stride(sizes[l + 1], sizes[l], itemsize, in_shared)
        total += -(-reals // vw) * vw if in_shared else reals
    return offsets, total + sum(sizes[1:])


@dataclass(frozen=True)
class SgdEpochPlan:
    """The shared-memory budget of one block of the fused kernel.

    The block always keeps the mini-batch's inputs, desired outputs, activations,
    errors and partial sums in shared memory; the parameters too when they fit in
    ``max_shared_bytes`` (the device's opt-in limit per block: 227 KiB on an H100),
    else in a global working copy (then L2-resident for networks of a few MB).
    ``activation`` is the kernel id of the hidden layers' activation the kernel is
    built for (``GPUNET_ACTIVATION``), ``output`` its output layer (:data:`SOFTMAX_OUTPUT`:
    ``GPUNET_SOFTMAX``).
    """

    sizes: tuple[int, ...]
    mini_batch_size: int
    dtype: np.dtype
    threads: int
    max_shared_bytes: int
    activation: int = DEFAULT_ACTIVATION
    output: int = SIGMOID_OUTPUT
    #: the dropout build (``GPUNET_DROPOUT``): its masks take a real per hidden neuron
    dropout: bool = False

    @property
    def n_parameters(self) -> int:
        """The flat buffer's length: the working copy in global memory (no padding)."""
        return working_offsets(self.sizes, self.dtype.itemsize, False)[1]

    @property
    def partial_capacity(self) -> int:
        """Reals for feedforward's partial sums (``split_count`` keeps within this):
        about one slice per thread and output tile (``TILE_OUT = 2`` outputs) for up to
        16 examples, and at least one slice."""
        m = self.mini_batch_size
        return 2 * self.threads * min(m, 16) + m * max(self.sizes[1:])

    @property
    def working_reals(self) -> int:
        """Reals of the working copy of the parameters when it lives in shared memory
        (weights transposed, rows padded by :func:`working_stride`)."""
        return working_offsets(self.sizes, self.dtype.itemsize, True)[1]

    def _scratch_reals(self) -> int:
        s, m = self.sizes, self.mini_batch_size
        masks = sum(s[1:-1]) if self.dropout else 0  # after the partial sums
        return m * s[0] + m * s[-1] + 2 * m * sum(s[1:]) + self.partial_capacity + masks

    @property
    def params_in_shared(self) -> bool:
        itemsize = self.dtype.itemsize
        return (self.working_reals + self._scratch_reals()) * itemsize <= self.max_shared_bytes

    @property
    def shared_bytes(self) -> int:
        reals = self._scratch_reals() + (self.working_reals if self.params_in_shared else 0)
        return reals * self.dtype.itemsize

    def why_not(self) -> str:
        """Empty when the kernel can train this network, else the reason in a few words."""
        if self.dtype not in REAL:
            return f"dtype {self.dtype} (use float32 or float64)"
        if not 0 < self.threads <= MAX_THREADS:
            return f"{self.threads} threads per block (the kernel runs 1 to {MAX_THREADS})"
        if len(self.sizes) - 1 > MAX_LAYERS:
            return f"more than {MAX_LAYERS} weight layers"
        if self.shared_bytes > self.max_shared_bytes:
            return (f"a mini-batch of {self.mini_batch_size} needs "
                    f"{self.shared_bytes // 1024} KiB of shared memory, more than the "
                    f"device's {self.max_shared_bytes // 1024} KiB per block")
        return ""


def _launch_arguments(plan: SgdEpochPlan, n: int, cost: int,
                      has_velocity: bool = False) -> tuple[int, ...]:
    """The kernel's scalar arguments; ``cost`` is the cost's kernel id,
    ``has_velocity`` whether the launch's velocities are a real ``(K, P)`` buffer."""
    return (len(plan.sizes), n, plan.mini_batch_size, int(cost),
            int(plan.params_in_shared), plan.partial_capacity, int(has_velocity))


def has_velocity(arrays: Sequence[Any]) -> bool:
    """Whether the :data:`ARGUMENTS` ``arrays`` hold real velocities, ``(K, P)``, rather
    than :func:`with_extension`'s one-element stand-in."""
    return len(arrays[8].shape) == 2


def check_arguments(plan: SgdEpochPlan, arrays: Sequence[Any], what: str) -> None:
    """Raise ``TypeError`` unless every array of :data:`ARGUMENTS` is C-contiguous and
    of the dtype the kernel reads (the plan's real, int64 permutations, float64 η and λ,
    int32 sizes, the real velocities, float64 μ and λ₁): the kernel sees bare pointers
    and would read anything else wrongly."""
    int64, float64 = np.dtype(np.int64), np.dtype(np.float64)
    dtypes = ((plan.dtype,) * 4 + (int64, float64, float64, np.dtype(np.int32))
              + (plan.dtype, float64, float64))
    if len(arrays) != len(ARGUMENTS):
        raise TypeError(f"{what}: {len(arrays)} arrays, the kernel reads "
                        f"{len(ARGUMENTS)} ({', '.join(ARGUMENTS)})")
    for name, a, dtype in zip(ARGUMENTS, arrays, dtypes):
        if np.dtype(a.dtype) != dtype:
            raise TypeError(f"{what}: {name} has dtype {a.dtype}, the kernel reads {dtype}")
        if not a.flags.c_contiguous:
            raise TypeError(f"{what}: {name} is not C-contiguous (the kernel reads rows "
                            f"by pointer); convert it once with ascontiguousarray")


class CudaSgdEpoch:
    """The fused kernel on a CUDA device, compiled by CuPy once per dtype, row tile and
    activation (:func:`build_options`), at the first launch that needs that build."""

    _modules: dict[tuple[int, str, int, int, int, bool], Any] = {}

    def __init__(self, cupy: Any, dtype: Any) -> None:
        self.cupy = cupy
        self.dtype = np.dtype(dtype)
        self.device = cupy.cuda.Device().id
        runtime = cupy.cuda.runtime
        self.max_shared_bytes = int(runtime.deviceGetAttribute(
            runtime.cudaDevAttrMaxSharedMemoryPerBlockOptin, self.device))
        #: the build the last launch ran (``None`` before the first).
        self.kernel: Any = None
        #: the most threads per block the last launch's build runs (``__launch_bounds__``
        #: and its registers, as the driver reports them).
        self.max_threads = MAX_THREADS

    def build(self, mini_batch_size: int, activation: int = DEFAULT_ACTIVATION,
              output: int = SIGMOID_OUTPUT, dropout: bool = False) -> Any:
        """The compiled kernel for mini-batches of ``mini_batch_size``, the activation
        of kernel id ``activation`` and the output layer ``output`` (compiled on the first
        call for its dtype, row tile, activation and output; CI compiles every tile of
        the sigmoid's build: tests/test_kernel_builds.py)."""
        tile = row_tile(mini_batch_size)
        key = (self.device, REAL[self.dtype], tile, activation, output, dropout)
        if key not in self._modules:
            module = self.cupy.RawModule(
                code=kernel_source(),
                options=build_options(REAL[self.dtype], tile, activation, output, dropout))
            self._modules[key] = module.get_function(KERNEL_NAME)
        return self._modules[key]

    def __call__(self, plan: SgdEpochPlan, params: Any, work: Any, X: Any, Y: Any,
                 perm: Any, eta: Any, lmbda: Any, sizes: Any, cost: int,
                 velocity: Any = None, momentum: Any = None, l1: Any = None,
                 dropout: Any = None) -> None:
        """One launch: every network an epoch; ``cost`` is the cost's kernel id;
        ``velocity``, ``momentum`` and ``l1`` for momentum and L1 (default: none);
        ``dropout``, the dropout build's :data:`DROPOUT_ARGUMENTS` (its plan's)."""
        arrays = with_extension(self.cupy, plan, (params, work, X, Y, perm, eta, lmbda, sizes),
                                velocity, momentum, l1)
        check_arguments(plan, arrays, "the CUDA kernel")
        drop = dropout_arguments(plan, perm.shape[0], dropout, "the CUDA kernel")
        self.kernel = self.build(plan.mini_batch_size, plan.activation, plan.output,
                                 plan.dropout)
        self.max_threads = int(self.kernel.max_threads_per_block)
        if plan.threads > self.max_threads:
            raise ValueError(f"the fused kernel, as compiled for this device, runs at most "
                             f"{self.max_threads} threads per block; the plan asks for "
                             f"{plan.threads}: use fewer threads")
        if self.kernel.max_dynamic_shared_size_bytes < plan.shared_bytes:
            self.kernel.max_dynamic_shared_size_bytes = plan.shared_bytes
        K, n = perm.shape
        if drop:
            arrays = (*arrays, drop[0], drop[1], np.int32(drop[2]))
        args = (*arrays, *(np.int32(v) for v in _launch_arguments(plan, n, cost,
                                                                   has_velocity(arrays))))
        self.kernel((K,), (plan.threads,), args, shared_mem=plan.shared_bytes)


def dropout_arguments(plan: SgdEpochPlan, K: int, dropout: Any,
                      what: str) -> tuple[Any, ...]:
    """The dropout build's :data:`DROPOUT_ARGUMENTS` ``(drop_key, drop_threshold,
    epoch)`` checked (``TypeError``: uint64 ``(K, 2)`` and ``(K,)``, C-contiguous; an
    epoch from 0 below 2³¹); ``()`` for a plan without dropout, which takes none."""
    if not plan.dropout:
        if dropout is not None:
            raise TypeError(f"{what}: dropout's arguments for a plan without dropout")
        return ()
    if dropout is None or len(dropout) != 3:
        raise TypeError(f"{what}: the dropout build needs {', '.join(DROPOUT_ARGUMENTS)}")
    key, threshold, epoch = dropout
    for name, a, shape in (("drop_key", key, (K, 2)), ("drop_threshold", threshold, (K,))):
        if np.dtype(a.dtype) != np.dtype(np.uint64) or tuple(a.shape) != shape:
            raise TypeError(f"{what}: {name} must be uint64 of shape {shape}, got "
                            f"{a.dtype} {tuple(a.shape)}")
        if not a.flags.c_contiguous:
            raise TypeError(f"{what}: {name} is not C-contiguous")
    if not 0 <= int(epoch) < 2**31:
        raise TypeError(f"{what}: epoch {epoch} is not a 32-bit count from 0")
    return key, threshold, int(epoch)


def with_extension(xp: Any, plan: SgdEpochPlan, arrays: Sequence[Any], velocity: Any,
                   momentum: Any, l1: Any) -> tuple[Any, ...]:
    """The :data:`ARGUMENTS` of a launch: ``arrays`` (the first eight) and the momentum
    and L1 arrays, where they are not given a one-element velocity and zero μ and λ₁
    for every network (the kernel then takes its plain update and never reads the
    velocities)."""
    K = arrays[4].shape[0]
    if velocity is None:
        velocity = xp.zeros(1, dtype=plan.dtype)
    if momentum is None:
        momentum = xp.zeros(K, dtype=np.float64)
    if l1 is None:
        l1 = xp.zeros(K, dtype=np.float64)
    return (*arrays, velocity, momentum, l1)


def plan_for(sizes: Sequence[int], mini_batch_size: int, dtype: Any, threads: int,
             max_shared_bytes: int, activation: int = DEFAULT_ACTIVATION,
             output: int = SIGMOID_OUTPUT, dropout: bool = False) -> SgdEpochPlan:
    """The :class:`SgdEpochPlan` for a network (mini-batch size capped at ``n`` by the
    caller), built for the activation of kernel id ``activation`` and the output layer
    ``output``, with dropout's masks where ``dropout``."""
    return SgdEpochPlan(tuple(int(s) for s in sizes), int(mini_batch_size), np.dtype(dtype),
                        int(threads), int(max_shared_bytes), int(activation), int(output),
                        bool(dropout))
