"""Every CuPy function, method and keyword argument gpunet uses exists in the installed CuPy.

The CUDA code paths run only on a GPU, so a call that NumPy accepts and CuPy does not
(a missing function, a keyword CuPy lacks) would first fail on a user's GPU. This test
reads gpunet's own source: every call rooted at an array module (``xp.matmul(..., out=)``,
``self.xp.asarray``, ``backend.xp.sum``) or at ``cupy`` itself is looked up in the
installed CuPy, and its keyword arguments are checked against the signature CuPy
declares. Methods of ``cupy.ndarray`` that gpunet calls are listed below (they are
called on values, which the source does not type). Skips without CuPy.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from gpunet.backends.cupy_backend import KERNELS

from conftest import cuda_unavailable_reason

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.joinpath("gpunet").rglob("*.py"), *ROOT.joinpath("backends").glob("*.py")])
# The strict stand-in is NumPy behind wrappers; nvrtc.py uses CuPy's private compile
# API, which tests/test_compile.py covers.
NOT_CUPY = {"testing.py", "numpy_backend.py", "nvrtc.py"}

#: cupy.ndarray methods gpunet calls on device arrays, with the keywords it passes.
NDARRAY_METHODS = {
    "astype": {"copy"}, "reshape": set(), "copy": set(), "get": set(), "set": set(),
    "ravel": set(), "fill": set(), "sum": set(), "item": set(), "tolist": set(),
}


def _root_and_path(node: ast.AST) -> tuple[str, list[str]] | None:
    """``xp.linalg.norm`` -> ("xp", ["linalg", "norm"]); ``self.xp.sum`` -> ("xp", ["sum"])."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
        if isinstance(node, ast.Attribute) and node.attr == "xp":
            return "xp", parts[::-1]
    if isinstance(node, ast.Name) and node.id in ("xp", "cupy"):
        return node.id, parts[::-1]
    return None


def cupy_calls() -> dict[str, dict[str, set[str]]]:
    """``{dotted name: {keyword: set of files}}`` for every call on an array module or cupy."""
    found: dict[str, dict[str, set[str]]] = {}
    for path in SOURCES:
        if path.name in NOT_CUPY:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            rooted = _root_and_path(node.func)
            if rooted is None or not rooted[1]:
                continue
            name = ".".join(rooted[1])
            where = str(path.relative_to(ROOT))
            entry = found.setdefault(name, {})
            entry.setdefault("", set()).add(where)
            for kw in node.keywords:
                if kw.arg is not None:
                    entry.setdefault(kw.arg, set()).add(where)
    return found


def _declared_keywords(obj: object) -> set[str] | None:
    """The keyword names ``obj`` accepts, or ``None`` where that cannot be read (or it
    takes ``**kwargs``)."""
    try:
        params = inspect.signature(obj).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        # Cython functions and CuPy ufuncs: their docstring's first line is the signature.
        doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        match = re.match(r"[\w.]+\((.*)\)", doc[0]) if doc else None
        if not match:
            return None
        names = set()
        for part in match.group(1).split(","):
            part = part.strip().lstrip("\\")
            if part.startswith("**"):
                return None
            words = part.split("=")[0].split()
            name = words[-1].lstrip("*") if words else ""
            if name and name != "/":
                names.add(name)
        return names
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


cupy = pytest.importorskip("cupy", reason="CuPy is not installed")

CALLS = cupy_calls()


def test_the_source_scan_finds_gpunets_cupy_calls():
    # guards the scan itself: these calls are certainly made on the GPU path
    for name in ("matmul", "take", "sum", "asarray", "ElementwiseKernel", "cuda.Device",
                 "cuda.runtime.getDeviceCount"):
        assert name in CALLS, sorted(CALLS)
    assert "out" in CALLS["matmul"] and "axis" in CALLS["take"]


@pytest.mark.parametrize("name", sorted(CALLS))
def test_cupy_has_the_function(name):
    obj = cupy
    for part in name.split("."):
        assert hasattr(obj, part), (f"cupy has no {name!r}, used in "
                                    f"{sorted(CALLS[name][''])}")
        obj = getattr(obj, part)
    assert callable(obj), name
    used = {kw for kw in CALLS[name] if kw}
    declared = _declared_keywords(obj)
    if declared is not None:
        missing = used - declared
        assert not missing, (f"cupy.{name} takes no keyword {sorted(missing)} (declared: "
                             f"{sorted(declared)}), used in "
                             f"{sorted(set().union(*(CALLS[name][k] for k in missing)))}")


@pytest.mark.parametrize("method", sorted(NDARRAY_METHODS))
def test_cupy_ndarray_has_the_method(method):
    assert hasattr(cupy.ndarray, method), f"cupy.ndarray has no method {method!r}"
    declared = _declared_keywords(getattr(cupy.ndarray, method))
    if declared is not None:
        assert NDARRAY_METHODS[method] <= declared, (method, declared)


def test_keyword_check_catches_a_keyword_cupy_lacks():
    # the check itself: a keyword CuPy's matmul does not take is reported
    declared = _declared_keywords(cupy.subtract)
    assert declared is not None and "out" in declared and "bogus" not in declared
    assert "out" in (_declared_keywords(cupy.take) or set())


@pytest.mark.skipif(bool(cuda_unavailable_reason()),
                    reason=f"no GPU: {cuda_unavailable_reason()}")
@pytest.mark.parametrize("spec", KERNELS, ids=[f"codegen-{s.name}" for s in KERNELS])
def test_generated_kernel_source_is_what_cupy_runs_on_a_gpu(spec):
    """On a GPU: the source tests/test_compile.py compiles in CI is the one CuPy
    generates for a real launch, for each launch layout gpunet declares."""
    from gpunet.backends.testing import nvrtc

    shapes = {"a1": (12,), "a2": (3, 4)}
    for launch in spec.launches:
        kernel = cupy.ElementwiseKernel(spec.in_params, spec.out_params, spec.operation, spec.name)
        args = []
        for desc in launch:
            if desc == "s":
                args.append(np.float32(0.5) if len(args) < 3 else np.int64(5))
            elif desc == "a2s":
                args.append(cupy.ones((1, 4), dtype=np.float32))  # broadcast down the rows
            else:
                args.append(cupy.ones(shapes[desc], dtype=np.float32))
        kernel(*args)
        cupy.cuda.get_current_stream().synchronize()
        generated = nvrtc.elementwise_kernel_source(spec, np.float32, launch)
        assert generated in kernel.cached_codes.values(), (launch, kernel.cached_codes)


def test_one_stream_per_run_so_no_stream_switch_needs_ordering():
    """gpunet works on the thread's current stream only. A second stream (the former
    graph-capture stream) would need every switch ordered by an event or a
    synchronisation; this keeps it from coming back unnoticed."""
    assert not [name for name in CALLS if name.startswith(("cuda.Stream", "cuda.ExternalStream"))]
