"""The book's per-example algorithm in plain NumPy: the oracle every engine must match.

This is ``network2.py`` (chapters 1 to 3) almost line by line: column vectors, one
example at a time, ``np.dot``. It shares no code with :mod:`gpunet.backends`,
:mod:`gpunet.model.backprop` or the engines, so it can judge them: the tests use it as their
reference and ``gpunet check`` ships it to users to prove their own device computes
what the book computes. It is slow (a Python loop over examples) and meant for small
inputs.

Shapes are the book's: ``weights[l]`` is ``(n_{l+1}, n_l)``, ``biases[l]`` is
``(n_{l+1}, 1)``, an input ``x`` is ``(n_in, 1)``, a desired output ``y`` is
``(n_out, 1)``.

Chapter 3's other neurons and output layer, by name: ``activation`` (every function
that runs the network takes it) is the hidden layers' neuron, ``"sigmoid"`` (the
default), ``"tanh"`` or ``"relu"``, or a list with one per hidden layer; the output
layer follows the cost: the softmax for ``"log-likelihood"`` (``C = -ln a_y``,
``δ^L = a - y``: chapter 3, "Softmax", eq. 78 to 84), else the sigmoid.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..io.datasets import one_hot as one_hot  # the book's desired outputs, one per row
from ..model.initialization import initial_parameters as _initial_parameters

Params = tuple[list[np.ndarray], list[np.ndarray]]  # (weights, biases)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``σ(z) = 1 / (1 + e^{-z})`` (chapter 1, eq. 3)."""
    with np.errstate(over="ignore"):
        a: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return a


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """``σ'(z) = σ(z)(1 - σ(z))``."""
    s = sigmoid(z)
    prime: np.ndarray = s * (1 - s)
    return prime


def tanh(z: np.ndarray) -> np.ndarray:
    """``tanh(z) = (e^z - e^{-z}) / (e^z + e^{-z})`` (chapter 3, eq. 109)."""
    a: np.ndarray = np.tanh(z)
    return a


def tanh_prime(z: np.ndarray) -> np.ndarray:
    """``tanh'(z) = 1 - tanh²(z)``."""
    prime: np.ndarray = 1 - np.tanh(z) ** 2
    return prime


def relu(z: np.ndarray) -> np.ndarray:
    """``max(0, z)`` (chapter 3, eq. 112)."""
    a: np.ndarray = np.where(z > 0, z, 0.0)
    return a


def relu_prime(z: np.ndarray) -> np.ndarray:
    """1 where ``z > 0``, else 0 (0 at ``z = 0``)."""
    prime: np.ndarray = (z > 0).astype(np.float64)
    return prime


def softmax(z: np.ndarray) -> np.ndarray:
    """``a_j = e^{z_j} / Σ_k e^{z_k}`` over a column (chapter 3, eq. 78)."""
    e = np.exp(z - np.max(z))
    a: np.ndarray = e / np.sum(e)
    return a


NEURONS = {"sigmoid": (sigmoid, sigmoid_prime), "tanh": (tanh, tanh_prime),
           "relu": (relu, relu_prime)}
"""The hidden neurons by name: ``(σ, σ')``."""


def layer_names(activation: "str | Sequence[str]", layers: int, cost: str) -> list[str]:
    """Each of ``layers`` layers' neuron: the hidden layers' ``activation`` (one name for
    all, or one per hidden layer), then the output layer's: ``"softmax"`` for the
    log-likelihood cost, else ``"sigmoid"``."""
    hidden = ([activation] * (layers - 1) if isinstance(activation, str)
              else list(activation))
    if len(hidden) != layers - 1:
        raise ValueError(f"{len(hidden)} activations for {layers - 1} hidden layers")
    return hidden + ["softmax" if cost == "log-likelihood" else "sigmoid"]


def neuron(name: str, z: np.ndarray) -> np.ndarray:
    """Layer output ``σ(z)`` for the neuron ``name`` (the softmax too)."""
    return softmax(z) if name == "softmax" else NEURONS[name][0](z)


def feedforward(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                a: np.ndarray, activation: "str | Sequence[str]" = "sigmoid",
                cost: str = "cross-entropy") -> np.ndarray:
    """``a^l = σ(w^l a^{l-1} + b^l)`` through every layer, for a column ``a`` (σ each
    layer's neuron: :func:`layer_names`)."""
    for w, b, name in zip(weights, biases, layer_names(activation, len(weights), cost)):
        a = neuron(name, np.dot(w, a) + b)
    return a


def output_delta(cost: str, z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``δ^L`` (chapter 2, BP1): ``(a - y) σ'(z)`` (quadratic) or ``a - y``
    (cross-entropy with sigmoid outputs, eq. 66; log-likelihood with softmax outputs,
    eq. 84)."""
    delta: np.ndarray
    if cost == "quadratic":
        delta = (a - y) * sigmoid_prime(z)
    elif cost in ("cross-entropy", "log-likelihood"):
        delta = a - y
    else:
        raise ValueError(f"unknown cost {cost!r}")
    return delta


def backprop(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray,
             y: np.ndarray, cost: str, activation: "str | Sequence[str]" = "sigmoid") -> Params:
    """``(nabla_w, nabla_b)`` for one example: chapter 2's four equations, verbatim
    (each hidden layer's σ' its neuron's)."""
    names = layer_names(activation, len(weights), cost)
    nabla_b = [np.zeros(b.shape) for b in biases]
    nabla_w = [np.zeros(w.shape) for w in weights]
    a, activations, zs = x, [x], []
    for w, b, name in zip(weights, biases, names):
        z = np.dot(w, a) + b
        zs.append(z)
        a = neuron(name, z)
        activations.append(a)
    delta = output_delta(cost, zs[-1], activations[-1], y)
    nabla_b[-1] = delta
    nabla_w[-1] = np.dot(delta, activations[-2].transpose())
    for l in range(2, len(weights) + 1):
        prime = NEURONS[names[-l]][1]
        delta = np.dot(weights[-l + 1].transpose(), delta) * prime(zs[-l])
        nabla_b[-l] = delta
        nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
    return nabla_w, nabla_b


def gradient(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], X: np.ndarray,
             Y: np.ndarray, cost: str, activation: "str | Sequence[str]" = "sigmoid") -> Params:
    """``Σ_x ∂C_x/∂w`` and ``Σ_x ∂C_x/∂b`` over the rows of ``X`` (inputs), ``Y`` (targets)."""
    total_w = [np.zeros(w.shape) for w in weights]
    total_b = [np.zeros(b.shape) for b in biases]
    for x, y in zip(X, Y):
        nw, nb = backprop(weights, biases, x.reshape(-1, 1), y.reshape(-1, 1), cost,
                          activation)
        total_w = [t + d for t, d in zip(total_w, nw)]
        total_b = [t + d for t, d in zip(total_b, nb)]
    return total_w, total_b


def update_mini_batch(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                      X: np.ndarray, Y: np.ndarray, eta: float, lmbda: float, n: int,
                      cost: str, activation: "str | Sequence[str]" = "sigmoid") -> Params:
    """One step (chapter 3, eq. 93, 94): ``w → (1 - ηλ/n) w - (η/m) Σ ∇w``, ``b → b - (η/m) Σ ∇b``."""
    m = len(X)
    nabla_w, nabla_b = gradient(weights, biases, X, Y, cost, activation)
    new_w = [(1 - eta * lmbda / n) * w - (eta / m) * nw for w, nw in zip(weights, nabla_w)]
    new_b = [b - (eta / m) * nb for b, nb in zip(biases, nabla_b)]
    return new_w, new_b


def sgd_epoch(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], X: np.ndarray,
              Y: np.ndarray, permutation: np.ndarray, mini_batch_size: int, eta: float,
              lmbda: float, cost: str, activation: "str | Sequence[str]" = "sigmoid") -> Params:
    """One epoch over ``X[permutation]`` in mini-batches (the last may be smaller)."""
    n = len(X)
    w, b = list(weights), list(biases)
    for s in range(0, n, mini_batch_size):
        idx = permutation[s:s + mini_batch_size]
        w, b = update_mini_batch(w, b, X[idx], Y[idx], eta, lmbda, n, cost, activation)
    return w, b


def sgn(w: np.ndarray) -> np.ndarray:
    """``sgn(w)``: +1, -1, and 0 at 0, the book's convention for L1 (chapter 3, after
    eq. 97)."""
    signs: np.ndarray = np.sign(w)
    return signs


def regularized_gradient(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                         X: np.ndarray, Y: np.ndarray, cost: str, n: int, lmbda: float = 0.0,
                         l1: float = 0.0) -> Params:
    """``∂C/∂w`` and ``∂C/∂b`` of the regularized cost, estimated on the mini-batch
    ``X``, ``Y`` of ``m`` rows: ``(1/m) Σ_x ∂C_x/∂w + (λ/n) w + (λ₁/n) sgn(w)``
    (chapter 3, eq. 87 for L2, eq. 96 for L1) and ``(1/m) Σ_x ∂C_x/∂b`` (biases are
    not regularized)."""
    m = len(X)
    nabla_w, nabla_b = gradient(weights, biases, X, Y, cost)
    grad_w = [nw / m + (lmbda / n) * w + (l1 / n) * sgn(w) for w, nw in zip(weights, nabla_w)]
    return grad_w, [nb / m for nb in nabla_b]


def update_mini_batch_l1(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                         X: np.ndarray, Y: np.ndarray, eta: float, lmbda: float, l1: float,
                         n: int, cost: str) -> Params:
    """One step with L1 beside L2 (chapter 3, eq. 97 with eq. 93's decay):
    ``w → (1 - ηλ/n) w - (ηλ₁/n) sgn(w) - (η/m) Σ ∇w``, ``b → b - (η/m) Σ ∇b``."""
    m = len(X)
    nabla_w, nabla_b = gradient(weights, biases, X, Y, cost)
    new_w = [(1 - eta * lmbda / n) * w - (eta * l1 / n) * sgn(w) - (eta / m) * nw
             for w, nw in zip(weights, nabla_w)]
    new_b = [b - (eta / m) * nb for b, nb in zip(biases, nabla_b)]
    return new_w, new_b


def update_mini_batch_momentum(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                               velocities: Params, X: np.ndarray, Y: np.ndarray, eta: float,
                               mu: float, n: int, cost: str, lmbda: float = 0.0,
                               l1: float = 0.0) -> tuple[Params, Params]:
    """One step of momentum-based gradient descent (chapter 3, "Variations on
    stochastic gradient descent", eq. 107 and 108), per parameter:
    ``v → v' = μ v - η ∇C``, ``w → w' = w + v'``, ``∇C`` the regularized cost's
    (:func:`regularized_gradient`). ``velocities`` is ``(v_w, v_b)``, shaped as the
    parameters; returns the new ``(weights, biases)`` and ``(v_w, v_b)``."""
    grad_w, grad_b = regularized_gradient(weights, biases, X, Y, cost, n, lmbda, l1)
    v_w = [mu * v - eta * g for v, g in zip(velocities[0], grad_w)]
    v_b = [mu * v - eta * g for v, g in zip(velocities[1], grad_b)]
    new_w = [w + v for w, v in zip(weights, v_w)]
    new_b = [b + v for b, v in zip(biases, v_b)]
    return (new_w, new_b), (v_w, v_b)


def sgd_epoch_extended(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                       X: np.ndarray, Y: np.ndarray, permutation: np.ndarray,
                       mini_batch_size: int, eta: float, lmbda: float, cost: str,
                       mu: float = 0.0, l1: float = 0.0,
                       velocities: "Params | None" = None) -> tuple[Params, Params]:
    """One epoch with momentum and L1 (:func:`update_mini_batch_momentum`; its
    velocities start at 0 unless given); the parameters and the velocities after."""
    n = len(X)
    w, b = list(weights), list(biases)
    v = velocities if velocities is not None else (
        [np.zeros(x.shape) for x in weights], [np.zeros(x.shape) for x in biases])
    for s in range(0, n, mini_batch_size):
        idx = permutation[s:s + mini_batch_size]
        (w, b), v = update_mini_batch_momentum(w, b, v, X[idx], Y[idx], eta, mu, n, cost,
                                               lmbda, l1)
    return (w, b), v


def backprop_dropout(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                     x: np.ndarray, y: np.ndarray, cost: str,
                     activation: "str | Sequence[str]", kept: Sequence[np.ndarray]) -> Params:
    """:func:`backprop` of the thinned network (chapter 3, "Dropout"): ``kept[l]`` is
    hidden layer ``l``'s mask, one 0 or 1 per neuron; a removed neuron's activation is
    0 (``a = σ(z) · mask``), so its error is too (``δ = (wᵀ δ) ⊙ σ'(z) ⊙ mask``)."""
    names = layer_names(activation, len(weights), cost)
    masks = [np.asarray(k, dtype=float).reshape(-1, 1) for k in kept]
    nabla_b = [np.zeros(b.shape) for b in biases]
    nabla_w = [np.zeros(w.shape) for w in weights]
    a, activations, zs = x, [x], []
    for l, (w, b, name) in enumerate(zip(weights, biases, names)):
        z = np.dot(w, a) + b
        zs.append(z)
        a = neuron(name, z)
        if l < len(masks):
            a = a * masks[l]
        activations.append(a)
    delta = output_delta(cost, zs[-1], activations[-1], y)
    nabla_b[-1] = delta
    nabla_w[-1] = np.dot(delta, activations[-2].transpose())
    for l in range(2, len(weights) + 1):
        prime = NEURONS[names[-l]][1]
        delta = np.dot(weights[-l + 1].transpose(), delta) * prime(zs[-l]) * masks[-l + 1]
        nabla_b[-l] = delta
        nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
    return nabla_w, nabla_b


def sgd_epoch_dropout(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                      X: np.ndarray, Y: np.ndarray, permutation: np.ndarray,
                      mini_batch_size: int, eta: float, lmbda: float, cost: str,
                      activation: "str | Sequence[str]",
                      masks: Sequence[Sequence[np.ndarray]]) -> Params:
    """One epoch of :func:`sgd_epoch` with dropout: mini-batch ``j`` trains the network
    thinned by ``masks[j]`` (one mask per hidden layer, shared by the mini-batch's
    examples: :func:`backprop_dropout`), with eq. 93 and 94's update."""
    n = len(X)
    w, b = list(weights), list(biases)
    for j, s in enumerate(range(0, n, mini_batch_size)):
        idx = permutation[s:s + mini_batch_size]
        m = len(idx)
        total_w = [np.zeros(x.shape) for x in w]
        total_b = [np.zeros(x.shape) for x in b]
        for i in idx:
            nw, nb = backprop_dropout(w, b, X[i].reshape(-1, 1), Y[i].reshape(-1, 1), cost,
                                      activation, masks[j])
            total_w = [t + d for t, d in zip(total_w, nw)]
            total_b = [t + d for t, d in zip(total_b, nb)]
        w = [(1 - eta * lmbda / n) * x - (eta / m) * g for x, g in zip(w, total_w)]
        b = [x - (eta / m) * g for x, g in zip(b, total_b)]
    return w, b


def dropout_scaled(weights: Sequence[np.ndarray], p: float) -> list[np.ndarray]:
    """The weights a network trained with dropout rate ``p`` is evaluated with: those
    leaving a hidden layer times ``1 - p`` (the book halves them for ``p = 0.5``)."""
    return [w if l == 0 else (1 - p) * w for l, w in enumerate(weights)]


def total_cost(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], X: np.ndarray,
               Y: np.ndarray, cost: str, lmbda: float = 0.0, l1: float = 0.0,
               activation: "str | Sequence[str]" = "sigmoid") -> float:
    """Mean cost over the rows, plus ``λ/(2n) Σ w²`` (chapter 3, eq. 85 and 86) and
    ``(λ₁/n) Σ |w|`` (eq. 95); the log-likelihood's is ``-ln a_y`` (eq. 80)."""
    total = 0.0
    for x, y in zip(X, Y):
        a = feedforward(weights, biases, x.reshape(-1, 1), activation, cost)
        y = y.reshape(-1, 1)
        if cost == "quadratic":
            total += 0.5 * float(np.sum((a - y) ** 2))
        elif cost == "log-likelihood":
            total += -float(np.log(a[int(np.argmax(y)), 0]))
        else:
            total += float(np.sum(np.nan_to_num(-y * np.log(a) - (1 - y) * np.log(1 - a))))
    n = len(X)
    return (total / n + 0.5 * (lmbda / n) * sum(float(np.sum(w * w)) for w in weights)
            + (l1 / n) * sum(float(np.sum(np.abs(w))) for w in weights))


def accuracy(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], X: np.ndarray,
             labels: np.ndarray, activation: "str | Sequence[str]" = "sigmoid",
             cost: str = "cross-entropy") -> int:
    """How many rows of ``X`` the network classifies as ``labels``."""
    return sum(int(np.argmax(feedforward(weights, biases, x.reshape(-1, 1), activation,
                                         cost)) == int(d))
               for x, d in zip(X, labels))


def initial_parameters(sizes: Sequence[int], seed: int, init: str = "default",
                       activation: "str | Sequence[str]" = "sigmoid") -> Params:
    """The parameters ``gpunet.Network(sizes, init=init, seed=seed,
    activation=activation)`` starts from: the one draw every network makes
    (:func:`gpunet.model.initialization.initial_parameters`, from
    ``numpy.random.default_rng(seed)``), a ReLU layer's default weights times √2
    (He's N(0, 2/n_in); the output layer is never ReLU)."""
    hidden = layer_names(activation, len(sizes) - 1, "")[:-1]
    scales = [2.0 ** 0.5 if name == "relu" else 1.0 for name in hidden] + [1.0]
    return _initial_parameters(sizes, np.random.default_rng(seed), init, scales)
