"""Saving and loading chips as HDF5 files.

Layout (format version 1)::

    /            attrs: format="analogsim-chip", format_version, analogsim_version, seed,
                        time, device (JSON), periphery (JSON), kernels, rng_state (JSON)
    /tiles/0000  attrs: name, rows, cols, weight_scale, drift_reference, device, periphery
                 datasets: every array of TileArrays, with Fletcher-32 checksums

Files are written to a temporary name and renamed, so a crash never leaves half a chip.
Any failure to read (not HDF5, truncated, corrupt data, missing parts, newer format) raises
:class:`~analogsim.errors.ChipFileError` naming the file; a wrong chip is never returned.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from analogsim import devices
from analogsim._tile_parameters import TileArrays
from analogsim.errors import ChipFileError
from analogsim.periphery import Periphery

if TYPE_CHECKING:
    from analogsim.chip import Chip

FORMAT = "analogsim-chip"
FORMAT_VERSION = 1


def save_chip(chip: Chip, path: Path) -> None:
    """Write ``chip`` to ``path`` atomically (temporary file, then rename)."""
    from analogsim import __version__

    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(temporary, "w") as handle:
            handle.attrs["format"] = FORMAT
            handle.attrs["format_version"] = FORMAT_VERSION
            handle.attrs["analogsim_version"] = __version__
            handle.attrs["seed"] = chip.seed
            handle.attrs["time"] = chip.time
            handle.attrs["device"] = json.dumps(chip.device.to_dict())
            handle.attrs["periphery"] = json.dumps(chip.periphery.to_dict())
            handle.attrs["kernels"] = chip.kernels.name
            handle.attrs["rng_state"] = json.dumps(chip._runtime.bit_generator.state)
            group = handle.create_group("tiles")
            for index, tile in enumerate(chip.tiles.values()):
                _write_tile(group.create_group(f"{index:04d}"), tile)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _write_tile(group: h5py.Group, tile) -> None:
    group.attrs["name"] = tile.name
    group.attrs["rows"] = tile.rows
    group.attrs["cols"] = tile.cols
    group.attrs["weight_scale"] = tile.weight_scale
    group.attrs["drift_reference"] = tile.drift_reference
    group.attrs["device"] = json.dumps(tile.device.to_dict())
    group.attrs["periphery"] = json.dumps(tile.periphery.to_dict())
    for name in TileArrays.field_names():
        group.create_dataset(name, data=getattr(tile.arrays, name), fletcher32=True)


def load_chip(path: Path) -> Chip:
    """Read the chip in ``path``; see the module docstring for what raises."""
    if not path.exists():
        raise ChipFileError(f"Chip.load: no such file: {path}")
    try:
        with h5py.File(path, "r") as handle:
            return _read_chip(handle, path)
    except ChipFileError:
        raise
    except Exception as error:  # h5py raises OSError, KeyError, ValueError on damage
        raise ChipFileError(f"Chip.load: {path} is not a readable analogsim chip "
                            f"(truncated or corrupt HDF5?): {error}") from error


def _read_chip(handle: h5py.File, path: Path) -> Chip:
    from analogsim.chip import Chip
    from analogsim.tile import Tile

    kind = handle.attrs.get("format")
    if kind != FORMAT:
        raise ChipFileError(f"Chip.load: {path} is not an analogsim chip file "
                            f"(format attribute {kind!r}, expected {FORMAT!r}).")
    version = int(handle.attrs["format_version"])
    if version > FORMAT_VERSION:
        raise ChipFileError(f"Chip.load: {path} has format version {version}; this analogsim "
                            f"reads versions up to {FORMAT_VERSION}. Upgrade analogsim.")
    device = devices.from_dict(json.loads(handle.attrs["device"]))
    periphery = Periphery(**json.loads(handle.attrs["periphery"]))
    chip = Chip(device, int(handle.attrs["seed"]), periphery=periphery,
                kernels=str(handle.attrs["kernels"]))
    chip.time = float(handle.attrs["time"])
    chip._runtime.bit_generator.state = json.loads(handle.attrs["rng_state"])
    for key in sorted(handle["tiles"]):
        group = handle["tiles"][key]
        rows, cols = int(group.attrs["rows"]), int(group.attrs["cols"])
        tile_device = devices.from_dict(json.loads(group.attrs["device"]))
        tile_periphery = Periphery(**json.loads(group.attrs["periphery"]))
        arrays = TileArrays(**{name: _read_array(group, name, path)
                               for name in TileArrays.field_names()})
        _check_shapes(arrays, rows, cols, tile_device.devices_per_weight, path)
        tile = Tile(chip, str(group.attrs["name"]), rows, cols, tile_device, tile_periphery,
                    arrays, float(group.attrs["weight_scale"]),
                    float(group.attrs["drift_reference"]))
        chip._tiles[tile.name] = tile
    return chip


def _read_array(group: h5py.Group, name: str, path: Path) -> np.ndarray:
    if name not in group:
        raise ChipFileError(f"Chip.load: {path} lacks {group.name}/{name}; the file is "
                            f"incomplete.")
    return np.ascontiguousarray(group[name][()])


def _check_shapes(arrays: TileArrays, rows: int, cols: int, pairs: int, path: Path) -> None:
    expected = {name: (pairs, rows, cols) for name in TileArrays.field_names()}
    expected.update(adc_gain=(cols,), adc_offset=(cols,), adc_gain_rows=(rows,),
                    adc_offset_rows=(rows,))
    for name, shape in expected.items():
        actual = getattr(arrays, name).shape
        if actual != shape:
            raise ChipFileError(f"Chip.load: {path}: array {name!r} has shape {actual}, "
                                f"expected {shape}; the file is corrupt.")
