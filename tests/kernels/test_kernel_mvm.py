"""The MVM epilogue: NumPy reference against Numba, what the ADC does to the output, and the
per-row read-noise variance of devices whose read noise does not depend on their state."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import DEVICE_CASES, FLOAT32_RTOL, each_device, random_state

import analogsim
from analogsim.kernels.counter_rng import normal_pair32_array
from analogsim.kernels.drift import effective_weights_numba
from analogsim.kernels.mvm import (
    epilogue_numba,
    epilogue_numpy,
    quantize_inputs,
    quantize_inputs_numba,
    row_read_variance,
)
from analogsim.periphery import Periphery

PERIPHERIES = {"adc-on": Periphery(), "adc-off": Periphery.ideal(out_noise=0.05)}


def _inputs(device, periphery: Periphery, read_noise: bool, batch: int = 7):
    """y = x W and v = x^2 sigma^2 of a random tile aged 100 s, with the epilogue arguments."""
    arrays = random_state(device, seed=3, now=100.0, max_age=100.0)
    signs = np.array([1.0, -1.0][: device.devices_per_weight])
    weight = np.empty(arrays.conductance.shape[1:], dtype=np.float32)
    variance = np.empty_like(weight)
    effective_weights_numba(arrays.conductance, arrays.written_at, arrays.drift_xi,
                            arrays.stuck, signs, 100.0, device.physics().pack(), weight,
                            variance)
    rng = np.random.default_rng(4)
    x = rng.uniform(-1.0, 1.0, (batch, weight.shape[0])).astype(np.float32)
    y = x @ weight
    noise_variance = (x * x) @ variance if read_noise else None
    adc_range = periphery.adc_range if periphery.adc_bits is not None else np.inf
    input_scale = rng.uniform(0.5, 2.0, batch).astype(np.float32)
    return (y, noise_variance, input_scale, arrays.adc_gain, arrays.adc_offset,
            float(periphery.out_noise), float(periphery.adc_step), float(adc_range), 1.7,
            np.uint64(0xC0FFEE))


def _run(epilogue, args) -> np.ndarray:
    y = args[0].copy()
    epilogue(y, *args[1:], y)  # in place: ``out`` may be ``y`` itself
    return y


@each_device
@pytest.mark.parametrize("periphery", list(PERIPHERIES.values()), ids=list(PERIPHERIES))
@pytest.mark.parametrize("read_noise", [True, False], ids=["read-noise", "no-read-noise"])
def test_epilogue_numpy_matches_numba(device, periphery: Periphery, read_noise: bool) -> None:
    args = _inputs(device, periphery, read_noise)
    expected = _run(epilogue_numba, args)
    actual = _run(epilogue_numpy, args)
    # The same float32 operations in the same order (no FMA contraction on either side).
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("epilogue", [epilogue_numpy, epilogue_numba], ids=["numpy", "numba"])
def test_adc_output_lies_on_its_grid_and_inside_its_range(epilogue) -> None:
    periphery = Periphery(adc_bits=4, adc_range=2.0)
    rng = np.random.default_rng(8)
    y = rng.normal(0.0, 2.0, (16, 9)).astype(np.float32)
    ones = np.ones(9, dtype=np.float32)
    input_scale = rng.uniform(0.5, 2.0, 16).astype(np.float32)
    out = np.empty_like(y)
    epilogue(y, None, input_scale, ones, np.zeros(9, np.float32), 0.1, periphery.adc_step,
             periphery.adc_range, 3.0, np.uint64(5), out)
    levels = out.astype(np.float64) / (input_scale[:, None].astype(np.float64) * 3.0)
    np.testing.assert_allclose(levels / periphery.adc_step,
                               np.round(levels / periphery.adc_step), atol=1e-5)
    assert np.abs(levels).max() <= periphery.adc_range * (1 + 1e-6)
    assert np.isclose(np.abs(levels).max(), periphery.adc_range)  # some outputs saturate


@pytest.mark.parametrize("epilogue", [epilogue_numpy, epilogue_numba], ids=["numpy", "numba"])
def test_noiseless_epilogue_without_adc_only_applies_gain_offset_and_scales(epilogue) -> None:
    rng = np.random.default_rng(9)
    y = rng.normal(size=(5, 6)).astype(np.float32)
    gain = rng.uniform(0.9, 1.1, 6).astype(np.float32)
    offset = rng.normal(0.0, 0.01, 6).astype(np.float32)
    input_scale = rng.uniform(0.5, 2.0, 5).astype(np.float32)
    out = np.empty_like(y)
    epilogue(y, np.zeros_like(y), input_scale, gain, offset, 0.0, 0.0, np.inf, 0.5,
             np.uint64(1), out)
    expected = (gain * y.astype(np.float64) + offset) * (input_scale[:, None] * 0.5)
    np.testing.assert_allclose(out, expected, rtol=FLOAT32_RTOL, atol=1e-7)


# ------------------------------------------------------------------ DAC
@pytest.mark.parametrize("noise_management", [True, False], ids=["managed", "raw"])
@pytest.mark.parametrize("periphery", [Periphery(), Periphery(dac_bits=4, dac_range=0.7),
                                       Periphery.ideal()], ids=["default", "4-bit", "no-dac"])
def test_compiled_quantize_equals_numpy_bit_for_bit(periphery: Periphery,
                                                    noise_management: bool) -> None:
    rng = np.random.default_rng(10)
    x = (rng.normal(0.0, 3.0, (11, 37)) * (rng.random((11, 37)) < 0.8)).astype(np.float32)
    x[4] = 0.0  # a row of zeros keeps scale 1
    x[5, :3] = [-7.5, 7.5, -0.0]  # the largest magnitude negative, and a negative zero
    args = (periphery.dac_step, periphery.dac_range, noise_management)
    expected_x, expected_scale = quantize_inputs(x, *args)
    actual_x, actual_scale = quantize_inputs_numba(x, *args)
    np.testing.assert_array_equal(actual_x, expected_x)
    np.testing.assert_array_equal(actual_scale, expected_scale)
    assert actual_x.dtype == np.float32 and actual_scale.dtype == np.float32


# ------------------------------------------------------------------ state-independent read noise
def _row_case(batch: int = 9, cols: int = 13):
    rng = np.random.default_rng(11)
    y = rng.normal(0.0, 2.0, (batch, cols)).astype(np.float32)
    row_variance = rng.uniform(0.0, 0.05, (batch, 1)).astype(np.float32)
    input_scale = rng.uniform(0.5, 2.0, batch).astype(np.float32)
    gain = (1.0 + 0.02 * rng.standard_normal(cols)).astype(np.float32)
    offset = (0.02 * rng.standard_normal(cols)).astype(np.float32)
    return y, row_variance, (input_scale, gain, offset, 0.06, 12.0 / 255, 12.0, 0.7,
                             np.uint64(77))


@pytest.mark.parametrize("epilogue", [epilogue_numpy, epilogue_numba], ids=["numpy", "numba"])
def test_a_per_row_variance_column_equals_the_same_variance_in_every_column(epilogue) -> None:
    y, row_variance, rest = _row_case()
    per_row, per_element = np.empty_like(y), np.empty_like(y)
    epilogue(y, row_variance, *rest, per_row)
    epilogue(y, np.ascontiguousarray(np.broadcast_to(row_variance, y.shape)), *rest,
             per_element)
    np.testing.assert_array_equal(per_row, per_element)


def test_per_row_variance_numpy_matches_numba() -> None:
    y, row_variance, rest = _row_case()
    expected, actual = np.empty_like(y), np.empty_like(y)
    epilogue_numba(y, row_variance, *rest, expected)
    epilogue_numpy(y, row_variance, *rest, actual)
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("cols", [1, 8, 13])
def test_outputs_k_and_k_plus_half_share_one_hash(cols: int) -> None:
    # Row b draws hashes b H + k, H = ceil(C / 2): output k takes the cosine branch, output
    # k + H the sine branch. Without ADC, gain 1, offset 0 and scale 1, out - y = std z.
    batch, std = 3, 0.25
    y = np.zeros((batch, cols), np.float32)
    out = np.empty_like(y)
    ones = np.ones(cols, np.float32)
    epilogue_numba(y, None, np.ones(batch, np.float32), ones, 0 * ones, std, 0.0, np.inf, 1.0,
                   np.uint64(21), out)
    half = (cols + 1) // 2
    first, second = normal_pair32_array(21, np.arange(batch * half, dtype=np.uint64))
    expected = np.concatenate([first.reshape(batch, half), second.reshape(batch, half)],
                              axis=1)[:, :cols] * np.float32(std)
    np.testing.assert_array_equal(out, expected)


def test_row_read_variance_equals_the_variance_matmul_of_a_uniform_map() -> None:
    x = np.random.default_rng(12).uniform(-1.0, 1.0, (17, 300)).astype(np.float32)
    sigma_squared = 3.7e-4
    matmul = (x * x) @ np.full((300, 5), sigma_squared, dtype=np.float32)
    column = row_read_variance(x, sigma_squared)
    assert column.shape == (17, 1) and column.dtype == np.float32
    # Equal in exact arithmetic; float32 sums of 300 terms agree to a few 1e-7.
    np.testing.assert_allclose(np.broadcast_to(column, matmul.shape), matmul, rtol=2e-6)


@pytest.mark.parametrize(("name", "uniform"), [("reram-faulty-levels", True), ("ecram", True),
                                               ("pcm", False)])
def test_tile_takes_the_row_variance_shortcut_only_for_state_independent_read_noise(
        name: str, uniform: bool) -> None:
    device = DEVICE_CASES[name]
    chip = analogsim.Chip(device=device, seed=3, periphery=Periphery.ideal(out_noise=0.02))
    tile = chip.tile("layer", 40, 24)
    rng = np.random.default_rng(13)
    tile.program(rng.normal(0.0, 0.3, (40, 24)))
    chip.advance(50.0)
    x = rng.uniform(-1.0, 1.0, (6, 40)).astype(np.float32)
    shortcut = tile.forward(x, rng=5)
    _, variance = tile._effective()
    assert (tile._uniform_variance is not None) == uniform
    if not uniform:
        return
    assert tile._uniform_variance == float(variance[0, 0]) > 0.0
    tile._uniform_variance = None  # the general path: the variance matmul
    general = tile.forward(x, rng=5)
    # Same normals; the two variances differ by float32 rounding only (no ADC here).
    np.testing.assert_allclose(shortcut, general, rtol=1e-5, atol=1e-6)
