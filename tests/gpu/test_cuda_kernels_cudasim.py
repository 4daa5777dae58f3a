"""The CUDA kernels on Numba's CPU simulator against the Numba CPU kernels, case by case.

Needs ``NUMBA_ENABLE_CUDASIM=1`` before Numba is imported, so in a plain ``pytest`` run these
tests are skipped here and run in a subprocess by ``test_cudasim_runner.py``; with the
variable set (``NUMBA_ENABLE_CUDASIM=1 python -m pytest -m cudasim``) they run in process.
Arrays are small: the simulator runs every CUDA thread as a Python thread. Sizes are not
multiples of the simulator's 32-thread blocks, so the grid-stride bounds are exercised.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from cuda_cases import (
    DEVICES,
    KEY,
    assert_close_float32,
    assert_states_agree,
    pulse_means,
    random_state,
    signs_of,
    state_arrays,
)

from analogsim import devices
from analogsim.errors import ShapeError
from analogsim.kernels import cuda as cuda_kernels
from analogsim.kernels import drift, mvm, program, pulsed_update

pytestmark = pytest.mark.cudasim
if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 before Numba is imported; without it "
                "test_cudasim_runner.py runs this module in a subprocess",
                allow_module_level=True)

ROWS, COLS, NOW = 5, 7, 1e3


@pytest.fixture(scope="module")
def cuda():
    from numba import cuda

    assert cuda_kernels.in_simulator()
    return cuda


def _on_device(cuda, arrays):
    return [cuda.to_device(np.ascontiguousarray(a)) for a in arrays]


def _on_host(device_arrays):
    return [a.copy_to_host() for a in device_arrays]


# ------------------------------------------------------------------ epilogue
EPILOGUE_CASES = {
    "read-and-out-noise-adc": (True, 0.06, 12.0 / 255, 12.0),
    "read-noise-ideal-adc": (True, 0.0, 0.0, np.inf),
    "out-noise-only": (False, 0.06, 12.0 / 255, 12.0),
    "noiseless-clipping": (False, 0.0, 0.5, 1.0),
}


@pytest.mark.parametrize("case", list(EPILOGUE_CASES.values()), ids=list(EPILOGUE_CASES))
def test_epilogue_matches_cpu(cuda, case):
    with_variance, out_noise, adc_step, adc_range = case
    rng = np.random.default_rng(0)
    batch, cols = 3, 11
    y = rng.normal(0.0, 2.0, (batch, cols)).astype(np.float32)
    variance = rng.uniform(0.0, 0.05, (batch, cols)).astype(np.float32)
    input_scale = rng.uniform(0.5, 2.0, batch).astype(np.float32)
    gain = (1.0 + 0.02 * rng.standard_normal(cols)).astype(np.float32)
    offset = (0.02 * rng.standard_normal(cols)).astype(np.float32)
    scalars = (out_noise, adc_step, adc_range, 0.7, KEY)
    expected = np.empty_like(y)
    mvm.epilogue_numba(y, variance if with_variance else None, input_scale, gain, offset,
                       *scalars, expected)
    d_y, d_var, d_scale, d_gain, d_offset = _on_device(
        cuda, (y, variance, input_scale, gain, offset))
    d_out = cuda.device_array_like(y)
    cuda_kernels.epilogue_cuda(d_y, d_var if with_variance else None, d_scale, d_gain,
                               d_offset, *scalars, d_out)
    assert_close_float32(d_out.copy_to_host(), expected)


def test_epilogue_with_a_per_row_variance_matches_cpu(cuda):
    rng = np.random.default_rng(3)
    batch, cols = 4, 9
    y = rng.normal(0.0, 2.0, (batch, cols)).astype(np.float32)
    row_variance = rng.uniform(0.0, 0.05, (batch, 1)).astype(np.float32)
    vectors = (rng.uniform(0.5, 2.0, batch).astype(np.float32),
               np.ones(cols, np.float32), np.zeros(cols, np.float32))
    scalars = (0.06, 12.0 / 255, 12.0, 0.7, KEY)
    expected = np.empty_like(y)
    mvm.epilogue_numba(y, row_variance, *vectors, *scalars, expected)
    d_out = cuda.device_array_like(y)
    cuda_kernels.epilogue_cuda(*_on_device(cuda, (y, row_variance, *vectors)), *scalars, d_out)
    assert_close_float32(d_out.copy_to_host(), expected)


def test_epilogue_writes_in_place_over_y(cuda):
    rng = np.random.default_rng(1)
    y = rng.normal(size=(2, 9)).astype(np.float32)
    ones, zeros = np.ones(9, np.float32), np.zeros(9, np.float32)
    scale = np.ones(2, np.float32)
    expected = np.empty_like(y)
    mvm.epilogue_numba(y, None, scale, ones, zeros, 0.1, 0.0, np.inf, 1.0, KEY, expected)
    d_y = cuda.to_device(y)
    cuda_kernels.epilogue_cuda(d_y, None, cuda.to_device(scale), cuda.to_device(ones),
                               cuda.to_device(zeros), 0.1, 0.0, np.inf, 1.0, KEY, d_y)
    assert_close_float32(d_y.copy_to_host(), expected)


# ------------------------------------------------------------------ drift and read noise
@pytest.mark.parametrize("with_variance", [True, False], ids=["with-variance", "weights-only"])
@pytest.mark.parametrize("name", ["pcm-faulty", "reram-faulty"])
def test_effective_weights_match_cpu(cuda, name, with_variance):
    device = DEVICES[name]
    arrays = random_state(device, ROWS, COLS, now=NOW, max_age=NOW)
    inputs = (arrays.conductance, arrays.written_at, arrays.drift_xi, arrays.stuck)
    p, signs = device.physics().pack(), signs_of(device)
    weight, variance = np.empty((2, ROWS, COLS), np.float32)
    drift.effective_weights_numba(*inputs, signs, NOW, p, weight,
                                  variance if with_variance else None)
    d_weight, d_variance = cuda.device_array((ROWS, COLS), np.float32), None
    if with_variance:
        d_variance = cuda.device_array((ROWS, COLS), np.float32)
    cuda_kernels.effective_weights_cuda(*_on_device(cuda, inputs), cuda.to_device(signs), NOW,
                                        cuda.to_device(p), d_weight, d_variance)
    assert_close_float32(d_weight.copy_to_host(), weight)
    if with_variance:
        assert_close_float32(d_variance.copy_to_host(), variance)


# ------------------------------------------------------------------ programming
@pytest.mark.parametrize("name", list(DEVICES))
def test_program_matches_cpu(cuda, name):
    device = DEVICES[name]
    arrays = random_state(device, ROWS, COLS)
    targets = np.random.default_rng(2).uniform(
        -device.g_max, device.g_max, arrays.conductance.shape).astype(np.float32)
    expected = state_arrays(arrays)
    args = (arrays.stuck, arrays.bound_low, arrays.bound_high, NOW, device.physics().pack(),
            KEY)
    program.program_numba(targets, expected[0], expected[1], *args)
    d_targets, d_conductance, d_written, d_stuck, d_low, d_high = _on_device(
        cuda, (targets, arrays.conductance, arrays.written_at, *args[:3]))
    cuda_kernels.program_cuda(d_targets, d_conductance, d_written, d_stuck, d_low, d_high, NOW,
                              args[4], KEY)
    assert_states_agree(_on_host([d_conductance, d_written]), expected[:2])
    assert np.any(arrays.stuck != 0), "the case must include stuck devices"


# ------------------------------------------------------------------ pulsed update
def _run_apply_fast(cuda, device, arrays, key=KEY):
    up, down = pulse_means(ROWS, COLS)
    p = device.physics().pack()
    state = _on_device(cuda, state_arrays(arrays))
    cuda_kernels.apply_fast_cuda(cuda.to_device(up), cuda.to_device(down), *state, NOW, p, key)
    return _on_host(state[:2])


@pytest.mark.parametrize("max_age", [0.0, NOW], ids=["fresh", "aged"])
@pytest.mark.parametrize("name", list(DEVICES))
def test_apply_fast_matches_cpu(cuda, name, max_age):
    device = DEVICES[name]
    arrays = random_state(device, ROWS, COLS, now=NOW, max_age=max_age, fill=0.97)
    expected = state_arrays(arrays)
    up, down = pulse_means(ROWS, COLS)
    pulsed_update.apply_fast_numba(up, down, *expected, NOW, device.physics().pack(), KEY)
    actual = _run_apply_fast(cuda, device, arrays)
    assert_states_agree(actual, expected[:2])


def test_apply_fast_refreshes_pcm_pairs_like_cpu(cuda):
    device = DEVICES["pcm-faulty"]
    arrays = random_state(device, ROWS, COLS, now=NOW, fill=0.97)
    actual = _run_apply_fast(cuda, device, arrays)
    # A refresh resets the losing side of a free pair to its lower bound.
    reset = (actual[0] == arrays.bound_low) & (arrays.conductance != arrays.bound_low)
    assert np.any(reset & (arrays.stuck == 0)), "the case must trigger pair refreshes"


def test_apply_fast_same_key_same_result(cuda):
    device = DEVICES["reram-faulty"]
    arrays = random_state(device, ROWS, COLS, now=NOW, max_age=NOW)
    first = _run_apply_fast(cuda, device, arrays)
    second = _run_apply_fast(cuda, device, arrays)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def _trains(batch, count, seed):
    probability = np.random.default_rng(seed).uniform(0.0, 0.6, (batch, count))
    probability[:, 0] = 0.0  # a silent line
    bits = np.empty((batch, count), dtype=np.uint64)
    pulsed_update.pulse_trains_numba(probability, 31, KEY, bits)
    return probability, bits


def test_pulse_trains_match_cpu(cuda):
    probability, expected = _trains(3, 13, seed=4)
    d_bits = cuda.device_array(expected.shape, dtype=np.uint64)
    cuda_kernels.pulse_trains_cuda(cuda.to_device(probability), 31, KEY, d_bits)
    np.testing.assert_array_equal(d_bits.copy_to_host(), expected)


@pytest.mark.parametrize("name", ["reram-faulty", "pcm-faulty"])
def test_apply_exact_matches_cpu(cuda, name):
    device = DEVICES[name]
    arrays = random_state(device, ROWS, COLS, now=NOW, max_age=NOW, fill=0.97)
    batch = 3
    _, x_bits = _trains(batch, ROWS, seed=5)
    _, d_bits = _trains(batch, COLS, seed=6)
    rng = np.random.default_rng(7)
    x_sign = rng.choice(np.array([-1, 1], dtype=np.int8), (batch, ROWS))
    d_sign = rng.choice(np.array([-1, 1], dtype=np.int8), (batch, COLS))
    # One row per line, (lines, batch), as the tile passes them.
    x_bits, x_sign, d_bits, d_sign = (np.ascontiguousarray(a.T)
                                      for a in (x_bits, x_sign, d_bits, d_sign))
    p = device.physics().pack()
    expected = state_arrays(arrays)
    pulsed_update.apply_exact_numba(x_bits, x_sign, d_bits, d_sign, *expected, NOW, p, KEY)
    state = _on_device(cuda, state_arrays(arrays))
    cuda_kernels.apply_exact_cuda(*_on_device(cuda, (x_bits, x_sign, d_bits, d_sign)), *state,
                                  NOW, p, KEY)
    assert_states_agree(_on_host(state[:2]), expected[:2])


# ------------------------------------------------------------------ wrappers and kernel set
def test_wrapper_rejects_a_mismatched_state_array(cuda):
    device = devices.ReRAM()
    arrays = random_state(device, ROWS, COLS)
    state = state_arrays(arrays)
    state[2] = state[2][:, :-1]  # drift_xi one column short
    up, down = pulse_means(ROWS, COLS)
    with pytest.raises(ShapeError, match=r"'drift_xi' argument of apply_fast_cuda must have "
                                         r"shape \(1, 5, 7\)"):
        cuda_kernels.apply_fast_cuda(up, down, *state, NOW, device.physics().pack(), KEY)


def test_epilogue_rejects_a_short_gain_vector(cuda):
    y = np.zeros((2, 4), np.float32)
    with pytest.raises(ShapeError, match=r"'gain' argument of epilogue_cuda"):
        cuda_kernels.epilogue_cuda(y, None, np.ones(2, np.float32), np.ones(3, np.float32),
                                   np.zeros(4, np.float32), 0.0, 0.0, np.inf, 1.0, KEY, y)


def test_kernel_set_is_named_cuda_and_allocates_with_numpy_under_the_simulator(cuda):
    kernels = cuda_kernels.get_cuda_kernels()
    assert kernels.name == "cuda"
    assert kernels.xp is np
    assert kernels.epilogue is cuda_kernels.epilogue_cuda
    assert kernels.apply_fast is cuda_kernels.apply_fast_cuda
