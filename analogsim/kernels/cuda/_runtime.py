"""Lazy access to Numba CUDA, launch configuration and the CuPy stream.

Nothing here imports ``numba.cuda`` or CuPy at import time: the first kernel call does. Under
``NUMBA_ENABLE_CUDASIM=1`` (set before Numba is imported) ``numba.cuda`` is Numba's CPU
simulator and the same kernels run as Python on host arrays, which is how they are tested
without a GPU.
"""

from __future__ import annotations

import functools
import importlib.metadata
import sys
import warnings
from collections.abc import Callable
from importlib import import_module
from typing import Any

import numpy as np

from analogsim.errors import BackendUnavailableError, ShapeError

#: Threads per block on a GPU (a multiple of the warp size).
THREADS_PER_BLOCK = 256
#: Threads per block under the simulator, where each thread is a Python thread.
SIMULATOR_THREADS_PER_BLOCK = 32
#: Blocks per multiprocessor before the grid-stride loops take over.
BLOCKS_PER_SM = 32


def cuda_module() -> Any:
    """``numba.cuda`` (the simulator when ``NUMBA_ENABLE_CUDASIM=1``), imported on first use.

    On a GPU it must be NVIDIA's numba-cuda: the CUDA target built into Numba is deprecated,
    and on Numba 0.68 it types ``max(a, b)`` of two scalars as the one-argument iterable
    overload, which the scalar physics uses (its simulator is fine either way).
    """
    from numba import cuda

    if "simulator" not in cuda.jit.__module__ and getattr(cuda, "implementation",
                                                          "") != "NVIDIA":
        raise BackendUnavailableError(
            "The CUDA kernels need the numba-cuda package (pip install 'numba-cuda[cu13]', or "
            "[cu12] for a CUDA 12 driver); Numba's deprecated built-in CUDA target is in use.")
    if "simulator" not in cuda.jit.__module__:
        _check_numpy_support()
    return cuda


def _check_numpy_support() -> None:
    """Fail early, and say why, where numba-cuda cannot type NumPy.

    numba-cuda 0.30 (its last release; the project is in maintenance) registers a typing for
    ``np.row_stack``, which NumPy 2.5 removed: its array typing module then fails to import,
    and every kernel's first compile fails deep inside Numba with an ``AttributeError``
    (seen on an H100 with NumPy 2.5.2 and numba-cuda 0.30.4). The ``gpu`` extras therefore
    ask for ``numpy<2.5``.
    """
    if hasattr(np, "row_stack"):
        return
    try:
        import_module("numba.cuda.np.arrayobj")
    except AttributeError as error:
        raise BackendUnavailableError(
            f"numba-cuda {_version('numba-cuda')} cannot compile kernels with NumPy "
            f"{np.__version__} ({error}); install NumPy < 2.5 (pip install 'numpy<2.5', as "
            "the 'gpu' extras ask) or a numba-cuda release that supports it.") from error
    except ImportError:  # a layout without that module: nothing to check
        return


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


def in_simulator() -> bool:
    """True when ``numba.cuda`` is Numba's CPU simulator."""
    return "simulator" in cuda_module().jit.__module__


@functools.cache
def scalar_physics() -> Any:
    """The scalar physics of :mod:`analogsim.kernels.scalar` and the per-weight rules of
    :mod:`analogsim.kernels.device_rules` as CUDA device functions (``.rules``)."""
    from analogsim.kernels.device_rules import build_device_rules
    from analogsim.kernels.scalar import build

    device_jit = cuda_module().jit(device=True)
    physics = build(device_jit)
    physics.rules = build_device_rules(device_jit, physics)
    return physics


@functools.cache
def _max_blocks() -> int:
    if in_simulator():
        return 1 << 30
    device = cuda_module().get_current_device()
    return int(device.MULTIPROCESSOR_COUNT) * BLOCKS_PER_SM


def _stream() -> Any:
    """The stream to launch on: CuPy's current stream when CuPy is in use, else the default.

    Launching on CuPy's stream orders the kernels after the cuBLAS matmuls that produced
    their inputs without a device-wide synchronisation.
    """
    cupy = sys.modules.get("cupy")
    if cupy is None or in_simulator():
        return 0
    pointer = cupy.cuda.get_current_stream().ptr
    return 0 if pointer == 0 else _external_stream(pointer)


@functools.lru_cache(maxsize=16)
def _external_stream(pointer: int) -> Any:
    return cuda_module().external_stream(pointer)


def launch(kernel: Callable[..., Any], n_items: int, *args: Any) -> None:
    """Launch a grid-stride ``kernel`` over ``n_items`` work items (one thread each at most).

    Under the simulator, the deliberate uint64 wrap-around of the counter-based generator
    (which NumPy scalars report as overflow) is not warned about.
    """
    if n_items <= 0:
        return
    simulated = in_simulator()
    threads = SIMULATOR_THREADS_PER_BLOCK if simulated else THREADS_PER_BLOCK
    blocks = max(1, min(-(-n_items // threads), _max_blocks()))
    if not simulated:
        kernel[blocks, threads, _stream()](*(_device_view(arg) for arg in args))
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="overflow encountered",
                                category=RuntimeWarning)
        kernel[blocks, threads](*args)


def _device_view(arg: Any) -> Any:
    """A CuPy (or torch, or any ``__cuda_array_interface__``) array as a Numba device array.

    Passed as is, Numba would synchronise the host with the stream each foreign array names,
    once per array and launch. The kernels run on CuPy's current stream, which already orders
    them after the work that produced their inputs, so the view drops the stream.
    """
    if hasattr(arg, "__cuda_array_interface__") and not type(arg).__module__.startswith(
            "numba"):
        interface = dict(arg.__cuda_array_interface__)
        interface.pop("stream", None)
        return cuda_module().from_cuda_array_interface(interface, owner=arg, sync=False)
    return arg


def small_constant(array: Any) -> Any:
    """A small host vector (device parameters, signs) made a device array on a real GPU.

    Device arrays and CuPy arrays pass through; under the simulator host arrays pass too.
    """
    if isinstance(array, np.ndarray) and not in_simulator():
        return cuda_module().to_device(np.ascontiguousarray(array))
    return array


def check_shape(owner: str, name: str, array: Any, shape: tuple[int, ...]) -> None:
    """Raise :class:`ShapeError` unless ``array.shape == shape``."""
    if tuple(array.shape) != tuple(shape):
        raise ShapeError(f"The '{name}' argument of {owner} must have shape {tuple(shape)}. "
                         f"Got {tuple(array.shape)} instead.")


def as_key(key: Any) -> np.uint64:
    """A stream key as ``numpy.uint64`` (a Python int above 2**63 would not type as int64)."""
    return np.uint64(int(key) & 0xFFFFFFFFFFFFFFFF)
