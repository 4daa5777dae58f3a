"""NumPy references of the pulsed-update kernels of :mod:`analogsim.kernels.pulsed_update`.

``apply_fast_numpy``, ``pulse_trains_numpy`` and ``apply_exact_numpy`` take the arguments of
their Numba counterparts and change the state arrays the same way: the same counter-based
random numbers (same counters), the same closed-form step rules of
:mod:`analogsim.kernels.scalar`, the same drift settling and PCM pair refresh, the same
rounding to float32 at the same points. They loop over samples or Poisson terms and are
vectorised over devices, and call no compiled code (only two constants are shared with the
Numba module), so they serve as an independent check. They draw every random number of the
counter layout; the kernels draw only those they use, with the same results.

Agreement with the Numba kernels: every operation is the same IEEE float64 arithmetic in the
same order (the normals are bit for bit those of the kernels), except the transcendental
functions (``exp`` of the Poisson inversion, ``pow`` and ``log`` of the step and drift
rules), which NumPy and LLVM/libm may round differently by one ulp. That changes a float32
state value by at most one float32 ulp, and flips a Poisson count only when a uniform falls
within ~1e-16 of a threshold; in practice the results are bit-identical.

Within one call every device appears at most once per vectorised step (once per turn of the
fast sampler, once per sample of the exact one), so fancy-index writes never collide.
"""

from __future__ import annotations

import numpy as np

from analogsim.kernels.counter_rng import normal_array, uniform_array
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
from analogsim.kernels.pulsed_update import FAST_SLOTS
from analogsim.kernels.scalar import POISSON_INVERSION_LIMIT, POISSON_MAX_TERMS

_SWAR = tuple(np.uint64(v) for v in (0x5555555555555555, 0x3333333333333333,
                                     0x0F0F0F0F0F0F0F0F, 0x0101010101010101))


# ----------------------------------------------------------------------------- scalar rules
def _clip(value, low, high):
    """``min(max(value, low), high)``, the scalar rule (NaN handling aside)."""
    return np.minimum(np.maximum(value, low), high)


def _f64(array):
    return np.asarray(array, dtype=np.float64)


def _drift_exponent(g_rel, xi, p):
    log_g = np.log(np.maximum(g_rel, 1e-6))
    mu = _clip(p[P_MU_A] * log_g + p[P_MU_B], p[P_MU_LO], p[P_MU_HI])
    sigma = _clip(p[P_SD_A] * log_g + p[P_SD_B], p[P_SD_LO], p[P_SD_HI])
    return np.abs(mu + sigma * xi)


def _drift_factor(elapsed, nu, p):
    """``((elapsed + t0) / t0)^-nu`` for ``elapsed > 0`` (callers select those devices)."""
    t0 = p[P_T0]
    return np.where(nu == 0.0, 1.0, ((elapsed + t0) / t0) ** (-nu))


def _program_value(target, low, high, z, p):
    levels = p[P_LEVELS]
    if levels > 1.0:
        lo, hi = p[P_LEVEL_LO], p[P_LEVEL_HI]
        step = (hi - lo) / (levels - 1.0)
        target = lo + np.floor((_clip(target, lo, hi) - lo) / step + 0.5) * step
    g = np.abs(target) / p[P_GMAX]
    sigma = p[P_PROG0] + p[P_PROG1] * g + p[P_PROG2] * g * g
    return _clip(target + np.maximum(sigma, 0.0) * z, low, high)


def _cycle_noise(first_step, ratio, decay, n, p):
    """Std of the summed multiplicative cycle noise (``scalar.cycle_noise``), with
    ``decay = ratio^n``."""
    ratio = np.asarray(ratio, dtype=np.float64)
    flat = ratio >= 1.0
    safe_ratio = np.where(flat, 0.0, ratio)
    total = np.where(flat, n, (1.0 - decay * decay) / (1.0 - safe_ratio * safe_ratio))
    return p[P_DW_STD] * np.abs(first_step) * np.sqrt(total)


def _steps_up(g, n, step, bound, gamma, low, z, p):
    """``n`` up pulses in closed form plus their summed cycle noise (``scalar.steps_up``)."""
    if gamma == 0.0:
        moved = g + n * step
        first, ratio, decay = step, np.ones_like(g), np.ones_like(g)
    else:
        fixed = bound / gamma
        ratio = np.maximum(1.0 - step * gamma / bound, 0.0)
        decay = ratio**n
        moved = fixed - (fixed - g) * decay
        first = step * (1.0 - gamma * g / bound)
    return _clip(moved + _cycle_noise(first, ratio, decay, n, p) * z, low, bound)


def _steps_down(g, n, step, bound, gamma, high, z, p):
    """``n`` down pulses towards ``bound`` (<= 0), the mirror of :func:`_steps_up`."""
    constant = g - n * step
    if gamma == 0.0:
        moved, first, ratio, decay = constant, step, np.ones_like(g), np.ones_like(g)
    else:
        # A device whose lower bound is 0 steps linearly, like the scalar rule.
        linear = bound == 0.0
        safe_bound = np.where(linear, -1.0, bound)
        fixed = safe_bound / gamma
        ratio = np.where(linear, 1.0, np.maximum(1.0 + step * gamma / safe_bound, 0.0))
        decay = ratio**n
        moved = np.where(linear, constant, fixed + (g - fixed) * decay)
        first = np.where(linear, step, step * (1.0 - gamma * g / safe_bound))
    return _clip(moved - _cycle_noise(first, ratio, decay, n, p) * z, bound, high)


def _poisson(mean, u, z):
    """Poisson counts (int64) of float64 ``mean`` from one uniform or one normal each."""
    count = np.zeros(mean.shape, dtype=np.int64)
    large = mean >= POISSON_INVERSION_LIMIT
    count[large] = np.maximum(np.floor(mean[large] + np.sqrt(mean[large]) * z[large] + 0.5), 0)
    index = np.flatnonzero((mean > 0.0) & ~large)
    rate, target = mean[index], u[index]
    term = np.exp(-rate)
    total = term.copy()
    for terms in range(1, POISSON_MAX_TERMS + 1):
        going = target > total
        if not going.any():
            break
        index, rate, target = index[going], rate[going], target[going]
        term, total = term[going], total[going]
        count[index] = terms
        term = term * (rate / terms)
        total = total + term
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
    if state[0].shape[0] == 1:
        _pulse_elements(state, i, j, _f64(count), going_up, z, now, p)
    else:
        _pulse_pairs(state, i, j, _f64(count), going_up, z, z_refresh, now, p)


def _pulse_elements(state, i, j, n, going_up, z, now, p):
    """One bidirectional element per weight (P = 1): linear steps up or down."""
    conductance, _, _, stuck, step_up, step_down, bound_low, bound_high = state
    free = stuck[0, i, j] == 0
    i, j, n, going_up, z = i[free], j[free], n[free], going_up[free], z[free]
    _settle(state, 0, i, j, now, p)
    g = _f64(conductance[0, i, j])
    moved = np.empty_like(g)
    up, down = going_up, ~going_up
    moved[up] = _steps_up(g[up], n[up], _f64(step_up[0, i[up], j[up]]),
                          _f64(bound_high[0, i[up], j[up]]), p[P_GAMMA_UP],
                          _f64(bound_low[0, i[up], j[up]]), z[up], p)
    moved[down] = _steps_down(g[down], n[down], _f64(step_down[0, i[down], j[down]]),
                              _f64(bound_low[0, i[down], j[down]]), p[P_GAMMA_DOWN],
                              _f64(bound_high[0, i[down], j[down]]), z[down], p)
    conductance[0, i, j] = moved


def _pulse_pairs(state, i, j, n, going_up, z, z_refresh, now, p):
    """A unipolar pair (P = 2): SET pulses on G+ (up) or G- (down), then the refresh check."""
    conductance, _, _, stuck, step_up, _, bound_low, bound_high = state
    side = np.where(going_up, 0, 1)
    free = stuck[side, i, j] == 0
    side, i, j, n, z, z_refresh = side[free], i[free], j[free], n[free], z[free], z_refresh[free]
    _settle(state, side, i, j, now, p)
    at = (side, i, j)
    start = _f64(conductance[at])
    conductance[at] = np.maximum(
        _steps_up(start, n, _f64(step_up[at]), _f64(bound_high[at]), p[P_GAMMA_UP],
                  _f64(bound_low[at]), z, p), start)
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
def pulse_count_means_numpy(x, d, pulses_per_unit):
    """NumPy reference of :func:`~analogsim.kernels.pulsed_update.pulse_count_means`; runs on
    CuPy arrays too."""
    magnitude = np.abs(x).T @ np.abs(d)
    signed = x.T @ d
    half = np.float32(0.5 * pulses_per_unit)
    up = np.maximum((magnitude - signed) * half, 0.0, dtype=np.float32)
    down = np.maximum((magnitude + signed) * half, 0.0, dtype=np.float32)
    return up, down


def apply_fast_numpy(mean_up, mean_down, conductance, written_at, drift_xi, stuck, step_up,
                     step_down, bound_low, bound_high, now, p, key):
    """NumPy reference of :func:`~analogsim.kernels.pulsed_update.apply_fast_numba`.

    ``mean_up``, ``mean_down``: (R, C) float32 expected counts; state arrays (P, R, C),
    ``conductance`` and ``written_at`` changed in place. Device ``e = i C + j`` uses counters
    ``9 e + (0 .. 8)``: up count (uniform, normal), down count (uniform, normal), order,
    up noise, down noise, refresh noise after the up and after the down block.
    """
    state = (conductance, written_at, drift_xi, stuck, step_up, step_down, bound_low,
             bound_high)
    cols = mean_up.shape[1]
    base = np.arange(mean_up.size, dtype=np.uint64) * np.uint64(FAST_SLOTS)
    n_up = _poisson(_f64(mean_up).ravel(), uniform_array(key, base),
                    normal_array(key, base + np.uint64(1)))
    n_down = _poisson(_f64(mean_down).ravel(), uniform_array(key, base + np.uint64(2)),
                      normal_array(key, base + np.uint64(3)))
    moving = np.flatnonzero((n_up > 0) | (n_down > 0))
    i, j = np.divmod(moving, cols)
    n_up, n_down, slots = n_up[moving], n_down[moving], base[moving]
    up_first = uniform_array(key, slots + np.uint64(4)) < 0.5
    z_up = normal_array(key, slots + np.uint64(5))
    z_down = normal_array(key, slots + np.uint64(6))
    z_refresh_up = normal_array(key, slots + np.uint64(7))
    z_refresh_down = normal_array(key, slots + np.uint64(8))
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
