"""Drift and read-noise maps: the array as the forward pass sees it at the chip's time.

From the programmed conductances, their write times and each device's fixed drift variate,
compute (a) the effective weight in units of g_max, ``sum_p sign_p G_p(t) / g_max``, and
(b) the per-read noise variance of each weight, ``sum_p (sigma_p(t) / g_max)^2``. The tile
caches both until its state or the clock changes.
"""

from __future__ import annotations

import numba
import numpy as np

from analogsim.kernels._cpu_scalar import S
from analogsim.kernels.physics import (
    P_GMAX,
    P_MU_A,
    P_MU_B,
    P_MU_HI,
    P_MU_LO,
    P_SD_A,
    P_SD_B,
    P_SD_HI,
    P_SD_LO,
    P_T0,
)

_drift_exponent = S.drift_exponent
_drift_factor = S.drift_factor
_read_sigma = S.read_sigma


def effective_weights_numpy(conductance, written_at, drift_xi, stuck, signs, now, p,
                            out_weight, out_variance=None):
    """NumPy reference. Shapes: state arrays (P, R, C); outputs (R, C) float32, in place."""
    g_max = p[P_GMAX]
    weight = np.zeros(out_weight.shape, dtype=np.float64)
    variance = np.zeros(out_weight.shape, dtype=np.float64)
    for k in range(conductance.shape[0]):
        g = conductance[k].astype(np.float64)
        g_rel = np.abs(g) / g_max
        elapsed = now - written_at[k]
        log_g = np.log(np.maximum(g_rel, 1e-6))
        mu = np.clip(p[P_MU_A] * log_g + p[P_MU_B], p[P_MU_LO], p[P_MU_HI])
        sigma = np.clip(p[P_SD_A] * log_g + p[P_SD_B], p[P_SD_LO], p[P_SD_HI])
        nu = np.abs(mu + sigma * drift_xi[k])
        drifting = (elapsed > 0.0) & (nu != 0.0) & (stuck[k] == 0)
        t0 = p[P_T0]
        ratio = np.where(drifting, (np.maximum(elapsed, 0.0) + t0) / t0, 1.0)
        g_now = g * np.where(drifting, ratio ** (-nu), 1.0)
        weight += signs[k] * g_now / g_max
        if out_variance is not None:
            read = _read_sigma_numpy(g_now, g_rel, elapsed, p)
            variance += (read / g_max) ** 2
    out_weight[...] = weight
    if out_variance is not None:
        out_variance[...] = variance


def _read_sigma_numpy(g_now, g_rel_prog, elapsed, p):
    from analogsim.kernels.physics import P_Q0, P_QEXP, P_QMAX, P_READ, P_TREAD

    sigma = np.full(g_now.shape, p[P_READ])
    if p[P_Q0] > 0.0:
        t_read = p[P_TREAD]
        q = np.minimum(p[P_Q0] / np.maximum(g_rel_prog ** p[P_QEXP], 1e-3), p[P_QMAX])
        log_time = np.log((np.maximum(elapsed, 0.0) + p[P_T0] + t_read) / (2.0 * t_read))
        sigma = sigma + np.abs(g_now) * q * np.sqrt(np.maximum(log_time, 0.0))
    return sigma


@numba.njit(parallel=True, cache=True)
def effective_weights_numba(conductance, written_at, drift_xi, stuck, signs, now, p,
                            out_weight, out_variance):
    """Numba version of :func:`effective_weights_numpy`; ``out_variance`` may be None."""
    n_pairs, rows, cols = conductance.shape
    g_max = p[P_GMAX]
    for i in numba.prange(rows):
        for j in range(cols):
            weight = 0.0
            variance = 0.0
            for k in range(n_pairs):
                g = np.float64(conductance[k, i, j])
                g_rel = abs(g) / g_max
                elapsed = now - written_at[k, i, j]
                g_now = g
                if elapsed > 0.0 and stuck[k, i, j] == 0:
                    nu = _drift_exponent(g_rel, np.float64(drift_xi[k, i, j]), p)
                    g_now = g * _drift_factor(elapsed, nu, p)
                weight += signs[k] * g_now / g_max
                if out_variance is not None:
                    read = _read_sigma(g_now, g_rel, elapsed, p) / g_max
                    variance += read * read
            out_weight[i, j] = weight
            if out_variance is not None:
                out_variance[i, j] = variance
