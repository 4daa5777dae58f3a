"""Which compute backends this machine offers (probed lazily, never at import time)."""

from __future__ import annotations

import functools
import importlib.util


@functools.cache
def cuda_available() -> bool:
    """True when CuPy is installed and sees at least one CUDA device."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def cuda_simulator_enabled() -> bool:
    """True when ``numba.cuda`` is Numba's CPU simulator (``NUMBA_ENABLE_CUDASIM=1`` was set
    before Numba was imported). Does not import ``numba.cuda``."""
    from numba.core import config

    return bool(config.ENABLE_CUDASIM)


def cuda_unavailable_reason() -> str | None:
    """Why the "cuda" backend cannot run here, in words, or None when it can.

    It needs CuPy seeing a CUDA device (the arrays and cuBLAS) and NVIDIA's numba-cuda (the
    kernels), not Numba's simulator.
    """
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed"
    if not cuda_available():
        return "CuPy is installed but finds no CUDA device (no NVIDIA GPU or driver)"
    if cuda_simulator_enabled():
        return ("NUMBA_ENABLE_CUDASIM=1 is set, so numba.cuda is the CPU simulator, which "
                "cannot run on GPU arrays; unset it (the simulator's kernel set is 'cudasim')")
    from analogsim.errors import BackendUnavailableError
    from analogsim.kernels.cuda._runtime import cuda_module

    try:
        cuda_module()
    except BackendUnavailableError as error:
        return str(error).rstrip(".")
    except ImportError as error:  # numba.cuda missing or broken
        return f"numba.cuda cannot be imported ({error})"
    return None
