"""The tile matmuls in fp32 (default), TF32 or bf16 on the tensor cores, and a CPU check.

The analog MVM is accurate to a few bits, so its matmuls may run with their inputs rounded to
TF32 (10 explicit mantissa bits) or bf16 (7 explicit bits) and fp32 accumulation, when that
rounding error is far below the device noise. :func:`matmul` runs them through cuBLAS
(``cublasGemmEx`` with compute type ``32F``, ``32F_FAST_TF32`` or ``32F_FAST_16BF``) on CuPy
arrays; it needs a GPU. :func:`round_mantissa`, :func:`emulated_matmul` and
:func:`precision_error` emulate the input rounding in NumPy so the check runs on the CPU:
the error of ``x_q W`` relative to the read-noise std ``sqrt(x_q^2 sigma^2)`` of each output,
for a tile of a device preset programmed with random weights (:func:`read_noise_case`).

Measured with them at 784 x 500, batch 64, seed 0: RMS error over RMS read-noise std for
Gaussian / uniform weights rounded to nearest even, and (in brackets) uniform weights with
truncation:

======  ======================  =========================
preset  TF32                    bf16
======  ======================  =========================
PCM     0.3 % / 0.5 % (1.3 %)   2.1 % / 3.9 % (10 %)
ReRAM   0.4 % / 1.0 % (2.7 %)   3.1 % / 7.8 % (20 %)
ECRAM   0.8 % / 2.3 % (6.0 %)   6.2 % / 18 % (46 %)
======  ======================  =========================

TF32 is far below the device noise for every preset and either rounding: it is the
recommended reduced precision. bf16 is not: with uniform weights on ECRAM (the smallest read
noise) its error is 18 % of the read noise even with rounding to nearest. Use it only after
checking a configuration with :func:`precision_error_vs_read_noise`; the error scales as
2**-mantissa_bits, 8x from TF32 to bf16. Which rounding cuBLAS applies is measured on the GPU
by ``tests/gpu/test_cuda_cupy.py`` and ``benchmarks/gpu_bench.py``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from analogsim._validation import check_choice
from analogsim.errors import BackendUnavailableError, ParameterError, ShapeError

PRECISIONS = ("fp32", "tf32", "bf16")
ROUNDINGS = ("nearest", "truncate")
#: Explicit mantissa bits kept by each precision (fp32 keeps all 23).
MANTISSA_BITS = {"fp32": 23, "tf32": 10, "bf16": 7}
#: cuBLAS compute types (cublasComputeType_t): 32F, 32F_FAST_TF32, 32F_FAST_16BF.
CUBLAS_COMPUTE = {"fp32": 68, "tf32": 77, "bf16": 75}
CUBLAS_GEMM_DEFAULT = -1
CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99
CUDA_R_32F = 0


def round_mantissa(x: np.ndarray, bits: int, rounding: str = "nearest") -> np.ndarray:
    """float32 ``x`` rounded to ``bits`` explicit mantissa bits (exponent range unchanged).

    ``rounding`` is "nearest" (ties to even, as ``cvt.rn``) or "truncate" (towards zero, what
    a tensor core does with raw fp32 bits). Finite inputs only.
    """
    check_choice("round_mantissa", "rounding", rounding, ROUNDINGS)
    words = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    drop = np.uint32(23 - bits)
    if drop == 0:
        return words.view(np.float32).copy()
    if rounding == "nearest":
        lowest_kept = (words >> drop) & np.uint32(1)
        words = words + (np.uint32((1 << (23 - bits - 1)) - 1) + lowest_kept)
    mask = np.uint32((0xFFFFFFFF << int(drop)) & 0xFFFFFFFF)
    return (words & mask).view(np.float32)


def emulated_matmul(a: np.ndarray, b: np.ndarray, precision: str = "fp32",
                    rounding: str = "nearest") -> np.ndarray:
    """``a @ b`` with both inputs rounded as ``precision`` does, accumulated in float64.

    The tensor cores accumulate in fp32; its error (about ``sqrt(K) 2**-24`` relative) is far
    below the input rounding of TF32 and bf16 and is left out.
    """
    check_choice("emulated_matmul", "precision", precision, PRECISIONS)
    bits = MANTISSA_BITS[precision]
    a_rounded = round_mantissa(a, bits, rounding).astype(np.float64)
    b_rounded = round_mantissa(b, bits, rounding).astype(np.float64)
    return a_rounded @ b_rounded


class PrecisionCheck(NamedTuple):
    """Matmul error of one precision relative to the read noise of each output."""

    #: RMS error of ``x_q W`` over the RMS read-noise std of the outputs.
    rms_ratio: float
    #: Largest per-output ratio |error| / read-noise std.
    max_ratio: float
    #: Relative error ``||y - y_ref|| / ||y_ref||`` of the matmul itself.
    relative_error: float


class ReadNoiseCase(NamedTuple):
    """Quantised inputs and a programmed tile's maps, in g_max units."""

    #: (B, R) float32 noise-managed, DAC-quantised inputs.
    inputs: np.ndarray
    #: (R, C) float32 effective weights.
    weight: np.ndarray
    #: (R, C) float32 per-read noise variance of each weight.
    variance: np.ndarray
    #: (B, C) float64 exact product ``inputs @ weight``.
    reference: np.ndarray
    #: (B, C) float64 read-noise std of each output, ``sqrt(inputs^2 @ variance)``.
    noise_std: np.ndarray


def read_noise_case(device: Any, *, rows: int = 784, cols: int = 500, batch: int = 64,
                    seed: int = 0, weights: str = "normal") -> ReadNoiseCase:
    """A tile of ``device`` programmed with random weights and read at programming time.

    ``weights`` "normal" (standard normal) or "uniform" (in [-1, 1]) are programmed at the
    default fill; inputs are uniform in [-1, 1], noise-managed and DAC-quantised by the
    default periphery.
    """
    from analogsim.chip import Chip
    from analogsim.kernels import get_kernels
    from analogsim.kernels.mvm import quantize_inputs
    from analogsim.periphery import Periphery

    check_choice("read_noise_case", "weights", weights, ("normal", "uniform"))
    rng = np.random.default_rng(seed)
    chip = Chip(device=device, seed=seed)
    tile = chip.tile("precision-check", rows, cols)
    if weights == "normal":
        target = rng.standard_normal((rows, cols))
    else:
        target = rng.uniform(-1.0, 1.0, (rows, cols))
    tile.program(target.astype(np.float32))
    weight, variance = _weight_and_variance(tile, chip.time, get_kernels("numba"))
    if not np.any(variance > 0.0):
        raise ParameterError(f"read_noise_case: {type(device).__name__} has no read noise to "
                             f"compare with; use a device with read_noise_std > 0.")
    periphery = Periphery()
    inputs, _ = quantize_inputs(rng.uniform(-1.0, 1.0, (batch, rows)).astype(np.float32),
                                periphery.dac_step, periphery.dac_range, True)
    x = inputs.astype(np.float64)
    return ReadNoiseCase(inputs, weight, variance, reference=x @ weight.astype(np.float64),
                         noise_std=np.sqrt((x * x) @ variance.astype(np.float64)))


def precision_error(case: ReadNoiseCase, precision: str,
                    rounding: str = "nearest") -> PrecisionCheck:
    """The error the ``precision`` matmul adds to ``case``, relative to its read noise."""
    error = emulated_matmul(case.inputs, case.weight, precision, rounding) - case.reference
    return PrecisionCheck(
        rms_ratio=float(np.sqrt(np.mean(error**2) / np.mean(case.noise_std**2))),
        max_ratio=float(np.max(np.abs(error) / np.maximum(case.noise_std, 1e-30))),
        relative_error=float(np.linalg.norm(error) / np.linalg.norm(case.reference)),
    )


def precision_error_vs_read_noise(device: Any, *, precision: str = "bf16",
                                  rounding: str = "nearest", **case: Any) -> PrecisionCheck:
    """:func:`precision_error` of a :func:`read_noise_case` of ``device`` (``**case``: its
    keyword arguments)."""
    return precision_error(read_noise_case(device, **case), precision, rounding)


def _weight_and_variance(tile: Any, now: float, kernels: Any) -> tuple[np.ndarray, np.ndarray]:
    """The effective weight and read-noise variance maps of ``tile`` (g_max units)."""
    arrays = tile.arrays
    shape = (tile.rows, tile.cols)
    weight = np.empty(shape, dtype=np.float32)
    variance = np.empty(shape, dtype=np.float32)
    signs = np.array([1.0, -1.0][: tile.device.devices_per_weight])
    kernels.effective_weights(arrays.conductance, arrays.written_at, arrays.drift_xi,
                              arrays.stuck, signs, now, tile.device.physics().pack(),
                              weight, variance)
    return weight, variance


def matmul(a: Any, b: Any, *, precision: str = "fp32", out: Any = None) -> Any:
    """``a @ b`` for 2-D float32 arrays, in ``precision`` ("fp32", "tf32" or "bf16").

    NumPy inputs are multiplied with NumPy in fp32 (``precision`` other than "fp32" raises
    :class:`BackendUnavailableError`: the CPU has no such units; use :func:`emulated_matmul`
    to see their effect). CuPy inputs go to ``cublasGemmEx`` on CuPy's current stream, with
    fp32 accumulation; ``out`` (C-contiguous float32) receives the result if given.
    """
    check_choice("matmul", "precision", precision, PRECISIONS)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if precision != "fp32":
            raise BackendUnavailableError(
                f"matmul: precision={precision!r} needs CuPy arrays on an NVIDIA GPU; the CPU "
                f"runs 'fp32' only. Use emulated_matmul(a, b, {precision!r}) to emulate it.")
        return np.matmul(a, b, out=out)
    return _cublas_matmul(a, b, precision, out)


def _cublas_matmul(a: Any, b: Any, precision: str, out: Any) -> Any:
    import cupy
    from cupy.cuda import device as cuda_device
    from cupy_backends.cuda.libs import cublas

    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ShapeError(f"matmul: needs 2-D arrays (M, K) and (K, N); got {a.shape} and "
                         f"{b.shape}.")
    if a.dtype != np.float32 or b.dtype != np.float32:
        raise TypeError(f"matmul: needs float32 arrays; got {a.dtype} and {b.dtype}.")
    rows, cols = a.shape[0], b.shape[1]
    if out is None:
        out = cupy.empty((rows, cols), dtype=np.float32)
    elif out.shape != (rows, cols) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ShapeError(f"matmul: 'out' must be a C-contiguous float32 array of shape "
                         f"{(rows, cols)}; got {out.dtype} {out.shape}.")
    gemm = gemm_arguments(a, b, cupy)
    handle = cuda_device.get_cublas_handle()
    cublas.setStream(handle, cupy.cuda.get_current_stream().ptr)
    one = np.ones(1, dtype=np.float32)
    zero = np.zeros(1, dtype=np.float32)
    algo = CUBLAS_GEMM_DEFAULT if precision == "fp32" else CUBLAS_GEMM_DEFAULT_TENSOR_OP
    cublas.gemmEx(handle, gemm.op_first, gemm.op_second, gemm.m, gemm.n, gemm.k,
                  one.ctypes.data, gemm.first.data.ptr, CUDA_R_32F, gemm.ld_first,
                  gemm.second.data.ptr, CUDA_R_32F, gemm.ld_second, zero.ctypes.data,
                  out.data.ptr, CUDA_R_32F, gemm.ldc, CUBLAS_COMPUTE[precision], algo)
    return out


class GemmArguments(NamedTuple):
    """The column-major ``gemm`` computing row-major ``C = A B`` as ``C^T = B^T A^T``."""

    op_first: int
    op_second: int
    m: int
    n: int
    k: int
    first: Any
    ld_first: int
    second: Any
    ld_second: int
    ldc: int


def gemm_arguments(a: Any, b: Any, xp: Any = np) -> GemmArguments:
    """cuBLAS arguments for row-major ``a @ b`` ((M, K) by (K, N)) into a C-contiguous C.

    cuBLAS is column-major, and a row-major C-contiguous array is its transpose in column
    major, so the call computes ``C^T = B^T A^T`` with ``b`` first. Transposed views
    (F-contiguous, as ``weight.T`` in the backward read) are passed with op T, without a copy.
    """
    rows, inner = a.shape
    cols = b.shape[1]
    op_first, ld_first, first = _column_major_operand(b, xp)
    op_second, ld_second, second = _column_major_operand(a, xp)
    return GemmArguments(op_first, op_second, cols, rows, inner, first, ld_first, second,
                         ld_second, cols)


def _column_major_operand(matrix: Any, xp: Any) -> tuple[int, int, Any]:
    """(op, leading dimension, array) presenting row-major ``matrix`` transposed to cuBLAS.

    A C-contiguous (M, K) array is the column-major (K, M) matrix ``matrix^T`` as is (op N,
    ld K); an F-contiguous one is column-major ``matrix`` itself (op T, ld M).
    """
    if matrix.flags.c_contiguous:
        return 0, matrix.shape[1], matrix
    if matrix.flags.f_contiguous:
        return 1, matrix.shape[0], matrix
    matrix = xp.ascontiguousarray(matrix)
    return 0, matrix.shape[1], matrix
