"""The embedded default data set: scikit-learn's 8x8 handwritten digits (no download needed)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits as _sklearn_load_digits
from sklearn.model_selection import train_test_split

from analogsim.datasets._dataset import Dataset, Split

#: Samples in the fixed test split (the other 1437 of the 1797 images are the training split).
DIGITS_TEST_SIZE = 360

#: Largest pixel value in scikit-learn's digits images.
DIGITS_MAX_PIXEL = 16.0


def load_digits() -> Dataset:
    """Load scikit-learn's digits data set (1797 images of 8x8 pixels, 10 classes).

    The data ship inside scikit-learn, so nothing is downloaded. Pixel values 0..16 are divided
    by 16. The split is fixed: a stratified split with ``random_state=0``, so every call returns
    the same arrays.

    Returns
    -------
    Dataset
        ``train``: x of shape (1437, 64), ``test``: x of shape (360, 64), float32 in [0, 1];
        labels 0..9 named ``"0"`` .. ``"9"``.
    """
    bunch = _sklearn_load_digits()
    x = (np.asarray(bunch.data, dtype=np.float64) / DIGITS_MAX_PIXEL).astype(np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=DIGITS_TEST_SIZE, random_state=0, stratify=y
    )
    return Dataset(
        name="digits",
        train=Split(x_train, y_train),
        test=Split(x_test, y_test),
        n_classes=10,
        class_names=tuple(str(digit) for digit in range(10)),
    )
