"""Compile gpunet's CUDA kernels with NVRTC, on a machine with no GPU and no driver.

CuPy compiles a kernel the first time it runs, which is too late to learn that its
source does not compile: on a user's GPU. This module compiles every kernel gpunet
ships *ahead of time*, exactly as CuPy would compile it, with NVRTC from the pip wheels
(``nvidia-cuda-nvrtc``, headers from ``nvidia-cuda-runtime``) and without touching a
device, so CI proves they compile for every architecture and precision.

CuPy's public compile calls (``RawModule.compile``, a kernel's first launch) ask the
driver for the device's architecture first, so they fail without one. Three *private*
CuPy functions do the rest without a device, and this module uses them:

* ``cupy._core._kernel._get_elementwise_kernel_code``: the exact CUDA source CuPy
  generates for an ``ElementwiseKernel`` and given argument descriptions;
* ``cupy._core.core.assemble_cupy_compiler_options``: the include paths and language
  standard CuPy compiles with;
* ``cupy.cuda.compiler._NVRTCProgram(...).compile(options)``: NVRTC itself.

Private APIs move between CuPy releases, so the ``test`` extra pins the CuPy version
(:data:`TESTED_CUPY`), and when they move :class:`CompilerAPIMoved` says so loudly: the
compile tests fail rather than skip, and the check can never quietly vanish.

The one public entry point for any kernel source is :func:`compile_cuda_source`; the
collection of every shipped kernel is :func:`shipped_kernels` (the fused
``ElementwiseKernel`` objects of :mod:`backends.cupy_backend` and every
``backends/kernels/*.cu`` file, in float and double).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

#: The CuPy release whose private compile APIs this module was written against.
TESTED_CUPY = "14.2.0"

#: Architectures CI compiles for: A100 (sm_80) and H100 (sm_90).
ARCHES = ("sm_80", "sm_90")

#: ``backends/kernels``: RawModule sources, one ``.cu`` file each.
KERNEL_DIR = Path(__file__).resolve().parent.parent / "kernels"

#: Options every ``backends/kernels/*.cu`` file is compiled with (besides
#: ``-DGPUNET_REAL=float`` or ``double``): the runtime loader's own, so CI compiles
#: exactly what a GPU loads.
from ..fused_sgd import RAW_MODULE_OPTIONS as RAW_MODULE_OPTIONS  # noqa: E402 (re-exported)

#: C types for the ``GPUNET_REAL`` macro of the ``.cu`` files, by NumPy dtype.
REALS = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

# CuPy's _ArgKind enum (cupy/_core/_kernel.pxd): ARG_KIND_NDARRAY = 1, INDEXER, SCALAR.
_ARG_NDARRAY, _ARG_INDEXER, _ARG_SCALAR = 1, 2, 3


class CompileError(RuntimeError):
    """NVRTC rejected a source; the message has NVRTC's log."""


class CompilerAPIMoved(RuntimeError):
    """The private CuPy APIs this module needs are missing or changed."""


@dataclass(frozen=True)
class Compiled:
    """What NVRTC produced: a cubin for ``arch``, lowered names if any were asked for,
    and NVRTC's log (with ``--ptxas-options=-v``, ptxas's resource report: see
    :mod:`backends.testing.kernel_resources`)."""

    binary: bytes
    arch: str
    lowered_names: dict[str, str] = field(default_factory=dict)
    log: str = ""


def _cupy() -> Any:
    """CuPy's compiler internals, or :class:`CompilerAPIMoved` naming what moved.

    Raises ``ImportError`` when CuPy is not installed at all (callers may skip then).
    """
    import cupy  # ImportError: not installed; let it through

    try:
        from cupy._core import _carray, _kernel, _scalar
        from cupy._core import core
        from cupy.cuda import compiler

        api = {
            "_get_elementwise_kernel_code": _kernel._get_elementwise_kernel_code,
            "_ArgInfo": _kernel._ArgInfo,
            "CScalar": _scalar.CScalar,
            "Indexer": _carray.Indexer,
            "assemble_cupy_compiler_options": core.assemble_cupy_compiler_options,
            "_cupy_header_list": core._cupy_header_list,
            "_NVRTCProgram": compiler._NVRTCProgram,
            "CompileException": compiler.CompileException,
        }
    except (ImportError, AttributeError) as exc:
        raise CompilerAPIMoved(
            f"CuPy {cupy.__version__} no longer has the private compile API gpunet uses "
            f"({exc}); it was written against CuPy {TESTED_CUPY}: update backends/nvrtc.py "
            f"or install that version: pip install \"cupy-cuda13x[ctk]=={TESTED_CUPY}\" (or "
            "cupy-cuda12x, as your driver needs)."
        ) from None
    return cupy, api


def compiler_available() -> str:
    """Empty when CuPy is importable here, else why not (for a test's skip reason)."""
    try:
        import cupy  # noqa: F401
    except ImportError as exc:
        return (f"CuPy is not installed ({exc.__class__.__name__}): the compile tests use "
                "the compile extra's CuPy and NVRTC, as CI does (pip install -e \".[test,compile]\"),"
                " or a CUDA extra's")
    return ""


def _options(api: dict[str, Any], options: Sequence[str], arch: str) -> tuple[str, ...]:
    """The NVRTC options CuPy would use for ``options`` on a device of ``arch``.

    ``assemble_cupy_compiler_options`` adds CuPy's include paths and default language
    standard; ``-ftz=true``, the architecture and ``--device-as-default-execution-space``
    are what ``cupy.cuda.compiler`` adds before calling NVRTC.
    """
    if not arch.startswith("sm_"):
        raise ValueError(f"arch must look like 'sm_80', got {arch!r}")
    assembled = tuple(api["assemble_cupy_compiler_options"](tuple(options)))
    return assembled + ("-ftz=true", f"-arch={arch}", "--device-as-default-execution-space")


def compile_cuda_source(source: str, arch: str = "sm_80", options: Sequence[str] = (),
                        name_expressions: Optional[Sequence[str]] = None, *,
                        cupy_headers: bool = False,
                        filename: str = "gpunet_kernel.cu") -> Compiled:
    """Compile CUDA ``source`` for ``arch`` as CuPy would, without a GPU or a driver.

    ``options`` are what the source's ``RawModule`` gets (e.g. ``("-std=c++17",
    "-DGPUNET_REAL=float")``); ``name_expressions`` the template instances to lower;
    ``cupy_headers`` prepends CuPy's own headers, as CuPy does for the sources it
    generates (``ElementwiseKernel``). Raises :class:`CompileError` with NVRTC's log,
    :class:`CompilerAPIMoved` if CuPy's internals moved, ``ImportError`` without CuPy.

    ptxas's resource report is always asked for (``--ptxas-options=-v``: it changes
    nothing in the binary) and lands in :attr:`Compiled.log`. Results are kept for the
    process, by source, architecture and options: the compile and resource tests
    share one compile of each kernel (a few seconds each).
    """
    cupy, api = _cupy()
    if cupy_headers:
        source = "".join(f"#include <{h}>\n" for h in api["_cupy_header_list"]) + source
    if PTXAS_REPORT not in options:
        options = (*options, PTXAS_REPORT)
    key = (source, arch, tuple(options), tuple(name_expressions or ()))
    if key in _compiled:
        return _compiled[key]
    opts = _options(api, options, arch)
    log = io.StringIO()
    try:
        program = api["_NVRTCProgram"](source, filename,
                                       name_expressions=tuple(name_expressions or ()) or None,
                                       method="cubin")
        binary, mapping = program.compile(opts, log_stream=log)
    except api["CompileException"] as exc:
        raise CompileError(f"NVRTC could not compile {filename} for {arch}:\n{exc}") from None
    compiled = Compiled(binary=bytes(binary), arch=arch, lowered_names=dict(mapping or {}),
                        log=log.getvalue().replace("\x00", ""))
    _compiled[key] = compiled
    return compiled


#: The option that makes ptxas report registers, stack, spills and shared memory.
PTXAS_REPORT = "--ptxas-options=-v"
_compiled: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Compiled] = {}


# ------------------------------------------------------------ ElementwiseKernels
def elementwise_kernel_source(spec: Any, dtype: Any, launch: Sequence[str]) -> str:
    """The CUDA source CuPy generates for ``spec`` (a ``KernelSpec``) in ``dtype``.

    ``launch`` describes each argument as gpunet's calls pass it (see
    ``backends.cupy_backend.KernelSpec``). The result is exactly what CuPy hands NVRTC
    on a GPU, less the CuPy headers it prepends (:func:`compile_cuda_source` adds them).
    """
    cupy, api = _cupy()
    kernel = cupy.ElementwiseKernel(spec.in_params, spec.out_params, spec.operation, spec.name)
    n_in = len(kernel.in_params)
    if len(launch) != kernel.nargs:
        raise ValueError(f"{spec.name}: launch {launch} describes {len(launch)} arguments, "
                         f"the kernel has {kernel.nargs}")
    t = np.dtype(dtype).type
    in_arrays = tuple(t if d.startswith("a") else None for d in launch[:n_in])
    out_arrays = tuple(t for _ in launch[n_in:])
    in_types, out_types, type_map = kernel._decide_params_type(in_arrays, out_arrays)
    arginfos = []
    ndims = set()
    for desc, typ in zip(launch, tuple(in_types) + tuple(out_types)):
        if desc == "s":
            arginfos.append(api["_ArgInfo"](_ARG_SCALAR, api["CScalar"], np.dtype(typ).type,
                                            0, True, True))
        elif desc in ("a1", "a2", "a2s"):
            ndim = int(desc[1])
            ndims.add(ndim)
            arginfos.append(api["_ArgInfo"](_ARG_NDARRAY, cupy.ndarray, np.dtype(typ).type,
                                            ndim, not desc.endswith("s"), True))
        else:
            raise ValueError(f"{spec.name}: unknown argument description {desc!r}")
    if len(ndims) != 1:
        raise ValueError(f"{spec.name}: launch {launch} mixes array ranks {sorted(ndims)}")
    arginfos.append(api["_ArgInfo"](_ARG_INDEXER, api["Indexer"], None, ndims.pop(), True, True))
    try:
        return str(api["_get_elementwise_kernel_code"](
            tuple(arginfos), type_map, kernel.params, kernel.operation, kernel.name,
            kernel.preamble))
    except (AssertionError, TypeError) as exc:
        raise CompilerAPIMoved(
            f"CuPy {cupy.__version__}'s kernel code generator rejected gpunet's argument "
            f"descriptions ({type(exc).__name__}: {exc}); it was written against CuPy "
            f"{TESTED_CUPY}: update backends/nvrtc.py."
        ) from None


# ------------------------------------------------------------ everything shipped
@dataclass(frozen=True)
class KernelSource:
    """One kernel source to compile: an id for test reports, its options, its text.

    The text is produced on demand (:meth:`source`), so the list of kernels, and the
    test ids, are known without CuPy.
    """

    id: str
    options: tuple[str, ...]
    cupy_headers: bool
    load: Callable[[], str]
    name_expressions: tuple[str, ...] = ()

    def source(self) -> str:
        """The CUDA source, as CuPy will compile it on a GPU (less CuPy's headers)."""
        return self.load()


def cuda_files(directory: Path = KERNEL_DIR) -> list[Path]:
    """Every ``.cu`` file in ``directory`` (default ``backends/kernels``), sorted."""
    return sorted(directory.glob("*.cu")) if directory.is_dir() else []


def raw_module_sources(directory: Path = KERNEL_DIR) -> Iterator[KernelSource]:
    """Each ``.cu`` file of ``directory``, once with ``GPUNET_REAL=float``, once ``double``."""
    for path in cuda_files(directory):
        for real in REALS.values():
            yield KernelSource(id=f"{path.stem}-{real}",
                               options=RAW_MODULE_OPTIONS + (f"-DGPUNET_REAL={real}",),
                               cupy_headers=False,
                               load=functools.partial(path.read_text, encoding="utf-8"))


def elementwise_sources(kernels: Optional[Sequence[Any]] = None) -> Iterator[KernelSource]:
    """Each fused ``ElementwiseKernel`` in float32 and float64, for each launch layout."""
    if kernels is None:
        from ..cupy_backend import KERNELS  # specs only: no CuPy import
        kernels = KERNELS
    for spec in kernels:
        for dtype, real in REALS.items():
            for launch in spec.launches:
                yield KernelSource(
                    id=f"{spec.name}-{real}-{'.'.join(launch)}", options=(),
                    cupy_headers=True,
                    load=functools.partial(elementwise_kernel_source, spec, dtype, launch))


def shipped_kernels() -> list[KernelSource]:
    """Every CUDA kernel source gpunet ships, as it will be compiled on a GPU."""
    return [*elementwise_sources(), *raw_module_sources()]


def compile_kernel_source(kernel: KernelSource, arch: str) -> Compiled:
    """:func:`compile_cuda_source` for one :class:`KernelSource`."""
    return compile_cuda_source(kernel.source(), arch, kernel.options,
                               kernel.name_expressions or None,
                               cupy_headers=kernel.cupy_headers, filename=f"{kernel.id}.cu")
