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

from analogsim.kernels.counter_rng import (
    F32,
    F_HALF,
    F_INV_2_32,
    LOW_32,
    build_scalar_functions,
)
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
#: Below this mean, Poisson counts are drawn exactly (alias table plus inversion); at and
#: above it, by a rounded normal.
POISSON_INVERSION_LIMIT = 30.0
#: The inversion of a count's fractional part stops after this many terms.
POISSON_MAX_TERMS = 200
#: Columns of each alias table: counts 0 .. 127 (Poisson(29) exceeds 127 with probability
#: below 1e-40).
POISSON_COLUMNS = 128
#: An alias-table entry is ``alias << 25 | threshold``; ``threshold`` (0 .. 2**24) is the
#: chance, in units of 2**-24, that a draw landing in the column keeps it.
ALIAS_SHIFT = np.uint64(25)
THRESHOLD_MASK = np.uint64((1 << 25) - 1)
COIN_MASK = np.uint64((1 << 24) - 1)
#: A count's hash: bits 57-63 pick the column, bits 33-56 are the coin, bits 0-31 the uniform.
COLUMN_SHIFT = np.uint64(57)
COIN_SHIFT = np.uint64(33)
#: ``exp(-f)`` on [0, 1] as ``e^-1/2 e^y``, ``y = 1/2 - f``: the Taylor coefficients
#: ``e^-1/2 / k!``, k = 8 .. 0, as float32 (truncation 3e-9 relative, under float32's 6e-8).
#: The inversion of a count's fractional part runs in float32 (its uniform has 24 bits):
#: a probability of the pmf is off by a few 1e-8 at most, and the vectorised pass has twice
#: the lanes of float64.
EXP_HALF_COEFFICIENTS = tuple(np.float32(math.exp(-0.5) / math.factorial(k))
                              for k in range(8, -1, -1))
(EH_8, EH_7, EH_6, EH_5, EH_4, EH_3, EH_2, EH_1, EH_0) = EXP_HALF_COEFFICIENTS


def poisson_alias_tables(limit: int = int(POISSON_INVERSION_LIMIT),
                         columns: int = POISSON_COLUMNS) -> np.ndarray:
    """Walker alias tables of Poisson(M), M = 0 .. limit - 1, flattened to ``M columns + c``.

    Vose's construction in float64 on the pmf ``exp(k ln M - M - lgamma(k + 1))``
    (normalised over the columns), its keep probabilities rounded to 24 bits: a draw's
    probabilities are the pmf's to 1.2e-9 (``tests/kernels/test_kernel_pulsed_update.py``).
    Plain Python, deterministic: every backend uses this one array.
    """
    table = np.zeros((limit, columns), dtype=np.uint64)
    for whole in range(limit):
        if whole == 0:
            pmf = [1.0] + [0.0] * (columns - 1)
        else:
            pmf = [math.exp(k * math.log(whole) - whole - math.lgamma(k + 1.0))
                   for k in range(columns)]
        norm = math.fsum(pmf)
        scaled = [columns * value / norm for value in pmf]
        keep, alias = [1.0] * columns, list(range(columns))
        small = [c for c in range(columns) if scaled[c] < 1.0]
        large = [c for c in range(columns) if scaled[c] >= 1.0]
        while small and large:
            s, big = small.pop(), large.pop()
            keep[s], alias[s] = scaled[s], big
            scaled[big] = (scaled[big] + scaled[s]) - 1.0
            (small if scaled[big] < 1.0 else large).append(big)
        for c in range(columns):
            threshold = min(round(keep[c] * (1 << 24)), 1 << 24)
            table[whole, c] = (alias[c] << 25) | threshold
    return table.ravel()


#: The alias tables of the exact Poisson draws (see :func:`poisson_alias_tables`).
POISSON_TABLES = poisson_alias_tables()


def build(jit):
    """Compile the scalar physics with ``jit``; see the module docstring."""
    rng = build_scalar_functions(jit)

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
    def int_power(x, n):
        """``x**n`` for an integer ``n >= 0`` by repeated squaring, low bits first: the same
        products in the same order as the CPU fast sampler's vectorised loop over bits."""
        result = 1.0
        power = x
        while n > 0:
            if n & 1:
                result = result * power
            power = power * power
            n >>= 1
        return result

    @jit
    def block_ratio(step, sign, bound, gamma):
        """The factor by which one pulse shrinks a device's distance to its fixed point
        ``bound / gamma``: ``max(1 - sign step gamma / bound, 0)``, 1 for a linear device
        (``gamma`` or ``bound`` 0). ``sign`` is +1 for up pulses, -1 for down pulses."""
        if (gamma == 0.0) | (bound == 0.0):
            return 1.0
        return max(1.0 - (sign * step) * gamma / bound, 0.0)

    @jit
    def pulse_block(g, n, step, sign, bound, gamma, low, high, ratio, decay, z, p):
        """``n`` pulses of ``sign`` (+1 up, -1 down) towards ``bound`` in closed form, with
        their cycle noise ``z``, clipped to ``[low, high]``.

        Soft bounds: each step is ``step (1 - gamma g / bound)``, so the distance to the
        fixed point ``bound / gamma`` shrinks by ``ratio`` a pulse (``block_ratio``) and by
        ``decay = ratio**n`` (``int_power``) over the block; a linear device (``gamma`` or
        ``bound`` 0) moves ``n`` steps. Written without early returns, so that inlined into a
        loop it vectorises.
        """
        signed = sign * step
        linear = (gamma == 0.0) | (bound == 0.0)
        safe_gamma = 1.0 if linear else gamma  # no division by zero in the unused branch
        safe_bound = 1.0 if linear else bound
        fixed = safe_bound / safe_gamma
        moved = g + n * signed if linear else fixed - (fixed - g) * decay
        first = signed if linear else signed * (1.0 - safe_gamma * g / safe_bound)
        noise = cycle_noise(first, ratio, decay, n, p) * z
        return clip(moved + sign * noise, low, high)

    @jit
    def steps_up(g, n, step, bound, gamma, low, z, p):
        """``n`` (an integer) up pulses of a linear-step device in closed form, with their
        cycle noise."""
        ratio = block_ratio(step, 1.0, bound, gamma)
        decay = int_power(ratio, n)
        return pulse_block(g, np.float64(n), step, 1.0, bound, gamma, low, bound, ratio, decay,
                           z, p)

    @jit
    def steps_down(g, n, step, bound, gamma, high, z, p):
        """``n`` down pulses towards ``bound`` (< 0), the mirror image of :func:`steps_up`."""
        ratio = block_ratio(step, -1.0, bound, gamma)
        decay = int_power(ratio, n)
        return pulse_block(g, np.float64(n), step, -1.0, bound, gamma, bound, high, ratio,
                           decay, z, p)

    @jit
    def exp_neg_fraction(f):
        """``exp(-f)`` for a float32 ``0 <= f <= 1``: one float32 polynomial, no range
        reduction."""
        y = F_HALF - f
        e = (((EH_8 * y + EH_7) * y + EH_6) * y + EH_5) * y + EH_4
        return (((e * y + EH_3) * y + EH_2) * y + EH_1) * y + EH_0

    @jit
    def poisson_head(mean, bits):
        """The vectorisable part of :func:`poisson_count`: ``(count, unfinished)``, with the
        inversion of the fractional part cut after 6 terms (``unfinished`` when the count
        may be larger: probability below 1e-4); 0 for means outside (0, limit)."""
        m = mean if (mean > 0.0) & (mean < POISSON_INVERSION_LIMIT) else 0.0
        whole = math.floor(m)
        fraction = m - whole
        column = bits >> COLUMN_SHIFT
        coin = (bits >> COIN_SHIFT) & COIN_MASK
        entry = POISSON_TABLES[np.int64(whole) * POISSON_COLUMNS + np.int64(column)]
        count = np.int64(column if coin < (entry & THRESHOLD_MASK) else entry >> ALIAS_SHIFT)
        u = (F32(np.uint32(bits & LOW_32)) + F_HALF) * F_INV_2_32
        f = F32(fraction)
        term = exp_neg_fraction(f)
        total = term
        for k in range(1, 7):
            count += u > total
            term = term * (f * F32(1.0 / k))
            total += term
        return count, u > total

    @jit
    def poisson_count(mean, bits, z):
        """A Poisson count of ``mean`` from one 64-bit hash ``bits`` (or, at and above the
        inversion limit, from the rounded normal ``mean + sqrt(mean) z``).

        Exact below the limit (to the float32 rounding of the fraction's probabilities, a
        few 1e-8): ``Poisson(M + f) = Poisson(M) + Poisson(f)`` for the whole and fractional
        parts of the mean, the first drawn from the alias table of ``M`` (bits 57-63 pick the
        column, bits 33-56 the coin), the second by float32 inversion of the uniform of bits
        0-31 (rounded to 24 bits). Bit 32 is left to the caller (the fast sampler's order
        coin).
        """
        if not mean > 0.0:
            return 0
        if mean >= POISSON_INVERSION_LIMIT:
            return max(int(math.floor(mean + math.sqrt(mean) * z + 0.5)), 0)  # noqa: RUF046
        whole = math.floor(mean)
        fraction = mean - whole
        column = bits >> COLUMN_SHIFT
        coin = (bits >> COIN_SHIFT) & COIN_MASK
        entry = POISSON_TABLES[np.int64(whole) * POISSON_COLUMNS + np.int64(column)]
        count = np.int64(column if coin < (entry & THRESHOLD_MASK) else entry >> ALIAS_SHIFT)
        u = (F32(np.uint32(bits & LOW_32)) + F_HALF) * F_INV_2_32
        f = F32(fraction)
        term = exp_neg_fraction(f)
        total = term
        extra = 0
        while u > total and extra < POISSON_MAX_TERMS:
            extra += 1
            term = term * (f * F32(1.0 / extra))
            total += term
        return count + extra

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
        program_value=program_value, cycle_noise=cycle_noise, int_power=int_power,
        block_ratio=block_ratio, pulse_block=pulse_block, steps_up=steps_up,
        steps_down=steps_down, poisson_head=poisson_head,
        poisson_count=poisson_count, popcount=popcount,
        cos_sin_turn=rng.cos_sin_turn, normal_pair=rng.normal_pair,
        normal_pair32=rng.normal_pair32,
        exp_neg_fraction=exp_neg_fraction,
    )
