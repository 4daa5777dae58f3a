"""NumPy references of the pulsed-update kernels of :mod:`analogsim.kernels.pulsed_update`.

``apply_fast_numpy``, ``pulse_trains_numpy`` and ``apply_exact_numpy`` take the arguments of
their Numba counterparts and change the state arrays the same way: the same counter-based
random numbers (same counters), the same closed-form step rules of
:mod:`analogsim.kernels.scalar`, the same drift settling and PCM pair refresh, the same
rounding to float32 at the same points. They loop over samples or Poisson terms and are
vectorised over devices, and call no compiled code (only two constants are shared with the
Numba module), so they serve as an independent check. They draw every random number of the
counter layout; the kernels draw only those they use, with the same results.

Agreement with the Numba kernels: every operation is the same IEEE arithmetic in the same
order and precision (float32 pulse blocks, their powers and geometric sums; the normals; the
Poisson draws, with their alias tables and polynomial ``exp(-f)``; the drift rule's ``log``
and power, :mod:`analogsim.kernels.vector_math`'s polynomials through their NumPy twins
``log_positive_array`` and ``exp_bounded_array``): the results are bit-identical.

Within one call every device appears at most once per vectorised step (once per turn of the
fast sampler, once per sample of the exact one), so fancy-index writes never collide.
"""

from __future__ import annotations

import numpy as np

from analogsim.kernels.counter_rng import (
    F_HALF,
    F_INV_2_32,
    hash64_array,
    normal_array,
    normal_pair32_array,
    uniform_array,
)
from analogsim.kernels.physics import (
    P_DW_STD,
    P_GAMMA_DOWN,
    P_GAMMA_UP,
    P_GMAX,
    P_LEVEL_HI,
    P_LEVEL_LO,
    P_LEVELS,
    P_MU_A,
    P_MU_B,
    P_MU_HI,
    P_MU_LO,
    P_PROG0,
    P_PROG1,
    P_PROG2,
    P_REFRESH,
    P_SD_A,
    P_SD_B,
    P_SD_HI,
    P_SD_LO,
    P_T0,
)
from analogsim.kernels.pulsed_update import (
    FAST_SLOTS,
    SLOT_DOWN,
    SLOT_LARGE_DOWN,
    SLOT_LARGE_UP,
    SLOT_NOISE,
    SLOT_REFRESH_DOWN,
    SLOT_REFRESH_UP,
    SLOT_UP,
    check_count_buffers,
)
from analogsim.kernels.scalar import (
    ALIAS_SHIFT,
    COIN_MASK,
    COIN_SHIFT,
    COLUMN_SHIFT,
    EXP_HALF_COEFFICIENTS,
    LOW_32,
    POISSON_COLUMNS,
    POISSON_INVERSION_LIMIT,
    POISSON_MAX_TERMS,
    POISSON_TABLES,
    THRESHOLD_MASK,
)
from analogsim.kernels.vector_math import exp_bounded_array, log_positive_array

_SWAR = tuple(np.uint64(v) for v in (0x5555555555555555, 0x3333333333333333,
                                     0x0F0F0F0F0F0F0F0F, 0x0101010101010101))


# ----------------------------------------------------------------------------- scalar rules
def _clip(value, low, high):
    """``min(max(value, low), high)``, the scalar rule (NaN handling aside)."""
    return np.minimum(np.maximum(value, low), high)


def _f64(array):
    return np.asarray(array, dtype=np.float64)


def _f32(array):
    return np.asarray(array, dtype=np.float32)


def _drift_exponent(g_rel, xi, p):
    log_g = log_positive_array(np.maximum(g_rel, 1e-6))
    mu = _clip(p[P_MU_A] * log_g + p[P_MU_B], p[P_MU_LO], p[P_MU_HI])
    sigma = _clip(p[P_SD_A] * log_g + p[P_SD_B], p[P_SD_LO], p[P_SD_HI])
    return np.abs(mu + sigma * xi)


def _drift_factor(elapsed, nu, p):
    """``((elapsed + t0) / t0)^-nu`` for ``elapsed > 0`` (callers select those devices)."""
    t0 = p[P_T0]
    return np.where(nu == 0.0, 1.0,
                    exp_bounded_array(-nu * log_positive_array((elapsed + t0) / t0)))


def _program_value(target, low, high, z, p):
    levels = p[P_LEVELS]
    if levels > 1.0:
        lo, hi = p[P_LEVEL_LO], p[P_LEVEL_HI]
        step = (hi - lo) / (levels - 1.0)
        target = lo + np.floor((_clip(target, lo, hi) - lo) / step + 0.5) * step
    g = np.abs(target) / p[P_GMAX]
    sigma = p[P_PROG0] + p[P_PROG1] * g + p[P_PROG2] * g * g
    return _clip(target + np.maximum(sigma, 0.0) * z, low, high)


def _pulse_sums(ratio, n):
    """``(ratio**n, sum_{k<n} ratio**k)`` in float32, low bits first (``scalar.pulse_sums``,
    bit for bit)."""
    one = np.float32(1.0)
    decay = np.ones_like(ratio)
    total = np.zeros_like(ratio)
    power = ratio.copy()
    span = np.ones_like(ratio)
    shift = 0
    while np.any((n >> shift) > 0):
        on = ((n >> shift) & 1) != 0
        total = np.where(on, total + decay * span, total)
        decay = np.where(on, decay * power, decay)
        span = span * (one + power)
        power = power * power
        shift += 1
    return decay, total


def _block(g, count, step, sign, bound, gamma, low, high, z, p):
    """``count`` pulses of ``sign`` towards ``bound`` in closed form plus their summed cycle
    noise, clipped to ``[low, high]``, in float32 (``scalar.pulse_reach``, ``pulse_sums``
    and ``pulse_block``). Array arguments are float32; ``sign`` is +1 or -1, ``gamma`` a
    parameter of ``p``."""
    one, two, zero = np.float32(1.0), np.float32(2.0), np.float32(0.0)
    sign, gamma = np.float32(sign), np.float32(gamma)
    linear = (gamma == zero) | (bound == zero)
    safe_bound = np.where(linear, one, bound)
    reach = np.where(linear, zero, np.minimum((sign * step) * gamma / safe_bound, one))
    decay, total = _pulse_sums(one - reach, count)
    signed = sign * step
    first = signed - reach * g
    moved = g + first * total
    bounded = reach > zero
    fixed = signed / np.where(bounded, reach, one)
    limited = np.where(first >= zero, np.minimum(moved, fixed), np.maximum(moved, fixed))
    moved = np.where(bounded, limited, moved)
    spread = total * (one + decay) / (two - reach)
    noise = np.float32(p[P_DW_STD]) * np.abs(first) * np.sqrt(spread) * z
    return _clip(moved + sign * noise, low, high)


def _exp_neg_fraction(f):
    """``scalar.exp_neg_fraction`` (bit for bit): ``exp(-f)`` on [0, 1], float32."""
    y = 0.5 - f
    e = EXP_HALF_COEFFICIENTS[0]
    for coefficient in EXP_HALF_COEFFICIENTS[1:]:
        e = e * y + coefficient
    return e


def _poisson(mean, bits, z):
    """Poisson counts (int64) of float64 ``mean`` from one hash each, or one normal each at
    and above the inversion limit (``scalar.poisson_count``)."""
    count = np.zeros(mean.shape, dtype=np.int64)
    large = mean >= POISSON_INVERSION_LIMIT
    count[large] = np.maximum(np.floor(mean[large] + np.sqrt(mean[large]) * z[large] + 0.5), 0)
    index = np.flatnonzero((mean > 0.0) & ~large)
    rate, bits = mean[index], bits[index]
    whole = np.floor(rate)
    fraction = rate - whole
    column = (bits >> COLUMN_SHIFT).astype(np.int64)
    coin = (bits >> COIN_SHIFT) & COIN_MASK
    entry = POISSON_TABLES[whole.astype(np.int64) * POISSON_COLUMNS + column]
    count[index] = np.where(coin < (entry & THRESHOLD_MASK), column,
                            (entry >> ALIAS_SHIFT).astype(np.int64))
    fraction = fraction.astype(np.float32)
    target = ((bits & LOW_32).astype(np.uint32).astype(np.float32) + F_HALF) * F_INV_2_32
    term = _exp_neg_fraction(fraction)
    total = term.copy()
    extra = np.zeros(index.size, dtype=np.int64)
    position = np.arange(index.size)
    for terms in range(1, POISSON_MAX_TERMS + 1):
        going = target > total
        if not going.any():
            break
        position, fraction, target = position[going], fraction[going], target[going]
        term, total = term[going], total[going]
        extra[position] = terms
        term = term * (fraction * np.float32(1.0 / terms))
        total = total + term
    count[index] += extra
    return count


def _popcount(bits):
    m1, m2, m4, h01 = _SWAR
    bits = bits - ((bits >> np.uint64(1)) & m1)
    bits = (bits & m2) + ((bits >> np.uint64(2)) & m2)
    bits = (bits + (bits >> np.uint64(4))) & m4
    return ((bits * h01) >> np.uint64(56)).astype(np.int64)


# ----------------------------------------------------------------------------- device updates
def _settle(state, side, i, j, now, p):
    """Fold each device's drift since its last write into its conductance; restart clocks."""
    conductance, written_at, drift_xi = state[0], state[1], state[2]
    elapsed = now - written_at[side, i, j]
    drifting = elapsed > 0.0
    if drifting.any():
        side_d = side[drifting] if np.ndim(side) else side
        at = (side_d, i[drifting], j[drifting])
        g = _f64(conductance[at])
        nu = _drift_exponent(np.abs(g) / p[P_GMAX], _f64(drift_xi[at]), p)
        conductance[at] = g * _drift_factor(elapsed[drifting], nu, p)
    written_at[side, i, j] = now


def _pulse_devices(state, i, j, count, going_up, z, z_refresh, now, p):
    """Apply ``count[e]`` pulses of sign ``going_up[e]`` to weight ``(i[e], j[e])``.

    Each device appears at most once; the vectorised form of ``_pulse_device``.
    """
    keep = count > 0
    i, j, count, going_up, z, z_refresh = (a[keep] for a in (i, j, count, going_up, z,
                                                              z_refresh))
    count = count.astype(np.int64)
    if state[0].shape[0] == 1:
        _pulse_elements(state, i, j, count, going_up, z, now, p)
    else:
        _pulse_pairs(state, i, j, count, going_up, z, z_refresh, now, p)


def _pulse_elements(state, i, j, n, going_up, z, now, p):
    """One bidirectional element per weight (P = 1): linear steps up or down."""
    conductance, _, _, stuck, step_up, step_down, bound_low, bound_high = state
    free = stuck[0, i, j] == 0
    i, j, n, going_up, z = i[free], j[free], n[free], going_up[free], z[free]
    _settle(state, 0, i, j, now, p)
    g = _f32(conductance[0, i, j])
    z = _f32(z)
    moved = np.empty_like(g)
    up, down = going_up, ~going_up
    at_up, at_down = (0, i[up], j[up]), (0, i[down], j[down])
    moved[up] = _block(g[up], n[up], step_up[at_up], 1.0, bound_high[at_up], p[P_GAMMA_UP],
                       bound_low[at_up], bound_high[at_up], z[up], p)
    moved[down] = _block(g[down], n[down], step_down[at_down], -1.0, bound_low[at_down],
                         p[P_GAMMA_DOWN], bound_low[at_down], bound_high[at_down], z[down], p)
    conductance[0, i, j] = moved


def _pulse_pairs(state, i, j, n, going_up, z, z_refresh, now, p):
    """A unipolar pair (P = 2): SET pulses on G+ (up) or G- (down), then the refresh check."""
    conductance, _, _, stuck, step_up, _, bound_low, bound_high = state
    side = np.where(going_up, 0, 1)
    free = stuck[side, i, j] == 0
    side, i, j, n, z, z_refresh = side[free], i[free], j[free], n[free], z[free], z_refresh[free]
    _settle(state, side, i, j, now, p)
    at = (side, i, j)
    start = _f32(conductance[at])
    high = bound_high[at]
    conductance[at] = np.maximum(
        _block(start, n, step_up[at], 1.0, high, p[P_GAMMA_UP], bound_low[at], high, _f32(z), p),
        start)
    threshold = p[P_REFRESH]
    refresh = ((_f64(conductance[0, i, j]) > threshold * _f64(bound_high[0, i, j]))
               | (_f64(conductance[1, i, j]) > threshold * _f64(bound_high[1, i, j])))
    refresh &= stuck[1 - side, i, j] == 0  # a pair with a stuck device is never refreshed
    if refresh.any():
        _refresh_pairs(state, i[refresh], j[refresh], z_refresh[refresh], now, p)


def _refresh_pairs(state, i, j, z_refresh, now, p):
    """Read each pair, reset both devices, reprogram the difference onto one of them."""
    conductance, written_at, _, _, _, _, bound_low, bound_high = state
    for side in range(2):
        _settle(state, side, i, j, now, p)
    difference = _f64(conductance[0, i, j]) - _f64(conductance[1, i, j])
    target_side = np.where(difference >= 0.0, 0, 1)
    for side in range(2):
        write = target_side == side
        reset = target_side != side
        wi, wj, ri, rj = i[write], j[write], i[reset], j[reset]
        conductance[side, wi, wj] = _program_value(
            np.abs(difference[write]), _f64(bound_low[side, wi, wj]),
            _f64(bound_high[side, wi, wj]), z_refresh[write], p)
        conductance[side, ri, rj] = bound_low[side, ri, rj]
        written_at[side, i, j] = now


# ----------------------------------------------------------------------------- kernels
def pulse_count_means_numpy(x, d, pulses_per_unit, out=None):
    """NumPy reference of :func:`~analogsim.kernels.pulsed_update.pulse_count_means`
    (``out``: the pair of arrays to write ``(up, down)`` into); runs on CuPy arrays too."""
    magnitude = np.abs(x).T @ np.abs(d)
    signed = x.T @ d
    half = np.float32(0.5 * pulses_per_unit)
    if out is None:
        out = (None, None)
    else:
        check_count_buffers("pulse_count_means_numpy", out, magnitude.shape)
    up = np.maximum((magnitude - signed) * half, 0.0, dtype=np.float32, out=out[0])
    down = np.maximum((magnitude + signed) * half, 0.0, dtype=np.float32, out=out[1])
    return up, down


def apply_fast_numpy(mean_up, mean_down, conductance, written_at, drift_xi, stuck, step_up,
                     step_down, bound_low, bound_high, now, p, key, settled=False):
    """NumPy reference of :func:`~analogsim.kernels.pulsed_update.apply_fast_numba`.

    ``settled`` (the caller's promise that no device has drift to settle) changes nothing
    here: the reference checks every pulsed device's write time, as the kernel does without
    the promise.

    ``mean_up``, ``mean_down``: (R, C) float32 expected counts; state arrays (P, R, C),
    ``conductance`` and ``written_at`` changed in place. Device ``e = i C + j`` uses counters
    ``FAST_SLOTS e + slot`` (``pulsed_update.SLOT_*``): the hashes of its up and down counts
    (bit 32 of the up count's is the order coin, up first when set), one float32 normal pair for
    the cycle noise of its up and down blocks, the normals of counts at or above the
    inversion limit, and the refresh normals after the up and after the down block.
    """
    state = (conductance, written_at, drift_xi, stuck, step_up, step_down, bound_low,
             bound_high)
    cols = mean_up.shape[1]
    base = np.arange(mean_up.size, dtype=np.uint64) * np.uint64(FAST_SLOTS)
    bits_up = hash64_array(key, base + SLOT_UP)
    n_up = _poisson(_f64(mean_up).ravel(), bits_up, normal_array(key, base + SLOT_LARGE_UP))
    n_down = _poisson(_f64(mean_down).ravel(), hash64_array(key, base + SLOT_DOWN),
                      normal_array(key, base + SLOT_LARGE_DOWN))
    moving = np.flatnonzero((n_up > 0) | (n_down > 0))
    i, j = np.divmod(moving, cols)
    n_up, n_down, slots = n_up[moving], n_down[moving], base[moving]
    up_first = ((bits_up[moving] >> np.uint64(32)) & np.uint64(1)) != 0
    z_up, z_down = normal_pair32_array(key, slots + SLOT_NOISE)
    z_refresh_up = normal_array(key, slots + SLOT_REFRESH_UP)
    z_refresh_down = normal_array(key, slots + SLOT_REFRESH_DOWN)
    for going_up in (up_first, ~up_first):
        _pulse_devices(state, i, j, np.where(going_up, n_up, n_down), going_up,
                       np.where(going_up, z_up, z_down),
                       np.where(going_up, z_refresh_up, z_refresh_down), now, p)


def pulse_trains_numpy(probability, length, key, out_bits):
    """NumPy reference of :func:`~analogsim.kernels.pulsed_update.pulse_trains_numba`.

    Bit t of ``out_bits[b, n]`` is set when ``uniform(key, (b N + n) 64 + t) < probability``.
    """
    base = np.arange(probability.size, dtype=np.uint64).reshape(probability.shape)
    base = base * np.uint64(64)
    bits = np.zeros(probability.shape, dtype=np.uint64)
    for slot in range(length):
        fired = uniform_array(key, base + np.uint64(slot)) < probability
        bits |= fired.astype(np.uint64) << np.uint64(slot)
    out_bits[...] = np.where(probability > 0.0, bits, np.uint64(0))


def apply_exact_numpy(x_bits, x_sign, d_bits, d_sign, conductance, written_at, drift_xi, stuck,
                      step_up, step_down, bound_low, bound_high, now, p, key):
    """NumPy reference of :func:`~analogsim.kernels.pulsed_update.apply_exact_numba`.

    Trains and signs one row per line: x_bits, x_sign (R, B); d_bits, d_sign (C, B). Sample
    ``b`` of device ``e = i C + j`` uses the normals at ``2 B e + 2 b`` (cycle noise) and
    ``2 B e + 2 b + 1`` (refresh).
    """
    state = (conductance, written_at, drift_xi, stuck, step_up, step_down, bound_low,
             bound_high)
    batch = x_bits.shape[1]
    cols = d_bits.shape[0]
    for b in range(batch):
        counts = _popcount(x_bits[:, b][:, None] & d_bits[:, b][None, :])
        i, j = np.nonzero(counts)
        going_up = x_sign[i, b].astype(np.int64) * d_sign[j, b].astype(np.int64) < 0
        device = (i * cols + j).astype(np.uint64)
        slot = device * np.uint64(batch) * np.uint64(2) + np.uint64(2 * b)
        _pulse_devices(state, i, j, counts[i, j], going_up, normal_array(key, slot),
                       normal_array(key, slot + np.uint64(1)), now, p)
