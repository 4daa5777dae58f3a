"""Drift and read-noise maps: the array as the forward pass sees it at the chip's time.

From the programmed conductances, their write times and each device's fixed drift variate,
compute (a) the effective weight in units of g_max, ``sum_p sign_p G_p(t) / g_max``, and
(b) the per-read noise variance of each weight, ``sum_p (sigma_p(t) / g_max)^2``. The tile
caches both until its state or the clock changes.
"""

from __future__ import annotations

import numba
import numpy as np

from analogsim.kernels.physics import (
    P_GMAX,
    P_MU_A,
    P_MU_B,
    P_MU_HI,
    P_MU_LO,
    P_Q0,
    P_QEXP,
    P_QMAX,
    P_READ,
    P_SD_A,
    P_SD_B,
    P_SD_HI,
    P_SD_LO,
    P_T0,
    P_TREAD,
)
from analogsim.kernels.vector_math import build

_MATH = build(numba.njit(inline="always", error_model="numpy"))
_log = _MATH.log_positive
_exp = _MATH.exp_bounded
_log_bits = _MATH.log_float32_bits


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
    sigma = np.full(g_now.shape, p[P_READ])
    if p[P_Q0] > 0.0:
        t_read = p[P_TREAD]
        q = np.minimum(p[P_Q0] / np.maximum(g_rel_prog ** p[P_QEXP], 1e-3), p[P_QMAX])
        log_time = np.log((np.maximum(elapsed, 0.0) + p[P_T0] + t_read) / (2.0 * t_read))
        sigma = sigma + np.abs(g_now) * q * np.sqrt(np.maximum(log_time, 0.0))
    return sigma


@numba.njit(parallel=True, cache=True, error_model="numpy")
def effective_weights_numba(conductance, written_at, drift_xi, stuck, signs, now, p,
                            out_weight, out_variance):
    """Numba version of :func:`effective_weights_numpy`; ``out_variance`` may be None.

    Row by row, one device line at a time (one side of the pairs), in loops that vectorise:
    their ``log`` and ``exp`` are :mod:`analogsim.kernels.vector_math`'s, not libm's, and
    their branches are selects. A line whose devices were all written at the same time (a
    programmed or trained array) takes the two logarithms of the elapsed time once for the
    line, which gives the same numbers. (With libm and branches a 1024x1024 map took 27 ms
    for ReRAM and 98 ms for PCM's two devices a weight, paid by the first forward after each
    clock step; the figures now are in ``docs/architecture.md``.)
    """
    n_pairs, rows, cols = conductance.shape
    with_variance = out_variance is not None
    for i in numba.prange(rows):
        weight = np.zeros(cols)
        variance = np.zeros(cols)
        for k in range(n_pairs):
            times = written_at[k, i]
            if _all_equal(times):
                log_ratio, log_time = _elapsed_logs(now - times[0], p[P_T0], p[P_TREAD])
                _add_line_at_one_time(conductance[k, i], now - times[0], log_ratio, log_time,
                                      drift_xi[k, i], stuck[k, i], signs[k], p, weight,
                                      variance, with_variance)
            else:
                _add_line(conductance[k, i], times, drift_xi[k, i], stuck[k, i], signs[k],
                          now, p, weight, variance, with_variance)
        for j in range(cols):
            out_weight[i, j] = weight[j]
        if with_variance:
            for j in range(cols):
                out_variance[i, j] = variance[j]


@numba.njit(cache=True)
def _all_equal(times):
    """Whether every entry equals the first: one vectorised pass."""
    same = True
    for j in range(times.shape[0]):
        same &= times[j] == times[0]
    return same


@numba.njit(inline="always", error_model="numpy")
def _elapsed_logs(elapsed, t0, t_read):
    """The two logarithms of the elapsed time: the drift's ``ln((t + t0) / t0)`` and the
    1/f noise's ``ln((t + t0 + t_read) / (2 t_read))``, ``t`` clipped at 0."""
    since = max(elapsed, 0.0)
    return _log((since + t0) / t0), _log((since + t0 + t_read) / (2.0 * t_read))


@numba.njit(inline="always")
def _constants(p):
    """The parameters ``_device`` reads, as a tuple of locals: read from ``p`` inside the
    loop, LLVM must assume the row's stores may change them, and the loop does not
    vectorise."""
    return (p[P_GMAX], _log(p[P_GMAX]), p[P_MU_A], p[P_MU_B], p[P_MU_LO], p[P_MU_HI],
            p[P_SD_A], p[P_SD_B], p[P_SD_LO], p[P_SD_HI], p[P_Q0], p[P_QEXP], p[P_QMAX],
            p[P_READ], _log(1e-6))


@numba.njit(inline="always", error_model="numpy")
def _device(g32, bits, xi, stuck, elapsed, log_ratio, log_time, c, with_variance):
    """One device's weight (``g(t) / g_max``) and read-noise variance (0 unless
    ``with_variance``): the rules of ``settled_value`` and
    ``read_sigma`` of :mod:`analogsim.kernels.scalar` in float64, with vectorisable ``log``
    and ``exp`` and selects for their branches; ``c`` is ``_constants(p)``."""
    (g_max, log_g_max, mu_a, mu_b, mu_lo, mu_hi, sd_a, sd_b, sd_lo, sd_hi, q0, q_exp, q_max,
     read, floor) = c
    g = np.float64(g32)
    g_rel = abs(g) / g_max
    # ln g_rel from the float32's bits; g 0 gives ln(2**-127 / g_max), used only through the
    # floor (ln 1e-6) or where g_rel > 0.
    log_g = _log_bits(bits) - log_g_max
    clipped = max(log_g, floor)
    mu = min(max(mu_a * clipped + mu_b, mu_lo), mu_hi)
    sd = min(max(sd_a * clipped + sd_b, sd_lo), sd_hi)
    nu = abs(mu + sd * np.float64(xi))
    drifting = (elapsed > 0.0) & (stuck == 0) & (nu != 0.0)
    g_now = g * _exp(-nu * log_ratio) if drifting else g
    variance = 0.0
    if with_variance:
        power = _exp(q_exp * log_g) if g_rel > 0.0 else (1.0 if q_exp == 0.0 else 0.0)
        q = min(q0 / max(power, 1e-3), q_max)
        flicker = abs(g_now) * q * np.sqrt(max(log_time, 0.0))
        sigma = (read + flicker if q0 > 0.0 else read) / g_max
        variance = sigma * sigma
    return g_now / g_max, variance


@numba.njit(cache=True, error_model="numpy")
def _add_line(conductance, written_at, drift_xi, stuck, sign, now, p, weight, variance,
              with_variance):
    """Add one device line of a row to the row's weights and variances (``_device`` of
    each), its elapsed times device by device."""
    c = _constants(p)
    bits = conductance.view(np.uint32)
    t0, t_read = p[P_T0], p[P_TREAD]
    for j in range(conductance.shape[0]):
        elapsed = now - written_at[j]
        log_ratio, log_time = _elapsed_logs(elapsed, t0, t_read)
        w, v = _device(conductance[j], bits[j], drift_xi[j], stuck[j], elapsed, log_ratio,
                       log_time, c, with_variance)
        weight[j] += sign * w
        variance[j] += v


@numba.njit(cache=True, error_model="numpy")
def _add_line_at_one_time(conductance, elapsed, log_ratio, log_time, drift_xi, stuck, sign, p,
                          weight, variance, with_variance):
    """``_add_line`` for a line whose devices were all written ``elapsed`` ago."""
    c = _constants(p)
    bits = conductance.view(np.uint32)
    for j in range(conductance.shape[0]):
        w, v = _device(conductance[j], bits[j], drift_xi[j], stuck[j], elapsed, log_ratio,
                       log_time, c, with_variance)
        weight[j] += sign * w
        variance[j] += v
