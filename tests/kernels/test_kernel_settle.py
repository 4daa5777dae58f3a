"""The vectorised drift settle of the fast update's drifted rows (``fast_rows.settle_line``)
against the scalar rule (``device_rules.settle``), and the row test that decides which rows
need it (``pulsed_update._any_stale``).

Bit for bit: the pass gathers the due devices and applies ``scalar.settled_value`` to them
in a loop LLVM vectorises; the scalar rule applies the same function one device at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import DEVICE_CASES

from analogsim.kernels._cpu_scalar import RULES, S
from analogsim.kernels.fast_rows import settle_line
from analogsim.kernels.pulsed_update import _any_stale
from analogsim.kernels.pulsed_update_numpy import _drift_exponent, _drift_factor

NOW = 5e4
COLS = 300


def _line(device, due_fraction: float, seed: int, one_time: bool = False):
    """One line (1, 1, COLS) of a drifted tile: conductances across the range, write times
    before ``NOW`` (spread, or all at one time: the pass's shared logarithm; a few at
    ``NOW`` and after it either way), stuck devices, and counts that pulse about
    ``due_fraction`` of the devices."""
    rng = np.random.default_rng(seed)
    conductance = rng.uniform(0.0, device.g_max, (1, 1, COLS)).astype(np.float32)
    conductance[0, 0, :5] = 0.0  # g = 0 takes the log's floor
    written_at = NOW - rng.choice([10.0, 3e3, 1e6], (1, 1, COLS)) * rng.random((1, 1, COLS))
    written_at[0, 0, rng.random(COLS) < 0.05] = NOW + 1.0  # a write after the clock: no drift
    if one_time:
        written_at[...] = NOW - 3e3
    written_at[0, 0, rng.random(COLS) < 0.1] = NOW
    drift_xi = rng.standard_normal((1, 1, COLS)).astype(np.float32)
    stuck = np.where(rng.random((1, 1, COLS)) < 0.05, 1, 0).astype(np.int8)
    pulsed = rng.random(COLS) < due_fraction
    counts = np.where(pulsed, rng.integers(1, 40, COLS), 0).astype(np.int32)
    return conductance, written_at, drift_xi, stuck, counts


@pytest.mark.parametrize("name", ["pcm", "reram-faulty-levels", "ecram"])
@pytest.mark.parametrize("due_fraction", [0.0, 0.004, 0.3, 1.0])
@pytest.mark.parametrize("one_time", [False, True], ids=["spread", "one-time"])
def test_the_settle_pass_equals_the_scalar_rule_bit_for_bit(name: str, due_fraction: float,
                                                            one_time: bool) -> None:
    device = DEVICE_CASES[name]
    p = device.physics().pack()
    conductance, written_at, drift_xi, stuck, counts = _line(device, due_fraction, 7,
                                                             one_time)
    expected = [conductance.copy(), written_at.copy()]
    expected_due = np.zeros(COLS, dtype=np.bool_)
    for j in range(COLS):
        if counts[j] > 0 and stuck[0, 0, j] == 0 and written_at[0, 0, j] != NOW:
            expected_due[j] = True
            RULES.settle(expected[0], expected[1], drift_xi, 0, 0, j, NOW, p)
    due = np.ones(COLS, dtype=np.bool_)
    half = np.zeros(COLS, dtype=np.int32)  # the other block's counts: none
    settle_line(conductance[0, 0], written_at[0, 0], drift_xi[0, 0], stuck[0, 0], counts,
                half, NOW, p, due)
    np.testing.assert_array_equal(due, expected_due)
    np.testing.assert_array_equal(conductance, expected[0])
    np.testing.assert_array_equal(written_at, expected[1])
    if due_fraction >= 0.3:
        drifted = expected_due & (expected[1][0, 0] == NOW)
        before = _line(device, due_fraction, 7, one_time)[0][0, 0]
        assert np.any(conductance[0, 0][drifted] != before[drifted]), (
            "nothing drifted: the test would not see a wrong rule")


def test_the_settled_value_is_the_drift_law() -> None:
    """``settled_value`` against the NumPy reference's drift exponent and factor (the same
    vector_math operations: bit for bit), and against libm's ``pow`` and ``log`` to float64
    precision (the law itself)."""
    device = DEVICE_CASES["pcm"]
    p = device.physics().pack()
    rng = np.random.default_rng(3)
    g = rng.uniform(0.0, device.g_max, 2000)
    elapsed = 10.0 ** rng.uniform(-3, 8, 2000)
    xi = rng.standard_normal(2000)
    constants = S.drift_constants(p)
    got = np.array([S.settled_value(*args, constants) for args in zip(g, elapsed, xi,
                                                                      strict=True)])
    nu = _drift_exponent(np.abs(g) / device.g_max, xi, p)
    np.testing.assert_array_equal(got, g * _drift_factor(elapsed, nu, p))
    t0 = constants[1]
    log_g = np.log(np.maximum(np.abs(g) / device.g_max, 1e-6))
    mu = np.clip(constants[2] * log_g + constants[3], constants[4], constants[5])
    sigma = np.clip(constants[6] * log_g + constants[7], constants[8], constants[9])
    law = g * ((elapsed + t0) / t0) ** -np.abs(mu + sigma * xi)
    np.testing.assert_allclose(got, law, rtol=1e-13, atol=0.0)


def test_a_row_whose_only_stale_devices_are_stuck_is_settled() -> None:
    written_at = np.full(8, 10.0)
    stuck = np.zeros(8, dtype=np.int8)
    assert not _any_stale(written_at, stuck, 10.0)
    written_at[3] = 2.0
    assert _any_stale(written_at, stuck, 10.0)
    stuck[3] = 1  # never settled: no reason to take the drifted path
    assert not _any_stale(written_at, stuck, 10.0)
