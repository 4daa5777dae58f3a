"""The counter-based random numbers: NumPy arrays equal the compiled scalars; accuracy of the
normals (float64 and float32 pairs) against exact Box-Muller; moments, distribution and tails;
keys."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import stats

from analogsim.kernels._cpu_scalar import RNG, S
from analogsim.kernels.counter_rng import (
    GOLDEN_GAMMA,
    LOW_32,
    SHIFT_32,
    build_scalar_functions,
    cos_turn_array,
    draw_key,
    hash64_array,
    log_unit_array,
    normal_array,
    normal_pair32_array,
    normal_pair_array,
    uniform_array,
)

KEYS = (0, 1, 2**64 - 1, 0x5DEECE66D, 0x0123456789ABCDEF)
N_DRAWS = 1_000_000


def _counters() -> np.ndarray:
    """Small counters, a stretch near the top of the range, and random ones."""
    rng = np.random.default_rng(7)
    return np.concatenate([
        np.arange(1500, dtype=np.uint64),
        np.uint64(2**64 - 1) - np.arange(64, dtype=np.uint64),
        rng.integers(0, 2**64, size=400, dtype=np.uint64),
    ])


def _scalar(function, key: int, counters: np.ndarray) -> np.ndarray:
    return np.array([function(np.uint64(key), counter) for counter in counters])


@pytest.mark.parametrize("key", KEYS)
def test_hash_and_uniform_arrays_equal_the_compiled_scalars_exactly(key: int) -> None:
    counters = _counters()
    np.testing.assert_array_equal(hash64_array(key, counters), _scalar(S.hash64, key, counters))
    # Integer arithmetic and exact conversions only: bit-identical.
    np.testing.assert_array_equal(uniform_array(key, counters),
                                  _scalar(S.uniform, key, counters))


@pytest.mark.parametrize("key", KEYS)
def test_normal_array_equals_the_compiled_scalar_bit_for_bit(key: int) -> None:
    counters = _counters()
    # No libm: the same float64 operations in the same order on both sides.
    expected = _scalar(S.normal, key, counters)
    np.testing.assert_array_equal(normal_array(key, counters), expected)
    np.testing.assert_array_equal(_scalar(RNG.normal, key, counters), expected)


@numba.njit(error_model="numpy")
def _fill_normals(key, counters, out):
    """A loop the inlined normal vectorises in (as in the MVM epilogue)."""
    for k in range(counters.size):
        out[k] = RNG_NORMAL(key, counters[k])


RNG_NORMAL = RNG.normal


def test_vectorised_normals_equal_the_array_twin_bit_for_bit() -> None:
    counters = np.arange(100_003, dtype=np.uint64)
    out = np.empty(counters.size)
    _fill_normals(np.uint64(KEYS[3]), counters, out)
    np.testing.assert_array_equal(out, normal_array(KEYS[3], counters))


#: Edges of the octants of the angle (and of the 32-bit range), and extreme radii.
ANGLE_EDGES = np.array([k * 2**29 + d for k in range(9) for d in (-1, 0)
                        if 0 <= k * 2**29 + d < 2**32], dtype=np.uint64)
RADIUS_BITS = np.array([0, 1, 2, 2**16, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1],
                       dtype=np.uint64)
EXTENDED = np.finfo(np.longdouble).eps < 1e-18
PI_EXTENDED = np.longdouble("3.14159265358979323846264338327950288")


def _exact_box_muller(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """sqrt(-2 ln u1) cos(2 pi u2) in extended precision (64-bit mantissa)."""
    u1 = (high.astype(np.longdouble) + np.longdouble(0.5)) / np.longdouble(2.0**32)
    u2 = (low.astype(np.longdouble) + np.longdouble(0.5)) / np.longdouble(2.0**32)
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * PI_EXTENDED * u2)


@pytest.mark.skipif(not EXTENDED, reason="needs an extended-precision long double (x86)")
def test_normal_deviates_from_exact_box_muller_by_less_than_2e_15() -> None:
    counters = np.arange(1_000_000, dtype=np.uint64)
    bits = hash64_array(KEYS[4], counters)
    exact = _exact_box_muller(bits >> SHIFT_32, bits & LOW_32)
    deviation = np.abs(normal_array(KEYS[4], counters) - exact)
    assert deviation.max() < 2e-15  # measured 1.3e-15 over 1e7 draws (counter_rng docstring)
    high, low = (grid.ravel() for grid in np.meshgrid(RADIUS_BITS, ANGLE_EDGES))
    u1 = (high.astype(np.float64) + 0.5) * 2.0**-32
    edges = np.sqrt(-2.0 * log_unit_array(u1)) * cos_turn_array(low)
    assert np.abs(edges - _exact_box_muller(high, low)).max() < 2e-15
    assert np.abs(edges).max() < 6.77  # the tails end where u1 does: sqrt(66 ln 2)


@pytest.mark.skipif(not EXTENDED, reason="needs an extended-precision long double (x86)")
def test_log_unit_is_accurate_to_a_few_ulps_over_the_whole_range() -> None:
    # Every exponent the radius can have, from 2**-33 to just below 1.
    u = np.exp(np.random.default_rng(0).uniform(np.log(2.0**-33), 0.0, 200_000))
    u = np.concatenate([u, [2.0**-33, 0.5, np.sqrt(0.5), np.nextafter(1.0, 0.0)]])
    exact = np.log(u.astype(np.longdouble))
    relative = np.abs((log_unit_array(u) - exact) / exact)
    assert relative.max() < 1e-15
    compiled = np.array([S.log_unit(value) for value in u[-50:]])
    np.testing.assert_array_equal(compiled, log_unit_array(u[-50:]))


@pytest.mark.statistical
def test_normal_passes_a_kolmogorov_smirnov_test_on_four_million_draws() -> None:
    draws = normal_array(13, np.arange(4_000_000, dtype=np.uint64))
    # Fixed key: deterministic; for a fresh key the false-failure rate is 1e-6. The
    # statistic resolves CDF errors of about 1e-3 at this size.
    result = stats.kstest(draws, "norm")
    assert result.pvalue > 1e-6, result


@pytest.mark.statistical
def test_normal_tails_and_symmetry_match_theory() -> None:
    n = 4_000_000
    draws = normal_array(14, np.arange(n, dtype=np.uint64))
    # Each count is binomial: within 5 standard deviations (false-failure rate 6e-7 each).
    for cut in (2.0, 3.0, 4.0):
        p_beyond = 2.0 * stats.norm.sf(cut)
        observed = np.count_nonzero(np.abs(draws) > cut)
        assert abs(observed - n * p_beyond) < 5 * np.sqrt(n * p_beyond * (1 - p_beyond)), cut
    positive = np.count_nonzero(draws > 0.0)
    assert abs(positive - n / 2) < 5 * np.sqrt(n / 4)
    # Octant by octant the angle is covered evenly: the sign pattern of (cos, sin) quadrants.
    octants = (hash64_array(14, np.arange(n, dtype=np.uint64)) & LOW_32) >> np.uint64(29)
    for octant in range(8):
        inside = octants == octant
        share = np.count_nonzero(inside)
        assert abs(share - n / 8) < 5 * np.sqrt(n / 8 * 7 / 8)
        expected_sign = 1.0 if octant in (0, 1, 6, 7) else -1.0
        assert np.all(np.sign(draws[inside]) == expected_sign)


def test_uniforms_lie_strictly_inside_the_unit_interval() -> None:
    draws = uniform_array(3, np.arange(N_DRAWS, dtype=np.uint64))
    assert draws.min() > 0.0 and draws.max() < 1.0


@pytest.mark.statistical
def test_uniform_mean_and_variance_match_theory() -> None:
    draws = uniform_array(11, np.arange(N_DRAWS, dtype=np.uint64))
    # Tolerance: 5 standard errors of each estimator (two-sided false-failure rate 6e-7).
    # Var(mean) = (1/12) / N; Var(sample variance) = (mu4 - sigma^4) / N, mu4 = 1/80.
    mean_se = np.sqrt(1.0 / 12.0 / N_DRAWS)
    var_se = np.sqrt((1.0 / 80.0 - 1.0 / 144.0) / N_DRAWS)
    assert abs(draws.mean() - 0.5) < 5 * mean_se
    assert abs(draws.var() - 1.0 / 12.0) < 5 * var_se


@pytest.mark.statistical
def test_normal_mean_variance_and_kurtosis_match_theory() -> None:
    draws = normal_array(12, np.arange(N_DRAWS, dtype=np.uint64))
    # Tolerance: 5 standard errors (false-failure rate 6e-7 each): SE(mean) = 1/sqrt(N),
    # SE(variance) = sqrt(2/N), SE(kurtosis) = sqrt(24/N). The cut of the tails at 6.7 sigma
    # (32-bit uniforms; at most 6.76) moves the kurtosis by ~1e-8, far inside.
    assert abs(draws.mean()) < 5 / np.sqrt(N_DRAWS)
    assert abs(draws.var() - 1.0) < 5 * np.sqrt(2.0 / N_DRAWS)
    centred = draws - draws.mean()
    kurtosis = np.mean(centred**4) / np.mean(centred**2) ** 2
    assert abs(kurtosis - 3.0) < 5 * np.sqrt(24.0 / N_DRAWS)
    assert np.all(np.isfinite(draws)) and np.abs(draws).max() < 6.77


@pytest.mark.statistical
@pytest.mark.parametrize("other", [
    pytest.param(lambda key: key + 1, id="adjacent-key"),
    pytest.param(lambda key: key ^ 0x5DEECE66D, id="xor-key-of-the-d-trains"),
    pytest.param(lambda key: draw_key(np.random.default_rng(99)), id="fresh-key"),
])
def test_different_keys_give_uncorrelated_streams(other) -> None:
    key = draw_key(np.random.default_rng(5))
    second = other(key) % 2**64
    counters = np.arange(N_DRAWS, dtype=np.uint64)
    # |r| < 5 / sqrt(N): 5 standard errors of a correlation coefficient of independent
    # streams (false-failure rate 6e-7 per check), for the uniforms, the normals and lag 1.
    limit = 5 / np.sqrt(N_DRAWS)
    first_u, second_u = uniform_array(key, counters), uniform_array(second, counters)
    assert abs(np.corrcoef(first_u, second_u)[0, 1]) < limit
    assert abs(np.corrcoef(first_u[1:], second_u[:-1])[0, 1]) < limit
    first_n, second_n = normal_array(key, counters), normal_array(second, counters)
    assert abs(np.corrcoef(first_n, second_n)[0, 1]) < limit
    assert abs(np.corrcoef(first_n**2, second_n**2)[0, 1]) < limit


def test_consecutive_counters_of_one_key_are_uncorrelated() -> None:
    draws = uniform_array(21, np.arange(N_DRAWS, dtype=np.uint64))
    # 5 standard errors of a lag-1 autocorrelation (false-failure rate 6e-7).
    assert abs(np.corrcoef(draws[1:], draws[:-1])[0, 1]) < 5 / np.sqrt(N_DRAWS)


def test_a_key_offset_by_the_golden_gamma_is_the_same_stream_shifted() -> None:
    # A property of the construction, kept here as a warning: keys must come from draw_key
    # (random 64-bit values), never from arithmetic on another key by multiples of gamma.
    key = 12345
    counters = np.arange(100, dtype=np.uint64)
    shifted = (key + int(GOLDEN_GAMMA)) % 2**64
    np.testing.assert_array_equal(hash64_array(shifted, counters),
                                  hash64_array(key, counters + np.uint64(1)))


def test_draw_key_is_reproducible_from_the_generator_seed() -> None:
    first = [draw_key(np.random.default_rng(4)) for _ in range(2)]
    assert first[0] == first[1] and 0 <= first[0] < 2**64
    assert draw_key(np.random.default_rng(5)) != first[0]


@pytest.mark.parametrize("key", KEYS[:3])
def test_normal_pair_arrays_equal_compiled_scalars_and_start_with_the_normal(key: int) -> None:
    counters = _counters()
    first, second = normal_pair_array(key, counters)
    compiled = np.array([S.normal_pair(np.uint64(key), c) for c in counters])
    np.testing.assert_array_equal(first, compiled[:, 0])
    np.testing.assert_array_equal(second, compiled[:, 1])
    np.testing.assert_array_equal(first, normal_array(key, counters))  # the cosine branch
    # cos^2 + sin^2 = 1: the pair lies on the circle of the normal's radius.
    u1 = ((hash64_array(key, counters) >> SHIFT_32).astype(np.float64) + 0.5) / 2.0**32
    np.testing.assert_allclose(first**2 + second**2, -2.0 * np.log(u1), rtol=1e-13)


@pytest.mark.statistical
def test_normal_pairs_are_independent_standard_normals() -> None:
    _assert_independent_standard_normals(
        *normal_pair_array(0x5DEECE66D, np.arange(N_DRAWS, dtype=np.uint64)))


def _assert_independent_standard_normals(first: np.ndarray, second: np.ndarray) -> None:
    """5 standard errors of the mean, the variance (sqrt(2 / n)) and the correlations of
    the two members of the pairs and of their squares; a KS test of each at p > 1e-6."""
    first, second = first.astype(np.float64), second.astype(np.float64)
    se = 1.0 / np.sqrt(first.size)
    for z in (first, second):
        assert abs(z.mean()) < 5 * se and abs(z.var() - 1.0) < 5 * np.sqrt(2.0) * se
        assert stats.kstest(z, "norm").pvalue > 1e-6
    assert abs(np.corrcoef(first, second)[0, 1]) < 5 * se
    assert abs(np.corrcoef(first**2, second**2)[0, 1]) < 5 * se


# ------------------------------------------------------------------ the float32 pair
@pytest.mark.parametrize("key", KEYS[:3])
def test_float32_pair_arrays_equal_compiled_and_python_scalars(key: int) -> None:
    counters = _counters()
    first, second = normal_pair32_array(key, counters)
    assert first.dtype == np.float32 and second.dtype == np.float32
    compiled = np.array([S.normal_pair32(np.uint64(key), c) for c in counters])
    np.testing.assert_array_equal(first, compiled[:, 0])
    np.testing.assert_array_equal(second, compiled[:, 1])
    plain = build_scalar_functions(lambda function: function)  # NumPy scalars, as cudasim
    with np.errstate(over="ignore"):  # uint64 scalar products wrap, as the hash intends
        python = np.array([plain.normal_pair32(np.uint64(key), c) for c in counters[:300]])
    assert python.dtype == np.float32
    np.testing.assert_array_equal(python[:, 0], first[:300])
    np.testing.assert_array_equal(python[:, 1], second[:300])


@pytest.mark.parametrize("key", KEYS)
def test_float32_pair_is_box_muller_to_float32_accuracy(key: int) -> None:
    # Exact Box-Muller of the same 64 bits, in float64 with libm: the float32 pair deviates
    # by its own rounding (a few ulps of the radius of at most 6.76) and by the angle's
    # offset kept to 24 of its 29 bits (2.4e-8 rad). 1e-5 bounds both with room.
    counters = np.concatenate([_counters(), np.arange(200_000, dtype=np.uint64)])
    first, second = normal_pair32_array(key, counters)
    bits = hash64_array(key, counters)
    u1 = ((bits >> SHIFT_32).astype(np.float64) + 0.5) / 2.0**32
    angle = 2.0 * np.pi * (((bits & LOW_32).astype(np.float64) + 0.5) / 2.0**32)
    radius = np.sqrt(-2.0 * np.log(u1))
    np.testing.assert_allclose(first, radius * np.cos(angle), rtol=0, atol=1e-5)
    np.testing.assert_allclose(second, radius * np.sin(angle), rtol=0, atol=1e-5)


@pytest.mark.statistical
def test_float32_pairs_are_independent_standard_normals() -> None:
    _assert_independent_standard_normals(  # the float64 pair's tolerances
        *normal_pair32_array(0x5DEECE66D, np.arange(N_DRAWS, dtype=np.uint64)))
