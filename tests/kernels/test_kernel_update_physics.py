"""Statistical physics of the pulsed update, through ``Chip`` and ``Tile.update``.

Devices of a tile that share neither a row nor a column receive independent pulse counts in
both samplers (the exact sampler's pulse trains are per input and per error), so pooled
statistics use the diagonal of square tiles; per-device statistics use repeated updates from
the same state.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import one_numba_thread

import analogsim
from analogsim import Periphery, devices

#: A bidirectional device with identical constant steps everywhere and no noise at all.
CONSTANT_STEP = devices.ReRAM(
    gamma_up=0.0, gamma_down=0.0, dw_min_dtod=0.0, up_down_dtod=0.0, dw_min_std=0.0,
    w_max_dtod=0.0, w_min_dtod=0.0, stuck_at_gmin=0.0, stuck_at_gmax=0.0,
    prog_noise_std=0.0, read_noise_std=0.0)
BL = Periphery().pulse_length


@pytest.fixture(autouse=True, scope="module")
def _serial_kernels():
    with one_numba_thread():
        yield


def _tile(device, size: int, seed: int = 0, periphery: Periphery | None = None,
          count_precision: str | None = None):
    chip = analogsim.Chip(device=device, seed=seed,
                          periphery=Periphery.ideal() if periphery is None else periphery,
                          count_precision=count_precision)
    return chip.tile("physics", size, size)


def _repeat_from_zero(tile, x, d, lr: float, sampler: str, repeats: int) -> np.ndarray:
    """The weight change (g_max units) of ``repeats`` updates, each from zero conductance."""
    changes = np.empty((repeats, tile.rows, tile.cols))
    for k in range(repeats):
        tile.arrays.conductance[...] = 0.0
        tile.update(x, d, lr, sampler=sampler)
        changes[k] = tile.arrays.conductance[0] / tile.device.g_max
    return changes


@pytest.mark.parametrize("sampler", ["fast", "exact"])
def test_ideal_device_update_is_exactly_minus_lr_x_transpose_d(sampler: str) -> None:
    tile = _tile(devices.Ideal(), 12)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 12)).astype(np.float32)
    d = rng.normal(size=(5, 12)).astype(np.float32)
    tile.program(rng.normal(size=(12, 12)), weight_scale=1.0)
    before = tile.read()
    assert np.any(before != 0.0)
    tile.update(x, d, 0.03, sampler=sampler)
    expected = -0.03 * (x.astype(np.float64).T @ d)
    np.testing.assert_allclose(tile.read() - before, expected, rtol=1e-5, atol=1e-6)


def _exact_count_variance(x, d, pulses_per_unit: float) -> np.ndarray:
    """sum_b BL q_b (1 - q_b), q_b = (n / BL) |x_b d_b|: the exact sampler's count variance."""
    q = pulses_per_unit / BL * np.abs(x.T.astype(np.float64))[:, None, :] * np.abs(d.T)[None]
    return (BL * q * (1.0 - q)).sum(axis=-1)


@pytest.mark.statistical
@pytest.mark.parametrize("sampler", ["fast", "exact", "fast, int8 counts"])
def test_mean_update_of_a_constant_step_device_is_minus_lr_x_transpose_d(sampler: str) -> None:
    count_precision = None
    if sampler == "fast, int8 counts":  # Chip(count_precision="int8"): the same contract
        pytest.importorskip("torch")
        sampler, count_precision = "fast", "int8"
    size, batch, repeats, pulses_per_unit = 16, 8, 400, 3.0
    rng = np.random.default_rng(1)
    signs = rng.choice([-1.0, 1.0], (2, batch, size))
    x = (signs[0] * rng.uniform(0.3, 1.0, (batch, size))).astype(np.float32)
    d = (signs[1] * rng.uniform(0.3, 1.0, (batch, size))).astype(np.float32)
    lr = pulses_per_unit * CONSTANT_STEP.dw_min  # weight_scale 1: 3 pulses per unit |x d|
    tile = _tile(CONSTANT_STEP, size, seed=2, count_precision=count_precision)
    observed = _repeat_from_zero(tile, x, d, lr, sampler, repeats).mean(axis=0)
    expected = -lr * (x.astype(np.float64).T @ d)
    if sampler == "fast":  # Poisson counts: variance = mean up + mean down pulses
        count_variance = pulses_per_unit * (np.abs(x.T) @ np.abs(d))
    else:  # no probability reaches 1 here (max per-slot q = 3 / 31), so no clipping
        count_variance = _exact_count_variance(x, d, pulses_per_unit)
    standard_error = CONSTANT_STEP.dw_min * np.sqrt(count_variance / repeats)
    # Per device: |z| < 5.5 (false-failure rate 256 x 3.8e-8 = 1e-5; 400 repeats of counts
    # with mean >= 2 are close to normal).
    assert np.max(np.abs(observed - expected) / standard_error) < 5.5
    # Pooled over the independent diagonal: slope of observed on expected is 1 within
    # 5 standard errors (false-failure rate 6e-7), a test of a bias of ~1 %.
    e, o, s = np.diag(expected), np.diag(observed), np.diag(standard_error)
    slope = (e @ o) / (e @ e)
    assert abs(slope - 1.0) < 5 * np.sqrt((e**2) @ (s**2)) / (e @ e)


def _diagonal_counts(sampler: str, q: float, batch: int, repeats: int) -> np.ndarray:
    """Up-pulse counts of the diagonal devices: ``batch`` samples of x = 1, d = -1 with the
    per-slot coincidence probability ``q`` (update management balances p_x = p_d)."""
    size = 16
    tile = _tile(CONSTANT_STEP, size, seed=3)
    x = np.ones((batch, size), dtype=np.float32)
    lr = q * BL * CONSTANT_STEP.dw_min  # pulses per unit = q BL
    changes = _repeat_from_zero(tile, x, -x, lr, sampler, repeats)
    counts = np.diagonal(changes, axis1=1, axis2=2) / CONSTANT_STEP.dw_min
    return np.round(counts).ravel()


def _variance_standard_error(counts: np.ndarray) -> float:
    centred = counts - counts.mean()
    return float(np.sqrt((np.mean(centred**4) - np.mean(centred**2) ** 2) / counts.size))


@pytest.mark.statistical
def test_fast_and_exact_pulse_counts_agree_when_coincidences_are_rare() -> None:
    # q = 0.01 per slot, 16 samples: exact counts Binomial(496, 0.01) (mean 4.96, variance
    # 4.91), fast counts Poisson(4.96): variances 1 % apart, inside the tolerance below.
    q, batch = 0.01, 16
    fast = _diagonal_counts("fast", q, batch, repeats=1200)
    exact = _diagonal_counts("exact", q, batch, repeats=1200)
    mean = BL * batch * q
    for counts, variance in ((fast, mean), (exact, mean * (1 - q))):
        # 5 standard errors of each estimator (false-failure rate 6e-7 per check), from
        # 16 x 1200 independent counts: about 2 % of the mean and 5 % of the variance.
        assert abs(counts.mean() - mean) < 5 * np.sqrt(variance / counts.size)
        assert abs(counts.var() - variance) < 5 * _variance_standard_error(counts)
    difference_se = np.hypot(_variance_standard_error(fast), _variance_standard_error(exact))
    assert abs(fast.var() - exact.var()) < 5 * difference_se + BL * batch * q * q


@pytest.mark.statistical
def test_fast_sampler_variance_exceeds_exact_by_bl_sum_p_squared() -> None:
    # q = 0.5 per slot, 8 samples: exact counts Binomial(248, 0.5) (variance 62); fast counts
    # from the rounded normal of mean 124 (variance 124 + 1/12): the documented excess
    # BL sum_b q_b^2 = 62, i.e. a factor 2.
    q, batch = 0.5, 8
    fast = _diagonal_counts("fast", q, batch, repeats=500)
    exact = _diagonal_counts("exact", q, batch, repeats=500)
    mean = BL * batch * q
    exact_variance, excess = mean * (1 - q), BL * batch * q * q
    # 5 standard errors (false-failure rate 6e-7 per check).
    assert abs(exact.mean() - mean) < 5 * np.sqrt(exact_variance / exact.size)
    assert abs(fast.mean() - mean) < 5 * np.sqrt(mean / fast.size)
    assert abs(exact.var() - exact_variance) < 5 * _variance_standard_error(exact)
    difference_se = np.hypot(_variance_standard_error(fast), _variance_standard_error(exact))
    assert abs(fast.var() - exact.var() - excess - 1 / 12) < 5 * difference_se


def _drive(tile, going_up: bool, pulses: float, updates: int, sampler: str = "fast"):
    """``updates`` updates of about ``pulses`` pulses each, all devices in one direction."""
    ones = np.ones((1, tile.rows), dtype=np.float32)
    lr = pulses * tile.device.dw_min
    states = []
    for _ in range(updates):
        tile.update(ones, -ones if going_up else ones, lr, sampler=sampler)
        states.append(tile.arrays.conductance[0].copy())
    return np.array(states)


def _closed_form(g, pulses, step, bound, gamma):
    """Noiseless state after ``pulses`` steps towards ``bound`` (either sign), clipped.

    Like the scalar rule, a device whose bound is 0 steps linearly.
    """
    towards = np.where(bound > g, 1.0, -1.0)
    moved = g + towards * pulses * step
    if gamma != 0.0:
        safe = np.where(bound == 0.0, 1.0, np.abs(bound))
        fixed = bound / gamma
        ratio = np.maximum(1.0 - step * gamma / safe, 0.0)
        moved = np.where(bound == 0.0, moved, fixed - (fixed - g) * ratio**pulses)
    return np.where(towards > 0, np.minimum(moved, bound), np.maximum(moved, bound))


@pytest.mark.statistical
@pytest.mark.parametrize("device", [
    pytest.param(devices.ReRAM(dw_min_std=0.0, stuck_at_gmin=0.0, stuck_at_gmax=0.0),
                 id="reram-soft-bounds"),
    pytest.param(devices.ECRAM(dw_min_std=0.0), id="ecram-partial-bounds"),
])
def test_noiseless_soft_bounds_converge_to_each_device_own_bound(device) -> None:
    tile = _tile(device, 32, seed=4)
    arrays = tile.arrays
    high, low = arrays.bound_high[0].astype(np.float64), arrays.bound_low[0].astype(np.float64)
    assert np.std(high) > 0 and np.std(low) > 0  # the bounds differ device to device
    # 10 updates of Poisson(2e4) pulses: at least 2e5 - 6 sqrt(2e5) of them (6 sigma,
    # false-failure rate 1e-9 per device), after which the closed form bounds the state.
    least = 2e5 - 6 * np.sqrt(2e5)
    physics = device.physics()
    for going_up, bound in ((True, high), (False, low)):
        start = arrays.conductance[0].astype(np.float64)
        states = _drive(tile, going_up, 2e4, 10)
        step = arrays.step_up[0] if going_up else arrays.step_down[0]
        gamma = physics.gamma[0] if going_up else physics.gamma[1]
        slowest = _closed_form(start, least, step.astype(np.float64), bound, gamma)
        moves = np.diff(states, axis=0)
        if going_up:
            assert np.all(states <= high) and np.all(moves >= 0)
            assert np.all(states[-1] >= slowest - 1e-6 * device.g_max)
        else:
            assert np.all(states >= low) and np.all(moves <= 0)
            assert np.all(states[-1] <= slowest + 1e-6 * device.g_max)
        # Every device but those with the very smallest steps ends on its own bound.
        on_bound = np.isclose(states[-1], bound, rtol=1e-6, atol=1e-6 * device.g_max)
        assert on_bound.mean() > 0.98
        assert np.all(on_bound[np.abs(slowest - bound) < 1e-7 * device.g_max])


@pytest.mark.parametrize("sampler", ["fast", "exact"])
def test_noisy_soft_bounds_never_leave_the_bounds_and_saturate_near_them(sampler) -> None:
    device = devices.ReRAM(stuck_at_gmin=0.0, stuck_at_gmax=0.0)  # cycle noise 3.75 dw_min
    tile = _tile(device, 16, seed=5, periphery=Periphery.ideal(sampler=sampler))
    high, low = tile.arrays.bound_high[0], tile.arrays.bound_low[0]
    for going_up in (True, False):
        states = _drive(tile, going_up, 20.0, 600, sampler)  # ~12 000 pulses
        assert np.all(states <= high) and np.all(states >= low)
        # Additive cycle noise sigma = 0.3 uS per pulse against a contraction dw / w_max =
        # 0.0016 per pulse settles ~sigma / sqrt(2 dw / w_max) = 5 uS from the bound (6 % of
        # the 80 uS range), reflected at it; a device that fails to saturate sits far away.
        bound = high if going_up else low
        distance = np.abs(bound - states[-100:]) / (high - low)
        assert distance.mean() < 0.12


@pytest.mark.statistical
def test_exact_sampler_cycle_noise_has_the_same_variance_in_every_column() -> None:
    device = devices.ReRAM(
        gamma_up=0.0, gamma_down=0.0, dw_min_dtod=0.0, up_down_dtod=0.0, dw_min_std=1.0,
        w_max_dtod=0.0, w_min_dtod=0.0, stuck_at_gmin=0.0, stuck_at_gmax=0.0)
    rows, cols, repeats = 64, 32, 150
    chip = analogsim.Chip(device=device, seed=9, periphery=Periphery.ideal(pulse_length=1))
    tile = chip.tile("noise", rows, cols)
    x = np.ones((1, rows), dtype=np.float32)
    step = device.dw_min * device.g_max
    noise = [[] for _ in range(cols)]
    for _ in range(repeats):
        tile.arrays.conductance[...] = 0.0
        tile.update(x, -np.ones((1, cols)), 0.25 * device.dw_min, sampler="exact")  # p = 0.5
        moved = tile.arrays.conductance[0].astype(np.float64)
        for j in range(cols):  # one pulse: step + dw_min_std * dw_min * z
            noise[j].extend((moved[moved[:, j] != 0.0, j] - step) / step)
    variances = np.array([np.var(column) for column in noise])
    counts = np.array([len(column) for column in noise])
    # ~2400 pulses per column: 5 standard errors of a normal variance, sqrt(2 / n), per
    # column (false-failure rate 32 x 6e-7).
    assert np.all(np.abs(variances - 1.0) < 5 * np.sqrt(2.0 / counts))
