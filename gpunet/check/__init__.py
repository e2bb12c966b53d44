"""``gpunet check``: the numerical self-test of a device, against an independent
plain-NumPy version of the book's per-example algorithm (:mod:`.reference`).
"""
