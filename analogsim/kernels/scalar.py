"""Scalar device physics, written once and compiled for each backend.

:func:`build` takes a decorator (``numba.njit`` for the CPU, ``numba.cuda.jit(device=True)``
for CUDA, or the identity for plain Python) and returns the compiled functions in a
namespace. Every per-device rule the kernels apply lives here; the kernels only loop.
``p`` is the packed parameter vector of :class:`analogsim.kernels.physics.DevicePhysics`.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from analogsim.kernels.counter_rng import build_scalar_functions
from analogsim.kernels.physics import (
    P_DW_STD,
    P_GMAX,
    P_LEVEL_HI,
    P_LEVEL_LO,
    P_LEVELS,
    P_MU_A,
    P_MU_B,
    P_MU_HI,
    P_MU_LO,
    P_PROG0,
    P_PROG1,
    P_PROG2,
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

M1 = np.uint64(0x5555555555555555)
M2 = np.uint64(0x3333333333333333)
M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
H01 = np.uint64(0x0101010101010101)
S1 = np.uint64(1)
S2 = np.uint64(2)
S4 = np.uint64(4)
S56 = np.uint64(56)
#: Below this mean, Poisson counts are drawn by inversion; above, by a rounded normal.
POISSON_INVERSION_LIMIT = 30.0
#: The inversion stops after this many terms.
POISSON_MAX_TERMS = 200


def build(jit):
    """Compile the scalar physics with ``jit``; see the module docstring."""
    rng = build_scalar_functions(jit)
    normal, uniform = rng.normal, rng.uniform

    @jit
    def clip(value, low, high):
        return min(max(value, low), high)

    @jit
    def drift_exponent(g_rel, xi, p):
        """nu = |mu(g) + sigma(g) xi| with the clipped log-linear mu and sigma."""
        log_g = math.log(max(g_rel, 1e-6))
        mu = clip(p[P_MU_A] * log_g + p[P_MU_B], p[P_MU_LO], p[P_MU_HI])
        sigma = clip(p[P_SD_A] * log_g + p[P_SD_B], p[P_SD_LO], p[P_SD_HI])
        return abs(mu + sigma * xi)

    @jit
    def drift_factor(elapsed, nu, p):
        """G(t) / G_prog = ((elapsed + t0) / t0)^-nu (1 when nothing has elapsed)."""
        if elapsed <= 0.0 or nu == 0.0:
            return 1.0
        t0 = p[P_T0]
        return ((elapsed + t0) / t0) ** (-nu)

    @jit
    def read_sigma(g_now, g_rel_prog, elapsed, p):
        """Per-read noise (uS): a constant part plus 1/f noise growing with log time."""
        sigma = p[P_READ]
        q0 = p[P_Q0]
        if q0 > 0.0:
            t_read = p[P_TREAD]
            q = min(q0 / max(g_rel_prog ** p[P_QEXP], 1e-3), p[P_QMAX])
            log_time = math.log((max(elapsed, 0.0) + p[P_T0] + t_read) / (2.0 * t_read))
            sigma += abs(g_now) * q * math.sqrt(max(log_time, 0.0))
        return sigma

    @jit
    def program_value(target, low, high, z, p):
        """A programmed conductance (uS): quantised target plus programming error, clipped."""
        levels = p[P_LEVELS]
        if levels > 1.0:
            lo = p[P_LEVEL_LO]
            hi = p[P_LEVEL_HI]
            step = (hi - lo) / (levels - 1.0)
            target = lo + math.floor((clip(target, lo, hi) - lo) / step + 0.5) * step
        g = abs(target) / p[P_GMAX]
        sigma = p[P_PROG0] + p[P_PROG1] * g + p[P_PROG2] * g * g
        return clip(target + max(sigma, 0.0) * z, low, high)

    @jit
    def cycle_noise(first_step, ratio, decay, n, p):
        """Std of the summed cycle noise of ``n`` pulses whose steps are ``first_step ratio^k``.

        Each pulse's step is multiplied by ``1 + dw_min_std xi`` (multiplicative noise), so the
        sum has std ``dw_min_std |first_step| sqrt(sum_k ratio^(2k))``: a saturated device,
        whose steps have shrunk to nothing, no longer random-walks. ``decay = ratio^n``, which
        the step rule has computed already: ``(ratio^2)^n = decay^2`` costs no second ``pow``.
        """
        if ratio >= 1.0:
            total = n
        else:
            total = (1.0 - decay * decay) / (1.0 - ratio * ratio)
        return p[P_DW_STD] * abs(first_step) * math.sqrt(total)

    @jit
    def steps_up(g, n, step, bound, gamma, low, z, p):
        """``n`` up pulses of a linear-step device in closed form, with their cycle noise."""
        if gamma == 0.0:
            moved = g + n * step
            first, ratio, decay = step, 1.0, 1.0
        else:
            fixed = bound / gamma
            ratio = max(1.0 - step * gamma / bound, 0.0)
            decay = ratio**n
            moved = fixed - (fixed - g) * decay
            first = step * (1.0 - gamma * g / bound)
        moved += cycle_noise(first, ratio, decay, n, p) * z
        return clip(moved, low, bound)

    @jit
    def steps_down(g, n, step, bound, gamma, high, z, p):
        """``n`` down pulses towards ``bound`` (< 0), the mirror image of :func:`steps_up`."""
        if gamma == 0.0 or bound == 0.0:
            moved = g - n * step
            first, ratio, decay = step, 1.0, 1.0
        else:
            fixed = bound / gamma
            ratio = max(1.0 + step * gamma / bound, 0.0)
            decay = ratio**n
            moved = fixed + (g - fixed) * decay
            first = step * (1.0 - gamma * g / bound)
        moved -= cycle_noise(first, ratio, decay, n, p) * z
        return clip(moved, bound, high)

    @jit
    def poisson(mean, u, z):
        """A Poisson count from one uniform (inversion) or one normal (large means)."""
        if mean <= 0.0:
            return 0
        if mean >= POISSON_INVERSION_LIMIT:
            return max(int(math.floor(mean + math.sqrt(mean) * z + 0.5)), 0)  # noqa: RUF046
        term = math.exp(-mean)
        total = term
        count = 0
        while u > total and count < POISSON_MAX_TERMS:
            count += 1
            term *= mean / count
            total += term
        return count

    @jit
    def pulse_count(mean, key, counter):
        """``poisson(mean, uniform(key, counter), normal(key, counter + 1))``, drawing only
        the variate its branch reads: the same count for a fraction of the cost."""
        if mean <= 0.0:
            return 0
        if mean >= POISSON_INVERSION_LIMIT:
            return poisson(mean, 0.5, normal(key, counter + S1))
        return poisson(mean, uniform(key, counter), 0.0)

    @jit
    def popcount(x):
        x = x - ((x >> S1) & M1)
        x = (x & M2) + ((x >> S2) & M2)
        x = (x + (x >> S4)) & M4
        return int((x * H01) >> S56)

    return SimpleNamespace(
        hash64=rng.hash64, uniform=rng.uniform, normal=rng.normal, log_unit=rng.log_unit,
        cos_turn=rng.cos_turn, clip=clip,
        drift_exponent=drift_exponent, drift_factor=drift_factor, read_sigma=read_sigma,
        program_value=program_value, cycle_noise=cycle_noise, steps_up=steps_up,
        steps_down=steps_down,
        poisson=poisson, pulse_count=pulse_count, popcount=popcount,
    )
