"""The review's measures of the package's middle (issue 27), for any checkout.

    python scripts/layout_measures.py [ROOT]

prints, for the tree at ROOT (default: this checkout):

* import circles among gpunet's modules, counting imports written inside functions and
  ``from . import name`` of a package (its ``__init__``), but not imports under
  ``if TYPE_CHECKING:`` (strongly connected components of more than one module);
* functions over 60 code lines (lines that are not blank, comments or docstrings) and
  their parameter counts;
* backend identity tests outside ``backends/`` (a backend told apart by its name or by
  ``xp is np`` / ``numpy`` identity instead of a declared capability);
* modules at the top of ``gpunet/``;
* library lines: ``gpunet/`` less ``book/`` and ``bench/``, plus ``backends/`` (Python,
  all lines).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

IDENTITY = re.compile(r"""(\.name\s*[!=]=\s*["'](cupy|numpy|strict)["']|["'](cupy|numpy)["']\s*[!=]=\s*\w+\.name"""
                      r"""|\bxp\s+is\s+(not\s+)?np\b|\bis\s+(not\s+)?numpy\b|isinstance\([^)]*(NumpyBackend|CupyBackend)\b)""")


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    """(dotted name, is a package __init__) of a file under gpunet/ or backends/."""
    rel = path.relative_to(root)
    parts = list(rel.with_suffix("").parts)
    if parts[0] == "backends":
        parts = ["gpunet", *parts]
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def python_files(root: Path) -> list[Path]:
    return sorted([*(root / "gpunet").rglob("*.py"), *(root / "backends").rglob("*.py")])


def imports(path: Path, name: str, is_package: bool, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = name if is_package else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from . import sub` imports the submodule (and runs the package's
            # __init__ only where it is one); any other name comes from `mod` itself
            targets = [f"{mod}.{a.name}" for a in node.names]
            if any(t not in known for t in targets):
                targets.append(mod)
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rsplit(".", 1)[0] if "." in t else ""
            if t and t != name:
                found.add(t)
    return found


def circles(root: Path) -> list[list[str]]:
    files = python_files(root)
    names = {module_name(p, root): p for p in files}
    known = {n for n, _ in names}
    graph = {n: imports(p, n, pkg, known) for (n, pkg), p in names.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def code_lines(node: ast.AST, source: list[str]) -> int:
    doc: set[int] = set()
    for sub in ast.walk(node):
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = sub.body
            if body and isinstance(body[0], ast.Expr) and isinstance(
                    getattr(body[0], "value", None), ast.Constant) and isinstance(
                    body[0].value.value, str):
                doc.update(range(body[0].lineno, body[0].end_lineno + 1))
    count = 0
    for n in range(node.lineno, node.end_lineno + 1):
        line = source[n - 1].strip()
        if line and not line.startswith("#") and n not in doc:
            count += 1
    return count


def long_functions(root: Path, limit: int = 60) -> list[tuple[str, int, int]]:
    out = []
    for path in python_files(root):
        source = path.read_text().splitlines()
        tree = ast.parse("\n".join(source))
        name, _ = module_name(path, root)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = code_lines(node, source)
                if n > limit:
                    a = node.args
                    params = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
                    params -= 1 if a.args and a.args[0].arg in ("self", "cls") else 0
                    out.append((f"{name}.{node.name}", n, params))
    return sorted(out, key=lambda t: -t[1])


def identity_tests(root: Path) -> list[str]:
    out = []
    for path in (root / "gpunet").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if IDENTITY.search(line) and not line.strip().startswith("#"):
                out.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return sorted(out)


def library_lines(root: Path) -> int:
    total = 0
    for path in python_files(root):
        rel = path.relative_to(root).parts
        if rel[0] == "gpunet" and len(rel) > 1 and rel[1] in ("book", "bench"):
            continue
        total += len(path.read_text().splitlines())
    return total


def main(root: Path) -> None:
    found = circles(root)
    print(f"import circles: {len(found)}")
    for comp in found:
        print("  " + " <-> ".join(comp))
    longs = long_functions(root)
    print(f"functions over 60 code lines: {len(longs)}")
    for name, n, params in longs:
        print(f"  {name}: {n} lines, {params} parameters")
    ids = identity_tests(root)
    print(f"backend identity tests outside backends/: {len(ids)}")
    for line in ids:
        print("  " + line)
    top = sorted(p.name for p in (root / "gpunet").glob("*.py"))
    print(f"modules at the top of gpunet/: {len(top)} ({', '.join(top)})")
    print(f"library lines (gpunet/ less book/ and bench/, plus backends/): {library_lines(root)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
