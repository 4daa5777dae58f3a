"""The MVM epilogue as one CUDA kernel (see :mod:`analogsim.kernels.mvm` for the maths).

One pass over the output: each thread takes one hash of a row, ``normal_pair32(key, b H + k)``
with ``H = ceil(C / 2)``, and finishes outputs ``k`` (cosine branch) and ``k + H`` (sine
branch) as the CPU kernel does: the float32 noise of the summed read and output variance, the
column's ADC gain and offset, quantisation, clipping and the row's scale. Nothing but the
output is materialised.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace
from typing import Any

import numpy as np

from analogsim.kernels.cuda._runtime import (
    as_key,
    check_shape,
    cuda_module,
    launch,
    scalar_physics,
)

#: ``numba.cuda``, bound on first use. The kernels must find it as a module global: the
#: simulator swaps the module globals that are ``numba.cuda`` for its fake during a launch.
cuda: Any = None


@functools.cache
def _kernels() -> SimpleNamespace:
    global cuda
    cuda = cuda_module()
    normal_pair32 = scalar_physics().normal_pair32
    f32 = np.float32
    half_one = np.float32(0.5)

    @cuda.jit(device=True)
    def finish(value, gain, offset, step, limit, row_scale):
        value = gain * value + offset
        if step > 0.0:
            value = min(max(math.floor(value / step + half_one) * step, -limit), limit)
        return value * row_scale

    @cuda.jit(device=True)
    def std_of(variance, has_variance, out_variance, b, i):
        noise_variance = out_variance
        if has_variance:
            column = 0 if variance.shape[1] == 1 else i  # (B, 1): one per row
            noise_variance += max(np.float64(variance[b, column]), 0.0)
        return f32(math.sqrt(noise_variance))

    @cuda.jit
    def epilogue_kernel(y, variance, has_variance, input_scale, gain, offset, out_noise,
                        adc_step, adc_range, scale, key, out):
        batch, cols = y.shape
        half = (cols + 1) // 2
        out_variance = out_noise * out_noise
        noisy = has_variance or out_variance > 0.0
        step, limit = f32(adc_step), f32(adc_range)
        for e in range(cuda.grid(1), batch * half, cuda.gridsize(1)):
            b = e // half
            k = e - b * half
            row_scale = f32(np.float64(input_scale[b]) * scale)
            z_first, z_second = f32(0.0), f32(0.0)
            if noisy:
                z_first, z_second = normal_pair32(key, np.uint64(e))
            for turn in range(2):
                i = k + turn * half
                if i < cols:
                    value = f32(y[b, i])
                    if noisy:
                        z = z_first if turn == 0 else z_second
                        value = value + std_of(variance, has_variance, out_variance, b, i) * z
                    out[b, i] = finish(value, f32(gain[i]), f32(offset[i]), step, limit,
                                       row_scale)

    return SimpleNamespace(epilogue=epilogue_kernel)


def epilogue_cuda(y: Any, variance: Any, input_scale: Any, gain: Any, offset: Any,
                  out_noise: float, adc_step: float, adc_range: float, scale: float, key: Any,
                  out: Any) -> None:
    """CUDA version of :func:`analogsim.kernels.mvm.epilogue_numpy`, same arguments.

    Parameters
    ----------
    y, out : (B, C) float32 device arrays; ``out`` may be ``y``.
    variance : (B, C) or (B, 1) float32 device array, or None (no read noise); (B, 1) is the
        same variance for every output of a row (see :mod:`analogsim.kernels.mvm`).
    input_scale : (B,) float32; gain, offset : (C,) float32 device arrays.
    out_noise, adc_step, adc_range, scale : float
        Output-noise std, ADC step (0: no ADC), ADC full scale (may be inf), digital scale.
    key : uint64 stream key.
    """
    batch, cols = y.shape
    owner = "epilogue_cuda"
    check_shape(owner, "out", out, (batch, cols))
    check_shape(owner, "input_scale", input_scale, (batch,))
    check_shape(owner, "gain", gain, (cols,))
    check_shape(owner, "offset", offset, (cols,))
    has_variance = variance is not None
    if has_variance:
        check_shape(owner, "variance", variance,
                    (batch, 1) if variance.shape[1:] == (1,) else (batch, cols))
    launch(_kernels().epilogue, batch * ((cols + 1) // 2), y,
           variance if has_variance else y, has_variance,
           input_scale, gain, offset, float(out_noise), float(adc_step), float(adc_range),
           float(scale), as_key(key), out)
