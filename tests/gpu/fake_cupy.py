"""A stand-in for CuPy on the CPU, to test the device-array paths of the tile without a GPU.

``install()`` registers a module named ``cupy`` whose arrays are a NumPy subclass living in
host memory (so the CUDA kernels run on them under Numba's simulator), with what a tile
relies on from CuPy: creation functions returning device arrays, ``ndarray.get``,
``asnumpy``, ``from_dlpack``, ``matmul``, ``einsum``. Like CuPy it refuses to mix its arrays
with NumPy arrays in one operation (CuPy raises ``TypeError: Unsupported type``), so a NumPy
array created by mistake in the tile's device path fails the tests here as it would on a
GPU.

:class:`FakeCudaTensor` stands in for a torch CUDA tensor: it exports DLPack from a CUDA
device; this module's :func:`from_dlpack` turns a device array back into one (as
``torch.from_dlpack`` does).
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from typing import Any

import numpy as np


class ndarray(np.ndarray):  # the name CuPy uses
    """A "device" array (host memory underneath)."""

    __module__ = "cupy"

    def get(self) -> np.ndarray:
        return np.array(self.view(np.ndarray), copy=True)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_host_arrays(inputs + tuple(kwargs.get("out", ())))
        plain = [x.view(np.ndarray) if isinstance(x, ndarray) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(x.view(np.ndarray) if isinstance(x, ndarray) else x
                                  for x in kwargs["out"])
        return _wrap(getattr(ufunc, method)(*plain, **kwargs))

    def __array_function__(self, func, types_, args, kwargs):
        _refuse_host_arrays(_flatten(args) + _flatten(tuple(kwargs.values())))
        return _wrap(super().__array_function__(func, (np.ndarray,),
                                                _unwrap(args), _unwrap(kwargs)))


def _flatten(values: tuple) -> tuple:
    flat: list[Any] = []
    for value in values:
        if isinstance(value, list | tuple):
            flat.extend(_flatten(tuple(value)))
        else:
            flat.append(value)
    return tuple(flat)


def _refuse_host_arrays(values: tuple) -> None:
    for value in values:
        if type(value) is np.ndarray and value.ndim > 0:
            raise TypeError(f"Unsupported type {type(value)} (fake CuPy: a NumPy array mixed "
                            f"with device arrays)")


def _unwrap(value: Any) -> Any:
    if isinstance(value, ndarray):
        return value.view(np.ndarray)
    if isinstance(value, tuple):
        return tuple(_unwrap(v) for v in value)
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value: Any) -> Any:
    if type(value) is np.ndarray:
        return value.view(ndarray)
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


def asarray(values: Any, dtype: Any = None) -> ndarray:
    if type(values) is np.ndarray or not isinstance(values, np.ndarray):
        return np.array(values, dtype=dtype, copy=True).view(ndarray)  # a host-to-device copy
    return np.asarray(values, dtype=dtype).view(ndarray)


def asnumpy(values: Any) -> np.ndarray:
    return values.get() if isinstance(values, ndarray) else np.asarray(values)


def from_dlpack(values: Any) -> ndarray:
    """CuPy's ``from_dlpack`` of a :class:`FakeCudaTensor` (no copy)."""
    if isinstance(values, FakeCudaTensor):
        return values.data.view(ndarray)
    if isinstance(values, ndarray):  # as torch.from_dlpack: this module's tensor back
        return values
    raise TypeError(f"fake from_dlpack: {type(values)}")


class FakeCudaTensor:
    """A torch CUDA tensor stand-in holding a NumPy array."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = np.asarray(data)

    def __dlpack__(self, stream: Any = None) -> Any:  # pragma: no cover - not called
        raise AssertionError("use from_dlpack")

    def __dlpack_device__(self) -> tuple[int, int]:
        return (2, 0)  # kDLCUDA, device 0


def tensor_from_dlpack(values: ndarray) -> FakeCudaTensor:
    """``torch.from_dlpack`` for the stand-in: found by the tile as ``from_dlpack`` of the
    tensor's module, which :func:`install` points at this."""
    return FakeCudaTensor(values.get())


_CREATION = ("empty", "empty_like", "zeros", "zeros_like", "ones", "ones_like", "full",
             "ascontiguousarray", "arange", "stack", "where", "abs", "sign", "sqrt", "maximum",
             "minimum", "clip", "floor", "isfinite", "matmul", "einsum", "max", "any",
             "count_nonzero", "argwhere")


def install() -> types.ModuleType:
    """Register the stand-in as ``cupy`` (and return it). Call :func:`uninstall` after."""
    module = types.ModuleType("cupy")
    module.__spec__ = importlib.machinery.ModuleSpec("cupy", None)
    module.ndarray = ndarray
    module.asarray = asarray
    module.asnumpy = asnumpy
    module.from_dlpack = from_dlpack
    module.float32, module.float64, module.uint64 = np.float32, np.float64, np.uint64
    for name in _CREATION:
        function = getattr(np, name)

        def device_function(*args: Any, _function: Any = function, **kwargs: Any) -> Any:
            _refuse_host_arrays(_flatten(args))
            return _wrap(_function(*_unwrap(args), **_unwrap(kwargs)))

        setattr(module, name, device_function)
    sys.modules["cupy"] = module
    # The tile hands DLPack results back through the input's module: FakeCudaTensor's.
    FakeCudaTensor.__module__ = "fake_torch"
    torch_like = types.ModuleType("fake_torch")
    torch_like.from_dlpack = tensor_from_dlpack
    sys.modules["fake_torch"] = torch_like
    return module


def uninstall() -> None:
    sys.modules.pop("cupy", None)
    sys.modules.pop("fake_torch", None)
