"""Files in and out: data sets, digit images, outputs written safely, field checks.

The bottom of the package above :mod:`gpunet.backends`: nothing here knows the model
or training.
"""
