"""Dropout's masks from a counter-based generator, the same on every engine by construction.

Chapter 3 ("Dropout"): each mini-batch trains with a random half of the hidden neurons
"(temporarily) deleted", and the full network is used afterwards with the weights
outgoing from the hidden neurons halved, since twice as many of them are then active.
gpunet takes a rate ``p`` (the book's is 0.5) for every hidden layer of a network: each
mini-batch step removes each hidden neuron with probability ``p``, the same neurons for
every example of the mini-batch (the book removes neurons, not single activations), and
evaluation scales every weight matrix that leaves a hidden layer by ``1 - p``
(:func:`evaluation_weights`; the book's halving at ``p = 0.5``). The parameters a run
keeps (the network's buffer, checkpoints) are the trained ones, unscaled.

A removed neuron outputs 0 in the feedforward and back-propagates no error (its δ is
0), so neither its incoming nor its outgoing weights nor its bias get a gradient in
that step (an L2 decay still shrinks its weights, as every weight's).

**The masks.** Whether hidden neuron ``i`` of hidden layer ``l`` is kept in step ``j``
of epoch ``e`` is one draw of Philox-4x64-10 (Salmon et al., "Parallel random numbers:
as easy as 1, 2, 3", SC 2011; NumPy's :class:`numpy.random.Philox`, tested against it
bit for bit)::

    key     = (seed mod 2⁶⁴, ⌊seed / 2⁶⁴⌋ mod 2⁶⁴)        the network's seed
    counter = (i, l, j, e)                                  unit, hidden layer, step, epoch
    keep    = philox(counter, key)[0] >= ⌊p · 2⁶⁴⌋           the first 64-bit word

``l`` counts hidden layers from 0 (the first hidden layer), ``j`` the epoch's mini-batch
steps from 0 (the last, smaller mini-batch included), ``e`` the run's epochs from 0 (a
resumed run goes on counting). Nothing else enters, so any engine can compute a mask
where it runs, in any order, and gets the same bits; a network of a
:class:`gpunet.NetworkStack` has its own seed, hence exactly its single run's masks.
The eager and cpu engines draw an epoch's masks here, on the host, in one vectorised
pass (NumPy uint64; the eager engine copies them to its device once an epoch); the
fused kernel draws each step's itself, in its dropout build (``-DGPUNET_DROPOUT=1``:
``gpunet_keep`` in ``backends/kernels/fused_sgd.cu``, CUDA's ``__umul64hi``), from the
key and threshold below and the epoch each launch is given.
(NumPy's ``Philox(counter=c, key=k).random_raw()`` returns the block of counter
``c + 1``: it increments before it draws.) ``p = 0`` keeps every neuron and no engine
draws anything: training is then exactly what it was without dropout.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

MASK64 = (1 << 64) - 1
_M0, _M1 = np.uint64(0xD2E7470EE14C6C93), np.uint64(0xCA5A826395121157)  # Philox4x64
_W0, _W1 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBB67AE8584CAA73B)  # key bumps
_LOW = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)
ROUNDS = 10


def _mulhilo(a: np.uint64, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(high, low)`` 64-bit halves of the 128-bit products ``a · b`` (uint64 arrays):
    the schoolbook product of 32-bit halves, every partial product exact in uint64."""
    a_lo, a_hi = a & _LOW, a >> _32
    b_lo, b_hi = b & _LOW, b >> _32
    lo_lo, hi_lo = a_lo * b_lo, a_hi * b_lo
    lo_hi, hi_hi = a_lo * b_hi, a_hi * b_hi
    middle = (lo_lo >> _32) + (hi_lo & _LOW) + (lo_hi & _LOW)  # < 3 · 2³², no overflow
    high = hi_hi + (hi_lo >> _32) + (lo_hi >> _32) + (middle >> _32)
    with np.errstate(over="ignore"):
        low = a * b  # the low 64 bits: uint64 arithmetic wraps modulo 2⁶⁴
    return high, low


def philox4x64(counter: Sequence[Any], key: Sequence[int]) -> list[np.ndarray]:
    """Philox-4x64-10 of the counters ``counter`` (four uint64 arrays or numbers, which
    broadcast) under ``key`` (two 64-bit integers): the four 64-bit words of each block,
    as uint64 arrays (Random123's ``philox4x64_R(10, ...)``, NumPy's Philox)."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in counter)
    c0, c1, c2, c3 = np.broadcast_arrays(c0, c1, c2, c3)
    k0, k1 = np.uint64(key[0] & MASK64), np.uint64(key[1] & MASK64)
    with np.errstate(over="ignore"):
        for r in range(ROUNDS):
            if r:
                k0, k1 = k0 + _W0, k1 + _W1
            hi0, lo0 = _mulhilo(_M0, c0)
            hi1, lo1 = _mulhilo(_M1, c2)
            c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return [c0, c1, c2, c3]


def key_of(seed: int) -> tuple[int, int]:
    """A network's Philox key from its seed: its low and next 64 bits (seeds below
    2¹²⁸ give distinct keys)."""
    return seed & MASK64, (seed >> 64) & MASK64


def threshold(p: float) -> np.uint64:
    """The 64-bit draw below which a neuron is removed: ``⌊p · 2⁶⁴⌋`` (exact: ``p`` is a
    double in [0, 1) and 2⁶⁴ a power of two), so a neuron goes with probability
    ``⌊p · 2⁶⁴⌋ / 2⁶⁴``, ``p`` to within 2⁻⁶⁴."""
    value: np.uint64 = np.uint64(int(float(p) * 2.0 ** 64))
    return value


def keep(seed: int, p: float, epoch: int, steps: int, widths: Sequence[int],
         first: int = 0) -> list[np.ndarray]:
    """One network's masks for steps ``first`` to ``first + steps - 1`` of epoch
    ``epoch``: per hidden layer ``l`` (of ``widths[l]`` neurons), a ``(steps,
    widths[l])`` boolean array, True where the neuron is kept (the module's formula)."""
    masks = []
    for l, width in enumerate(widths):
        step = np.arange(first, first + steps, dtype=np.uint64).reshape(-1, 1)
        unit = np.arange(width, dtype=np.uint64).reshape(1, -1)
        word = philox4x64((unit, np.uint64(l), step, np.uint64(epoch)), key_of(seed))[0]
        masks.append(word >= threshold(p))
    return masks


def epoch_masks(seeds: Sequence[int], rates: Sequence[float], epoch: int, steps: int,
                widths: Sequence[int], dtype: Any, first: int = 0) -> list[np.ndarray]:
    """K networks' masks for steps ``first`` to ``first + steps - 1`` of an epoch, as
    the engines multiply by them: per hidden layer a ``(steps, K, widths[l])`` host
    array of 1s and 0s in ``dtype`` (network ``k``'s from ``seeds[k]`` and
    ``rates[k]``; a rate of 0: all 1s, nothing drawn)."""
    K = len(seeds)
    masks = [np.ones((steps, K, width), dtype) for width in widths]
    for k, (seed, p) in enumerate(zip(seeds, rates)):
        if p:
            for out, kept in zip(masks, keep(seed, p, epoch, steps, widths, first)):
                out[:, k, :] = kept
    return masks


#: Masks drawn at once, at most (K networks x steps x hidden neurons): a block of steps
#: costs few NumPy calls per step, and its memory (and the generator's temporaries, about
#: ten times as much) stays bounded for a large stack or a long epoch.
BLOCK_MASKS = 1 << 20


class MaskBlocks:
    """K networks' masks, drawn a block of steps at a time (:func:`epoch_masks`) as an
    engine walks through an epoch: :meth:`steps` gives any run of steps, from the block
    in hand or a new one starting there."""

    def __init__(self, seeds: Sequence[int], rates: Sequence[float], widths: Sequence[int],
                 dtype: Any, steps_per_epoch: int) -> None:
        self.seeds, self.rates, self.widths = list(seeds), list(rates), list(widths)
        self.dtype, self.steps_per_epoch = dtype, steps_per_epoch
        self.block = max(1, BLOCK_MASKS // max(1, len(self.seeds) * sum(self.widths)))
        self._held: tuple[int, int, list[np.ndarray]] = (-1, 0, [])

    def steps(self, epoch: int, first: int, count: int) -> list[np.ndarray]:
        """Per hidden layer, the ``(count, K, width)`` masks of steps ``first`` to
        ``first + count - 1`` of epoch ``epoch``."""
        held_epoch, start, masks = self._held
        if held_epoch != epoch or not start <= first or first + count > start + (
                len(masks[0]) if masks else 0):
            length = min(max(self.block, count), self.steps_per_epoch - first)
            masks = epoch_masks(self.seeds, self.rates, epoch, length, self.widths,
                                self.dtype, first)
            self._held = (epoch, first, masks)
            start = first
        return [mask[first - start:first - start + count] for mask in masks]


def steps_in_epoch(n: int, m: int) -> int:
    """The mini-batch steps of an epoch of ``n`` examples in mini-batches of ``m`` (the
    last may be smaller)."""
    return -(-n // min(m, n))


def hidden_widths(sizes: Sequence[int]) -> list[int]:
    """The neurons of each hidden layer."""
    return list(sizes[1:-1])


def seeds_of(params: Any) -> list[int]:
    """Each network's seed, in the rows' order: a :class:`gpunet.NetworkStack`'s
    ``seeds``, a :class:`gpunet.Network`'s ``seed``; ``ValueError`` for networks that
    have none (dropout's masks come from them)."""
    seeds = getattr(params, "seeds", None)
    if seeds is None:
        seed = getattr(params, "seed", None)
        seeds = None if seed is None else [seed]
    if seeds is None:
        raise ValueError("dropout draws its masks from each network's seed; these "
                         "networks have none (build them as gpunet.Network or "
                         "gpunet.NetworkStack).")
    return [int(s) for s in seeds]


def evaluation_weights(weights: Sequence[Any], p: float) -> list[Any]:
    """The weights as a network trained with dropout rate ``p`` is evaluated: every
    matrix that leaves a hidden layer (all but the first) times ``1 - p`` (the book
    halves them for ``p = 0.5``); the first unchanged. ``p = 0``: the same arrays."""
    if not p:
        return list(weights)
    scale = 1.0 - float(p)
    return [w if l == 0 else w * w.dtype.type(scale) for l, w in enumerate(weights)]


def rates_of(settings: Any, K: int) -> tuple[float, ...]:
    """Each network's dropout rate (all 0 for settings without one)."""
    values = tuple(float(v) for v in getattr(settings, "dropout", ()))
    if not values:
        return (0.0,) * K
    return values * K if len(values) == 1 else values
