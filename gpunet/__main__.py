"""``python -m gpunet`` is the ``gpunet`` command (:func:`gpunet.cli.console`)."""

import sys

try:  # Ctrl-C while the command's entry itself loads: the line it gives anywhere else
    from .cli import console
except KeyboardInterrupt:
    sys.stderr.write("gpunet: interrupted\n")
    sys.exit(130)

sys.exit(console())
