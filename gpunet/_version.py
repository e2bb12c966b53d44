"""The version of gpunet, in a module of its own: every layer may import it without
importing the package's ``__init__``."""

__version__ = "0.1.0"
