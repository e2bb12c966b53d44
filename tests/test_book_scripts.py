"""Scripts written the way the book's are, run end to end against gpunet.

Each script below is a reader's program in the idiom of the book's ``fig/`` scripts and
chapter 1 (our own scripts, not copies): ``import gpunet as network2`` and ``import
gpunet as mnist_loader`` where the book imports its modules, ``np.random.seed`` for
reproducibility, ``json.dump`` and ``pickle`` of what ``SGD`` returns, per-example
``backprop`` with the book's columns, ``large_weight_initializer`` between runs,
``accuracy(...) / 100.0``, ``load_data()`` arrays for a non-network baseline, and
``save`` / ``load``. Each runs in a fresh Python process in a temporary folder, as a
user runs it (the device is ``auto``'s, so ``GPUNET_DEVICE=strict`` runs them on the
stand-in for a GPU); the test then checks what it printed and wrote. Sizes are small
(hundreds of images, a few epochs) so the whole file takes seconds.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gpunet
from gpunet.check import reference

from conftest import assert_close

LEARNING_RATES = textwrap.dedent('''
    """Cost and accuracy for three learning rates (after the book's multiple_eta.py)."""

    # Standard library
    import json
    import random
    import sys

    # My library
    import gpunet as mnist_loader
    import gpunet as network2

    # Third-party libraries
    import numpy as np

    LEARNING_RATES = [0.025, 0.25, 2.5]
    NUM_EPOCHS = 2

    def run_networks(filename):
        # Make results more easily reproducible
        random.seed(12345678)
        np.random.seed(12345678)
        training_data, validation_data, test_data = mnist_loader.load_data_wrapper()
        results = []
        for eta in LEARNING_RATES:
            print("\\nTrain a network using eta = "+str(eta))
            net = network2.Network([784, 30, 10])
            results.append(
                net.SGD(training_data[:1000], NUM_EPOCHS, 10, eta, lmbda=5.0,
                        evaluation_data=validation_data[:500],
                        monitor_evaluation_accuracy=True,
                        monitor_training_cost=True))
        f = open(filename, "w")
        json.dump(results, f)
        f.close()

    def summarize(filename):
        f = open(filename, "r")
        results = json.load(f)
        f.close()
        for eta, result in zip(LEARNING_RATES, results):
            _, accuracy, training_cost, _ = result
            print("eta = %s: final cost %s, accuracy %s / 500" % (
                eta, training_cost[-1], accuracy[-1]))

    if __name__ == "__main__":
        run_networks(sys.argv[1])
        summarize(sys.argv[1])
''')

OVERFITTING = textwrap.dedent('''
    """Overfitting on a small training set (after the book's overfitting.py)."""

    import json
    import pickle
    import random

    import gpunet as mnist_loader
    import gpunet as network2

    import numpy as np

    def run_network(num_epochs, training_set_size=500, lmbda=0.1):
        # Make results more easily reproducible
        random.seed(12345678)
        np.random.seed(12345678)
        training_data, validation_data, test_data = mnist_loader.load_data_wrapper()
        net = network2.Network([784, 30, 10], cost=network2.CrossEntropyCost())
        net.large_weight_initializer()
        test_cost, test_accuracy, training_cost, training_accuracy \\
            = net.SGD(training_data[:training_set_size], num_epochs, 10, 0.5,
                      evaluation_data=test_data[:1000], lmbda = lmbda,
                      monitor_evaluation_cost=True,
                      monitor_evaluation_accuracy=True,
                      monitor_training_cost=True,
                      monitor_training_accuracy=True)
        f = open("overfitting.json", "w")
        json.dump([test_cost, test_accuracy, training_cost, training_accuracy], f)
        f.close()
        results = net.SGD(training_data[:training_set_size], 1, 10, 0.5,
                          evaluation_data=test_data[:1000],
                          monitor_evaluation_accuracy=True)
        f = open("one_more_epoch.pkl", "wb")
        pickle.dump(results, f)
        f.close()
        net.save("overfitted.json")
        print("Saved; accuracy on the test images: %s / 1000" % net.accuracy(test_data[:1000]))

    if __name__ == "__main__":
        run_network(8)
''')

GRADIENT = textwrap.dedent('''
    """The average gradient of each hidden layer (after the book's generate_gradient.py)."""

    import json
    import math
    from functools import reduce

    import gpunet as mnist_loader
    import gpunet as network2

    import numpy as np

    def main():
        np.random.seed(2718)
        full_td, _, _ = mnist_loader.load_data_wrapper()
        td = full_td[:100]
        net = network2.Network([784, 30, 30, 10])
        net.save("initial_network.json")
        average_gradient = get_average_gradient(net, td)
        norms = [list_norm(avg) for avg in average_gradient[:-1]]
        print("Average gradient for the hidden layers: "+str(norms))
        f = open("average_gradient.json", "w")
        json.dump({"average_gradient": average_gradient, "norms": norms}, f)
        f.close()
        net.SGD(td, 1, 100, 0.1, lmbda=5.0)

    def get_average_gradient(net, training_data):
        nabla_b_results = [net.backprop(x, y)[0] for x, y in training_data]
        gradient = list_sum(nabla_b_results)
        return [(np.reshape(g, len(g))/len(training_data)).tolist()
                for g in gradient]

    def zip_sum(a, b):
        return [x+y for (x, y) in zip(a, b)]

    def list_sum(l):
        return reduce(zip_sum, l)

    def list_norm(l):
        return math.sqrt(sum([x*x for x in l]))

    if __name__ == "__main__":
        main()
''')

MORE_DATA = textwrap.dedent('''
    """Accuracy against training set size, network and a baseline (after more_data.py)."""

    import json
    import random

    import gpunet as mnist_loader
    import gpunet as network2

    import numpy as np

    SIZES = [100, 300]

    def run_networks():
        # Make results more easily reproducible
        random.seed(12345678)
        np.random.seed(12345678)
        training_data, validation_data, test_data = mnist_loader.load_data_wrapper()
        net = network2.Network([784, 30, 10], cost=network2.CrossEntropyCost())
        accuracies = []
        for size in SIZES:
            print("\\n\\nTraining network with data set size %s" % size)
            net.large_weight_initializer()
            num_epochs = 3000 // size
            net.SGD(training_data[:size], num_epochs, 10, 0.5, lmbda = size*0.0001)
            accuracy = net.accuracy(validation_data) / 100.0
            print("Accuracy was %s percent" % accuracy)
            accuracies.append(accuracy)
        f = open("more_data.json", "w")
        json.dump(accuracies, f)
        f.close()

    def run_baselines():
        training_data, validation_data, test_data = mnist_loader.load_data()
        accuracies = []
        for size in SIZES:
            X, y = training_data[0][:size], training_data[1][:size]
            centroids = np.array([X[y == digit].mean(axis=0) for digit in range(10)])
            distances = ((validation_data[0][:, None, :] - centroids[None]) ** 2).sum(axis=2)
            predictions = [int(a) for a in np.argmin(distances, axis=1)]
            accuracy = sum(int(a == y) for a, y in
                           zip(predictions, validation_data[1])) / 100.0
            print("Nearest centroid, %s images: %s percent" % (size, accuracy))
            accuracies.append(accuracy)
        f = open("more_data_baseline.json", "w")
        json.dump(accuracies, f)
        f.close()

    if __name__ == "__main__":
        run_networks()
        run_baselines()
''')

CHAPTER_1 = textwrap.dedent('''
    """Chapter 1's session, as a script: network.py's call style."""

    import gpunet as mnist_loader
    import gpunet as network

    training_data, validation_data, test_data = mnist_loader.load_data_wrapper()
    training_data = list(training_data)[:2000]
    net = network.Network([784, 30, 10], cost=network.QuadraticCost, init="large")
    net.SGD(training_data, 3, 10, 3.0, test_data=test_data)
    print("evaluate: %s" % net.evaluate(test_data))
''')


def run_script(tmp_path, name, source, *args):
    """Write ``source`` as ``name`` in ``tmp_path`` and run it there in a fresh Python."""
    (tmp_path / name).write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, name, *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return run.stdout


def test_learning_rates_saved_as_json_and_repeated_by_np_random_seed(tmp_path):
    out = run_script(tmp_path, "learning_rates.py", LEARNING_RATES, "first.json")
    run_script(tmp_path, "learning_rates.py", LEARNING_RATES, "second.json")
    first = (tmp_path / "first.json").read_text()
    assert first == (tmp_path / "second.json").read_text()  # the same seed, the same numbers
    results = json.loads(first)
    assert len(results) == 3
    for evaluation_cost, evaluation_accuracy, training_cost, training_accuracy in results:
        assert evaluation_cost == [] and training_accuracy == []
        assert len(evaluation_accuracy) == len(training_cost) == 2
        assert all(isinstance(a, int) and 0 <= a <= 500 for a in evaluation_accuracy)
    assert results[1][1][-1] > 350  # eta = 0.25: 1,000 images, 2 epochs, far above chance
    assert results[1][2][-1] < results[1][2][0]  # its training cost falls
    assert out.count("Epoch 1: ") == 3  # network.py's line, as accuracy is monitored
    assert f"eta = 0.25: final cost {results[1][2][-1]}, accuracy {results[1][1][-1]}" in out


def test_overfitting_json_pickle_and_save(tmp_path):
    out = run_script(tmp_path, "overfitting.py", OVERFITTING)
    test_cost, test_accuracy, training_cost, training_accuracy = json.loads(
        (tmp_path / "overfitting.json").read_text())
    assert len(test_cost) == len(test_accuracy) == len(training_cost) == len(training_accuracy) == 8
    assert training_accuracy[-1] > 400 and test_accuracy[-1] > 650  # of 500 and of 1000
    assert training_cost[-1] < training_cost[0]
    # the pickle holds the book's plain tuple: Python without gpunet (or NumPy) reads it
    code = ("import pickle; r = pickle.load(open('one_more_epoch.pkl', 'rb')); "
            "assert type(r) is tuple and len(r) == 4; print(repr(r))")
    bare = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert bare.returncode == 0, bare.stderr
    with open(tmp_path / "one_more_epoch.pkl", "rb") as f:
        results = pickle.load(f)
    assert bare.stdout.strip() == repr(results)
    assert results[0] == results[2] == results[3] == [] and len(results[1]) == 1
    net = gpunet.load(tmp_path / "overfitted.json", device="cpu")
    assert net.cost is gpunet.CrossEntropyCost and net.sizes == [784, 30, 10]
    mnist = gpunet.load_mnist()
    test = (mnist.test[0][:1000], mnist.test[1][:1000])
    assert f"Saved; accuracy on the test images: {results[1][0]} / 1000" in out
    assert abs(net.accuracy(test) - results[1][0]) <= 2  # float32 file vs device rounding


def test_per_example_backprop_average_gradient(tmp_path):
    out = run_script(tmp_path, "gradient.py", GRADIENT)
    saved = json.loads((tmp_path / "average_gradient.json").read_text())
    data = json.loads((tmp_path / "initial_network.json").read_text())
    weights = [np.array(w) for w in data["weights"]]
    biases = [np.array(b) for b in data["biases"]]
    training, _, _ = gpunet.load_data_wrapper()
    X = np.array([x.ravel() for x, _ in training[:100]], dtype=np.float64)
    Y = np.array([y.ravel() for _, y in training[:100]], dtype=np.float64)
    _, nabla_b = reference.gradient(weights, biases, X, Y, "cross-entropy")
    assert len(saved["average_gradient"]) == 3
    for got, total in zip(saved["average_gradient"], nabla_b):
        assert_close(np.array(got), total.ravel() / 100, "float32")  # the network is float32
    norms = saved["norms"]
    assert len(norms) == 2 and norms[0] < norms[1]  # the earlier layer learns slower (ch. 5)
    assert "Average gradient for the hidden layers: " in out and "Epoch 0 training complete" in out


def test_more_data_with_load_data_baseline(tmp_path):
    out = run_script(tmp_path, "more_data.py", MORE_DATA)
    accuracies = json.loads((tmp_path / "more_data.json").read_text())
    baseline = json.loads((tmp_path / "more_data_baseline.json").read_text())
    assert len(accuracies) == len(baseline) == 2
    assert 35.0 < accuracies[0] < 100.0 and 35.0 < accuracies[1] < 100.0  # % of 10,000
    assert 50.0 < baseline[0] < 100.0 and baseline[1] >= baseline[0] - 2.0
    assert f"Accuracy was {accuracies[1]} percent" in out


def test_chapter_1_call_style(tmp_path):
    out = run_script(tmp_path, "chapter1.py", CHAPTER_1)
    lines = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert [line.split(":")[0] for line in lines] == ["Epoch 0", "Epoch 1", "Epoch 2"]
    assert all(line.endswith(" / 10000") for line in lines)
    final = int(lines[-1].split()[2])
    assert final > 4000  # 2,000 images, 3 epochs of the slow quadratic cost: chance is 1,000
    assert f"evaluate: {final}" in out


def test_the_readmes_coming_from_the_book_example(monkeypatch, capsys, wrapped_small):
    """The README's example, run as written on 1,000 training and 200 validation pairs
    (the data size is the only change), twice: the same numbers both times."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("\n## Coming from the book\n", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "import gpunet as network2" in code and "import gpunet as mnist_loader" in code
    monkeypatch.setattr(gpunet, "load_data_wrapper", lambda path=None: wrapped_small)
    runs = []
    for _ in range(2):
        namespace = {"__name__": "__main__"}
        exec(compile(code, "README.md (Coming from the book)", "exec"), namespace)
        runs.append((namespace["evaluation_accuracy"], namespace["training_cost"]))
    assert runs[0] == runs[1] and len(runs[0][0]) == 30 and len(runs[0][1]) == 30
    assert runs[0][0][-1] > 150  # of 200 validation images, after 30 epochs on 1,000
    assert capsys.readouterr().out.count("Epoch 29: ") == 2


@pytest.fixture
def wrapped_small():
    training, validation, test = gpunet.load_data_wrapper()
    return training[:1000], validation[:200], test[:200]
