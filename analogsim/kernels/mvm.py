"""The epilogue of the analog matrix-vector multiply, fused into one pass over the output.

Given the plain matmul ``y = x_q W`` and, with read noise, the variance ``v`` of each output
(the exact per-device read-noise trick of DESIGN.md section 3), each output element becomes::

    out = Q_adc(gain_i (y + sqrt(v + out_noise^2) n) + offset_i) * input_scale_b * scale

with ``n = normal(key, e)`` for element ``e = b C + i`` (read noise and output noise are
independent Gaussians, so one normal of their summed variance is exact in distribution and
halves the random numbers) and
``Q_adc`` rounding to ``adc_step`` and clipping to ``[-adc_range, adc_range]`` (no ADC when
``adc_step == 0``).

``v`` is either the variance matmul ``x_q^2 sigma^2``, shape (B, C), or, when every device of
the tile has the same read-noise variance ``sigma^2`` (ReRAM, ECRAM), the column it equals,
``sigma^2 sum_j x_q[b, j]^2``, shape (B, 1): the same value, without the second matmul.

``out`` may be ``y`` itself, but a separate buffer is faster: with ``out`` aliasing ``y`` the
compiled loop does not vectorise (measured at 256 x 1024: 7.2 ms in place, 1.2 ms not).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from analogsim.kernels._cpu_scalar import RNG
from analogsim.kernels.counter_rng import normal_array

_normal = RNG.normal


def epilogue_numpy(y, variance, input_scale, gain, offset, out_noise, adc_step, adc_range,
                   scale, key, out):
    """NumPy reference. y, out: (B, C); variance: (B, C), (B, 1) or None; input_scale: (B,);
    gain, offset: (C,)."""
    batch, cols = y.shape
    value = y.astype(np.float64)
    noise_variance = np.full(value.shape, out_noise * out_noise)
    if variance is not None:
        noise_variance += np.maximum(variance.astype(np.float64), 0.0)
    if variance is not None or out_noise > 0.0:
        counters = np.arange(batch * cols, dtype=np.uint64).reshape(batch, cols)
        value = value + np.sqrt(noise_variance) * normal_array(key, counters)
    value = gain * value + offset
    if adc_step > 0.0:
        value = np.clip(np.floor(value / adc_step + 0.5) * adc_step, -adc_range, adc_range)
    out[...] = value * (input_scale[:, None] * scale)


@numba.njit(parallel=True, cache=True)
def epilogue_numba(y, variance, input_scale, gain, offset, out_noise, adc_step, adc_range,
                   scale, key, out):
    """Numba version of :func:`epilogue_numpy` (``variance`` may be None)."""
    batch, cols = y.shape
    out_variance = out_noise * out_noise
    noisy = variance is not None or out_variance > 0.0
    for b in numba.prange(batch):
        row_scale = input_scale[b] * scale
        first = np.uint64(b * cols)
        if variance is None:
            _epilogue_row(y[b], None, out_variance, noisy, gain, offset, adc_step, adc_range,
                          row_scale, key, first, out[b])
        elif variance.shape[1] == 1:
            row_variance = out_variance + max(np.float64(variance[b, 0]), 0.0)
            _epilogue_row(y[b], None, row_variance, True, gain, offset, adc_step, adc_range,
                          row_scale, key, first, out[b])
        else:
            _epilogue_row(y[b], variance[b], out_variance, True, gain, offset, adc_step,
                          adc_range, row_scale, key, first, out[b])


@numba.njit(cache=True, error_model="numpy")
def _epilogue_row(y, variance, base_variance, noisy, gain, offset, adc_step, adc_range,
                  row_scale, key, first, out):
    """One output row: ``variance`` (C,) per element or None (``base_variance`` only).

    A function of its own rather than the parallel loop's body, which Numba's parallel
    passes compile several times slower.
    """
    for i in range(y.shape[0]):
        value = np.float64(y[i])
        if noisy:
            noise_variance = base_variance
            if variance is not None:
                noise_variance += max(np.float64(variance[i]), 0.0)
            value += math.sqrt(noise_variance) * _normal(key, first + np.uint64(i))
        value = gain[i] * value + offset[i]
        if adc_step > 0.0:
            value = min(max(math.floor(value / adc_step + 0.5) * adc_step, -adc_range),
                        adc_range)
        out[i] = value * row_scale


def quantize_inputs(x, dac_step, dac_range, noise_management):
    """Noise management and DAC: returns (x_q float32 (B, R), input scale float32 (B,)).

    Each row is divided by its abs-max (rows of zeros keep scale 1), clipped to the DAC range
    and rounded to ``dac_step``.
    """
    if noise_management:
        scale = np.max(np.abs(x), axis=1).astype(np.float32)
        scale[scale == 0.0] = 1.0
        x_n = x / scale[:, None]
    else:
        scale = np.ones(x.shape[0], dtype=np.float32)
        x_n = x
    if dac_step > 0.0:
        x_n = np.clip(np.floor(x_n / dac_step + 0.5) * dac_step, -dac_range, dac_range)
    return np.ascontiguousarray(x_n, dtype=np.float32), scale


def row_read_variance(x_q, sigma_squared):
    """``sigma^2 sum_j x_q[b, j]^2`` as a (B, 1) float32 column: the read-noise variance of
    every output of row ``b`` when all devices share the variance ``sigma_squared``.

    Equal to ``(x_q * x_q) @ full(sigma_squared)`` in exact arithmetic, so this replaces the
    variance matmul with no approximation; in float32, as the matmul, it differs from it by
    rounding only (a few 1e-7 relative).
    """
    squares = np.einsum("bj,bj->b", x_q, x_q)
    return (squares * np.float32(sigma_squared))[:, None]
