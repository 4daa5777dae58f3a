"""CUDA kernels: the GPU versions of the tile operations, written with Numba CUDA.

Each operation has a ``@cuda.jit`` kernel and a host wrapper with the same signature as the
CPU kernel it mirrors (:mod:`analogsim.kernels.mvm`, ``pulsed_update``, ``program``,
``drift``). The wrappers take device arrays: CuPy arrays on a GPU (through
``__cuda_array_interface__``, launched on CuPy's current stream) or Numba device arrays. The
matmuls themselves stay in cuBLAS (:mod:`analogsim.kernels.cuda.matmul`).

The scalar physics is the CPU's (:func:`analogsim.kernels.scalar.build` compiled with
``numba.cuda.jit(device=True)``) and the random numbers come from the same counter-based
generator with the same counters, so a CUDA kernel and its CPU twin agree to floating-point
rounding of the transcendental functions.

Nothing here imports ``numba.cuda`` or CuPy, or touches a GPU, at import time: kernels are
compiled on their first call. With ``NUMBA_ENABLE_CUDASIM=1`` set before Numba is imported,
the same kernels run on Numba's CPU simulator (slowly; for tests on small arrays).
"""

from __future__ import annotations

from typing import Any

from analogsim.errors import BackendUnavailableError
from analogsim.kernels.cuda._runtime import in_simulator
from analogsim.kernels.cuda.drift import effective_weights_cuda
from analogsim.kernels.cuda.mvm import epilogue_cuda
from analogsim.kernels.cuda.program import program_cuda
from analogsim.kernels.cuda.pulsed_update import (
    apply_exact_cuda,
    apply_fast_cuda,
    pulse_trains_cuda,
)


def get_cuda_kernels(xp: Any = None) -> Any:
    """The kernel set named "cuda" (a :class:`analogsim.kernels.KernelSet`).

    Parameters
    ----------
    xp : module, optional
        The array module the tile should allocate with. Default: CuPy on a GPU, NumPy under
        the simulator (whose kernels take host arrays). CuPy is imported here, not earlier.
    """
    from analogsim.kernels import KernelSet
    from analogsim.kernels.mvm import quantize_inputs
    from analogsim.kernels.pulsed_update_numpy import pulse_count_means_numpy

    if xp is None:
        xp = _default_array_module()
    return KernelSet(
        name="cuda",
        effective_weights=effective_weights_cuda,
        program=program_cuda,
        quantize=quantize_inputs,  # the NumPy reference: no CUDA kernel of its own
        epilogue=epilogue_cuda,
        count_means=pulse_count_means_numpy,  # cuBLAS matmuls and CuPy ufuncs on a GPU
        apply_fast=apply_fast_cuda,
        pulse_trains=pulse_trains_cuda,
        apply_exact=apply_exact_cuda,
        xp=xp,
    )


def _default_array_module() -> Any:
    if in_simulator():
        import numpy

        return numpy
    try:
        import cupy
    except ImportError as error:
        raise BackendUnavailableError(
            "get_cuda_kernels: the CUDA kernel set allocates with CuPy, which is not "
            "installed (pip install 'analogsim[gpu]'); pass xp= to use another array module."
        ) from error
    return cupy


__all__ = [
    "apply_exact_cuda",
    "apply_fast_cuda",
    "effective_weights_cuda",
    "epilogue_cuda",
    "get_cuda_kernels",
    "in_simulator",
    "program_cuda",
    "pulse_trains_cuda",
]
