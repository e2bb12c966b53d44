"""Many networks at once: K networks of the same sizes trained in lockstep.

The book never trains just one network: chapter 1 reports a best of three runs and
chapter 3 compares learning rates ("How to choose a neural network's
hyper-parameters?") and regularization parameters side by side. A
:class:`NetworkStack` trains such a set together, as one batch of stacked matrices
(:mod:`gpunet.engines`: one batched product per layer for all K): each network with its
own seed (its initial
parameters and its per-epoch shuffles drawn exactly as ``Network(sizes, seed=s)``
draws them), its own ``η`` and its own ``λ``. Each network's run is the run a single
:class:`gpunet.Network` with the same settings makes (the same per-epoch accuracy; in
float64 the same parameters to rounding).

>>> stack = NetworkStack([784, 30, 10], seeds=[0, 1, 2], cost="cross-entropy")
>>> histories = stack.SGD(data.training, 30, 10, eta=[0.025, 0.25, 2.5],
...                       test_data=data.test)
>>> nets = stack.networks()  # ordinary gpunet.Network objects
"""

from __future__ import annotations

import copy
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..backends import Array, DeviceLike
from ..io.datasets import check_inputs
from ..model.arguments import check_seeds, is_integer
from ..model.activations import HiddenSpec, layer_activations
from ..model.backprop import feedforward
from ..model.costs import Cost, CrossEntropyCost
from ..model.dropout import evaluation_weights
from ..model.memory import check_network_fits
from ..model.parameters import stacked_layers
from ..training.history import History
from ..training.loop import TrainingData, run_sgd
from ..training.settings import TrainingSettings
from ..training.state import RunState
from .base import NetworkModel
from .network import DTypeLike, InitName, Network, activation_phrase, describe



class NetworkStack(NetworkModel[list[History]]):
    """K networks of the same ``sizes``, cost, init, dtype and activation, one per seed.

    Args:
        sizes: neurons per layer, input layer first, e.g. ``[784, 30, 10]``.
        seeds: one seed per network (distinct or not); network ``k`` starts from the
            parameters ``Network(sizes, init=init, seed=seeds[k])`` starts from and
            shuffles each epoch as that network would.
        cost, init, dtype, device, activation: as for :class:`gpunet.Network`.

    ``parameters`` is one ``(K, P)`` device array whose row ``k`` is network ``k``'s
    flat buffer (:mod:`gpunet.model.parameters`); ``weights[l]`` ``(K, n_{l+1}, n_l)`` and
    ``biases[l]`` ``(K, n_{l+1}, 1)`` are views of it. ``dropout``: each network's rate
    in the last ``SGD``, evaluated as :class:`gpunet.Network` evaluates (``feedforward``,
    and each ``network(k)``, which carries it).
    """

    #: each network's dropout rate in the last SGD (empty: none; see the class)
    dropout: tuple[float, ...] = ()

    def __init__(
        self,
        sizes: Sequence[int],
        seeds: Sequence[int],
        cost: Union[Cost, str] = CrossEntropyCost,
        init: InitName = "default",
        dtype: DTypeLike = "float32",
        device: DeviceLike = "auto",
        activation: HiddenSpec = "sigmoid",
    ) -> None:
        super().__init__(sizes, cost, init, dtype, activation)
        self.seeds = check_seeds(seeds)
        self._use_device(device)
        check_network_fits(self._sizes, self.dtype, count=len(self.seeds),
                           backend=self.backend)  # before allocating (gpunet.model.memory)
        # Each network's generator draws its initial parameters exactly as a Network
        # with that seed does (gpunet.model.initialization, on the host, in float64),
        # and then keeps drawing that network's per-epoch permutations.
        self.rngs = [np.random.default_rng(seed) for seed in self.seeds]
        host = np.stack([self.initial_row(rng) for rng in self.rngs])
        with self._scope():
            self._parameters, self._weights, self._biases = stacked_layers(
                self._sizes, len(self.seeds), self.xp, self.dtype)
            self.backend.copy_from_host(self._parameters, host)
        #: the latest SGD's histories while they grow (completed epochs after Ctrl-C),
        #: and the networks that diverged in it: index -> the epoch (gpunet.training.divergence)
        self.histories: list[History] = []
        self.diverged: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.seeds)

    def __repr__(self) -> str:
        return (f"NetworkStack({self.sizes}, seeds={self.seeds}, cost={self.cost.__name__}, "
                f"init={self.init!r}, dtype={np.dtype(self.dtype).name!r}, "
                f"device={self.backend.device!r}{activation_phrase(self.activation)})")

    # ------------------------------------------------------------ parameters
    @property
    def parameters(self) -> Array:
        """``(K, P)``: row ``k`` is network ``k``'s flat parameter buffer."""
        return self._parameters

    @property
    def weights(self) -> list[Array]:
        """``weights[l]``: ``(K, n_{l+1}, n_l)``, a view of :attr:`parameters`."""
        return self._weights

    @property
    def biases(self) -> list[Array]:
        """``biases[l]``: ``(K, n_{l+1}, 1)``, a view of :attr:`parameters`."""
        return self._biases

    def network(self, k: int) -> Network:
        """Network ``k`` as an ordinary :class:`gpunet.Network` (its own copy).

        It has the stack's sizes, cost, init, dtype and device, network ``k``'s seed,
        parameters and generator state, so training it further continues exactly the
        run a single network would have made.
        """
        if not is_integer(k) or not -len(self) <= k < len(self):
            raise ValueError(f"network index {k!r} is out of range for {len(self)} networks.")
        net = Network(self.sizes, cost=self.cost, init=self.init, dtype=self.dtype,
                      device=self.backend, seed=self.seeds[k], activation=self.activation)
        with self._scope():
            net.set_parameters([w[k] for w in self._weights], [b[k] for b in self._biases])
        net.rng = copy.deepcopy(self.rngs[k])
        net.dropout = self._rate(k)
        return net

    def networks(self) -> list[Network]:
        """Every network of the stack as an ordinary :class:`gpunet.Network`, in order."""
        return [self.network(k) for k in range(len(self))]

    def feedforward(self, a: Any) -> Array:
        """Every network's output for the rows of ``a`` (``(n, n_in)``): ``(K, n, n_out)``.

        Network ``k``'s slice is exactly what ``self.network(k).feedforward(a)`` gives.
        """
        with self._scope():
            if not self.backend.is_device_array(a) or isinstance(a, np.ndarray):
                check_inputs(np.asarray(a), "feedforward")
            X = self.backend.asarray(np.asarray(a, dtype=self.dtype))
            if X.ndim != 2 or X.shape[1] != self.sizes[0]:
                raise ValueError(f"feedforward got an input of shape {tuple(X.shape)}; pass "
                                 f"(n, {self.sizes[0]}) with one example per row.")
            return self.xp.stack([self._forward(k, X) for k in range(len(self))])

    # ------------------------------------------------------------------- SGD
    @property
    def _network_count(self) -> int:
        return len(self.seeds)

    def train(self, data: TrainingData, settings: TrainingSettings,
              state: Optional[RunState] = None, *, checkpoint: Any = None,
              progress: bool = False) -> list[History]:
        """The epochs: :func:`gpunet.training.loop.run_sgd`, the loop of
        :meth:`gpunet.Network.SGD`, with the stack as its K networks
        (:class:`StackTarget`), from ``state`` (a resumed run's; default: the start).

        As for one network: Ctrl-C or SIGTERM inside an epoch puts every network back
        at the last epoch boundary (``self.histories`` holds the completed epochs; the
        checkpoint, if any, is written after every epoch). A network that diverged
        (:mod:`gpunet.training.divergence`) goes back to its last finite epoch and stays
        there, its records from then on are ``{"epoch", "train_seconds", "diverged":
        True}`` (not added to its history), ``self.diverged[k]`` is the epoch it
        diverged in, and the others go on.
        """
        self.dropout = settings.dropout  # each network evaluated scaled by 1 - p from now on
        return run_sgd(StackTarget(self), data, settings, state, checkpoint=checkpoint,
                       progress=progress).histories

    @staticmethod
    def epoch_line(records: list[dict[str, Any]]) -> str:
        """One compact line for an epoch of the stack: each network's accuracy."""
        r0 = next((r for r in records if "evaluation_correct" in r), records[0])
        if "evaluation_correct" in r0:  # a stopped network (early stopping): "stopped"
            scores = " ".join("diverged" if r.get("diverged") else "stopped"
                              if r.get("stopped") else str(r["evaluation_correct"])
                              for r in records)
            return (f"Epoch {r0['epoch']}: {scores} / {r0['evaluation_total']}  "
                    f"({r0['train_seconds']:.2f} s)")
        return f"Epoch {r0['epoch']} training complete ({r0['train_seconds']:.2f} s)"

    # --------------------------------------------------------------- metrics
    # Per network, with the same code and order of operations as Network's own metrics,
    # on network k's views: a stacked network's accuracy is the single network's.
    def _forward(self, k: int, a: Array) -> Array:
        weights = evaluation_weights([w[k] for w in self._weights], self._rate(k))
        return feedforward(self.backend, weights, [b[k] for b in self._biases], a,
                           layer_activations(self))

    def _rate(self, k: int) -> float:
        """Network ``k``'s dropout rate in the last SGD (0: none; see :attr:`dropout`)."""
        return self.dropout[k] if self.dropout else 0.0


class StackTarget:
    """A :class:`NetworkStack` as the training loop's K networks
    (:class:`gpunet.training.loop.Target`): the stacked engines, each network's
    generator, the stack's epoch line and ``callback(records)``, and a diverged network
    left at its last finite epoch while the others go on."""

    stop_on_divergence = False

    def __init__(self, stack: NetworkStack) -> None:
        self.stack = self.model = stack

    def generators(self) -> list[np.random.Generator]:
        return self.stack.rngs

    def permutations(self, n: int) -> np.ndarray:
        return np.stack([rng.permutation(n) for rng in self.stack.rngs])

    def history_engine(self, engine: Any) -> str:
        return f"stacked-{engine.name}"

    def begin(self, state: RunState) -> None:
        self.stack.histories, self.stack.diverged = state.histories, state.diverged

    def description(self) -> dict[str, Any]:
        return {"kind": "stack", "network": describe(self.stack, self.stack.seeds)}

    def report(self, records: list[dict[str, Any]], settings: TrainingSettings) -> None:
        if settings.verbose:
            print(NetworkStack.epoch_line(records), flush=True)
        if settings.callback is not None:
            settings.callback(records)
