"""A run as a value: :class:`RunState`, what a training run is at an epoch boundary.

Chapter 1's stochastic gradient descent is a deterministic function of the initial
parameters and the shuffles ("Learning with gradient descent"), and every shuffle comes
from a network's host generator. So at an epoch boundary a run of K ≥ 1 networks is:
how many epochs are done, each network's history and generator state, which networks
diverged (and when), and each epoch's training time; with the parameters (which live
on the device, in the networks' own buffer) that is everything a run that never stopped
would have. The loop (:func:`gpunet.training.loop.train`) turns a state into the next
one; a checkpoint (:mod:`gpunet.training.checkpoint`) is a state written down, and
resuming reads one back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .history import History


@dataclass
class RunState:
    """The run of K networks after :attr:`epochs_done` epochs.

    ``histories[k]`` holds network ``k``'s records (a diverged network's end at the
    epoch it diverged in: :attr:`diverged` maps it to that epoch); ``seconds[j]`` is
    epoch ``j``'s training time (the whole stack's); ``rng_states[k]`` is network
    ``k``'s generator state (``bit_generator.state``), its drawn permutations
    included. The histories are the very objects the networks show while the run
    grows (``net.history``, ``stack.histories``), so an interrupted run's completed
    epochs stay reachable.
    """

    epochs_done: int
    histories: list[History]
    rng_states: list[Mapping[str, Any]]
    diverged: dict[int, int] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)

    @classmethod
    def start(cls, generators: Sequence[np.random.Generator],
              histories: Optional[list[History]] = None) -> "RunState":
        """A run about to train its first epoch: no epoch done, an empty history per
        network, each generator as it is now."""
        return cls(0, histories if histories is not None else [History() for _ in generators],
                   [g.bit_generator.state for g in generators])

    @property
    def networks(self) -> int:
        """K, the number of networks in the run."""
        return len(self.histories)

    def training(self) -> list[int]:
        """The networks still training: those that have not diverged."""
        return [k for k in range(self.networks) if k not in self.diverged]
