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
