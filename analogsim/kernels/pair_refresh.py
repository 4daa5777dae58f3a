"""PCM pairs that a block may refresh, applied in a vectorised pass of their own.

The fused pass of a settled row (:func:`analogsim.kernels.fast_rows.fused_pair_row`) applies
a pair's two blocks together and flags the pair when a side ends past the refresh
threshold, because the scalar rule checks after each block and a refresh between them
changes the second. In training on PCM, about 1 % of the pairs are flagged at every update
once the array has been in use for a while (11 400 of a 1024x1024 tile after 200 updates of
``analogsim bench``'s workload). The scalar rule took about 400 ns a pair (its draws in
full, a called refresh, branches): 3.5-5 ms of a 21 ms update.

Here the flagged pairs with no stuck device are set aside (``set_aside``: position, hash
words, means, conductances, steps, bounds, into C-contiguous buffers), a few hundred from
several rows, and applied in one vectorised pass (``aside_pass``): each block in its order,
each followed by the refresh check and, where a side is past the threshold, the refresh's
read, reset and programming with the programming error of its counter, all with selects.
A pair whose counts or blocks the pass cannot finish (a large mean, a long inversion, a
block of 64 pulses or more) keeps its state and goes to the scalar rule. The numbers are
those of the scalar rule (``tests/kernels/test_kernel_pulsed_update.py``).
"""

from __future__ import annotations

import numba
import numpy as np

from analogsim.kernels._cpu_scalar import RNG, SI
from analogsim.kernels.counter_rng import F32
from analogsim.kernels.fast_rows import (
    FAST_SLOTS,
    HASH_WORDS,
    SLOT_REFRESH_DOWN,
    SLOT_REFRESH_UP,
    SMALL_LIMIT,
    draw_device,
    set_block,
)
from analogsim.kernels.physics import P_DW_STD, P_GAMMA_UP, P_REFRESH

_refreshed_pair = SI.refreshed_pair
_program_constants = SI.program_constants
_normal = RNG.normal
_STRIDE = np.uint64(FAST_SLOTS)
_I_ZERO = np.int32(0)
_SMALL_LIMIT = np.int32(SMALL_LIMIT)

#: Set-aside pairs gathered before they are applied: enough for the pass's vector lanes,
#: few enough that its buffers stay in the cache.
PENDING_LIMIT = 256

#: Rows of ``set_aside``'s float32 buffer: a pair's means, conductances, steps and bounds.
(A_MEAN_UP, A_MEAN_DOWN, A_G_PLUS, A_G_MINUS, A_STEP_PLUS, A_STEP_MINUS, A_LOW_PLUS,
 A_LOW_MINUS, A_HIGH_PLUS, A_HIGH_MINUS) = range(10)
ASIDE_VALUES = 10


@numba.njit(cache=True)
def set_aside(i, mean_up, mean_down, words, g_plus, g_minus, stuck_plus, stuck_minus,
              step_plus, step_minus, low_plus, low_minus, high_plus, high_minus, slow,
              aside_at, aside_words, aside_values, aside):
    """Move the flagged pairs of settled row ``i`` with no stuck device from ``slow`` to the
    set-aside buffers (position, hash words, the values the pass reads). Returns their new
    count and whether a pair is left flagged (one with a stuck device)."""
    left = False
    for j in range(slow.shape[0]):
        if not slow[j]:
            continue
        if stuck_plus[j] != 0 or stuck_minus[j] != 0:
            left = True
        else:
            aside_at[0, aside] = i
            aside_at[1, aside] = j
            for w in range(HASH_WORDS):
                aside_words[w, aside] = words[w, j]
            aside_values[A_MEAN_UP, aside] = mean_up[j]
            aside_values[A_MEAN_DOWN, aside] = mean_down[j]
            aside_values[A_G_PLUS, aside] = g_plus[j]
            aside_values[A_G_MINUS, aside] = g_minus[j]
            aside_values[A_STEP_PLUS, aside] = step_plus[j]
            aside_values[A_STEP_MINUS, aside] = step_minus[j]
            aside_values[A_LOW_PLUS, aside] = low_plus[j]
            aside_values[A_LOW_MINUS, aside] = low_minus[j]
            aside_values[A_HIGH_PLUS, aside] = high_plus[j]
            aside_values[A_HIGH_MINUS, aside] = high_minus[j]
            slow[j] = False
            aside += 1
    return aside, left


@numba.njit(cache=True, error_model="numpy")
def aside_pass(count, mean_up, mean_down, words, g_plus, g_minus, step_plus, step_minus,
               low_plus, low_minus, high_plus, high_minus, counters, key, p, done):
    """The set-aside pairs (settled, no device stuck), vectorised: both blocks in their
    order, each followed by the scalar rule's refresh check; ``g_plus`` and ``g_minus`` are
    changed in place. ``done[k]`` is False for a pair whose counts or blocks need the scalar
    rule (its values are then not to be used). The first ``count`` entries of each buffer;
    whole rows of the C-contiguous buffers are passed, as slices of them would compile to a
    strided loop that did not vectorise (measured: 142 ns a pair instead of 27)."""
    gamma, dw_std, threshold = F32(p[P_GAMMA_UP]), F32(p[P_DW_STD]), p[P_REFRESH]
    programming = _program_constants(p)
    for k in range(count):
        n_plus, n_minus, up_first, z_plus, z_minus, unfinished = draw_device(
            mean_up[k], mean_down[k], words, k)
        base = counters[k]
        g_plus[k], g_minus[k] = pair_sequence(
            g_plus[k], g_minus[k], step_plus[k], step_minus[k], low_plus[k], low_minus[k],
            high_plus[k], high_minus[k], n_plus, n_minus, up_first, z_plus, z_minus,
            _normal(key, base + SLOT_REFRESH_UP),
            _normal(key, base + SLOT_REFRESH_DOWN), gamma, dw_std, threshold,
            programming)
        done[k] = ~unfinished & (np.int32(n_plus | n_minus) < _SMALL_LIMIT)


@numba.njit(cache=True, error_model="numpy")
def apply_aside(conductance, written_at, aside_at, aside_words, aside_values, count, now, p,
                key, done):
    """Apply the ``count`` set-aside pairs (``aside_pass``) and write back those done."""
    cols = conductance.shape[2]
    counters = np.empty(count, dtype=np.uint64)
    for k in range(count):
        counters[k] = np.uint64(aside_at[0, k] * cols + aside_at[1, k]) * _STRIDE
    v = aside_values
    aside_pass(count, v[A_MEAN_UP], v[A_MEAN_DOWN], aside_words, v[A_G_PLUS], v[A_G_MINUS],
               v[A_STEP_PLUS], v[A_STEP_MINUS], v[A_LOW_PLUS], v[A_LOW_MINUS],
               v[A_HIGH_PLUS], v[A_HIGH_MINUS], counters, key, p, done)
    for k in range(count):
        if done[k]:  # both write times as the scalar rule leaves them: now
            i, j = aside_at[0, k], aside_at[1, k]
            conductance[0, i, j] = v[A_G_PLUS, k]
            conductance[1, i, j] = v[A_G_MINUS, k]
            written_at[0, i, j] = now
            written_at[1, i, j] = now


@numba.njit(inline="always", error_model="numpy")
def refresh_after(g_plus, g_minus, high_plus, high_minus, low_plus, low_minus, z_refresh,
                  threshold, programming):
    """The pair after ``device_rules.refresh_pair`` if a side is past the threshold (the
    pair settled, no device stuck): ``(g_plus, g_minus)``, float32. The settling of
    ``refresh_pair`` is a no-op here: every device of a settled row was written now."""
    over = ((np.float64(g_plus) > threshold * np.float64(high_plus))
            | (np.float64(g_minus) > threshold * np.float64(high_minus)))
    new_plus, new_minus = _refreshed_pair(g_plus, g_minus, low_plus, low_minus, high_plus,
                                          high_minus, z_refresh, programming)
    return (F32(new_plus) if over else g_plus), (F32(new_minus) if over else g_minus)


@numba.njit(inline="always", error_model="numpy")
def pair_turn(g_plus, g_minus, plus_turn, step_plus, step_minus, low_plus, low_minus,
              high_plus, high_minus, n_plus, n_minus, z_plus, z_minus, z_refresh_up,
              z_refresh_down, gamma, dw_std, threshold, programming):
    """One block of a settled pair with no stuck device, on G+ if ``plus_turn`` (the up
    block) or G-, followed by the refresh check of ``device_rules.pulse_device``: the
    scalar rule's arithmetic, with selects. A block of no pulses changes nothing."""
    n = n_plus if plus_turn else n_minus
    moved = set_block(g_plus if plus_turn else g_minus, n > _I_ZERO, n,
                      step_plus if plus_turn else step_minus,
                      low_plus if plus_turn else low_minus,
                      high_plus if plus_turn else high_minus,
                      z_plus if plus_turn else z_minus, gamma, dw_std)
    after_plus, after_minus = refresh_after(
        moved if plus_turn else g_plus, g_minus if plus_turn else moved, high_plus,
        high_minus, low_plus, low_minus, z_refresh_up if plus_turn else z_refresh_down,
        threshold, programming)
    return (after_plus if n > _I_ZERO else g_plus), (after_minus if n > _I_ZERO else g_minus)


@numba.njit(inline="always", error_model="numpy")
def pair_sequence(g_plus, g_minus, step_plus, step_minus, low_plus, low_minus, high_plus,
                  high_minus, n_plus, n_minus, up_first, z_plus, z_minus, z_refresh_up,
                  z_refresh_down, gamma, dw_std, threshold, programming):
    """Both blocks of a settled pair (``pair_turn``) in their order; blocks shorter than
    ``2**SMALL_BITS`` pulses. Written out twice, not as a loop: a loop left in the body
    kept the pass from vectorising."""
    g_plus, g_minus = pair_turn(
        g_plus, g_minus, up_first, step_plus, step_minus, low_plus, low_minus, high_plus,
        high_minus, n_plus, n_minus, z_plus, z_minus, z_refresh_up, z_refresh_down, gamma,
        dw_std, threshold, programming)
    return pair_turn(
        g_plus, g_minus, not up_first, step_plus, step_minus, low_plus, low_minus, high_plus,
        high_minus, n_plus, n_minus, z_plus, z_minus, z_refresh_up, z_refresh_down, gamma,
        dw_std, threshold, programming)
