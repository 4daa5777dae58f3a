"""The fast sampler's vectorised row passes (see :mod:`analogsim.kernels.pulsed_update`).

A row's hashes (``hash_row``), the draws of a device (``draw_device``, ``draw_row``), and the
blocks of a row of bidirectional devices (``element_row``) or PCM pairs (``pair_row``), the
draws and blocks together for a row with no drift to settle (``fused_element_row``,
``fused_pair_row``). Each is written with selects instead of branches over 32-bit lanes, so
that LLVM vectorises it; each gives the numbers of the scalar rules, which the tests check
bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np

from analogsim.kernels._cpu_scalar import RNG, SI
from analogsim.kernels.counter_rng import F32, F_ONE
from analogsim.kernels.physics import P_DW_STD, P_GAMMA_DOWN, P_GAMMA_UP, P_REFRESH
from analogsim.kernels.scalar import F_LIMIT, F_MINUS_ONE, F_ZERO

_hash64 = RNG.hash64
_normal_pair32_words = RNG.normal_pair32_words
_poisson_head = SI.poisson_head
_pulse_reach = SI.pulse_reach
_pulse_block = SI.pulse_block
_settled_after = SI.settled_after
_log_positive = SI.log_positive
_drift_constants = SI.drift_constants

#: Random numbers per device in the fast sampler: device ``e`` uses counters
#: ``FAST_SLOTS e + slot``. Drawn for every device: the hashes of its up and down counts
#: (bit 32 of the up count's is the order coin) and one normal pair (the cycle noise of its
#: up and its down block); drawn only where used: the normals of counts at or above the
#: inversion limit, and the programming errors of a refresh after the up or the down block.
FAST_SLOTS = 7
(SLOT_UP, SLOT_DOWN, SLOT_NOISE, SLOT_LARGE_UP, SLOT_LARGE_DOWN, SLOT_REFRESH_UP,
 SLOT_REFRESH_DOWN) = (np.uint64(k) for k in range(FAST_SLOTS))
_STRIDE = np.uint64(FAST_SLOTS)
_SHIFT_32 = np.uint64(32)
_LOW_32 = np.uint64(0xFFFFFFFF)
_U_ZERO, _U_ONE = np.uint32(0), np.uint32(1)
#: Hash words of a device in a row's buffer: the high and low halves of its up-count,
#: down-count and noise hashes (``hash_row``).
HASH_WORDS = 6
#: The vectorised pass applies blocks of fewer than ``2**SMALL_BITS`` pulses (``pulse_sums``
#: unrolled over that many bits); longer ones go to the scalar rule.
SMALL_BITS = 6
SMALL_LIMIT = 1 << SMALL_BITS
_BITS = np.array([1 << bit for bit in range(SMALL_BITS)], dtype=np.int32)
_I_ZERO = np.int32(0)
_SMALL_LIMIT = np.int32(SMALL_LIMIT)


@numba.njit(cache=True)
def hash_row(key, first, words):
    """The three hashes of each device of a row (counters ``FAST_SLOTS e + SLOT_UP``,
    ``SLOT_DOWN``, ``SLOT_NOISE``), split into uint32 halves: ``words[2 k]`` the high,
    ``words[2 k + 1]`` the low half of hash ``k``. A pass of its own, because its 64-bit
    integers run 8 lanes of AVX-512 and the draws and blocks that read the words run 16
    (together, all ran 8: the ReRAM pass took 11.2 ms at 1024x1024 instead of 9.3)."""
    for j in range(words.shape[1]):
        base = (first + np.uint64(j)) * _STRIDE
        bits = _hash64(key, base + SLOT_UP)
        words[0, j], words[1, j] = np.uint32(bits >> _SHIFT_32), np.uint32(bits & _LOW_32)
        bits = _hash64(key, base + SLOT_DOWN)
        words[2, j], words[3, j] = np.uint32(bits >> _SHIFT_32), np.uint32(bits & _LOW_32)
        bits = _hash64(key, base + SLOT_NOISE)
        words[4, j], words[5, j] = np.uint32(bits >> _SHIFT_32), np.uint32(bits & _LOW_32)


@numba.njit(inline="always", error_model="numpy")
def draw_device(m_up, m_down, words, j):
    """The random part of device ``j`` of a row, from its hash words: its up and down
    counts (``poisson_head``), the order of its blocks (bit 32 of the up count's hash, up
    first when set), the cycle noise of its two blocks (one float32 normal pair), and
    whether its counts need ``poisson_count`` itself (``unfinished``)."""
    n_up, long_up = _poisson_head(m_up, words[0, j], words[1, j])
    n_down, long_down = _poisson_head(m_down, words[2, j], words[3, j])
    up_first = (words[0, j] & _U_ONE) != _U_ZERO
    z_up, z_down = _normal_pair32_words(words[4, j], words[5, j])
    unfinished = long_up | long_down | (m_up >= F_LIMIT) | (m_down >= F_LIMIT)
    return n_up, n_down, up_first, z_up, z_down, unfinished


@numba.njit(cache=True, error_model="numpy")
def draw_row(mean_up, mean_down, words, counts, z, up_first, slow):
    """The random part of a row (``draw_device`` of each), vectorised, into the row
    buffers; ``slow`` flags the devices whose counts need ``poisson_count`` itself."""
    for j in range(mean_up.shape[0]):
        n_up, n_down, up_first[j], z[0, j], z[1, j], slow[j] = draw_device(
            mean_up[j], mean_down[j], words, j)
        counts[0, j] = n_up
        counts[1, j] = n_down


@numba.njit(inline="always", error_model="numpy")
def sums_small(ratio, n):
    """``pulse_sums(ratio, n)`` for ``0 <= n < 2**SMALL_BITS``, unrolled over the bits with
    selects: the same products, so the same float32 values."""
    decay = F_ONE
    total = F_ZERO
    power = ratio
    span = F_ONE
    count = np.int32(n)
    for bit in range(SMALL_BITS):
        on = np.int32(count & _BITS[bit]) != _I_ZERO  # int32 lanes (the cast narrows)
        total = total + decay * span if on else total
        decay = decay * power if on else decay
        span = span * (F_ONE + power)
        power = power * power
    return decay, total


@numba.njit(inline="always", error_model="numpy")
def element_block(g, going_up, n, lo, hi, step_u, step_d, reach_u, reach_d, z_up, z_down,
                  dw_std):
    """One block of a bidirectional device, up or down as ``going_up`` selects: the scalar
    rule's float32 arithmetic, with selects instead of branches. A block of no pulses leaves
    the conductance as it was."""
    reach = reach_u if going_up else reach_d
    decay, total = sums_small(F_ONE - reach, n)
    moved = _pulse_block(g, step_u if going_up else step_d, F_ONE if going_up else F_MINUS_ONE,
                         lo, hi, reach, decay, total, z_up if going_up else z_down, dw_std)
    return moved if n > _I_ZERO else g


@numba.njit(inline="always", error_model="numpy")
def element_blocks(start, lo, hi, step_u, step_d, n_up, n_down, up_first, z_up, z_down,
                   gamma_up, gamma_down, dw_std):
    """Both blocks of one bidirectional device (P = 1), in its order."""
    reach_u = _pulse_reach(step_u, F_ONE, hi, gamma_up)
    reach_d = _pulse_reach(step_d, F_MINUS_ONE, lo, gamma_down)
    middle = element_block(start, up_first, n_up if up_first else n_down, lo, hi, step_u,
                           step_d, reach_u, reach_d, z_up, z_down, dw_std)
    return element_block(middle, not up_first, n_down if up_first else n_up, lo, hi, step_u,
                         step_d, reach_u, reach_d, z_up, z_down, dw_std)


@numba.njit(cache=True, error_model="numpy")
def element_row(g, stuck, step_up, step_down, low, high, counts, up_first, z, p, slow):
    """One row of bidirectional devices (P = 1) from the row buffers of ``draw_row``:
    ``element_blocks`` of every device, vectorised.

    Arrays are the row's; ``g`` is changed in place. A stuck device keeps its conductance.
    Devices flagged ``slow`` (on entry, or here for a block of ``2**SMALL_BITS`` pulses or
    more) keep their state for the caller.
    """
    gamma_up, gamma_down = F32(p[P_GAMMA_UP]), F32(p[P_GAMMA_DOWN])
    dw_std = F32(p[P_DW_STD])
    for j in range(g.shape[0]):
        n_up, n_down = counts[0, j], counts[1, j]
        start = g[j]
        end = element_blocks(start, low[j], high[j], step_up[j], step_down[j], n_up, n_down,
                             up_first[j], z[0, j], z[1, j], gamma_up, gamma_down, dw_std)
        flagged = (slow[j] | (np.int32(n_up | n_down) >= _SMALL_LIMIT)) & (stuck[j] == 0)
        slow[j] = flagged
        g[j] = end if (stuck[j] == 0) & ~flagged else start


@numba.njit(cache=True, error_model="numpy")
def fused_element_row(mean_up, mean_down, words, g, stuck, step_up, step_down, low, high, p,
                      slow):
    """``draw_row`` and ``element_row`` in one vectorised pass, for a row with no drift to
    settle: the same numbers, without the row buffers in between."""
    gamma_up, gamma_down = F32(p[P_GAMMA_UP]), F32(p[P_GAMMA_DOWN])
    dw_std = F32(p[P_DW_STD])
    for j in range(g.shape[0]):
        n_up, n_down, up_first, z_up, z_down, unfinished = draw_device(
            mean_up[j], mean_down[j], words, j)
        start = g[j]
        end = element_blocks(start, low[j], high[j], step_up[j], step_down[j], n_up, n_down,
                             up_first, z_up, z_down, gamma_up, gamma_down, dw_std)
        flagged = (unfinished | (np.int32(n_up | n_down) >= _SMALL_LIMIT)) & (stuck[j] == 0)
        slow[j] = flagged
        g[j] = end if (stuck[j] == 0) & ~flagged else start


@numba.njit(inline="always", error_model="numpy")
def set_block(start, run, n, step, low, high, z, gamma, dw_std):
    """``n`` SET pulses on one device of a PCM pair, float32, never lowering it; the device
    as it was unless ``run``."""
    reach = _pulse_reach(step, F_ONE, high, gamma)
    decay, total = sums_small(F_ONE - reach, n)
    moved = max(_pulse_block(start, step, F_ONE, low, high, reach, decay, total, z, dw_std),
                start)
    return moved if run else start


@numba.njit(inline="always", error_model="numpy")
def pair_blocks(start_plus, start_minus, free_plus, free_minus, step_plus, step_minus,
                low_plus, low_minus, high_plus, high_minus, n_plus, n_minus, z_plus, z_minus,
                gamma, dw_std, threshold):
    """SET pulses on both devices of one PCM pair (P = 2): ``(end_plus, end_minus,
    refresh)``, ``refresh`` when a checked side ends past the refresh threshold (the pair's
    blocks may then not be applied together)."""
    run_plus = (n_plus > _I_ZERO) & free_plus
    run_minus = (n_minus > _I_ZERO) & free_minus
    end_plus = set_block(start_plus, run_plus, n_plus, step_plus, low_plus, high_plus, z_plus,
                         gamma, dw_std)
    end_minus = set_block(start_minus, run_minus, n_minus, step_minus, low_minus, high_minus,
                          z_minus, gamma, dw_std)
    checked = (run_plus & free_minus) | (run_minus & free_plus)
    over = ((np.float64(end_plus) > threshold * np.float64(high_plus))
            | (np.float64(end_minus) > threshold * np.float64(high_minus)))
    return end_plus, end_minus, checked & over


@numba.njit(cache=True, error_model="numpy")
def pair_row(g_plus, g_minus, stuck_plus, stuck_minus, step_plus, step_minus, low_plus,
             low_minus, high_plus, high_minus, counts, z, p, slow):
    """One row of PCM pairs (P = 2) from the row buffers of ``draw_row``: ``pair_blocks``
    of every pair, vectorised. The two blocks of a pair touch different devices, so their
    order matters only through a refresh; a pair that one of them may have refreshed keeps
    its state and is flagged ``slow`` for the caller, as are long blocks and pairs flagged
    on entry."""
    gamma, dw_std, threshold = F32(p[P_GAMMA_UP]), F32(p[P_DW_STD]), p[P_REFRESH]
    for j in range(g_plus.shape[0]):
        start_plus, start_minus = g_plus[j], g_minus[j]
        free_plus, free_minus = stuck_plus[j] == 0, stuck_minus[j] == 0
        n_plus, n_minus = counts[0, j], counts[1, j]
        end_plus, end_minus, refresh = pair_blocks(
            start_plus, start_minus, free_plus, free_minus, step_plus[j], step_minus[j],
            low_plus[j], low_minus[j], high_plus[j], high_minus[j], n_plus, n_minus, z[0, j],
            z[1, j], gamma, dw_std, threshold)
        flagged = (slow[j] | (np.int32(n_plus | n_minus) >= _SMALL_LIMIT) | refresh) & (
            ((n_plus > 0) & free_plus) | ((n_minus > 0) & free_minus))
        slow[j] = flagged
        g_plus[j] = start_plus if flagged else end_plus
        g_minus[j] = start_minus if flagged else end_minus


@numba.njit(cache=True, error_model="numpy")
def fused_pair_row(mean_up, mean_down, words, g_plus, g_minus, stuck_plus, stuck_minus,
                   step_plus, step_minus, low_plus, low_minus, high_plus, high_minus, p, slow):
    """``draw_row`` and ``pair_row`` in one vectorised pass, for a row with no drift to
    settle: the same numbers, without the row buffers in between."""
    gamma, dw_std, threshold = F32(p[P_GAMMA_UP]), F32(p[P_DW_STD]), p[P_REFRESH]
    for j in range(g_plus.shape[0]):
        n_plus, n_minus, _, z_plus, z_minus, unfinished = draw_device(
            mean_up[j], mean_down[j], words, j)
        start_plus, start_minus = g_plus[j], g_minus[j]
        free_plus, free_minus = stuck_plus[j] == 0, stuck_minus[j] == 0
        end_plus, end_minus, refresh = pair_blocks(
            start_plus, start_minus, free_plus, free_minus, step_plus[j], step_minus[j],
            low_plus[j], low_minus[j], high_plus[j], high_minus[j], n_plus, n_minus, z_plus,
            z_minus, gamma, dw_std, threshold)
        # An unfinished draw's head counts are not its counts: always the scalar rule.
        flagged = unfinished | (((np.int32(n_plus | n_minus) >= _SMALL_LIMIT) | refresh) & (
            ((n_plus > _I_ZERO) & free_plus) | ((n_minus > _I_ZERO) & free_minus)))
        slow[j] = flagged
        g_plus[j] = start_plus if flagged else end_plus
        g_minus[j] = start_minus if flagged else end_minus


@numba.njit(cache=True, error_model="numpy")
def settle_line(g_line, t_line, xi_line, stuck_line, counts_a, counts_b, now, p, due):
    """Fold the drift since their last write into the devices of one line that this update
    pulses (``counts_a | counts_b > 0``), are not stuck and were not written at ``now``;
    restart their clocks. ``due`` receives which devices were settled.

    The rule of ``device_rules.settle`` (``scalar.settled_value``: selects and polynomials),
    so the numbers are the scalar rule's. The due devices are gathered into buffers first and
    settled in one vectorised pass over the buffers: about 12 ns a due device at float64's 8
    lanes, against about 30 ns for libm's ``log`` and ``pow`` and 70-90 ns for the
    polynomials one device at a time (the first update after a clock step settles nearly
    every device of a line, the next ones only those the first left unpulsed)."""
    n = g_line.shape[0]
    at = np.empty(n, dtype=np.int64)
    count = 0
    for j in range(n):  # a compaction: its running count keeps it scalar, about 1 ns a device
        settle = (((counts_a[j] | counts_b[j]) > _I_ZERO) & (stuck_line[j] == 0)
                  & (t_line[j] != now))
        due[j] = settle
        at[count] = j
        count += np.int64(settle)
    if count == 0:
        return
    g = np.empty(count)
    elapsed = np.empty(count)
    xi = np.empty(count)
    for k in range(count):
        j = at[k]
        g[k] = g_line[j]
        elapsed[k] = now - t_line[j]
        xi[k] = xi_line[j]
    constants = _drift_constants(p)
    t0 = constants[1]
    one_time = True
    for k in range(count):
        one_time &= elapsed[k] == elapsed[0]
    # All written at one time (a clock step after training): one log for all of them. One
    # loop for both cases, since each inlined copy of the polynomials costs seconds to compile.
    log_ratio = np.empty(count)
    for k in range(1 if one_time else count):
        log_ratio[k] = _log_positive((elapsed[k] + t0) / t0)
    if one_time:
        log_ratio[1:] = log_ratio[0]
    for k in range(count):
        g[k] = _settled_after(g[k], elapsed[k], log_ratio[k], xi[k], constants)
    for k in range(count):
        j = at[k]
        if elapsed[k] > 0.0:
            g_line[j] = g[k]
        t_line[j] = now
