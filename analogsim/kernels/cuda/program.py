"""Programming as one elementwise CUDA kernel (see :mod:`analogsim.kernels.program`).

Device ``e`` (flat index over (P, R, C)) uses ``normal(key, e)``, as the CPU kernel does;
stuck devices keep their value; programmed devices restart their drift clock at ``now``.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import numpy as np

from analogsim.kernels.cuda._runtime import (
    as_key,
    check_shape,
    cuda_module,
    launch,
    scalar_physics,
    small_constant,
)

#: ``numba.cuda``, bound on first use. The kernels must find it as a module global: the
#: simulator swaps the module globals that are ``numba.cuda`` for its fake during a launch.
cuda: Any = None


@functools.cache
def _kernels() -> SimpleNamespace:
    global cuda
    cuda = cuda_module()
    physics = scalar_physics()
    normal = physics.normal
    program_value = physics.program_value

    @cuda.jit
    def program_kernel(targets, conductance, written_at, stuck, bound_low, bound_high, now, p,
                       key):
        n_pairs, rows, cols = targets.shape
        plane = rows * cols
        for e in range(cuda.grid(1), n_pairs * plane, cuda.gridsize(1)):
            k = e // plane
            rest = e - k * plane
            i = rest // cols
            j = rest - i * cols
            if stuck[k, i, j] != 0:
                continue
            conductance[k, i, j] = program_value(
                np.float64(targets[k, i, j]), np.float64(bound_low[k, i, j]),
                np.float64(bound_high[k, i, j]), normal(key, np.uint64(e)), p)
            written_at[k, i, j] = now

    return SimpleNamespace(program=program_kernel)


def program_cuda(targets: Any, conductance: Any, written_at: Any, stuck: Any, bound_low: Any,
                 bound_high: Any, now: float, p: Any, key: Any) -> None:
    """CUDA version of :func:`analogsim.kernels.program.program_numba`, same arguments.

    All arrays are (P, R, C) device arrays; ``conductance`` and ``written_at`` are written in
    place.
    """
    shape = tuple(targets.shape)
    for name, array in (("conductance", conductance), ("written_at", written_at),
                        ("stuck", stuck), ("bound_low", bound_low), ("bound_high", bound_high)):
        check_shape("program_cuda", name, array, shape)
    launch(_kernels().program, int(np.prod(shape)), targets, conductance, written_at, stuck,
           bound_low, bound_high, float(now), small_constant(p), as_key(key))
