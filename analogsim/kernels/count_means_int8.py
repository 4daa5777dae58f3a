"""The fast sampler's expected pulse counts from exact int8 matmuls on the CPU (PyTorch).

The counts a device draws are Poisson, so the precision its mean needs is set by the Poisson
noise, ``sqrt(mean)`` pulses: about 30 % of the mean for the ten or so pulses of a typical
update, still 1 % at 10^4 pulses. The two fp32 matmuls of
:func:`~analogsim.kernels.pulsed_update.pulse_count_means` are exact to ``2**-24``, far more
than that, and they are about 60 % of a fast update's time. An int8 matmul with int32 sums
(AVX512-VNNI, AMX) takes about a quarter of the time of an fp32 one. NumPy has none, so
``Chip(count_precision="int8")`` runs PyTorch's (oneDNN's), an optional dependency.

What is computed. Each column of ``x`` (an input, over the batch) and of ``d`` (an output)
is scaled by its largest magnitude to integers in [-127, 127] (``q = rint(v * (127 /
max|v|))``, float32, ties to even). The two matmuls ``A = |q_x|^T |q_d|`` and
``S = q_x^T q_d`` are exact in int32, so ``(A - S) / 2`` and ``(A + S) / 2`` are exact
integers, with no cancellation, and are scaled back in float32:
``up = float32((A - S) / 2) * ((s_x * pulses_per_unit) * s_d)`` with ``s = max|v| / 127``.
The only error is the rounding of each input to its column's step, at most half a step.

The guard. That error is small against the Poisson noise for the tens of pulses of an update,
but not when a few outliers dominate a column (the other samples then get few levels) or at
thousands of pulses a device (the noise grows as ``sqrt(mean)``, the error as the mean). The
rounding errors being independent and uniform, a device's error has the variance
``f^2 (E_x,i + E_d,j) / 12`` (``f`` its scale factor, ``E_i = sum_b q_bi^2`` the energies of
the levels of its input column and of its error column). Where that exceeds
``INT8_TOLERANCE^2 = 0.05^2`` times ``max(min(up, down), 1)``, the column of ``d`` (when
``E_x,i >= E_d,j``: the rounding of ``d`` dominates) or the column of ``x`` is marked, and
the marked error columns, then the marked input columns, are recounted with the fp32
matmuls (:func:`recount`); everything is, when more than a quarter of either is marked. A
row whose bound on the predicted variance is below the limit skips the check. The
prediction is conservative: each count sums only the samples of its sign, about half, and
the measured RMS error of a count was 0.69-0.70 of the predicted one (uniform, normal and
Student-t inputs, 10 and 1000 pulses a device).
:func:`pulse_count_means_int8_numpy` gives the same values bit for bit, guard included.

Without PyTorch (or with one older than 2.3) the same levels are multiplied in float32
instead (:data:`FLOAT32_BATCH` samples a matmul): every partial sum of their products is an
integer below ``2**24``, so float32 holds it exactly, in any order of summation, and the counts
are the same bit for bit, at about the speed of the fp32 means. A chip or an experiment that
counts in int8 therefore gives the same numbers on every machine; PyTorch only makes it faster.

(A bf16 path was tried too: PyTorch's CPU bf16 matmul rounds its output to bf16, so each
count had to be a matmul of non-negative parts, and the two took 7.1 ms against 11.5 ms for
fp32 and 3.6 ms for int8 at 256 x 1024 x 1024 on one thread; it was left out.)
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, NamedTuple

import numba
import numpy as np

from analogsim._validation import check_choice
from analogsim.errors import BackendUnavailableError
from analogsim.kernels.pulsed_update import check_count_buffers, pulse_count_means
from analogsim.kernels.pulsed_update_numpy import pulse_count_means_numpy

#: The largest magnitude of an int8 count input.
INT8_LEVELS = 127
#: Samples of one int32 matmul of the int8 path: ``127 * 127 * INT8_BATCH < 2**31``. Longer
#: batches are summed in int64 over chunks.
INT8_BATCH = (2**31 - 1) // (INT8_LEVELS * INT8_LEVELS)
#: Samples of one float32 matmul of int8 levels (the engine without PyTorch): every partial
#: sum of its products is an integer of magnitude at most ``127 * 127 * FLOAT32_BATCH < 2**24``,
#: so float32 holds it exactly.
FLOAT32_BATCH = 2**24 // (INT8_LEVELS * INT8_LEVELS)
#: The engines of :class:`Int8CountMeans`: PyTorch's int8 matmul, or exact float32 matmuls.
INT8_ENGINES = ("torch", "float32")
#: At most this many tile shapes have scratch buffers kept by an :class:`Int8CountMeans`.
SCRATCH_SHAPES = 8
#: The guard's bound on the predicted RMS error of a mean, in units of its Poisson standard
#: deviation ``sqrt(max(mean, 1))``; devices past it are recounted in fp32.
INT8_TOLERANCE = 0.05
#: A row of the guard is checked device by device unless its bound on the predicted variance
#: is below the limit times this (the margin covers the float32 rounding of the factors).
GUARD_MARGIN = 1.0 - 1e-6
#: Past this share of the columns or of the rows marked for a recount, everything is.
RECOUNT_SHARE = 0.25
#: Columns whose largest magnitude is below this are quantized as zeros by the int8 path
#: (``127 / largest`` would overflow float32); their pulses are far below one.
INT8_SMALLEST = np.float32(1e-36)


# ---------------------------------------------------------------------- compiled passes
@numba.njit(cache=True)
def column_scales(values, inverse, scale):
    """Per column of float32 ``values`` (B, N): ``inverse = 127 / max|v|`` and
    ``scale = max|v| / 127`` in float32 (both 0 for a column below :data:`INT8_SMALLEST`)."""
    batch, cols = values.shape
    largest = np.zeros(cols, np.float32)
    for b in range(batch):
        for j in range(cols):
            largest[j] = max(largest[j], abs(values[b, j]))
    levels, zero = np.float32(INT8_LEVELS), np.float32(0.0)
    for j in range(cols):
        positive = largest[j] >= INT8_SMALLEST
        inverse[j] = levels / largest[j] if positive else zero
        scale[j] = largest[j] / levels if positive else zero


@numba.njit(parallel=True, cache=True)
def quantize_int8(values, inverse, signed, magnitude):
    """``signed = rint(v * inverse_j)`` clipped to [-127, 127] and ``magnitude = |signed|``,
    int8, row by row (float32 product, ties to even)."""
    batch, cols = values.shape
    top = np.float32(INT8_LEVELS)
    for b in numba.prange(batch):
        for j in range(cols):
            level = min(max(np.rint(values[b, j] * inverse[j]), -top), top)
            signed[b, j] = np.int8(level)
            magnitude[b, j] = np.int8(abs(level))


@numba.njit(cache=True)
def level_energy(magnitude, energy):
    """``energy_j = sum_b q_bj^2`` (int64) of int8 levels (B, N)."""
    batch, cols = magnitude.shape
    energy[:] = 0
    for b in range(batch):
        for j in range(cols):
            level = np.int64(magnitude[b, j])
            energy[j] += level * level


@numba.njit(inline="always")
def _scaled_counts(total, net, factor):
    """``(float32((A - S) / 2) * f, float32((A + S) / 2) * f)``: up and down pulses."""
    return np.float32((total - net) >> 1) * factor, np.float32((total + net) >> 1) * factor


@numba.njit(parallel=True, cache=True)
def combine_int8(total, net, row_scale, col_scale, row_energy, col_energy, limit, up, down,
                 exact_rows, exact_cols):
    """``up = float32((A - S) / 2) * f``, ``down = float32((A + S) / 2) * f`` with
    ``f = r_i * c_j`` from the int32 or int64 sums ``A = total``, ``S = net`` (float32
    products), and the guard: where the predicted variance of the rounding error,
    ``f^2 (E_i + E_j) / 12`` (:func:`level_energy` of the levels of x and d), exceeds
    ``limit * max(min(up, down), 1)`` (float64), the side whose rounding dominates is marked
    for an exact recount: column ``j`` of ``d`` when ``E_i >= E_j``, else row ``i``.

    A row whose largest predicted variance is below ``limit`` by a margin (bounded from
    ``max_j c_j^2`` and ``max_j c_j^2 E_j``) cannot be marked and skips the check, so the
    usual rows run the plain, vectorised loop.
    """
    rows, cols = total.shape
    widest, loudest = 0.0, 0.0
    for j in range(cols):
        square = np.float64(col_scale[j]) * np.float64(col_scale[j])
        widest = max(widest, square)
        loudest = max(loudest, square * np.float64(col_energy[j]))
    for i in numba.prange(rows):
        r, own = row_scale[i], row_energy[i]
        wide_r = np.float64(r)
        bound = wide_r * wide_r * (np.float64(own) * widest + loudest) / 12.0
        if bound <= limit * GUARD_MARGIN:
            for j in range(cols):
                up[i, j], down[i, j] = _scaled_counts(total[i, j], net[i, j],
                                                      r * col_scale[j])
            continue
        for j in range(cols):
            factor = r * col_scale[j]
            going_up, going_down = _scaled_counts(total[i, j], net[i, j], factor)
            up[i, j], down[i, j] = going_up, going_down
            wide = np.float64(factor)
            variance = wide * wide * np.float64(own + col_energy[j]) / 12.0
            if variance > limit * max(np.float64(min(going_up, going_down)), 1.0):
                if own >= col_energy[j]:
                    exact_cols[j] = True
                else:
                    exact_rows[i] = True


# ---------------------------------------------------------------------- PyTorch
@functools.cache
def _torch() -> Any:
    """PyTorch, checked to have a CPU int8 matmul (``torch._int_mm``: PyTorch 2.3 and later)."""
    try:
        import torch
    except ImportError as error:
        raise BackendUnavailableError(
            "PyTorch, whose int8 matmul makes count_precision='int8' fast, is not installed: "
            "pip install torch==2.13.0 (the CPU build).") from error
    try:
        ones = torch.ones((2, 2), dtype=torch.int8)
        torch._int_mm(ones, ones)
    except (AttributeError, NotImplementedError, RuntimeError) as error:
        raise BackendUnavailableError(
            f"count_precision='int8' is fast with PyTorch's CPU int8 matmul (torch._int_mm, "
            f"PyTorch 2.3 and later); PyTorch {torch.__version__} has none: pip install "
            f"torch==2.13.0.") from error
    return torch


def torch_available() -> bool:
    """Whether PyTorch with a CPU int8 matmul can be imported (what makes
    ``count_precision='int8'`` fast)."""
    try:
        _torch()
    except BackendUnavailableError:
        return False
    return True


class Int8CountMeans:
    """``count_means(x, d, pulses_per_unit, out=None)`` from exact int8 matmuls (see the
    module docstring): same signature and meaning as
    :func:`~analogsim.kernels.pulsed_update.pulse_count_means`.

    ``engine`` multiplies the levels: "torch" (PyTorch's int8 matmul), "float32" (exact
    float32 matmuls: the same sums, at the speed of the fp32 means), or None for "torch"
    where it can run, else "float32" with a RuntimeWarning that says why.

    Keeps its two integer sums per tile shape (up to :data:`SCRATCH_SHAPES` shapes), so that
    an update does not take fresh pages from the operating system. ``recounts`` counts the
    calls whose guard recounted columns, rows or everything in fp32.
    """

    __name__ = "int8_count_means"

    def __init__(self, engine: str | None = None) -> None:
        check_choice("Int8CountMeans", "engine", engine, (None, *INT8_ENGINES))
        self.torch = None
        if engine != "float32":
            try:
                self.torch = _torch()
            except BackendUnavailableError as error:
                if engine == "torch":
                    raise
                warnings.warn(f"{error} Until then the int8 levels are multiplied in "
                              f"float32: the same counts, no faster than the default fp32 ones.",
                              RuntimeWarning, stacklevel=2)
        self._sums: dict[tuple[int, int, bool], tuple[np.ndarray, np.ndarray]] = {}
        self.recounts = {"columns": 0, "rows": 0, "everything": 0}

    @property
    def engine(self) -> str:
        """The engine that multiplies the levels: "torch" or "float32"."""
        return "float32" if self.torch is None else "torch"

    def __call__(self, x: np.ndarray, d: np.ndarray, pulses_per_unit: float,
                 out: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        batch, rows, cols = x.shape[0], x.shape[1], d.shape[1]
        if out is None:
            out = (np.empty((rows, cols), np.float32), np.empty((rows, cols), np.float32))
        else:
            check_count_buffers("count_means", out, (rows, cols))
        x_levels, d_levels = _quantized(x), _quantized(d)
        total, net = self._sums_for(rows, cols, batch > INT8_BATCH)
        for left, right, target in ((x_levels.magnitude, d_levels.magnitude, total),
                                    (x_levels.signed, d_levels.signed, net)):
            if self.torch is None:
                _float32_level_products(left, right, target, scratch=out[0])
            else:
                self._torch_level_products(left, right, target)
        exact_rows, exact_cols = np.zeros(rows, np.bool_), np.zeros(cols, np.bool_)
        combine_int8(total, net, x_levels.scale * np.float32(pulses_per_unit), d_levels.scale,
                     x_levels.energy, d_levels.energy, INT8_TOLERANCE**2, *out, exact_rows,
                     exact_cols)
        for kind in recount(x, d, pulses_per_unit, out, exact_rows, exact_cols,
                            pulse_count_means):
            self.recounts[kind] += 1
        return out

    def _torch_level_products(self, left: np.ndarray, right: np.ndarray,
                              target: np.ndarray) -> None:
        """``target = left^T right`` of int8 levels with PyTorch's int32 matmul, in chunks of
        :data:`INT8_BATCH` samples summed in int64 (``target``'s type) past one chunk."""
        torch = self.torch
        one_chunk = target.dtype == np.int32
        for start in range(0, left.shape[0], INT8_BATCH):
            chunk = slice(start, start + INT8_BATCH)
            lhs, rhs = torch.from_numpy(left[chunk]).T, torch.from_numpy(right[chunk])
            if one_chunk:
                torch._int_mm(lhs, rhs, out=torch.from_numpy(target))
            elif start == 0:
                target[...] = torch._int_mm(lhs, rhs).numpy()
            else:
                target += torch._int_mm(lhs, rhs).numpy()

    def _sums_for(self, rows: int, cols: int, wide: bool) -> tuple[np.ndarray, np.ndarray]:
        key = (rows, cols, wide)
        sums = self._sums.get(key)
        if sums is None:
            if len(self._sums) >= SCRATCH_SHAPES:
                self._sums.pop(next(iter(self._sums)))
            dtype = np.int64 if wide else np.int32
            sums = self._sums[key] = (np.empty((rows, cols), dtype),
                                      np.empty((rows, cols), dtype))
        return sums


def _float32_level_products(left: np.ndarray, right: np.ndarray, target: np.ndarray,
                            scratch: np.ndarray) -> None:
    """``target = left^T right`` of int8 levels (B, R) and (B, C) from float32 matmuls of
    :data:`FLOAT32_BATCH` samples, each exact (module docstring), into the integer
    ``target`` (R, C); ``scratch`` is a float32 (R, C) buffer it may overwrite."""
    for start in range(0, left.shape[0], FLOAT32_BATCH):
        chunk = slice(start, start + FLOAT32_BATCH)
        np.matmul(left[chunk].T.astype(np.float32), right[chunk].astype(np.float32),
                  out=scratch)
        if start == 0:
            np.copyto(target, scratch, casting="unsafe")  # integers: the cast is exact
        else:
            np.add(target, scratch, out=target, casting="unsafe")  # in float64: exact


class Levels(NamedTuple):
    """int8 levels of a (B, N) array, with per-column scales and level energies."""

    signed: np.ndarray
    magnitude: np.ndarray
    scale: np.ndarray
    energy: np.ndarray


def _quantized(values: np.ndarray) -> Levels:
    values = np.ascontiguousarray(values, dtype=np.float32)
    cols = values.shape[1]
    inverse, scale = np.empty(cols, np.float32), np.empty(cols, np.float32)
    column_scales(values, inverse, scale)
    signed, magnitude = np.empty(values.shape, np.int8), np.empty(values.shape, np.int8)
    quantize_int8(values, inverse, signed, magnitude)
    energy = np.empty(cols, np.int64)
    level_energy(magnitude, energy)
    return Levels(signed, magnitude, scale, energy)


def recount(x: np.ndarray, d: np.ndarray, pulses_per_unit: float,
            out: tuple[np.ndarray, np.ndarray], exact_rows: np.ndarray,
            exact_cols: np.ndarray, means: Any) -> tuple[str, ...]:
    """Recount in fp32 (``means``: an fp32 ``count_means``) the columns, then the rows, that
    the guard marked, or everything when more than :data:`RECOUNT_SHARE` of either is
    marked; which of "columns", "rows" and "everything" were done."""
    columns, rows = np.flatnonzero(exact_cols), np.flatnonzero(exact_rows)
    if columns.size > RECOUNT_SHARE * exact_cols.size or (
            rows.size > RECOUNT_SHARE * exact_rows.size):
        means(x, d, pulses_per_unit, out=out)
        return ("everything",)
    if columns.size:
        up, down = means(x, np.ascontiguousarray(d[:, columns]), pulses_per_unit)
        out[0][:, columns], out[1][:, columns] = up, down
    if rows.size:
        up, down = means(np.ascontiguousarray(x[:, rows]), d, pulses_per_unit)
        out[0][rows], out[1][rows] = up, down
    return ("columns",) * bool(columns.size) + ("rows",) * bool(rows.size)


# ---------------------------------------------------------------------- NumPy reference
def pulse_count_means_int8_numpy(x: np.ndarray, d: np.ndarray, pulses_per_unit: float,
                                 out: tuple[np.ndarray, np.ndarray] | None = None
                                 ) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference of :class:`Int8CountMeans`, guard included: the same values bit for
    bit."""
    levels = np.float32(INT8_LEVELS)

    def quantized(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(values, np.float32)
        largest = np.abs(values).max(axis=0)
        positive = largest >= INT8_SMALLEST
        safe = np.where(positive, largest, np.float32(1))
        inverse = np.where(positive, levels / safe, np.float32(0)).astype(np.float32)
        scale = np.where(positive, largest / levels, np.float32(0)).astype(np.float32)
        return np.clip(np.rint(values * inverse), -levels, levels).astype(np.int64), scale

    (qx, sx), (qd, sd) = quantized(x), quantized(d)
    total, net = np.abs(qx).T @ np.abs(qd), qx.T @ qd
    factor = (sx * np.float32(pulses_per_unit))[:, None] * sd[None, :]
    up = ((total - net) >> 1).astype(np.float32) * factor
    down = ((total + net) >> 1).astype(np.float32) * factor
    if out is None:
        out = (up, down)
    else:
        out[0][...], out[1][...] = up, down
    row_energy, col_energy = (qx * qx).sum(axis=0), (qd * qd).sum(axis=0)
    energy = (row_energy[:, None] + col_energy[None, :]).astype(np.float64)
    wide = factor.astype(np.float64)
    noisy = (wide * wide * energy / 12.0
             > INT8_TOLERANCE**2 * np.maximum(np.minimum(up, down).astype(np.float64), 1.0))
    columns_first = row_energy[:, None] >= col_energy[None, :]
    recount(x, d, pulses_per_unit, out, (noisy & ~columns_first).any(axis=1),
            (noisy & columns_first).any(axis=0), pulse_count_means_numpy)
    return out
