"""The epilogue of the analog matrix-vector multiply, fused into one pass over the output.

Given the plain matmul ``y = x_q W`` and, with read noise, the variance ``v`` of each output
(the exact per-device read-noise trick of DESIGN.md section 3), each output element becomes::

    out = Q_adc(gain_i (y + s n) + offset_i) * input_scale_b * scale,   s = sqrt(v + out_noise^2)

with one standard normal ``n`` per element (read noise and output noise are independent
Gaussians, so one normal of their summed variance is exact in distribution and halves the
random numbers) and ``Q_adc`` rounding to ``adc_step`` and clipping to
``[-adc_range, adc_range]`` (no ADC when ``adc_step == 0``).

The normals come in Box-Muller pairs (``normal_pair32`` of
:mod:`analogsim.kernels.counter_rng`): row ``b`` of ``C`` outputs draws ``H = ceil(C / 2)``
hashes, counters ``b H + k``; the cosine branch of hash ``k`` goes to output ``k``, the sine
branch to output ``k + H`` (unused for the last ``k`` when ``C`` is odd). Everything after the
matmul is float32, the output's precision: ``s`` is ``sqrt`` of the float64 variance rounded
to float32, then ``y + s n``, the gain and offset, the ADC and the scaling are float32
operations (``adc_step``, ``adc_range`` and ``input_scale_b * scale`` rounded to float32).
Pairs and float32 make the pass about 3.5 times cheaper than a float64 normal per element
(0.32 ms instead of 1.1-1.2 ms at 256 x 1024, one thread), so the ADC-only forward stays
within its 1.3x of the matmul (``benchmarks/README.md``). The NumPy reference does the same
float32 operations in the same order and returns the same values bit for bit.

``v`` is either the variance matmul ``x_q^2 sigma^2``, shape (B, C), or, when every device of
the tile has the same read-noise variance ``sigma^2`` (ReRAM, ECRAM), the column it equals,
``sigma^2 sum_j x_q[b, j]^2``, shape (B, 1): the same value, without the second matmul.

``out`` may be ``y`` itself, but a separate buffer is faster: with ``out`` aliasing ``y`` the
compiled loop does not vectorise.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from analogsim.kernels._cpu_scalar import RNG
from analogsim.kernels.counter_rng import normal_pair32_array

_normal_pair32 = RNG.normal_pair32
_F32 = np.float32
_HALF = np.float32(0.5)


def epilogue_numpy(y, variance, input_scale, gain, offset, out_noise, adc_step, adc_range,
                   scale, key, out):
    """NumPy reference. y, out: (B, C); variance: (B, C), (B, 1) or None; input_scale: (B,);
    gain, offset: (C,)."""
    batch, cols = y.shape
    value = y.astype(_F32)
    if variance is not None or out_noise > 0.0:
        noise_variance = np.full((batch, 1), float(out_noise) * float(out_noise))
        if variance is not None:
            noise_variance = noise_variance + np.maximum(variance.astype(np.float64), 0.0)
        std = np.sqrt(noise_variance).astype(_F32)
        half = (cols + 1) // 2
        counters = np.arange(batch * half, dtype=np.uint64).reshape(batch, half)
        first, second = normal_pair32_array(key, counters)
        normals = np.concatenate([first, second], axis=1)[:, :cols]
        value = value + std * normals
    value = gain.astype(_F32) * value + offset.astype(_F32)
    if adc_step > 0.0:
        step, limit = _F32(adc_step), _F32(adc_range)
        value = np.minimum(np.maximum(np.floor(value / step + _HALF) * step, -limit), limit)
    row_scale = (input_scale.astype(np.float64) * float(scale)).astype(_F32)
    out[...] = value * row_scale[:, None]


@numba.njit(parallel=True, cache=True)
def epilogue_numba(y, variance, input_scale, gain, offset, out_noise, adc_step, adc_range,
                   scale, key, out):
    """Numba version of :func:`epilogue_numpy` (``variance`` may be None), bit for bit."""
    batch, cols = y.shape
    half = (cols + 1) // 2
    out_variance = out_noise * out_noise
    noisy = variance is not None or out_variance > 0.0
    step, limit = _F32(adc_step), _F32(adc_range)
    for b in numba.prange(batch):
        row_scale = _F32(np.float64(input_scale[b]) * scale)
        first = np.uint64(b * half)
        if not noisy:
            _quiet_row(y[b], gain, offset, step, limit, row_scale, out[b])
        elif variance is None:
            _noisy_row(y[b], None, out_variance, gain, offset, step, limit, row_scale, key,
                       first, out[b])
        elif variance.shape[1] == 1:
            _noisy_row(y[b], None, out_variance + max(np.float64(variance[b, 0]), 0.0), gain,
                       offset, step, limit, row_scale, key, first, out[b])
        else:
            _noisy_row(y[b], variance[b], out_variance, gain, offset, step, limit, row_scale,
                       key, first, out[b])


@numba.njit(inline="always")
def _finish(value, gain, offset, step, limit, row_scale):
    """Gain, offset, ADC and scaling of one float32 output."""
    value = gain * value + offset
    if step > 0.0:
        value = min(max(np.floor(value / step + _HALF) * step, -limit), limit)
    return value * row_scale


@numba.njit(cache=True, error_model="numpy")
def _quiet_row(y, gain, offset, step, limit, row_scale, out):
    """A row without noise."""
    for i in range(y.shape[0]):
        out[i] = _finish(_F32(y[i]), _F32(gain[i]), _F32(offset[i]), step, limit, row_scale)


@numba.njit(cache=True, error_model="numpy")
def _noisy_row(y, variance, base_variance, gain, offset, step, limit, row_scale, key, first,
               out):
    """A row with noise: pairs of outputs ``k``, ``k + H`` share a hash. Each output's noise
    variance is ``base_variance`` plus, when ``variance`` (C,) is given, its own read-noise
    variance (Numba compiles the None case without the per-output branch).

    A function of its own rather than the parallel loop's body: as fast, and quicker to
    compile (Numba's parallel passes are slow on inlined normals).
    """
    cols = y.shape[0]
    half = (cols + 1) // 2
    std = _F32(math.sqrt(base_variance))
    for k in range(half):
        z_first, z_second = _normal_pair32(key, first + np.uint64(k))
        if variance is not None:
            std = _F32(math.sqrt(base_variance + max(np.float64(variance[k]), 0.0)))
        out[k] = _finish(_F32(y[k]) + std * z_first, _F32(gain[k]), _F32(offset[k]), step,
                         limit, row_scale)
        i = k + half
        if i < cols:
            if variance is not None:
                std = _F32(math.sqrt(base_variance + max(np.float64(variance[i]), 0.0)))
            out[i] = _finish(_F32(y[i]) + std * z_second, _F32(gain[i]), _F32(offset[i]),
                             step, limit, row_scale)


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
