"""From a command's options to what trains: the one mapping ``train`` and ``sweep`` share.

``gpunet train`` passes :func:`loop_keywords` to ``Network.SGD``; ``gpunet sweep`` builds
its :class:`gpunet.sweep.SweepSettings` with them (:func:`sweep_settings`), which every
stack passes to ``NetworkStack.SGD``. So an option in
:data:`gpunet.cli.options.LOOP_OPTIONS` reaches the training loop of both commands
without a line here. The counts both commands take are checked here too, before any work.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Sequence

from ..model.arguments import check_positive_int
from .options import LOOP_OPTIONS, PER_NETWORK

if TYPE_CHECKING:
    from ..sweep.grid import SweepSettings

COUNTS = {"epochs": "--epochs", "batch_size": "--batch-size", "limit": "--limit",
          "stack": "--stack", "workers": "--workers"}
"""The options that are positive integers where given (``None``: not given)."""


def check_counts(args: argparse.Namespace, names: Sequence[str]) -> None:
    """Each count in ``names`` a positive integer (or not given), before any work."""
    for name in names:
        if getattr(args, name) is not None:
            check_positive_int(getattr(args, name), COUNTS[name])


def loop_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """``SGD``'s keyword arguments that come from the options as they are: the step
    engine and every option of :data:`~gpunet.cli.options.LOOP_OPTIONS` (the monitors)."""
    return {"engine": args.engine, **{name: getattr(args, name) for name in LOOP_OPTIONS}}


def check_neurons(args: argparse.Namespace) -> None:
    """``--activation`` against the network's hidden layers (one name for all, or one per
    hidden layer), before any work; one error naming the option."""
    from ..model.activations import checked_hidden

    try:
        checked_hidden(args.activation, len(args.sizes) - 2)
    except ValueError as exc:
        raise ValueError(f"--activation {_shown(args.activation)}: {exc}") from None


def _shown(activation: Any) -> str:
    return activation if isinstance(activation, str) else ",".join(activation)


def network_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """What makes a network besides its device and seed (``Network``'s and
    ``NetworkStack``'s keywords)."""
    return {"cost": args.cost, "init": args.init, "dtype": args.dtype,
            "activation": args.activation}


def sweep_settings(args: argparse.Namespace) -> "SweepSettings":
    """What every network of ``gpunet sweep`` shares, from its options."""
    from ..sweep.grid import SweepSettings

    shared = {name: value for name, value in loop_keywords(args).items()
              if name not in PER_NETWORK}  # μ and λ₁: each network's, from the grid
    return SweepSettings(sizes=tuple(args.sizes), epochs=args.epochs,
                         mini_batch_size=args.batch_size, device=args.device,
                         evaluate=args.evaluate, workers=args.workers,
                         sgd=shared, **network_keywords(args))
