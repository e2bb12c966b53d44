"""The classes users hold: :class:`Network` (the book's ``network2.py``) and
:class:`NetworkStack` (K networks at once), saved and loaded, resumed.

They sit above :mod:`gpunet.training` because ``SGD`` runs its loop.
"""
