"""Divergence: parameters that became NaN or infinite, found at the end of an epoch.

Gradient descent diverges when a step overshoots so far that the next one overshoots
more: η too large for the cost's curvature (chapter 3, "How to choose a neural
network's hyper-parameters?": "if η is too large then the steps will be so large that
they may actually overshoot the minimum"), or, with L2 regularization, a weight decay
factor ``1 - ηλ/n`` (chapter 3, eq. 93) below -1, which multiplies every weight by a
number larger than 1 in size at every step: ``ηλ/n > 2``. Either way the weights
overflow to infinity and then NaN, and a NaN network "classifies" every image as the
digit 0 (argmax of NaN), so its accuracy looks like a number.

The training loops check once per epoch, on the device and with the epoch's metrics
(one flag per network, copied to the host in the same transfer), that every parameter
is finite. A network that is not is rolled back to its last finite epoch and reported
with :class:`DivergenceError` (one network) or marked diverged (a stack's network,
while the others go on).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

import numpy as np

from .progress import epochs_done


def likely_cause(eta: float, lmbda: float, n: int) -> str:
    """The likely cause of a divergence, in words, with the numbers that show it."""
    decay = 1.0 - eta * lmbda / n
    if decay < -1.0:
        return (f"the L2 weight decay factor 1 - ηλ/n = 1 - {eta:g}·{lmbda:g}/{n} = "
                f"{decay:.3g} is below -1, so every step multiplies the weights by more "
                f"than 1 in size; keep ηλ/n below 2: a smaller λ or η, or more training "
                f"data (n = {n})")
    return (f"the learning rate η = {eta:g} is likely too large for this network "
            f"(steps overshoot and grow); try η / 10"
            + (f", and keep ηλ/n = {eta * lmbda / n:.3g} well below 2" if lmbda else ""))


class DivergenceError(FloatingPointError):
    """Training diverged: the parameters became NaN or infinite during ``epoch``.

    The network was rolled back to the end of its last finite epoch (``epochs_done``
    epochs, kept in ``history`` and in the checkpoint, if any), so it can be saved,
    evaluated or resumed from there with other settings.
    """

    def __init__(self, epoch: int, eta: float, lmbda: float, n: int,
                 history: Optional[Any] = None) -> None:
        self.epoch, self.eta, self.lmbda, self.n = epoch, eta, lmbda, n
        self.epochs_done = epoch
        self.history = history
        self.cause = likely_cause(eta, lmbda, n)
        super().__init__(
            f"training diverged with {epochs_done(epoch)}: the parameters became NaN or "
            f"infinite in the next; {self.cause}. The network is kept as it was then.")


@contextlib.contextmanager
def quiet_overflow() -> Iterator[None]:
    """NumPy's overflow and invalid-value warnings off while an epoch runs: a diverging
    network would print one per operation, where the loop reports it once, clearly."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        yield
