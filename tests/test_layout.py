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
