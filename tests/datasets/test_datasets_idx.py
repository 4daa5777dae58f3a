"""Tests of analogsim.datasets: the IDX reader, the search for IDX files, real Fashion-MNIST."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

import analogsim.datasets as ds
from analogsim.datasets import _locate
from analogsim.datasets._idx import read_images, read_labels
from analogsim.errors import DatasetError

N_TRAIN, N_TEST, ROWS, COLS = 12, 5, 4, 3


# --------------------------------------------------------------------------- helpers


def _idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file (magic 0x0000 08 <ndim>, big-endian dims)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _write(path: Path, payload: bytes, compress: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def _synthetic(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, size=(N_TRAIN, ROWS, COLS), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, size=N_TRAIN, dtype=np.uint8),
        "test_images": rng.integers(0, 256, size=(N_TEST, ROWS, COLS), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, size=N_TEST, dtype=np.uint8),
    }


def _write_set(directory: Path, compress: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the four synthetic IDX files into ``directory``; return the arrays written."""
    arrays = _synthetic(seed)
    for role, stem in _locate.IDX_FILES.items():
        _write(directory / stem, _idx_bytes(arrays[role]), compress)
    return arrays


@pytest.fixture
def no_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Unset $ANALOGSIM_DATA and point the Debian directory at an empty folder."""
    monkeypatch.delenv(_locate.ENV_VAR, raising=False)
    system = tmp_path / "system-datasets"
    monkeypatch.setattr(_locate, "SYSTEM_DATA_DIR", system)
    return system


def _check_matches(data: ds.Dataset, arrays: dict[str, np.ndarray]) -> None:
    for part in ("train", "test"):
        split = getattr(data, part)
        images = arrays[f"{part}_images"]
        np.testing.assert_array_equal(split.x, images.reshape(len(images), -1) / np.float32(255))
        np.testing.assert_array_equal(split.y, arrays[f"{part}_labels"])
        assert split.x.dtype == np.float32 and split.x.flags.c_contiguous
        assert split.y.dtype == np.int64


# --------------------------------------------------------------------------- IDX files and search


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_idx_round_trip_via_root(tmp_path: Path, no_defaults: Path, compress: bool) -> None:
    arrays = _write_set(tmp_path / "data", compress=compress)
    data = ds.load("fashion-mnist", root=tmp_path / "data")
    assert data.name == "fashion-mnist"
    assert (data.n_features, data.n_classes) == (ROWS * COLS, 10)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    _check_matches(data, arrays)


def test_root_accepts_str_and_name_subdirectory(tmp_path: Path, no_defaults: Path) -> None:
    arrays = _write_set(tmp_path / "mnist")
    _check_matches(ds.load("mnist", root=str(tmp_path)), arrays)


@pytest.mark.parametrize(
    ("name", "folder"), [("fashion-mnist", "FashionMNIST"), ("mnist", "MNIST")]
)
def test_torchvision_raw_layout(tmp_path: Path, no_defaults: Path, name: str, folder: str) -> None:
    arrays = _write_set(tmp_path / folder / "raw", compress=True)
    _check_matches(ds.load(name, root=tmp_path), arrays)


@pytest.mark.parametrize("sub", ["", "fashion-mnist", "FashionMNIST/raw"])
def test_env_var_directory(
    tmp_path: Path, no_defaults: Path, monkeypatch: pytest.MonkeyPatch, sub: str
) -> None:
    arrays = _write_set(tmp_path / "env" / sub)
    monkeypatch.setenv(_locate.ENV_VAR, str(tmp_path / "env"))
    _check_matches(ds.load("fashion-mnist"), arrays)


def test_search_order_root_then_env_then_system(
    tmp_path: Path, no_defaults: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_root = _write_set(tmp_path / "root", seed=1)
    from_env = _write_set(tmp_path / "env", seed=2)
    from_system = _write_set(no_defaults / "fashion-mnist", seed=3)
    monkeypatch.setenv(_locate.ENV_VAR, str(tmp_path / "env"))
    _check_matches(ds.load("fashion-mnist", root=tmp_path / "root"), from_root)
    _check_matches(ds.load("fashion-mnist"), from_env)
    monkeypatch.delenv(_locate.ENV_VAR)
    _check_matches(ds.load("fashion-mnist"), from_system)


def test_plain_file_preferred_over_gz(tmp_path: Path, no_defaults: Path) -> None:
    plain = _write_set(tmp_path, compress=False, seed=1)
    _write_set(tmp_path, compress=True, seed=2)
    _check_matches(ds.load("mnist", root=tmp_path), plain)


def test_missing_files_error_lists_every_directory(
    tmp_path: Path, no_defaults: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, env = tmp_path / "root", tmp_path / "env"
    root.mkdir()
    monkeypatch.setenv(_locate.ENV_VAR, str(env))
    with pytest.raises(DatasetError, match=r"Cannot find the fashion-mnist data set") as info:
        ds.load("fashion-mnist", root=root)
    message = str(info.value)
    for directory in _locate.search_dirs("fashion-mnist", root):
        assert str(directory) in message
    for directory in (root, env, env / "FashionMNIST" / "raw", no_defaults / "fashion-mnist"):
        assert str(directory) in message
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert "ANALOGSIM_DATA" in message and "root=" in message


def test_partial_directory_names_missing_files(tmp_path: Path, no_defaults: Path) -> None:
    _write_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match=r"missing t10k-labels-idx1-ubyte\)"):
        ds.load("mnist", root=tmp_path)


def test_bad_magic_names_file(tmp_path: Path, no_defaults: Path) -> None:
    _write_set(tmp_path)
    labels = (tmp_path / "train-labels-idx1-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(labels)  # labels where images belong
    with pytest.raises(
        DatasetError,
        match=r"train-images-idx3-ubyte: bad magic number 0x00000801, expected 0x00000803",
    ):
        ds.load("mnist", root=tmp_path)


def test_gzip_data_under_plain_name_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(gzip.compress(_idx_bytes(np.zeros(3, dtype=np.uint8))))
    with pytest.raises(DatasetError, match=r"bad magic number.*looks gzip-compressed"):
        read_labels(path)


@pytest.mark.parametrize("cut", [1, 100])
def test_truncated_payload(tmp_path: Path, cut: int) -> None:
    data = _idx_bytes(np.zeros((10, ROWS, COLS), dtype=np.uint8))
    path = _write(tmp_path / "images", data[:-cut], compress=True)
    with pytest.raises(DatasetError, match=r"images.gz: wrong payload length \(truncated\)"):
        read_images(path)


def test_trailing_bytes(tmp_path: Path) -> None:
    data = _idx_bytes(np.zeros(7, dtype=np.uint8)) + b"\x00\x00"
    path = _write(tmp_path / "labels", data, compress=False)
    with pytest.raises(DatasetError, match=r"wrong payload length \(2 trailing bytes\)"):
        read_labels(path)


@pytest.mark.parametrize(
    ("size", "pattern"), [(2, r"too short for an IDX header"), (9, r"truncated header")]
)
def test_truncated_header(tmp_path: Path, size: int, pattern: str) -> None:
    path = _write(tmp_path / "images", _idx_bytes(np.zeros((1, 2, 2), np.uint8))[:size], False)
    with pytest.raises(DatasetError, match=pattern):
        read_images(path)


def test_zero_dimension(tmp_path: Path) -> None:
    path = _write(tmp_path / "labels", _idx_bytes(np.zeros(0, dtype=np.uint8)), compress=False)
    with pytest.raises(DatasetError, match=r"dimensions \(0,\) include a zero"):
        read_labels(path)


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "images.gz"
    path.write_bytes(b"\x1f\x8b this is not deflate data")
    with pytest.raises(DatasetError, match=r"images.gz: cannot read the IDX file"):
        read_images(path)


def test_label_count_mismatch(tmp_path: Path, no_defaults: Path) -> None:
    _write_set(tmp_path)
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx_bytes(np.zeros(N_TEST + 1, np.uint8)), False)
    with pytest.raises(
        DatasetError, match=rf"holds {N_TEST} images but .* holds {N_TEST + 1} labels"
    ):
        ds.load("fashion-mnist", root=tmp_path)


def test_label_out_of_range(tmp_path: Path, no_defaults: Path) -> None:
    _write_set(tmp_path)
    labels = np.zeros(N_TRAIN, dtype=np.uint8)
    labels[4] = 10
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(labels), False)
    with pytest.raises(DatasetError, match=r"label 10 at index 4"):
        ds.load("fashion-mnist", root=tmp_path)


def test_train_test_image_size_mismatch(tmp_path: Path, no_defaults: Path) -> None:
    _write_set(tmp_path)
    _write(
        tmp_path / "t10k-images-idx3-ubyte", _idx_bytes(np.zeros((N_TEST, 5, 5), np.uint8)), False
    )
    with pytest.raises(DatasetError, match=r"12 pixels per image but .* has 25"):
        ds.load("mnist", root=tmp_path)


# --------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_real_fashion_mnist() -> None:
    try:
        _locate.find_idx_files("fashion-mnist")
    except DatasetError as exc:
        pytest.skip(f"Fashion-MNIST files not installed: {exc}")
    data = ds.load("fashion-mnist")
    assert (len(data.train), len(data.test), data.n_features) == (60000, 10000, 784)
    np.testing.assert_array_equal(np.bincount(data.train.y), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(data.test.y), [1000] * 10)
    for split in (data.train, data.test):
        assert split.x.dtype == np.float32 and split.x.flags.c_contiguous
        assert split.x.min() == 0.0 and split.x.max() == 1.0
