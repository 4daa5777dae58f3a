"""The MVM epilogue as one CUDA kernel (see :mod:`analogsim.kernels.mvm` for the maths).

One pass over the output: each thread reads ``y`` and the read-noise variance of one element,
draws one normal of the summed read and output noise variance from the counter-based generator
(``normal(key, e)`` for element ``e = b C + i``, as the CPU kernel does), applies the column's
ADC gain and offset, quantises and clips, and writes the scaled result. Nothing but the output
is materialised.
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
    normal = scalar_physics().normal

    @cuda.jit
    def epilogue_kernel(y, variance, has_variance, input_scale, gain, offset, out_noise,
                        adc_step, adc_range, scale, key, out):
        batch, cols = y.shape
        out_variance = out_noise * out_noise
        for e in range(cuda.grid(1), batch * cols, cuda.gridsize(1)):
            b = e // cols
            i = e - b * cols
            value = np.float64(y[b, i])
            noise_variance = out_variance
            if has_variance:
                column = 0 if variance.shape[1] == 1 else i  # (B, 1): one per row
                noise_variance += max(np.float64(variance[b, column]), 0.0)
            if noise_variance > 0.0:
                value += math.sqrt(noise_variance) * normal(key, np.uint64(e))
            value = np.float64(gain[i]) * value + np.float64(offset[i])
            if adc_step > 0.0:
                value = min(max(math.floor(value / adc_step + 0.5) * adc_step, -adc_range),
                            adc_range)
            out[b, i] = value * (np.float64(input_scale[b]) * scale)

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
    launch(_kernels().epilogue, batch * cols, y, variance if has_variance else y, has_variance,
           input_scale, gain, offset, float(out_noise), float(adc_step), float(adc_range),
           float(scale), as_key(key), out)
