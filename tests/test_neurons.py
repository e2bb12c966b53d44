"""Chapter 1's neuron models: NAND, the adder, scaling, and the sigmoid limit."""

from __future__ import annotations

import itertools

import pytest

from gpunet.book.neurons import (NeuronNetwork, Perceptron, SigmoidNeuron, nand,
                                 one_bit_adder)

INPUTS = list(itertools.product([0, 1], repeat=2))


def test_nand_perceptron():
    assert [nand().output(x) for x in INPUTS] == [1, 1, 1, 0]


def test_one_bit_adder():
    adder = one_bit_adder()
    for x1, x2 in INPUTS:
        assert adder([x1, x2]) == [x1 ^ x2, x1 & x2]


def test_output_is_zero_exactly_at_the_threshold():
    assert Perceptron([1, -1], 0).output([1, 1]) == 0
    assert Perceptron([1, -1], 0).output([1, 0]) == 1


@pytest.mark.parametrize("c", [0.01, 0.5, 3.0, 1e6])
def test_scaling_a_perceptron_network_changes_nothing(c):
    adder = one_bit_adder()
    scaled = adder.scaled(c)
    for x in INPUTS:
        assert scaled(x) == adder(x)
    assert scaled.neurons["n1"][0].bias == pytest.approx(3 * c)


def test_sigmoid_network_with_large_c_behaves_like_the_perceptrons():
    adder = one_bit_adder()
    sigmoid_adder = adder.as_sigmoid()
    for x in INPUTS:
        # small c: the sigmoid network is far from the perceptrons
        assert max(abs(s - p) for s, p in zip(sigmoid_adder(x), adder(x))) > 1e-3
        # large c: it is the perceptron network, to within e^-c-ish
        assert sigmoid_adder.scaled(100.0)(x) == pytest.approx(adder(x), abs=1e-12)


def test_sigmoid_gives_one_half_where_w_dot_x_plus_b_is_zero():
    net = NeuronNetwork({"edge": (SigmoidNeuron([1, -1], 0), [0, 1])}, outputs=["edge"])
    for c in (1.0, 100.0, 1e6):
        assert net.scaled(c)([1, 1]) == [0.5]
    perceptron = NeuronNetwork({"edge": (Perceptron([1, -1], 0), [0, 1])}, outputs=["edge"])
    assert perceptron([1, 1]) == [0]  # where the two differ, as the book says


def test_sigmoid_neuron_output():
    assert SigmoidNeuron([2.0], -1.0).output([0.5]) == 0.5
    assert 0.0 < SigmoidNeuron([-2, -2], 3).output([1, 1]) < 0.5


def test_misuse_is_explained():
    with pytest.raises(ValueError, match="has 2 inputs, got 3"):
        nand().output([1, 0, 1])
    with pytest.raises(ValueError, match="list neurons after their sources"):
        NeuronNetwork({"a": (nand(), [0, "b"]), "b": (nand(), [0, 1])}, outputs=["a"])([0, 1])
