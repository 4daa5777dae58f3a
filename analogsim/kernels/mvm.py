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
compiled loop does not vectorise (measured at 256 x 1024: 8.8 ms in place, 1.3 ms not).
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


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _epilogue_row(y, variance, base_variance, noisy, gain, offset, adc_step, adc_range,
                  row_scale, key, first, out):
    """One output row: ``variance`` (C,) per element or None (``base_variance`` only).

    A function of its own rather than the parallel loop's body: as fast, and quicker to
    compile (Numba's parallel passes are slow on inlined normals). Compiled with FMA
    contraction (as CUDA compiles by default): the normals' polynomials cost a quarter less,
    and values move by an ulp of float64, far below the float32 output's resolution.
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
    and rounded to ``dac_step``. Runs on NumPy or CuPy arrays (returns the same kind).
    """
    xp = _array_module(x)
    if noise_management:
        scale = xp.max(xp.abs(x), axis=1).astype(np.float32)
        scale[scale == 0.0] = 1.0
        x_n = x / scale[:, None]
    else:
        scale = xp.ones(x.shape[0], dtype=np.float32)
        x_n = x
    if dac_step > 0.0:
        x_n = xp.clip(xp.floor(x_n / dac_step + 0.5) * dac_step, -dac_range, dac_range)
    return xp.ascontiguousarray(x_n, dtype=np.float32), scale


def quantize_inputs_numba(x, dac_step, dac_range, noise_management):
    """Compiled :func:`quantize_inputs` (bit for bit): one pass for the row maxima, one for
    the scaling and the DAC, instead of six NumPy passes. ``x``: C-contiguous float32."""
    x_q = np.empty_like(x)
    scale = np.empty(x.shape[0], dtype=np.float32)
    _quantize_numba(x, float(dac_step), float(dac_range), bool(noise_management), x_q, scale)
    return x_q, scale


@numba.njit(cache=True)
def _quantize_numba(x, dac_step, dac_range, noise_management, out, scale):
    """The float32 arithmetic of :func:`quantize_inputs` in the same order.

    Serial: it takes 0.1 ms at 256 x 1024, and a parallel region right after the BLAS
    matmul, whose threads still spin, was measured to cost more than it saves.
    """
    rows, cols = x.shape
    # |x| compares as its bits do (sign bit cleared): an integer maximum, which vectorises.
    bits = x.view(np.int32)
    step, half = np.float32(dac_step), np.float32(0.5)
    low, high = np.float32(-dac_range), np.float32(dac_range)
    for b in range(rows):
        row_scale = np.float32(1.0)
        if noise_management:
            top = np.int32(0)
            for j in range(cols):
                top = max(top, bits[b, j] & np.int32(0x7FFFFFFF))
            if top != 0:
                row_scale = np.int32(top).view(np.float32)
        scale[b] = row_scale
        for j in range(cols):
            value = x[b, j] / row_scale if noise_management else x[b, j]
            if step > 0.0:
                value = min(max(np.floor(value / step + half) * step, low), high)
            out[b, j] = value


def row_read_variance(x_q, sigma_squared):
    """``sigma^2 sum_j x_q[b, j]^2`` as a (B, 1) float32 column: the read-noise variance of
    every output of row ``b`` when all devices share the variance ``sigma_squared``.

    Equal to ``(x_q * x_q) @ full(sigma_squared)`` in exact arithmetic, so this replaces the
    variance matmul with no approximation; in float32, as the matmul, it differs from it by
    rounding only (a few 1e-7 relative). NumPy or CuPy.
    """
    squares = _array_module(x_q).einsum("bj,bj->b", x_q, x_q)
    return (squares * np.float32(sigma_squared))[:, None]


def _array_module(array):
    """NumPy, or CuPy for a CuPy array (imported only then)."""
    from analogsim.kernels import get_xp

    return get_xp(array)
