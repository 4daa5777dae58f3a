"""The epilogue of the analog matrix-vector multiply, fused into one pass over the output.

Given the plain matmul ``y = x_q W`` and, with read noise, the variance matmul
``v = x_q^2 sigma^2`` (the exact per-device read-noise trick of DESIGN.md section 3), each
output element becomes::

    out = Q_adc(gain_i (y + sqrt(v + out_noise^2) n) + offset_i) * input_scale_b * scale

with ``n = normal(key, e)`` for element ``e = b C + i`` (read noise and output noise are
independent Gaussians, so one normal of their summed variance is exact in distribution and
halves the random numbers) and
``Q_adc`` rounding to ``adc_step`` and clipping to ``[-adc_range, adc_range]`` (no ADC when
``adc_step == 0``). ``out`` may be ``y`` itself.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from analogsim.kernels._cpu_scalar import S
from analogsim.kernels.counter_rng import normal_array

_normal = S.normal


def epilogue_numpy(y, variance, input_scale, gain, offset, out_noise, adc_step, adc_range,
                   scale, key, out):
    """NumPy reference. y, variance, out: (B, C); input_scale: (B,); gain, offset: (C,)."""
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
    for b in numba.prange(batch):
        row_scale = input_scale[b] * scale
        for i in range(cols):
            value = np.float64(y[b, i])
            noise_variance = out_variance
            if variance is not None:
                noise_variance += max(np.float64(variance[b, i]), 0.0)
            if noise_variance > 0.0:
                value += math.sqrt(noise_variance) * _normal(key, np.uint64(b * cols + i))
            value = gain[i] * value + offset[i]
            if adc_step > 0.0:
                value = min(max(math.floor(value / adc_step + 0.5) * adc_step, -adc_range),
                            adc_range)
            out[b, i] = value * row_scale


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
