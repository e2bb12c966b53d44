"""Interleaved A/B of the single-network CPU epoch between two installs of gpunet.

    python scripts/compare_cpu_epoch.py OLD_PYTHON NEW_PYTHON [--rounds 6]

Each round runs, in a fresh process of each interpreter in turn, the book's network
([784, 30, 10], quadratic, η = 3.0, m = 10, float32, device="cpu": the cpu engine) for
3 epochs on the 50,000 training images and takes the median of the last two epochs'
``train_seconds`` (the library's own timer). Prints every round and both medians, and
NEW / OLD. Run it on a quiet machine: interleaving cancels slow drifts of a shared
machine's speed, not another process competing for the cores.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess

ONE_RUN = """
import statistics, gpunet
data = gpunet.load_mnist()
net = gpunet.Network([784, 30, 10], device="cpu", dtype="float32", seed=0,
                     cost="quadratic", init="large")
h = net.SGD(data.training, 3, 10, 3.0, verbose=False)
records = getattr(h, "records", None) or h
print(statistics.median([r["train_seconds"] for r in records][1:]))
"""


def one(python: str) -> float:
    out = subprocess.run([python, "-c", ONE_RUN], capture_output=True, text=True, check=True,
                         cwd="/")
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"old": [], "new": []}
    for r in range(args.rounds):
        for name in ("old", "new"):
            times[name].append(one(getattr(args, name)))
        print(f"round {r + 1}: old {times['old'][-1]:.4f} s  new {times['new'][-1]:.4f} s")
    old, new = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"median: old {old:.4f} s  new {new:.4f} s  new/old {new / old:.3f}")


if __name__ == "__main__":
    main()
