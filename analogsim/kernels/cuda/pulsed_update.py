"""The pulsed update as CUDA kernels (see :mod:`analogsim.kernels.pulsed_update`).

``apply_fast``: one thread per weight samples its up and down Poisson counts from the two
mean matrices (``scalar.poisson_count``: one hash per count), then applies them in a random
order with the device's step rule, per-device steps and bounds, cycle noise, stuck devices
and the PCM pair refresh; one kernel, one pass. A weight with no pulses reads its two means,
hashes twice and does nothing else: the common case of a small learning rate costs little
more than reading the means. (The CPU kernel draws the same numbers in vectorised passes
over rows; a thread here does it device by device, which is the same arithmetic.)
``pulse_trains`` draws the stochastic pulse trains of the exact sampler and ``apply_exact``
applies their coincidences sample after sample, one thread per weight.

The per-weight rules are those of the CPU kernels (:mod:`analogsim.kernels.device_rules`,
one source) and random numbers use the same counters, drawn only where used as on the CPU,
so results agree with the CPU kernels to floating-point rounding: bit for bit on the
simulator. On a GPU, NVVM fuses ``a * b + c`` into one multiply-add where the CPU rounds
twice, so a conductance lands within a few float32 ulps of the tile's largest conductance
(``tests/gpu/cuda_cases.py``).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import numpy as np

from analogsim.kernels.cuda._runtime import (
    as_key,
    check_shape,
    cuda_module,
    launch,
    scalar_physics,
    small_constant,
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
)
from analogsim.kernels.scalar import POISSON_INVERSION_LIMIT

U = [np.uint64(k) for k in range(3)]
SHIFT_32 = np.uint64(32)
FAST_STRIDE = np.uint64(FAST_SLOTS)
TRAIN_STRIDE = np.uint64(64)


#: ``numba.cuda``, bound on first use. The kernels must find it as a module global: the
#: simulator swaps the module globals that are ``numba.cuda`` for its fake during a launch.
cuda: Any = None


@functools.cache
def _kernels() -> SimpleNamespace:
    global cuda
    cuda = cuda_module()
    physics = scalar_physics()
    normal, uniform, hash64 = physics.normal, physics.uniform, physics.hash64
    normal_pair32, poisson_count = physics.normal_pair32, physics.poisson_count
    popcount, pulse_device = physics.popcount, physics.rules.pulse_device
    pulse_blocks = physics.rules.pulse_blocks
    u0, u1, u2 = U[0], U[1], U[2]

    @cuda.jit
    def apply_fast_kernel(mean_up, mean_down, conductance, written_at, drift_xi, stuck,
                          step_up, step_down, bound_low, bound_high, now, p, key):
        rows, cols = mean_up.shape
        for e in range(cuda.grid(1), rows * cols, cuda.gridsize(1)):
            i = e // cols
            j = e - i * cols
            base = np.uint64(e) * FAST_STRIDE
            m_up = np.float64(mean_up[i, j])
            m_down = np.float64(mean_down[i, j])
            bits_up = hash64(key, base + SLOT_UP)
            n_up = poisson_count(m_up, bits_up, normal(key, base + SLOT_LARGE_UP)
                                 if m_up >= POISSON_INVERSION_LIMIT else 0.0)
            n_down = poisson_count(m_down, hash64(key, base + SLOT_DOWN),
                                   normal(key, base + SLOT_LARGE_DOWN)
                                   if m_down >= POISSON_INVERSION_LIMIT else 0.0)
            if n_up == 0 and n_down == 0:
                continue
            up_first = ((bits_up >> SHIFT_32) & u1) != u0
            z_first, z_second = normal_pair32(key, base + SLOT_NOISE)
            z_up, z_down = np.float64(z_first), np.float64(z_second)
            pulse_blocks(conductance, written_at, drift_xi, stuck, step_up, step_down,
                         bound_low, bound_high, i, j, n_up, n_down, up_first, z_up, z_down,
                         key, base + SLOT_REFRESH_UP, base + SLOT_REFRESH_DOWN, now, p)

    @cuda.jit
    def pulse_trains_kernel(probability, length, key, out_bits):
        batch, count = probability.shape
        for e in range(cuda.grid(1), batch * count, cuda.gridsize(1)):
            b = e // count
            n = e - b * count
            prob = np.float64(probability[b, n])
            bits = np.uint64(0)
            if prob > 0.0:
                base = np.uint64(e) * TRAIN_STRIDE
                for t in range(length):
                    if uniform(key, base + np.uint64(t)) < prob:
                        bits |= u1 << np.uint64(t)
            out_bits[b, n] = bits

    @cuda.jit
    def apply_exact_kernel(x_bits, x_sign, d_bits, d_sign, conductance, written_at, drift_xi,
                           stuck, step_up, step_down, bound_low, bound_high, now, p, key):
        rows, batch = x_bits.shape
        cols = d_bits.shape[0]
        for e in range(cuda.grid(1), rows * cols, cuda.gridsize(1)):
            i = e // cols
            j = e - i * cols
            base = np.uint64(e) * np.uint64(batch) * u2
            for b in range(batch):
                count = popcount(x_bits[i, b] & d_bits[j, b])
                if count == 0:
                    continue
                going_up = x_sign[i, b] * d_sign[j, b] < 0
                slot = base + np.uint64(2 * b)
                pulse_device(conductance, written_at, drift_xi, stuck, step_up, step_down,
                             bound_low, bound_high, i, j, count, going_up, normal(key, slot),
                             key, slot + u1, now, p)

    return SimpleNamespace(apply_fast=apply_fast_kernel, pulse_trains=pulse_trains_kernel,
                           apply_exact=apply_exact_kernel)


def _check_state(owner: str, shape: tuple[int, ...], arrays: tuple[Any, ...]) -> None:
    names = ("conductance", "written_at", "drift_xi", "stuck", "step_up", "step_down",
             "bound_low", "bound_high")
    for name, array in zip(names, arrays, strict=True):
        check_shape(owner, name, array, shape)


def apply_fast_cuda(mean_up: Any, mean_down: Any, conductance: Any, written_at: Any,
                    drift_xi: Any, stuck: Any, step_up: Any, step_down: Any, bound_low: Any,
                    bound_high: Any, now: float, p: Any, key: Any,
                    settled: bool = False) -> None:
    """CUDA version of :func:`analogsim.kernels.pulsed_update.apply_fast_numba`.

    ``settled`` (no device has drift to settle) changes nothing here: each thread checks its
    own device's write time, which it reads with the device's state anyway.

    mean_up, mean_down : (R, C) float32 expected pulse counts; the state arrays are (P, R, C)
    device arrays as in :class:`analogsim._tile_parameters.TileArrays`, updated in place.
    """
    rows, cols = mean_up.shape
    check_shape("apply_fast_cuda", "mean_down", mean_down, (rows, cols))
    state = (conductance, written_at, drift_xi, stuck, step_up, step_down, bound_low,
             bound_high)
    _check_state("apply_fast_cuda", (conductance.shape[0], rows, cols), state)
    launch(_kernels().apply_fast, rows * cols, mean_up, mean_down, *state, float(now),
           small_constant(p), as_key(key))


def pulse_trains_cuda(probability: Any, length: int, key: Any, out_bits: Any) -> None:
    """CUDA version of :func:`analogsim.kernels.pulsed_update.pulse_trains_numba`.

    probability : (B, N) float64 in [0, 1]; out_bits : (B, N) uint64, bit t of a train set
    with its probability (``length`` <= 64 slots).
    """
    check_shape("pulse_trains_cuda", "out_bits", out_bits, tuple(probability.shape))
    launch(_kernels().pulse_trains, int(np.prod(probability.shape)), probability, int(length),
           as_key(key), out_bits)


def apply_exact_cuda(x_bits: Any, x_sign: Any, d_bits: Any, d_sign: Any, conductance: Any,
                     written_at: Any, drift_xi: Any, stuck: Any, step_up: Any, step_down: Any,
                     bound_low: Any, bound_high: Any, now: float, p: Any, key: Any) -> None:
    """CUDA version of :func:`analogsim.kernels.pulsed_update.apply_exact_numba`.

    x_bits : (R, B) uint64 trains, x_sign : (R, B) int8; d_bits : (C, B) uint64,
    d_sign : (C, B) int8 (one row per line, as the CPU kernel takes them); the state arrays
    are (P, R, C), updated in place.
    """
    rows, batch = x_bits.shape
    cols = d_bits.shape[0]
    owner = "apply_exact_cuda"
    check_shape(owner, "x_sign", x_sign, (rows, batch))
    check_shape(owner, "d_bits", d_bits, (cols, batch))
    check_shape(owner, "d_sign", d_sign, (cols, batch))
    state = (conductance, written_at, drift_xi, stuck, step_up, step_down, bound_low,
             bound_high)
    _check_state(owner, (conductance.shape[0], rows, cols), state)
    launch(_kernels().apply_exact, rows * cols, x_bits, x_sign, d_bits, d_sign, *state,
           float(now), small_constant(p), as_key(key))
