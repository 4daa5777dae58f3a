"""The MVM epilogue: NumPy reference against Numba, and what the ADC does to the output."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import FLOAT32_RTOL, each_device, random_state

from analogsim.kernels.drift import effective_weights_numba
from analogsim.kernels.mvm import epilogue_numba, epilogue_numpy
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
    # Same float64 arithmetic and normals up to one ulp of log/cos (see kernel_cases), then
    # rounded to float32; an ADC level could flip only at ~1e-16 from a rounding edge.
    np.testing.assert_allclose(actual, expected, rtol=FLOAT32_RTOL,
                               atol=1e-6 * np.abs(expected).max())


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
