"""The vectorisable float64 log and exp of the drift map (:mod:`analogsim.kernels.vector_math`)
against extended precision, at their edges, and compiled against plain Python."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from analogsim.kernels.vector_math import (
    LN_2_HIGH,
    LN_2_LOW,
    build,
    exp_bounded_array,
    log_positive_array,
)

EXTENDED = np.finfo(np.longdouble).eps < 1e-18
V = build(numba.njit(inline="always", error_model="numpy"))
PLAIN = build(lambda function: function)
_log, _log_bits, _exp = V.log_positive, V.log_float32_bits, V.exp_bounded
ULP = 2.0**-52


@numba.njit(error_model="numpy")
def _logs(x, out):
    for j in range(x.shape[0]):  # vectorised, as in the drift map
        out[j] = _log(x[j])


@numba.njit(error_model="numpy")
def _logs_of_bits(bits, out):
    for j in range(bits.shape[0]):
        out[j] = _log_bits(bits[j])


@numba.njit(error_model="numpy")
def _exps(y, out):
    for j in range(y.shape[0]):
        out[j] = _exp(y[j])


def _apply(kernel, values, dtype=np.float64):
    out = np.empty(values.shape, dtype=dtype)
    kernel(values, out)
    return out


def _log_error(values, computed):
    """Error in units of the result's ulp, or absolute (in ulps of 1) near ln = 0."""
    exact = np.log(values.astype(np.longdouble))
    return np.abs(computed - exact) / np.maximum(np.abs(exact), 1.0) / ULP


RNG = np.random.default_rng(0)
WIDE = np.concatenate([np.exp(RNG.uniform(np.log(2.0**-127), np.log(2.0**127), 200_000)),
                       [2.0**-127, 2.0**127, 1.0, np.nextafter(1.0, 2.0),
                        np.nextafter(1.0, 0.0), math.sqrt(2.0), math.sqrt(0.5), 1e-6, 0.5]])


@pytest.mark.skipif(not EXTENDED, reason="needs an extended-precision long double (x86)")
def test_log_positive_is_within_four_ulps_over_its_whole_range() -> None:
    assert _log_error(WIDE, _apply(_logs, WIDE)).max() < 4.0


@pytest.mark.skipif(not EXTENDED, reason="needs an extended-precision long double (x86)")
def test_log_of_float32_bits_is_within_four_ulps_for_normal_floats() -> None:
    x = np.abs(WIDE.astype(np.float32))
    x = x[(x >= np.finfo(np.float32).tiny) & np.isfinite(x)]
    computed = _apply(_logs_of_bits, x.view(np.uint32))
    assert _log_error(x.astype(np.float64), computed).max() < 4.0
    negative = -x[:1000]  # the sign bit is ignored: ln |x|
    np.testing.assert_array_equal(_apply(_logs_of_bits, negative.view(np.uint32)),
                                  computed[:1000])


def test_log_of_zero_and_subnormal_bits_is_the_floor() -> None:
    tiny = np.array([0.0, -0.0, 1e-40, np.finfo(np.float32).smallest_subnormal],
                    dtype=np.float32)
    np.testing.assert_array_equal(_apply(_logs_of_bits, tiny.view(np.uint32)),
                                  np.full(4, -127.0 * math.log(2.0)))


@pytest.mark.skipif(not EXTENDED, reason="needs an extended-precision long double (x86)")
def test_exp_bounded_is_within_four_ulps_over_its_whole_range() -> None:
    y = np.concatenate([RNG.uniform(-87.0, 87.0, 200_000),
                        [0.0, -87.0, 87.0, 1e-12, -1e-12, 0.5 * math.log(2.0), -0.5]])
    exact = np.exp(y.astype(np.longdouble))
    relative = np.abs((_apply(_exps, y) - exact) / exact)
    assert relative.max() < 4.0 * ULP


def test_ln_2_is_split_exactly() -> None:
    assert LN_2_HIGH + LN_2_LOW == math.log(2.0)
    assert float(np.float64(LN_2_HIGH) * 126.0) == LN_2_HIGH * 126  # k ln2_high is exact
    assert math.frexp(LN_2_HIGH)[0] * 2**33 == int(math.frexp(LN_2_HIGH)[0] * 2**33)


def test_arguments_beyond_the_range_are_clamped() -> None:
    edges = np.array([0.0, 1e-300, 1e300, np.inf])
    np.testing.assert_array_equal(_apply(_logs, edges),
                                  [-127.0 * math.log(2.0)] * 2 + [127.0 * math.log(2.0)] * 2)
    beyond = np.array([-1000.0, -87.0, 87.0, 1000.0])
    out = _apply(_exps, beyond)
    assert out[0] == out[1] and out[2] == out[3]
    assert 2.0**-126 <= out[1] < 2.0**-125 and 2.0**125 < out[2] <= 2.0**126


def test_compiled_and_plain_python_give_the_same_bits() -> None:
    x = WIDE[-200:]
    np.testing.assert_array_equal(_apply(_logs, x), [PLAIN.log_positive(v) for v in x])
    y = np.linspace(-87.0, 87.0, 301)
    np.testing.assert_array_equal(_apply(_exps, y), [PLAIN.exp_bounded(v) for v in y])
    bits = np.abs(x.astype(np.float32)).view(np.uint32)
    np.testing.assert_array_equal(_apply(_logs_of_bits, bits),
                                  [PLAIN.log_float32_bits(b) for b in bits])


def test_the_numpy_twins_equal_the_compiled_functions_bit_for_bit():
    """``log_positive_array`` and ``exp_bounded_array`` (the NumPy reference of the update's
    drift settle) against the vectorised compiled loops, over the whole range and at the
    clamps, the reduction thresholds and zero."""
    rng = np.random.default_rng(11)
    x = np.concatenate([np.exp(rng.uniform(-95.0, 95.0, 50_000)), [
        0.0, 1e-300, 2.0**-127, 2.0**-127 * 0.99, 1e-6, 0.5, math.sqrt(0.5), 1.0,
        math.sqrt(2.0), 2.0, 2.0**127, 1e300]])
    y = np.concatenate([rng.uniform(-100.0, 100.0, 50_000), [
        -1e9, -87.0, -86.999, -0.5 * math.log(2.0), 0.0, -0.0, 1e-300,
        0.5 * math.log(2.0), 87.0, 1e9]])
    np.testing.assert_array_equal(log_positive_array(x), _apply(_logs, x))
    np.testing.assert_array_equal(exp_bounded_array(y), _apply(_exps, y))


def test_the_scalar_forms_equal_the_select_forms_bit_for_bit():
    """``build(jit, scalar=True)`` (frexp/ldexp, for one value at a time) against the select
    forms the vectorised loops use: the same numbers, at the reduction's edges too."""
    scalar = build(numba.njit, scalar=True)
    log_s, exp_s = scalar.log_positive, scalar.exp_bounded

    @numba.njit
    def apply_both(x, y, out):
        for k in range(x.shape[0]):
            out[0, k], out[1, k] = log_s(x[k]), _log(x[k])
            out[2, k], out[3, k] = exp_s(y[k]), _exp(y[k])

    rng = np.random.default_rng(12)
    edges = [math.sqrt(0.5), math.nextafter(math.sqrt(0.5), 0.0), math.sqrt(2.0),
             math.nextafter(math.sqrt(2.0), 0.0), 2.0**-127, 2.0**127, 1e-300, 1e300, 0.0, 1.0]
    x = np.concatenate([np.exp(rng.uniform(-95.0, 95.0, 50_000)), edges,
                        np.array(edges[:4]) * 2.0**rng.integers(-60, 60, 4)])
    y = np.concatenate([rng.uniform(-100.0, 100.0, x.shape[0] - 8),
                        [-87.0, -86.9, -0.3466, 0.0, 0.3466, 86.9, 87.0, -1e9]])
    out = np.empty((4, x.shape[0]))
    apply_both(x, y, out)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[2], out[3])
