"""The float32 closed-form pulse block (``scalar.pulse_block``) against pulse-by-pulse float64.

A block of ``n`` soft-bounded pulses is computed in float32 as the first step times a
geometric sum (``scalar.pulse_sums``). These tests hold it to the float64 iteration of the
single-pulse rule ``g <- g + sign step (1 - gamma g / bound)`` (the reference), over strong,
weak and no soft bounds, short and long blocks, and check the two properties the sum form
is chosen for: a block never moves a device against its first step, and never past its
fixed point ``bound / gamma``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analogsim import devices
from analogsim.kernels._cpu_scalar import S
from analogsim.kernels.pulsed_update_numpy import _block

F32 = np.float32
GAMMAS = (0.0, 1e-3, 0.3, 1.0, 1.6)  # none, weak, ReRAM-like, strong, fixed point inside
COUNTS = (0, 1, 2, 5, 63, 64, 257, 5000)
STEP, BOUND, LOW = F32(0.4), F32(60.0), F32(-60.0)
STARTS = (F32(-55.0), F32(-3.0), F32(0.0), F32(20.0), F32(59.5))


def _params(dw_min_std: float = 0.0) -> np.ndarray:
    """Packed parameters; only the cycle-noise std is read by the block rule (``gamma`` is
    passed to it directly, so the rule is tested past the devices' range ``[0, 1]`` too)."""
    return devices.ReRAM(dw_min_std=dw_min_std).physics().pack()


def _iterate(g: float, n: int, gamma: float) -> float:
    """``n`` up pulses one at a time in float64; no clipping is needed below the bound."""
    for _ in range(n):
        g = g + float(STEP) * (1.0 - gamma * g / float(BOUND))
    return min(max(g, float(LOW)), float(BOUND))


@pytest.mark.parametrize("gamma", GAMMAS)
def test_noiseless_block_matches_the_pulse_by_pulse_float64_rule(gamma: float) -> None:
    p = _params()
    worst = 0.0
    for g, n in itertools.product(STARTS, COUNTS):
        block = S.steps_up(g, n, STEP, BOUND, gamma, LOW, F32(0.0), p)
        assert F32(block) == block  # a float32 value
        reference = _iterate(float(g), n, gamma)
        worst = max(worst, abs(float(block) - reference))
    # float32 rounding of the per-pulse ratio and of the sums: measured at most 2.7e-4 uS
    # (n = 257 from -55 uS, a 100 uS move), 7e-4 of one step; the bound allows 1e-5 of the
    # range's half-width, 1.5e-3 of a step.
    assert worst <= 1e-5 * float(BOUND)


@pytest.mark.parametrize("gamma", [0.3, 1.0, 1.6])
def test_a_block_never_moves_against_its_first_step_nor_past_the_fixed_point(
        gamma: float) -> None:
    p = _params()
    fixed = float(BOUND) / gamma
    starts = np.linspace(-59.0, 59.9, 397, dtype=np.float32)
    for g in starts:
        previous = g
        for _ in range(40):  # 40 blocks of 257 pulses: deep in saturation
            moved = S.steps_up(previous, 257, STEP, BOUND, gamma, LOW, F32(0.0), p)
            # Against the first step by at most the float32 rounding of the fixed point
            # (a few ulps), never by the overshoot of the rounded sums.
            slack = 2e-7 * float(BOUND)
            if previous <= fixed:
                assert previous - slack <= moved <= max(fixed, float(previous)) + slack
            else:
                assert fixed - slack <= moved <= previous + slack
            previous = moved
        # Saturated: at the fixed point (or the bound, where the fixed point lies beyond it)
        # to a few float32 ulps.
        assert abs(float(previous) - min(fixed, float(BOUND))) <= 4e-7 * float(BOUND)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0])
def test_block_noise_std_is_the_summed_per_pulse_noise(gamma: float) -> None:
    """With ``z = 1`` the noise term is ``dw_std |first| sqrt(sum_k ratio^2k)``."""
    dw_std = 0.25
    p = _params(dw_std)
    clean = _params()
    ratio = 1.0 - float(STEP) * gamma / float(BOUND)
    # Blocks that stay inside the bounds, so that clipping takes no noise away.
    for g, n in itertools.product((F32(-30.0), F32(0.0), F32(10.0)), (1, 7, 63, 90)):
        noisy = S.steps_up(g, n, STEP, BOUND, gamma, LOW, F32(1.0), p)
        moved = S.steps_up(g, n, STEP, BOUND, gamma, LOW, F32(0.0), clean)
        first = float(STEP) * (1.0 - gamma * float(g) / float(BOUND))
        expected = dw_std * abs(first) * np.sqrt(sum(ratio ** (2 * k) for k in range(n)))
        assert float(noisy) - float(moved) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_numpy_block_equals_the_scalar_rule_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    size = 4000
    g = rng.uniform(-59.0, 59.0, size).astype(np.float32)
    step = rng.uniform(0.01, 1.0, size).astype(np.float32)
    high = rng.uniform(40.0, 80.0, size).astype(np.float32)
    low = -high
    z = rng.standard_normal(size).astype(np.float32)
    counts = rng.integers(0, 300, size)
    for gamma in GAMMAS:
        p = _params(0.3)
        for sign in (1.0, -1.0):
            bound = high if sign > 0 else low
            vectorised = _block(g, counts, step, sign, bound, gamma, low, high, z,
                                p)
            if sign > 0:
                scalar = [S.steps_up(g[k], counts[k], step[k], high[k], gamma,
                                     low[k], z[k], p) for k in range(size)]
            else:
                scalar = [S.steps_down(g[k], counts[k], step[k], low[k], gamma,
                                       high[k], z[k], p) for k in range(size)]
            assert vectorised.dtype == np.float32
            np.testing.assert_array_equal(vectorised, np.array(scalar, dtype=np.float32))
