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
class Watch:
    """What a run has seen of one network's evaluation accuracy, for the hooks that
    decide by it (:mod:`gpunet.training.hooks`: early stopping, the learning-rate
    schedule, keeping the best epoch).

    ``best_correct`` is the best accuracy so far and ``best_epoch`` the first epoch that
    reached it (``-1`` and ``0`` before any epoch beat 0 correct: ``network2.py``'s
    ``best_accuracy = 0`` and its strict ``>``); ``eta`` the schedule's η now (``None``:
    the settings' η) and ``eta_changed`` the epoch after which the schedule last changed
    it (``-1``: never).
    """

    best_epoch: int = -1
    best_correct: int = 0
    eta_changed: int = -1
    eta: Optional[float] = None

    def since(self) -> int:
        """The epoch the no-improvement count starts after: the best epoch or the last
        change of η, whichever is later."""
        return max(self.best_epoch, self.eta_changed)

    def as_dict(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch, "best_correct": self.best_correct,
                "eta_changed": self.eta_changed, "eta": self.eta}


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

    Chapter 3's techniques add: :attr:`stopped` (network ``k`` stopped after epoch
    ``j``: early stopping, or the schedule's η at its floor; its history ends there, and
    it trains no more), :attr:`watch` (each network's :class:`Watch`, what the hooks that
    decide by accuracy have seen), and two ``(K, P)`` arrays in the parameters' flat
    layout: :attr:`velocity` (momentum's velocities) and :attr:`best_parameters` (each
    network's best epoch, ``keep_best``). The loop keeps those two on the device while it
    runs; a checkpoint read back holds them as host arrays, which the loop puts back.
    """

    epochs_done: int
    histories: list[History]
    rng_states: list[Mapping[str, Any]]
    diverged: dict[int, int] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    stopped: dict[int, int] = field(default_factory=dict)
    watch: list[Watch] = field(default_factory=list)
    velocity: Any = None
    best_parameters: Any = None

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
        """The networks still training: those that have neither diverged nor stopped."""
        return [k for k in range(self.networks)
                if k not in self.diverged and k not in self.stopped]

    def watched(self) -> list[Watch]:
        """Each network's :class:`Watch` (made fresh for a run that has none yet)."""
        if len(self.watch) != self.networks:
            self.watch = [Watch() for _ in range(self.networks)]
        return self.watch

    def etas(self, eta: Sequence[float]) -> list[float]:
        """The η each network trains its next epoch with, from the settings' ``eta``:
        the schedule's where it changed it, 0 for a stopped network (frozen: its update
        is the identity on every engine)."""
        watch = self.watched()
        rates = []
        for k in range(self.networks):
            now = watch[k].eta
            rates.append(0.0 if k in self.stopped else float(eta[k] if now is None else now))
        return rates
