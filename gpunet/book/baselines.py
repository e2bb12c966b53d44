"""The book's baselines for MNIST (chapter 1, "Implementing our network to classify digits"): average darkness, and an SVM.

Both report the number of test images classified correctly, out of 10,000.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends.hints import install_hint


class AverageDarkness:
    """Guess the digit whose mean darkness on the training data is nearest.

    Darkness is the sum of an image's pixel values (ink = 1). This is the book's
    ``mnist_average_darkness.py``: about 22% on the test set, twice chance.
    """

    def fit(self, images: np.ndarray, labels: np.ndarray) -> "AverageDarkness":
        darkness = np.asarray(images, dtype=np.float64).sum(axis=1)
        labels = np.asarray(labels)
        self.digits_ = np.unique(labels)
        self.mean_darkness_ = np.array([darkness[labels == d].mean() for d in self.digits_])
        return self

    def predict(self, images: np.ndarray) -> np.ndarray:
        if not hasattr(self, "mean_darkness_"):
            raise ValueError("call fit(images, labels) before predict.")
        darkness = np.asarray(images, dtype=np.float64).sum(axis=1)
        nearest = np.abs(darkness[:, None] - self.mean_darkness_[None, :]).argmin(axis=1)
        digits: np.ndarray = self.digits_[nearest]
        return digits

    def score(self, images: np.ndarray, labels: np.ndarray) -> int:
        """Number classified correctly."""
        return int(np.sum(self.predict(images) == np.asarray(labels)))


def svm_correct(training: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                **svc_options: Any) -> int:
    """Train scikit-learn's ``SVC`` (default settings, as the book) and count correct.

    Needs scikit-learn (the ``baselines`` extra). On the full 50,000
    training images this takes many minutes on a CPU.
    """
    try:
        from sklearn.svm import SVC
    except ImportError:
        raise ValueError(
            f"the SVM baseline needs scikit-learn: install {install_hint('baselines')}"
        ) from None
    clf = SVC(**svc_options)
    clf.fit(training[0], training[1])
    return int(np.sum(clf.predict(test[0]) == test[1]))
