"""The README's library example runs as written, pasted into a file.

The code block is run verbatim in a fresh folder, with one substitution outside it:
``gpunet.load_mnist`` returns the first 500 training and 200 validation and test
images. As written the example trains two networks for 30 epochs on 50,000 images
(minutes on a shared 2-core CI machine); the subset runs every line, every call and
the same code paths in about two seconds. The data size is the only thing changed.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

import gpunet

README = Path(__file__).resolve().parents[1] / "README.md"


def library_example() -> str:
    """The first ``python`` code block under the README's "The library" heading."""
    text = README.read_text()
    section = text.split("\n## The library\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no ```python block under '## The library' in README.md"
    return match.group(1)


def _subset(data: gpunet.MNIST) -> gpunet.MNIST:
    cut = lambda part, n: (part[0][:n], part[1][:n])  # noqa: E731
    return dataclasses.replace(data, training=cut(data.training, 500),
                               validation=cut(data.validation, 200), test=cut(data.test, 200))


def test_the_library_example_runs_as_written(tmp_path, monkeypatch, capsys, mnist):
    load_mnist = gpunet.load_mnist
    monkeypatch.setattr(gpunet, "load_mnist",
                        lambda path=None: _subset(mnist if path is None else load_mnist(path)))
    monkeypatch.chdir(tmp_path)
    code = library_example()
    namespace = {"__name__": "__main__"}
    exec(compile(code, "README.md (The library)", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Epoch 29: " in out and out.count(" / 200") >= 30, out[-500:]
    assert (tmp_path / "net.json").is_file()
    net = namespace["net"]
    assert isinstance(net, gpunet.Network) and net.sizes == [784, 30, 10]
    assert net.weights[0].dtype == np.float64
    assert len(namespace["ev_acc"]) == 30 and len(namespace["tr_cost"]) == 30
    assert namespace["ev_acc"][-1] > 120  # 500 images, 30 epochs: far above chance (20)


def test_the_cuda_line_is_marked_as_such():
    """A pasted example must not fail on a laptop without a GPU: CUDA is a comment."""
    for line in library_example().splitlines():
        if 'device="cuda' in line:
            assert line.lstrip().startswith("#") and "CUDA only" in line, line
