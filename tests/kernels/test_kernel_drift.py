"""Effective weights and read-noise maps: NumPy reference against Numba, and drift physics."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import DEVICE_CASES, FLOAT32_RTOL, each_device, random_state

from analogsim.kernels.drift import effective_weights_numba, effective_weights_numpy
from analogsim.kernels.physics import P_GMAX


def _maps(kernel, arrays, device, now: float, with_variance: bool = True):
    signs = np.array([1.0, -1.0][: device.devices_per_weight])
    weight = np.empty(arrays.conductance.shape[1:], dtype=np.float32)
    variance = np.empty_like(weight) if with_variance else None
    kernel(arrays.conductance, arrays.written_at, arrays.drift_xi, arrays.stuck, signs, now,
           device.physics().pack(), weight, variance)
    return weight, variance


@each_device
@pytest.mark.parametrize("age", [0.0, 1e4], ids=["fresh", "aged"])
def test_effective_weights_numpy_matches_numba(device, age: float) -> None:
    arrays = random_state(device, seed=5, now=2e4, max_age=age)
    numba_weight, numba_variance = _maps(effective_weights_numba, arrays, device, 2e4)
    numpy_weight, numpy_variance = _maps(effective_weights_numpy, arrays, device, 2e4)
    # float64 sums rounded to float32; log/pow may differ by one ulp (see kernel_cases).
    np.testing.assert_allclose(numpy_weight, numba_weight, rtol=FLOAT32_RTOL, atol=1e-9)
    np.testing.assert_allclose(numpy_variance, numba_variance, rtol=FLOAT32_RTOL, atol=1e-15)


@pytest.mark.parametrize("kernel", [effective_weights_numpy, effective_weights_numba],
                         ids=["numpy", "numba"])
def test_variance_map_is_optional(kernel) -> None:
    device = DEVICE_CASES["pcm"]
    arrays = random_state(device, seed=6, now=50.0, max_age=50.0)
    with_map, _ = _maps(kernel, arrays, device, 50.0)
    without_map, variance = _maps(kernel, arrays, device, 50.0, with_variance=False)
    assert variance is None
    np.testing.assert_array_equal(without_map, with_map)


@each_device
def test_fresh_devices_read_their_stored_conductance(device) -> None:
    arrays = random_state(device, seed=7, now=0.0, max_age=0.0)
    weight, _ = _maps(effective_weights_numba, arrays, device, 0.0)
    signs = np.array([1.0, -1.0][: device.devices_per_weight])[:, None, None]
    expected = (signs * arrays.conductance.astype(np.float64)).sum(axis=0) / device.g_max
    np.testing.assert_allclose(weight, expected, rtol=FLOAT32_RTOL, atol=1e-9)


def test_pcm_drift_follows_the_power_law_and_spares_stuck_devices() -> None:
    device = DEVICE_CASES["pcm-faulty-levels"]
    arrays = random_state(device, seed=8, now=0.0)
    arrays.conductance[1] = 0.0  # read G+ alone (G- = 0 does not drift)
    p = device.physics().pack()
    weight, _ = _maps(effective_weights_numpy, arrays, device, 1e3)
    g = arrays.conductance[0].astype(np.float64)
    g_rel = np.maximum(g / p[P_GMAX], 1e-6)
    mu = np.clip(-0.0155 * np.log(g_rel) + 0.0244, 0.049, 0.1)
    sigma = np.clip(-0.0125 * np.log(g_rel) - 0.0059, 0.008, 0.045)
    nu = np.abs(mu + sigma * arrays.drift_xi[0])
    expected = g * ((1e3 + 20.0) / 20.0) ** -nu
    stuck = arrays.stuck[0] != 0
    expected[stuck] = g[stuck]
    assert stuck.any()
    np.testing.assert_allclose(weight * device.g_max, expected, rtol=1e-6, atol=1e-9)
