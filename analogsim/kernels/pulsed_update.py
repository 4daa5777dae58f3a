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

Both samplers share :func:`_pulse_device`, which applies ``n`` pulses of one sign to one
weight: drift since the last write is folded in first (the device restarts its drift clock),
stuck devices ignore pulses, a PCM pair (unipolar SET on G+ or G-, never lowering the device)
is refreshed when one side passes ``refresh_threshold`` of its maximum (not when either device
of the pair is stuck).
"""

from __future__ import annotations

import numba
import numpy as np

from analogsim.kernels._cpu_scalar import S
from analogsim.kernels.physics import P_GAMMA_DOWN, P_GAMMA_UP, P_GMAX, P_REFRESH

_normal = S.normal
_uniform = S.uniform
_poisson = S.poisson
_popcount = S.popcount
_steps_up = S.steps_up
_steps_down = S.steps_down
_program_value = S.program_value
_drift_exponent = S.drift_exponent
_drift_factor = S.drift_factor

#: Random numbers per device in the fast sampler (counter stride): up count (uniform, normal),
#: down count (uniform, normal), order, up noise, down noise, refresh after up, after down.
FAST_SLOTS = 9


def pulse_count_means(x, d, pulses_per_unit):
    """Expected up and down pulse counts of every device over a batch, from two matmuls.

    Parameters
    ----------
    x : (B, R) float32 inputs; d : (B, C) float32 errors.
    pulses_per_unit : float
        Nominal pulses per unit of ``|x_j d_i|`` (``lr / (weight_scale * dw_min)``).

    Returns
    -------
    (up, down): two (R, C) float32 arrays.
    """
    magnitude = np.abs(x).T @ np.abs(d)
    signed = x.T @ d
    half = np.float32(0.5 * pulses_per_unit)
    up = np.maximum((magnitude - signed) * half, 0.0, dtype=np.float32)
    down = np.maximum((magnitude + signed) * half, 0.0, dtype=np.float32)
    return up, down


@numba.njit(cache=True)
def _settle(conductance, written_at, drift_xi, k, i, j, now, p):
    """Fold the drift since the last write into the stored conductance; restart its clock."""
    elapsed = now - written_at[k, i, j]
    if elapsed > 0.0:
        g = np.float64(conductance[k, i, j])
        nu = _drift_exponent(abs(g) / p[P_GMAX], np.float64(drift_xi[k, i, j]), p)
        conductance[k, i, j] = g * _drift_factor(elapsed, nu, p)
    written_at[k, i, j] = now


@numba.njit(cache=True)
def _pulse_device(conductance, written_at, drift_xi, stuck, step_up, step_down, bound_low,
                  bound_high, i, j, count, going_up, z, z_refresh, now, p):
    """Apply ``count`` pulses of one sign to weight (i, j); see the module docstring."""
    if count <= 0:
        return
    n = np.float64(count)
    if conductance.shape[0] == 1:
        if stuck[0, i, j] != 0:
            return
        _settle(conductance, written_at, drift_xi, 0, i, j, now, p)
        g = np.float64(conductance[0, i, j])
        if going_up:
            g = _steps_up(g, n, step_up[0, i, j], bound_high[0, i, j], p[P_GAMMA_UP],
                          bound_low[0, i, j], z, p)
        else:
            g = _steps_down(g, n, step_down[0, i, j], bound_low[0, i, j], p[P_GAMMA_DOWN],
                            bound_high[0, i, j], z, p)
        conductance[0, i, j] = g
        return
    side = 0 if going_up else 1
    if stuck[side, i, j] != 0:
        return
    _settle(conductance, written_at, drift_xi, side, i, j, now, p)
    start = np.float64(conductance[side, i, j])
    # SET pulses only ever raise a device: noise cannot take it below where it started.
    conductance[side, i, j] = max(_steps_up(start, n, step_up[side, i, j],
                                            bound_high[side, i, j], p[P_GAMMA_UP],
                                            bound_low[side, i, j], z, p), start)
    if stuck[1 - side, i, j] != 0:
        return  # a pair with a stuck device cannot be refreshed
    threshold = p[P_REFRESH]
    if (conductance[0, i, j] > threshold * bound_high[0, i, j]
            or conductance[1, i, j] > threshold * bound_high[1, i, j]):
        _refresh_pair(conductance, written_at, drift_xi, stuck, bound_low, bound_high, i, j,
                      z_refresh, now, p)


@numba.njit(cache=True)
def _refresh_pair(conductance, written_at, drift_xi, stuck, bound_low, bound_high, i, j,
                  z_refresh, now, p):
    """Read the pair, reset both devices, reprogram the difference onto one of them."""
    for side in range(2):
        _settle(conductance, written_at, drift_xi, side, i, j, now, p)
    difference = np.float64(conductance[0, i, j]) - np.float64(conductance[1, i, j])
    target_side = 0 if difference >= 0.0 else 1
    for side in range(2):
        if side == target_side:
            conductance[side, i, j] = _program_value(abs(difference), bound_low[side, i, j],
                                                     bound_high[side, i, j], z_refresh, p)
        else:
            conductance[side, i, j] = bound_low[side, i, j]
        written_at[side, i, j] = now


@numba.njit(parallel=True, cache=True)
def apply_fast_numba(mean_up, mean_down, conductance, written_at, drift_xi, stuck, step_up,
                     step_down, bound_low, bound_high, now, p, key):
    """Fast sampler: Poisson counts from the (R, C) means, then the pulses of each device."""
    rows, cols = mean_up.shape
    stride = np.uint64(FAST_SLOTS)
    for i in numba.prange(rows):
        for j in range(cols):
            base = np.uint64(i * cols + j) * stride
            n_up = _poisson(np.float64(mean_up[i, j]), _uniform(key, base),
                            _normal(key, base + np.uint64(1)))
            n_down = _poisson(np.float64(mean_down[i, j]), _uniform(key, base + np.uint64(2)),
                              _normal(key, base + np.uint64(3)))
            if n_up == 0 and n_down == 0:
                continue
            up_first = _uniform(key, base + np.uint64(4)) < 0.5
            z_up = _normal(key, base + np.uint64(5))
            z_down = _normal(key, base + np.uint64(6))
            z_refresh_up = _normal(key, base + np.uint64(7))
            z_refresh_down = _normal(key, base + np.uint64(8))
            for turn in range(2):
                if (turn == 0) == up_first:
                    _pulse_device(conductance, written_at, drift_xi, stuck, step_up, step_down,
                                  bound_low, bound_high, i, j, n_up, True, z_up, z_refresh_up,
                                  now, p)
                else:
                    _pulse_device(conductance, written_at, drift_xi, stuck, step_up, step_down,
                                  bound_low, bound_high, i, j, n_down, False, z_down,
                                  z_refresh_down, now, p)


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
    """Exact sampler: coincidences of the pulse trains, applied sample after sample."""
    batch, rows = x_bits.shape
    cols = d_bits.shape[1]
    for i in numba.prange(rows):
        for j in range(cols):
            base = np.uint64(i * cols + j) * np.uint64(batch) * np.uint64(2)
            for b in range(batch):
                count = _popcount(x_bits[b, i] & d_bits[b, j])
                if count == 0:
                    continue
                going_up = x_sign[b, i] * d_sign[b, j] < 0
                slot = base + np.uint64(2 * b)
                _pulse_device(conductance, written_at, drift_xi, stuck, step_up, step_down,
                              bound_low, bound_high, i, j, count, going_up,
                              _normal(key, slot), _normal(key, slot + np.uint64(1)), now, p)
