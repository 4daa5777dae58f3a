"""The pulsed-update kernels: NumPy references against Numba, state by state.

Every device preset (plain, and with 5 % stuck devices and finite levels), fresh and aged
states (drift folded in before pulses), PCM pairs pushed past their refresh threshold.
"""

from __future__ import annotations

import contextlib

import numba
import numpy as np
import pytest
from kernel_cases import (
    DEVICE_CASES,
    assert_states_agree,
    each_device,
    has_stuck,
    one_numba_thread,
    random_state,
    state_arrays,
)

import analogsim
from analogsim.kernels import get_kernels
from analogsim.kernels._cpu_scalar import S
from analogsim.kernels.device_rules import build_device_rules
from analogsim.kernels.pulsed_update import (
    FAST_SLOTS,
    _count_row,
    apply_exact_numba,
    apply_fast_numba,
    pulse_count_means,
    pulse_trains_numba,
)
from analogsim.kernels.pulsed_update_numpy import (
    _poisson,
    apply_exact_numpy,
    apply_fast_numpy,
    pulse_count_means_numpy,
    pulse_trains_numpy,
)

ROWS, COLS, NOW = 24, 20, 1e3
KEY = np.uint64(0x9A3F_17C2_55D0_E1B4)
AGES = {"fresh": 0.0, "aged": 1e3}


def _means(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Expected counts: zeros, small ones, and some past the Poisson inversion limit (30)."""
    rng = np.random.default_rng(seed)
    up = rng.exponential(6.0, (ROWS, COLS)).astype(np.float32)
    down = rng.exponential(6.0, (ROWS, COLS)).astype(np.float32)
    up[rng.random(up.shape) < 0.2] = 0.0
    down[rng.random(down.shape) < 0.1] = 45.0
    return up, down


def _pulse_trains(seed: int = 4, batch: int = 5):
    """Trains and signs as the exact sampler takes them: one row per line, (lines, batch)."""
    rng = np.random.default_rng(seed)
    x_probability = rng.uniform(0.0, 0.6, (batch, ROWS))
    d_probability = rng.uniform(0.0, 0.6, (batch, COLS))
    x_probability[:, 0] = 0.0  # a silent input
    x_bits = np.empty((batch, ROWS), dtype=np.uint64)
    d_bits = np.empty((batch, COLS), dtype=np.uint64)
    pulse_trains_numba(x_probability, 31, KEY, x_bits)
    pulse_trains_numba(d_probability, 31, KEY ^ np.uint64(0x5DEECE66D), d_bits)
    x_sign = rng.choice(np.array([-1, 1], dtype=np.int8), (batch, ROWS))
    d_sign = rng.choice(np.array([-1, 0, 1], dtype=np.int8), (batch, COLS))
    return tuple(np.ascontiguousarray(a.T) for a in (x_bits, x_sign, d_bits, d_sign))


def _refreshed(before: np.ndarray, after: np.ndarray, bound_low: np.ndarray) -> int:
    """Pairs where a side that held more than half its range was reset to its lower bound."""
    return int(np.count_nonzero((before > 12.0) & (after == bound_low)))


@each_device
@pytest.mark.parametrize("age", list(AGES.values()), ids=list(AGES))
def test_apply_fast_numpy_matches_numba(device, age: float) -> None:
    arrays = random_state(device, ROWS, COLS, seed=2, now=NOW, max_age=age)
    up, down = _means()
    p = device.physics().pack()
    numba_state, numpy_state = state_arrays(arrays), state_arrays(arrays)
    apply_fast_numba(up, down, *numba_state, NOW, p, KEY)
    apply_fast_numpy(up, down, *numpy_state, NOW, p, KEY)
    assert_states_agree(numba_state, numpy_state)
    assert not np.array_equal(numba_state[0], arrays.conductance)
    stuck = arrays.stuck != 0
    np.testing.assert_array_equal(numpy_state[0][stuck], arrays.conductance[stuck])
    if device.devices_per_weight == 2:
        assert _refreshed(arrays.conductance, numpy_state[0], arrays.bound_low) > 0


@each_device
@pytest.mark.parametrize("age", list(AGES.values()), ids=list(AGES))
def test_apply_exact_numpy_matches_numba(device, age: float) -> None:
    arrays = random_state(device, ROWS, COLS, seed=5, now=NOW, max_age=age)
    trains = _pulse_trains()
    p = device.physics().pack()
    numba_state, numpy_state = state_arrays(arrays), state_arrays(arrays)
    apply_exact_numba(*trains, *numba_state, NOW, p, KEY)
    apply_exact_numpy(*trains, *numpy_state, NOW, p, KEY)
    assert_states_agree(numba_state, numpy_state)
    assert not np.array_equal(numba_state[0], arrays.conductance)
    stuck = arrays.stuck != 0
    np.testing.assert_array_equal(numpy_state[0][stuck], arrays.conductance[stuck])
    if device.devices_per_weight == 2:
        assert _refreshed(arrays.conductance, numpy_state[0], arrays.bound_low) > 0


def test_the_faulty_cases_have_stuck_devices_of_both_kinds() -> None:
    for name in ("pcm-faulty-levels", "reram-faulty-levels", "ecram-faulty-levels"):
        assert has_stuck(random_state(DEVICE_CASES[name], ROWS, COLS, seed=2))


@pytest.mark.parametrize("length", [1, 31, 64])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pulse_trains_numpy_equal_numba_bit_for_bit(length: int, dtype) -> None:
    rng = np.random.default_rng(length)
    probability = rng.uniform(-0.2, 1.2, (6, 33)).astype(dtype)  # includes <= 0 and >= 1
    numba_bits = np.empty(probability.shape, dtype=np.uint64)
    numpy_bits = np.full(probability.shape, 7, dtype=np.uint64)
    pulse_trains_numba(probability, length, KEY, numba_bits)
    pulse_trains_numpy(probability, length, KEY, numpy_bits)
    # Uniforms are exact (integer hash, exact conversion): the bits must be identical.
    np.testing.assert_array_equal(numpy_bits, numba_bits)
    unused = ~np.uint64((1 << length) - 1) if length < 64 else np.uint64(0)
    assert not np.any(numba_bits & unused)
    assert np.all(numba_bits[probability <= 0.0] == 0)
    full = np.uint64((1 << length) - 1)
    assert np.all(numba_bits[probability >= 1.0] == full)


def test_poisson_reference_matches_the_compiled_scalar_rule() -> None:
    rng = np.random.default_rng(6)
    mean = np.concatenate([[0.0, 1e-9, 29.999, 30.0, 150.0], rng.exponential(10.0, 2000)])
    u = rng.random(mean.size)
    u[:3] = [0.999999, 1e-300, 0.5]
    z = rng.standard_normal(mean.size)
    expected = [S.poisson(m, a, b) for m, a, b in zip(mean, u, z, strict=True)]
    np.testing.assert_array_equal(_poisson(mean, u, z), expected)


def test_row_poisson_counts_equal_the_scalar_rule() -> None:
    rng = np.random.default_rng(12)
    mean = np.concatenate([[0.0, -1.0, 1e-9, 29.999, 30.0, 150.0, 75.0],
                           rng.exponential(8.0, 3000)]).astype(np.float32)
    u = rng.random(mean.size)
    u[:3] = [0.999999, 1e-300, 0.5]
    first = np.uint64(4)
    counts = _count_row(mean, u, KEY, first)
    normals = [S.normal(KEY, first + np.uint64(j * FAST_SLOTS)) for j in range(mean.size)]
    expected = [S.poisson(np.float64(m), a, z) for m, a, z in zip(mean, u, normals, strict=True)]
    np.testing.assert_array_equal(counts, expected)


# An eager, call-by-call copy of the samplers as they were before the draws were made lazy
# and vectorised (every variate drawn, rules not inlined, trains (batch, lines)).
S_POISSON, S_UNIFORM, S_NORMAL, S_POPCOUNT = S.poisson, S.uniform, S.normal, S.popcount
EAGER_PULSE = build_device_rules(numba.njit, S).pulse_device


@numba.njit
def _eager_fast(mean_up, mean_down, conductance, written_at, drift_xi, stuck, step_up,
                step_down, bound_low, bound_high, now, p, key):
    rows, cols = mean_up.shape
    for i in range(rows):
        for j in range(cols):
            base = np.uint64((i * cols + j) * FAST_SLOTS)
            n_up = S_POISSON(np.float64(mean_up[i, j]), S_UNIFORM(key, base),
                             S_NORMAL(key, base + np.uint64(1)))
            n_down = S_POISSON(np.float64(mean_down[i, j]), S_UNIFORM(key, base + np.uint64(2)),
                               S_NORMAL(key, base + np.uint64(3)))
            if n_up == 0 and n_down == 0:
                continue
            up_first = S_UNIFORM(key, base + np.uint64(4)) < 0.5
            z_up, z_down = S_NORMAL(key, base + np.uint64(5)), S_NORMAL(key, base + np.uint64(6))
            for turn in range(2):
                if (turn == 0) == up_first:
                    EAGER_PULSE(conductance, written_at, drift_xi, stuck, step_up, step_down,
                                bound_low, bound_high, i, j, n_up, True, z_up, key,
                                base + np.uint64(7), now, p)
                else:
                    EAGER_PULSE(conductance, written_at, drift_xi, stuck, step_up, step_down,
                                bound_low, bound_high, i, j, n_down, False, z_down, key,
                                base + np.uint64(8), now, p)


@numba.njit
def _eager_exact(x_bits, x_sign, d_bits, d_sign, conductance, written_at, drift_xi, stuck,
                 step_up, step_down, bound_low, bound_high, now, p, key):
    batch, rows = x_bits.shape
    cols = d_bits.shape[1]
    for i in range(rows):
        for j in range(cols):
            base = np.uint64(i * cols + j) * np.uint64(2 * batch)
            for b in range(batch):
                count = S_POPCOUNT(x_bits[b, i] & d_bits[b, j])
                if count > 0:
                    slot = base + np.uint64(2 * b)
                    EAGER_PULSE(conductance, written_at, drift_xi, stuck, step_up, step_down,
                                bound_low, bound_high, i, j, count,
                                x_sign[b, i] * d_sign[b, j] < 0, S_NORMAL(key, slot), key,
                                slot + np.uint64(1), now, p)


@pytest.mark.parametrize("name", ["pcm-faulty-levels", "reram-faulty-levels", "ecram"])
def test_samplers_equal_an_eager_copy_bit_for_bit(name: str) -> None:
    """Drawing only what is used, a row at a time, inlined, with trains stored by line:
    the same numbers as drawing everything, device by device."""
    device = DEVICE_CASES[name]
    arrays = random_state(device, ROWS, COLS, seed=13, now=NOW, max_age=NOW)
    p = device.physics().pack()
    up, down = _means(seed=14)
    trains = _pulse_trains(seed=15)
    by_sample = [np.ascontiguousarray(a.T) for a in trains]
    new, eager = state_arrays(arrays), state_arrays(arrays)
    apply_fast_numba(up, down, *new, NOW, p, KEY)
    _eager_fast(up, down, *eager, NOW, p, KEY)
    apply_exact_numba(*trains, *new, NOW + 5.0, p, KEY)
    _eager_exact(*by_sample, *eager, NOW + 5.0, p, KEY)
    np.testing.assert_array_equal(new[0], eager[0])
    np.testing.assert_array_equal(new[1], eager[1])
    assert not np.array_equal(new[0], arrays.conductance)


def test_pulse_count_means_equal_the_numpy_reference_bit_for_bit() -> None:
    rng = np.random.default_rng(16)
    x = rng.normal(size=(33, 40)).astype(np.float32)
    d = rng.normal(size=(33, 27)).astype(np.float32)
    for actual, expected in zip(pulse_count_means(x, d, 7.5),
                                pulse_count_means_numpy(x, d, 7.5), strict=True):
        assert actual.dtype == np.float32 and actual.shape == (40, 27)
        np.testing.assert_array_equal(actual, expected)
    assert get_kernels("numpy").count_means is pulse_count_means_numpy


def test_pulse_count_means_split_the_batch_outer_product_by_sign() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(9, 5)).astype(np.float32)
    d = rng.normal(size=(9, 4)).astype(np.float32)
    up, down = pulse_count_means(x, d, 3.0)
    products = x.astype(np.float64)[:, :, None] * d.astype(np.float64)[:, None, :]
    np.testing.assert_allclose(up, 3.0 * np.where(products < 0, -products, 0).sum(0),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(down, 3.0 * np.where(products > 0, products, 0).sum(0),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["pcm", "reram-faulty-levels", "ecram"])
def test_a_numpy_chip_follows_a_numba_chip(name: str) -> None:
    """The same session on both kernel sets: program, age, update (both samplers), read."""
    device = DEVICE_CASES[name]
    rng = np.random.default_rng(8)
    weights = rng.normal(0.0, 0.3, (12, 7)).astype(np.float32)
    x = rng.normal(size=(6, 12)).astype(np.float32)
    d = rng.normal(size=(6, 7)).astype(np.float32)
    outputs = []
    for kernels in ("numba", "numpy"):
        chip = analogsim.Chip(device=device, seed=4, kernels=kernels)
        tile = chip.tile("layer", 12, 7)
        tile.program(weights)
        chip.advance(30.0)
        tile.update(x, d, 0.05, sampler="fast")
        chip.advance(5.0)
        tile.update(x, d, 0.05, sampler="exact")
        outputs.append((tile.arrays.conductance.copy(), tile.forward(x), tile.read()))
    assert get_kernels("numpy").apply_fast is apply_fast_numpy
    for numba_value, numpy_value in zip(*outputs, strict=True):
        np.testing.assert_allclose(numpy_value, numba_value, rtol=1e-6, atol=1e-6)


def test_numba_results_do_not_depend_on_the_thread_count() -> None:
    device = DEVICE_CASES["pcm-faulty-levels"]
    arrays = random_state(device, ROWS, COLS, seed=9, now=NOW, max_age=NOW)
    up, down = _means(seed=10)
    p = device.physics().pack()
    results = []
    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        state = state_arrays(arrays)
        with one_numba_thread() if threads == 1 else contextlib.nullcontext():
            apply_fast_numba(up, down, *state, NOW, p, KEY)
            apply_exact_numba(*_pulse_trains(seed=11), *state, NOW, p, KEY)
        results.append(state[:2])
    for conductance, written_at in results[1:]:
        np.testing.assert_array_equal(conductance, results[0][0])
        np.testing.assert_array_equal(written_at, results[0][1])
