"""``python -m gpunet`` is the ``gpunet`` command."""

import sys

from .cli import main

sys.exit(main())
