"""Drift on the chip clock, and global drift compensation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import analogsim as asim
from analogsim.devices import PCM, ReRAM
from analogsim.devices.pcm import nandakumar_drift_moments

DAY = 86400.0
YEAR = 365.25 * DAY
SIDE = 256


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _mean_decay(log_time: float, mu: float, sigma: float) -> float:
    """E[exp(-L nu)] for nu = |Z|, Z ~ N(mu, sigma^2): the mean of ((t + t0) / t0)^-nu."""
    def side(sign: float) -> float:
        exponent = sign * log_time * mu + 0.5 * (log_time * sigma) ** 2
        return math.exp(exponent) * _normal_cdf(-sign * mu / sigma - log_time * sigma)

    return side(-1.0) + side(1.0)


def _exact_pcm() -> PCM:
    """PCM with exact programming and reads, no stuck devices and one 25 uS bound."""
    return PCM(prog_noise_scale=0.0, read_noise_scale=0.0, stuck_at_gmin=0.0,
               stuck_at_gmax=0.0, w_max_dtod=0.0)


@pytest.mark.statistical
@pytest.mark.parametrize("g_target", [2.0, 12.5])
def test_one_day_of_drift_shrinks_weights_by_the_expected_factor(g_target: float) -> None:
    # Weights of one magnitude and random sign: each sits on one device of its pair (the other
    # is at exactly 0 uS), so w(t) / w(0) = ((t + t0) / t0)^-nu with nu = |mu + sigma xi|.
    # Mean over n = 65536 weights within 5 standard errors of the closed-form mean (std from
    # the same formula at 2 L): false-failure rate 5.7e-7 per check.
    chip = asim.Chip(device=_exact_pcm(), seed=13)
    tile = chip.tile("fc", SIDE, SIDE)
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=(SIDE, SIDE))
    tile.program(signs * g_target / 25.0, weight_scale=1.0)
    programmed = tile.read().astype(np.float64)
    chip.advance(DAY)
    ratio = tile.read().astype(np.float64) / programmed
    log_time = math.log((DAY + 20.0) / 20.0)
    mu, sigma = nandakumar_drift_moments(g_target)
    mean = _mean_decay(log_time, mu, sigma)
    spread = math.sqrt(_mean_decay(2 * log_time, mu, sigma) - mean**2)
    assert np.all((ratio > 0.0) & (ratio < 1.0))
    assert abs(ratio.mean() - mean) < 5 * spread / SIDE


def test_drift_is_monotonic_in_time_and_respects_the_clock() -> None:
    chip = asim.Chip(device=_exact_pcm(), seed=1)
    tile = chip.tile("fc", 32, 32)
    weights = np.random.default_rng(1).normal(size=(32, 32))
    tile.program(weights)
    sizes = []
    for seconds in (0.0, 1.0, 3600.0, DAY, YEAR):
        chip.advance(seconds)
        sizes.append(float(np.abs(tile.read()).mean()))
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == pytest.approx(float(np.abs(weights).mean()), rel=1e-6)
    assert chip.time == 3601.0 + DAY + YEAR


def test_reprogramming_restarts_the_drift_clock() -> None:
    chip = asim.Chip(device=_exact_pcm(), seed=2)
    tile = chip.tile("fc", 16, 16)
    weights = np.random.default_rng(2).normal(size=(16, 16))
    tile.program(weights)
    chip.advance(YEAR)
    tile.program(weights, weight_scale=tile.weight_scale)
    np.testing.assert_allclose(tile.read(), weights, rtol=1e-6)
    np.testing.assert_array_equal(tile.arrays.written_at[tile.arrays.stuck == 0], YEAR)


def test_tiles_made_later_start_their_clock_then() -> None:
    chip = asim.Chip(device=_exact_pcm(), seed=3)
    chip.advance(DAY)
    tile = chip.tile("late", 8, 8)
    tile.program(np.ones((8, 8)))
    np.testing.assert_allclose(tile.read(), 1.0, rtol=1e-6)


def test_reram_relaxes_with_its_own_exponent() -> None:
    # LINEAR_STEP devices drift with nu = |drift_nu + drift_nu_dtod xi| (no state dependence).
    device = ReRAM(prog_noise_std=0.0, read_noise_std=0.0, stuck_at_gmin=0.0,
                   stuck_at_gmax=0.0, drift_nu_dtod=0.0, w_max_dtod=0.0)
    chip = asim.Chip(device=device, seed=4)
    tile = chip.tile("fc", 16, 16)
    tile.program(np.full((16, 16), 0.5))
    chip.advance(DAY)
    expected = 0.5 * ((DAY + 20.0) / 20.0) ** -device.drift_nu
    np.testing.assert_allclose(tile.read(), expected, rtol=1e-5)


# --------------------------------------------------------------------------- compensation
def _signal_scale_after(seconds: float, compensation: bool, seed: int,
                        mean: float = 0.05) -> float:
    """Scale of the output signal at ``seconds`` relative to right after programming.

    Measured as sum(y(t) y_ideal) / sum(y(0) y_ideal), a regression on the noiseless
    product, so read and output noise do not bias it.
    """
    periphery = asim.Periphery(drift_compensation=compensation)
    chip = asim.Chip(device=PCM(), seed=seed, periphery=periphery)
    tile = chip.tile("fc", SIDE, 128)
    rng = np.random.default_rng(seed)
    weights = rng.normal(mean, 0.1, size=(SIDE, 128))
    x = rng.uniform(-1.0, 1.0, size=(512, SIDE))
    ideal = x @ weights
    tile.program(weights)
    before = tile.forward(x).astype(np.float64)
    chip.advance(seconds)
    after = tile.forward(x).astype(np.float64)
    return float((after * ideal).sum() / (before * ideal).sum())


@pytest.mark.statistical
def test_drift_compensation_restores_the_output_scale_after_a_year() -> None:
    # Without compensation a year of drift (mean nu about 0.049 for most weights) leaves
    # ((1 yr + 20 s) / 20 s)^-0.049 = 0.50 of the signal. Global compensation rescales it to
    # 1 within 3 % (seeds 0-3 give 0.993-1.003; the spread comes from the per-device drift
    # exponents the reference read averages over). The uncompensated band [0.45, 0.56]
    # covers the folded-normal spread of nu around that mean.
    compensated = _signal_scale_after(YEAR, True, seed=0)
    plain = _signal_scale_after(YEAR, False, seed=0)
    assert 0.45 < plain < 0.56
    assert compensated == pytest.approx(1.0, abs=0.03)


@pytest.mark.statistical
@pytest.mark.parametrize("seed", [0, 1])
def test_drift_compensation_works_for_zero_mean_weights(seed: int) -> None:
    # A trained layer's weights are about zero-mean, where a summed-column reference would
    # cancel; the summed-magnitude reference does not. Tolerance 5 %: the reference averages
    # the drift of all devices, while the signal weights each device by x_j w_ij.
    compensated = _signal_scale_after(YEAR, True, seed=seed, mean=0.0)
    assert compensated == pytest.approx(1.0, abs=0.05)


def test_compensation_factor_is_one_until_time_passes() -> None:
    chip = asim.Chip(device=PCM(), seed=0, periphery=asim.Periphery(drift_compensation=True))
    tile = chip.tile("fc", 32, 16)
    tile.program(np.random.default_rng(0).normal(0.1, 0.1, size=(32, 16)))
    assert tile.drift_reference > 0.0
    assert tile.drift_compensation_factor() == 1.0
    chip.advance(YEAR)
    factor = tile.drift_compensation_factor()
    assert 1.5 < factor < 2.5
    plain_chip = asim.Chip(device=PCM(), seed=0)
    plain = plain_chip.tile("fc", 32, 16)
    plain.program(np.ones((32, 16)))
    plain_chip.advance(YEAR)
    assert plain.drift_compensation_factor() == 1.0


def test_assigning_a_periphery_takes_effect_at_the_next_read() -> None:
    chip = asim.Chip(device=PCM(), seed=3, periphery=asim.Periphery(drift_compensation=True))
    tile = chip.tile("fc", 32, 16)
    tile.program(np.random.default_rng(3).normal(0.0, 0.1, (32, 16)))
    chip.advance(YEAR)
    assert tile.drift_compensation_factor() > 1.5  # a year of PCM drift halves the signal
    tile.periphery = asim.Periphery(drift_compensation=False)  # same clock: no stale factor
    assert tile.drift_compensation_factor() == 1.0
    with pytest.raises(TypeError, match=r"Tile.periphery must be a Periphery"):
        tile.periphery = {"drift_compensation": True}


@pytest.mark.parametrize("device", [ReRAM(stuck_at_gmin=0.0, stuck_at_gmax=0.0),
                                    PCM(stuck_at_gmin=0.0, stuck_at_gmax=0.0)],
                         ids=["reram", "pcm"])
def test_a_tile_knows_when_no_device_has_drift_to_settle(device, tmp_path) -> None:
    """The tile's promise to the fast sampler (``settled``) holds exactly while every device
    that is not stuck was written at the chip's time, and skipping the check then changes
    nothing: a chip that never uses the promise ends bit for bit the same."""
    rng = np.random.default_rng(4)
    x = rng.random((16, 24), dtype=np.float32)
    x[:, :3] = 0.0  # three input lines never pulse their devices
    d = rng.standard_normal((16, 12), dtype=np.float32)
    weights = rng.standard_normal((24, 12)).astype(np.float32)
    chips = [asim.Chip(device=device, seed=6) for _ in range(2)]
    tiles = [chip.tile("fc", 24, 12) for chip in chips]
    assert tiles[0]._settled_at == 0.0  # a new tile: every device written at time 0
    promises = []
    for step in range(6):
        if step == 3:
            for chip in chips:
                chip.advance(DAY)  # every device now has a day of drift to settle
        if step == 1:
            for tile in tiles:
                tile.program(weights)
        promises.append(tiles[0]._settled_at == chips[0].time)
        tiles[1]._settled_at = None  # the second chip never promises
        for tile in tiles:
            tile.update(x, d, 0.05)
        np.testing.assert_array_equal(tiles[0].arrays.conductance, tiles[1].arrays.conductance)
        np.testing.assert_array_equal(tiles[0].arrays.written_at, tiles[1].arrays.written_at)
    assert promises == [True, True, True, False, False, False]
    written = np.asarray(tiles[0].arrays.written_at)
    assert (written == DAY).any() and (written < DAY).any()  # pulsed and untouched devices
    chips[0].save(tmp_path / "chip.h5")
    loaded = asim.Chip.load(tmp_path / "chip.h5").tiles["fc"]
    assert loaded._settled_at is None  # found from the arrays: some devices drifted
    tiles[0].program(weights)
    chips[0].save(tmp_path / "again.h5")
    assert asim.Chip.load(tmp_path / "again.h5").tiles["fc"]._settled_at == DAY
