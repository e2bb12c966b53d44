"""How gpunet's messages word what a user should do: install hints and option names.

Install hints. gpunet is not on the package index, so ``pip install "gpunet[plot]"``
fails, and ``pip install -e ".[plot]"`` works only in a checkout, where it also turns a
user's install into an editable one. A hint therefore names the extra and installs the
packages it holds by name, which works however gpunet was installed (from a checkout,
a wheel or in place)::

    the plot extra: pip install "matplotlib>=3.7"

Double quotes, so the line pastes into a POSIX shell, cmd and PowerShell alike.
:data:`EXTRAS` repeats pyproject.toml's extras (tests/test_status_text.py holds them equal).

Option names. A message the library raises may reach a Python user (``device="cpu"``)
or the ``gpunet`` command (``--device cpu``). The command runs inside
:func:`command_wording`; a message names an option through :func:`spelled`, which gives
the command's spelling there and the library's everywhere else.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

#: Each optional extra users install, and the packages it holds (pyproject.toml's
#: ``[project.optional-dependencies]``, less the developers' ``test`` and ``compile``).
EXTRAS: dict[str, tuple[str, ...]] = {
    "cuda12": ("cupy-cuda12x[ctk]>=14.2,<14.3",),
    "cuda13": ("cupy-cuda13x[ctk]>=14.2,<14.3",),
    "plot": ("matplotlib>=3.7",),
    "images": ("pillow>=9",),
    "ray": ("ray>=2.9",),
    "baselines": ("scikit-learn>=1.3",),
    "jax": ("jax>=0.4.30",),
    "bench": ("torch>=2.1", "scikit-learn>=1.3", "jax>=0.4.30"),
    "notebook": ("tqdm>=4.60", "ipywidgets>=8"),
}


def install_hint(extra: str) -> str:
    """``the plot extra: pip install "matplotlib>=3.7"``: the one wording of every hint."""
    packages = " ".join(f'"{p}"' for p in EXTRAS[extra])
    return f"the {extra} extra: pip install {packages}"


#: How to get CuPy with the CUDA libraries it loads (cuBLAS, NVRTC, headers).
CUDA_HINT = (f"install {install_hint('cuda13')} for an NVIDIA driver for CUDA 13, or "
             f"{install_hint('cuda12')} for CUDA 12 (`nvidia-smi` shows the driver's "
             "CUDA version, top right)")

_command = [False]


@contextlib.contextmanager
def command_wording() -> Iterator[None]:
    """Messages made inside name options as the ``gpunet`` command spells them."""
    before = _command[0]
    _command[0] = True
    try:
        yield
    finally:
        _command[0] = before


def spelled(library: str, command: str) -> str:
    """``command`` (``--device cpu``) inside :func:`command_wording`, else ``library``
    (``device="cpu"``)."""
    return command if _command[0] else library
