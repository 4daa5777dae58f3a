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

import functools
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


def get_cuda_kernels(xp: Any = None, *, precision: str = "fp32", name: str = "cuda") -> Any:
    """The CUDA kernel set (a :class:`analogsim.kernels.KernelSet`).

    Use :func:`analogsim.kernels.get_kernels` ("cuda" or "cudasim"), which checks that the
    backend can run first.

    Parameters
    ----------
    xp : module, optional
        The array module the tile should allocate with. Default: CuPy on a GPU, NumPy under
        the simulator (whose kernels take host arrays). CuPy is imported here, not earlier.
    precision : "fp32", "tf32" or "bf16"
        Precision of the matmuls: cuBLAS through CuPy (``cupy.matmul`` in fp32,
        ``cublasGemmEx`` on the tensor cores otherwise, see :func:`matmul.matmul`). On NumPy
        arrays (the simulator) fp32 is ``numpy.matmul`` and the others are emulated
        (:func:`matmul.emulated_matmul`, inputs rounded to nearest).
    name : str
        The set's name ("cuda"; "cudasim" for the simulator set).
    """
    from analogsim._validation import check_choice
    from analogsim.kernels import KernelSet
    from analogsim.kernels.cuda.matmul import PRECISIONS
    from analogsim.kernels.mvm import quantize_inputs

    check_choice("get_cuda_kernels", "precision", precision, PRECISIONS)
    if xp is None:
        xp = _default_array_module()
    product = _tile_matmul(xp, precision)
    return KernelSet(
        name=name,
        effective_weights=effective_weights_cuda,
        program=program_cuda,
        quantize=quantize_inputs,  # NumPy or CuPy array operations: no CUDA kernel of its own
        epilogue=epilogue_cuda,
        count_means=_count_means_with(product),  # two matmuls and one elementwise pass
        apply_fast=apply_fast_cuda,
        pulse_trains=pulse_trains_cuda,
        apply_exact=apply_exact_cuda,
        xp=xp,
        matmul=product,
        precision=precision,
    )


def _tile_matmul(xp: Any, precision: str) -> Any:
    """``matmul(a, b)`` of the set: cuBLAS on CuPy arrays, NumPy (or its emulation) else."""
    import numpy

    from analogsim.kernels.cuda.matmul import emulated_matmul, matmul

    if precision == "fp32":
        return xp.matmul
    if xp is numpy:
        def emulated(a: Any, b: Any) -> Any:
            return emulated_matmul(a, b, precision).astype(numpy.float32)

        emulated.__name__ = emulated.__qualname__ = f"emulated_{precision}_matmul"
        return emulated
    return functools.partial(matmul, precision=precision)


def _count_means_with(product: Any) -> Any:
    """``count_means(x, d, pulses_per_unit, out=None)`` whose two matmuls are ``product``.

    The same float32 arithmetic as :func:`analogsim.kernels.pulsed_update.pulse_count_means`
    (``up = max((|x|^T |d| - x^T d) half, 0)``, ``down = max((|x|^T |d| + x^T d) half, 0)``),
    on NumPy or CuPy arrays.
    """
    import numpy

    from analogsim.kernels import get_xp
    from analogsim.kernels.pulsed_update import check_count_buffers

    def count_means(x: Any, d: Any, pulses_per_unit: float,
                    out: tuple[Any, Any] | None = None) -> tuple[Any, Any]:
        xp = get_xp(x)
        magnitude = product(xp.abs(x).T, xp.abs(d))
        signed = product(x.T, d)
        half, zero = numpy.float32(0.5 * pulses_per_unit), numpy.float32(0.0)
        if out is None:
            out = (None, None)
        else:
            check_count_buffers("count_means", out, magnitude.shape)
        up = xp.maximum((magnitude - signed) * half, zero, out=out[0])
        down = xp.maximum((magnitude + signed) * half, zero, out=out[1])
        return up, down

    return count_means


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
