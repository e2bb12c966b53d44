"""The book's baselines: average darkness (and the optional SVM)."""

from __future__ import annotations

import numpy as np
import pytest

from gpunet.book.baselines import AverageDarkness, svm_correct


def test_average_darkness_gives_the_books_count(mnist):
    """The book: 2,225 / 10,000 with means from the 50,000 training images."""
    model = AverageDarkness().fit(*mnist.training)
    assert model.score(*mnist.test) == 2225
    # the 1 is the lightest digit, the 0 the darkest
    assert model.digits_[np.argmin(model.mean_darkness_)] == 1
    assert model.digits_[np.argmax(model.mean_darkness_)] == 0


def test_average_darkness_needs_fit():
    with pytest.raises(ValueError, match="call fit"):
        AverageDarkness().predict(np.zeros((1, 784)))


def test_svm_baseline_on_a_subset(mnist):
    pytest.importorskip("sklearn", reason="the SVM baseline needs the baselines extra: "
                        'pip install "scikit-learn>=1.3"')
    X, y = mnist.training
    correct = svm_correct((X[:2000], y[:2000]), (mnist.test[0][:1000], mnist.test[1][:1000]))
    assert correct > 850  # default SVC on 2,000 images: about 90%
