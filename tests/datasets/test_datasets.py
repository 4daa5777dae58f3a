"""Tests of analogsim.datasets: load(), the digits data set, Split and Dataset."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from sklearn.datasets import load_digits

import analogsim.datasets as ds
from analogsim.errors import NonFiniteInputError, ParameterError, ShapeError

# --------------------------------------------------------------------------- load / digits


def test_available_lists_every_name() -> None:
    assert ds.available() == ("digits", "fashion-mnist", "mnist")


def test_load_rejects_unknown_name() -> None:
    with pytest.raises(ParameterError, match=r"'name' parameter of load must be one of 'digits'"):
        ds.load("cifar")


def test_load_rejects_non_path_root() -> None:
    with pytest.raises(ParameterError, match=r"'root' parameter of load must be a directory"):
        ds.load("mnist", root=3)  # type: ignore[arg-type]


def test_digits_shapes_dtypes_and_ranges() -> None:
    data = ds.load("digits")
    assert data.name == "digits"
    assert (data.n_features, data.n_classes) == (64, 10)
    assert data.class_names == tuple(str(i) for i in range(10))
    assert (len(data.train), len(data.test)) == (1437, 360)
    for split in (data.train, data.test):
        assert split.x.dtype == np.float32 and split.x.flags.c_contiguous
        assert split.y.dtype == np.int64
        assert split.x.min() == 0.0 and split.x.max() == 1.0
        assert set(np.unique(split.y)) == set(range(10))
    # pixel values are k/16 for integer k
    np.testing.assert_array_equal(data.train.x * 16, np.round(data.train.x * 16))


def test_digits_split_is_stratified_and_deterministic() -> None:
    first, second = ds.load("digits"), ds.load("digits")
    np.testing.assert_array_equal(first.train.x, second.train.x)
    np.testing.assert_array_equal(first.test.y, second.test.y)
    counts = np.bincount(first.test.y, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 360 * (class share ~ 1/10)
    # train and test together are the whole data set, each sample once
    rows = np.concatenate([first.train.x, first.test.x])
    whole = (load_digits().data / 16).astype(np.float32)
    for got, want in zip(
        np.unique(rows, axis=0, return_counts=True),
        np.unique(whole, axis=0, return_counts=True),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)


def test_digits_does_not_touch_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert len(ds.load("digits").train) == 1437


# --------------------------------------------------------------------------- Split / Dataset


def _split(n: int = 10, features: int = 3) -> ds.Split:
    rng = np.random.default_rng(0)
    return ds.Split(rng.random((n, features)), np.arange(n) % 4)


def test_split_coerces_dtypes() -> None:
    split = ds.Split(np.asfortranarray(np.full((4, 2), 0.5)), np.arange(4, dtype=np.uint8))
    assert split.x.dtype == np.float32 and split.x.flags.c_contiguous
    assert split.y.dtype == np.int64
    assert len(split) == 4 and split.n_features == 2
    assert repr(split) == "Split(n_samples=4, n_features=2)"


@pytest.mark.parametrize(
    ("x", "y", "error", "pattern"),
    [
        (np.zeros((0, 3)), np.zeros(0, int), ParameterError, r"'x' parameter of Split is empty"),
        (np.zeros((2, 0)), np.zeros(2, int), ParameterError, r"has no features"),
        (np.zeros(3), np.zeros(3, int), ShapeError, r"must be a 2-D array.*Got shape \(3,\)"),
        (np.zeros((2, 2), np.uint8), np.zeros(2, int), ParameterError, r"Got dtype uint8"),
        (np.array([[0.1, np.nan]]), np.zeros(1, int), NonFiniteInputError, r"Got 1 NaN"),
        (np.array([[np.inf, 0.0]]), np.zeros(1, int), NonFiniteInputError, r"1 infinite"),
        (np.array([[0.5, 1.5]]), np.zeros(1, int), ParameterError, r"values in \[0, 1\]"),
        (np.array([[-0.1, 0.5]]), np.zeros(1, int), ParameterError, r"Got values in \[-0.1"),
        (
            np.zeros((2, 2)),
            np.zeros((2, 1), int),
            ShapeError,
            r"'y' parameter of Split must be a 1-D",
        ),
        (np.zeros((2, 2)), np.zeros(2), ParameterError, r"integer labels. Got dtype float64"),
        (np.zeros((2, 2)), np.zeros(3, int), ShapeError, r"one label per sample \(2\). Got 3"),
        (np.zeros((2, 2)), np.array([0, -1]), ParameterError, r"non-negative labels. Got -1"),
    ],
)
def test_split_validation(x: np.ndarray, y: np.ndarray, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        ds.Split(x, y)


def test_split_is_frozen() -> None:
    split = _split()
    with pytest.raises(AttributeError, match=r"cannot assign to field 'x'"):
        split.x = np.zeros((1, 1))  # type: ignore[misc]


def test_subset_draws_distinct_samples_deterministically() -> None:
    split = _split(50)
    part = split.subset(20, rng=3)
    assert len(part) == 20 and part.n_features == 3
    rows = {tuple(row) for row in split.x}
    assert all(tuple(row) in rows for row in part.x)
    assert len({tuple(row) for row in part.x}) == 20  # without replacement
    again = split.subset(20, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(part.x, again.x)
    np.testing.assert_array_equal(part.y, again.y)
    assert not np.array_equal(part.x, split.subset(20, rng=4).x)
    assert len(split.subset(50)) == 50


@pytest.mark.parametrize(
    ("n", "rng", "pattern"),
    [
        (0, 0, r"'n' parameter of Split.subset must be an integer in \[1, 10\]. Got 0"),
        (11, 0, r"Got 11 instead"),
        (2.0, 0, r"'n' parameter of Split.subset must be an integer"),
        (2, -1, r"'rng' parameter of Split.subset must be an integer in \[0, inf\)"),
        (2, None, r"'rng' parameter of Split.subset must be a non-negative integer seed"),
    ],
)
def test_subset_validation(n: object, rng: object, pattern: str) -> None:
    with pytest.raises(ParameterError, match=pattern):
        _split().subset(n, rng=rng)  # type: ignore[arg-type]


@pytest.mark.parametrize("batch_size", [1, 3, 7, 10, 25])
def test_batches_cover_every_sample_once(batch_size: int) -> None:
    split = ds.Split(np.linspace(0, 1, 10)[:, None], np.arange(10))  # row i holds label i
    batches = list(split.batches(batch_size, rng=5))
    sizes = [len(y) for _, y in batches]
    assert sizes[:-1] == [batch_size] * (len(batches) - 1) and sum(sizes) == 10
    assert 0 < sizes[-1] <= batch_size
    seen = np.concatenate([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(10))
    for x, y in batches:
        assert x.dtype == np.float32 and x.shape == (len(y), 1)
        np.testing.assert_array_equal(x[:, 0], split.x[y, 0])  # rows stay paired with labels


def test_batches_are_seeded() -> None:
    split = ds.Split(np.linspace(0, 1, 40)[:, None], np.arange(40))

    def order(rng: int | np.random.Generator) -> list[int]:
        return np.concatenate([y for _, y in split.batches(8, rng=rng)]).tolist()

    assert order(11) == order(11)
    assert order(11) == order(np.random.default_rng(11))
    assert order(11) != order(12)
    assert order(11) != list(range(40))  # shuffled
    generator = np.random.default_rng(0)
    assert order(generator) != order(generator)  # one generator: a new order each epoch


@pytest.mark.parametrize(
    ("batch_size", "rng", "pattern"),
    [
        (0, 0, r"'batch_size' parameter of Split.batches must be an integer in \[1, inf\)"),
        (1.5, 0, r"'batch_size' parameter of Split.batches must be an integer"),
        (4, "seed", r"'rng' parameter of Split.batches must be a non-negative integer seed"),
    ],
)
def test_batches_validate_eagerly(batch_size: object, rng: object, pattern: str) -> None:
    with pytest.raises(ParameterError, match=pattern):
        _split().batches(batch_size, rng=rng)  # type: ignore[arg-type]  # no next() needed


def test_dataset_validation() -> None:
    train, test = _split(), _split(5)
    names = tuple("abcd")
    data = ds.Dataset("toy", train, test, 4, list(names))  # type: ignore[arg-type]
    assert data.class_names == names and data.n_features == 3
    assert repr(data) == "Dataset(name='toy', n_classes=4, n_features=3, train=10, test=5)"
    with pytest.raises(
        ParameterError, match=r"'train' parameter of Dataset must hold labels in \[0, 3\)"
    ):
        ds.Dataset("toy", train, test, 3, names[:3])
    with pytest.raises(ShapeError, match=r"as many features as 'train' \(3\). Got 2"):
        ds.Dataset("toy", train, _split(5, features=2), 4, names)
    with pytest.raises(
        ParameterError, match=r"'class_names' parameter of Dataset must be 4 strings"
    ):
        ds.Dataset("toy", train, test, 4, names[:3])
    with pytest.raises(ParameterError, match=r"'test' parameter of Dataset must be a Split"):
        ds.Dataset("toy", train, None, 4, names)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match=r"'name' parameter of Dataset must be a non-empty"):
        ds.Dataset("", train, test, 4, names)
    with pytest.raises(ParameterError, match=r"'n_classes' parameter of Dataset"):
        ds.Dataset("toy", train, test, 0, ())
