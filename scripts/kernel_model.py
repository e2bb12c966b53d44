#!/usr/bin/env python3
"""A static performance model of the fused kernel, read from its sm_90 machine code.

No GPU has timed ``backends/kernels/fused_sgd.cu`` yet; its machine code is the speed
signal we have. This script compiles the kernel exactly as CuPy does on an H100
(NVRTC, ``-ftz=true``, ``-arch=sm_90``; :mod:`gpunet.backends.testing.nvrtc`), as the
build the launcher runs for the configuration's mini-batch size
(``-DGPUNET_ROW_TILE``, :func:`gpunet.backends.fused_sgd.build_options`), plus
``-lineinfo`` (source lines only: the instructions are the same), disassembles the
cubin with ``nvdisasm`` (the ``nvidia-cuda-nvdisasm`` wheel of the ``test`` extra, or
one on the PATH), finds every loop of the machine code, counts its instructions by
kind, and times a step from the trip counts of a configuration::

    python scripts/kernel_model.py                 # book, book100, K = 1, 10, 100; f32, f64
    python scripts/kernel_model.py --sizes 784,30,10 -m 10 --dtype float64 --loops

How a loop of machine code gets its trip count. Each hot loop of the source carries a
comment ``// @model NAME PHASE SPEC``:

* ``trips=EXPR``: the loop runs EXPR iterations each time it is entered;
* ``each=VAR in EXPR``: the loop runs once for each value of VAR (e.g. each layer),
  and the loops inside it see VAR;
* ``sig=KIND:EXPR;KIND:EXPR...`` (optional): one iteration of the source loop holds
  EXPR instructions of each KIND (e.g. ``sig=fma:2*R;shared:R``; ``fma`` and ``fp``
  count float64 arithmetic too). A machine loop holding u times as many of each was
  unrolled u times and runs trips // u iterations (a second machine loop for the same
  source loop, the remainder, runs the rest); one that matches no u >= 1 is another
  instance of a template (another tile size) and does not run in this configuration,
  nor do the machine loops around only such loops;
* ``in=NAME`` (optional): the loop sits in a function called inside the loop NAME
  (e.g. a template's loop: each instance is a machine loop of its own);
* ``dram=N`` (optional): each iteration waits on N dependent loads from DRAM (the
  gather of the training rows); elsewhere a global load is taken as a cache hit.

EXPR is arithmetic over the configuration (``sizes``, ``m``, ``k``, ``T``, ``L``, the
layer sizes ``N`` and ``C`` where a loop binds ``l``), the warp ``w`` (the model
counts each warp's iterations: the 32 threads of a warp run together, so a warp takes
as many iterations as its busiest thread) and the helpers of :data:`HELPERS`, which
mirror the kernel's own work split. A machine loop belongs to the innermost annotated
source loop holding most of its instructions (by line); instructions of a machine loop
that are not in a loop nested inside it count once per iteration of it, both sides of
a branch inside a loop body included.

The timing (H100/H200, sm_90): each of an SM's 4 schedulers issues one
warp-instruction a cycle; float64 arithmetic takes its pipe 2 cycles a warp (16 lanes
a scheduler), MUFU (exp, reciprocal) 8 (4 lanes a scheduler). A phase (the code
between two barriers) lasts as long as the larger of (a) its busiest scheduler's
issue cycles, the warps of a block dealt round robin to the schedulers, and (b) its
slowest warp alone: each loop iteration's issue plus the latency of its loads (the
compiler hoists an unrolled body's loads to its top, but does not overlap one
iteration's loads with the previous one's arithmetic), plus a barrier. A step is
the sum of its phases; an epoch is ``n / m`` steps; K networks take one block each,
ceil(K / 132) waves, each no faster than DRAM delivers the K mini-batches. Latencies
and rates are the constants below (from NVIDIA's H100 whitepaper and published
micro-benchmarks of Hopper). Bank conflicts cannot be read from SASS (they depend on
run-time addresses); the model counts those of the backprop's transposed reads from the
shared layout (:func:`transposed_reads`), and a ``bp`` phase lasts at least as long as
the SM's shared memory takes to serve them. Other shared-memory conflicts and bandwidth
are not modelled (see docs/performance.md).

Tooling: not imported by ``import gpunet``. tests/test_kernel_model.py keeps the
book's modelled step under a budget.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

# ---------------------------------------------------------------- the machine (H100/H200)
SMS = 132                 # streaming multiprocessors (H100 SXM, H200)
SCHEDULERS = 4            # warp schedulers (SM sub-partitions) per SM, 1 issue a cycle
CLOCK_HZ = 1.98e9         # boost clock
WARP = 32
DRAM_BYTES_PER_S = 3.35e12  # H100 SXM HBM3 (H200: 4.8e12); the slower, to be safe
PIPE_CYCLES = {"fp64": 2, "mufu": 8}  # cycles of its pipe per warp-instruction
LATENCY = {               # cycles from issue to use
    "shared": 30,         # LDS / STS (Hopper micro-benchmarks: 23-33)
    "generic": 32,        # LD / ST through a generic pointer that lands in shared memory
    "global": 40,         # LDG of small read-only data (layer sizes): an L1 hit
    "local": 30,          # LDL / STL (stack arrays; in L1)
    "l2": 260,            # LD / ST of parameters kept in global memory (L2 hits)
    "dram": 600,          # LDG of rows of a training set far larger than L2
}
L2_BYTES_PER_CYCLE = 64   # one SM's L2 bandwidth when alone ...
L2_BYTES_PER_S = 5.5e12   # ... and all SMs' together (H100 SXM)
BARRIER_CYCLES = 30       # one __syncthreads of a 256-thread block, all warps there

# ---------------------------------------------------------------- instruction kinds
KINDS = ("fma", "fp", "fp64", "mufu", "shared", "global", "generic", "local", "int",
         "pred", "branch", "barrier", "other")
_KIND_OF = {
    "FFMA": "fma", "FMUL": "fp", "FADD": "fp", "FMNMX": "fp", "FSETP": "pred",
    "DFMA": "fp64", "DMUL": "fp64", "DADD": "fp64", "DSETP": "pred",
    "MUFU": "mufu",
    "LDS": "shared", "STS": "shared", "LDSM": "shared",
    "LDG": "global", "STG": "global", "LDGSTS": "global", "LDGDEPBAR": "global",
    "LD": "generic", "ST": "generic",
    "LDL": "local", "STL": "local",
    "ISETP": "pred", "PLOP3": "pred", "P2R": "pred", "R2P": "pred", "VOTE": "pred",
    "BRA": "branch", "BSSY": "branch", "BSYNC": "branch", "EXIT": "branch", "RET": "branch",
    "CALL": "branch", "WARPSYNC": "branch", "BREAK": "branch", "BPT": "branch",
    "BAR": "barrier",
    "NOP": "other", "DEPBAR": "other",
}
_INT_PREFIXES = ("IMAD", "IADD", "LEA", "LOP", "SHF", "IABS", "VIADD", "MOV", "SEL", "I2F",
                 "F2I", "IMNMX", "U", "S2R", "S2UR", "R2UR", "CS2R", "LDC", "PRMT", "FLO",
                 "POPC", "HFMA2", "IMUL", "SHL", "SHR", "F2F", "I2I", "FRND", "BMSK", "BREV",
                 "VIMNMX", "IDP", "ISCADD", "I2FP", "F2IP")

KERNEL_PATH = Path(__file__).resolve().parents[1] / "backends" / "kernels" / "fused_sgd.cu"


def kind_of(opcode: str) -> str:
    """The model's kind of an sm_90 opcode (``FFMA.FTZ`` -> ``fma``)."""
    base = opcode.split(".")[0]
    if base in _KIND_OF:
        return _KIND_OF[base]
    if base.startswith(_INT_PREFIXES):
        return "int"
    return "other"


def memory_kind(kind: str) -> bool:
    return kind in ("shared", "global", "generic", "local")


# ---------------------------------------------------------------- compile, disassemble
def nvdisasm_path() -> str:
    """nvdisasm from the ``nvidia-cuda-nvdisasm`` wheel, else the PATH or CUDA_HOME.

    Raises ``FileNotFoundError`` naming the wheel when there is none.
    """
    try:
        import nvidia  # the namespace package of NVIDIA's wheels

        for root in nvidia.__path__:
            for candidate in sorted(Path(root).glob("cu*/bin/nvdisasm")) + \
                    sorted(Path(root).glob("cuda_nvdisasm/bin/nvdisasm")):
                if os.access(candidate, os.X_OK):
                    return str(candidate)
    except ImportError:
        pass
    found = shutil.which("nvdisasm")
    if found:
        return found
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
    candidate = Path(home) / "bin" / "nvdisasm"
    if os.access(candidate, os.X_OK):
        return str(candidate)
    raise FileNotFoundError("nvdisasm not found: pip install -e '.[test]' (the "
                            "nvidia-cuda-nvdisasm wheel), or put CUDA's bin on the PATH")


def _whole_elf(binary: bytes) -> bytes:
    """The cubin padded to the length its ELF header says (CuPy 14.2's getCUBIN hands
    back one byte less than NVRTC's cubin; nvdisasm refuses a truncated file)."""
    if binary[:4] != b"\x7fELF" or binary[4] != 2:
        raise ValueError("not a 64-bit ELF cubin")
    phoff, shoff = int.from_bytes(binary[32:40], "little"), int.from_bytes(binary[40:48], "little")
    phentsize, phnum, shentsize, shnum = (int.from_bytes(binary[i:i + 2], "little")
                                          for i in (54, 56, 58, 60))
    size = max(phoff + phentsize * phnum, shoff + shentsize * shnum)
    return binary + b"\0" * max(0, size - len(binary))


def compile_kernel(real: str, source: Optional[str] = None, arch: str = "sm_90",
                   extra_options: Sequence[str] = ()) -> bytes:
    """The fused kernel's cubin as CuPy builds it (plus ``-lineinfo``)."""
    from gpunet.backends.testing import nvrtc

    text = KERNEL_PATH.read_text(encoding="utf-8") if source is None else source
    options = nvrtc.RAW_MODULE_OPTIONS + (f"-DGPUNET_REAL={real}", "-lineinfo",
                                          *extra_options)
    compiled = nvrtc.compile_cuda_source(text, arch, options, filename="fused_sgd.cu")
    return _whole_elf(compiled.binary)


def disassemble(cubin: bytes) -> str:
    """nvdisasm's listing of ``cubin``, with source lines (``-g``)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernel.cubin"
        path.write_bytes(cubin)
        run = subprocess.run([nvdisasm_path(), "-c", "-g", str(path)], capture_output=True,
                             text=True)
    if run.returncode != 0:
        raise RuntimeError(f"nvdisasm failed: {run.stderr.strip()}")
    return run.stdout


# ---------------------------------------------------------------- the machine code
@dataclass(frozen=True)
class Instruction:
    index: int
    line: Optional[int]   # source line (None: no line information)
    opcode: str           # e.g. FFMA, LDS.128, BAR.SYNC.DEFER_BLOCKING
    text: str

    @property
    def kind(self) -> str:
        return kind_of(self.opcode)


@dataclass(eq=False)
class MachineLoop:
    """A backward branch and the instructions from its target to it."""

    start: int
    end: int                               # index of the backward branch
    children: list["MachineLoop"] = field(default_factory=list)
    parent: Optional["MachineLoop"] = None
    annotation: Optional["Annotation"] = None
    unroll: int = 1

    def contains(self, other: "MachineLoop") -> bool:
        return self.start <= other.start and other.end <= self.end and self is not other


def parse_sass(listing: str, source_name: str = "fused_sgd.cu") -> list[Instruction]:
    """The kernel's instructions in order, each with its source line."""
    instructions: list[Instruction] = []
    line: Optional[int] = None
    labels: dict[str, int] = {}
    for row in listing.splitlines():
        m = re.match(r'\s*//## File "(.*)", line (\d+)', row)
        if m:
            line = int(m.group(2)) if m.group(1).endswith(source_name) else None
            continue
        m = re.match(r"(\.L_x_\d+):", row)
        if m:
            labels[m.group(1)] = len(instructions)
            continue
        m = re.match(r"\s*/\*[0-9a-f]{4,}\*/\s+(.*?)\s*;", row)
        if m:
            text = m.group(1)
            words = [w for w in text.split() if not w.startswith("@")]
            instructions.append(Instruction(len(instructions), line, words[0], text))
    return instructions


def machine_loops(listing: str, instructions: Sequence[Instruction]) -> list[MachineLoop]:
    """Every backward branch's loop, nested by containment (outermost first)."""
    labels: dict[str, int] = {}
    count = 0
    for row in listing.splitlines():
        m = re.match(r"(\.L_x_\d+):", row)
        if m:
            labels[m.group(1)] = count
        elif re.match(r"\s*/\*[0-9a-f]{4,}\*/\s+", row):
            count += 1
    loops = []
    for ins in instructions:
        m = re.search(r"BRA\s+`\((\.L_x_\d+)\)", ins.text)
        if m and labels[m.group(1)] < ins.index:
            loops.append(MachineLoop(labels[m.group(1)], ins.index))
    loops.sort(key=lambda x: (x.start, -x.end))
    for loop in loops:
        holders = [o for o in loops if o.contains(loop)]
        if holders:
            loop.parent = min(holders, key=lambda o: o.end - o.start)
            loop.parent.children.append(loop)
    return loops


def own_instructions(loop: MachineLoop, instructions: Sequence[Instruction]) -> list[Instruction]:
    """The loop's instructions outside the loops nested in it."""
    inner = [(c.start, c.end) for c in loop.children]
    return [ins for ins in instructions[loop.start:loop.end + 1]
            if not any(s <= ins.index <= e for s, e in inner)]


# ---------------------------------------------------------------- the source's annotations
@dataclass(eq=False)
class Annotation:
    """``// @model NAME PHASE SPEC`` on a source loop: see the module docstring."""

    name: str
    phase: str
    first: int          # source lines of the loop, first..last
    last: int
    trips: Optional[str] = None
    each: Optional[tuple[str, str]] = None
    sig: tuple[tuple[str, str], ...] = ()
    dram: int = 0
    within: Optional[str] = None
    parent: Optional["Annotation"] = None
    children: list["Annotation"] = field(default_factory=list)


_ANNOTATION = re.compile(r"//\s*@model\s+(\S+)\s+(\S+)\s+(.*)$")


def _loop_end(lines: Sequence[str], first: int) -> int:
    """The last line (1-based) of the ``for`` statement starting on line ``first``."""
    text = "\n".join(lines[first - 1:])
    text = re.sub(r"//[^\n]*", lambda m: " " * len(m.group(0)), text)
    i = text.index("for")
    depth, i = 0, text.index("(", i)
    while True:  # the loop header's parentheses
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
        if depth == 0:
            break
    while text[i].isspace():
        i += 1
    if text[i] == "{":
        depth = 0
        while True:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
    else:  # one statement: up to its semicolon (a nested for: its end)
        if text.startswith("for", i):
            return _loop_end(lines, first + text.count("\n", 0, i))
        i = text.index(";", i)
    return first + text.count("\n", 0, i)


def annotations(source: str) -> list[Annotation]:
    """The ``@model`` annotations of ``source``, nested by line ranges."""
    lines = source.splitlines()
    found: list[Annotation] = []
    for number, text in enumerate(lines, 1):
        m = _ANNOTATION.search(text)
        if not m:
            continue
        if "for" not in text.split("//")[0]:
            raise ValueError(f"line {number}: @model must sit on a for statement's line")
        a = Annotation(m.group(1), m.group(2), number, _loop_end(lines, number))
        for item in m.group(3).split():
            key, _, value = item.partition("=")
            if key == "trips":
                a.trips = value
            elif key == "each":
                var, _, iterable = value.partition(":")
                a.each = (var, iterable)
            elif key == "sig":
                pairs = []
                for part in value.split(";"):
                    kind, _, expr = part.partition(":")
                    if kind not in KINDS:
                        raise ValueError(f"line {number}: unknown kind {kind!r} in sig")
                    pairs.append((kind, expr))
                a.sig = tuple(pairs)
            elif key == "dram":
                a.dram = int(value)
            elif key == "in":
                a.within = value
            else:
                raise ValueError(f"line {number}: unknown @model key {key!r}")
        if (a.trips is None) == (a.each is None):
            raise ValueError(f"line {number}: @model needs trips=EXPR or each=VAR:EXPR")
        found.append(a)
    names = {a.name: a for a in found}
    for a in found:
        holders = [o for o in found if o is not a and o.first <= a.first and a.last <= o.last]
        if holders:
            a.parent = max(holders, key=lambda o: o.first)
        elif a.within is not None:
            if a.within not in names:
                raise ValueError(f"line {a.first}: in={a.within}: no loop of that name")
            a.parent = names[a.within]
        if a.parent is not None:
            a.parent.children.append(a)
    return found


def _innermost(notes: Sequence[Annotation], line: Optional[int]) -> Optional[Annotation]:
    if line is None:
        return None
    holding = [a for a in notes if a.first <= line <= a.last]
    return max(holding, key=lambda a: a.first) if holding else None


# ---------------------------------------------------------------- expressions
_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load,
            ast.Constant, ast.Subscript, ast.Compare, ast.IfExp, ast.BoolOp, ast.Tuple,
            ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Div, ast.Mod, ast.USub,
            ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.And, ast.Or)


def evaluate(expr: str, env: dict[str, Any]) -> Any:
    """EXPR of an annotation: arithmetic, comparisons and calls of names in ``env``."""
    tree = ast.parse(expr, mode="eval")
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ValueError(f"@model expression {expr!r}: {type(node).__name__} not allowed")
    return eval(compile(tree, "<@model>", "eval"), {"__builtins__": {}}, env)  # noqa: S307


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def item_rounds(items: int, w: int, T: int) -> int:
    """Iterations warp ``w`` makes of ``for (i = tid; i < items; i += T)``."""
    first = w * WARP
    return 0 if items <= first else cdiv(items - first, T)


def item_rounds_back(items: int, w: int, T: int) -> int:
    """Iterations warp ``w`` makes of ``for (i = T - 1 - tid; i < items; i += T)`` (the
    last threads first)."""
    first = max(0, T - WARP * (w + 1))  # the warp's smallest first i
    return 0 if items <= first else cdiv(items - first, T)


# ---------------------------------------------------------------- the model
@dataclass(frozen=True)
class Config:
    name: str
    sizes: tuple[int, ...]
    m: int
    dtype: str = "float32"
    n: int = 50_000
    K: int = 1
    threads: int = 256


@dataclass
class PhaseCost:
    """One phase of a step: per-kind warp-instructions of its busiest warp, and cycles."""

    name: str
    counts: Counter = field(default_factory=Counter)   # busiest warp's instructions by kind
    issue: float = 0.0         # busiest scheduler's issue (or pipe) cycles
    latency: float = 0.0       # slowest warp's cycles alone
    l2: float = 0.0            # cycles the SM's share of L2 bandwidth needs (parameters)
    barriers: float = 0.0      # barriers in this phase per step
    banks: float = 0.0         # cycles the SM's shared memory needs for the reads whose
                               # bank conflicts are counted (transposed_reads)
    ways: float = 1.0          # their worst bank conflict (1: none)

    @property
    def cycles(self) -> float:
        return (max(self.issue, self.latency, self.l2, self.banks)
                + self.barriers * BARRIER_CYCLES)


@dataclass
class StepModel:
    config: Config
    phases: list[PhaseCost]
    params_in_shared: bool
    loops: list[tuple[str, int, int, Counter, float]]  # name, unroll, length, kinds, warp-0 iterations

    @property
    def step_cycles(self) -> float:
        return sum(p.cycles for p in self.phases)

    @property
    def step_us(self) -> float:
        return self.step_cycles / CLOCK_HZ * 1e6

    @property
    def dram_us(self) -> float:
        """Microseconds DRAM needs per step for the K networks' mini-batches."""
        c = self.config
        item = np.dtype(c.dtype).itemsize
        bytes_ = c.K * c.m * ((c.sizes[0] + c.sizes[-1]) * item + 8)
        return bytes_ / DRAM_BYTES_PER_S * 1e6

    @property
    def epoch_ms(self) -> float:
        c = self.config
        waves = cdiv(c.K, SMS)
        steps = cdiv(c.n, c.m)
        return waves * steps * max(self.step_us, self.dram_us / waves) / 1e3


class KernelModel:
    """The kernel's machine code for one real type, ready to be timed for configurations."""

    def __init__(self, real: str, source: Optional[str] = None,
                 row_tile: Optional[int] = None) -> None:
        """``row_tile``: the launcher's build for that tile (``-DGPUNET_ROW_TILE``, what
        CuPy runs for mini-batches of that tile); ``None``: the build of every tile."""
        self.real = real
        self.row_tile = row_tile
        self.source = KERNEL_PATH.read_text(encoding="utf-8") if source is None else source
        extra = () if row_tile is None else (f"-DGPUNET_ROW_TILE={row_tile}",)
        self.listing = disassemble(compile_kernel(real, self.source, extra_options=extra))
        self.instructions = parse_sass(self.listing)
        self.loops = machine_loops(self.listing, self.instructions)
        self.notes = annotations(self.source)
        self._attribute()

    def _attribute(self) -> None:
        """Each machine loop to its source loop: the backward branch of a loop carries
        the line of its ``for`` statement. A machine loop inside an annotated source
        loop whose own ``for`` has no annotation is an error (its trip count would be
        unknown); loops outside every annotation (the copies in and out of the epoch)
        are left out of the step."""
        by_line = {a.first: a for a in self.notes}
        for loop in self.loops:
            line = self.instructions[loop.end].line
            if line in by_line:
                loop.annotation = by_line[line]
            elif _innermost(self.notes, line) is not None:
                raise ValueError(f"the loop on line {line} of the kernel has no @model "
                                 "annotation (see scripts/kernel_model.py)")

    def _own_counts(self, loop: MachineLoop) -> Counter:
        return Counter(ins.kind for ins in own_instructions(loop, self.instructions))

    def _generic_bytes(self, loop: MachineLoop) -> int:
        """Bytes one thread moves per iteration through generic loads and stores."""
        total = 0
        for ins in own_instructions(loop, self.instructions):
            if ins.kind == "generic":
                width = re.search(r"\.(64|128)\b", ins.opcode)
                total += int(width.group(1)) // 8 if width else 4
        return total

    def time(self, config: Config) -> StepModel:
        from gpunet.backends.fused_sgd import plan_for, row_tile

        if self.row_tile is not None and self.row_tile != row_tile(config.m):
            raise ValueError(f"{config.name}: m = {config.m} runs the build of row tile "
                             f"{row_tile(config.m)}, not this model's {self.row_tile}")
        plan = plan_for(config.sizes, config.m, config.dtype, config.threads, 227 * 1024)
        if plan.why_not():
            raise ValueError(f"{config.name}: the kernel cannot train it: {plan.why_not()}")
        T, sizes = config.threads, list(config.sizes)
        warps = cdiv(T, WARP)
        base = dict(work_split(sizes, config.m, T, plan.partial_capacity,
                               np.dtype(config.dtype).itemsize, plan.params_in_shared),
                    sizes=sizes, m=config.m, k=config.m, T=T, L=len(sizes),
                    layers=len(sizes) - 1, P=plan.n_parameters,
                    params_in_shared=int(plan.params_in_shared), cap=plan.partial_capacity,
                    VW=16 // np.dtype(config.dtype).itemsize, min=min, max=max, range=range,
                    len=len, sum=sum, cdiv=cdiv)
        # generic loads and stores reach the parameters: in shared memory or in L2
        latency_of = {k: LATENCY[k] for k in ("global", "generic", "shared", "local")}
        if not plan.params_in_shared:
            latency_of["generic"] = LATENCY["l2"]
        l2_per_cycle = min(L2_BYTES_PER_CYCLE,
                           L2_BYTES_PER_S / (min(config.K, SMS) * CLOCK_HZ))
        l2_bytes: dict[str, float] = defaultdict(float)
        # (phase, warp) -> kind counts (issue), latency cycles
        counts: dict[str, list[Counter]] = defaultdict(lambda: [Counter() for _ in range(warps)])
        latency: dict[str, list[float]] = defaultdict(lambda: [0.0] * warps)
        barriers: dict[str, float] = defaultdict(float)
        loop_rows: dict[int, tuple[str, int, int, Counter, float]] = {}
        by_note: dict[int, list[MachineLoop]] = defaultdict(list)
        for loop in self.loops:
            if loop.annotation is not None:
                by_note[id(loop.annotation)].append(loop)
        roots = [a for a in self.notes if a.parent is None]

        def unroll(loop: MachineLoop, env: dict[str, Any]) -> int:
            """How many source iterations one iteration of ``loop`` does; 0: this
            machine loop (another template instance) does not run here."""
            note = loop.annotation
            assert note is not None
            if not note.sig:
                return 1
            own = self._own_counts(loop)
            factors = set()
            for kind, expr in note.sig:
                per = evaluate(expr, env)
                have = own[kind] + (own["fp64"] if kind in ("fma", "fp") else 0)
                if per <= 0 or have % per:
                    return 0
                factors.add(have // per)
            return factors.pop() if len(factors) == 1 and 0 not in factors else 0

        def selected(loop: MachineLoop, env: dict[str, Any]) -> bool:
            """Whether ``loop`` runs in this configuration: its signature matches, and
            some loop nested in it runs (if any is nested)."""
            if loop.annotation is not None and unroll(loop, env) == 0:
                return False
            return not loop.children or any(selected(c, env) for c in loop.children
                                            if c.annotation is not None) or all(
                c.annotation is None for c in loop.children)

        def visit(note: Annotation, env: dict[str, Any], entries: float, w: int) -> None:
            """``note``'s loop is entered ``entries`` times (per step, warp w) with env."""
            if note.each is not None:
                var, iterable = note.each
                values = list(evaluate(iterable, env))
                runs = [(dict(env, **{var: v}), 1.0) for v in values]
                trips_per_entry = len(values)
            else:
                trips_per_entry = evaluate(note.trips or "0", env)
                runs = [(env, float(trips_per_entry))]
            for run_env, times in runs:
                phase = note.phase.format(**run_env)
                # this note's machine loops: the main one(s) by unroll, the remainder
                # (a tie: the version holding the inner loops, then the longer one)
                mine = sorted((x for x in by_note[id(note)] if selected(x, run_env)), key=lambda x: (
                    -unroll(x, run_env), -len(x.children), -len(own_instructions(
                        x, self.instructions))))
                left = times if note.each is None else 1.0
                for loop in mine:
                    u = unroll(loop, run_env)
                    iters = left // u if u > 1 else left
                    left -= iters * u
                    own = self._own_counts(loop)
                    for kind, c in own.items():
                        counts[phase][w][kind] += c * iters * entries
                    body = sum(own.values())
                    wait = max([latency_of[k] for k in latency_of if own[k]], default=0)
                    if note.dram:
                        wait = note.dram * LATENCY["dram"]
                    latency[phase][w] += (body + wait) * iters * entries
                    if not plan.params_in_shared:
                        l2_bytes[phase] += self._generic_bytes(loop) * WARP * iters * entries
                    if w == 0:
                        loop_rows[loop.start] = (note.name, u, body, own, iters * entries)
                        barriers[phase] += own["barrier"] * iters * entries
                for child in note.children:
                    visit(child, run_env, entries * times, w)

        for w in range(warps):
            env = dict(base, w=w)
            for root in roots:
                visit(root, env, 1.0, w)

        phases = []
        for name in counts:
            per_warp = counts[name]
            schedulers = [0.0] * SCHEDULERS
            for w, c in enumerate(per_warp):
                issue = sum(c.values())
                schedulers[w % SCHEDULERS] += issue
            pipes = [0.0] * SCHEDULERS
            for w, c in enumerate(per_warp):
                pipes[w % SCHEDULERS] += (c["fp64"] * PIPE_CYCLES["fp64"]
                                          + c["mufu"] * PIPE_CYCLES["mufu"])
            busiest = max(range(warps), key=lambda w: sum(per_warp[w].values()))
            banks, ways = 0.0, 1.0
            bp = re.fullmatch(r"bp(\d+)", name)
            if bp and plan.params_in_shared:
                reads = transposed_reads(sizes, config.m, T, np.dtype(config.dtype).itemsize,
                                         int(bp.group(1)))
                banks, ways = reads.wavefronts, reads.ways
            phases.append(PhaseCost(name, per_warp[busiest],
                                    max(max(schedulers), max(pipes)), max(latency[name]),
                                    l2_bytes[name] / l2_per_cycle, barriers[name], banks, ways))
        return StepModel(config, phases, plan.params_in_shared,
                         [loop_rows[s] for s in sorted(loop_rows)])


# ---------------------------------------------------------------- shared-memory banks
SHARED_BANKS = 32         # banks of 4 bytes; one wavefront serves one word per bank


def wavefronts(byte_addresses: Iterable[int], itemsize: int) -> int:
    """Wavefronts (cycles of the SM's shared memory) one warp-wide load takes: the most
    distinct 4-byte words any bank is asked for (lanes reading the same word share it)."""
    words = {a // 4 + i for a in byte_addresses for i in range(itemsize // 4)}
    per_bank = Counter(w % SHARED_BANKS for w in words)
    return max(per_bank.values(), default=0)


@dataclass(frozen=True)
class BankCount:
    wavefronts: float     # cycles of the SM's shared memory per step for these reads
    ways: float           # the worst read's wavefronts over the fewest its bytes need


def transposed_reads(sizes: Sequence[int], k: int, T: int, itemsize: int, l: int) -> BankCount:
    """Bank conflicts of the backprop's transposed reads ``wT[c * ld + j]`` of layer
    ``l`` (``bp{l}``), with the parameters in shared memory: the lanes of a warp take
    items ``idx = tid, tid + T, ...`` of ``k x C`` (row ``idx / C``, column ``c = idx % C``),
    all at the same ``j``, ``ld`` the working copy's stride
    (:func:`gpunet.backends.fused_sgd.working_stride`). SASS cannot show bank conflicts
    (they depend on addresses at run time), so the model counts them from the layout:
    each warp-wide read takes :func:`wavefronts` cycles of the SM's shared memory, the
    same for every ``j`` (a common offset shifts every lane's bank alike)."""
    from gpunet.backends.fused_sgd import working_stride

    N, C = sizes[l + 1], sizes[l]
    ld = working_stride(N, C, itemsize, True)
    total, worst = 0, 1.0
    for start in range(0, k * C, WARP):  # the warps' iterations (idx = start + lane)
        lanes = range(start, min(start + WARP, k * C))
        addresses = [(i % C) * ld * itemsize for i in lanes]
        fronts = wavefronts(addresses, itemsize)
        fewest = cdiv(len(set(addresses)) * itemsize, 4 * SHARED_BANKS)
        total += fronts * N
        worst = max(worst, fronts / fewest)
    return BankCount(total, worst)


# ---------------------------------------------------------------- the kernel's work split
def work_split(sizes: Sequence[int], k: int, T: int, capacity: int, itemsize: int,
               params_in_shared: bool) -> dict[str, Any]:
    """Helpers for the annotations that mirror the kernel's own work split."""
    layers = len(sizes) - 1
    vw = 16 // itemsize
    from gpunet.backends.fused_sgd import working_offsets

    # the working copy's layout (padded rows in shared memory), as the kernel lays it out
    w_off, P = working_offsets(sizes, itemsize, params_in_shared)
    a_off = [k * sum(sizes[1:l + 1]) for l in range(layers)]
    A = k * sum(sizes[1:])
    xs = P if params_in_shared else 0                   # offsets in reals, from the base
    acts = xs + k * sizes[0] + k * sizes[-1]

    def aligned(offset: int, bytes_: int) -> bool:
        return offset * itemsize % bytes_ == 0

    def row_tile(k: int) -> int:
        from gpunet.backends.fused_sgd import ROW_TILES

        return next(r for r in ROW_TILES if k % r == 0)

    def split_count(n_in: int, tiles: int, outputs: int) -> int:
        """``split_count`` of the kernel: how many slices a layer's input sum is cut into."""
        return max(1, min(T // tiles, n_in // 8, capacity // outputs))

    def a_prev(l: int) -> int:
        return xs if l == 0 else acts + a_off[l - 1]

    def vector(l: int, other: int) -> bool:
        N, C = sizes[l + 1], sizes[l]
        return (C % vw == 0 and N % 2 == 0 and aligned(a_prev(l), 16)
                and aligned(other, 2 * itemsize) and aligned(w_off[l], 2 * itemsize))

    def ff_slices(l: int) -> int:
        N, C = sizes[l + 1], sizes[l]
        return split_count(C, cdiv(N, 2), k * N)

    def ff_width(l: int) -> int:
        ffw = 2 * vw if itemsize == 4 else vw
        return ffw if sizes[l] % ffw == 0 and vector(l, 0) else 1

    def ff_units(l: int) -> int:
        """The most source iterations (of ff_width inputs) a slice's inner loop makes."""
        return cdiv(sizes[l] // ff_width(l), ff_slices(l))

    def up_width(l: int) -> int:
        """Inputs per update item: UPW (four vectors in float32, one in float64) where
        the kernel's vector condition holds, else 1."""
        upw = 4 * vw if itemsize == 4 else vw
        return upw if sizes[l] % upw == 0 and vector(l, acts + A + a_off[l]) else 1

    def up_items(l: int) -> int:
        return sizes[l] // up_width(l) * cdiv(sizes[l + 1], 2)

    # the training set's rows as 16-byte vectors (CuPy's buffers are 256-byte aligned)
    rows_vector = int(sizes[0] % vw == 0 and aligned(xs, 16))
    return {"rounds": item_rounds, "rounds_back": item_rounds_back, "ff_slices": ff_slices, "row_tile": row_tile,
            "rows_vector": rows_vector, "PREFETCH": 8 if itemsize == 4 else 16, "VW": vw,
            "ff_width": ff_width, "ff_units": ff_units, "up_width": up_width,
            "up_items": up_items}


# ---------------------------------------------------------------- the report
BOOK = (784, 30, 10)
BOOK100 = (784, 100, 10)


def standard_configs(dtypes: Iterable[str] = ("float32", "float64")) -> list[Config]:
    out = []
    for dtype in dtypes:
        out.append(Config(f"book {dtype}", BOOK, 10, dtype))
        out.append(Config(f"book100 {dtype}", BOOK100, 10, dtype))
        for K in (10, 100):
            out.append(Config(f"book K={K} {dtype}", BOOK, 10, dtype, K=K))
    return out


def report(models: Sequence[StepModel], loops: bool = False) -> str:
    rows = []
    for s in models:
        c = s.config
        rows.append(f"{c.name}: sizes {list(c.sizes)}, m = {c.m}, K = {c.K}, "
                    f"parameters in {'shared memory' if s.params_in_shared else 'global memory (L2)'}")
        rows.append(f"  {'phase':<14}{'cycles':>9}{'issue':>9}{'alone':>9}{'L2':>7}{'banks':>7}"
                    "  busiest warp's instructions by kind")
        for p in s.phases:
            kinds = " ".join(f"{k}={int(v)}" for k, v in sorted(p.counts.items(),
                                                                   key=lambda kv: -kv[1]) if v)
            ways = f" (transposed reads {p.ways:g}-way)" if p.banks else ""
            rows.append(f"  {p.name:<14}{p.cycles:>9.0f}{p.issue:>9.0f}{p.latency:>9.0f}"
                        f"{p.l2:>7.0f}{p.banks:>7.0f}  {kinds}{ways}")
        rows.append(f"  step {s.step_cycles:.0f} cycles = {s.step_us:.2f} us "
                    f"(DRAM {s.dram_us:.2f} us); epoch {s.epoch_ms:.1f} ms")
        if loops:
            rows.append("  machine loops: annotation, unroll, instructions, warp-0 "
                        "iterations per step, kinds")
            for name, u, body, own, iters in s.loops:
                kinds = " ".join(f"{k}={v}" for k, v in own.most_common())
                rows.append(f"    {name:<14} x{u:<3}{body:>5}{iters:>10.1f}  {kinds}")
        rows.append("")
    return "\n".join(rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="layer sizes, e.g. 784,30,10 (default: the "
                        "standard configurations)")
    parser.add_argument("-m", type=int, default=10, help="mini-batch size")
    parser.add_argument("-K", type=int, default=1, help="networks per launch")
    parser.add_argument("--dtype", choices=("float32", "float64"), action="append")
    parser.add_argument("--loops", action="store_true", help="list every machine loop")
    args = parser.parse_args(argv)
    dtypes = args.dtype or ["float32", "float64"]
    if args.sizes:
        sizes = tuple(int(s) for s in args.sizes.split(","))
        configs = [Config(f"{list(sizes)} {d}", sizes, args.m, d, K=args.K) for d in dtypes]
    else:
        configs = standard_configs(dtypes)
    from gpunet.backends.fused_sgd import row_tile

    models: dict[tuple[str, int], KernelModel] = {}
    timed = []
    for c in configs:
        key = ("float" if c.dtype == "float32" else "double", row_tile(c.m))
        if key not in models:  # the build CuPy runs for this m
            models[key] = KernelModel(key[0], row_tile=key[1])
        timed.append(models[key].time(c))
    print(report(timed, args.loops))
    return 0


if __name__ == "__main__":
    sys.exit(main())
