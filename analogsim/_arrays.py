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
    array = np.ascontiguousarray(array, dtype=np.float32)
    check_finite(array, owner, name)
    return array, was_vector


def as_matrix(values: object, shape: tuple[int, int], owner: str, name: str) -> np.ndarray:
    """``values`` as a C-contiguous float32 array of exactly ``shape``, finite."""
    array = np.asarray(values)
    if array.shape != shape:
        raise ShapeError(f"The '{name}' argument of {owner} must have shape {shape}. "
                         f"Got {array.shape} instead.")
    array = np.ascontiguousarray(array, dtype=np.float32)
    check_finite(array, owner, name)
    return array


def check_finite(array: np.ndarray, owner: str, name: str) -> None:
    """Raise :class:`NonFiniteInputError` if ``array`` holds NaN or infinity."""
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - np.count_nonzero(finite))
        first = tuple(int(k) for k in np.argwhere(~finite)[0])
        raise NonFiniteInputError(f"The '{name}' argument of {owner} must be finite; it holds "
                                  f"{bad} NaN/inf value(s), the first at index {first}.")
