"""The counter-based random numbers: NumPy arrays equal the compiled scalars; moments; keys."""

from __future__ import annotations

import numpy as np
import pytest

from analogsim.kernels._cpu_scalar import S
from analogsim.kernels.counter_rng import (
    GOLDEN_GAMMA,
    draw_key,
    hash64_array,
    normal_array,
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
def test_normal_array_equals_the_compiled_scalar(key: int) -> None:
    counters = _counters()
    # log and cos come from NumPy on one side and libm on the other: each may be one ulp off,
    # so a few ulps relative (and 1e-15 absolute near the zeros of the cosine).
    np.testing.assert_allclose(normal_array(key, counters), _scalar(S.normal, key, counters),
                               rtol=1e-14, atol=1e-15)


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
    # (32-bit uniforms) moves the kurtosis by ~1e-8, far inside.
    assert abs(draws.mean()) < 5 / np.sqrt(N_DRAWS)
    assert abs(draws.var() - 1.0) < 5 * np.sqrt(2.0 / N_DRAWS)
    centred = draws - draws.mean()
    kurtosis = np.mean(centred**4) / np.mean(centred**2) ** 2
    assert abs(kurtosis - 3.0) < 5 * np.sqrt(24.0 / N_DRAWS)
    assert np.all(np.isfinite(draws)) and np.abs(draws).max() < 6.7


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
