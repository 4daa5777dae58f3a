"""PCM against the Nandakumar statistical model: programming error and drift exponents.

Each test programs 256 x 256 weights at one target conductance, so every moment is estimated
from n = 65536 devices. Tolerances are stated per check with the false-failure rate they give.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import analogsim as asim
from analogsim.devices import PCM
from analogsim.devices.pcm import nandakumar_drift_moments, nandakumar_programming_sigma

SIDE = 256
N_DEVICES = SIDE * SIDE
#: Target conductances (uS) from near reset to near the 25 uS maximum.
TARGETS = (2.0, 6.25, 12.5, 20.0)


def _programmed_pair(chip: asim.Chip, name: str, g_target: float) -> np.ndarray:
    """Program every weight so that G+ targets ``g_target`` (and G- targets 0); (2, N, N) uS."""
    tile = chip.tile(name, SIDE, SIDE)
    g_max = chip.device.g_max
    tile.program(np.full((SIDE, SIDE), g_target / g_max), weight_scale=1.0)
    return tile.arrays.conductance.astype(np.float64)


def _clean_pcm(**overrides: float) -> PCM:
    """PCM without stuck devices and with a fixed 25 uS bound, so nothing is clipped."""
    values = dict(w_max_dtod=0.0, stuck_at_gmin=0.0, stuck_at_gmax=0.0)
    values.update(overrides)
    return PCM(**values)


# --------------------------------------------------------------------------- programming
@pytest.mark.statistical
@pytest.mark.parametrize("g_max", [25.0, 50.0])
def test_programming_noise_std_follows_nandakumar(g_max: float) -> None:
    # Sample std of n = 65536 normals: relative standard error 1/sqrt(2n) = 0.28 %; the 1.5 %
    # tolerance is 5.4 standard errors (two-sided false-failure rate 7e-8 per check). The mean
    # is checked to 5 standard errors of the mean (5.7e-7 per check); 16 checks in all: < 1e-5.
    chip = asim.Chip(device=_clean_pcm(g_max=g_max), seed=11)
    for g_target in TARGETS:
        g_target *= g_max / 25.0
        positive = _programmed_pair(chip, f"target-{g_target}", g_target)[0]
        sigma = nandakumar_programming_sigma(g_target, g_max)
        assert positive.std(ddof=1) == pytest.approx(sigma, rel=0.015), g_target
        assert abs(positive.mean() - g_target) < 5 * sigma / math.sqrt(N_DEVICES), g_target


def test_programming_error_grows_with_the_target_as_the_fit_says() -> None:
    sigmas = [nandakumar_programming_sigma(g) for g in (0.0, 5.0, 12.5, 25.0)]
    np.testing.assert_allclose(sigmas, [0.26348, 0.26348 + 1.9650 * 0.2 - 1.1731 * 0.04,
                                        0.26348 + 1.9650 * 0.5 - 1.1731 * 0.25,
                                        0.26348 + 1.9650 - 1.1731])
    assert nandakumar_programming_sigma(25.0, g_max=50.0) == pytest.approx(
        2.0 * nandakumar_programming_sigma(12.5))


@pytest.mark.statistical
def test_programming_a_zero_target_is_clipped_at_zero() -> None:
    # G- targets 0 uS: G = max(sigma_0 xi, 0), a normal clipped at zero. Half the devices sit at
    # exactly 0: the fraction has std 0.5 / sqrt(n) = 0.002, the 0.012 tolerance is 6.1 std.
    # The mean is sigma_0 / sqrt(2 pi), with relative standard error sqrt(pi - 1) / sqrt(n) =
    # 0.57 %; the 3.5 % tolerance is 6.1 standard errors. False failures: < 2e-9 in all.
    negative = _programmed_pair(asim.Chip(device=_clean_pcm(), seed=4), "zero", 12.5)[1]
    sigma_zero = nandakumar_programming_sigma(0.0)
    assert negative.min() == 0.0
    assert abs(np.mean(negative == 0.0) - 0.5) < 0.012
    assert negative.mean() == pytest.approx(sigma_zero / math.sqrt(2 * math.pi), rel=0.035)


@pytest.mark.statistical
def test_prog_noise_scale_scales_the_model() -> None:
    # Same estimator and tolerance as above (1.5 % on a std of n = 65536: 5.4 standard errors).
    chip = asim.Chip(device=_clean_pcm(prog_noise_scale=0.5), seed=12)
    positive = _programmed_pair(chip, "half", 12.5)[0]
    expected = 0.5 * nandakumar_programming_sigma(12.5)
    assert positive.std(ddof=1) == pytest.approx(expected, rel=0.015)


def test_programming_without_noise_hits_the_target_exactly() -> None:
    chip = asim.Chip(device=_clean_pcm(prog_noise_scale=0.0), seed=0)
    pair = _programmed_pair(chip, "exact", 12.5)
    np.testing.assert_array_equal(pair[0], np.float32(12.5))
    np.testing.assert_array_equal(pair[1], 0.0)


# --------------------------------------------------------------------------- drift
def _folded_normal_moments(mu: float, sigma: float) -> tuple[float, float]:
    """Mean and std of |X|, X ~ N(mu, sigma^2): the model draws nu = |mu + sigma xi|."""
    phi = math.exp(-mu * mu / (2 * sigma * sigma))
    tail = 0.5 * math.erfc(mu / (sigma * math.sqrt(2.0)))  # P(X < 0)
    mean = sigma * math.sqrt(2.0 / math.pi) * phi + mu * (1.0 - 2.0 * tail)
    return mean, math.sqrt(mu * mu + sigma * sigma - mean * mean)


def _measured_drift_exponents(chip: asim.Chip, g_targets: tuple[float, ...],
                              seconds: float) -> dict[float, np.ndarray]:
    """nu per device from G(t) / G_prog = ((t + t0) / t0)^-nu, read through ``tile.read``."""
    tiles = {}
    for g_target in g_targets:
        tile = chip.tile(f"drift-{g_target}", SIDE, SIDE)
        tile.program(np.full((SIDE, SIDE), g_target / chip.device.g_max), weight_scale=1.0)
        tiles[g_target] = (tile, tile.read().astype(np.float64))
    chip.advance(seconds)
    t0 = chip.device.drift_t0
    log_time = math.log((seconds + t0) / t0)
    return {g: -np.log(tile.read().astype(np.float64) / programmed) / log_time
            for g, (tile, programmed) in tiles.items()}


@pytest.mark.statistical
def test_drift_exponent_mean_and_spread_follow_nandakumar() -> None:
    # G- is programmed to exactly 0 (no programming noise), so tile.read() * g_max is G+(t)
    # alone; read noise is off, so the read is exact. Per target, n = 65536 exponents:
    # mean within 5 standard errors of the folded-normal mean (5.7e-7 per check); std within
    # 2.5 % (the relative standard error of a std is sqrt((kurtosis - 1) / 4n) <= 0.35 % for
    # these near-normal folded laws, so >= 7 standard errors). 10 checks: < 1e-5 in all.
    device = _clean_pcm(prog_noise_scale=0.0, read_noise_scale=0.0)
    chip = asim.Chip(device=device, seed=3)
    targets = (0.5, 2.0, 6.25, 12.5, 20.0)  # g = 0.02 ... 0.8: clipped and unclipped mu, sigma
    exponents = _measured_drift_exponents(chip, targets, seconds=1e6)
    for g_target, nu in exponents.items():
        mean, spread = _folded_normal_moments(*nandakumar_drift_moments(g_target))
        assert nu.min() >= 0.0
        assert abs(nu.mean() - mean) < 5 * spread / math.sqrt(N_DEVICES), g_target
        assert nu.std(ddof=1) == pytest.approx(spread, rel=0.025), g_target


def test_drift_moments_formula() -> None:
    mu, sigma = nandakumar_drift_moments(1.0)  # g = 0.04: neither clip is active
    assert mu == pytest.approx(-0.0155 * math.log(0.04) + 0.0244)
    assert sigma == pytest.approx(-0.0125 * math.log(0.04) - 0.0059)
    assert nandakumar_drift_moments(25.0) == (0.049, 0.008)  # both at their lower clips
    assert nandakumar_drift_moments(1e-4) == (0.1, 0.045)  # both at their upper clips


@pytest.mark.statistical
def test_drift_scale_scales_the_exponents() -> None:
    # drift_scale multiplies mu and sigma (and their clips), so nu scales by exactly that
    # factor in law. Mean within 5 standard errors (n = 65536): false-failure rate 5.7e-7.
    device = _clean_pcm(prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=2.0)
    nu = _measured_drift_exponents(asim.Chip(device=device, seed=8), (12.5,), 1e5)[12.5]
    mean, spread = _folded_normal_moments(*nandakumar_drift_moments(12.5))
    assert abs(nu.mean() - 2.0 * mean) < 5 * 2.0 * spread / math.sqrt(N_DEVICES)


def test_stuck_devices_do_not_drift() -> None:
    device = PCM(prog_noise_scale=0.0, read_noise_scale=0.0, stuck_at_gmax=0.05,
                 stuck_at_gmin=0.0)
    chip = asim.Chip(device=device, seed=2)
    tile = chip.tile("stuck", 64, 64)
    tile.program(np.full((64, 64), -0.3), weight_scale=1.0)
    # G+ stuck at its maximum, G- free: w = (G+max - G-) / g_max.
    stuck_high = (tile.arrays.stuck[0] == 2) & (tile.arrays.stuck[1] == 0)
    assert stuck_high.any()
    before = tile.read()
    chip.advance(1e6)
    after = tile.read()
    free = (tile.arrays.stuck == 0).all(axis=0)
    # G- of a stuck-high pair still drifts; its G+ does not, so the weight grows.
    assert np.all(after[stuck_high] > before[stuck_high])
    assert np.all(np.abs(after[free]) < np.abs(before[free]))
