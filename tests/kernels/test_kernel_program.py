"""Programming: NumPy reference against Numba; levels, bounds and stuck devices."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import DEVICE_CASES, FLOAT32_RTOL, each_device, random_state, with_fields

from analogsim.kernels.program import program_numba, program_numpy


def _targets(arrays, device, seed: int = 2) -> np.ndarray:
    """Targets spread over (and 10 % past) each device's range."""
    low = np.where(np.isfinite(arrays.bound_low), arrays.bound_low, -device.g_max)
    high = np.where(np.isfinite(arrays.bound_high), arrays.bound_high, device.g_max)
    span = high - low
    rng = np.random.default_rng(seed)
    return (low - 0.1 * span + 1.2 * span * rng.random(low.shape)).astype(np.float32)


def _program(kernel, arrays, targets, device, now: float):
    conductance, written_at = arrays.conductance.copy(), arrays.written_at.copy()
    kernel(targets, conductance, written_at, arrays.stuck, arrays.bound_low, arrays.bound_high,
           now, device.physics().pack(), np.uint64(0xBEEF))
    return conductance, written_at


@each_device
def test_program_numpy_matches_numba(device) -> None:
    arrays = random_state(device, seed=9, now=10.0, max_age=10.0)
    targets = _targets(arrays, device)
    numba_g, numba_t = _program(program_numba, arrays, targets, device, 10.0)
    numpy_g, numpy_t = _program(program_numpy, arrays, targets, device, 10.0)
    np.testing.assert_allclose(numpy_g, numba_g, rtol=FLOAT32_RTOL, atol=1e-9)
    np.testing.assert_array_equal(numpy_t, numba_t)


@each_device
def test_stuck_devices_keep_their_value_and_clock(device) -> None:
    arrays = random_state(device, seed=10, now=5.0, max_age=5.0)
    conductance, written_at = _program(program_numba, arrays, _targets(arrays, device),
                                       device, 5.0)
    stuck = arrays.stuck != 0
    np.testing.assert_array_equal(conductance[stuck], arrays.conductance[stuck])
    np.testing.assert_array_equal(written_at[stuck], arrays.written_at[stuck])
    assert np.all(written_at[~stuck] == 5.0)
    low = np.where(np.isfinite(arrays.bound_low), arrays.bound_low, -np.inf)
    assert np.all(conductance[~stuck] >= low[~stuck])
    assert np.all(conductance[~stuck] <= arrays.bound_high[~stuck])


@pytest.mark.parametrize("kernel", [program_numpy, program_numba], ids=["numpy", "numba"])
@pytest.mark.parametrize("name", ["reram", "pcm"])
def test_noiseless_programming_rounds_to_the_nearest_level(kernel, name: str) -> None:
    device = with_fields(DEVICE_CASES[name], n_levels=9, stuck_at_gmin=0.0,
                         stuck_at_gmax=0.0, prog_noise_std=0.0)
    if name == "pcm":
        device = with_fields(device, prog_noise_scale=0.0)
    arrays = random_state(device, seed=11)
    targets = _targets(arrays, device)
    conductance, _ = _program(kernel, arrays, targets, device, 0.0)
    low, high = device.w_min * device.g_max, device.w_max * device.g_max
    step = (high - low) / 8
    expected = low + np.floor((np.clip(targets, low, high) - low) / step + 0.5) * step
    expected = np.clip(expected, arrays.bound_low, arrays.bound_high)
    np.testing.assert_allclose(conductance, expected, rtol=FLOAT32_RTOL, atol=1e-6)
