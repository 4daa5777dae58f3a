"""Drift and read-noise maps as one CUDA kernel (see :mod:`analogsim.kernels.drift`).

One thread per weight (i, j) sums its P devices: the weight in g_max units at the chip's time
and, when asked, the per-read noise variance. Deterministic: no random numbers.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import numpy as np

from analogsim.kernels.cuda._runtime import (
    check_shape,
    cuda_module,
    launch,
    scalar_physics,
    small_constant,
)
from analogsim.kernels.physics import P_GMAX

#: ``numba.cuda``, bound on first use. The kernels must find it as a module global: the
#: simulator swaps the module globals that are ``numba.cuda`` for its fake during a launch.
cuda: Any = None


@functools.cache
def _kernels() -> SimpleNamespace:
    global cuda
    cuda = cuda_module()
    physics = scalar_physics()
    settled_value = physics.settled_value
    drift_constants = physics.drift_constants
    read_sigma = physics.read_sigma

    @cuda.jit
    def effective_weights_kernel(conductance, written_at, drift_xi, stuck, signs, now, p,
                                 out_weight, has_variance, out_variance):
        n_pairs, rows, cols = conductance.shape
        g_max = p[P_GMAX]
        for e in range(cuda.grid(1), rows * cols, cuda.gridsize(1)):
            i = e // cols
            j = e - i * cols
            weight = 0.0
            variance = 0.0
            for k in range(n_pairs):
                g = np.float64(conductance[k, i, j])
                g_rel = abs(g) / g_max
                elapsed = now - written_at[k, i, j]
                g_now = g
                if elapsed > 0.0 and stuck[k, i, j] == 0:
                    g_now = settled_value(g, elapsed, np.float64(drift_xi[k, i, j]),
                                          drift_constants(p))
                weight += signs[k] * g_now / g_max
                if has_variance:
                    read = read_sigma(g_now, g_rel, elapsed, p) / g_max
                    variance += read * read
            out_weight[i, j] = weight
            if has_variance:
                out_variance[i, j] = variance

    return SimpleNamespace(effective_weights=effective_weights_kernel)


def effective_weights_cuda(conductance: Any, written_at: Any, drift_xi: Any, stuck: Any,
                           signs: Any, now: float, p: Any, out_weight: Any,
                           out_variance: Any = None) -> None:
    """CUDA version of :func:`analogsim.kernels.drift.effective_weights_numba`.

    Parameters
    ----------
    conductance, drift_xi : (P, R, C) float32; written_at : (P, R, C) float64;
    stuck : (P, R, C) int8 device arrays.
    signs : (P,) float64 (+1, -1); p : packed device parameters (float64).
    out_weight, out_variance : (R, C) float32 device arrays, written in place; ``out_variance``
        may be None.
    """
    n_pairs, rows, cols = conductance.shape
    owner = "effective_weights_cuda"
    for name, array in (("written_at", written_at), ("drift_xi", drift_xi), ("stuck", stuck)):
        check_shape(owner, name, array, (n_pairs, rows, cols))
    check_shape(owner, "signs", signs, (n_pairs,))
    check_shape(owner, "out_weight", out_weight, (rows, cols))
    has_variance = out_variance is not None
    if has_variance:
        check_shape(owner, "out_variance", out_variance, (rows, cols))
    if has_variance:
        spare = out_variance
    elif isinstance(out_weight, np.ndarray):
        # A host array is copied to the device and back around the launch (the simulator does
        # the same), so an alias of out_weight would be copied back over the results.
        spare = np.empty((1, 1), dtype=out_weight.dtype)
    else:
        spare = out_weight  # never written: has_variance is False
    launch(_kernels().effective_weights, rows * cols, conductance, written_at, drift_xi, stuck,
           small_constant(signs), float(now), small_constant(p), out_weight, has_variance,
           spare)
