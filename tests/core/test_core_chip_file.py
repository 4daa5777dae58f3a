"""Chip files: bit-exact round trips, atomic saves, and every kind of bad file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

import analogsim as asim
import analogsim.chip_io as chip_io
from analogsim._tile_parameters import TileArrays
from analogsim.devices import ECRAM, PCM, Ideal, ReRAM
from analogsim.errors import ChipFileError

ROWS, COLS = 20, 12


# --------------------------------------------------------------------------- helpers
def _made_chip(device, periphery: asim.Periphery | None = None) -> asim.Chip:
    """A chip with history: two tiles (one overriding device and periphery), trained a bit."""
    chip = asim.Chip(device=device, seed=17, periphery=periphery)
    data = np.random.default_rng(0)
    main = chip.tile("fc1", ROWS, COLS)
    chip.tile("fc2", COLS, 4, device=ECRAM(), periphery=asim.Periphery(sampler="exact"))
    main.program(data.normal(size=(ROWS, COLS)))
    chip.tiles["fc2"].program(data.normal(size=(COLS, 4)))
    for _ in range(2):
        main.update(data.normal(size=(6, ROWS)), data.normal(size=(6, COLS)), lr=0.1)
        chip.advance(30.0)
    main.forward(data.normal(size=(3, ROWS)))
    return chip


def _continue_training(chip: asim.Chip) -> list[np.ndarray]:
    """Several updates and forwards on the chip's own stream, with the clock moving."""
    data = np.random.default_rng(1)
    seen = []
    for step in range(4):
        for name, (rows, cols) in (("fc1", (ROWS, COLS)), ("fc2", (COLS, 4))):
            tile = chip.tiles[name]
            x, d = data.normal(size=(5, rows)), data.normal(size=(5, cols))
            tile.update(x, d, lr=0.05, sampler="exact" if step == 2 else None)
            seen.append(tile.forward(x))
        chip.advance(3600.0)
        seen.append(chip.tiles["fc1"].read())
    seen.append(np.array([chip.time]))
    return seen


def _assert_same_chip(first: asim.Chip, second: asim.Chip) -> None:
    assert (first.seed, first.time, first.device, first.periphery) == (
        second.seed, second.time, second.device, second.periphery)
    assert first.kernels.name == second.kernels.name
    assert first._runtime.bit_generator.state == second._runtime.bit_generator.state
    assert list(first.tiles) == list(second.tiles)
    for name, tile in first.tiles.items():
        other = second.tiles[name]
        assert (tile.shape, tile.device, tile.periphery) == (other.shape, other.device,
                                                             other.periphery)
        assert (tile.weight_scale, tile.drift_reference) == (other.weight_scale,
                                                             other.drift_reference)
        for field in TileArrays.field_names():
            left, right = getattr(tile.arrays, field), getattr(other.arrays, field)
            assert left.dtype == right.dtype, field
            np.testing.assert_array_equal(left, right, err_msg=f"{name}.{field}")


def _flip(path: Path, offset: int, count: int = 1) -> None:
    data = bytearray(path.read_bytes())
    for position in range(offset, offset + count):
        data[position] ^= 0xFF
    path.write_bytes(bytes(data))


def _load_error(path: Path) -> str:
    return rf"Chip\.load: {re.escape(str(path))}"


# --------------------------------------------------------------------------- round trip
ROUND_TRIP = [
    pytest.param(PCM(), None, id="PCM"),
    pytest.param(PCM(), asim.Periphery(drift_compensation=True), id="PCM-compensated"),
    pytest.param(ReRAM(), asim.Periphery(sampler="exact"), id="ReRAM-exact"),
    pytest.param(Ideal(), None, id="Ideal"),
]


@pytest.mark.parametrize(("device", "periphery"), ROUND_TRIP)
def test_load_continues_bit_identically(tmp_path: Path, device, periphery) -> None:
    saved = _made_chip(device, periphery)
    never_saved = _made_chip(device, periphery)
    saved.save(tmp_path / "chip.h5")
    loaded = asim.Chip.load(tmp_path / "chip.h5")
    _assert_same_chip(saved, loaded)
    _assert_same_chip(saved, never_saved)  # saving changes nothing
    outputs = [_continue_training(chip) for chip in (saved, loaded, never_saved)]
    for reference, from_file, untouched in zip(*outputs, strict=True):
        np.testing.assert_array_equal(from_file, reference)
        np.testing.assert_array_equal(untouched, reference)
    _assert_same_chip(saved, loaded)
    _assert_same_chip(saved, never_saved)


def test_save_load_save_load(tmp_path: Path) -> None:
    chip = _made_chip(PCM())
    chip.save(tmp_path / "a.h5")
    asim.Chip.load(tmp_path / "a.h5").save(tmp_path / "b.h5")
    _assert_same_chip(chip, asim.Chip.load(tmp_path / "b.h5"))


def test_empty_chip_and_str_paths(tmp_path: Path) -> None:
    chip = asim.Chip(device=ReRAM(), seed=3)
    chip.advance(12.5)
    chip.save(str(tmp_path / "empty.h5"))
    loaded = asim.Chip.load(str(tmp_path / "empty.h5"))
    _assert_same_chip(chip, loaded)
    assert dict(loaded.tiles) == {}


def _as_version_1(path: Path) -> None:
    """Rewrite a chip file as format version 1 wrote it: str attributes, no digests."""
    with h5py.File(path, "r+") as handle:
        handle.attrs["format_version"] = 1
        for group in handle["tiles"].values():
            for dataset in group.values():
                del dataset.attrs["blake2b"]
        for attrs in [handle.attrs] + [group.attrs for group in handle["tiles"].values()]:
            for key, value in list(attrs.items()):
                if isinstance(value, bytes):
                    attrs[key] = value.decode("utf-8")


def test_format_version_1_files_still_load(tmp_path: Path) -> None:
    path = tmp_path / "old.h5"
    chip = _made_chip(ReRAM())
    chip.save(path)
    _as_version_1(path)
    _assert_same_chip(chip, asim.Chip.load(path))


def test_current_files_must_carry_their_digests(tmp_path: Path) -> None:
    path = tmp_path / "stripped.h5"
    _made_chip(ReRAM()).save(path)
    with h5py.File(path, "r+") as handle:
        del handle["tiles/0000/conductance"].attrs["blake2b"]
    with pytest.raises(ChipFileError, match=_load_error(path) + r": /tiles/0000/conductance "
                                            r"fails its checksum; the file is corrupt"):
        asim.Chip.load(path)


# --------------------------------------------------------------------------- atomic save
def test_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    _made_chip(PCM()).save(tmp_path / "chip.h5")
    assert sorted(os.listdir(tmp_path)) == ["chip.h5"]


def test_save_replaces_an_existing_file_on_success(tmp_path: Path) -> None:
    path = tmp_path / "chip.h5"
    asim.Chip(device=ReRAM(), seed=1).save(path)
    chip = _made_chip(PCM())
    chip.save(path)
    _assert_same_chip(chip, asim.Chip.load(path))
    assert sorted(os.listdir(tmp_path)) == ["chip.h5"]


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "chip.h5"
    old = _made_chip(ReRAM())
    old.save(path)
    before = path.read_bytes()

    def broken_write(group, tile) -> None:
        raise OSError("disk full while writing a tile")

    monkeypatch.setattr(chip_io, "_write_tile", broken_write)
    with pytest.raises(OSError, match="disk full while writing a tile"):
        _made_chip(PCM()).save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["chip.h5"]
    monkeypatch.undo()
    _assert_same_chip(old, asim.Chip.load(path))


def test_failed_first_save_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_write(group, tile) -> None:
        raise OSError("disk full while writing a tile")

    monkeypatch.setattr(chip_io, "_write_tile", broken_write)
    with pytest.raises(OSError, match="disk full"):
        _made_chip(PCM()).save(tmp_path / "chip.h5")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- bad files
def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nothing.h5"
    with pytest.raises(ChipFileError, match=rf"Chip\.load: no such file: {re.escape(str(path))}"):
        asim.Chip.load(path)


def test_plain_hdf5_file_is_not_a_chip(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as handle:
        handle["weights"] = np.ones((3, 3))
    with pytest.raises(ChipFileError, match=_load_error(path) + r" is not an analogsim chip file "
                                            r"\(format attribute None, expected "
                                            r"'analogsim-chip'\)"):
        asim.Chip.load(path)


def test_other_hdf5_format_is_not_a_chip(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["format"] = "analogsim-results"
    with pytest.raises(ChipFileError, match=r"format attribute 'analogsim-results', expected"):
        asim.Chip.load(path)


def test_text_file_is_not_a_chip(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("weights: 1 2 3\n" * 100)
    with pytest.raises(ChipFileError, match=_load_error(path) + r" is not a readable analogsim "
                                            r"chip \(truncated or corrupt HDF5\?\)"):
        asim.Chip.load(path)


def test_directory_is_not_a_chip(tmp_path: Path) -> None:
    with pytest.raises(ChipFileError, match=r"is not a readable analogsim chip"):
        asim.Chip.load(tmp_path)


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.h5"
    _made_chip(PCM()).save(path)
    newer, current = chip_io.FORMAT_VERSION + 1, chip_io.FORMAT_VERSION
    with h5py.File(path, "r+") as handle:
        handle.attrs["format_version"] = newer
    with pytest.raises(ChipFileError, match=_load_error(path) + rf" has format version {newer}; "
                                            rf"this analogsim reads versions up to {current}\. "
                                            r"Upgrade analogsim"):
        asim.Chip.load(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated_file(tmp_path: Path, fraction: float) -> None:
    path = tmp_path / "cut.h5"
    _made_chip(PCM()).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ChipFileError, match=_load_error(path) + r" is not a readable"):
        asim.Chip.load(path)


@pytest.mark.parametrize("field", ["conductance", "written_at", "stuck", "adc_gain"])
def test_corrupted_dataset_bytes(tmp_path: Path, field: str) -> None:
    path = tmp_path / "flipped.h5"
    _made_chip(PCM()).save(path)
    with h5py.File(path, "r") as handle:
        chunk = handle[f"tiles/0000/{field}"].id.get_chunk_info(0)
    _flip(path, chunk.byte_offset + chunk.size // 2, count=4)
    with pytest.raises(ChipFileError, match=_load_error(path) + r".*corrupt"):
        asim.Chip.load(path)


def test_corrupted_bytes_in_the_middle_of_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "flipped.h5"
    chip = asim.Chip(device=PCM(), seed=0)
    chip.tile("big", 128, 128).program(np.random.default_rng(0).normal(size=(128, 128)))
    chip.save(path)
    _flip(path, path.stat().st_size // 2, count=8)
    with pytest.raises(ChipFileError, match=_load_error(path) + r".*corrupt"):
        asim.Chip.load(path)


def _flip_each_and_load(tmp_path: Path, stride: int) -> None:
    """Flip every ``stride``-th byte of a chip file in turn (header and metadata included):
    each flip must be detected (ChipFileError) or harmless (the very same chip)."""
    source = tmp_path / "chip.h5"
    chip = _made_chip(PCM())
    chip.save(source)
    original = source.read_bytes()
    damaged = tmp_path / "damaged.h5"
    detected = 0
    for offset in range(stride // 2, len(original), stride):
        data = bytearray(original)
        data[offset] ^= 0xFF
        damaged.write_bytes(bytes(data))
        try:
            loaded = asim.Chip.load(damaged)
        except ChipFileError:
            detected += 1
            continue
        _assert_same_chip(chip, loaded)
    assert detected > 0.5 * len(original) / stride


def test_a_flipped_byte_anywhere_never_gives_a_wrong_chip(tmp_path: Path) -> None:
    _flip_each_and_load(tmp_path, stride=397)


@pytest.mark.slow
def test_a_flipped_byte_anywhere_never_gives_a_wrong_chip_dense(tmp_path: Path) -> None:
    _flip_each_and_load(tmp_path, stride=31)


def test_missing_array_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "partial.h5"
    _made_chip(PCM()).save(path)
    with h5py.File(path, "r+") as handle:
        del handle["tiles/0001/stuck"]
    with pytest.raises(ChipFileError, match=_load_error(path) + r" lacks /tiles/0001/stuck; "
                                            r"the file is incomplete"):
        asim.Chip.load(path)


def test_array_of_the_wrong_shape_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "reshaped.h5"
    _made_chip(PCM()).save(path)
    with h5py.File(path, "r+") as handle:
        del handle["tiles/0000/adc_gain"]
        wrong = np.ones(COLS + 1, dtype=np.float32)
        handle["tiles/0000/adc_gain"] = wrong
        handle["tiles/0000/adc_gain"].attrs["blake2b"] = np.bytes_(chip_io._digest(wrong).encode())
    with pytest.raises(ChipFileError, match=r"array 'adc_gain' has shape \(13,\), expected "
                                            r"\(12,\); the file is corrupt"):
        asim.Chip.load(path)


def test_invalid_stored_configuration_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "config.h5"
    _made_chip(PCM()).save(path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["periphery"] = np.bytes_(b'{"adc_bits": 40}')
    with pytest.raises(ChipFileError, match=r"is not a readable analogsim chip .*'adc_bits' "
                                            r"parameter of Periphery"):
        asim.Chip.load(path)
