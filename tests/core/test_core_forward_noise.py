"""Forward read noise against the exact variance sum_j sigma_ij^2 x_j^2 (DESIGN.md section 3).

The periphery is ideal (no DAC/ADC quantisation, no ADC spread, no output noise), so the only
randomness left in ``forward`` is the per-device read noise. One input vector is repeated B
times in a batch: each output column then gives B independent draws of its noise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import analogsim as asim
from analogsim.devices import PCM, ReRAM
from analogsim.devices.pcm import NANDAKUMAR_DRIFT_MU, NANDAKUMAR_DRIFT_SIGMA, NANDAKUMAR_READ_Q

ROWS, COLS, BATCH = 128, 64, 4000
#: Relative standard error of a sample variance of B normal draws: sqrt(2 / (B - 1)).
VARIANCE_SE = math.sqrt(2.0 / (BATCH - 1))


def _pcm_read_sigma(tile: asim.Tile, now: float) -> np.ndarray:
    """Per-device read-noise std (uS), (2, R, C), written out from the PCM model."""
    arrays, device = tile.arrays, tile.device
    g_prog = arrays.conductance.astype(np.float64)
    g_rel = np.abs(g_prog) / device.g_max
    elapsed = now - arrays.written_at
    log_g = np.log(np.maximum(g_rel, 1e-6))
    mu_a, mu_b, mu_lo, mu_hi = NANDAKUMAR_DRIFT_MU
    sd_a, sd_b, sd_lo, sd_hi = NANDAKUMAR_DRIFT_SIGMA
    nu = np.abs(np.clip(mu_a * log_g + mu_b, mu_lo, mu_hi)
                + np.clip(sd_a * log_g + sd_b, sd_lo, sd_hi) * arrays.drift_xi)
    nu[arrays.stuck != 0] = 0.0  # stuck devices do not drift
    t0, t_read = device.drift_t0, device.t_read
    g_now = g_prog * ((elapsed + t0) / t0) ** (-nu)
    q0, q_exp, q_max = NANDAKUMAR_READ_Q
    q = np.minimum(q0 / np.maximum(g_rel**q_exp, 1e-3), q_max)
    return np.abs(g_now) * q * np.sqrt(np.log((elapsed + t0 + t_read) / (2.0 * t_read)))


def _expected_output_variance(tile: asim.Tile, x: np.ndarray, sigma_uS: np.ndarray) -> np.ndarray:
    """weight_scale^2 sum_j sigma_ij^2 x_j^2 with sigma in weight units, per column."""
    weight_variance = ((sigma_uS / tile.device.g_max) ** 2).sum(axis=0)  # both devices
    return tile.weight_scale**2 * (x.astype(np.float64) ** 2) @ weight_variance


def _sampled_output_variance(tile: asim.Tile, x: np.ndarray) -> np.ndarray:
    outputs = tile.forward(np.tile(x, (BATCH, 1))).astype(np.float64)
    return outputs.var(axis=0, ddof=1)


def _pcm_tile(seed: int, **periphery: object) -> tuple[asim.Chip, asim.Tile, np.ndarray]:
    chip = asim.Chip(device=PCM(), seed=seed, periphery=asim.Periphery.ideal(**periphery))
    tile = chip.tile("fc", ROWS, COLS)
    rng = np.random.default_rng(seed)
    tile.program(rng.normal(size=(ROWS, COLS)))
    x = rng.uniform(-2.0, 2.0, size=ROWS).astype(np.float32)
    x[:16] = 0.0  # inputs at zero contribute no noise
    return chip, tile, x


@pytest.mark.statistical
@pytest.mark.parametrize("seconds", [0.0, 86400.0])
def test_pcm_forward_variance_is_sum_of_sigma_squared_x_squared(seconds: float) -> None:
    # Per column, the sample variance of B = 4000 normal draws has relative standard error
    # sqrt(2 / (B - 1)) = 2.24 %: each of the 64 columns must be within 6 standard errors
    # (false-failure rate 2e-9 each, 1.3e-7 for all), and the mean of the 64 independent
    # ratios (standard error 2.24 % / 8 = 0.28 %) within 1.5 %: 5.4 standard errors, 7e-8.
    chip, tile, x = _pcm_tile(seed=5)
    chip.advance(seconds)
    expected = _expected_output_variance(tile, x, _pcm_read_sigma(tile, chip.time))
    ratio = _sampled_output_variance(tile, x) / expected
    assert np.all(np.abs(ratio - 1.0) < 6 * VARIANCE_SE), ratio
    assert ratio.mean() == pytest.approx(1.0, abs=0.015)


@pytest.mark.statistical
def test_output_noise_adds_at_the_input_scale() -> None:
    # Noise management divides x by max|x| before the array and multiplies the ADC output
    # back, so output noise adds (out_noise max|x| weight_scale)^2. Tolerance as above.
    chip, tile, x = _pcm_tile(seed=6, out_noise=0.06)
    read = _expected_output_variance(tile, x, _pcm_read_sigma(tile, chip.time))
    expected = read + (0.06 * np.abs(x).max() * tile.weight_scale) ** 2
    ratio = _sampled_output_variance(tile, x) / expected
    assert np.all(np.abs(ratio - 1.0) < 6 * VARIANCE_SE), ratio
    assert ratio.mean() == pytest.approx(1.0, abs=0.015)


@pytest.mark.statistical
def test_state_independent_read_noise_on_reram() -> None:
    # ReRAM's read noise is a constant read_noise_std * g_max per device: the output variance
    # is (read_noise_std weight_scale)^2 sum_j x_j^2 in every column. Tolerance as above.
    device = ReRAM()
    chip = asim.Chip(device=device, seed=9, periphery=asim.Periphery.ideal())
    tile = chip.tile("fc", ROWS, COLS)
    rng = np.random.default_rng(9)
    tile.program(rng.normal(size=(ROWS, COLS)))
    x = rng.normal(size=ROWS).astype(np.float32)
    expected = (device.read_noise_std * tile.weight_scale) ** 2 * float(
        (x.astype(np.float64) ** 2).sum())
    ratio = _sampled_output_variance(tile, x) / expected
    assert np.all(np.abs(ratio - 1.0) < 6 * VARIANCE_SE), ratio
    assert ratio.mean() == pytest.approx(1.0, abs=0.015)


@pytest.mark.statistical
def test_forward_mean_is_the_noiseless_product() -> None:
    # The mean of B = 4000 draws has standard error sqrt(var / B); each column within 6 of
    # them (2e-9 per column).
    chip, tile, x = _pcm_tile(seed=7)
    expected_variance = _expected_output_variance(tile, x, _pcm_read_sigma(tile, chip.time))
    _, twin, _ = _pcm_tile(seed=7, read_noise=False)  # same seed: the same programmed array
    noiseless = twin.forward(x).astype(np.float64)
    outputs = tile.forward(np.tile(x, (BATCH, 1))).astype(np.float64)
    error = np.abs(outputs.mean(axis=0) - noiseless)
    assert np.all(error < 6 * np.sqrt(expected_variance / BATCH))


def test_read_noise_off_makes_forward_deterministic() -> None:
    chip = asim.Chip(device=PCM(), seed=1, periphery=asim.Periphery.ideal(read_noise=False))
    tile = chip.tile("fc", 16, 8)
    tile.program(np.random.default_rng(1).normal(size=(16, 8)))
    x = np.random.default_rng(2).normal(size=(3, 16))
    np.testing.assert_array_equal(tile.forward(x), tile.forward(x))
