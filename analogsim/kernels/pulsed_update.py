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
stuck).

Every random number has a fixed counter, so the order and the place in which a kernel draws
them does not change its results. The fast sampler works a row of devices at a time: it draws
the two Poisson uniforms, the order coin and the two cycle-noise normals of the row in one
vectorised pass (about 4 ns a normal, against about 30 ns drawn one by one between the
branches of the pulse rule), inverts the row's Poisson counts in vectorised loops (the same
arithmetic as ``scalar.poisson``, so the same counts), and draws the rest only where used: a
count's normal above the inversion limit, a pair's refresh normal when it is refreshed.
The results are bit for bit those of drawing every variate device by device
(``tests/kernels/test_kernel_pulsed_update.py``); the time is in ``benchmarks/README.md``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from analogsim.kernels._cpu_scalar import RNG, RULES, S
from analogsim.kernels.scalar import POISSON_INVERSION_LIMIT, POISSON_MAX_TERMS

_normal = S.normal
_poisson = S.poisson
_popcount = S.popcount
_pulse_device = RULES.pulse_device
_uniform = S.uniform
_uniform_inline = RNG.uniform
_normal_inline = RNG.normal

#: Random numbers per device in the fast sampler (counter stride): up count (uniform, normal),
#: down count (uniform, normal), order, up noise, down noise, refresh after up, after down.
FAST_SLOTS = 9
_U = tuple(np.uint64(k) for k in range(FAST_SLOTS))


def pulse_count_means(x, d, pulses_per_unit):
    """Expected up and down pulse counts of every device over a batch, from two matmuls.

    Parameters
    ----------
    x : (B, R) float32 inputs; d : (B, C) float32 errors.
    pulses_per_unit : float
        Nominal pulses per unit of ``|x_j d_i|`` (``lr / (weight_scale * dw_min)``).

    Returns
    -------
    (up, down): two (R, C) float32 arrays, the values of
    :func:`~analogsim.kernels.pulsed_update_numpy.pulse_count_means_numpy`, split from the
    two matmul products in one compiled pass, in place.
    """
    magnitude = np.abs(x).T @ np.abs(d)
    signed = x.T @ d
    split_counts_numba(magnitude, signed, np.float32(0.5 * pulses_per_unit))
    return magnitude, signed


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
                     step_down, bound_low, bound_high, now, p, key):
    """Fast sampler: Poisson counts from the (R, C) means, then the pulses of each device.

    Row by row: the variates most devices use and the Poisson counts are computed for the
    whole row in vectorised loops, then each device applies its two blocks. The pulse loop
    stays in the body of the parallel loop: there Numba compiles it with its arrays marked
    free of aliasing, 1.7x faster than the same loop in a function of its own.
    """
    rows, cols = mean_up.shape
    for i in numba.prange(rows):
        first = np.uint64(i * cols) * np.uint64(FAST_SLOTS)
        draws = np.empty((5, cols))
        _draw_row(key, first, draws)
        counts_up = _count_row(mean_up[i], draws[0], key, first + _U[1])
        counts_down = _count_row(mean_down[i], draws[1], key, first + _U[3])
        for j in range(cols):
            n_up, n_down = counts_up[j], counts_down[j]
            if n_up == 0 and n_down == 0:
                continue
            base = first + np.uint64(j * FAST_SLOTS)
            up_first = draws[2, j] < 0.5
            for turn in range(2):
                if (turn == 0) == up_first:
                    _pulse_device(conductance, written_at, drift_xi, stuck, step_up, step_down,
                                  bound_low, bound_high, i, j, n_up, True, draws[3, j], key,
                                  base + _U[7], now, p)
                else:
                    _pulse_device(conductance, written_at, drift_xi, stuck, step_up, step_down,
                                  bound_low, bound_high, i, j, n_down, False, draws[4, j], key,
                                  base + _U[8], now, p)


@numba.njit(cache=True, error_model="numpy")
def _draw_row(key, first, draws):
    """The variates of a row that most devices use, vectorised: ``draws[:, j]`` = up-count
    uniform, down-count uniform, order coin, up noise, down noise of device ``j``."""
    u2, u4, u5, u6 = _U[2], _U[4], _U[5], _U[6]
    for j in range(draws.shape[1]):
        base = first + np.uint64(j * FAST_SLOTS)
        draws[0, j] = _uniform_inline(key, base)
        draws[1, j] = _uniform_inline(key, base + u2)
        draws[2, j] = _uniform_inline(key, base + u4)
        draws[3, j] = _normal_inline(key, base + u5)
        draws[4, j] = _normal_inline(key, base + u6)


@numba.njit(cache=True, error_model="numpy")
def _count_row(mean, u, key, normal_first):
    """``poisson(mean[j], u[j], normal(key, normal_first + 9 j))`` for a row (int64).

    The inversion runs for all devices at once, term by term, with the arithmetic of
    ``poisson`` (so the same counts): a device's running sum never decreases, so once its
    uniform is below the sum it stays below, and its count is the last term that was not.
    Means at or above the inversion limit take the rounded normal, drawn only for them.
    """
    cols = mean.shape[0]
    rate, term, total = np.empty(cols), np.empty(cols), np.empty(cols)
    out = np.empty(cols, dtype=np.int64)
    for j in range(cols):
        mean_j = np.float64(mean[j])
        rate[j] = mean_j if 0.0 < mean_j < POISSON_INVERSION_LIMIT else 0.0
        term[j] = math.exp(-rate[j])
        total[j] = term[j]  # 1 for rate 0: a uniform never exceeds it
        out[j] = 0
    for count in range(1, POISSON_MAX_TERMS + 1):
        going = 0
        for j in range(cols):
            more = u[j] > total[j]
            out[j] = count if more else out[j]
            term[j] *= rate[j] / count
            total[j] += term[j]
            going += more
        if going == 0:
            break
    for j in range(cols):
        mean_j = np.float64(mean[j])
        if mean_j >= POISSON_INVERSION_LIMIT:
            z = _normal(key, normal_first + np.uint64(j * FAST_SLOTS))
            out[j] = _poisson(mean_j, 0.5, z)
    return out


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
