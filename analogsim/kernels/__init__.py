"""Kernels: free functions with preallocated outputs, one module per operation.

Each operation has a NumPy reference and a compiled version; :func:`get_kernels` is the one
dispatch point that picks an implementation set by name ("numba" for the CPU default,
"numpy" for the references; "cuda" is added by the GPU backend). Nothing here touches a GPU
or sets threads at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analogsim._validation import check_choice

KERNEL_SETS = ("numba", "numpy")
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


def get_kernels(name: str = "numba") -> KernelSet:
    """The kernel set called ``name`` ("numba" or "numpy")."""
    check_choice("get_kernels", "name", name, KERNEL_SETS)
    from analogsim.kernels import drift, mvm, program, pulsed_update

    if name == "numba":
        return KernelSet(
            name="numba",
            effective_weights=_size_aware(drift.effective_weights_numba, lambda a: a[0].size),
            program=_size_aware(program.program_numba, lambda a: a[0].size),
            quantize=mvm.quantize_inputs_numba,
            epilogue=_size_aware(mvm.epilogue_numba, lambda a: a[0].size),
            count_means=_size_aware(pulsed_update.pulse_count_means,
                                    lambda a: a[0].shape[1] * a[1].shape[1]),
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


def _size_aware(kernel: Any, work: Any) -> Any:
    """Call ``kernel`` on one thread when ``work(args)`` is below :data:`SERIAL_BELOW`."""
    import numba

    def call(*args: Any) -> Any:
        if work(args) >= SERIAL_BELOW:
            return kernel(*args)
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return kernel(*args)
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


__all__ = ["KERNEL_SETS", "KernelSet", "get_kernels", "get_xp"]
