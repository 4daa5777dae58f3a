"""Kernels: free functions with preallocated outputs, one module per operation.

Each operation has a NumPy reference and a compiled version; :func:`get_kernels` is the one
dispatch point that picks an implementation set by name: "numba" (the CPU default), "numpy"
(the references), "cuda" (the Numba CUDA kernels on CuPy arrays, matmuls in cuBLAS; needs
an NVIDIA GPU) and "cudasim" (the same CUDA kernels on Numba's CPU simulator with NumPy
arrays, for testing the GPU path without a GPU; needs ``NUMBA_ENABLE_CUDASIM=1`` before Numba
is imported). Every set has the same functions with the same signatures; a tile allocates its
arrays with the set's ``xp`` and does its matrix products with its ``matmul``. Nothing here
touches a GPU or sets threads at import time.

Numba keys a cached kernel to the time stamp of its own file only, so after an edit of a
function it inlines from another file (``scalar.py``, ``counter_rng.py``,
``device_rules.py``) it would go on loading the old machine code. The compiled CPU kernels are
therefore cached in a directory named after a digest of every source file of this package
(under ``$NUMBA_CACHE_DIR`` if set, else ``~/.cache/analogsim/numba``; if it cannot be
written, Numba falls back to ``__pycache__``): any change of the kernel sources compiles
afresh. Only the caching of the kernel modules imported below is redirected; Numba's setting
for other code is left as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analogsim._validation import check_choice
from analogsim.errors import BackendUnavailableError, ParameterError

KERNEL_SETS = ("numba", "numpy", "cuda", "cudasim")
#: The sets whose arrays live in host memory (NumPy).
HOST_KERNEL_SETS = ("numba", "numpy", "cudasim")
#: Precisions of the tile matmuls (see :mod:`analogsim.kernels.cuda.matmul`): "fp32" on every
#: set; "tf32" and "bf16" (tensor cores) on "cuda", emulated on "cudasim".
MATMUL_PRECISIONS = ("fp32", "tf32", "bf16")
#: Precisions of the fast sampler's count matmuls besides the tile matmuls' own (None):
#: "int8", exact int8 matmuls on the CPU sets (:mod:`analogsim.kernels.count_means_int8`).
COUNT_PRECISIONS = (None, "int8")
#: Below this many elements of work a Numba kernel runs on the calling thread only: for small
#: tiles the parallel launch costs more than the work (measured: a 16 x 16 fast update takes
#: 0.35 ms on one thread and several ms on two).
SERIAL_BELOW = 1 << 15


@dataclass(frozen=True)
class KernelSet:
    """The implementations a tile calls, by operation."""

    name: str
    effective_weights: Any
    program: Any
    quantize: Any
    epilogue: Any
    count_means: Any
    apply_fast: Any
    pulse_trains: Any
    apply_exact: Any
    xp: Any = np
    #: ``matmul(a, b)``: the tile's matrix products (forward, backward, variance, counts).
    matmul: Any = np.matmul
    #: The precision ``matmul`` runs in (one of :data:`MATMUL_PRECISIONS`).
    precision: str = "fp32"
    #: The precision of ``count_means`` when not ``precision`` (one of
    #: :data:`COUNT_PRECISIONS`).
    count_precision: str | None = None


def get_kernels(name: str = "numba", *, precision: str = "fp32",
                count_precision: str | None = None) -> KernelSet:
    """The kernel set called ``name`` (one of :data:`KERNEL_SETS`).

    Parameters
    ----------
    name : "numba", "numpy", "cuda" or "cudasim"
    precision : "fp32", "tf32" or "bf16"
        Precision of the matmuls; the reduced ones need "cuda" (or "cudasim", which
        emulates their rounding).
    count_precision : None or "int8"
        None: the fast sampler's count means come from two matmuls in ``precision``.
        "int8": from exact int8 matmuls of the inputs quantized per column
        (:mod:`analogsim.kernels.count_means_int8`); CPU sets only. "numba" multiplies
        the levels with PyTorch's int8 matmul, or without PyTorch in exact float32 (the
        same counts, no faster than None; a RuntimeWarning says so); "numpy" runs the
        NumPy reference.

    Raises
    ------
    BackendUnavailableError
        "cuda" without a usable GPU (the message says what is missing), "cudasim" without
        ``NUMBA_ENABLE_CUDASIM=1``.
    """
    check_choice("get_kernels", "name", name, KERNEL_SETS)
    check_choice("get_kernels", "precision", precision, MATMUL_PRECISIONS)
    check_choice("get_kernels", "count_precision", count_precision, COUNT_PRECISIONS)
    if count_precision is not None and name in ("cuda", "cudasim"):
        raise ParameterError(f"get_kernels: count_precision={count_precision!r} runs on the "
                             f"CPU (kernels 'numba' or 'numpy'); the GPU's count matmuls run in "
                             f"the matmul precision ({precision!r}): leave count_precision out.")
    if name in ("cuda", "cudasim"):
        return _cuda_kernels(name, precision)
    if precision != "fp32":
        raise ParameterError(f"get_kernels: precision={precision!r} runs on the tensor cores "
                             f"of a GPU (kernels 'cuda'; 'cudasim' emulates it); the CPU kernel "
                             f"set {name!r} runs 'fp32' only.")
    kernels = _host_kernels(name)
    if count_precision is None:
        return kernels
    from analogsim.kernels import count_means_int8

    if name == "numba":
        means = _size_aware(count_means_int8.Int8CountMeans(), _count_work)
    else:
        means = count_means_int8.pulse_count_means_int8_numpy
    return dataclasses.replace(kernels, count_means=means, count_precision=count_precision)


def _count_work(args: tuple) -> int:
    """The work of a ``count_means(x, d, ...)`` call, for :func:`_size_aware`: the devices
    it counts for, ``R C``."""
    return args[0].shape[1] * args[1].shape[1]


def _host_kernels(name: str) -> KernelSet:
    """The "numba" or "numpy" set, fp32."""
    from analogsim.kernels import drift, mvm, program, pulsed_update

    if name == "numba":
        return KernelSet(
            name="numba",
            effective_weights=_size_aware(drift.effective_weights_numba, lambda a: a[0].size),
            program=_size_aware(program.program_numba, lambda a: a[0].size),
            quantize=mvm.quantize_inputs_numba,
            epilogue=_size_aware(mvm.epilogue_numba, lambda a: a[0].size),
            count_means=_size_aware(pulsed_update.pulse_count_means, _count_work),
            apply_fast=_size_aware(pulsed_update.apply_fast_numba, lambda a: a[0].size),
            pulse_trains=_size_aware(pulsed_update.pulse_trains_numba,
                                     lambda a: a[0].size * a[1]),
            apply_exact=_size_aware(pulsed_update.apply_exact_numba,
                                    lambda a: a[0].size * a[2].shape[0]),
        )
    from analogsim.kernels import pulsed_update_numpy

    return KernelSet(
        name="numpy",
        effective_weights=drift.effective_weights_numpy,
        program=program.program_numpy,
        quantize=mvm.quantize_inputs,
        epilogue=mvm.epilogue_numpy,
        count_means=pulsed_update_numpy.pulse_count_means_numpy,
        apply_fast=pulsed_update_numpy.apply_fast_numpy,
        pulse_trains=pulsed_update_numpy.pulse_trains_numpy,
        apply_exact=pulsed_update_numpy.apply_exact_numpy,
    )


def _cuda_kernels(name: str, precision: str) -> KernelSet:
    """The "cuda" set (CuPy arrays, a GPU) or the "cudasim" set (NumPy arrays, simulator)."""
    from analogsim.backends import cuda_simulator_enabled, cuda_unavailable_reason

    if name == "cudasim":
        if not cuda_simulator_enabled():
            raise BackendUnavailableError(
                "get_kernels: the 'cudasim' kernel set runs the CUDA kernels on Numba's CPU "
                "simulator, which needs NUMBA_ENABLE_CUDASIM=1 in the environment before Numba "
                "is imported; it is not set in this process. Use 'numba' on the CPU.")
        from analogsim.kernels.cuda import get_cuda_kernels

        return get_cuda_kernels(np, precision=precision, name="cudasim")
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise BackendUnavailableError(f"get_kernels: the 'cuda' kernel set needs an NVIDIA GPU "
                                      f"with CuPy and numba-cuda (pip install "
                                      f"'analogsim[gpu]'); {reason}.")
    import cupy

    from analogsim.kernels.cuda import get_cuda_kernels

    return get_cuda_kernels(cupy, precision=precision, name="cuda")


def _size_aware(kernel: Any, work: Any) -> Any:
    """Call ``kernel`` on one thread when ``work(args)`` is below :data:`SERIAL_BELOW`."""
    import numba

    def call(*args: Any, **options: Any) -> Any:
        if work(args) >= SERIAL_BELOW:
            return kernel(*args, **options)
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return kernel(*args, **options)
        finally:
            numba.set_num_threads(threads)

    call.__name__ = call.__qualname__ = kernel.__name__
    call.__doc__ = kernel.__doc__
    call.kernel = kernel  # type: ignore[attr-defined]
    return call


def get_xp(array: Any) -> Any:
    """The array module of ``array``: CuPy for CuPy arrays, NumPy otherwise."""
    module = type(array).__module__
    if module.startswith("cupy"):
        import cupy

        return cupy
    return np


__all__ = ["COUNT_PRECISIONS", "HOST_KERNEL_SETS", "KERNEL_SETS", "MATMUL_PRECISIONS", "KernelSet",
           "get_kernels", "get_xp"]


def sources_digest() -> str:
    """BLAKE2b digest (16 hex digits) of this package's source files, names and contents."""
    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _cache_keyed_by_sources() -> Iterator[str]:
    """Numba's cache directory, for the kernels compiled (decorated) inside, keyed by
    :func:`sources_digest`; restored afterwards."""
    import numba

    previous = numba.config.CACHE_DIR
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    base = previous or os.path.join(os.path.expanduser(cache_home), "analogsim", "numba")
    numba.config.CACHE_DIR = os.path.join(base, f"analogsim-kernels-{sources_digest()}")
    try:
        yield numba.config.CACHE_DIR
    finally:
        numba.config.CACHE_DIR = previous


with _cache_keyed_by_sources():
    # The modules whose kernels are cached (``cache=True``): decorated here, so that their
    # cache files live in the keyed directory.
    from analogsim.kernels import (  # noqa: F401
        count_means_int8,
        drift,
        mvm,
        program,
        pulsed_update,
    )
