"""Shared helpers of the kernel tests: device presets and randomised tile states.

Imported by the test modules of this folder (pytest puts it on ``sys.path``); the name is
unique so that it cannot shadow another folder's helpers.

The NumPy references and the Numba kernels run the same float64 arithmetic on the same
counter-based random numbers. Only the transcendental functions (exp, log, cos, pow) come
from different libraries (NumPy's vs LLVM/libm) and may round one ulp apart; rounded to a
float32 state that is at most one float32 ulp, hence ``rtol = 2**-22`` (two float32 ulps) and
an absolute floor far below any physical step (1e-9 uS against steps of 1e-3 uS and more).
A one-ulp difference could flip a Poisson count, a pulse bit or an ADC level only if a uniform
fell within ~1e-16 of the threshold: about 1e-12 per test here, so no mismatch is allowed.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import numba
import numpy as np
import pytest

from analogsim import devices
from analogsim._tile_parameters import STUCK_HIGH, STUCK_LOW, TileArrays, draw_tile_arrays
from analogsim.periphery import Periphery

FLOAT32_RTOL = 2.0**-22
STATE_ATOL_US = 1e-9

#: Each preset as shipped, and with many faults (5 % stuck at each end) and finite levels.
DEVICE_CASES = {
    "ideal": devices.Ideal(),
    "pcm": devices.PCM(),
    "pcm-faulty-levels": devices.PCM(stuck_at_gmin=0.05, stuck_at_gmax=0.05, n_levels=16),
    "reram": devices.ReRAM(),
    "reram-faulty-levels": devices.ReRAM(stuck_at_gmin=0.05, stuck_at_gmax=0.05, n_levels=32),
    "ecram": devices.ECRAM(),
    "ecram-faulty-levels": devices.ECRAM(stuck_at_gmin=0.05, stuck_at_gmax=0.05, n_levels=64),
}


#: ``@each_device``: run a test for every entry of :data:`DEVICE_CASES`.
each_device = pytest.mark.parametrize("device", list(DEVICE_CASES.values()),
                                      ids=list(DEVICE_CASES))


def random_state(device: devices.DeviceModel, rows: int = 24, cols: int = 20, *,
                 seed: int = 1, now: float = 0.0, max_age: float = 0.0) -> TileArrays:
    """A tile's arrays with free conductances uniform in their bounds and random ages.

    Devices were last written between ``now - max_age`` and ``now``; stuck ones keep the
    value ``draw_tile_arrays`` gave them. Infinite bounds (the ideal device) are read as
    +-g_max.
    """
    arrays = draw_tile_arrays(seed, "kernel-test", rows, cols, device, Periphery(), now)
    rng = np.random.default_rng(seed)
    low = np.where(np.isfinite(arrays.bound_low), arrays.bound_low, -device.g_max)
    high = np.where(np.isfinite(arrays.bound_high), arrays.bound_high, device.g_max)
    values = (low + (high - low) * rng.random(low.shape)).astype(np.float32)
    free = arrays.stuck == 0
    arrays.conductance[free] = values[free]
    arrays.written_at[...] = now - max_age * rng.random(arrays.written_at.shape)
    return arrays


def state_arrays(arrays: TileArrays) -> list[np.ndarray]:
    """Copies of the mutable arrays and the fixed ones, in kernel argument order."""
    return [arrays.conductance.copy(), arrays.written_at.copy(), arrays.drift_xi, arrays.stuck,
            arrays.step_up, arrays.step_down, arrays.bound_low, arrays.bound_high]


def assert_states_agree(numba_state: list[np.ndarray], numpy_state: list[np.ndarray]) -> None:
    """Conductances to float32 rounding (see the module docstring), write times exactly."""
    np.testing.assert_allclose(numpy_state[0], numba_state[0], rtol=FLOAT32_RTOL,
                               atol=STATE_ATOL_US)
    np.testing.assert_array_equal(numpy_state[1], numba_state[1])


def has_stuck(arrays: TileArrays) -> bool:
    return bool(np.any(arrays.stuck == STUCK_LOW) or np.any(arrays.stuck == STUCK_HIGH))


def with_fields(device: devices.DeviceModel, **changes: object) -> devices.DeviceModel:
    return dataclasses.replace(device, **changes)


@contextlib.contextmanager
def one_numba_thread() -> Iterator[None]:
    """Run Numba's parallel kernels on one thread inside the block.

    The statistical tests make thousands of calls on small tiles, where launching the thread
    pool costs more than the work (milliseconds per call on a loaded machine). Results do
    not depend on the thread count: every random number is a function of its counter.
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
