"""float64 ``log`` and ``exp`` written as selects and polynomials, so that loops calling them
vectorise.

A loop that calls libm's ``log`` or ``pow`` runs one device at a time: Numba has no vector
maths library unless Intel's SVML is installed. The drift map calls three of them for every
device after each clock step, so a forward right after ``chip.advance`` took 35 ms
(1024x1024 ReRAM) and 109 ms (PCM) against 6 and 12 ms with the map cached. The pulsed
update's drift settle (``scalar.settled_value``) uses them too, for the same reason; its
NumPy reference uses the twins at the end of this module (``log_positive_array``,
``exp_bounded_array``: the same operations, so the same values bit for bit).

They are accurate to a few float64 ulps (``tests/kernels/test_kernel_vector_math.py``
measures them against extended precision), far below the float32 the maps are stored in:

``log_positive(x)``
    ``x`` in ``[2**-127, 2**127]`` (clamped to it: float32's normal range and more): scaled
    by exact powers of two into ``[sqrt(1/2), sqrt(2))``, seven selects each way, then the
    series of :func:`~analogsim.kernels.counter_rng` ``log_unit``.
``log_float32_bits(bits)``
    ``ln |x|`` of a float32 ``x`` given as its uint32 bits: the exponent and mantissa read
    from the bits, so no reduction at all (the drift map's conductances are float32).
``exp_bounded(y)``
    ``y`` clamped to ``[-87, 87]``, so the result lies in ``[2**-126, 2**126]``: ``y = k ln 2
    + r`` with ``|r| <= ln 2 / 2`` (``ln 2`` split in two so that ``k ln 2`` is exact), a
    degree-13 Taylor polynomial of ``e^r``, and ``2**k`` as a product of exact powers of two
    picked by the bits of ``|k|``.

:func:`build` compiles them with a decorator, like :mod:`analogsim.kernels.scalar`.
"""

from __future__ import annotations

import math
from decimal import Context, Decimal
from types import SimpleNamespace

import numpy as np

from analogsim.kernels.counter_rng import LN_2, SQRT_HALF, log_series

#: ``log_positive`` scales by ``2**-k`` where its argument is at least ``sqrt(2) 2**(k-1)``
#: and by ``2**k`` where it is below ``sqrt(1/2) 2**(1-k)``, k = 64, 32, ..., 1.
STEPS = (64, 32, 16, 8, 4, 2, 1)
(ABOVE_64, ABOVE_32, ABOVE_16, ABOVE_8, ABOVE_4, ABOVE_2, ABOVE_1) = (
    math.sqrt(2.0) * 2.0 ** (k - 1) for k in STEPS)
(BELOW_64, BELOW_32, BELOW_16, BELOW_8, BELOW_4, BELOW_2, BELOW_1) = (
    SQRT_HALF * 2.0 ** (1 - k) for k in STEPS)
(UP_64, UP_32, UP_16, UP_8, UP_4, UP_2, UP_1) = (2.0**k for k in STEPS)
SQRT_TWO = math.sqrt(2.0)
#: The fields of a float32: 23 mantissa bits under 8 exponent bits, bias 127.
U_MANTISSA_BITS = np.uint32(23)
U_EXPONENT_MASK = np.uint32(0xFF)
U_MANTISSA_MASK = np.uint32((1 << 23) - 1)
INV_2_23 = 2.0**-23
I_BIAS = np.int32(127)
I_ZERO = np.int32(0)
(DOWN_64, DOWN_32, DOWN_16, DOWN_8, DOWN_4, DOWN_2, DOWN_1) = (2.0**-k for k in STEPS)
LOG_LOWEST, LOG_HIGHEST = 2.0**-127, 2.0**127
LOG_OF_LOWEST = -127.0 * LN_2
EXP_LIMIT = 87.0
INV_LN_2 = 1.0 / LN_2
#: ``ln 2`` as a 33-bit head (so ``k LN_2_HIGH`` is exact for |k| < 2**20) and the rest,
#: computed in 50 digits (``decimal``): ``LN_2 - LN_2_HIGH`` would carry float64's error of
#: ``ln 2``, 13 ulps of ``e^y`` at ``|y| = 87``.
LN_2_HIGH = float.fromhex("0x1.62e42fee00000p-1")
LN_2_LOW = float(Decimal(2).ln(Context(prec=50)) - Decimal(LN_2_HIGH))
#: ``1 / k!``, k = 13 .. 2.
(E_13, E_12, E_11, E_10, E_9, E_8, E_7, E_6, E_5, E_4, E_3, E_2) = (
    1.0 / math.factorial(k) for k in range(13, 1, -1))


def exp_series(r):
    """``e^r`` for ``|r| <= ln 2 / 2``: its Taylor polynomial to the ``r**13`` term. Plain
    Python, shared by every form of ``exp_bounded`` (compiled, and the NumPy twin)."""
    return ((((((((((((E_13 * r + E_12) * r + E_11) * r + E_10) * r + E_9) * r + E_8) * r
                  + E_7) * r + E_6) * r + E_5) * r + E_4) * r + E_3) * r + E_2) * r
            + 1.0) * r + 1.0


def build(jit, scalar=False):
    """Compile ``log_positive``, ``log_float32_bits`` and ``exp_bounded`` with ``jit``.

    ``scalar=True`` gives ``log_positive`` and ``exp_bounded`` for code that runs one value
    at a time (the CPU's scalar rules): the same values bit for bit, with the exponent taken
    by ``math.frexp`` and put back by ``math.ldexp`` instead of seven selects each way. The
    decomposition ``m 2**e`` with ``m`` in ``[sqrt(1/2), sqrt(2))`` is unique, and a product
    by a power of two is correctly rounded either way, so both give the same numbers; with
    the selects a scalar drift settle took about 90 ns a device, with these about 60.
    """

    _series = jit(log_series)
    _exp_series = jit(exp_series)

    @jit
    def _scale(m, e, above, below, up, down, step):
        """One step of the reduction: ``m`` times ``2**-step`` where it is at least
        ``above``, times ``2**step`` where it is below ``below``; ``e`` counts the steps."""
        high = m >= above
        low = m < below
        m = m * down if high else m
        m = m * up if low else m
        e = e + step if high else e
        e = e - step if low else e
        return m, e

    @jit
    def log_positive(x):
        m = min(max(x, LOG_LOWEST), LOG_HIGHEST)
        e = 0.0
        m, e = _scale(m, e, ABOVE_64, BELOW_64, UP_64, DOWN_64, 64.0)
        m, e = _scale(m, e, ABOVE_32, BELOW_32, UP_32, DOWN_32, 32.0)
        m, e = _scale(m, e, ABOVE_16, BELOW_16, UP_16, DOWN_16, 16.0)
        m, e = _scale(m, e, ABOVE_8, BELOW_8, UP_8, DOWN_8, 8.0)
        m, e = _scale(m, e, ABOVE_4, BELOW_4, UP_4, DOWN_4, 4.0)
        m, e = _scale(m, e, ABOVE_2, BELOW_2, UP_2, DOWN_2, 2.0)
        m, e = _scale(m, e, ABOVE_1, BELOW_1, UP_1, DOWN_1, 1.0)
        return _series(m, e)

    @jit
    def log_float32_bits(bits):
        """``ln |x|`` of the float32 ``x`` whose bits are the uint32 ``bits``: the exponent
        and mantissa read from the bits (no reduction loop); ``ln(2**-127)`` for 0 and for
        subnormals (below 1.2e-38)."""
        exponent = np.int32((bits >> U_MANTISSA_BITS) & U_EXPONENT_MASK)
        m = 1.0 + np.float64(bits & U_MANTISSA_MASK) * INV_2_23
        e = np.float64(exponent - I_BIAS)
        high = m >= SQRT_TWO
        m = m * 0.5 if high else m
        e = e + 1.0 if high else e
        value = _series(m, e)
        return value if exponent > I_ZERO else LOG_OF_LOWEST

    @jit
    def _power_of_two(scale, magnitude, bit, up):
        """``scale`` times ``up = 2**bit`` where ``magnitude`` has that bit (taken from the
        top); returns the new scale and ``magnitude`` without it."""
        on = magnitude >= bit
        return (scale * up if on else scale), (magnitude - bit if on else magnitude)

    @jit
    def _exp_reduced(y):
        """``(k, e^r)`` with ``y = k ln 2 + r`` after clamping ``y`` to the limit, for both
        forms of ``exp_bounded``, which differ only in how they multiply by ``2**k``."""
        y = min(max(y, -EXP_LIMIT), EXP_LIMIT)
        k = math.floor(y * INV_LN_2 + 0.5)
        r = (y - k * LN_2_HIGH) - k * LN_2_LOW
        return k, _exp_series(r)

    @jit
    def exp_bounded(y):
        k, poly = _exp_reduced(y)
        scale, magnitude = 1.0, abs(k)
        scale, magnitude = _power_of_two(scale, magnitude, 64.0, UP_64)
        scale, magnitude = _power_of_two(scale, magnitude, 32.0, UP_32)
        scale, magnitude = _power_of_two(scale, magnitude, 16.0, UP_16)
        scale, magnitude = _power_of_two(scale, magnitude, 8.0, UP_8)
        scale, magnitude = _power_of_two(scale, magnitude, 4.0, UP_4)
        scale, magnitude = _power_of_two(scale, magnitude, 2.0, UP_2)
        scale, magnitude = _power_of_two(scale, magnitude, 1.0, UP_1)
        return poly * scale if k >= 0.0 else poly / scale  # exact: scale is a power of two

    @jit
    def log_positive_scalar(x):
        m = min(max(x, LOG_LOWEST), LOG_HIGHEST)
        mantissa, exponent = math.frexp(m)  # mantissa in [1/2, 1)
        low = mantissa < SQRT_HALF
        return _series(mantissa * 2.0 if low else mantissa,
                       np.float64(exponent - 1) if low else np.float64(exponent))

    @jit
    def exp_bounded_scalar(y):
        k, poly = _exp_reduced(y)
        return math.ldexp(poly, int(k))

    if scalar:
        return SimpleNamespace(log_positive=log_positive_scalar,
                               exp_bounded=exp_bounded_scalar,
                               log_float32_bits=log_float32_bits)
    return SimpleNamespace(log_positive=log_positive, exp_bounded=exp_bounded,
                           log_float32_bits=log_float32_bits)


def _scale_array(m, e, above, below, up, down, step):
    """``_scale`` over arrays: the same operations, so the same values bit for bit."""
    high = m >= above
    low = m < below
    m = np.where(high, m * down, m)
    m = np.where(low, m * up, m)
    e = np.where(high, e + step, e)
    e = np.where(low, e - step, e)
    return m, e


def log_positive_array(x):
    """Vectorised ``log_positive`` (NumPy): the same operations, so the same values bit for
    bit; the NumPy reference of the pulsed update uses it where the kernels do."""
    m = np.minimum(np.maximum(np.asarray(x, dtype=np.float64), LOG_LOWEST), LOG_HIGHEST)
    e = np.zeros(m.shape)
    for above, below, up, down, step in zip(
            (ABOVE_64, ABOVE_32, ABOVE_16, ABOVE_8, ABOVE_4, ABOVE_2, ABOVE_1),
            (BELOW_64, BELOW_32, BELOW_16, BELOW_8, BELOW_4, BELOW_2, BELOW_1),
            (UP_64, UP_32, UP_16, UP_8, UP_4, UP_2, UP_1),
            (DOWN_64, DOWN_32, DOWN_16, DOWN_8, DOWN_4, DOWN_2, DOWN_1),
            (64.0, 32.0, 16.0, 8.0, 4.0, 2.0, 1.0), strict=True):
        m, e = _scale_array(m, e, above, below, up, down, step)
    return log_series(m, e)


def exp_bounded_array(y):
    """Vectorised ``exp_bounded`` (NumPy): the same operations, so the same values bit for
    bit."""
    y = np.minimum(np.maximum(np.asarray(y, dtype=np.float64), -EXP_LIMIT), EXP_LIMIT)
    k = np.floor(y * INV_LN_2 + 0.5)
    r = (y - k * LN_2_HIGH) - k * LN_2_LOW
    poly = exp_series(r)
    scale, magnitude = np.ones(y.shape), np.abs(k)
    for bit, up in ((64.0, UP_64), (32.0, UP_32), (16.0, UP_16), (8.0, UP_8), (4.0, UP_4),
                    (2.0, UP_2), (1.0, UP_1)):
        on = magnitude >= bit
        scale = np.where(on, scale * up, scale)
        magnitude = np.where(on, magnitude - bit, magnitude)
    return np.where(k >= 0.0, poly * scale, poly / scale)
