"""Training: the settings of one SGD call, the loop over epochs, its checkpoint,
history, divergence, signals and progress.
"""
