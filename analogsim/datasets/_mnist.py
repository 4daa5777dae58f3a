"""Loaders for the 28x28 IDX data sets: Fashion-MNIST and MNIST (files found by ``_locate``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from analogsim.datasets import _locate
from analogsim.datasets._dataset import Dataset, Split
from analogsim.datasets._idx import read_images, read_labels
from analogsim.errors import DatasetError

#: Class names of each IDX data set, indexed by label.
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "mnist": tuple(str(digit) for digit in range(10)),
}


def _read_split(images_path: Path, labels_path: Path, n_classes: int) -> Split:
    """Read one image file and its label file into a :class:`Split` (pixels divided by 255)."""
    images = read_images(images_path)
    labels = read_labels(labels_path, n_classes)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels; the counts must be equal."
        )
    x = images.reshape(images.shape[0], -1).astype(np.float32)
    x /= np.float32(255.0)
    return Split(x, labels.astype(np.int64))


def load_idx_dataset(name: str, root: str | os.PathLike[str] | None = None) -> Dataset:
    """Load an IDX data set (``"fashion-mnist"`` or ``"mnist"``) with the files' own split.

    Parameters
    ----------
    name : str
        Key of :data:`CLASS_NAMES`.
    root : str, os.PathLike or None
        Directory searched first; see :mod:`analogsim.datasets._locate` for the search order.

    Returns
    -------
    Dataset
        ``train`` from the ``train-*`` files (60000 samples for the real data), ``test`` from
        the ``t10k-*`` files (10000); x of shape (n, rows * cols) float32 in [0, 1].

    Raises
    ------
    DatasetError
        The files are missing or corrupt, image and label counts differ, a label is >= 10, or
        train and test images differ in size.
    """
    files = _locate.find_idx_files(name, root)
    class_names = CLASS_NAMES[name]
    train = _read_split(files["train_images"], files["train_labels"], len(class_names))
    test = _read_split(files["test_images"], files["test_labels"], len(class_names))
    if train.n_features != test.n_features:
        raise DatasetError(
            f"{files['train_images']} has {train.n_features} pixels per image but "
            f"{files['test_images']} has {test.n_features}; they must match."
        )
    return Dataset(
        name=name, train=train, test=test, n_classes=len(class_names), class_names=class_names
    )
