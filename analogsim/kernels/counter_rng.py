"""Counter-based random numbers shared by the NumPy references and the compiled kernels.

A kernel receives a 64-bit ``key`` (drawn from the chip's ``numpy.random.Generator`` once per
call) and derives the random number for element ``counter`` as a pure function of
``(key, counter)``: SplitMix64's output function applied to ``key + (counter + 1) * gamma``.
This makes parallel kernels deterministic regardless of thread scheduling, lets a NumPy
reference reproduce a compiled kernel's numbers exactly, and is what a GPU kernel does too.

The scalar functions are plain Python over ``numpy.uint64`` so that Numba can compile them for
the CPU (``numba.njit``) and for CUDA (``numba.cuda.jit(device=True)``) from one source.

The normal
----------
Box-Muller from one 64-bit hash, cosine branch: the high 32 bits give ``u1``, the low 32 bits
the angle, ``z = sqrt(-2 ln u1) cos(2 pi u2)`` with ``u = (k + 1/2) / 2**32``, so
``|z| <= sqrt(66 ln 2) = 6.76``.
It is evaluated without libm and without branches, so that a loop of normals vectorises
(libm's ``log`` and ``cos`` are scalar calls, about 25 ns a normal; this is about 3.5 ns):

- ``ln u1``: ``u1 = m 2**e`` with ``m`` in ``[sqrt(1/2), sqrt(2))``, found by six exact
  multiplications by powers of two (selects, no bit casts, so it compiles for every target),
  then ``ln m = 2 atanh(s)``, ``s = (m - 1) / (m + 1)``, by its series to ``s**19``
  (``|s| <= 0.172``: truncation below 1e-17).
- ``cos(2 pi u2)``: the top three bits of the angle pick its octant and the other 29 bits the
  offset ``t`` in ``(0, pi/4)`` (mirrored in odd octants, exactly, by complementing the bits);
  the value is ``+-sin t`` or ``+-cos t``, from the minimax polynomials of Cephes' ``sin.c``
  (relative error about 1e-16 on ``[0, pi/4]``).

``normal_pair`` returns the sine branch too, ``sqrt(-2 ln u1) sin(2 pi u2)``: an independent
second normal from the same hash (the fast pulsed update draws its two cycle-noise normals
so). ``sin(2 pi u2)`` is ``cos(2 pi u2 - pi/2)``: the same offset two octants back, so one
evaluation of the two polynomials gives both.

The angle is the same number as ``2 pi u2`` in exact arithmetic, so this is Box-Muller itself,
not an approximation of its distribution: against the exact value for the same bits (computed
in extended precision) it deviates by 1.3e-15 at most over 10**7 draws and the extreme and
octant-edge counters (``ln u1`` to 4e-16 relative); the libm form ``sqrt(-2 log u1)
cos(2 pi u2)`` deviated by up to 2.9e-15, from rounding ``2 pi u2``. The tests hold it to
2e-15 (``tests/kernels/test_kernel_counter_rng.py``).
``normal_pair32`` is the same pair in float32 arithmetic, for loops that need many normals
and no more than float32 resolution (the MVM epilogue): the same 64 bits, ``ln u1`` by the
same reduction with the series to ``s**9``, and Cephes' float32 polynomials for sine and
cosine (the angle's offset rounded to 24 bits). It agrees with exact Box-Muller of the same
bits to 1e-5. In a vectorised loop on the AVX-512 machine of ``benchmarks/README.md`` a pair
took 1.8 ns, against about 4 ns for each float64 normal (twice the lanes, shorter
polynomials). ``normal_pair32_words`` is the same pair from the hash's two 32-bit halves,
for loops that hash in a pass of their own and keep to 32-bit lanes.

:func:`normal_array`, :func:`normal_pair_array` and :func:`normal_pair32_array` are the
NumPy twins: the same operations in the same order on float64 (float32) arrays, so they
return the same values bit for bit (no FMA contraction on either side).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_2 = np.uint64(0x94D049BB133111EB)
SHIFT_30 = np.uint64(30)
SHIFT_27 = np.uint64(27)
SHIFT_31 = np.uint64(31)
SHIFT_32 = np.uint64(32)
SHIFT_11 = np.uint64(11)
ZERO = np.uint64(0)
ONE = np.uint64(1)
TWO = np.uint64(2)
FOUR = np.uint64(4)
LOW_32 = np.uint64(0xFFFFFFFF)
INV_2_32 = 1.0 / 4294967296.0
INV_2_53 = 1.0 / 9007199254740992.0
TWO_PI = 2.0 * math.pi

LN_2 = math.log(2.0)
SQRT_HALF = math.sqrt(0.5)
#: ``log_unit`` scales its argument by 2^k where it lies below ``sqrt(1/2) 2^(1 - k)``.
(BELOW_32, BELOW_16, BELOW_8, BELOW_4, BELOW_2, BELOW_1) = (
    SQRT_HALF * 2.0 ** (1 - k) for k in (32, 16, 8, 4, 2, 1))
#: The angle's octant is its top 3 of 32 bits; the offset within the octant the low 29.
OCTANT_SHIFT = np.uint64(29)
OFFSET_MASK = np.uint64((1 << 29) - 1)
OFFSET_STEP = 0.25 * math.pi / (1 << 29)
#: 1 / (2k + 1), k = 9 .. 0: the series ln m = 2 s sum_k s^(2k) / (2k + 1).
(LOG_19, LOG_17, LOG_15, LOG_13, LOG_11, LOG_9, LOG_7, LOG_5, LOG_3) = (
    1.0 / 19.0, 1.0 / 17.0, 1.0 / 15.0, 1.0 / 13.0, 1.0 / 11.0, 1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0,
    1.0 / 3.0)
#: Cephes sin.c: sin t = t + t^3 P(t^2), cos t = 1 - t^2 / 2 + t^4 Q(t^2) for |t| <= pi/4.
(SIN_0, SIN_1, SIN_2, SIN_3, SIN_4, SIN_5) = (
    1.58962301576546568060e-10, -2.50507477628578072866e-8, 2.75573136213857245213e-6,
    -1.98412698295895385996e-4, 8.33333333332211858878e-3, -1.66666666666666307295e-1)
(COS_0, COS_1, COS_2, COS_3, COS_4, COS_5) = (
    -1.13585365213876817300e-11, 2.08757008419747316778e-9, -2.75573141792967388112e-7,
    2.48015872888517045348e-5, -1.38888888888730564116e-3, 4.16666666666665929218e-2)
SEVEN = np.uint64(7)
#: 32-bit integer constants, for the angle's octant and offset as uint32.
U32 = np.uint32
(U_ZERO, U_ONE, U_TWO, U_FOUR, U_SEVEN) = (U32(k) for k in (0, 1, 2, 4, 7))
U_OCTANT_SHIFT = U32(29)
U_LOW_29 = U32((1 << 29) - 1)

# The float32 pair (``normal_pair32``): every constant a float32, so the arithmetic stays
# float32 on every target (NumPy scalars and arrays, Numba CPU, CUDA).
F32 = np.float32
LOW_29 = np.uint64((1 << 29) - 1)
F_HALF, F_ONE, F_TWO, F_MINUS_TWO = F32(0.5), F32(1.0), F32(2.0), F32(-2.0)
F_INV_2_32 = F32(INV_2_32)
F_LN_2 = F32(LN_2)
F_OFFSET_STEP = F32(OFFSET_STEP)
(F_BELOW_32, F_BELOW_16, F_BELOW_8, F_BELOW_4, F_BELOW_2, F_BELOW_1) = (
    F32(value) for value in (BELOW_32, BELOW_16, BELOW_8, BELOW_4, BELOW_2, BELOW_1))
(F_SCALE_32, F_SCALE_16, F_SCALE_8, F_SCALE_4, F_SCALE_2, F_SCALE_1) = (
    F32(2.0**step) for step in (32, 16, 8, 4, 2, 1))
(F_STEP_32, F_STEP_16, F_STEP_8, F_STEP_4, F_STEP_2, F_STEP_1) = (
    F32(step) for step in (32, 16, 8, 4, 2, 1))
#: 1 / (2k + 1), k = 4 .. 1: the atanh series of ``ln m`` to ``s**9`` (truncation below
#: 1e-9 relative for ``|s| <= 0.172``, under float32's 6e-8).
(F_LOG_9, F_LOG_7, F_LOG_5, F_LOG_3) = (F32(1.0 / k) for k in (9, 7, 5, 3))
#: Cephes ``sinf.c``/``cosf.c``: sin t = t + t^3 P(t^2), cos t = 1 - t^2 / 2 + t^4 Q(t^2) on
#: [0, pi/4], float32 accuracy.
(F_SIN_0, F_SIN_1, F_SIN_2) = (F32(-1.9515295891e-4), F32(8.3321608736e-3),
                               F32(-1.6666654611e-1))
(F_COS_0, F_COS_1, F_COS_2) = (F32(2.443315711809948e-5), F32(-1.388731625493765e-3),
                               F32(4.166664568298827e-2))


def log_series(m, e):
    """``ln(m 2**e)`` for ``m`` in ``[sqrt(1/2), sqrt(2))``: ``2 atanh(s)``, ``s = (m - 1) /
    (m + 1)``, to the ``s**19`` term, plus ``e ln 2``. Plain Python, so that it serves NumPy
    arrays as it is and every backend once compiled (``log_unit``, ``vector_math``'s
    ``log_positive`` and their NumPy twins): one source, the same numbers bit for bit."""
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    series = ((((((((LOG_19 * s2 + LOG_17) * s2 + LOG_15) * s2 + LOG_13) * s2 + LOG_11)
                  * s2 + LOG_9) * s2 + LOG_7) * s2 + LOG_5) * s2 + LOG_3) * s2 + 1.0
    return 2.0 * s * series + e * LN_2


def build_scalar_functions(jit):
    """Compile the scalar generators with ``jit`` (``numba.njit``, ``numba.cuda.jit(device=True)``
    or the identity for plain Python) and return them as a namespace.

    On the CPU pass a ``jit`` with ``inline="always"``: a normal that is not inlined into its
    loop does not vectorise (measured: 32 ns a normal instead of 3.5 ns).

    Returns
    -------
    types.SimpleNamespace with ``hash64(key, counter)``, ``uniform(key, counter)`` (float64 in
    (0, 1), 53 random bits), ``normal(key, counter)`` (see the module docstring),
    ``normal_pair(key, counter)`` (its cosine and sine branches), ``cos_sin_turn(bits)``,
    ``log_unit(u)`` (``ln u`` for ``2**-62 <= u < 1.4``) and ``cos_turn(bits)``
    (``cos(2 pi (bits + 1/2) / 2**32)`` for a 32-bit ``bits``). ``key`` and ``counter`` are
    uint64.
    """
    series_of = jit(log_series)

    @jit
    def hash64(key, counter):
        z = key + (counter + ONE) * GOLDEN_GAMMA
        z = (z ^ (z >> SHIFT_30)) * MIX_1
        z = (z ^ (z >> SHIFT_27)) * MIX_2
        return z ^ (z >> SHIFT_31)

    @jit
    def uniform(key, counter):
        bits = hash64(key, counter) >> SHIFT_11
        return (np.float64(bits) + 0.5) * INV_2_53

    @jit
    def scale_below(m, e, below, scale, step):
        """One step of ``log_unit``'s reduction: ``(m scale, e - step)`` where ``m < below``,
        else ``(m, e)``; a power-of-two scale, so exact. Selects, no branch."""
        under = m < below
        return (m * scale if under else m), (e - step if under else e)

    @jit
    def log_unit(u):
        # Scale u by 2^32, 2^16, ..., 2^1 where it lies below sqrt(1/2) 2^(1 - step): each
        # multiplication is exact and m ends in [sqrt(1/2), sqrt(2)).
        m, e = scale_below(u, 0.0, BELOW_32, 4294967296.0, 32.0)
        m, e = scale_below(m, e, BELOW_16, 65536.0, 16.0)
        m, e = scale_below(m, e, BELOW_8, 256.0, 8.0)
        m, e = scale_below(m, e, BELOW_4, 16.0, 4.0)
        m, e = scale_below(m, e, BELOW_2, 4.0, 2.0)
        m, e = scale_below(m, e, BELOW_1, 2.0, 1.0)
        return series_of(m, e)

    @jit
    def cos_turn(bits):
        octant = bits >> OCTANT_SHIFT
        offset = bits & OFFSET_MASK
        # Odd octants run backwards from pi/4: complementing the offset's bits is exact.
        offset = OFFSET_MASK - offset if (octant & ONE) != ZERO else offset
        t = (np.float64(offset) + 0.5) * OFFSET_STEP
        t2 = t * t
        sine = t + t * t2 * (((((SIN_0 * t2 + SIN_1) * t2 + SIN_2) * t2 + SIN_3) * t2 + SIN_4)
                             * t2 + SIN_5)
        cosine = 1.0 - 0.5 * t2 + t2 * t2 * (((((COS_0 * t2 + COS_1) * t2 + COS_2) * t2
                                                + COS_3) * t2 + COS_4) * t2 + COS_5)
        # Octants 1, 2, 5, 6 take the sine; 2, 3, 4, 5 are negative.
        value = sine if ((octant + ONE) & TWO) != ZERO else cosine
        return -value if ((octant + TWO) & FOUR) != ZERO else value

    @jit
    def normal(key, counter):
        bits = hash64(key, counter)
        u1 = (np.float64(bits >> SHIFT_32) + 0.5) * INV_2_32
        return math.sqrt(-2.0 * log_unit(u1)) * cos_turn(bits & LOW_32)

    @jit
    def octant_cos_sin(octant, sine, cosine):
        """``(cos a, sin a)`` from the octant of ``a`` (a uint32) and the sine and cosine of
        its reduced offset (float64 or float32 alike): octants 1, 2, 5, 6 take the sine for
        the cosine, 2, 3, 4, 5 are negative; ``sin a = cos(a - pi/2)`` is two octants back."""
        # uint32 casts: Numba widens the integer arithmetic, LLVM narrows it back.
        value = sine if U32((octant + U_ONE) & U_TWO) != U_ZERO else cosine
        cos_a = -value if U32((octant + U_TWO) & U_FOUR) != U_ZERO else value
        value = sine if U32((octant + U_SEVEN) & U_TWO) != U_ZERO else cosine
        sin_a = -value if U32(octant & U_FOUR) != U_ZERO else value
        return cos_a, sin_a

    @jit
    def cos_sin_turn(bits):
        """``(cos a, sin a)``, ``a = 2 pi (bits + 1/2) / 2**32``: one evaluation of the two
        polynomials of :func:`cos_turn`; ``sin a = cos(a - pi/2)`` is two octants back, with
        the same offset."""
        octant = np.uint32(bits >> OCTANT_SHIFT)
        offset = bits & OFFSET_MASK
        offset = OFFSET_MASK - offset if (octant & ONE) != ZERO else offset
        t = (np.float64(offset) + 0.5) * OFFSET_STEP
        t2 = t * t
        sine = t + t * t2 * (((((SIN_0 * t2 + SIN_1) * t2 + SIN_2) * t2 + SIN_3) * t2 + SIN_4)
                             * t2 + SIN_5)
        cosine = 1.0 - 0.5 * t2 + t2 * t2 * (((((COS_0 * t2 + COS_1) * t2 + COS_2) * t2
                                                + COS_3) * t2 + COS_4) * t2 + COS_5)
        return octant_cos_sin(octant, sine, cosine)

    @jit
    def normal_pair(key, counter):
        """Two independent standard normals from one hash: Box-Muller's cosine and sine
        branches (the first is :func:`normal` of the same counter)."""
        bits = hash64(key, counter)
        u1 = (np.float64(bits >> SHIFT_32) + 0.5) * INV_2_32
        radius = math.sqrt(-2.0 * log_unit(u1))
        cos_a, sin_a = cos_sin_turn(bits & LOW_32)
        return radius * cos_a, radius * sin_a

    @jit
    def normal_pair32(key, counter):
        """Two independent standard normals as float32, from one hash: ``normal_pair`` with
        float32 arithmetic and float32 polynomials (see the module docstring)."""
        bits = hash64(key, counter)
        return normal_pair32_words(np.uint32(bits >> SHIFT_32), np.uint32(bits & LOW_32))

    @jit
    def normal_pair32_words(high, low):
        """:func:`normal_pair32` of the hash whose high and low 32 bits are the uint32
        ``high`` and ``low``: 32-bit integers and float32 only, so that a loop of them runs
        16 lanes of AVX-512 (a loop that also hashes runs 8, the lanes of its 64-bit
        integers)."""
        m, e = scale_below((F32(high) + F_HALF) * F_INV_2_32, F32(0.0), F_BELOW_32,
                           F_SCALE_32, F_STEP_32)
        m, e = scale_below(m, e, F_BELOW_16, F_SCALE_16, F_STEP_16)
        m, e = scale_below(m, e, F_BELOW_8, F_SCALE_8, F_STEP_8)
        m, e = scale_below(m, e, F_BELOW_4, F_SCALE_4, F_STEP_4)
        m, e = scale_below(m, e, F_BELOW_2, F_SCALE_2, F_STEP_2)
        m, e = scale_below(m, e, F_BELOW_1, F_SCALE_1, F_STEP_1)
        s = (m - F_ONE) / (m + F_ONE)
        s2 = s * s
        log_m = F_TWO * s * ((((F_LOG_9 * s2 + F_LOG_7) * s2 + F_LOG_5) * s2 + F_LOG_3) * s2
                             + F_ONE)
        radius = F32(math.sqrt(F_MINUS_TWO * (log_m + e * F_LN_2)))
        octant = U32(low >> U_OCTANT_SHIFT)
        offset = U32(low & U_LOW_29)
        offset = U32(U_LOW_29 - offset) if U32(octant & U_ONE) != U_ZERO else offset
        t = (F32(offset) + F_HALF) * F_OFFSET_STEP
        t2 = t * t
        sine = t + t * t2 * ((F_SIN_0 * t2 + F_SIN_1) * t2 + F_SIN_2)
        cosine = F_ONE - F_HALF * t2 + t2 * t2 * ((F_COS_0 * t2 + F_COS_1) * t2 + F_COS_2)
        cos_a, sin_a = octant_cos_sin(octant, sine, cosine)
        return radius * cos_a, radius * sin_a

    return SimpleNamespace(hash64=hash64, uniform=uniform, normal=normal, log_unit=log_unit,
                           cos_turn=cos_turn, cos_sin_turn=cos_sin_turn,
                           normal_pair=normal_pair, normal_pair32=normal_pair32,
                           normal_pair32_words=normal_pair32_words)


def hash64_array(key: int, counters: np.ndarray) -> np.ndarray:
    """Vectorised :func:`hash64` over an array of counters (NumPy reference)."""
    k = np.uint64(key)
    z = k + (counters.astype(np.uint64) + ONE) * GOLDEN_GAMMA
    z = (z ^ (z >> SHIFT_30)) * MIX_1
    z = (z ^ (z >> SHIFT_27)) * MIX_2
    return z ^ (z >> SHIFT_31)


def uniform_array(key: int, counters: np.ndarray) -> np.ndarray:
    """Vectorised :func:`uniform`."""
    bits = hash64_array(key, counters) >> SHIFT_11
    return (bits.astype(np.float64) + 0.5) * INV_2_53


def log_unit_array(u: np.ndarray) -> np.ndarray:
    """Vectorised ``log_unit``: the same operations, so the same values bit for bit."""
    m = np.asarray(u, dtype=np.float64)
    e = np.zeros_like(m)
    thresholds = (BELOW_32, BELOW_16, BELOW_8, BELOW_4, BELOW_2, BELOW_1)
    for step, threshold in zip((32, 16, 8, 4, 2, 1), thresholds, strict=True):
        below = m < threshold
        m = np.where(below, m * 2.0**step, m)
        e = np.where(below, e - float(step), e)
    return log_series(m, e)


def _turn_polynomials(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(octant, sine, cosine)`` of the reduced angle of ``bits``: the shared start of
    :func:`cos_turn_array` and :func:`cos_sin_turn_array`."""
    octant = bits >> OCTANT_SHIFT
    offset = bits & OFFSET_MASK
    offset = np.where((octant & ONE) != ZERO, OFFSET_MASK - offset, offset)
    t = (offset.astype(np.float64) + 0.5) * OFFSET_STEP
    t2 = t * t
    sine_poly = SIN_0
    for coefficient in (SIN_1, SIN_2, SIN_3, SIN_4, SIN_5):
        sine_poly = sine_poly * t2 + coefficient
    cosine_poly = COS_0
    for coefficient in (COS_1, COS_2, COS_3, COS_4, COS_5):
        cosine_poly = cosine_poly * t2 + coefficient
    sine = t + t * t2 * sine_poly
    cosine = 1.0 - 0.5 * t2 + t2 * t2 * cosine_poly
    return octant, sine, cosine


def cos_turn_array(bits: np.ndarray) -> np.ndarray:
    """Vectorised ``cos_turn`` of uint64 ``bits`` below 2**32 (bit for bit)."""
    octant, sine, cosine = _turn_polynomials(bits)
    value = np.where(((octant + ONE) & TWO) != ZERO, sine, cosine)
    return np.where(((octant + TWO) & FOUR) != ZERO, -value, value)


def normal_array(key: int, counters: np.ndarray) -> np.ndarray:
    """Vectorised :func:`normal` (bit for bit; see the module docstring)."""
    bits = hash64_array(key, counters)
    u1 = ((bits >> SHIFT_32).astype(np.float64) + 0.5) * INV_2_32
    return np.sqrt(-2.0 * log_unit_array(u1)) * cos_turn_array(bits & LOW_32)


def _octant_cos_sin(octant: np.ndarray, sine: np.ndarray,
                    cosine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``octant_cos_sin`` (float64 or float32 arrays)."""
    value = np.where(((octant + ONE) & TWO) != ZERO, sine, cosine)
    cos_a = np.where(((octant + TWO) & FOUR) != ZERO, -value, value)
    value = np.where(((octant + SEVEN) & TWO) != ZERO, sine, cosine)
    sin_a = np.where((octant & FOUR) != ZERO, -value, value)
    return cos_a, sin_a


def cos_sin_turn_array(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``cos_sin_turn`` (bit for bit)."""
    octant, sine, cosine = _turn_polynomials(bits)
    return _octant_cos_sin(octant, sine, cosine)


def normal_pair_array(key: int, counters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``normal_pair`` (bit for bit)."""
    bits = hash64_array(key, counters)
    u1 = ((bits >> SHIFT_32).astype(np.float64) + 0.5) * INV_2_32
    radius = np.sqrt(-2.0 * log_unit_array(u1))
    cos_a, sin_a = cos_sin_turn_array(bits & LOW_32)
    return radius * cos_a, radius * sin_a


def normal_pair32_array(key: int, counters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``normal_pair32`` (float32 arrays, bit for bit)."""
    bits = hash64_array(key, counters)
    m = ((bits >> SHIFT_32).astype(np.uint32).astype(F32) + F_HALF) * F_INV_2_32
    e = np.zeros_like(m)
    for scale, step, threshold in zip(
            (F_SCALE_32, F_SCALE_16, F_SCALE_8, F_SCALE_4, F_SCALE_2, F_SCALE_1),
            (F_STEP_32, F_STEP_16, F_STEP_8, F_STEP_4, F_STEP_2, F_STEP_1),
            (F_BELOW_32, F_BELOW_16, F_BELOW_8, F_BELOW_4, F_BELOW_2, F_BELOW_1), strict=True):
        below = m < threshold
        m = np.where(below, m * scale, m)
        e = np.where(below, e - step, e)
    s = (m - F_ONE) / (m + F_ONE)
    s2 = s * s
    log_m = F_TWO * s * ((((F_LOG_9 * s2 + F_LOG_7) * s2 + F_LOG_5) * s2 + F_LOG_3) * s2 + F_ONE)
    radius = np.sqrt(F_MINUS_TWO * (log_m + e * F_LN_2))
    angle = bits & LOW_32
    octant = angle >> OCTANT_SHIFT
    offset = angle & LOW_29
    offset = np.where((octant & ONE) != ZERO, LOW_29 - offset, offset)
    t = (offset.astype(np.uint32).astype(F32) + F_HALF) * F_OFFSET_STEP
    t2 = t * t
    sine = t + t * t2 * ((F_SIN_0 * t2 + F_SIN_1) * t2 + F_SIN_2)
    cosine = F_ONE - F_HALF * t2 + t2 * t2 * ((F_COS_0 * t2 + F_COS_1) * t2 + F_COS_2)
    cos_a, sin_a = _octant_cos_sin(octant, sine, cosine)
    return radius * cos_a, radius * sin_a


def draw_key(rng: np.random.Generator) -> int:
    """A fresh 64-bit stream key from a NumPy generator (one per kernel call)."""
    return int(rng.integers(0, 2**64, dtype=np.uint64))
