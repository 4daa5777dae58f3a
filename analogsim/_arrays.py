"""Input checks for arrays: shape, dtype, finiteness, with messages that name the argument.

Also the array kinds a tile accepts and returns (see ``docs/architecture.md``): NumPy (and
anything :func:`numpy.asarray` takes: lists, CPU tensors), CuPy, and objects on a CUDA device
that speak DLPack (``__dlpack__``/``__dlpack_device__``, e.g. torch CUDA tensors). A tile
moves its inputs to its own array module (``xp``: NumPy on the CPU, CuPy on the GPU) with
:func:`to_backend` and hands results back in the input's kind with :func:`to_kind`. Nothing
here imports CuPy unless a CuPy or CUDA input, or a CUDA tile, needs it.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from analogsim.errors import BackendUnavailableError, NonFiniteInputError, ShapeError

#: The kinds :func:`input_kind` tells apart.
KINDS = ("numpy", "cupy", "dlpack")
#: DLPack device types of CUDA memory (kDLCUDA, kDLCUDAManaged).
_DLPACK_CUDA = (2, 13)


def input_kind(values: object) -> str:
    """"cupy" for CuPy arrays, "dlpack" for other arrays on a CUDA device that export DLPack
    (torch CUDA tensors), "numpy" for everything else (results go back as NumPy)."""
    if type(values).__module__.startswith("cupy"):
        return "cupy"
    if isinstance(values, np.ndarray):
        return "numpy"
    device = getattr(values, "__dlpack_device__", None)
    if device is not None and hasattr(values, "__dlpack__"):
        try:
            device_type = int(device()[0])
        except Exception:
            return "numpy"
        if device_type in _DLPACK_CUDA:
            return "dlpack"
    return "numpy"


def _cupy(why: str) -> Any:
    try:
        import cupy
    except ImportError as error:
        raise BackendUnavailableError(f"{why} needs CuPy, which is not installed (pip install "
                                      f"'analogsim[gpu]').") from error
    return cupy


def to_backend(values: object, xp: Any) -> Any:
    """``values`` as an array of the module ``xp`` (NumPy or CuPy), copied only if needed.

    CuPy arrays and CUDA DLPack objects reach a NumPy tile through the host; NumPy input
    reaches a CuPy tile with one host-to-device copy; a CUDA DLPack object becomes a CuPy
    array without a copy.
    """
    kind = input_kind(values)
    if xp is np:
        if kind == "cupy":
            return values.get()  # type: ignore[attr-defined]
        if kind == "dlpack":
            cupy = _cupy(f"Reading a CUDA array of type {type(values).__name__} on the CPU")
            return cupy.from_dlpack(values).get()
        return np.asarray(values)
    if kind == "cupy":
        return xp.asarray(values)
    if kind == "dlpack":
        return xp.from_dlpack(values)
    return xp.asarray(np.asarray(values))


def to_numpy(array: Any) -> np.ndarray:
    """A NumPy array (CuPy arrays are copied to the host)."""
    if type(array).__module__.startswith("cupy"):
        return array.get()
    return np.asarray(array)


def to_kind(result: Any, kind: str, like: object) -> Any:
    """``result`` (NumPy or CuPy) in the ``kind`` of the input ``like`` (see
    :func:`input_kind`): NumPy, CuPy, or the input's own library through DLPack."""
    if kind == "numpy":
        return to_numpy(result)
    cupy = _cupy("Returning a CUDA array")
    on_device = cupy.asarray(result)
    if kind == "cupy":
        return on_device
    library = sys.modules.get(type(like).__module__.split(".")[0])
    from_dlpack = getattr(library, "from_dlpack", None)
    return on_device if from_dlpack is None else from_dlpack(on_device)


def as_batch(values: object, width: int, owner: str, name: str,
             xp: Any = np) -> tuple[Any, bool]:
    """``values`` as a C-contiguous float32 (B, width) array of ``xp``; 1-D input becomes one
    row.

    Returns the array and whether the input was 1-D (so the caller can return 1-D).
    """
    array = to_backend(values, xp)
    if array.dtype.kind not in "fiub":
        raise ShapeError(f"The '{name}' argument of {owner} must be a numeric array. "
                         f"Got dtype {array.dtype} instead.")
    was_vector = array.ndim == 1
    if was_vector:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != width:
        given = tuple(array.shape[1:]) if was_vector else tuple(array.shape)
        raise ShapeError(f"The '{name}' argument of {owner} must have shape (batch, {width}) "
                         f"or ({width},). Got {given} instead.")
    if array.shape[0] == 0:
        raise ShapeError(f"The '{name}' argument of {owner} is empty (shape {array.shape}).")
    return _to_float32(array, owner, name), was_vector


def as_matrix(values: object, shape: tuple[int, int], owner: str, name: str,
              xp: Any = np) -> Any:
    """``values`` as a C-contiguous float32 array of ``xp`` of exactly ``shape``, finite."""
    array = to_backend(values, xp)
    if array.shape != shape:
        raise ShapeError(f"The '{name}' argument of {owner} must have shape {shape}. "
                         f"Got {tuple(array.shape)} instead.")
    return _to_float32(array, owner, name)


def _to_float32(array: Any, owner: str, name: str) -> Any:
    """Finite input as C-contiguous float32; values beyond float32's range are named as such."""
    xp = _module_of(array)
    if array.dtype.kind == "f":
        check_finite(array, owner, name)
    largest = float(np.finfo(np.float32).max)
    if array.dtype.kind == "f" and array.dtype.itemsize > 4 and bool(
            xp.abs(array).max() > largest):
        raise NonFiniteInputError(f"The '{name}' argument of {owner} must fit in float32 "
                                  f"(|x| <= {largest:.3g}); its largest magnitude is "
                                  f"{float(xp.abs(array).max()):.3g}.")
    return xp.ascontiguousarray(array, dtype=np.float32)


def _module_of(array: Any) -> Any:
    if type(array).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def check_finite(array: Any, owner: str, name: str) -> None:
    """Raise :class:`NonFiniteInputError` if ``array`` (NumPy or CuPy) holds NaN or infinity."""
    xp = _module_of(array)
    finite = xp.isfinite(array)
    if not bool(finite.all()):
        bad = int(array.size - int(xp.count_nonzero(finite)))
        first = tuple(int(k) for k in xp.argwhere(~finite)[0])
        raise NonFiniteInputError(f"The '{name}' argument of {owner} must be finite; it holds "
                                  f"{bad} NaN/inf value(s), the first at index {first}.")
