"""Entry point: :func:`load` a data set by name, :func:`available` lists the names."""

from __future__ import annotations

import os
from collections.abc import Callable

from analogsim._validation import check_choice
from analogsim.datasets._dataset import Dataset
from analogsim.datasets._digits import load_digits
from analogsim.datasets._mnist import load_idx_dataset
from analogsim.errors import ParameterError

_LOADERS: dict[str, Callable[[str | os.PathLike[str] | None], Dataset]] = {
    "digits": lambda root: load_digits(),
    "fashion-mnist": lambda root: load_idx_dataset("fashion-mnist", root),
    "mnist": lambda root: load_idx_dataset("mnist", root),
}


def available() -> tuple[str, ...]:
    """Names accepted by :func:`load`.

    Returns
    -------
    tuple of str
        ``("digits", "fashion-mnist", "mnist")``.
    """
    return tuple(_LOADERS)


def load(name: str = "digits", root: str | os.PathLike[str] | None = None) -> Dataset:
    """Load a classification data set with its fixed train/test split.

    Parameters
    ----------
    name : {"digits", "fashion-mnist", "mnist"}, default "digits"
        ``"digits"`` is scikit-learn's embedded 8x8 digits (1437 train / 360 test, 64
        features); the others read 28x28 IDX files (60000 train / 10000 test, 784 features).
    root : str, os.PathLike or None
        Directory searched first for IDX files (ignored for ``"digits"``). Then come
        ``$ANALOGSIM_DATA`` and ``/usr/share/datasets/<name>``; in ``root`` and
        ``$ANALOGSIM_DATA`` the files may also sit in ``<name>/`` or torchvision's
        ``FashionMNIST/raw`` / ``MNIST/raw``.

    Returns
    -------
    Dataset
        ``train.x``/``test.x``: float32, shape (n, n_features), C-contiguous, in [0, 1];
        ``train.y``/``test.y``: int64, shape (n,), in [0, n_classes).

    Raises
    ------
    ParameterError
        ``name`` is unknown or ``root`` is not a path.
    DatasetError
        The files cannot be found (the message lists where it looked and how to get them) or
        are corrupt.
    """
    check_choice("load", "name", name, available())
    if root is not None and not isinstance(root, str | os.PathLike):
        raise ParameterError(
            f"The 'root' parameter of load must be a directory path or None. Got {root!r} instead."
        )
    return _LOADERS[name](root)
