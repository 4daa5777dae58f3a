"""The two containers every loader returns: :class:`Split` and :class:`Dataset`.

Both are frozen dataclasses that validate their contents once, in ``__post_init__``, so code that
receives one can rely on the documented dtypes, shapes and value ranges without checking again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from analogsim._validation import check_range
from analogsim.errors import NonFiniteInputError, ParameterError, ShapeError

RngLike = int | np.random.Generator


def as_generator(owner: str, rng: RngLike) -> np.random.Generator:
    """Turn ``rng`` (a non-negative integer seed or a Generator) into a numpy Generator.

    Parameters
    ----------
    owner : str
        Name of the calling function, used in the error message.
    rng : int or numpy.random.Generator
        Seed or generator. A Generator is returned as it is (and advanced by the caller).

    Returns
    -------
    numpy.random.Generator
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, Integral) and not isinstance(rng, bool):
        check_range(owner, "rng", rng, 0, None, integer=True)
        return np.random.default_rng(int(rng))
    raise ParameterError(
        f"The 'rng' parameter of {owner} must be a non-negative integer seed or a "
        f"numpy.random.Generator. Got {rng!r} instead."
    )


def _check_x(x: object) -> np.ndarray:
    """Validate the feature matrix of a :class:`Split`; return it as C-contiguous float32."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ShapeError(
            "The 'x' parameter of Split must be a 2-D array of shape (n_samples, n_features). "
            f"Got shape {x.shape} instead."
        )
    if x.dtype.kind != "f":
        raise ParameterError(
            "The 'x' parameter of Split must hold floating-point values in [0, 1]. "
            f"Got dtype {x.dtype} instead (scale raw pixel values to [0, 1] first)."
        )
    if x.shape[0] == 0:
        raise ParameterError(
            f"The 'x' parameter of Split is empty (shape {x.shape}): a split needs at least one "
            "sample."
        )
    if x.shape[1] == 0:
        raise ParameterError(
            f"The 'x' parameter of Split has no features (shape {x.shape}): a split needs at "
            "least one feature."
        )
    finite = np.isfinite(x)
    if not finite.all():
        n_nan = int(np.isnan(x).sum())
        n_inf = int(x.size - finite.sum()) - n_nan
        row, col = (int(i) for i in np.argwhere(~finite)[0])
        raise NonFiniteInputError(
            "The 'x' parameter of Split must be finite. "
            f"Got {n_nan} NaN and {n_inf} infinite values (first at row {row}, column {col}) "
            "instead."
        )
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        raise ParameterError(
            "The 'x' parameter of Split must hold values in [0, 1]. "
            f"Got values in [{low:g}, {high:g}] instead."
        )
    return np.ascontiguousarray(x, dtype=np.float32)


def _check_y(y: object, n_samples: int) -> np.ndarray:
    """Validate the label vector of a :class:`Split`; return it as int64."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ShapeError(
            "The 'y' parameter of Split must be a 1-D array of shape (n_samples,). "
            f"Got shape {y.shape} instead."
        )
    if y.dtype.kind not in "iu":
        raise ParameterError(
            f"The 'y' parameter of Split must hold integer labels. Got dtype {y.dtype} instead."
        )
    if y.shape[0] != n_samples:
        raise ShapeError(
            f"The 'y' parameter of Split must have one label per sample ({n_samples}). "
            f"Got {y.shape[0]} labels instead."
        )
    if int(y.min()) < 0:
        raise ParameterError(
            f"The 'y' parameter of Split must hold non-negative labels. Got {int(y.min())} instead."
        )
    return np.ascontiguousarray(y, dtype=np.int64)


@dataclass(frozen=True, repr=False, eq=False)
class Split:
    """One part (train or test) of a data set: samples and their class labels.

    Parameters
    ----------
    x : numpy.ndarray, shape (n_samples, n_features)
        Features, finite and in [0, 1]. Any floating dtype is accepted and stored as C-contiguous
        float32.
    y : numpy.ndarray, shape (n_samples,)
        Non-negative integer class labels, stored as int64.

    Raises
    ------
    ShapeError
        ``x`` is not 2-D, ``y`` is not 1-D, or their lengths differ.
    NonFiniteInputError
        ``x`` holds NaN or infinity.
    ParameterError
        The split is empty, ``x`` is not floating point or outside [0, 1], ``y`` is not integer
        or negative.
    """

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        x = _check_x(self.x)
        y = _check_y(self.y, x.shape[0])
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        return f"Split(n_samples={len(self)}, n_features={self.n_features})"

    @property
    def n_features(self) -> int:
        """Number of features per sample (columns of ``x``)."""
        return int(self.x.shape[1])

    def subset(self, n: int, rng: RngLike = 0) -> Split:
        """Draw ``n`` distinct samples at random, keeping their original order.

        Parameters
        ----------
        n : int
            Number of samples, in [1, len(self)].
        rng : int or numpy.random.Generator, default 0
            Seed or generator; the same seed gives the same subset.

        Returns
        -------
        Split
            ``x`` of shape (n, n_features), ``y`` of shape (n,).
        """
        check_range("Split.subset", "n", n, 1, len(self), integer=True)
        generator = as_generator("Split.subset", rng)
        index = np.sort(generator.choice(len(self), size=int(n), replace=False))
        return Split(self.x[index], self.y[index])

    def batches(self, batch_size: int, rng: RngLike = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate once over the split (one epoch) in mini-batches, in a seeded random order.

        Every sample appears exactly once; the last batch is smaller when ``batch_size`` does not
        divide ``len(self)``. Arguments are checked when this is called, not on the first
        ``next()``.

        Parameters
        ----------
        batch_size : int
            Samples per batch, at least 1.
        rng : int or numpy.random.Generator, default 0
            Seed or generator for the order. An integer seed gives the same order every call;
            pass one Generator to successive calls for a new order each epoch.

        Yields
        ------
        x : numpy.ndarray, shape (b, n_features), float32
        y : numpy.ndarray, shape (b,), int64
            With ``b = batch_size`` except possibly for the last batch.
        """
        check_range("Split.batches", "batch_size", batch_size, 1, None, integer=True)
        order = as_generator("Split.batches", rng).permutation(len(self))
        return self._iterate(order, int(batch_size))

    def _iterate(
        self, order: np.ndarray, batch_size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, order.shape[0], batch_size):
            index = order[start : start + batch_size]
            yield self.x[index], self.y[index]


@dataclass(frozen=True, repr=False, eq=False)
class Dataset:
    """A classification data set with a fixed train/test split.

    Parameters
    ----------
    name : str
        Name the data set was loaded by (e.g. ``"digits"``).
    train, test : Split
        The two parts; they must have the same number of features.
    n_classes : int
        Number of classes; every label lies in [0, n_classes).
    class_names : tuple of str, length n_classes
        Human-readable name of each class, indexed by label.

    Raises
    ------
    ParameterError
        A field has the wrong type, ``class_names`` has the wrong length, or a label is
        ``>= n_classes``.
    ShapeError
        ``train`` and ``test`` have different numbers of features.
    """

    name: str
    train: Split
    test: Split
    n_classes: int
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ParameterError(
                f"The 'name' parameter of Dataset must be a non-empty string. "
                f"Got {self.name!r} instead."
            )
        for part in ("train", "test"):
            if not isinstance(getattr(self, part), Split):
                raise ParameterError(
                    f"The '{part}' parameter of Dataset must be a Split. "
                    f"Got {type(getattr(self, part)).__name__} instead."
                )
        check_range("Dataset", "n_classes", self.n_classes, 1, None, integer=True)
        names = tuple(self.class_names)
        if len(names) != self.n_classes or not all(isinstance(n, str) for n in names):
            raise ParameterError(
                f"The 'class_names' parameter of Dataset must be {self.n_classes} strings "
                f"(one per class). Got {names!r} instead."
            )
        object.__setattr__(self, "class_names", names)
        if self.train.n_features != self.test.n_features:
            raise ShapeError(
                "The 'test' parameter of Dataset must have as many features as 'train' "
                f"({self.train.n_features}). Got {self.test.n_features} instead."
            )
        for part in ("train", "test"):
            top = int(getattr(self, part).y.max())
            if top >= self.n_classes:
                raise ParameterError(
                    f"The '{part}' parameter of Dataset must hold labels in "
                    f"[0, {self.n_classes}) (n_classes={self.n_classes}). Got label {top} instead."
                )

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_classes={self.n_classes}, "
            f"n_features={self.n_features}, train={len(self.train)}, test={len(self.test)})"
        )

    @property
    def n_features(self) -> int:
        """Number of features per sample, shared by ``train`` and ``test``."""
        return self.train.n_features
