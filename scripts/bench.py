#!/usr/bin/env python3
"""Benchmark gpunet against its peers: the same as ``gpunet bench`` (see its --help).

    python scripts/bench.py                          # everything available, full MNIST
    python scripts/bench.py --configs book --impl gpunet-numpy-f32,torch-cpu
    python scripts/bench.py --quick --out /tmp/b     # a smoke run
"""

import sys

from gpunet.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
