"""Reader for IDX files, the format of MNIST and Fashion-MNIST (plain or gzip-compressed).

An IDX file is a big-endian header followed by a raw array::

    magic   4 bytes: 0x00 0x00 <dtype code> <number of dimensions>
    dims    4 bytes (uint32, big-endian) per dimension
    payload prod(dims) items of the dtype, row-major

Only unsigned-byte files (dtype code 0x08) are read: 3-D images (magic 0x00000803) and 1-D
labels (magic 0x00000801). Any mismatch raises :class:`DatasetError` naming the file; the reader
never returns a partly read or misshapen array.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from analogsim.errors import DatasetError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_GZIP_SIGNATURE = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """Read the whole file, decompressing it when its name ends in ``.gz``."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot read the IDX file ({exc}).") from exc


def read_idx(path: str | os.PathLike[str], magic: int) -> np.ndarray:
    """Read an unsigned-byte IDX file and check its header against ``magic``.

    Parameters
    ----------
    path : str or os.PathLike
        The file; a name ending in ``.gz`` is decompressed with gzip.
    magic : int
        Expected magic number, e.g. :data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`; its low byte is
        the number of dimensions.

    Returns
    -------
    numpy.ndarray, shape given by the header, dtype uint8
        Read-only view of the payload.

    Raises
    ------
    DatasetError
        The file cannot be read, the magic number differs, the header is cut short, a dimension
        is zero, or the payload is not exactly ``prod(dims)`` bytes.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(
            f"{path}: the file is {len(data)} bytes long, too short for an IDX header."
        )
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        hint = ""
        if data[:2] == _GZIP_SIGNATURE and path.suffix != ".gz":
            hint = " The file looks gzip-compressed: give its name a '.gz' suffix."
        raise DatasetError(
            f"{path}: bad magic number 0x{found:08x}, expected 0x{magic:08x} "
            f"(unsigned-byte IDX file with {magic & 0xFF} dimension(s)); the file is not the "
            f"expected IDX file or is corrupt.{hint}"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(
            f"{path}: truncated header: {ndim} dimensions need a {header}-byte header, but the "
            f"file is {len(data)} bytes long."
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if 0 in dims:
        raise DatasetError(f"{path}: the header's dimensions {dims} include a zero: no data.")
    expected = math.prod(dims)
    actual = len(data) - header
    if actual != expected:
        what = "truncated" if actual < expected else f"{actual - expected} trailing bytes"
        raise DatasetError(
            f"{path}: wrong payload length ({what}): the header's dimensions {dims} need "
            f"{expected} bytes after the {header}-byte header, but the file holds {actual}."
        )
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header).reshape(dims)


def read_images(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX image file (magic 0x00000803).

    Returns
    -------
    numpy.ndarray, shape (n_images, rows, cols), dtype uint8
    """
    return read_idx(path, IMAGES_MAGIC)


def read_labels(path: str | os.PathLike[str], n_classes: int = 10) -> np.ndarray:
    """Read an IDX label file (magic 0x00000801) and check every label is below ``n_classes``.

    Returns
    -------
    numpy.ndarray, shape (n_labels,), dtype uint8
    """
    labels = read_idx(path, LABELS_MAGIC)
    top = int(labels.max())
    if top >= n_classes:
        bad = int(np.argmax(labels >= n_classes))
        raise DatasetError(
            f"{path}: labels must lie in [0, {n_classes}), but label {int(labels[bad])} at "
            f"index {bad} does not (largest label: {top})."
        )
    return labels
