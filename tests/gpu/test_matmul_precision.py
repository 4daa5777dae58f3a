"""The reduced-precision matmul option, checked on the CPU by emulating its input rounding.

TF32 keeps 10 explicit mantissa bits, bf16 7: rounding to nearest has a relative error of at
most 2**-11 and 2**-8 (half a unit in the last place), truncation twice that. The preset
check asserts what :mod:`analogsim.kernels.cuda.matmul` documents: TF32 adds an error far
below the read noise (RMS under 10 % of it) for every preset, weight distribution and
rounding; bf16 does so only for some configurations, and its error is 2**3 times TF32's.
"""

from __future__ import annotations

import numpy as np
import pytest

from analogsim import devices
from analogsim.errors import BackendUnavailableError, ParameterError
from analogsim.kernels.cuda.matmul import (
    MANTISSA_BITS,
    emulated_matmul,
    gemm_arguments,
    matmul,
    precision_error,
    read_noise_case,
    round_mantissa,
)

PRESETS = ("pcm", "reram", "ecram")
#: "Far below the device noise": the RMS added error under this fraction of the read noise.
FAR_BELOW = 0.10


def _samples(count=200_000, seed=0):
    """float32 values over many binades and both signs."""
    rng = np.random.default_rng(seed)
    return (rng.choice([-1.0, 1.0], count) * 2.0 ** rng.uniform(-20, 20, count)).astype(
        np.float32)


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
@pytest.mark.parametrize(("rounding", "ulps"), [("nearest", 0.5), ("truncate", 1.0)])
def test_rounding_error_is_within_its_bound(precision, rounding, ulps):
    bits = MANTISSA_BITS[precision]
    x = _samples()
    rounded = round_mantissa(x, bits, rounding)
    relative = np.abs(rounded.astype(np.float64) - x) / np.abs(x)
    assert relative.max() <= ulps * 2.0**-bits
    low_bits = rounded.view(np.uint32) & np.uint32((1 << (23 - bits)) - 1)
    assert not low_bits.any(), "rounded values must fit the shorter mantissa"
    np.testing.assert_array_equal(round_mantissa(rounded, bits, rounding), rounded)


def test_round_to_nearest_breaks_ties_to_even():
    bf16_ulp = 2.0**-7
    halfway_down = 1.0 + bf16_ulp / 2  # between 1 (even) and 1 + ulp (odd): down
    halfway_up = 1.0 + 3 * bf16_ulp / 2  # between 1 + ulp (odd) and 1 + 2 ulp (even): up
    x = np.array([halfway_down, halfway_up, -halfway_up], dtype=np.float32)
    expected = np.array([1.0, 1.0 + 2 * bf16_ulp, -(1.0 + 2 * bf16_ulp)], dtype=np.float32)
    np.testing.assert_array_equal(round_mantissa(x, 7, "nearest"), expected)
    np.testing.assert_array_equal(round_mantissa(x, 7, "truncate"),
                                  np.array([1.0, 1.0 + bf16_ulp, -(1.0 + bf16_ulp)], np.float32))


def test_fp32_emulation_is_the_float64_product_of_the_inputs():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(6, 9)).astype(np.float32), rng.normal(size=(9, 4)).astype(np.float32)
    np.testing.assert_array_equal(emulated_matmul(a, b, "fp32"),
                                  a.astype(np.float64) @ b.astype(np.float64))


@pytest.fixture(scope="module", params=[(name, weights) for name in PRESETS
                                        for weights in ("normal", "uniform")],
                ids=lambda case: "-".join(case))
def case(request):
    name, weights = request.param
    return read_noise_case(devices.preset(name), rows=512, cols=256, batch=32, seed=0,
                           weights=weights)


@pytest.mark.parametrize("rounding", ["nearest", "truncate"])
def test_tf32_error_is_far_below_the_read_noise(case, rounding):
    check = precision_error(case, "tf32", rounding)
    assert check.rms_ratio < FAR_BELOW, check


def test_bf16_error_is_eight_times_tf32(case):
    # Input rounding error scales as 2**-bits: 2**3 from 10 to 7 bits (a ratio of RMS over
    # 8k outputs, stable to a few percent).
    ratio = precision_error(case, "bf16").rms_ratio / precision_error(case, "tf32").rms_ratio
    assert 6.5 < ratio < 9.5


def test_fp32_error_is_negligible(case):
    check = precision_error(case, "fp32")
    assert check.rms_ratio < 1e-6


def test_the_check_needs_a_device_with_read_noise():
    with pytest.raises(ParameterError, match=r"Ideal has no read noise"):
        read_noise_case(devices.Ideal(), rows=8, cols=4, batch=2)


def test_cpu_matmul_runs_fp32_and_refuses_tensor_core_precisions():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=(5, 2)).astype(np.float32)
    np.testing.assert_array_equal(matmul(a, b), a @ b)
    with pytest.raises(BackendUnavailableError, match=r"precision='bf16' needs CuPy arrays"):
        matmul(a, b, precision="bf16")
    with pytest.raises(ParameterError, match=r"'precision' parameter of matmul must be one of"):
        matmul(a, b, precision="fp16")


def _column_major_gemm(gemm):
    """A reference column-major gemm (as cuBLAS computes it) on the arrays' raw buffers."""
    def operand(array, op, ld, rows, cols):
        # Column-major (ld x ...) view of the buffer, then op applied.
        flat = np.asarray(array).ravel(order="K")
        stored = flat.reshape(-1, ld).T  # column j is flat[j*ld : (j+1)*ld]
        return stored[:cols, :rows].T if op else stored[:rows, :cols]

    first = operand(gemm.first, gemm.op_first, gemm.ld_first, gemm.m, gemm.k)
    second = operand(gemm.second, gemm.op_second, gemm.ld_second, gemm.k, gemm.n)
    product = first.astype(np.float64) @ second.astype(np.float64)  # (m, n), column major
    return product.T  # the C-contiguous (n, m) result as row-major memory


@pytest.mark.parametrize("a_order", ["C", "F"])
@pytest.mark.parametrize("b_order", ["C", "F"])
def test_gemm_arguments_compute_the_row_major_product(a_order, b_order):
    rng = np.random.default_rng(3)
    a = np.asarray(rng.normal(size=(5, 7)), dtype=np.float32, order=a_order)
    b = np.asarray(rng.normal(size=(7, 3)), dtype=np.float32, order=b_order)
    result = _column_major_gemm(gemm_arguments(a, b))
    np.testing.assert_allclose(result, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-12)
