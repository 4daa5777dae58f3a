"""The CUDA kernels and the cuBLAS matmul option on a real GPU, with CuPy arrays.

Marked ``gpu`` and skipped without an NVIDIA GPU and CuPy (run with ``python -m pytest -m gpu
tests/gpu``). Each kernel is compared with its Numba CPU twin on random states (tolerances in
``cuda_cases``: the GPU build fuses ``a * b + c`` into one multiply-add, the CPU build does
not, so conductances agree to a few ulps of the largest one), the epilogue's noise with
theory at a stated false-failure rate, and the TF32/bf16 matmuls with a float64 reference and
with the read noise of the presets.
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
from analogsim.backends import cuda_available
from analogsim.kernels import cuda as cuda_kernels
from analogsim.kernels import drift, mvm, program, pulsed_update
from analogsim.kernels.cuda.matmul import matmul, precision_error, read_noise_case

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                       reason="needs the real numba.cuda, not the simulator"),
]
ROWS, COLS, BATCH, NOW = 96, 80, 33, 1e3


@pytest.fixture(scope="module")
def cp():
    if not cuda_available():
        pytest.skip("needs an NVIDIA GPU with CuPy")
    import cupy

    return cupy


def _gpu(cp, arrays):
    return [cp.asarray(a) for a in arrays]


# ------------------------------------------------------------------ kernels against the CPU
def test_epilogue_matches_cpu(cp):
    rng = np.random.default_rng(0)
    y = rng.normal(0.0, 2.0, (BATCH, COLS)).astype(np.float32)
    variance = rng.uniform(0.0, 0.05, (BATCH, COLS)).astype(np.float32)
    vectors = (rng.uniform(0.5, 2.0, BATCH).astype(np.float32),
               (1.0 + 0.02 * rng.standard_normal(COLS)).astype(np.float32),
               (0.02 * rng.standard_normal(COLS)).astype(np.float32))
    scalars = (0.06, 12.0 / 255, 12.0, 0.7, KEY)
    expected = np.empty_like(y)
    mvm.epilogue_numba(y, variance, *vectors, *scalars, expected)
    out = cp.full(y.shape, cp.nan, dtype=cp.float32)  # poisoned: every element must be written
    cuda_kernels.epilogue_cuda(*_gpu(cp, (y, variance, *vectors)), *scalars, out)
    assert_close_float32(cp.asnumpy(out), expected)


@pytest.mark.parametrize("name", ["pcm-faulty", "reram-faulty"])
def test_effective_weights_match_cpu(cp, name):
    device = DEVICES[name]
    arrays = random_state(device, ROWS, COLS, now=NOW, max_age=NOW)
    inputs = (arrays.conductance, arrays.written_at, arrays.drift_xi, arrays.stuck)
    p, signs = device.physics().pack(), signs_of(device)
    weight, variance = np.empty((2, ROWS, COLS), np.float32)
    drift.effective_weights_numba(*inputs, signs, NOW, p, weight, variance)
    d_weight, d_variance = cp.full((2, ROWS, COLS), cp.nan, dtype=cp.float32)
    cuda_kernels.effective_weights_cuda(*_gpu(cp, inputs), cp.asarray(signs), NOW,
                                        cp.asarray(p), d_weight, d_variance)
    assert_close_float32(cp.asnumpy(d_weight), weight)
    assert_close_float32(cp.asnumpy(d_variance), variance)


@pytest.mark.parametrize("name", list(DEVICES))
def test_program_matches_cpu(cp, name):
    device = DEVICES[name]
    arrays = random_state(device, ROWS, COLS)
    targets = np.random.default_rng(2).uniform(
        -device.g_max, device.g_max, arrays.conductance.shape).astype(np.float32)
    fixed = (arrays.stuck, arrays.bound_low, arrays.bound_high)
    expected = state_arrays(arrays)
    program.program_numba(targets, expected[0], expected[1], *fixed, NOW,
                          device.physics().pack(), KEY)
    state = _gpu(cp, (arrays.conductance, arrays.written_at))
    cuda_kernels.program_cuda(cp.asarray(targets), *state, *_gpu(cp, fixed), NOW,
                              device.physics().pack(), KEY)
    assert_states_agree([cp.asnumpy(a) for a in state], expected[:2], fused=True)


@pytest.mark.parametrize("max_age", [0.0, NOW], ids=["fresh", "aged"])
@pytest.mark.parametrize("name", list(DEVICES))
def test_apply_fast_matches_cpu(cp, name, max_age):
    device = DEVICES[name]
    arrays = random_state(device, ROWS, COLS, now=NOW, max_age=max_age, fill=0.97)
    up, down = pulse_means(ROWS, COLS)
    p = device.physics().pack()
    expected = state_arrays(arrays)
    pulsed_update.apply_fast_numba(up, down, *expected, NOW, p, KEY)
    state = _gpu(cp, state_arrays(arrays))
    cuda_kernels.apply_fast_cuda(cp.asarray(up), cp.asarray(down), *state, NOW, cp.asarray(p),
                                 KEY)
    assert_states_agree([cp.asnumpy(a) for a in state[:2]], expected[:2], fused=True)


def test_apply_fast_same_key_same_result(cp):
    device = DEVICES["pcm-faulty"]
    arrays = random_state(device, ROWS, COLS, now=NOW, max_age=NOW, fill=0.97)
    up, down = _gpu(cp, pulse_means(ROWS, COLS))
    results = []
    for _ in range(2):
        state = _gpu(cp, state_arrays(arrays))
        cuda_kernels.apply_fast_cuda(up, down, *state, NOW, device.physics().pack(), KEY)
        results.append([cp.asnumpy(a) for a in state[:2]])
    for first, second in zip(*results, strict=True):
        np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", ["reram-faulty", "pcm-faulty"])
def test_pulse_trains_and_apply_exact_match_cpu(cp, name):
    device = DEVICES[name]
    rng = np.random.default_rng(5)
    x_probability = rng.uniform(0.0, 0.6, (BATCH, ROWS))
    d_probability = rng.uniform(0.0, 0.6, (BATCH, COLS))
    x_bits, d_bits = np.empty((BATCH, ROWS), np.uint64), np.empty((BATCH, COLS), np.uint64)
    pulsed_update.pulse_trains_numba(x_probability, 31, KEY, x_bits)
    pulsed_update.pulse_trains_numba(d_probability, 31, KEY, d_bits)
    gpu_x_bits = cp.zeros(x_bits.shape, cp.uint64)
    cuda_kernels.pulse_trains_cuda(cp.asarray(x_probability), 31, KEY, gpu_x_bits)
    np.testing.assert_array_equal(cp.asnumpy(gpu_x_bits), x_bits)
    x_sign = rng.choice(np.array([-1, 1], dtype=np.int8), (BATCH, ROWS))
    d_sign = rng.choice(np.array([-1, 1], dtype=np.int8), (BATCH, COLS))
    # One row per line, (lines, batch), as the tile passes them.
    x_bits, x_sign, d_bits, d_sign = (np.ascontiguousarray(a.T)
                                      for a in (x_bits, x_sign, d_bits, d_sign))
    arrays = random_state(device, ROWS, COLS, now=NOW, max_age=NOW, fill=0.97)
    p = device.physics().pack()
    expected = state_arrays(arrays)
    pulsed_update.apply_exact_numba(x_bits, x_sign, d_bits, d_sign, *expected, NOW, p, KEY)
    state = _gpu(cp, state_arrays(arrays))
    cuda_kernels.apply_exact_cuda(*_gpu(cp, (x_bits, x_sign, d_bits, d_sign)), *state, NOW, p,
                                  KEY)
    assert_states_agree([cp.asnumpy(a) for a in state[:2]], expected[:2], fused=True)


# ------------------------------------------------------------------ statistics
def test_epilogue_noise_has_the_summed_variance(cp):
    """(out - y) / sqrt(v + out_noise^2) over 1e6 outputs: mean 0 and variance 1 within
    5 standard errors (false-failure rate about 1e-6 per moment)."""
    batch, cols, out_noise = 1000, 1000, 0.03
    n = batch * cols
    y = cp.zeros((batch, cols), cp.float32)
    variance = cp.asarray(np.random.default_rng(6).uniform(0.0, 0.04, (batch, cols)),
                          dtype=cp.float32)
    ones, zeros = cp.ones(cols, cp.float32), cp.zeros(cols, cp.float32)
    out = cp.empty_like(y)
    cuda_kernels.epilogue_cuda(y, variance, cp.ones(batch, cp.float32), ones, zeros, out_noise,
                               0.0, np.inf, 1.0, KEY, out)
    z = cp.asnumpy(out).astype(np.float64) / np.sqrt(cp.asnumpy(variance) + out_noise**2)
    assert abs(z.mean()) < 5.0 / np.sqrt(n)
    assert abs(z.var() - 1.0) < 5.0 * np.sqrt(2.0 / n)


# ------------------------------------------------------------------ matmul precision
@pytest.mark.parametrize(("precision", "low", "high"),
                         [("fp32", 0.0, 1e-5), ("tf32", 1e-5, 2e-3), ("bf16", 1e-4, 1e-2)])
def test_matmul_error_matches_its_precision(cp, precision, low, high):
    rng = np.random.default_rng(7)
    a = rng.normal(size=(256, 1024)).astype(np.float32)
    b = rng.normal(size=(1024, 384)).astype(np.float32)
    reference = a.astype(np.float64) @ b.astype(np.float64)
    result = cp.asnumpy(matmul(cp.asarray(a), cp.asarray(b), precision=precision))
    error = np.linalg.norm(result - reference) / np.linalg.norm(reference)
    assert low <= error <= high, error


def test_matmul_takes_a_transposed_weight_without_a_copy(cp):
    rng = np.random.default_rng(8)
    d = cp.asarray(rng.normal(size=(17, 40)).astype(np.float32))
    weight = cp.asarray(rng.normal(size=(23, 40)).astype(np.float32))
    result = matmul(d, weight.T)  # (17, 40) @ (40, 23), an F-contiguous view
    np.testing.assert_allclose(cp.asnumpy(result), cp.asnumpy(d) @ cp.asnumpy(weight).T,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["pcm", "reram", "ecram"])
def test_tensor_core_error_against_read_noise(cp, name):
    """TF32 stays far below the read noise on the GPU too; both precisions stay within the
    emulation's worst case (truncation). The printed line says which rounding cuBLAS uses."""
    case = read_noise_case(devices.preset(name), rows=784, cols=500, batch=64,
                           weights="uniform")
    x, w = cp.asarray(case.inputs), cp.asarray(case.weight)
    for precision in ("tf32", "bf16"):
        error = cp.asnumpy(matmul(x, w, precision=precision)).astype(np.float64) - case.reference
        measured = np.sqrt(np.mean(error**2) / np.mean(case.noise_std**2))
        nearest = precision_error(case, precision, "nearest").rms_ratio
        truncated = precision_error(case, precision, "truncate").rms_ratio
        print(f"{name} {precision}: GPU {measured:.4f}, emulated nearest {nearest:.4f}, "
              f"truncate {truncated:.4f}")
        assert measured <= 1.3 * truncated
        if precision == "tf32":
            assert measured < 0.1
