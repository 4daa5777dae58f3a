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
from analogsim.kernels.counter_rng import hash64_array
from analogsim.kernels.device_rules import build_device_rules
from analogsim.kernels.fast_rows import draw_row, hash_row
from analogsim.kernels.pulsed_update import (
    FAST_SLOTS,
    HASH_WORDS,
    PENDING_LIMIT,
    ROWS_PER_CHUNK,
    SLOT_DOWN,
    SLOT_LARGE_DOWN,
    SLOT_LARGE_UP,
    SLOT_NOISE,
    SLOT_REFRESH_DOWN,
    SLOT_REFRESH_UP,
    SLOT_UP,
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
from analogsim.kernels.scalar import (
    ALIAS_SHIFT,
    POISSON_COLUMNS,
    POISSON_INVERSION_LIMIT,
    POISSON_TABLES,
    THRESHOLD_MASK,
)

ROWS, COLS, NOW = 24, 20, 1e3
KEY = np.uint64(0x9A3F_17C2_55D0_E1B4)
AGES = {"fresh": 0.0, "aged": 1e3}


def _means(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Expected counts: zeros, small ones, and some past the Poisson inversion limit (30),
    some of them past the vectorised block's 63 pulses."""
    rng = np.random.default_rng(seed)
    up = rng.exponential(6.0, (ROWS, COLS)).astype(np.float32)
    down = rng.exponential(6.0, (ROWS, COLS)).astype(np.float32)
    up[rng.random(up.shape) < 0.2] = 0.0
    down[rng.random(down.shape) < 0.1] = 45.0
    up[rng.random(up.shape) < 0.05] = 90.0
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
    mean = np.concatenate([[0.0, 1e-9, 0.999999, 1.0, 29.999, 30.0, 150.0, -1.0],
                           rng.exponential(10.0, 2000)])
    bits = hash64_array(int(KEY), np.arange(mean.size, dtype=np.uint64))
    bits[:3] = [np.uint64(2**64 - 1), np.uint64(0), np.uint64(2**63)]
    z = rng.standard_normal(mean.size)
    expected = [S.poisson_count(m, b, c) for m, b, c in zip(mean, bits, z, strict=True)]
    np.testing.assert_array_equal(_poisson(mean, bits, z), expected)


def _alias_probabilities(whole: int) -> np.ndarray:
    """The distribution an alias table's draws have: each column 1 / 128, then kept with
    probability threshold / 2**24 or sent to its alias."""
    entries = POISSON_TABLES[whole * POISSON_COLUMNS:(whole + 1) * POISSON_COLUMNS]
    keep = (entries & THRESHOLD_MASK).astype(np.float64) / 2.0**24
    alias = (entries >> ALIAS_SHIFT).astype(np.int64)
    probability = keep / POISSON_COLUMNS
    np.add.at(probability, alias, (1.0 - keep) / POISSON_COLUMNS)
    return probability


def test_poisson_alias_tables_reproduce_the_poisson_pmf() -> None:
    from scipy import stats

    k = np.arange(POISSON_COLUMNS)
    for whole in range(int(POISSON_INVERSION_LIMIT)):
        probability = _alias_probabilities(whole)
        pmf = stats.poisson.pmf(k, whole) if whole > 0 else (k == 0).astype(float)
        # Keep probabilities are rounded to 2**-24 within a column of weight 2**-7, so each
        # column that holds a count moves its probability by up to 2**-32 (measured: 1.2e-9
        # at most, over all tables).
        np.testing.assert_allclose(probability, pmf, rtol=0, atol=2e-9)
        # The moments follow (measured: 6e-8 of the mean at most).
        assert abs(probability @ k - whole) < 2e-7 * max(whole, 1)
        assert abs(probability @ (k - whole) ** 2 - whole) < 2e-7 * max(whole, 1)


@pytest.mark.statistical
def test_poisson_counts_have_poisson_moments_and_pmf() -> None:
    """Alias draw of the whole part plus inversion of the fractional part: Poisson(mean)."""
    from scipy import stats

    draws = 400_000
    bits = hash64_array(int(KEY), np.arange(draws, dtype=np.uint64))
    for mean in (0.3, 1.0, 4.96, 6.4, 17.75, 29.5):
        counts = _poisson(np.full(draws, mean), bits, np.zeros(draws))
        # 5 standard errors (false-failure rate 6e-7 per check).
        assert abs(counts.mean() - mean) < 5 * np.sqrt(mean / draws)
        fourth = mean * (1 + 3 * mean)  # central fourth moment of a Poisson variable
        assert abs(counts.var() - mean) < 5 * np.sqrt((fourth - mean**2) / draws)
        observed = np.bincount(counts, minlength=80)[:80]
        expected = stats.poisson.pmf(np.arange(80), mean) * draws
        cells = expected > 20  # chi-square over the well-filled cells
        chi2 = (((observed - expected) ** 2 / expected)[cells]).sum()
        assert stats.chi2.sf(chi2, cells.sum() - 1) > 1e-6


def test_row_draws_equal_the_scalar_rule() -> None:
    rng = np.random.default_rng(12)
    mean_up = np.concatenate([[0.0, -1.0, 1e-9, 29.999, 30.0, 150.0, 75.0, 0.999],
                              rng.exponential(8.0, 3000)]).astype(np.float32)
    mean_down = rng.permutation(mean_up)
    cols = mean_up.size
    first = np.uint64(4)
    counts = np.empty((2, cols), dtype=np.int64)
    z = np.empty((2, cols), dtype=np.float32)
    up_first = np.empty(cols, dtype=np.bool_)
    slow = np.empty(cols, dtype=np.bool_)
    words = np.empty((HASH_WORDS, cols), dtype=np.uint32)
    hash_row(KEY, first, words)
    draw_row(mean_up, mean_down, words, counts, z, up_first, slow)
    base = (first + np.arange(cols, dtype=np.uint64)) * np.uint64(FAST_SLOTS)
    for k, slot in enumerate((SLOT_UP, SLOT_DOWN, SLOT_NOISE)):  # the halves of each hash
        bits = hash64_array(KEY, base + slot)
        np.testing.assert_array_equal(words[2 * k], (bits >> np.uint64(32)).astype(np.uint32))
        np.testing.assert_array_equal(words[2 * k + 1], bits.astype(np.uint32))
    for j in range(cols):
        bits_up = np.uint64(S.hash64(KEY, base[j] + SLOT_UP))
        for k, (mean, bits, large) in enumerate((
                (mean_up[j], bits_up, SLOT_LARGE_UP),
                (mean_down[j], np.uint64(S.hash64(KEY, base[j] + SLOT_DOWN)),
                 SLOT_LARGE_DOWN))):
            expected = S.poisson_count(np.float64(mean), bits,
                                       S.normal(KEY, base[j] + large))
            # Unflagged devices: the vectorised count is the count itself.
            assert slow[j] or counts[k, j] == expected
        assert up_first[j] == bool((int(bits_up) >> 32) & 1)
        assert (z[0, j], z[1, j]) == S.normal_pair32(KEY, base[j] + SLOT_NOISE)
    large = (mean_up >= POISSON_INVERSION_LIMIT) | (mean_down >= POISSON_INVERSION_LIMIT)
    assert slow[large].all() and large[4:7].all()
    # A fractional part's inversion runs past 6 terms with probability below 1e-4.
    assert (slow & ~large).mean() < 2e-3


def test_the_32_bit_alias_tables_hold_the_same_entries() -> None:
    from analogsim.kernels.scalar import POISSON_TABLES_32

    assert POISSON_TABLES_32.dtype == np.uint32
    np.testing.assert_array_equal(POISSON_TABLES_32.astype(np.uint64), POISSON_TABLES)


# An eager, call-by-call copy of the samplers: every variate drawn, device by device, rules
# not inlined, trains (batch, lines).
S_POISSON, S_HASH, S_NORMAL, S_PAIR, S_POPCOUNT = (
    S.poisson_count, S.hash64, S.normal, S.normal_pair32, S.popcount)
EAGER_PULSE = build_device_rules(numba.njit, S).pulse_device


@numba.njit
def _eager_fast(mean_up, mean_down, conductance, written_at, drift_xi, stuck, step_up,
                step_down, bound_low, bound_high, now, p, key):
    rows, cols = mean_up.shape
    for i in range(rows):
        for j in range(cols):
            base = np.uint64((i * cols + j) * FAST_SLOTS)
            bits_up = S_HASH(key, base + SLOT_UP)
            n_up = S_POISSON(np.float64(mean_up[i, j]), bits_up,
                             S_NORMAL(key, base + SLOT_LARGE_UP))
            n_down = S_POISSON(np.float64(mean_down[i, j]), S_HASH(key, base + SLOT_DOWN),
                               S_NORMAL(key, base + SLOT_LARGE_DOWN))
            if n_up == 0 and n_down == 0:
                continue
            up_first = ((bits_up >> np.uint64(32)) & np.uint64(1)) != 0
            z_up, z_down = S_PAIR(key, base + SLOT_NOISE)
            for turn in range(2):
                if (turn == 0) == up_first:
                    EAGER_PULSE(conductance, written_at, drift_xi, stuck, step_up, step_down,
                                bound_low, bound_high, i, j, n_up, True, z_up, key,
                                base + SLOT_REFRESH_UP, now, p)
                else:
                    EAGER_PULSE(conductance, written_at, drift_xi, stuck, step_up, step_down,
                                bound_low, bound_high, i, j, n_down, False, z_down, key,
                                base + SLOT_REFRESH_DOWN, now, p)


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
    """Drawing only what is used, a row at a time in vectorised passes, inlined, with trains
    stored by line: the same numbers as drawing everything, device by device."""
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


@pytest.mark.parametrize("name", ["pcm", "pcm-faulty-levels"])
def test_settled_pairs_near_their_refresh_equal_the_eager_copy_bit_for_bit(name: str) -> None:
    """Settled rows take the fused pass, which sets aside the pairs a block may refresh and
    applies them together in a vectorised pass, more than ``PENDING_LIMIT`` in a chunk of
    rows here: the numbers of the eager copy, refreshes included."""
    device = DEVICE_CASES[name]
    rows, cols = ROWS_PER_CHUNK + 8, 192  # a full chunk and a partial one
    arrays = random_state(device, rows, cols, seed=21, now=NOW)  # every device written now
    rng = np.random.default_rng(22)
    free = arrays.stuck == 0
    near = free & (rng.random(arrays.conductance.shape) < 0.8)
    threshold = device.refresh_threshold * arrays.bound_high
    arrays.conductance[near] = (threshold * rng.uniform(0.9, 1.0, threshold.shape))[near]
    up = rng.exponential(3.0, (rows, cols)).astype(np.float32)
    down = rng.exponential(3.0, (rows, cols)).astype(np.float32)
    up[rng.random(up.shape) < 0.02] = 70.0  # a few long blocks and large means
    p = device.physics().pack()
    new, eager = state_arrays(arrays), state_arrays(arrays)
    apply_fast_numba(up, down, *new, NOW, p, KEY)
    _eager_fast(up, down, *eager, NOW, p, KEY)
    np.testing.assert_array_equal(new[0], eager[0])
    np.testing.assert_array_equal(new[1], eager[1])
    refreshed = (new[0] == arrays.bound_low) & (arrays.conductance > 0.5 * arrays.bound_high)
    assert np.count_nonzero(refreshed[:, :ROWS_PER_CHUNK]) > PENDING_LIMIT


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


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_pulse_count_means_write_into_the_buffers_given(kernels: str) -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(17, 12)).astype(np.float32)
    d = rng.normal(size=(17, 9)).astype(np.float32)
    count_means = get_kernels(kernels).count_means
    fresh = count_means(x, d, 2.5)
    out = (np.full((12, 9), np.nan, np.float32), np.full((12, 9), np.nan, np.float32))
    written = count_means(x, d, 2.5, out=out)
    assert written[0] is out[0] and written[1] is out[1]
    for actual, expected in zip(out, fresh, strict=True):
        np.testing.assert_array_equal(actual, expected)


def test_a_tile_reuses_its_count_buffers_and_matches_fresh_ones() -> None:
    rng = np.random.default_rng(9)
    x = rng.random((8, 20), dtype=np.float32)
    d = rng.standard_normal((8, 6), dtype=np.float32)
    tiles = [analogsim.Chip(device=analogsim.devices.ReRAM(), seed=1).tile("t", 20, 6)
             for _ in range(2)]
    tiles[1]._count_buffers = lambda: None  # the second tile allocates fresh results
    for _ in range(3):
        for tile in tiles:
            tile.update(x, d, 0.01)
    first = tiles[0]._counts
    tiles[0].update(x, d, 0.01)
    tiles[1].update(x, d, 0.01)
    assert tiles[0]._counts is first and tiles[1]._counts is None
    np.testing.assert_array_equal(tiles[0].arrays.conductance, tiles[1].arrays.conductance)


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
def test_pulse_count_means_reject_bad_buffers_by_name(kernels: str) -> None:
    from analogsim.errors import ParameterError, ShapeError

    x = np.ones((4, 6), dtype=np.float32)
    d = np.ones((4, 3), dtype=np.float32)
    count_means = get_kernels(kernels).count_means
    good = np.empty((6, 3), dtype=np.float32)
    with pytest.raises(ParameterError, match=r"'out'.*pair of arrays"):
        count_means(x, d, 1.0, out=good)
    for bad in (np.empty((6, 3)), np.empty((3, 6), dtype=np.float32),
                np.empty((3, 6), dtype=np.float32).T):
        with pytest.raises(ShapeError, match=r"'out' arrays .*float32 arrays of shape \(6, 3\)"):
            count_means(x, d, 1.0, out=(good, bad))
