"""The pulsed outer-product update ``W <- W - lr x^T d`` applied as device pulses.

Two samplers (Gokmen & Vlasov, Front. Neurosci. 10:333, 2016):

``exact``
    Each sample drives stochastic pulse trains of length BL: input j fires in each slot with
    probability ``p_x = c |x_j|``, error i with ``p_d = c |d_i|``; a device sees a pulse where
    both fire, so it receives ``popcount(bits_x & bits_d) ~ Binomial(BL, p_x p_d)`` pulses of
    sign ``-sign(x_j d_i)``, sample after sample.
``fast`` (default)
    The whole batch at once: the expected up and down counts of every device come from two
    matmuls, ``|x|^T |d|`` and ``x^T d`` (up = (A - S) / 2, down = (A + S) / 2, in pulses), and
    each device draws its counts as Poisson variables with those means. The means are exactly
    those of the exact sampler (before its per-sample cap of BL pulses); the variance is the
    Poisson one, larger than the exact ``sum_b BL p_b (1 - p_b)`` by ``BL sum_b p_b^2``, which
    is small when the per-slot coincidence probabilities are. Up and down pulses of one device
    are applied as two blocks in a random order, each block in closed form; the cycle-to-cycle
    noise of ``n`` pulses (each step multiplied by ``1 + dw_min_std xi``) is drawn as one normal
    with the std of their sum.

Both samplers share ``pulse_device`` (:mod:`analogsim.kernels.device_rules`, the same source
as the CUDA kernels'), which applies ``n`` pulses of one sign to one weight: drift since the
last write is folded in first (the device restarts its drift clock), stuck devices ignore
pulses, a PCM pair (unipolar SET on G+ or G-, never lowering the device) is refreshed when one
side passes ``refresh_threshold`` of its maximum (not when either device of the pair is
stuck). A block is ``scalar.pulse_block``, in float32 (the precision the conductances are
stored in): the first step times the geometric sum of the step ratios, both powers and sum
by binary powering (``scalar.pulse_sums``), no ``pow``. It was float64 until the fast
sampler's vectorised pass showed its divisions and square roots cost half of the pass:
float32 runs twice the lanes, and the sum form keeps a weakly bounded device's digits.

Random numbers of the fast sampler (counters in :data:`FAST_SLOTS`): a count below
``POISSON_INVERSION_LIMIT`` is exact Poisson from one 64-bit hash
(``scalar.poisson_count``): ``Poisson(M + f) = Poisson(M) + Poisson(f)``, the whole part
``M`` from a Walker alias table (one table look-up), the fraction ``f < 1`` by inversion
in float32 (a few terms; no ``exp`` call, a polynomial); a larger mean takes the rounded
normal. The two cycle-noise normals are one float32 Box-Muller pair (``normal_pair32``;
they scale a noise whose std is itself a float32-sized fraction of a step, and float32
doubles the vectorised lanes). Every random number has a fixed counter, so
the order and the place in which a kernel draws them does not change its results.

The CPU fast sampler works a row of devices at a time, in passes that LLVM vectorises
(AVX-512 on the machine of ``benchmarks/README.md``). A first pass writes the three hashes
of each device into a row buffer of uint32 halves (``_hash_row``), so that everything after
it runs on 32-bit lanes: 16 a vector, not the 8 of 64-bit integers. A row none of whose
devices has drifted since its last write (a vectorised check of the write times, skipped
when the caller passes ``settled=True``: in training without a clock step, every row) then
takes one pass that draws each device's counts, order coin and noise (``poisson_head``: the
inversion unrolled to 6 terms) and applies both its blocks with selects instead of branches
(``pulse_sums`` unrolled over 6 bits). A row with drift takes three: the draws into row
buffers, a scalar loop that settles the drift of the devices about to be pulsed, the
blocks. (One pass instead of three saved about 2 ms of the 13 ms
ReRAM pass at 1024x1024; the branching settle loop cost about 2 ms of an 18 ms pass when it
ran for every row.) The rare devices the passes cannot finish (a mean past the limit, an
inversion past 6 terms, a block of 64 pulses or more, a PCM pair that may be refreshed) are
flagged, keep their state, and are drawn again in full and applied with the scalar rules:
the results are bit for bit those of applying every device one block at a time
(``tests/kernels/test_kernel_pulsed_update.py``). Times are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import numba
import numpy as np

from analogsim.errors import ParameterError, ShapeError
from analogsim.kernels._cpu_scalar import RNG, RULES, SI, S
from analogsim.kernels.counter_rng import F32, F_ONE
from analogsim.kernels.physics import P_DW_STD, P_GAMMA_DOWN, P_GAMMA_UP, P_REFRESH
from analogsim.kernels.scalar import F_LIMIT, F_MINUS_ONE, F_ZERO, POISSON_INVERSION_LIMIT

_normal = S.normal
_popcount = S.popcount
_poisson_count = S.poisson_count
_hash64_call = S.hash64
_pulse_device = RULES.pulse_device
_settle = RULES.settle
_uniform = S.uniform
_hash64 = RNG.hash64
_normal_pair32_words = RNG.normal_pair32_words
_poisson_head = SI.poisson_head
_pulse_reach = SI.pulse_reach
_pulse_block = SI.pulse_block

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
#: down-count and noise hashes (``_hash_row``).
HASH_WORDS = 6
#: The vectorised pass applies blocks of fewer than ``2**SMALL_BITS`` pulses (``pulse_sums``
#: unrolled over that many bits); longer ones go to the scalar rule.
SMALL_BITS = 6
SMALL_LIMIT = 1 << SMALL_BITS
_BITS = np.array([1 << bit for bit in range(SMALL_BITS)], dtype=np.int32)
_I_ZERO = np.int32(0)
_SMALL_LIMIT = np.int32(SMALL_LIMIT)
_COUNT_CAP = np.iinfo(np.int32).max


def pulse_count_means(x, d, pulses_per_unit, out=None):
    """Expected up and down pulse counts of every device over a batch, from two matmuls.

    Parameters
    ----------
    x : (B, R) float32 inputs; d : (B, C) float32 errors.
    pulses_per_unit : float
        Nominal pulses per unit of ``|x_j d_i|`` (``lr / (weight_scale * dw_min)``).
    out : pair of (R, C) float32 C-contiguous arrays, optional
        Where to write ``(up, down)``. A tile passes the same two buffers at every update:
        fresh 4 MB results can come from fresh pages of the operating system, whose first
        touch cost about 3 ms of the 25 ms of a 1024x1024 update (measured, ~1500 page
        faults a call).

    Returns
    -------
    (up, down): two (R, C) float32 arrays (``out`` when given), the values of
    :func:`~analogsim.kernels.pulsed_update_numpy.pulse_count_means_numpy`, split from the
    two matmul products in one compiled pass, in place.
    """
    if out is None:
        magnitude = np.abs(x).T @ np.abs(d)
        signed = x.T @ d
    else:
        check_count_buffers("pulse_count_means", out, (x.shape[1], d.shape[1]))
        magnitude, signed = out
        np.matmul(np.abs(x).T, np.abs(d), out=magnitude)
        np.matmul(x.T, d, out=signed)
    split_counts_numba(magnitude, signed, np.float32(0.5 * pulses_per_unit))
    return magnitude, signed


def check_count_buffers(owner: str, out: object, shape: tuple[int, int]) -> None:
    """Raise unless ``out`` is a pair of C-contiguous float32 arrays of ``shape`` (the
    ``out`` of the ``count_means`` kernels; NumPy or CuPy arrays)."""
    if not (isinstance(out, tuple | list) and len(out) == 2):
        raise ParameterError(f"The 'out' argument of {owner} must be a pair of arrays "
                             f"(up, down). Got {type(out).__name__} instead.")
    for array in out:
        good = (getattr(array, "dtype", None) == np.float32
                and tuple(getattr(array, "shape", ())) == tuple(shape)
                and array.flags.c_contiguous)
        if not good:
            raise ShapeError(
                f"The 'out' arrays of {owner} must be C-contiguous float32 arrays of shape "
                f"{tuple(shape)}. Got {getattr(array, 'dtype', type(array).__name__)} of "
                f"shape {tuple(getattr(array, 'shape', ()))} instead.")


@numba.njit(parallel=True, cache=True)
def split_counts_numba(magnitude, signed, half):
    """``up = max((A - S) half, 0)`` into ``magnitude``, ``down = max((A + S) half, 0)`` into
    ``signed``; float32 arithmetic, as NumPy's."""
    rows, cols = magnitude.shape
    zero = np.float32(0.0)
    for i in numba.prange(rows):
        for j in range(cols):
            total, net = magnitude[i, j], signed[i, j]
            magnitude[i, j] = max((total - net) * half, zero)
            signed[i, j] = max((total + net) * half, zero)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def apply_fast_numba(mean_up, mean_down, conductance, written_at, drift_xi, stuck, step_up,
                     step_down, bound_low, bound_high, now, p, key, settled=False):
    """Fast sampler: Poisson counts from the (R, C) means, then the pulses of each device.

    ``settled=True`` is the caller's promise that every device that is not stuck was last
    written at ``now`` (a tile knows it from its last program or update at this time): the
    rows' write times are then not read. (They are 8 bytes a device, read from memory: about
    1 ms of a 1024x1024 ReRAM update, 2 ms for PCM's two devices.) The results are the same.

    Row by row (see the module docstring). A row none of whose devices has drifted since
    its last write (no clock step in between: every row in training without one) takes one
    vectorised pass that draws every device's counts, order and cycle noise and applies
    both its blocks. Any other row takes three: the draws, a loop that settles the drift of
    the devices about to be pulsed, the blocks. The few devices flagged on the way (a large
    mean, a long inversion, a long block, a possible refresh) keep their state and are
    redone one block at a time with the scalar rule, which gives the same numbers.
    """
    rows, cols = mean_up.shape
    pairs = conductance.shape[0] == 2
    for i in numba.prange(rows):
        first = np.uint64(i * cols)
        slow = np.empty(cols, dtype=np.bool_)
        words = np.empty((HASH_WORDS, cols), dtype=np.uint32)
        _hash_row(key, first, words)
        stale_plus = not settled and _any_stale(written_at[0, i], now)
        stale_minus = not settled and pairs and _any_stale(written_at[1, i], now)
        if not (stale_plus or stale_minus):
            if pairs:
                _fused_pair_row(
                    mean_up[i], mean_down[i], words, conductance[0, i], conductance[1, i],
                    stuck[0, i], stuck[1, i], step_up[0, i], step_up[1, i], bound_low[0, i],
                    bound_low[1, i], bound_high[0, i], bound_high[1, i], p, slow)
            else:
                _fused_element_row(
                    mean_up[i], mean_down[i], words, conductance[0, i], stuck[0, i],
                    step_up[0, i], step_down[0, i], bound_low[0, i], bound_high[0, i], p, slow)
        else:
            _drifted_row(mean_up, mean_down, words, conductance, written_at, drift_xi, stuck,
                         step_up, step_down, bound_low, bound_high, now, p, key, i, stale_plus,
                         stale_minus, slow)
        for j in range(cols):
            if slow[j]:  # rare: draw in full and apply the two blocks with the scalar rule
                base = (first + np.uint64(j)) * _STRIDE
                n_up = _full_count(np.float64(mean_up[i, j]), key, base + SLOT_UP,
                                   base + SLOT_LARGE_UP)
                n_down = _full_count(np.float64(mean_down[i, j]), key, base + SLOT_DOWN,
                                     base + SLOT_LARGE_DOWN)
                up_first = (words[0, j] & _U_ONE) != _U_ZERO
                z_up, z_down = _normal_pair32_words(words[4, j], words[5, j])
                for turn in range(2):
                    if (turn == 0) == up_first:
                        _pulse_device(conductance, written_at, drift_xi, stuck, step_up,
                                      step_down, bound_low, bound_high, i, j, n_up, True, z_up,
                                      key, base + SLOT_REFRESH_UP, now, p)
                    else:
                        _pulse_device(conductance, written_at, drift_xi, stuck, step_up,
                                      step_down, bound_low, bound_high, i, j, n_down, False,
                                      z_down, key, base + SLOT_REFRESH_DOWN, now, p)


@numba.njit(cache=True, error_model="numpy")
def _drifted_row(mean_up, mean_down, words, conductance, written_at, drift_xi, stuck, step_up,
                 step_down, bound_low, bound_high, now, p, key, i, stale_plus, stale_minus,
                 slow):
    """Row ``i`` when a device of it has drifted since its last write: the draws, then the
    drift of the devices about to be pulsed settled (a branching loop), then the blocks;
    ``slow`` flags the devices left to the scalar rule, their state kept."""
    cols = mean_up.shape[1]
    first = np.uint64(i * cols)
    # int32 counts keep the block loops on 32-bit lanes (measured 10.7 -> 8.3 ms a 1024x1024
    # ReRAM pass with int64); a flagged device's count here only decides whether it is
    # settled and flagged, so it is capped, not wrapped (its blocks use the full count).
    counts = np.empty((2, cols), dtype=np.int32)
    z = np.empty((2, cols), dtype=np.float32)
    up_first = np.empty(cols, dtype=np.bool_)
    _draw_row(mean_up[i], mean_down[i], words, counts, z, up_first, slow)
    for j in range(cols):
        if slow[j]:  # rare: the full counts decide which devices are settled
            base = (first + np.uint64(j)) * _STRIDE
            counts[0, j] = min(_full_count(np.float64(mean_up[i, j]), key, base + SLOT_UP,
                                           base + SLOT_LARGE_UP), _COUNT_CAP)
            counts[1, j] = min(_full_count(np.float64(mean_down[i, j]), key,
                                           base + SLOT_DOWN, base + SLOT_LARGE_DOWN),
                               _COUNT_CAP)
    if conductance.shape[0] == 1:
        for j in range(cols):
            if ((counts[0, j] | counts[1, j]) > 0 and stuck[0, i, j] == 0
                    and written_at[0, i, j] != now):
                _settle(conductance, written_at, drift_xi, 0, i, j, now, p)
        _element_row(conductance[0, i], stuck[0, i], step_up[0, i], step_down[0, i],
                     bound_low[0, i], bound_high[0, i], counts, up_first, z, p, slow)
        return
    # A refresh check sees the other side as stored, before its own block settles it: a
    # pair whose settled side was past the threshold goes to the scalar rule, from its
    # state as it was.
    raw = np.empty((2, cols))
    raw_time = np.empty((2, cols))
    settled = np.zeros((2, cols), dtype=np.bool_)
    threshold = p[P_REFRESH]
    stale = (stale_plus, stale_minus)
    for side in range(2):
        if not stale[side]:
            continue
        for j in range(cols):
            if (counts[side, j] > 0 and stuck[side, i, j] == 0
                    and written_at[side, i, j] != now):
                raw[side, j] = conductance[side, i, j]
                raw_time[side, j] = written_at[side, i, j]
                settled[side, j] = True
                if raw[side, j] > threshold * np.float64(bound_high[side, i, j]):
                    slow[j] = True
                _settle(conductance, written_at, drift_xi, side, i, j, now, p)
    _pair_row(conductance[0, i], conductance[1, i], stuck[0, i], stuck[1, i], step_up[0, i],
              step_up[1, i], bound_low[0, i], bound_low[1, i], bound_high[0, i],
              bound_high[1, i], counts, z, p, slow)
    for side in range(2):
        if not stale[side]:
            continue  # nothing of this side was settled
        for j in range(cols):
            if slow[j] and settled[side, j]:
                conductance[side, i, j] = raw[side, j]
                written_at[side, i, j] = raw_time[side, j]


@numba.njit(cache=True)
def _any_stale(written_at, now):
    """Whether a device of the row was last written before ``now`` (a drift to settle):
    one vectorised pass, so that a row with none skips the branching loop."""
    stale = False
    for j in range(written_at.shape[0]):
        stale |= written_at[j] != now
    return stale


@numba.njit(cache=True)
def _full_count(mean, key, counter, normal_counter):
    """``poisson_count`` of ``mean`` from its hash, the normal drawn only when used."""
    z = _normal(key, normal_counter) if mean >= POISSON_INVERSION_LIMIT else 0.0
    return _poisson_count(mean, _hash64_call(key, counter), z)


@numba.njit(cache=True)
def _hash_row(key, first, words):
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
def _draw_device(m_up, m_down, words, j):
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
def _draw_row(mean_up, mean_down, words, counts, z, up_first, slow):
    """The random part of a row (``_draw_device`` of each), vectorised, into the row
    buffers; ``slow`` flags the devices whose counts need ``poisson_count`` itself."""
    for j in range(mean_up.shape[0]):
        n_up, n_down, up_first[j], z[0, j], z[1, j], slow[j] = _draw_device(
            mean_up[j], mean_down[j], words, j)
        counts[0, j] = n_up
        counts[1, j] = n_down


@numba.njit(inline="always", error_model="numpy")
def _sums_small(ratio, n):
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
def _element_block(g, going_up, n, lo, hi, step_u, step_d, reach_u, reach_d, z_up, z_down,
                   dw_std):
    """One block of a bidirectional device, up or down as ``going_up`` selects: the scalar
    rule's float32 arithmetic, with selects instead of branches. A block of no pulses leaves
    the conductance as it was."""
    reach = reach_u if going_up else reach_d
    decay, total = _sums_small(F_ONE - reach, n)
    moved = _pulse_block(g, step_u if going_up else step_d, F_ONE if going_up else F_MINUS_ONE,
                         lo, hi, reach, decay, total, z_up if going_up else z_down, dw_std)
    return moved if n > _I_ZERO else g


@numba.njit(inline="always", error_model="numpy")
def _element_blocks(start, lo, hi, step_u, step_d, n_up, n_down, up_first, z_up, z_down,
                    gamma_up, gamma_down, dw_std):
    """Both blocks of one bidirectional device (P = 1), in its order."""
    reach_u = _pulse_reach(step_u, F_ONE, hi, gamma_up)
    reach_d = _pulse_reach(step_d, F_MINUS_ONE, lo, gamma_down)
    middle = _element_block(start, up_first, n_up if up_first else n_down, lo, hi, step_u,
                            step_d, reach_u, reach_d, z_up, z_down, dw_std)
    return _element_block(middle, not up_first, n_down if up_first else n_up, lo, hi, step_u,
                          step_d, reach_u, reach_d, z_up, z_down, dw_std)


@numba.njit(cache=True, error_model="numpy")
def _element_row(g, stuck, step_up, step_down, low, high, counts, up_first, z, p, slow):
    """One row of bidirectional devices (P = 1) from the row buffers of ``_draw_row``:
    ``_element_blocks`` of every device, vectorised.

    Arrays are the row's; ``g`` is changed in place. A stuck device keeps its conductance.
    Devices flagged ``slow`` (on entry, or here for a block of ``2**SMALL_BITS`` pulses or
    more) keep their state for the caller.
    """
    gamma_up, gamma_down = F32(p[P_GAMMA_UP]), F32(p[P_GAMMA_DOWN])
    dw_std = F32(p[P_DW_STD])
    for j in range(g.shape[0]):
        n_up, n_down = counts[0, j], counts[1, j]
        start = g[j]
        end = _element_blocks(start, low[j], high[j], step_up[j], step_down[j], n_up, n_down,
                              up_first[j], z[0, j], z[1, j], gamma_up, gamma_down, dw_std)
        flagged = (slow[j] | (np.int32(n_up | n_down) >= _SMALL_LIMIT)) & (stuck[j] == 0)
        slow[j] = flagged
        g[j] = end if (stuck[j] == 0) & ~flagged else start


@numba.njit(cache=True, error_model="numpy")
def _fused_element_row(mean_up, mean_down, words, g, stuck, step_up, step_down, low, high, p,
                       slow):
    """``_draw_row`` and ``_element_row`` in one vectorised pass, for a row with no drift to
    settle: the same numbers, without the row buffers in between."""
    gamma_up, gamma_down = F32(p[P_GAMMA_UP]), F32(p[P_GAMMA_DOWN])
    dw_std = F32(p[P_DW_STD])
    for j in range(g.shape[0]):
        n_up, n_down, up_first, z_up, z_down, unfinished = _draw_device(
            mean_up[j], mean_down[j], words, j)
        start = g[j]
        end = _element_blocks(start, low[j], high[j], step_up[j], step_down[j], n_up, n_down,
                              up_first, z_up, z_down, gamma_up, gamma_down, dw_std)
        flagged = (unfinished | (np.int32(n_up | n_down) >= _SMALL_LIMIT)) & (stuck[j] == 0)
        slow[j] = flagged
        g[j] = end if (stuck[j] == 0) & ~flagged else start


@numba.njit(inline="always", error_model="numpy")
def _set_block(start, run, n, step, low, high, z, gamma, dw_std):
    """``n`` SET pulses on one device of a PCM pair, float32, never lowering it; the device
    as it was unless ``run``."""
    reach = _pulse_reach(step, F_ONE, high, gamma)
    decay, total = _sums_small(F_ONE - reach, n)
    moved = max(_pulse_block(start, step, F_ONE, low, high, reach, decay, total, z, dw_std),
                start)
    return moved if run else start


@numba.njit(inline="always", error_model="numpy")
def _pair_blocks(start_plus, start_minus, free_plus, free_minus, step_plus, step_minus,
                 low_plus, low_minus, high_plus, high_minus, n_plus, n_minus, z_plus, z_minus,
                 gamma, dw_std, threshold):
    """SET pulses on both devices of one PCM pair (P = 2): ``(end_plus, end_minus,
    refresh)``, ``refresh`` when a checked side ends past the refresh threshold (the pair's
    blocks may then not be applied together)."""
    run_plus = (n_plus > _I_ZERO) & free_plus
    run_minus = (n_minus > _I_ZERO) & free_minus
    end_plus = _set_block(start_plus, run_plus, n_plus, step_plus, low_plus, high_plus, z_plus,
                          gamma, dw_std)
    end_minus = _set_block(start_minus, run_minus, n_minus, step_minus, low_minus, high_minus,
                           z_minus, gamma, dw_std)
    checked = (run_plus & free_minus) | (run_minus & free_plus)
    over = ((np.float64(end_plus) > threshold * np.float64(high_plus))
            | (np.float64(end_minus) > threshold * np.float64(high_minus)))
    return end_plus, end_minus, checked & over


@numba.njit(cache=True, error_model="numpy")
def _pair_row(g_plus, g_minus, stuck_plus, stuck_minus, step_plus, step_minus, low_plus,
              low_minus, high_plus, high_minus, counts, z, p, slow):
    """One row of PCM pairs (P = 2) from the row buffers of ``_draw_row``: ``_pair_blocks``
    of every pair, vectorised. The two blocks of a pair touch different devices, so their
    order matters only through a refresh; a pair that one of them may have refreshed keeps
    its state and is flagged ``slow`` for the caller, as are long blocks and pairs flagged
    on entry."""
    gamma, dw_std, threshold = F32(p[P_GAMMA_UP]), F32(p[P_DW_STD]), p[P_REFRESH]
    for j in range(g_plus.shape[0]):
        start_plus, start_minus = g_plus[j], g_minus[j]
        free_plus, free_minus = stuck_plus[j] == 0, stuck_minus[j] == 0
        n_plus, n_minus = counts[0, j], counts[1, j]
        end_plus, end_minus, refresh = _pair_blocks(
            start_plus, start_minus, free_plus, free_minus, step_plus[j], step_minus[j],
            low_plus[j], low_minus[j], high_plus[j], high_minus[j], n_plus, n_minus, z[0, j],
            z[1, j], gamma, dw_std, threshold)
        flagged = (slow[j] | (np.int32(n_plus | n_minus) >= _SMALL_LIMIT) | refresh) & (
            ((n_plus > 0) & free_plus) | ((n_minus > 0) & free_minus))
        slow[j] = flagged
        g_plus[j] = start_plus if flagged else end_plus
        g_minus[j] = start_minus if flagged else end_minus


@numba.njit(cache=True, error_model="numpy")
def _fused_pair_row(mean_up, mean_down, words, g_plus, g_minus, stuck_plus, stuck_minus,
                    step_plus, step_minus, low_plus, low_minus, high_plus, high_minus, p, slow):
    """``_draw_row`` and ``_pair_row`` in one vectorised pass, for a row with no drift to
    settle: the same numbers, without the row buffers in between."""
    gamma, dw_std, threshold = F32(p[P_GAMMA_UP]), F32(p[P_DW_STD]), p[P_REFRESH]
    for j in range(g_plus.shape[0]):
        n_plus, n_minus, _, z_plus, z_minus, unfinished = _draw_device(
            mean_up[j], mean_down[j], words, j)
        start_plus, start_minus = g_plus[j], g_minus[j]
        free_plus, free_minus = stuck_plus[j] == 0, stuck_minus[j] == 0
        end_plus, end_minus, refresh = _pair_blocks(
            start_plus, start_minus, free_plus, free_minus, step_plus[j], step_minus[j],
            low_plus[j], low_minus[j], high_plus[j], high_minus[j], n_plus, n_minus, z_plus,
            z_minus, gamma, dw_std, threshold)
        # An unfinished draw's head counts are not its counts: always the scalar rule.
        flagged = unfinished | (((np.int32(n_plus | n_minus) >= _SMALL_LIMIT) | refresh) & (
            ((n_plus > _I_ZERO) & free_plus) | ((n_minus > _I_ZERO) & free_minus)))
        slow[j] = flagged
        g_plus[j] = start_plus if flagged else end_plus
        g_minus[j] = start_minus if flagged else end_minus


@numba.njit(parallel=True, cache=True)
def pulse_trains_numba(probability, length, key, out_bits):
    """Stochastic pulse trains: bit t of ``out_bits[b, n]`` is set with ``probability[b, n]``.

    Slot t of train (b, n) uses ``uniform(key, (b N + n) 64 + t)``.
    """
    batch, count = probability.shape
    for b in numba.prange(batch):
        for n in range(count):
            prob = probability[b, n]
            bits = np.uint64(0)
            if prob > 0.0:
                base = np.uint64(b * count + n) * np.uint64(64)
                for t in range(length):
                    if _uniform(key, base + np.uint64(t)) < prob:
                        bits |= np.uint64(1) << np.uint64(t)
            out_bits[b, n] = bits


@numba.njit(parallel=True, cache=True)
def apply_exact_numba(x_bits, x_sign, d_bits, d_sign, conductance, written_at, drift_xi, stuck,
                      step_up, step_down, bound_low, bound_high, now, p, key):
    """Exact sampler: coincidences of the pulse trains, applied sample after sample.

    x_bits : (R, B) uint64 trains of the inputs, x_sign : (R, B) int8; d_bits : (C, B),
    d_sign : (C, B): one row per line, so the loop over samples reads contiguous memory.
    Sample ``b`` of device ``e = i C + j`` draws its cycle noise from counter ``2 B e + 2 b``
    and its refresh noise from ``2 B e + 2 b + 1``.
    """
    rows, batch = x_bits.shape
    cols = d_bits.shape[0]
    one = np.uint64(1)
    for i in numba.prange(rows):
        for j in range(cols):
            base = np.uint64(i * cols + j) * np.uint64(batch) * np.uint64(2)
            for b in range(batch):
                count = _popcount(x_bits[i, b] & d_bits[j, b])
                if count == 0:
                    continue
                going_up = x_sign[i, b] * d_sign[j, b] < 0
                slot = base + np.uint64(2 * b)
                _pulse_device(conductance, written_at, drift_xi, stuck, step_up, step_down,
                              bound_low, bound_high, i, j, count, going_up,
                              _normal(key, slot), key, slot + one, now, p)
