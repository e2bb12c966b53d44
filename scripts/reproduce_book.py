#!/usr/bin/env python3
"""Reproduce the book's numbers: the same as ``gpunet reproduce`` (see its --help).

    python scripts/reproduce_book.py --out docs            # the committed full run
    python scripts/reproduce_book.py --quick --out /tmp/r  # a smoke run
"""

import sys

from gpunet.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", *sys.argv[1:]]))
