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
    F_ONE,
    F_TWO,
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
from analogsim.kernels.vector_math import build as build_vector_math

M1 = np.uint64(0x5555555555555555)
M2 = np.uint64(0x3333333333333333)
M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
H01 = np.uint64(0x0101010101010101)
S1 = np.uint64(1)
S2 = np.uint64(2)
S4 = np.uint64(4)
S56 = np.uint64(56)
F_ZERO = F32(0.0)
F_MINUS_ONE = F32(-1.0)
#: Below this mean, Poisson counts are drawn exactly (alias table plus inversion); at and
#: above it, by a rounded normal.
POISSON_INVERSION_LIMIT = 30.0
F_LIMIT = F32(POISSON_INVERSION_LIMIT)
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
#: The same entries as uint32 (a 7-bit alias above a 25-bit threshold), for
#: :func:`poisson_head`'s 32-bit lanes.
POISSON_TABLES_32 = POISSON_TABLES.astype(np.uint32)
#: The column, coin and alias fields of a draw, read from the high 32 bits of its hash.
U_COLUMN_SHIFT = np.uint32(COLUMN_SHIFT - 32)
U_COIN_SHIFT = np.uint32(COIN_SHIFT - 32)
U_COIN_MASK = np.uint32(COIN_MASK)
U_THRESHOLD_MASK = np.uint32(THRESHOLD_MASK)
U_ALIAS_SHIFT = np.uint32(ALIAS_SHIFT)


def build(jit, scalar_math=False):
    """Compile the scalar physics with ``jit``; see the module docstring. ``scalar_math``:
    the drift rules' ``log`` and ``exp`` in the form for code that runs one device at a
    time (:func:`analogsim.kernels.vector_math.build`; the same numbers)."""
    rng = build_scalar_functions(jit)
    vector = build_vector_math(jit, scalar=scalar_math)
    log_positive, exp_bounded = vector.log_positive, vector.exp_bounded

    @jit
    def clip(value, low, high):
        return min(max(value, low), high)

    @jit
    def drift_constants(p):
        """The parameters of the drift rules as a tuple of locals, for loops that must not
        read ``p`` (LLVM would have to assume their stores change it, and not vectorise):
        ``(g_max, t0, mu_a, mu_b, mu_lo, mu_hi, sd_a, sd_b, sd_lo, sd_hi)``."""
        return (p[P_GMAX], p[P_T0], p[P_MU_A], p[P_MU_B], p[P_MU_LO], p[P_MU_HI], p[P_SD_A],
                p[P_SD_B], p[P_SD_LO], p[P_SD_HI])

    @jit
    def exponent_of(log_g, xi, mu_a, mu_b, mu_lo, mu_hi, sd_a, sd_b, sd_lo, sd_hi):
        """The drift exponent ``|mu + sigma xi|`` from ``log_g = ln max(g_rel, 1e-6)``, the
        clipped log-linear ``mu`` and ``sigma`` given by their parameters."""
        mu = clip(mu_a * log_g + mu_b, mu_lo, mu_hi)
        sigma = clip(sd_a * log_g + sd_b, sd_lo, sd_hi)
        return abs(mu + sigma * xi)

    @jit
    def settled_after(g, elapsed, log_ratio, xi, constants):
        """:func:`settled_value` given ``log_ratio = log_positive((elapsed + t0) / t0)``,
        which devices written at one time share."""
        g_max, _, mu_a, mu_b, mu_lo, mu_hi, sd_a, sd_b, sd_lo, sd_hi = constants
        nu = exponent_of(log_positive(max(abs(g) / g_max, 1e-6)), xi, mu_a, mu_b, mu_lo, mu_hi,
                         sd_a, sd_b, sd_lo, sd_hi)
        factor = exp_bounded(-nu * log_ratio)
        return g * (1.0 if (elapsed <= 0.0) | (nu == 0.0) else factor)

    @jit
    def settled_value(g, elapsed, xi, constants):
        """``g`` times its drift factor after ``elapsed`` seconds: what a device read now
        holds. ``g``, ``elapsed`` and ``xi`` float64; ``constants`` from
        :func:`drift_constants`. The exponent ``nu = |mu(g) + sigma(g) xi|`` (clipped
        log-linear ``mu`` and ``sigma``), the factor ``((elapsed + t0) / t0)^-nu`` (1 when
        nothing has elapsed). Its ``log`` and power are
        :mod:`analogsim.kernels.vector_math`'s, not libm's: a loop of it vectorises, and the
        NumPy reference computes the same numbers (``log_positive_array``)."""
        t0 = constants[1]
        return settled_after(g, elapsed, log_positive((elapsed + t0) / t0), xi, constants)

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
    def program_constants(p):
        """The parameters :func:`program_with` reads, as a tuple: a loop that takes them
        once vectorises, where one that reads ``p`` may not (its stores might alias it)."""
        return (p[P_LEVELS], p[P_LEVEL_LO], p[P_LEVEL_HI], p[P_GMAX], p[P_PROG0], p[P_PROG1],
                p[P_PROG2])

    @jit
    def program_with(target, low, high, z, constants):
        """:func:`program_value` with the parameters of :func:`program_constants`."""
        levels, lo, hi, g_max, prog0, prog1, prog2 = constants
        if levels > 1.0:
            step = (hi - lo) / (levels - 1.0)
            target = lo + math.floor((clip(target, lo, hi) - lo) / step + 0.5) * step
        g = abs(target) / g_max
        sigma = prog0 + prog1 * g + prog2 * g * g
        return clip(target + max(sigma, 0.0) * z, low, high)

    @jit
    def program_value(target, low, high, z, p):
        """A programmed conductance (uS): quantised target plus programming error, clipped."""
        return program_with(target, low, high, z, program_constants(p))

    @jit
    def refreshed_pair(g_plus, g_minus, low_plus, low_minus, high_plus, high_minus, z,
                       constants):
        """A PCM pair after a refresh (read, both devices reset, the difference reprogrammed
        with programming error ``z`` onto the side it favours): ``(g_plus, g_minus)`` as
        float64, the other side at its lower bound. ``constants`` is
        :func:`program_constants`; no branches, so that a loop of it vectorises."""
        difference = np.float64(g_plus) - np.float64(g_minus)
        plus_side = difference >= 0.0
        value = program_with(abs(difference), np.float64(low_plus if plus_side else low_minus),
                             np.float64(high_plus if plus_side else high_minus), z, constants)
        return ((value if plus_side else np.float64(low_plus)),
                (np.float64(low_minus) if plus_side else value))

    @jit
    def pulse_reach(step, sign, bound, gamma):
        """The fraction of its distance to the fixed point ``bound / gamma`` that one pulse
        covers: ``min(sign step gamma / bound, 1)`` in float32, 0 for a linear device
        (``gamma`` or ``bound`` 0). ``sign`` is +1 for up pulses, -1 for down pulses; every
        argument is a float32. A pulse scales the distance by ``ratio = 1 - reach``; the
        reach itself is kept, not recomputed as ``1 - ratio``, because it is small and
        float32 would lose its digits."""
        linear = (gamma == F_ZERO) | (bound == F_ZERO)
        safe_bound = F_ONE if linear else bound  # no division by zero in the unused branch
        reach = min((sign * step) * gamma / safe_bound, F_ONE)
        return F_ZERO if linear else reach

    @jit
    def pulse_sums(ratio, n):
        """``(ratio**n, sum_{k<n} ratio**k)`` for an integer ``n >= 0``, float32, by binary
        powering, low bits first: bit ``b`` of ``n`` appends ``2**b`` terms, whose sum is
        ``ratio**m span_b`` with ``span_b = sum_{k<2**b} ratio**k = span_{b-1} (1 +
        ratio**(2**(b-1)))``. No division and no ``pow``; a linear device (ratio 1) gets
        ``(1, n)`` exactly. The CPU fast sampler's vectorised loop unrolls the same products
        over a fixed number of bits."""
        decay = F_ONE
        total = F_ZERO
        power = ratio
        span = F_ONE
        while n > 0:
            if n & 1:
                total = total + decay * span
                decay = decay * power
            span = span * (F_ONE + power)
            power = power * power
            n >>= 1
        return decay, total

    @jit
    def pulse_block(g, step, sign, low, high, reach, decay, total, z, dw_std):
        """``n`` pulses of ``sign`` (+1 up, -1 down) in closed form, with their cycle noise
        ``z``, clipped to ``[low, high]``; float32 throughout. ``reach`` is
        :func:`pulse_reach`, ``(decay, total)`` are :func:`pulse_sums` of ``1 - reach``.

        Soft bounds: each pulse moves a device by ``sign step (1 - gamma g / bound)``, so the
        steps of a block shrink geometrically and ``n`` pulses move it by ``first
        sum_{k<n} ratio**k``, ``first = sign step - reach g`` being the first step. A linear
        device moves ``n`` steps. Written as the first step times a sum of positive terms,
        not as the distance to the fixed point: a weakly bounded device (fixed point far
        away) loses no digits to cancellation, and a block never moves a device against its
        first step. Rounded float32 sums can exceed their limit ``1 / reach`` by a few ulps,
        so the move stops at the fixed point ``sign step / reach``.

        Cycle noise: each pulse's step is multiplied by ``1 + dw_std xi``, so the block's
        noise has std ``dw_std |first| sqrt(sum_{k<n} ratio**(2k))``, the last sum being
        ``total (1 + decay) / (1 + ratio)``: a saturated device, whose steps have shrunk to
        nothing, no longer random-walks. Written without early returns, so that inlined into
        a loop it vectorises.
        """
        signed = sign * step
        first = signed - reach * g
        moved = g + first * total
        bounded = reach > F_ZERO
        fixed = signed / (reach if bounded else F_ONE)
        limited = min(moved, fixed) if first >= F_ZERO else max(moved, fixed)
        moved = limited if bounded else moved
        spread = total * (F_ONE + decay) / (F_TWO - reach)
        noise = dw_std * abs(first) * F32(math.sqrt(spread)) * z
        return clip(moved + sign * noise, low, high)

    @jit
    def steps_up(g, n, step, bound, gamma, low, z, p):
        """``n`` (an integer) up pulses towards ``bound`` in closed form, with their cycle
        noise; ``g``, ``step``, ``bound``, ``low``, ``z`` float32, ``gamma`` from ``p``."""
        reach = pulse_reach(step, F_ONE, bound, F32(gamma))
        decay, total = pulse_sums(F_ONE - reach, n)
        return pulse_block(g, step, F_ONE, low, bound, reach, decay, total, z,
                           F32(p[P_DW_STD]))

    @jit
    def steps_down(g, n, step, bound, gamma, high, z, p):
        """``n`` down pulses towards ``bound`` (< 0), the mirror image of :func:`steps_up`."""
        reach = pulse_reach(step, F_MINUS_ONE, bound, F32(gamma))
        decay, total = pulse_sums(F_ONE - reach, n)
        return pulse_block(g, step, F_MINUS_ONE, bound, high, reach, decay, total, z,
                           F32(p[P_DW_STD]))

    @jit
    def exp_neg_fraction(f):
        """``exp(-f)`` for a float32 ``0 <= f <= 1``: one float32 polynomial, no range
        reduction."""
        y = F_HALF - f
        e = (((EH_8 * y + EH_7) * y + EH_6) * y + EH_5) * y + EH_4
        return (((e * y + EH_3) * y + EH_2) * y + EH_1) * y + EH_0

    @jit
    def poisson_head(mean, high, low):
        """The vectorisable part of :func:`poisson_count` for a float32 ``mean`` and the hash
        split into its uint32 halves ``high`` and ``low``: ``(count, unfinished)``, an int32
        count with the inversion of the fractional part cut after 6 terms (``unfinished``
        when the count may be larger: probability below 1e-4); 0 for means outside
        (0, limit).

        The same count as :func:`poisson_count` of the same 64 bits: float32 gives the same
        whole and fractional parts as float64 (both are exact), the column and coin are the
        same bits (57-63 and 33-56 of the hash are 25-31 and 1-24 of ``high``), and the alias
        entries fit 32 bits (:data:`POISSON_TABLES_32`). Only 32-bit integers and float32:
        a loop of them runs 16 lanes of AVX-512.
        """
        m = mean if (mean > F_ZERO) & (mean < F_LIMIT) else F_ZERO
        whole = np.floor(m)
        f = m - whole
        # Numba widens 32-bit integer arithmetic to 64 bits; the casts let LLVM narrow it
        # back, so that the loop keeps 16 lanes.
        column = np.uint32(high >> U_COLUMN_SHIFT)
        coin = np.uint32((high >> U_COIN_SHIFT) & U_COIN_MASK)
        entry = POISSON_TABLES_32[np.int64(whole) * POISSON_COLUMNS + np.int64(column)]
        keep = np.uint32(entry & U_THRESHOLD_MASK)
        count = np.int32(column if coin < keep else np.uint32(entry >> U_ALIAS_SHIFT))
        u = (F32(low) + F_HALF) * F_INV_2_32
        term = exp_neg_fraction(f)
        total = term
        for k in range(1, 7):
            count = np.int32(count + np.int32(u > total))
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
        read_sigma=read_sigma,
        drift_constants=drift_constants, settled_value=settled_value,
        settled_after=settled_after, log_positive=log_positive, exp_bounded=exp_bounded,
        program_value=program_value, program_constants=program_constants,
        program_with=program_with, refreshed_pair=refreshed_pair, pulse_sums=pulse_sums,
        pulse_reach=pulse_reach, pulse_block=pulse_block, steps_up=steps_up,
        steps_down=steps_down, poisson_head=poisson_head,
        poisson_count=poisson_count, popcount=popcount,
        cos_sin_turn=rng.cos_sin_turn, normal_pair=rng.normal_pair,
        normal_pair32=rng.normal_pair32,
        exp_neg_fraction=exp_neg_fraction,
    )
