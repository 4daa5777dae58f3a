"""Input checks for arrays: shape, dtype, finiteness, with messages that name the argument."""

from __future__ import annotations

import numpy as np

from analogsim.errors import NonFiniteInputError, ShapeError


def as_batch(values: object, width: int, owner: str, name: str) -> tuple[np.ndarray, bool]:
    """``values`` as a C-contiguous float32 (B, width) array; 1-D input becomes one row.

    Returns the array and whether the input was 1-D (so the caller can return 1-D).
    """
    array = np.asarray(values)
    if array.dtype.kind not in "fiub":
        raise ShapeError(f"The '{name}' argument of {owner} must be a numeric array. "
                         f"Got dtype {array.dtype} instead.")
    was_vector = array.ndim == 1
    if was_vector:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != width:
        raise ShapeError(f"The '{name}' argument of {owner} must have shape (batch, {width}) "
                         f"or ({width},). Got {np.shape(values)} instead.")
    if array.shape[0] == 0:
        raise ShapeError(f"The '{name}' argument of {owner} is empty (shape {array.shape}).")
    return _to_float32(array, owner, name), was_vector


def as_matrix(values: object, shape: tuple[int, int], owner: str, name: str) -> np.ndarray:
    """``values`` as a C-contiguous float32 array of exactly ``shape``, finite."""
    array = np.asarray(values)
    if array.shape != shape:
        raise ShapeError(f"The '{name}' argument of {owner} must have shape {shape}. "
                         f"Got {array.shape} instead.")
    return _to_float32(array, owner, name)


def _to_float32(array: np.ndarray, owner: str, name: str) -> np.ndarray:
    """Finite input as C-contiguous float32; values beyond float32's range are named as such."""
    if array.dtype.kind == "f":
        check_finite(array, owner, name)
    largest = float(np.finfo(np.float32).max)
    if array.dtype.kind == "f" and array.dtype.itemsize > 4 and np.abs(array).max() > largest:
        raise NonFiniteInputError(f"The '{name}' argument of {owner} must fit in float32 "
                                  f"(|x| <= {largest:.3g}); its largest magnitude is "
                                  f"{float(np.abs(array).max()):.3g}.")
    return np.ascontiguousarray(array, dtype=np.float32)


def check_finite(array: np.ndarray, owner: str, name: str) -> None:
    """Raise :class:`NonFiniteInputError` if ``array`` holds NaN or infinity."""
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - np.count_nonzero(finite))
        first = tuple(int(k) for k in np.argwhere(~finite)[0])
        raise NonFiniteInputError(f"The '{name}' argument of {owner} must be finite; it holds "
                                  f"{bad} NaN/inf value(s), the first at index {first}.")
