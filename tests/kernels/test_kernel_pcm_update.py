"""PCM's unipolar update: SET pulses on one side of the pair, and the refresh of the pair."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import one_numba_thread

import analogsim
from analogsim import Periphery, devices
from analogsim.devices.pcm import nandakumar_programming_sigma

#: No faults, no refresh (a device never exceeds its maximum, so a threshold of 1 never fires).
NO_REFRESH = devices.PCM(refresh_threshold=1.0, stuck_at_gmin=0.0, stuck_at_gmax=0.0)
SIZE = 24


@pytest.fixture(autouse=True, scope="module")
def _serial_kernels():
    with one_numba_thread():
        yield


def _pcm_tile(device: devices.PCM, seed: int = 0, sampler: str = "fast"):
    chip = analogsim.Chip(device=device, seed=seed, periphery=Periphery(sampler=sampler))
    return chip.tile("pcm", SIZE, SIZE)


def _set_pulses(tile, going_up: bool, updates: int = 40) -> list[np.ndarray]:
    """States (2, R, C) before and after each update of ~1.5 pulses per device."""
    ones = np.ones((1, SIZE), dtype=np.float32)
    states = [tile.arrays.conductance.copy()]
    for _ in range(updates):
        tile.update(ones, -ones if going_up else ones, 1.5 * tile.device.dw_min)
        states.append(tile.arrays.conductance.copy())
    return states


@pytest.mark.parametrize("sampler", ["fast", "exact"])
def test_up_pulses_set_only_g_plus_and_down_pulses_only_g_minus(sampler: str) -> None:
    tile = _pcm_tile(NO_REFRESH, sampler=sampler)
    for going_up, pulsed in ((True, 0), (False, 1)):
        states = np.array(_set_pulses(tile, going_up))
        assert np.all(states[:, 1 - pulsed] == states[0, 1 - pulsed])
        # ~60 pulses of 2 % of g_max with soft saturation: well past a third of the range.
        gained = states[-1, pulsed] - states[0, pulsed]
        assert gained.mean() > tile.arrays.bound_high[pulsed].mean() / 3
        assert np.all(states[:, pulsed] <= tile.arrays.bound_high[pulsed])
        assert np.all(states[:, pulsed] >= 0.0)


@pytest.mark.parametrize("sampler", ["fast", "exact"])
def test_noiseless_set_pulses_never_decrease_a_device(sampler: str) -> None:
    tile = _pcm_tile(devices.PCM(refresh_threshold=1.0, dw_min_std=0.0), sampler=sampler)
    for going_up, pulsed in ((True, 0), (False, 1)):
        states = np.array(_set_pulses(tile, going_up))
        assert np.all(np.diff(states[:, pulsed], axis=0) >= 0.0)


@pytest.mark.parametrize("sampler", ["fast", "exact"])
def test_set_pulses_never_decrease_a_device_with_cycle_noise(sampler: str) -> None:
    tile = _pcm_tile(NO_REFRESH, sampler=sampler)
    for going_up, pulsed in ((True, 0), (False, 1)):
        states = np.array(_set_pulses(tile, going_up))
        assert np.all(np.diff(states[:, pulsed], axis=0) >= 0.0)


def _near_refresh_state(tile, seed: int) -> None:
    """G+ just past the refresh threshold (0.9), G- at 20-40 % of its maximum."""
    rng = np.random.default_rng(seed)
    high = tile.arrays.bound_high
    tile.arrays.conductance[0] = high[0] * rng.uniform(0.92, 0.98, high[0].shape)
    tile.arrays.conductance[1] = high[1] * rng.uniform(0.2, 0.4, high[1].shape)


@pytest.mark.statistical
def test_refresh_keeps_the_weight_within_programming_noise_and_resets_a_side() -> None:
    # The same chip twice (same seed, same tile, same run-time stream), one with the
    # refresh disabled: the down pulses (SET on G-) are identical, so the refreshed pair
    # must hold the unrefreshed pair's weight up to the programming error of one write.
    refreshing = devices.PCM(stuck_at_gmin=0.0, stuck_at_gmax=0.0)
    tiles = [_pcm_tile(device, seed=6) for device in (refreshing, NO_REFRESH)]
    ones = np.ones((1, SIZE), dtype=np.float32)
    for tile in tiles:
        _near_refresh_state(tile, seed=7)
    initial = tiles[1].arrays.conductance.copy()
    for tile in tiles:
        tile.update(ones, ones, 1.0 * tile.device.dw_min)  # ~1 SET pulse on every G-
    refreshed, reference = (tile.arrays.conductance.astype(np.float64) for tile in tiles)
    # A SET block whose noise would lower G- is floored at its start, so "pulsed" is read
    # from the refresh itself: G- reset to its lower bound (0 uS). Every pair whose G- visibly
    # moved was refreshed; pairs that were not refreshed are exactly the reference's.
    pulsed = refreshed[1] == 0.0
    assert pulsed.mean() > 0.5
    assert np.all(pulsed[reference[1] != initial[1]])
    weight_reference = reference[0] - reference[1]
    assert np.all(weight_reference[pulsed] > 0)
    np.testing.assert_array_equal(refreshed[:, ~pulsed], reference[:, ~pulsed])
    residual = (refreshed[0] - refreshed[1] - weight_reference)[pulsed]
    sigma = np.array([nandakumar_programming_sigma(g) for g in weight_reference[pulsed]])
    z = residual / sigma
    # Standardised programming errors: all |z| < 5.5 (false-failure rate ~ 500 x 3.8e-8),
    # mean and variance within 5 standard errors of 0 and 1 (6e-7 each).
    assert np.abs(z).max() < 5.5
    assert abs(z.mean()) < 5 / np.sqrt(z.size)
    assert abs(z.var() - 1.0) < 5 * np.sqrt(2.0 / z.size)



def test_refresh_keeps_the_weight_of_pairs_with_a_stuck_device() -> None:
    faulty = {"stuck_at_gmin": 0.0, "stuck_at_gmax": 0.2}
    tiles = [_pcm_tile(devices.PCM(refresh_threshold=threshold, **faulty), seed=3)
             for threshold in (0.9, 1.0)]
    ones = np.ones((1, SIZE), dtype=np.float32)
    for tile in tiles:
        arrays = tile.arrays
        rng = np.random.default_rng(1)
        free = arrays.stuck == 0
        values = arrays.bound_high * rng.uniform(0.2, 0.4, arrays.bound_high.shape)
        arrays.conductance[free] = values[free]
        tile.update(ones, ones, 1.0 * tile.device.dw_min)  # ~1 SET pulse on every G-
    refreshed, reference = (tile.arrays.conductance.astype(np.float64) for tile in tiles)
    stuck_pair = np.any(tiles[0].arrays.stuck != 0, axis=0)
    assert stuck_pair.sum() > 50
    change = (refreshed[0] - refreshed[1]) - (reference[0] - reference[1])
    # One programming error at most (sigma < 1.1 uS over the whole range): 5.5 sigma.
    assert np.all(np.abs(change[stuck_pair]) < 5.5 * 1.1)
