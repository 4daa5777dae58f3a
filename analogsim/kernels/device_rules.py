"""The per-weight pulse rules of the pulsed update, written once for the CPU and CUDA.

``settle``, ``refresh_pair`` and ``pulse_device`` in the form of
:func:`analogsim.kernels.scalar.build`: a builder that takes a decorator
(``numba.njit(inline="always")`` in :mod:`analogsim.kernels._cpu_scalar`,
``numba.cuda.jit(device=True)`` in :mod:`analogsim.kernels.cuda._runtime`) and the scalar
physics compiled with the same kind of decorator. Both pulsed-update samplers of both targets
call these, so a CPU kernel and its CUDA twin apply the same arithmetic to the same random
numbers.

Types are explicit, so that the arithmetic is the same under Numba CPU, CUDA and the CUDA
simulator (which runs NumPy scalars, where ``float32 * python float`` would stay float32):
drift and refresh widen the float32 state to float64; a pulse block is float32 throughout
(:func:`analogsim.kernels.scalar.pulse_block`), its inputs read as float32 and its noise
rounded to float32.

``pulse_device`` takes the cycle-noise normal of its block from the caller (the CPU fast
sampler draws a row of them in one vectorised pass) and draws the programming error of a
refresh itself, from the stream key and the refresh counter, only for a pair that is
refreshed (rare). The counters are the samplers' fixed layout, so a draw that is skipped
changes no other number.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from analogsim.kernels.counter_rng import F32
from analogsim.kernels.physics import P_GAMMA_DOWN, P_GAMMA_UP, P_REFRESH


def build_device_rules(jit, physics, rare_jit=None):
    """Compile ``settle``, ``refresh_pair``, ``pulse_device`` and ``pulse_blocks`` with
    ``jit``.

    ``physics`` is the namespace returned by :func:`analogsim.kernels.scalar.build` for the
    same target. ``refresh_pair``, which runs rarely, is compiled with ``rare_jit`` if given
    (on the CPU: called, not inlined, which keeps the kernels' compile time down). State
    arrays are shaped (P, R, C) as in :class:`TileArrays`.
    """
    settled_value = physics.settled_value
    drift_constants = physics.drift_constants
    program_constants = physics.program_constants
    refreshed_pair = physics.refreshed_pair
    steps_up = physics.steps_up
    steps_down = physics.steps_down
    normal = physics.normal

    @jit
    def settle(conductance, written_at, drift_xi, k, i, j, now, p):
        """Fold the drift since the last write into the conductance; restart its clock."""
        elapsed = now - written_at[k, i, j]
        if elapsed > 0.0:
            conductance[k, i, j] = settled_value(np.float64(conductance[k, i, j]), elapsed,
                                                 np.float64(drift_xi[k, i, j]),
                                                 drift_constants(p))
        written_at[k, i, j] = now

    @(jit if rare_jit is None else rare_jit)
    def refresh_pair(conductance, written_at, drift_xi, bound_low, bound_high, i, j, z_refresh,
                     now, p):
        """Read the pair, reset both devices, reprogram the difference onto one of them.

        Only called for pairs without a stuck device.
        """
        for side in range(2):
            settle(conductance, written_at, drift_xi, side, i, j, now, p)
        conductance[0, i, j], conductance[1, i, j] = refreshed_pair(
            conductance[0, i, j], conductance[1, i, j], bound_low[0, i, j], bound_low[1, i, j],
            bound_high[0, i, j], bound_high[1, i, j], z_refresh, program_constants(p))

    @jit
    def pulse_device(conductance, written_at, drift_xi, stuck, step_up, step_down, bound_low,
                     bound_high, i, j, count, going_up, z, key, refresh_counter, now, p):
        """Apply ``count`` pulses of one sign to weight (i, j).

        ``z`` is the standard normal of the block's cycle noise; the programming error of a
        refresh is ``normal(key, refresh_counter)``.
        """
        if count <= 0:
            return
        n = count
        noise = F32(z)
        if conductance.shape[0] == 1:
            if stuck[0, i, j] != 0:
                return
            settle(conductance, written_at, drift_xi, 0, i, j, now, p)
            g = F32(conductance[0, i, j])
            low = F32(bound_low[0, i, j])
            high = F32(bound_high[0, i, j])
            if going_up:
                g = steps_up(g, n, F32(step_up[0, i, j]), high, p[P_GAMMA_UP], low, noise, p)
            else:
                g = steps_down(g, n, F32(step_down[0, i, j]), low, p[P_GAMMA_DOWN], high,
                               noise, p)
            conductance[0, i, j] = g
            return
        side = 0 if going_up else 1
        if stuck[side, i, j] != 0:
            return
        settle(conductance, written_at, drift_xi, side, i, j, now, p)
        start = F32(conductance[side, i, j])
        # SET pulses only ever raise a device: noise cannot take it below where it started.
        conductance[side, i, j] = max(steps_up(
            start, n, F32(step_up[side, i, j]), F32(bound_high[side, i, j]), p[P_GAMMA_UP],
            F32(bound_low[side, i, j]), noise, p), start)
        if stuck[1 - side, i, j] != 0:
            return  # a pair with a stuck device cannot be refreshed
        threshold = p[P_REFRESH]
        if (conductance[0, i, j] > threshold * np.float64(bound_high[0, i, j])
                or conductance[1, i, j] > threshold * np.float64(bound_high[1, i, j])):
            refresh_pair(conductance, written_at, drift_xi, bound_low, bound_high, i, j,
                         normal(key, refresh_counter), now, p)

    @jit
    def pulse_blocks(conductance, written_at, drift_xi, stuck, step_up, step_down, bound_low,
                     bound_high, i, j, n_up, n_down, up_first, z_up, z_down, key,
                     refresh_up_counter, refresh_down_counter, now, p):
        """Both blocks of the fast sampler on weight (i, j), in their order (up first when
        ``up_first``): :func:`pulse_device` of each, with its cycle noise and the counter of
        the refresh that may follow it."""
        for turn in range(2):
            if (turn == 0) == up_first:
                pulse_device(conductance, written_at, drift_xi, stuck, step_up, step_down,
                             bound_low, bound_high, i, j, n_up, True, z_up, key,
                             refresh_up_counter, now, p)
            else:
                pulse_device(conductance, written_at, drift_xi, stuck, step_up, step_down,
                             bound_low, bound_high, i, j, n_down, False, z_down, key,
                             refresh_down_counter, now, p)

    return SimpleNamespace(settle=settle, refresh_pair=refresh_pair, pulse_device=pulse_device,
                           pulse_blocks=pulse_blocks)
