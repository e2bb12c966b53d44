"""The model: what a network is and computes (chapters 1 to 3).

The flat parameter buffer and its views, feedforward and backpropagation for a
mini-batch, the costs, the activation, the initial parameters, the argument checks and
the memory a network needs. Imports only :mod:`gpunet.backends` and :mod:`gpunet.io`.
"""
