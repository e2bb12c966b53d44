"""``python -m gpunet`` is the ``gpunet`` command (:func:`gpunet.cli.console`)."""

import sys

from .cli import console

sys.exit(console())
