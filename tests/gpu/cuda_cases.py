"""Shared cases of the CUDA kernel tests (simulator and GPU): devices, states, comparisons.

Imported by the test modules of this folder (pytest puts it on ``sys.path``; the name is
unique so that it cannot shadow another folder's helpers).

The CUDA kernels and the Numba CPU kernels run the same arithmetic on the same
counter-based random numbers. On the simulator (Python ``math``, no fused multiply-add) they
agree to one float32 ulp, hence ``rtol = 2**-22``, an absolute floor far below any physical
step, and exact equality for the write times and every integer result (pulse bits).

On a GPU, NVVM contracts ``a * b + c`` into one fused multiply-add (its default), which the
CPU build does not: the polynomials of the normal draws then differ in their last bit (about
1 % of float32 draws, measured on an H100), and the pulse rule ``g + first * total`` rounds
once instead of twice. A conductance then lands an ulp or two of the tile's largest
conductance away from the CPU's; where that sum cancels the relative difference is large
but the absolute one is not. GPU comparisons of conductances therefore allow
:data:`FUSED_ULPS` ulps of the largest expected conductance (``fused=True``); write times
and integer results must still agree exactly. A last-bit difference flips a Poisson count,
a pulse bit or an ADC level only when a uniform lies within about 1e-7 of its threshold:
the tests here are too small for that to be expected.
"""

from __future__ import annotations

import numpy as np

from analogsim import devices
from analogsim._tile_parameters import TileArrays, draw_tile_arrays
from analogsim.periphery import Periphery

FLOAT32_RTOL = 2.0**-22
STATE_ATOL_US = 1e-9
#: Float32 ulps of the largest conductance a fused multiply-add may move a GPU result by:
#: measured up to 2 for a fast update (two pulse blocks) and for an exact update of 33
#: samples on an H100; 8 leaves room for longer chains without hiding a wrong rule, whose
#: errors are of the order of a pulse step (thousands of ulps).
FUSED_ULPS = 8
KEY = np.uint64(0xD1B5_4A32_D192_ED03)

#: Presets with many faults (10 % stuck at each end), PCM and ReRAM with finite levels.
DEVICES = {
    "reram-faulty": devices.ReRAM(stuck_at_gmin=0.1, stuck_at_gmax=0.1, n_levels=32),
    "pcm-faulty": devices.PCM(stuck_at_gmin=0.1, stuck_at_gmax=0.1, n_levels=16),
    "ecram-faulty": devices.ECRAM(stuck_at_gmin=0.1, stuck_at_gmax=0.1),
}


def random_state(device: devices.DeviceModel, rows: int, cols: int, *, seed: int = 1,
                 now: float = 0.0, max_age: float = 0.0, fill: float = 1.0) -> TileArrays:
    """A tile's arrays, free conductances uniform in ``[low, low + fill (high - low)]``.

    Devices were last written between ``now - max_age`` and ``now``. ``fill`` near 1 puts
    PCM pairs past their refresh threshold.
    """
    arrays = draw_tile_arrays(seed, "cuda-kernel-test", rows, cols, device, Periphery(), now)
    rng = np.random.default_rng(seed)
    low = np.where(np.isfinite(arrays.bound_low), arrays.bound_low, -device.g_max)
    high = np.where(np.isfinite(arrays.bound_high), arrays.bound_high, device.g_max)
    values = (low + fill * (high - low) * rng.random(low.shape)).astype(np.float32)
    free = arrays.stuck == 0
    arrays.conductance[free] = values[free]
    arrays.written_at[...] = now - max_age * rng.random(arrays.written_at.shape)
    return arrays


def state_arrays(arrays: TileArrays) -> list[np.ndarray]:
    """Copies of the state arrays in kernel argument order (the mutable two first)."""
    return [a.copy() for a in (arrays.conductance, arrays.written_at, arrays.drift_xi,
                               arrays.stuck, arrays.step_up, arrays.step_down,
                               arrays.bound_low, arrays.bound_high)]


def pulse_means(rows: int, cols: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Expected counts: zeros, small ones, and some past the Poisson inversion limit (30)."""
    rng = np.random.default_rng(seed)
    up = rng.exponential(4.0, (rows, cols)).astype(np.float32)
    down = rng.exponential(4.0, (rows, cols)).astype(np.float32)
    up[rng.random(up.shape) < 0.2] = 0.0
    down[rng.random(down.shape) < 0.15] = 40.0
    return up, down


def signs_of(device: devices.DeviceModel) -> np.ndarray:
    return np.array([1.0, -1.0][: device.devices_per_weight])


def assert_close_float32(actual: np.ndarray, expected: np.ndarray) -> None:
    """float32 results to one or two ulps (see the module docstring)."""
    np.testing.assert_allclose(actual, expected, rtol=FLOAT32_RTOL, atol=STATE_ATOL_US)


def assert_states_agree(actual: list[np.ndarray], expected: list[np.ndarray], *,
                        fused: bool = False) -> None:
    """Conductances to float32 rounding (``fused``: to :data:`FUSED_ULPS` ulps of the
    largest expected conductance, for GPU code built with fused multiply-add), write times
    exactly."""
    if fused:
        scale = np.spacing(np.float32(np.max(np.abs(expected[0]))))
        np.testing.assert_allclose(actual[0], expected[0], rtol=0.0,
                                   atol=FUSED_ULPS * float(scale))
    else:
        assert_close_float32(actual[0], expected[0])
    np.testing.assert_array_equal(actual[1], expected[1])
