"""Save and load in network2.py's JSON format, both ways, atomically."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import gpunet
from gpunet.check.reference import feedforward as network2_feedforward


def _network2_save(path, sizes, weights, biases, cost_name):
    """What network2.py's Network.save writes (its code, in Python 3)."""
    data = {"sizes": sizes,
            "weights": [w.tolist() for w in weights],
            "biases": [b.tolist() for b in biases],
            "cost": cost_name}
    with open(path, "w") as f:
        json.dump(data, f)


def _network2_load(path):
    """network2.py's module-level load: json, then np.array of the nested lists."""
    with open(path) as f:
        data = json.load(f)
    return (data["sizes"], [np.array(w) for w in data["weights"]],
            [np.array(b) for b in data["biases"]], data["cost"])


def test_round_trip(backend_dtype, tmp_path, mnist):
    """Saved and loaded in the same dtype, every parameter comes back bit for bit."""
    backend, dtype = backend_dtype
    net = gpunet.Network([784, 30, 10], cost="quadratic", dtype=dtype, device=backend, seed=1)
    net.SGD((mnist.training[0][:200], mnist.training[1][:200]), 1, 10, 3.0, verbose=False)
    path = tmp_path / "net.json"
    net.save(path)
    back = gpunet.load(path, device=backend, dtype=dtype)
    assert back.sizes == net.sizes and back.cost is gpunet.QuadraticCost
    for a, b in zip(back.weights + back.biases, net.weights + net.biases):
        np.testing.assert_array_equal(backend.to_host(a), backend.to_host(b))
    X = mnist.test[0][:20]
    np.testing.assert_array_equal(backend.to_host(back.feedforward(X)),
                                  backend.to_host(net.feedforward(X)))


def test_device_and_dtype_are_chosen_at_load_time(tmp_path):
    net = gpunet.Network([784, 10], dtype="float64", device="cpu", seed=1)
    net.save(tmp_path / "n.json")
    back = gpunet.Network.load(tmp_path / "n.json", device="cpu", dtype="float32")
    assert back.weights[0].dtype == np.float32
    np.testing.assert_allclose(back.weights[0], net.weights[0], rtol=1e-7)


def test_a_file_written_by_network2_loads_here(tmp_path, mnist):
    rng = np.random.default_rng(0)
    sizes = [784, 16, 10]
    weights = [rng.standard_normal((16, 784)) / 28, rng.standard_normal((10, 16)) / 4]
    biases = [rng.standard_normal((16, 1)), rng.standard_normal((10, 1))]
    path = tmp_path / "from_network2.json"
    _network2_save(path, sizes, weights, biases, "CrossEntropyCost")
    net = gpunet.load(path, device="cpu", dtype="float64")
    assert net.cost is gpunet.CrossEntropyCost
    x = mnist.test[0][0].reshape(784, 1).astype(np.float64)
    np.testing.assert_allclose(net.feedforward(x), network2_feedforward(weights, biases, x),
                               rtol=1e-12)


def test_a_file_written_here_loads_in_network2(tmp_path, mnist):
    net = gpunet.Network([784, 12, 10], cost="quadratic", dtype="float64", device="cpu", seed=4)
    path = tmp_path / "for_network2.json"
    net.save(path)
    assert set(json.loads(path.read_text())) == {"sizes", "weights", "biases", "cost"}
    sizes, weights, biases, cost = _network2_load(path)
    assert sizes == [784, 12, 10] and cost == "QuadraticCost"
    assert [w.shape for w in weights] == [(12, 784), (10, 12)]
    assert [b.shape for b in biases] == [(12, 1), (10, 1)]
    x = mnist.test[0][1].reshape(784, 1).astype(np.float64)
    np.testing.assert_allclose(network2_feedforward(weights, biases, x), net.feedforward(x),
                               rtol=1e-12)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "net.json"
    gpunet.Network([784, 10], device="cpu", seed=1).save(path)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        gpunet.Network([784, 10], device="cpu", seed=2).save(path)
    assert path.read_bytes() == before  # the old network survives
    assert [p.name for p in tmp_path.iterdir()] == ["net.json"]  # no temporary left


@pytest.mark.parametrize("content, match", [
    ("not json", "not a network2.py JSON file"),
    ('{"sizes": [784, 10]}', "lacks the keys"),
    ('{"sizes": [784, 10], "weights": [[[1.0]]], "biases": [[[0.0]]], "cost": "QuadraticCost"}',
     r"weights\[0\] has 1 item, not 10 items"),
    ('{"sizes": [784, 10], "weights": [], "biases": [], "cost": "HingeCost"}',
     'cost is "HingeCost", not one of'),
    ('{"sizes": [2, 1], "weights": [[[NaN, 1.0]]], "biases": [[[0.0]]]}',
     r"weights\[0\]\[0\]\[0\] is NaN, not a finite number"),
    # each field by its type: a string, a boolean or a list where a number goes, a
    # string where the sizes go, a number where a list goes (old code: the first two
    # were read as 1.5 and 1.0 without a word, the others gave NumPy's message)
    ('{"sizes": [2, 1], "weights": [[["1.5", 1.0]]], "biases": [[[0.0]]]}',
     r"weights\[0\]\[0\]\[0\] is \"1.5\", not a finite number"),
    ('{"sizes": [2, 1], "weights": [[[1.0, 1.0]]], "biases": [[[true]]]}',
     r"biases\[0\]\[0\]\[0\] is true, not a finite number"),
    ('{"sizes": [2, 1], "weights": [[[1.0, [1.0]]]], "biases": [[[0.0]]]}',
     r"weights\[0\]\[0\]\[1\] is \[1.0\], not a finite number"),
    ('{"sizes": "2,1", "weights": [[[1.0, 1.0]]], "biases": [[[0.0]]]}',
     r'sizes is "2,1", not a list of two or more positive layer sizes'),
    ('{"sizes": [2, 1], "weights": 7, "biases": [[[0.0]]]}',
     r"weights is 7, not a list \(1 item\)"),
    ('{"sizes": [2, 1], "weights": [[[1e308, 1.0]]], "biases": [[[0.0]]], "cost": 3}',
     r"cost is 3, not one of"),
    ('{"sizes": [2, 1], "weights": [[[1.0, 1.0]]], "biases": [[[%d]]]}' % 10**400,
     r"biases\[0\]\[0\]\[0\] is 1000.*, not a finite number"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as info:
        gpunet.load(path, device="cpu")
    assert str(info.value).startswith(f"{path}")


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="network file not found"):
        gpunet.load(tmp_path / "nope.json", device="cpu")


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        gpunet.Network([784, 10], device="cpu").save(tmp_path / "no" / "net.json")
