"""Saving and loading chips as HDF5 files.

Layout (format version 2)::

    /            attrs: format="analogsim-chip", format_version, analogsim_version, seed,
                        time, device (JSON), periphery (JSON), kernels, rng_state (JSON),
                        backend, matmul_precision (optional: "cpu" and "fp32" if absent),
                        count_precision (optional, written when set: "int8")
    /tiles/0000  attrs: name, rows, cols, weight_scale, drift_reference, device, periphery
                 datasets: every array of TileArrays, with Fletcher-32 checksums and a
                 ``blake2b`` attribute (digest of dtype, shape and bytes)

Version 1 (still read) had variable-length text attributes and no ``blake2b`` digests.

Arrays are stored from the host (a GPU chip's CuPy arrays are copied to NumPy first) and
loaded as NumPy; the loaded chip's tiles move them to its backend, so a chip saved on the GPU
loads on the CPU and vice versa (see :meth:`analogsim.chip.Chip.load`).

Files are written to a temporary name and renamed, so a crash never leaves half a chip.
Any failure to read (not HDF5, truncated, corrupt data, missing parts, newer format) raises
:class:`~analogsim.errors.ChipFileError` naming the file; a wrong chip is never returned.

Every byte that matters is checksummed: the file uses the HDF5 1.10 format objects (superblock
and object headers carry checksums), text attributes are fixed-length strings stored inside
the checksummed object headers (variable-length strings would live in the global heap, which
has no checksum; a flipped length byte there made HDF5 hang or crash), and each dataset
carries a BLAKE2b digest: Fletcher-32 alone cannot tell a 16-bit word 0x0000 from 0xFFFF, so
flipped zero bytes (common in float64 arrays) passed it and loaded as a wrong chip.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from analogsim import devices
from analogsim._arrays import to_numpy
from analogsim._tile_parameters import TileArrays
from analogsim.errors import BackendUnavailableError, ChipFileError
from analogsim.periphery import Periphery

if TYPE_CHECKING:
    from analogsim.chip import Chip

FORMAT = "analogsim-chip"
FORMAT_VERSION = 2
#: Oldest/newest HDF5 object versions used; 1.10's carry metadata checksums.
LIBVER = ("v110", "latest")


def save_chip(chip: Chip, path: Path) -> None:
    """Write ``chip`` to ``path`` atomically (temporary file, then rename)."""
    from analogsim import __version__

    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(temporary, "w", libver=LIBVER) as handle:
            handle.attrs["format"] = _text(FORMAT)
            handle.attrs["format_version"] = FORMAT_VERSION
            handle.attrs["analogsim_version"] = _text(__version__)
            handle.attrs["seed"] = chip.seed
            handle.attrs["time"] = chip.time
            handle.attrs["device"] = _text(json.dumps(chip.device.to_dict()))
            handle.attrs["periphery"] = _text(json.dumps(chip.periphery.to_dict()))
            handle.attrs["kernels"] = _text(chip.kernels.name)
            handle.attrs["backend"] = _text(chip.backend)
            handle.attrs["matmul_precision"] = _text(chip.kernels.precision)
            if chip.kernels.count_precision is not None:
                handle.attrs["count_precision"] = _text(chip.kernels.count_precision)
            handle.attrs["rng_state"] = _text(json.dumps(chip._runtime.bit_generator.state))
            group = handle.create_group("tiles")
            for index, tile in enumerate(chip.tiles.values()):
                _write_tile(group.create_group(f"{index:04d}"), tile)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())  # on disk before the rename makes it the chip file
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _text(value: str) -> np.bytes_:
    """A fixed-length UTF-8 string attribute (kept in the checksummed object header)."""
    return np.bytes_(value.encode("utf-8"))


def _read_text(attrs: h5py.AttributeManager, key: str) -> str:
    """A text attribute, fixed-length (bytes) or variable-length (str)."""
    value = attrs[key]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _write_tile(group: h5py.Group, tile) -> None:
    group.attrs["name"] = _text(tile.name)
    group.attrs["rows"] = tile.rows
    group.attrs["cols"] = tile.cols
    group.attrs["weight_scale"] = tile.weight_scale
    group.attrs["drift_reference"] = tile.drift_reference
    group.attrs["device"] = _text(json.dumps(tile.device.to_dict()))
    group.attrs["periphery"] = _text(json.dumps(tile.periphery.to_dict()))
    for name in TileArrays.field_names():
        values = to_numpy(getattr(tile.arrays, name))
        dataset = group.create_dataset(name, data=values, fletcher32=True)
        dataset.attrs["blake2b"] = _text(_digest(values))


def _digest(values: np.ndarray) -> str:
    """BLAKE2b digest of an array's dtype, shape and bytes (C order)."""
    digest = hashlib.blake2b(f"{values.dtype.str}{values.shape}".encode(), digest_size=16)
    digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def load_chip(path: Path, *, backend: str | None = None, kernels: str | None = None) -> Chip:
    """Read the chip in ``path`` onto ``backend`` with ``kernels`` (None: as saved, where
    possible; see :meth:`analogsim.chip.Chip.load`); see the module docstring for what
    raises."""
    if not path.exists():
        raise ChipFileError(f"Chip.load: no such file: {path}")
    try:
        with h5py.File(path, "r") as handle:
            return _read_chip(handle, path, backend, kernels)
    except (ChipFileError, BackendUnavailableError):
        raise
    except Exception as error:  # h5py raises OSError, KeyError, ValueError on damage
        raise ChipFileError(f"Chip.load: {path} is not a readable analogsim chip "
                            f"(truncated or corrupt HDF5?): {error}") from error


def _read_chip(handle: h5py.File, path: Path, backend: str | None,
               kernels: str | None) -> Chip:
    from analogsim.chip import Chip
    from analogsim.tile import Tile

    kind = _read_text(handle.attrs, "format") if "format" in handle.attrs else None
    if kind != FORMAT:
        raise ChipFileError(f"Chip.load: {path} is not an analogsim chip file "
                            f"(format attribute {kind!r}, expected {FORMAT!r}).")
    version = int(handle.attrs["format_version"])
    if version > FORMAT_VERSION:
        raise ChipFileError(f"Chip.load: {path} has format version {version}; this analogsim "
                            f"reads versions up to {FORMAT_VERSION}. Upgrade analogsim.")
    device = devices.from_dict(json.loads(_read_text(handle.attrs, "device")))
    periphery = Periphery(**json.loads(_read_text(handle.attrs, "periphery")))
    saved = {key: _read_text(handle.attrs, key) if key in handle.attrs else default
             for key, default in (("kernels", "numba"), ("backend", "cpu"),
                                  ("matmul_precision", "fp32"), ("count_precision", None))}
    backend, kernels, precision = _placement(saved, backend, kernels, path)
    chip = Chip(device, int(handle.attrs["seed"]), periphery=periphery, backend=backend,
                kernels=kernels, matmul_precision=precision,
                count_precision=_count_precision(saved["count_precision"], kernels, path))
    chip.time = float(handle.attrs["time"])
    chip._runtime.bit_generator.state = json.loads(_read_text(handle.attrs, "rng_state"))
    for key in sorted(handle["tiles"]):
        group = handle["tiles"][key]
        rows, cols = int(group.attrs["rows"]), int(group.attrs["cols"])
        tile_device = devices.from_dict(json.loads(_read_text(group.attrs, "device")))
        tile_periphery = Periphery(**json.loads(_read_text(group.attrs, "periphery")))
        arrays = TileArrays(**{name: _read_array(group, name, path, version)
                               for name in TileArrays.field_names()})
        _check_shapes(arrays, rows, cols, tile_device.devices_per_weight, path)
        tile = Tile(chip, _read_text(group.attrs, "name"), rows, cols, tile_device, tile_periphery,
                    arrays, float(group.attrs["weight_scale"]),
                    float(group.attrs["drift_reference"]))
        chip._tiles[tile.name] = tile
    return chip


def _placement(saved: dict[str, str], backend: str | None, kernels: str | None,
               path: Path) -> tuple[str, str | None, str]:
    """(backend, kernels, matmul precision) of a loaded chip: the requested ones, else the
    saved ones where they can run here, else the CPU's (with a warning when a chip saved on
    the GPU lands on the CPU). Kernels None means the backend's default set."""
    from analogsim.backends import cuda_simulator_enabled, cuda_unavailable_reason
    from analogsim.kernels import HOST_KERNEL_SETS

    if backend is None and kernels is not None:
        backend = "cuda" if kernels == "cuda" else "cpu"
    elif backend is None:
        backend = "cuda" if saved["backend"] == "cuda" else "cpu"
        reason = cuda_unavailable_reason() if backend == "cuda" else None
        if reason is not None:
            warnings.warn(f"Chip.load: {path} was saved on the GPU, which cannot run here "
                          f"({reason}); it is loaded on the CPU.", RuntimeWarning, stacklevel=4)
            backend = "cpu"
    elif backend == "auto" and kernels is None:
        backend = "cuda" if cuda_unavailable_reason() is None else "cpu"
    if kernels is None and backend == "cpu":
        runs = saved["kernels"] in HOST_KERNEL_SETS and (
            saved["kernels"] != "cudasim" or cuda_simulator_enabled())
        kernels = saved["kernels"] if runs else "numba"
    if kernels is None and backend == "cuda":
        kernels = "cuda"
    precision = saved["matmul_precision"]
    if kernels not in ("cuda", "cudasim"):
        precision = "fp32"  # the CPU kernels run fp32 only
    return backend, kernels, precision


def _count_precision(saved: str | None, kernels: str | None, path: Path) -> str | None:
    """The saved count precision where the loaded chip's kernels can run it (the CPU's:
    without PyTorch too, with the same counts), else None with a warning: the loaded chip's
    updates then count in the matmul precision."""
    if saved is None or kernels in ("numba", "numpy"):
        return saved
    warnings.warn(f"Chip.load: {path} was saved with count_precision={saved!r}, which cannot "
                  f"run here (the {kernels!r} kernels count in the matmul precision); the "
                  f"loaded chip counts in the matmul precision.", RuntimeWarning, stacklevel=4)
    return None


def _read_array(group: h5py.Group, name: str, path: Path, version: int) -> np.ndarray:
    if name not in group:
        raise ChipFileError(f"Chip.load: {path} lacks {group.name}/{name}; the file is "
                            f"incomplete.")
    dataset = group[name]
    values = np.ascontiguousarray(dataset[()])
    if version >= 2 and ("blake2b" not in dataset.attrs
                         or _read_text(dataset.attrs, "blake2b") != _digest(values)):
        raise ChipFileError(f"Chip.load: {path}: {dataset.name} fails its checksum; the file "
                            f"is corrupt.")
    return values


def _check_shapes(arrays: TileArrays, rows: int, cols: int, pairs: int, path: Path) -> None:
    expected = {name: (pairs, rows, cols) for name in TileArrays.field_names()}
    expected.update(adc_gain=(cols,), adc_offset=(cols,), adc_gain_rows=(rows,),
                    adc_offset_rows=(rows,))
    for name, shape in expected.items():
        actual = getattr(arrays, name).shape
        if actual != shape:
            raise ChipFileError(f"Chip.load: {path}: array {name!r} has shape {actual}, "
                                f"expected {shape}; the file is corrupt.")
