"""The package's layers (issue 27, docs/architecture.md): imports run one way, down.

``gpunet/`` is a layered package; each layer may import the layers below it and its
own package, never one above it nor a sibling of its own layer:

    cli                       the gpunet command
    book                      the book's programs, reproduction, studies
    bench                     gpunet bench
    sweep                     gpunet sweep
    reports, check            gpunet plot / evaluate; gpunet check and its oracle
    networks                  Network, NetworkStack: the classes users hold
    training                  settings, the loop and its hooks, checkpoints, history
    engines                   how an epoch's steps run
    model                     parameters, backprop, costs, activation, initialization
    io                        data sets, images, network files, outputs, field checks
    backends, _version        the array backends; the version

The package's ``__init__`` and ``__main__`` sit on top (they re-export and run). Counted
are imports anywhere in a file, inside functions too (where circles hide), and ``from
. import name`` of a package's ``__init__``; not those under ``if TYPE_CHECKING:``. The
runtime (every layer up to ``networks``) never imports the tooling: the strict stand-in
and the other test machinery (``gpunet.backends.testing``), the benchmarks, the book's
programs, the self-check and its oracle.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import layout_measures  # noqa: E402  (scripts/layout_measures.py: the review's measures)

LAYERS = (
    ("gpunet._version", "gpunet.backends"),
    ("gpunet.io",),
    ("gpunet.model",),
    ("gpunet.engines",),
    ("gpunet.training",),
    ("gpunet.networks",),
    ("gpunet.reports", "gpunet.check"),
    ("gpunet.sweep",),
    ("gpunet.bench",),
    ("gpunet.book",),
    ("gpunet.cli",),
)
"""The layers, bottom first: a module may import its own layer's package and the
layers below."""

RUNTIME = 5  # up to and including gpunet.networks: what trains, saves and resumes
TOOLING = ("gpunet.backends.testing", "gpunet.check", "gpunet.bench", "gpunet.book")


def package_of(module: str) -> str:
    """The layer package a module belongs to (``gpunet.backends`` for its subpackages
    too; the ``gpunet`` package itself and ``gpunet.__main__`` are the top)."""
    if module.startswith("gpunet.backends.testing"):
        return "gpunet.backends.testing"
    for packages in LAYERS:
        for package in packages:
            if module == package or module.startswith(package + "."):
                return package
    return "gpunet"


def layer_of(module: str) -> int:
    package = package_of(module)
    if package == "gpunet.backends.testing":
        return 0
    for i, packages in enumerate(LAYERS):
        if package in packages:
            return i
    return len(LAYERS)  # the package's __init__ and __main__: the top


def import_graph(root=ROOT) -> dict[str, set[str]]:
    files = layout_measures.python_files(root)
    names = {layout_measures.module_name(p, root): p for p in files}
    known = {name for name, _ in names}
    return {name: layout_measures.imports(path, name, is_package, known)
            for (name, is_package), path in names.items()}


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    """Every import that goes up a layer, to a sibling package of the same layer, from
    the runtime into the tooling, or (below the top) to the package's ``__init__``."""
    found = []
    for module, imported in sorted(graph.items()):
        mine, package = layer_of(module), package_of(module)
        for other in sorted(imported):
            theirs, their_package = layer_of(other), package_of(other)
            if other == "gpunet" and package != "gpunet":
                found.append(f"{module} -> gpunet (the package's __init__)")
            elif package == "gpunet.backends.testing" and their_package == "gpunet.backends":
                continue  # the test machinery sits on the backends it imitates and builds
            elif theirs > mine or (theirs == mine and their_package != package
                                   and package != "gpunet"):
                found.append(f"{module} -> {other} (up or sideways: {package} may not "
                             f"import {their_package})")
            elif (mine <= RUNTIME and package != "gpunet.backends.testing"
                  and their_package.startswith(TOOLING)):
                found.append(f"{module} -> {other} (the runtime imports tooling)")
    return found


def test_imports_run_down_the_layers():
    assert wrong_way(import_graph()) == []


def test_there_are_no_import_circles():
    assert layout_measures.circles(ROOT) == []


def test_the_layout_test_finds_a_planted_circle_and_tooling(tmp_path):
    """The checks themselves: an import inside a function of the model that reaches up
    to the networks (a circle through the layers), and training importing the strict
    stand-in, are both found."""
    graph = import_graph()
    graph["gpunet.model.backprop"] = graph["gpunet.model.backprop"] | {
        "gpunet.networks.network"}
    graph["gpunet.training.loop"] = graph["gpunet.training.loop"] | {
        "gpunet.backends.testing.strict"}
    found = wrong_way(graph)
    assert any(line.startswith("gpunet.model.backprop -> gpunet.networks.network")
               for line in found)
    assert any(line.startswith("gpunet.training.loop -> gpunet.backends.testing.strict")
               and "tooling" in line for line in found)
    # and a real file with a function-level import is read as importing it
    module = tmp_path / "gpunet" / "model" / "planted.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from ..networks.network import Network\n")
    assert "gpunet.networks.network" in layout_measures.imports(
        module, "gpunet.model.planted", False, {"gpunet.networks.network"})


def test_the_top_of_the_package_holds_little_more_than_init_main_and_version():
    top = sorted(p.name for p in (ROOT / "gpunet").glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "_version.py"]


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
    ckpt = os.path.join(d, "run.ckpt")
    net.SGD((X[:200], y[:200]), 1, 10, 3.0, verbose=False, checkpoint=ckpt)
    gpunet.resume(ckpt, (X[:200], y[:200]), epochs=2, device="cpu", verbose=False)
print(" ".join(sorted(m for m in sys.modules if m.startswith("gpunet"))))
"""


def test_training_imports_no_tooling_at_run_time():
    """What really happens: training, saving, loading and resuming a network and a stack
    import none of the tooling (the static check above, seen at run time)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPUNET_DEVICE")}
    run = subprocess.run([sys.executable, "-c", TRAIN_AND_SAVE], capture_output=True,
                         text=True, env=env, timeout=300, cwd=ROOT / "tests")
    assert run.returncode == 0, run.stderr
    modules = run.stdout.split()
    assert "gpunet.networks.network" in modules and "gpunet.networks.stack" in modules
    assert [m for m in modules if m.startswith(TOOLING)] == []
