"""Periphery: the ideal reference, DAC levels, ADC clipping and per-column ADC gain/offset."""

from __future__ import annotations

import math

import numpy as np
import pytest

import analogsim as asim
from analogsim.devices import Ideal
from analogsim.errors import ParameterError


def _ideal_tile(rows: int, cols: int, periphery: asim.Periphery, seed: int = 0) -> asim.Tile:
    return asim.Chip(device=Ideal(), seed=seed, periphery=periphery).tile("t", rows, cols)


def _identity_response(periphery: asim.Periphery, x: np.ndarray) -> np.ndarray:
    """forward of a 1 x 1 tile holding w = 1 (weight_scale 1): the periphery alone."""
    tile = _ideal_tile(1, 1, periphery)
    tile.program(np.ones((1, 1)), weight_scale=1.0)
    return tile.forward(x.reshape(-1, 1))[:, 0]


# --------------------------------------------------------------------------- ideal reference
def test_ideal_chip_defaults_to_the_ideal_periphery() -> None:
    assert asim.Chip(device=Ideal()).periphery == asim.Periphery.ideal()
    assert asim.Chip(device=asim.devices.PCM()).periphery == asim.Periphery()


@pytest.mark.parametrize("noise_management", [True, False])
def test_ideal_periphery_on_ideal_device_is_the_matmul(noise_management: bool) -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(96, 40)).astype(np.float32)
    x = rng.normal(size=(17, 96)).astype(np.float32) * 3.0
    tile = _ideal_tile(96, 40, asim.Periphery.ideal(noise_management=noise_management))
    tile.program(weights)
    expected = x.astype(np.float64) @ weights.astype(np.float64)
    scale = np.abs(x).max(axis=1, keepdims=True) * np.abs(weights).max() * math.sqrt(96)
    np.testing.assert_allclose(tile.forward(x), expected, rtol=0, atol=1e-6 * scale.max())
    np.testing.assert_allclose(tile.forward(x[0]), expected[0], rtol=0, atol=1e-6 * scale.max())
    np.testing.assert_allclose(tile.read(), weights, rtol=1e-6, atol=0)


def test_ideal_update_is_exact() -> None:
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(12, 5)).astype(np.float32)
    x, d = rng.normal(size=(8, 12)), rng.normal(size=(8, 5))
    tile = _ideal_tile(12, 5, asim.Periphery.ideal())
    tile.program(weights)
    tile.update(x, d, lr=0.05)
    np.testing.assert_allclose(tile.read(), weights - 0.05 * x.T @ d, rtol=0, atol=2e-6)


# --------------------------------------------------------------------------- DAC
@pytest.mark.parametrize("bits", [2, 3, 5, 7])
def test_dac_rounds_to_its_levels_and_clips_to_its_range(bits: int) -> None:
    periphery = asim.Periphery.ideal(dac_bits=bits, dac_range=1.0, noise_management=False)
    x = np.linspace(-1.5, 1.5, 3001).astype(np.float32)
    out = _identity_response(periphery, x)
    step = 1.0 / (2 ** (bits - 1) - 1)
    assert periphery.dac_step == pytest.approx(step)
    levels = np.unique(out)
    assert len(levels) == 2**bits - 1  # symmetric: 2^(bits-1) - 1 levels per sign and zero
    np.testing.assert_allclose(levels / step, np.round(levels / step), atol=1e-5)
    assert levels.min() == -1.0 and levels.max() == 1.0
    inside = np.abs(x) <= 1.0
    assert np.all(np.abs(out[inside] - x[inside]) <= step / 2 + 1e-6)


def test_noise_management_uses_the_full_dac_range_per_sample() -> None:
    # Each sample is divided by its abs-max first, so a small input sees the same relative
    # quantisation as a large one; without it, inputs below half a step vanish.
    x = np.array([[0.01, 0.005], [-3.0, 1.0]], dtype=np.float32)
    expected = [[0.01, 0.01 * 2 / 3], [-3.0, 1.0]]  # 0.5 of the abs-max rounds to 2/3 of it
    for noise_management, want in ((True, expected), (False, [[0.0, 0.0], [-1.0, 1.0]])):
        periphery = asim.Periphery.ideal(dac_bits=3, noise_management=noise_management)
        tile = _ideal_tile(2, 2, periphery)
        tile.program(np.eye(2), weight_scale=1.0)
        np.testing.assert_allclose(tile.forward(x), want, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- ADC
def test_adc_clips_at_its_range_and_rounds_to_its_step() -> None:
    periphery = asim.Periphery.ideal(adc_bits=9, adc_range=2.0, noise_management=False)
    x = np.linspace(-5.0, 5.0, 2001).astype(np.float32)
    out = _identity_response(periphery, x)
    step = 2.0 / 255
    assert periphery.adc_step == pytest.approx(step)
    assert out.max() == 2.0 and out.min() == -2.0
    np.testing.assert_array_equal(out[x >= 2.0], 2.0)
    np.testing.assert_array_equal(out[x <= -2.0], -2.0)
    np.testing.assert_allclose(out / step, np.round(out / step), atol=1e-4)
    inside = np.abs(x) < 2.0 - step
    assert np.all(np.abs(out[inside] - x[inside]) <= step / 2 + 1e-6)


def test_adc_range_is_in_array_units_before_the_digital_scales() -> None:
    # The ADC sees x_q W in units of g_max and one full-scale input; weight_scale and the
    # input scale are applied after it, so the clip level in output units is their product.
    periphery = asim.Periphery.ideal(adc_bits=12, adc_range=1.0)
    tile = _ideal_tile(1, 1, periphery)
    tile.program(np.ones((1, 1)), weight_scale=4.0)  # stored as w = 0.25 g_max
    # |x| = 8 normalises to 1; the array computes 0.25 < 1; no clip: output 8 * 4 * 0.25 = 8.
    assert tile.forward(np.array([8.0]))[0] == pytest.approx(8.0, rel=1e-3)
    tile.program(np.full((1, 1), 16.0), weight_scale=4.0)  # w = 4 g_max: 4 > 1 clips
    assert tile.forward(np.array([8.0]))[0] == pytest.approx(8.0 * 4.0 * 1.0, rel=1e-6)


@pytest.mark.statistical
def test_adc_gain_and_offset_spread_per_column() -> None:
    # 20000 columns, gain and offset read back through forward (0 and 1 inputs). The sample
    # std of n = 20000 normals has relative standard error 1/sqrt(2n) = 0.5 %; tolerance 3 %
    # (6 standard errors, 2e-9). Means within 6 standard errors (sigma / sqrt(n)).
    cols = 20_000
    periphery = asim.Periphery.ideal(adc_gain_dtod=0.05, adc_offset_dtod=0.02)
    tile = _ideal_tile(1, cols, periphery, seed=21)
    tile.program(np.full((1, cols), 0.5), weight_scale=1.0)
    out = tile.forward(np.array([[0.0], [1.0], [2.0]])).astype(np.float64)
    offset = out[0]
    gain = (out[1] - out[0]) / 0.5
    # Noise management: x = 2 enters the array as 1 and the ADC reading (offset included) is
    # multiplied by 2 afterwards.
    np.testing.assert_allclose(out[2], 2.0 * out[1], rtol=1e-6)
    assert gain.std(ddof=1) == pytest.approx(0.05, rel=0.03)
    assert offset.std(ddof=1) == pytest.approx(0.02, rel=0.03)
    assert abs(gain.mean() - 1.0) < 6 * 0.05 / math.sqrt(cols)
    assert abs(offset.mean()) < 6 * 0.02 / math.sqrt(cols)
    np.testing.assert_allclose(gain, tile.arrays.adc_gain, rtol=1e-5)
    np.testing.assert_allclose(offset, tile.arrays.adc_offset, atol=1e-6)


def test_adc_gain_and_offset_are_fixed_per_chip() -> None:
    periphery = asim.Periphery.ideal(adc_gain_dtod=0.05, adc_offset_dtod=0.02)
    first = _ideal_tile(4, 300, periphery, seed=1)
    again = _ideal_tile(4, 300, periphery, seed=1)
    other = _ideal_tile(4, 300, periphery, seed=2)
    np.testing.assert_array_equal(first.arrays.adc_gain, again.arrays.adc_gain)
    np.testing.assert_array_equal(first.arrays.adc_offset, again.arrays.adc_offset)
    assert not np.array_equal(first.arrays.adc_gain, other.arrays.adc_gain)
    assert first.arrays.adc_gain_rows.shape == (4,)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("bits", [0, 1, 33, -1])
@pytest.mark.parametrize("name", ["adc_bits", "dac_bits"])
def test_converter_bits_out_of_range(name: str, bits: int) -> None:
    with pytest.raises(ParameterError, match=rf"The '{name}' parameter of Periphery must be an "
                                             rf"integer in \[2, 32\]\. Got {bits} instead"):
        asim.Periphery(**{name: bits})


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("adc_range", 0.0, r"\(0, inf\)"), ("dac_range", -1.0, r"\(0, inf\)"),
    ("out_noise", -0.1, r"\[0, inf"), ("adc_gain_dtod", 1.5, r"\[0, 1\]"),
    ("pulse_length", 65, r"\[1, 64\]"), ("adc_bits", 8.0, r"\[2, 32\]"),
])
def test_periphery_field_out_of_range(name: str, value: object, allowed: str) -> None:
    with pytest.raises(ParameterError, match=rf"The '{name}' parameter of Periphery must be .*"
                                             rf"{allowed}.*Got {value!r} instead"):
        asim.Periphery(**{name: value})


def test_periphery_rejects_unknown_sampler_and_non_bool_switch() -> None:
    with pytest.raises(ParameterError, match=r"The 'sampler' parameter of Periphery must be "
                                             r"one of 'fast', 'exact'\. Got 'slow' instead"):
        asim.Periphery(sampler="slow")
    with pytest.raises(ParameterError, match=r"The 'read_noise' parameter of Periphery must be "
                                             r"one of True, False\. Got 'yes' instead"):
        asim.Periphery(read_noise="yes")  # type: ignore[arg-type]


def test_periphery_dict_round_trip() -> None:
    periphery = asim.Periphery(adc_bits=None, out_noise=0.1, sampler="exact")
    assert asim.Periphery(**periphery.to_dict()) == periphery
