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
    is small when the per-slot coincidence probabilities are. (``Chip(count_precision="int8")``
    computes the means with exact int8 matmuls instead, within a guarded fraction of their
    Poisson noise: :mod:`analogsim.kernels.count_means_int8`.) Up and down pulses of one device
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

The CPU fast sampler works a row of devices at a time (the passes of
:mod:`analogsim.kernels.fast_rows`), in chunks of ``ROWS_PER_CHUNK`` rows shared out among
the threads, in passes that LLVM vectorises (AVX-512 on the machine of
``benchmarks/README.md``). A first pass writes the three hashes
of each device into a row buffer of uint32 halves (``hash_row``), so that everything after
it runs on 32-bit lanes: 16 a vector, not the 8 of 64-bit integers. A row none of whose
devices has drifted since its last write (a vectorised check of the write times, skipped
when the caller passes ``settled=True``: in training without a clock step, every row) then
takes one pass that draws each device's counts, order coin and noise (``poisson_head``: the
inversion unrolled to 6 terms) and applies both its blocks with selects instead of branches
(``pulse_sums`` unrolled over 6 bits). A row with a device that is not stuck and has drift
takes three: the draws into row buffers, the drift of the devices about to be pulsed
settled (``fast_rows.settle_line``: the due devices gathered, then one vectorised pass), the
blocks. (One pass instead of three saved about 2 ms of the 13 ms ReRAM pass at 1024x1024;
the branching settle loop that preceded ``settle_line`` cost about 2 ms of an 18 ms pass
when it ran for every row.) The rare devices the passes cannot finish (a mean past the limit, an
inversion past 6 terms, a block of 64 pulses or more, a PCM pair that may be refreshed) are
flagged, keep their state, and are drawn again in full and applied with the scalar rules,
except the flagged PCM pairs of settled rows with no stuck device: about 1 % of the pairs
of an array in use, they are set aside and applied by a vectorised pass of their own
(:mod:`analogsim.kernels.pair_refresh`). The results are bit for bit those of applying
every device one block at a time (``tests/kernels/test_kernel_pulsed_update.py``). Times
are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import numba
import numpy as np

from analogsim.errors import ParameterError, ShapeError
from analogsim.kernels._cpu_scalar import RNG, RULES, S
from analogsim.kernels.fast_rows import (
    FAST_SLOTS,
    HASH_WORDS,
    SLOT_DOWN,
    SLOT_LARGE_DOWN,
    SLOT_LARGE_UP,
    SLOT_NOISE,
    SLOT_REFRESH_DOWN,
    SLOT_REFRESH_UP,
    SLOT_UP,
    draw_row,
    element_row,
    fused_element_row,
    fused_pair_row,
    hash_row,
    pair_row,
    settle_line,
)
from analogsim.kernels.pair_refresh import ASIDE_VALUES, PENDING_LIMIT, apply_aside, set_aside
from analogsim.kernels.physics import P_REFRESH
from analogsim.kernels.scalar import POISSON_INVERSION_LIMIT

#: With the kernels, re-exported: the counters of the fast sampler's random numbers (which
#: the NumPy and CUDA versions share) and the sizes of its row buffers and chunks.
__all__ = ["FAST_SLOTS", "HASH_WORDS", "PENDING_LIMIT", "ROWS_PER_CHUNK", "SLOT_DOWN",
           "SLOT_LARGE_DOWN", "SLOT_LARGE_UP", "SLOT_NOISE", "SLOT_REFRESH_DOWN",
           "SLOT_REFRESH_UP", "SLOT_UP", "apply_exact_numba", "apply_fast_numba",
           "check_count_buffers", "pulse_count_means", "pulse_trains_numba",
           "split_counts_numba"]

_normal = S.normal
_popcount = S.popcount
_poisson_count = S.poisson_count
_hash64_call = S.hash64
_pulse_device = RULES.pulse_device
_pulse_blocks = RULES.pulse_blocks
_uniform = S.uniform
_normal_pair32_words = RNG.normal_pair32_words

_STRIDE = np.uint64(FAST_SLOTS)
_U_ZERO, _U_ONE = np.uint32(0), np.uint32(1)
_COUNT_CAP = np.iinfo(np.int32).max
#: Rows of the fast sampler's unit of parallel work: the PCM pairs that a block may refresh
#: are set aside within it and applied together (:mod:`analogsim.kernels.pair_refresh`) once
#: ``PENDING_LIMIT`` have gathered, and at its end.
ROWS_PER_CHUNK = 16


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
    redone one block at a time with the scalar rule, which gives the same numbers; the PCM
    pairs of settled rows flagged for a refresh, set aside within a chunk of
    ``ROWS_PER_CHUNK`` rows, take the vectorised pass of
    :mod:`analogsim.kernels.pair_refresh` first.
    """
    rows, cols = mean_up.shape
    pairs = conductance.shape[0] == 2
    chunks = (rows + ROWS_PER_CHUNK - 1) // ROWS_PER_CHUNK
    for c in numba.prange(chunks):
        slow = np.empty(cols, dtype=np.bool_)
        words = np.empty((HASH_WORDS, cols), dtype=np.uint32)
        # PCM pairs flagged only for a possible refresh are set aside, to be applied a few
        # hundred at a time in a vectorised pass (a row holds too few of them).
        capacity = PENDING_LIMIT + cols if pairs else 0
        aside_at = np.empty((2, capacity), dtype=np.int64)
        aside_words = np.empty((HASH_WORDS, capacity), dtype=np.uint32)
        aside_values = np.empty((ASIDE_VALUES, capacity), dtype=np.float32)
        aside = 0
        last = min(rows, (c + 1) * ROWS_PER_CHUNK) - 1
        for i in range(c * ROWS_PER_CHUNK, last + 1):
            first = np.uint64(i * cols)
            hash_row(key, first, words)
            stale_plus = not settled and _any_stale(written_at[0, i], stuck[0, i], now)
            stale_minus = not settled and pairs and _any_stale(written_at[1, i], stuck[1, i],
                                                               now)
            settled_row = not (stale_plus or stale_minus)
            if settled_row and pairs:
                fused_pair_row(
                    mean_up[i], mean_down[i], words, conductance[0, i], conductance[1, i],
                    stuck[0, i], stuck[1, i], step_up[0, i], step_up[1, i], bound_low[0, i],
                    bound_low[1, i], bound_high[0, i], bound_high[1, i], p, slow)
            elif settled_row:
                fused_element_row(
                    mean_up[i], mean_down[i], words, conductance[0, i], stuck[0, i],
                    step_up[0, i], step_down[0, i], bound_low[0, i], bound_high[0, i], p, slow)
            else:
                _drifted_row(mean_up, mean_down, words, conductance, written_at, drift_xi,
                             stuck, step_up, step_down, bound_low, bound_high, now, p, key, i,
                             stale_plus, stale_minus, slow)
            left = _any_flagged(slow)  # a vectorised check: most rows of a fresh tile have none
            if left and settled_row and pairs:
                aside, left = set_aside(
                    i, mean_up[i], mean_down[i], words, conductance[0, i], conductance[1, i],
                    stuck[0, i], stuck[1, i], step_up[0, i], step_up[1, i], bound_low[0, i],
                    bound_low[1, i], bound_high[0, i], bound_high[1, i], slow, aside_at,
                    aside_words, aside_values, aside)
            if left:
                for j in range(cols):
                    if slow[j]:  # rare: draw in full, apply both blocks with the scalar rule
                        _scalar_device(mean_up, mean_down, conductance, written_at, drift_xi,
                                       stuck, step_up, step_down, bound_low, bound_high, i, j,
                                       words[0, j], words[4, j], words[5, j], now, p, key)
            if aside >= PENDING_LIMIT or (i == last and aside > 0):
                done = np.empty(aside, dtype=np.bool_)
                apply_aside(conductance, written_at, aside_at, aside_words, aside_values,
                            aside, now, p, key, done)
                for k in range(aside):
                    if not done[k]:  # a count or block the pass cannot finish
                        _scalar_device(mean_up, mean_down, conductance, written_at, drift_xi,
                                       stuck, step_up, step_down, bound_low, bound_high,
                                       aside_at[0, k], aside_at[1, k], aside_words[0, k],
                                       aside_words[4, k], aside_words[5, k], now, p, key)
                aside = 0


@numba.njit(cache=True, error_model="numpy")
def _scalar_device(mean_up, mean_down, conductance, written_at, drift_xi, stuck, step_up,
                   step_down, bound_low, bound_high, i, j, order_word, noise_high, noise_low,
                   now, p, key):
    """Device (i, j) drawn in full and its two blocks applied with the scalar rule; the
    row's hash words that the full draw does not recompute are passed in."""
    base = (np.uint64(i) * np.uint64(mean_up.shape[1]) + np.uint64(j)) * _STRIDE
    n_up = _full_count(np.float64(mean_up[i, j]), key, base + SLOT_UP, base + SLOT_LARGE_UP)
    n_down = _full_count(np.float64(mean_down[i, j]), key, base + SLOT_DOWN,
                         base + SLOT_LARGE_DOWN)
    z_up, z_down = _normal_pair32_words(noise_high, noise_low)
    _pulse_blocks(conductance, written_at, drift_xi, stuck, step_up, step_down, bound_low,
                  bound_high, i, j, n_up, n_down, (order_word & _U_ONE) != _U_ZERO, z_up,
                  z_down, key, base + SLOT_REFRESH_UP, base + SLOT_REFRESH_DOWN, now, p)


@numba.njit(cache=True, error_model="numpy")
def _drifted_row(mean_up, mean_down, words, conductance, written_at, drift_xi, stuck, step_up,
                 step_down, bound_low, bound_high, now, p, key, i, stale_plus, stale_minus,
                 slow):
    """Row ``i`` when a device of it has drifted since its last write: the draws, then the
    drift of the devices about to be pulsed settled (``settle_line``), then the blocks;
    ``slow`` flags the devices left to the scalar rule, their state kept."""
    cols = mean_up.shape[1]
    first = np.uint64(i * cols)
    # int32 counts keep the block loops on 32-bit lanes (measured 10.7 -> 8.3 ms a 1024x1024
    # ReRAM pass with int64); a flagged device's count here only decides whether it is
    # settled and flagged, so it is capped, not wrapped (its blocks use the full count).
    counts = np.empty((2, cols), dtype=np.int32)
    z = np.empty((2, cols), dtype=np.float32)
    up_first = np.empty(cols, dtype=np.bool_)
    draw_row(mean_up[i], mean_down[i], words, counts, z, up_first, slow)
    for j in range(cols):
        if slow[j]:  # rare: the full counts decide which devices are settled
            base = (first + np.uint64(j)) * _STRIDE
            counts[0, j] = min(_full_count(np.float64(mean_up[i, j]), key, base + SLOT_UP,
                                           base + SLOT_LARGE_UP), _COUNT_CAP)
            counts[1, j] = min(_full_count(np.float64(mean_down[i, j]), key,
                                           base + SLOT_DOWN, base + SLOT_LARGE_DOWN),
                               _COUNT_CAP)
    due = np.empty(cols, dtype=np.bool_)
    if conductance.shape[0] == 1:
        settle_line(conductance[0, i], written_at[0, i], drift_xi[0, i], stuck[0, i],
                    counts[0], counts[1], now, p, due)
        element_row(conductance[0, i], stuck[0, i], step_up[0, i], step_down[0, i],
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
            raw[side, j] = conductance[side, i, j]
            raw_time[side, j] = written_at[side, i, j]
        settle_line(conductance[side, i], written_at[side, i], drift_xi[side, i],
                    stuck[side, i], counts[side], counts[side], now, p, due)
        for j in range(cols):
            settled[side, j] = due[j]
            slow[j] |= due[j] & (raw[side, j] > threshold * np.float64(bound_high[side, i, j]))
    pair_row(conductance[0, i], conductance[1, i], stuck[0, i], stuck[1, i], step_up[0, i],
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
def _any_flagged(slow):
    """Whether a device of the row is flagged, in one vectorised pass."""
    flagged = False
    for j in range(slow.shape[0]):
        flagged |= slow[j]
    return flagged


@numba.njit(cache=True)
def _any_stale(written_at, stuck, now):
    """Whether a device of the row that is not stuck was last written before ``now`` (a
    drift to settle): one vectorised pass, so that a row with none skips the drifted path.
    Stuck devices are never settled, so they would keep their row on it after every clock
    step (ReRAM has about 4 in a row of 1024)."""
    stale = False
    for j in range(written_at.shape[0]):
        stale |= (written_at[j] != now) & (stuck[j] == 0)
    return stale


@numba.njit(cache=True)
def _full_count(mean, key, counter, normal_counter):
    """``poisson_count`` of ``mean`` from its hash, the normal drawn only when used."""
    z = _normal(key, normal_counter) if mean >= POISSON_INVERSION_LIMIT else 0.0
    return _poisson_count(mean, _hash64_call(key, counter), z)


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
