"""Resuming: a checkpoint (:mod:`gpunet.training.checkpoint`) back into a network or a
stack, trained on to the end of its run.

Chapter 1's SGD is a deterministic function of the initial parameters and the shuffles,
so the network (or stack) rebuilt from a checkpoint, its generators set to the saved
states, and trained on from the checkpoint's :class:`~gpunet.training.state.RunState`
with the run's settings through the same loop (:func:`gpunet.training.loop.run_sgd`)
gives bit for bit the run that never stopped (same device and dtype). This module joins
the checkpoint file (which knows nothing of the classes) and the classes.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from ..model.arguments import check_path, is_integer
from ..backends import DeviceLike
from ..training.checkpoint import Checkpoint, CheckpointWriter, PathLike, load_checkpoint
from ..io.datasets import as_examples
from ..training.settings import TrainingSettings
from ..training.history import History
from .network import Network
from .stack import NetworkStack
from ..training.loop import TrainingData


def network_from(saved: Checkpoint, device: DeviceLike = "auto") -> Network:
    """The network as of the checkpoint, on ``device``, generator state included."""
    if saved.kind != "network":
        raise ValueError(f"{saved.path} is a checkpoint of {len(saved.parameters)} stacked "
                         "networks, not of one network; resume it as a stack.")
    s = saved.network_settings
    net = Network(s["sizes"], cost=s["cost"], init=s["init"], dtype=s["dtype"],
                  device=device, seed=s["seed"], activation=s.get("activation", "sigmoid"))
    _set_state(saved, net, saved.parameters, [net.rng])
    return net


def stack_from(saved: Checkpoint, device: DeviceLike = "auto") -> NetworkStack:
    """The stack as of the checkpoint, on ``device``, every generator's state included;
    its ``histories`` and ``diverged`` are the run's so far."""
    if saved.kind != "stack":
        raise ValueError(f"{saved.path} is a checkpoint of one network, not of a stack; "
                         "resume it as a network.")
    s = saved.network_settings
    stack = NetworkStack(s["sizes"], s["seeds"], cost=s["cost"], init=s["init"],
                         dtype=s["dtype"], device=device,
                         activation=s.get("activation", "sigmoid"))
    _set_state(saved, stack, saved.parameters, stack.rngs)
    stack.histories, stack.diverged = saved.histories, saved.diverged
    return stack


def _set_state(saved: Checkpoint, model: Any, parameters: Any,
               generators: list[Any]) -> None:
    """``model``'s parameters and generators as the checkpoint has them."""
    with model.backend.scope():
        model.parameters[...] = model.backend.asarray(
            parameters.astype(model.dtype, copy=False))
    for rng, state in zip(generators, saved.meta["rngs"]):
        rng.bit_generator.state = state


def _settings(saved: Checkpoint, epochs: Optional[int], **asked: Any) -> TrainingSettings:
    """The run's settings as the checkpoint keeps them, until ``epochs`` in all (checked
    as ``SGD`` checks its own: a positive integer, at least the epochs done)."""
    training = saved.training
    if is_integer(epochs):
        saved.total_epochs(epochs)  # at least the epochs done, a message saying how many
    return TrainingSettings(**{**training, **asked,
                               "epochs": training["epochs"] if epochs is None else epochs})


def _data(saved: Checkpoint, sizes: list[int], training_data: Any,
          evaluation_data: Any) -> TrainingData:
    """The resumed run's data, checked to be the checkpointed run's."""
    train = as_examples(training_data, sizes[0], sizes[-1], "training_data")
    evaluation = (None if evaluation_data is None else
                  as_examples(evaluation_data, sizes[0], sizes[-1], "evaluation_data"))
    saved.check_data(train, evaluation, evaluation is not None)
    return TrainingData(train, evaluation)


def continue_network(saved: Checkpoint, net: Network, training_data: Any,
                     evaluation_data: Any = None, *, epochs: Optional[int] = None,
                     checkpoint: Any = None, verbose: bool = True,
                     callback: Optional[Callable[[dict[str, Any]], None]] = None,
                     progress: bool = False) -> History:
    """Train ``net`` (from :func:`network_from`) on from ``saved``; see :func:`resume`."""
    settings = _settings(saved, epochs, verbose=verbose, callback=callback)
    data = _data(saved, net.sizes, training_data, evaluation_data)
    with net.backend.scope():  # the network's device current, as in SGD
        return net.train(data, settings, saved.state(), checkpoint=checkpoint,
                         progress=progress)


def continue_stack(saved: Checkpoint, stack: NetworkStack, training_data: Any,
                   evaluation_data: Any = None, *, epochs: Optional[int] = None,
                   checkpoint: Any = None, verbose: bool = True,
                   callback: Optional[Callable[[list[dict[str, Any]]], None]] = None,
                   progress: bool = False, workers: Optional[int] = None) -> list[History]:
    """Train ``stack`` (from :func:`stack_from`) on from ``saved``; see :func:`resume`."""
    settings = _settings(saved, epochs, verbose=verbose, callback=callback, workers=workers)
    data = _data(saved, stack.sizes, training_data, evaluation_data)
    with stack.backend.scope():
        return stack.train(data, settings, saved.state(), checkpoint=checkpoint,
                           progress=progress)


def resume(path: PathLike, training_data: Any, evaluation_data: Any = None, *,
           epochs: Optional[int] = None, device: DeviceLike = "auto",
           checkpoint: Union[None, PathLike, CheckpointWriter] = "same",
           verbose: bool = True, callback: Optional[Callable[[Any], None]] = None,
           progress: bool = False) -> Union[Network, NetworkStack]:
    """Continue the run saved in checkpoint ``path`` until ``epochs`` epochs in all.

    ``training_data`` (and ``evaluation_data`` if the run monitored it) must be the
    run's own data; its size and labels are checked against the checkpoint. ``epochs``
    defaults to the run's planned total; a larger number extends the run, and the result
    equals a run trained that long from the start. ``device`` may differ from the
    original run's. New checkpoints go on to ``path`` (``checkpoint="same"``), to
    another path, or nowhere (``None``). Every argument is checked as ``SGD`` checks
    its own before anything is trained; the settings and the data before the network
    is rebuilt.

    Returns the network; ``net.history`` holds every epoch, those before the checkpoint
    included. Ctrl-C behaves as in :meth:`Network.SGD`. A checkpoint of a
    :class:`gpunet.NetworkStack` (``NetworkStack.SGD(checkpoint=...)``) gives back the
    stack, its ``histories`` every epoch of every network (``callback`` then gets the
    K records of an epoch, as in :meth:`gpunet.NetworkStack.SGD`).
    """
    saved = load_checkpoint(check_path(path, "path"))
    settings = _settings(saved, epochs, verbose=verbose, callback=callback)
    if isinstance(checkpoint, str) and checkpoint == "same":
        checkpoint = CheckpointWriter(saved.path, saved.run, arrays=saved.arrays)
    data = _data(saved, saved.network_settings["sizes"], training_data, evaluation_data)
    model = stack_from(saved, device) if saved.kind == "stack" else network_from(saved, device)
    with model.backend.scope():
        model.train(data, settings, saved.state(), checkpoint=checkpoint, progress=progress)
    return model
