"""Programming: write target conductances with quantisation to levels and programming error.

Device ``e`` (flat index over (P, R, C)) uses the normal ``normal(key, e)``; stuck devices keep
their value. Programmed devices restart their drift clock at ``now``.
"""

from __future__ import annotations

import numba
import numpy as np

from analogsim.kernels._cpu_scalar import RNG, S
from analogsim.kernels.counter_rng import normal_array
from analogsim.kernels.physics import (
    P_GMAX,
    P_LEVEL_HI,
    P_LEVEL_LO,
    P_LEVELS,
    P_PROG0,
    P_PROG1,
    P_PROG2,
)

_normal = RNG.normal
_program_value = S.program_value


def program_numpy(targets, conductance, written_at, stuck, bound_low, bound_high, now, p, key):
    """NumPy reference; all arrays (P, R, C); ``conductance`` and ``written_at`` in place."""
    target = targets.astype(np.float64)
    levels = p[P_LEVELS]
    if levels > 1.0:
        low, high = p[P_LEVEL_LO], p[P_LEVEL_HI]
        step = (high - low) / (levels - 1.0)
        target = low + np.floor((np.clip(target, low, high) - low) / step + 0.5) * step
    g = np.abs(target) / p[P_GMAX]
    sigma = np.maximum(p[P_PROG0] + p[P_PROG1] * g + p[P_PROG2] * g * g, 0.0)
    z = normal_array(key, np.arange(target.size, dtype=np.uint64)).reshape(target.shape)
    value = np.clip(target + sigma * z, bound_low, bound_high)
    free = stuck == 0
    conductance[free] = value[free]
    written_at[free] = now


@numba.njit(parallel=True, cache=True, error_model="numpy")
def program_numba(targets, conductance, written_at, stuck, bound_low, bound_high, now, p, key):
    """Numba version of :func:`program_numpy`."""
    n_pairs, rows, cols = targets.shape
    for i in numba.prange(rows):
        for k in range(n_pairs):
            for j in range(cols):
                if stuck[k, i, j] != 0:
                    continue
                index = np.uint64((k * rows + i) * cols + j)
                z = _normal(key, index)
                conductance[k, i, j] = _program_value(
                    np.float64(targets[k, i, j]), bound_low[k, i, j], bound_high[k, i, j], z, p)
                written_at[k, i, j] = now
