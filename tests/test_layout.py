"""The package's layout keeps the library apart from its tooling.

The top of ``gpunet/`` is the model, training, data and I/O; the benchmarks
(``gpunet.bench``) and the test machinery (``gpunet.backends.testing``: the strict
stand-in, the NVRTC compile helper, ptxas resources, the kernel emulator) are
subpackages that training never imports, and the issue targets' judge is not in the
wheel at all (``scripts/gpu_targets.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

TRAIN_AND_SAVE = """
import sys, tempfile, os
import gpunet
data = gpunet.load_mnist()
X, y = data.training
net = gpunet.Network([784, 10, 10], device="cpu", seed=0)
net.SGD((X[:200], y[:200]), 1, 10, 3.0, test_data=(X[:50], y[:50]), verbose=False)
stack = gpunet.NetworkStack([784, 10, 10], [0, 1], device="cpu")
stack.SGD((X[:200], y[:200]), 1, 10, 3.0, verbose=False, workers=1)
with tempfile.TemporaryDirectory() as d:
    net.save(os.path.join(d, "net.json"))
    gpunet.load(os.path.join(d, "net.json"), device="cpu")
print(" ".join(sorted(m for m in sys.modules if m.startswith("gpunet"))))
"""


def test_training_imports_neither_the_benchmarks_nor_the_test_machinery():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPUNET_DEVICE")}
    run = subprocess.run([sys.executable, "-c", TRAIN_AND_SAVE], capture_output=True,
                         text=True, env=env, timeout=300, cwd=ROOT / "tests")
    assert run.returncode == 0, run.stderr
    modules = run.stdout.split()
    assert "gpunet.network" in modules and "gpunet.stack" in modules  # it did train
    tooling = [m for m in modules
               if m.startswith(("gpunet.bench", "gpunet.backends.testing", "gpunet.book"))]
    assert tooling == []


# The model's modules: what trains, saves and resumes a network or a stack.
MODEL = ("network", "stack", "training", "engines", "checkpoint", "resuming", "backprop",
         "parameters", "metrics", "history", "datasets", "costs", "divergence", "signals",
         "outputs", "progress", "memory", "arguments")


def _imports(path, package):
    """The ``gpunet`` modules ``path`` imports at run time (anywhere in the file, inside
    functions too; not under ``if TYPE_CHECKING:``), as dotted names."""
    import ast

    tree = ast.parse(path.read_text())
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only or not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = package.split(".")[:len(package.split(".")) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
        names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
        found.update(names)
    return found


def test_the_model_has_no_import_circles():
    """No import circle among the model's modules, counting the imports written inside
    functions (the way circles are usually hidden): the checkpoint file format imports
    nothing of the model, :mod:`gpunet.resuming` joins the two."""
    root = ROOT / "gpunet"
    graph = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        if not parts or parts[0] not in MODEL:
            continue
        name = ".".join(["gpunet", *parts])
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        top = lambda m: ".".join(m.split(".")[:2])
        graph.setdefault(top(name), set()).update(
            top(m) for m in _imports(path, package)
            if m.startswith("gpunet.") and m.split(".")[1] in MODEL and top(m) != top(name))
    assert not graph["gpunet.checkpoint"] & {"gpunet.network", "gpunet.stack",
                                              "gpunet.training", "gpunet.resuming"}
    state, circle = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                circle.append(trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert circle == [], f"import circles: {circle}"
