"""A crossbar tile: ``rows x cols`` weights stored as device conductances on one chip.

Rows are the inputs (word lines), columns the outputs: ``forward(x)`` maps (batch, rows) to
(batch, cols). A weight is ``w = weight_scale * sum_p sign_p G_p / g_max``: one bidirectional
element (P = 1) or a differential pair G+ - G- (P = 2, PCM), times a digital output scale.

The tile's arrays live where its chip's kernel set allocates (``chip.kernels.xp``: NumPy, or
CuPy on the GPU). ``forward``, ``backward``, ``update`` and ``program`` accept NumPy, CuPy or
CUDA DLPack arrays (torch CUDA tensors) and return results in the kind of their input: NumPy
in, NumPy out, whatever the backend. ``read`` always returns NumPy (a read-out to the host).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from analogsim._arrays import as_batch, as_matrix, input_kind, to_kind, to_numpy
from analogsim._tile_parameters import TileArrays
from analogsim._validation import check_choice, check_range
from analogsim.devices import DeviceModel
from analogsim.kernels.counter_rng import draw_key, normal_array
from analogsim.kernels.mvm import row_read_variance
from analogsim.kernels.physics import UpdateRule
from analogsim.periphery import SAMPLERS, Periphery

if TYPE_CHECKING:
    from analogsim.chip import Chip

RngLike = np.random.Generator | int | None


class Tile:
    """One crossbar array of a :class:`~analogsim.chip.Chip`; made by ``chip.tile(...)``."""

    def __init__(self, chip: Chip, name: str, rows: int, cols: int, device: DeviceModel,
                 periphery: Periphery, arrays: TileArrays, weight_scale: float = 1.0,
                 drift_reference: float = 0.0) -> None:
        self._chip = chip
        self.name = name
        self.rows = rows
        self.cols = cols
        self.device = device
        self._periphery = periphery
        xp = self._xp = chip.kernels.xp
        #: The device arrays, in the chip's array module (CuPy arrays on the GPU).
        self.arrays = arrays if xp is np else TileArrays(**{
            field: xp.asarray(getattr(arrays, field)) for field in TileArrays.field_names()})
        self.weight_scale = float(weight_scale)
        self.drift_reference = float(drift_reference)
        self._physics = device.physics()
        self._params = xp.asarray(self._physics.pack())
        self._signs = xp.asarray(np.array([1.0, -1.0][: device.devices_per_weight]))
        self._cache_time: float | None = None
        self._weight = xp.empty((rows, cols), dtype=np.float32)
        self._variance: np.ndarray | None = None
        #: The read-noise variance when every device has the same one (ReRAM, ECRAM), else None.
        self._uniform_variance: float | None = None
        self._compensation = 1.0
        self._counts: tuple[np.ndarray, np.ndarray] | None = None  # see _count_buffers
        #: The chip time at which every device was last written, when one is known: updates at
        #: that time have no drift to settle (set by program and by updates that write every
        #: device; found here for new and loaded tiles). Changing ``arrays.written_at`` by hand
        #: must reset it, as changing ``arrays`` must reset the cached effective weights.
        everything_now = bool((self.arrays.written_at == chip.time).all())
        self._settled_at: float | None = chip.time if everything_now else None

    # ------------------------------------------------------------------ public operations
    @property
    def periphery(self) -> Periphery:
        """The tile's periphery; assigning a new one takes effect at the next read."""
        return self._periphery

    @periphery.setter
    def periphery(self, periphery: Periphery) -> None:
        if not isinstance(periphery, Periphery):
            raise TypeError(f"Tile.periphery must be a Periphery. Got {periphery!r} instead.")
        self._periphery = periphery
        self._cache_time = None  # the drift-compensation factor depends on it

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols): inputs by outputs."""
        return self.rows, self.cols

    def forward(self, x: object, *, rng: RngLike = None) -> np.ndarray:
        """The noisy analog MVM through the periphery.

        Parameters
        ----------
        x : array of shape (batch, rows) or (rows,)
            Inputs, any scale (noise management rescales each row): NumPy, CuPy or a CUDA
            DLPack array (torch CUDA tensor).
        rng : numpy Generator, int seed or None
            Source of this read's noise; None uses the chip's own stream.

        Returns
        -------
        float32 array of shape (batch, cols) (or (cols,) for 1-D input), of the input's kind.
        """
        inputs, was_vector = as_batch(x, self.rows, "Tile.forward", "x", self._xp)
        out = self._analog_matmul(inputs, transposed=False, rng=rng)
        return to_kind(out[0] if was_vector else out, input_kind(x), x)

    def backward(self, d: object, *, rng: RngLike = None) -> np.ndarray:
        """The transposed read ``d W^T`` through the same periphery (analog backprop only).

        Forward-only learners never call this. ``d``: (batch, cols) -> (batch, rows).
        """
        errors, was_vector = as_batch(d, self.cols, "Tile.backward", "d", self._xp)
        out = self._analog_matmul(errors, transposed=True, rng=rng)
        return to_kind(out[0] if was_vector else out, input_kind(d), d)

    def update(self, x: object, d: object, lr: float, *, rng: RngLike = None,
               sampler: str | None = None) -> None:
        """Apply ``W <- W - lr x^T d`` as device pulses (or exactly, on the ideal device).

        Parameters
        ----------
        x : (batch, rows) inputs; d : (batch, cols) errors (1-D: one sample).
        lr : float, >= 0
            Learning rate in weight units.
        sampler : "fast" or "exact", optional
            Defaults to the periphery's ``sampler`` (see :mod:`analogsim.kernels.pulsed_update`).
        """
        inputs, _ = as_batch(x, self.rows, "Tile.update", "x", self._xp)
        errors, _ = as_batch(d, self.cols, "Tile.update", "d", self._xp)
        if errors.shape[0] != inputs.shape[0]:
            raise ValueError(f"Tile.update: 'x' and 'd' must have the same batch size; got "
                             f"{inputs.shape[0]} and {errors.shape[0]}.")
        check_range("Tile.update", "lr", lr, 0.0, None)
        sampler = self.periphery.sampler if sampler is None else sampler
        check_choice("Tile.update", "sampler", sampler, SAMPLERS)
        if lr == 0.0:
            return
        arrays, kernels, now = self.arrays, self._chip.kernels, self._chip.time
        if self.device.update_rule == UpdateRule.CONTINUOUS:
            delta = (inputs.T @ errors) * np.float32(lr * self.device.g_max / self.weight_scale)
            arrays.conductance[0] -= delta
            arrays.written_at[0] = now
            self._settled_at = now
        elif sampler == "fast":
            pulses_per_unit = lr / (self.weight_scale * self.device.dw_min)
            up, down = kernels.count_means(inputs, errors, pulses_per_unit,
                                           out=self._count_buffers())
            kernels.apply_fast(up, down, *self._state_arrays(), now, self._params,
                               self._key(rng), settled=self._settled_at == now)
        else:
            self._update_exact(inputs, errors, lr, rng)
        self._cache_time = None

    def program(self, weights: object, *, weight_scale: float | None = None,
                fill: float = 0.8, rng: RngLike = None) -> None:
        """Write target weights with programming error (ex-situ deployment).

        Parameters
        ----------
        weights : (rows, cols) array
        weight_scale : float, optional
            Digital output scale (> 0). By default ``max|W|`` is mapped to ``fill`` of the
            device's symmetric range, so the largest weight uses that fraction of it.
        fill : float in (0, 1]
            Fraction of the range the largest weight occupies when ``weight_scale`` is None.
        """
        xp = self._xp
        target = as_matrix(weights, self.shape, "Tile.program", "weights", xp)
        check_range("Tile.program", "fill", fill, 0.0, 1.0, closed="right")
        if weight_scale is None:
            largest = float(xp.max(xp.abs(target)))
            weight_scale = largest / (fill * self._symmetric_range()) if largest > 0 else 1.0
        check_range("Tile.program", "weight_scale", weight_scale, 0.0, None, closed="neither")
        self.weight_scale = float(weight_scale)
        normalised = target * np.float32(self.device.g_max / self.weight_scale)
        if self.device.devices_per_weight == 1:
            targets = normalised[None]
        else:
            targets = xp.stack([xp.maximum(normalised, 0.0), xp.maximum(-normalised, 0.0)])
        targets = xp.ascontiguousarray(targets, dtype=np.float32)
        self._chip.kernels.program(targets, self.arrays.conductance, self.arrays.written_at,
                                   self.arrays.stuck, self.arrays.bound_low,
                                   self.arrays.bound_high, self._chip.time, self._params,
                                   self._key(rng))
        self._cache_time = None
        self._settled_at = self._chip.time  # every device that is not stuck was written now
        if self.periphery.drift_compensation:
            self.calibrate_drift()

    def read(self, *, rng: RngLike = None) -> np.ndarray:
        """What a digital read-out of the array sees: the weights now, with read noise.

        Returns a (rows, cols) float32 NumPy array in weight units (drift included, no
        compensation), on every backend: the read-out goes to the host, and its noise is
        drawn there (the same numbers on every backend).
        """
        weight, variance = self._effective()
        weight, variance = to_numpy(weight), None if variance is None else to_numpy(variance)
        observed = weight.astype(np.float64)
        if variance is not None:
            counters = np.arange(weight.size, dtype=np.uint64).reshape(weight.shape)
            observed += np.sqrt(variance) * normal_array(self._key(rng), counters)
        return (observed * self.weight_scale).astype(np.float32)

    def calibrate_drift(self) -> None:
        """Record the reference for global drift compensation: the array's response now.

        The reference is the total current of an all-ones input read on every line (both
        lines of a differential pair separately), ``sum_p sum_ij |G_p(t)|``, computed from the
        noiseless state (what averaging many reads gives). Unlike the summed column output,
        it does not cancel between positive and negative weights. ``program`` calls this
        when the periphery compensates drift; after in-situ training ``Learner.fit`` does.
        """
        self.drift_reference = self._total_conductance()
        self._cache_time = None

    def drift_compensation_factor(self) -> float:
        """The factor global drift compensation applies to outputs now (1 when off)."""
        self._effective()
        return self._compensation

    def __repr__(self) -> str:
        return (f"Tile({self.name!r}, rows={self.rows}, cols={self.cols}, "
                f"device={type(self.device).__name__}, weight_scale={self.weight_scale:.4g})")

    # ------------------------------------------------------------------ internals
    def _analog_matmul(self, inputs: np.ndarray, transposed: bool, rng: RngLike) -> np.ndarray:
        periphery = self.periphery
        x_q, input_scale = self._chip.kernels.quantize(inputs, periphery.dac_step,
                                                       periphery.dac_range,
                                                       periphery.noise_management)
        weight, variance = self._effective()
        if transposed:
            weight = weight.T
            variance = None if variance is None else variance.T
            gain, offset = self.arrays.adc_gain_rows, self.arrays.adc_offset_rows
        else:
            gain, offset = self.arrays.adc_gain, self.arrays.adc_offset
        matmul = self._chip.kernels.matmul
        y = matmul(x_q, weight)
        noise_variance = None
        if variance is not None and periphery.read_noise:
            if self._uniform_variance is not None:  # no second matmul (see kernels.mvm)
                noise_variance = row_read_variance(x_q, self._uniform_variance)
            else:
                noise_variance = matmul(x_q * x_q, variance)
        scale = self.weight_scale * self._compensation
        adc_range = periphery.adc_range if periphery.adc_bits is not None else np.inf
        out = self._xp.empty_like(y)  # not in place: an output aliasing y does not vectorise
        self._chip.kernels.epilogue(y, noise_variance, input_scale, gain, offset,
                                    float(periphery.out_noise), float(periphery.adc_step),
                                    float(adc_range), float(scale), self._key(rng), out)
        return out

    def _effective(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Cached (weight in g_max units, read-noise variance or None) at the chip's time."""
        now = self._chip.time
        if self._cache_time != now:
            arrays, xp = self.arrays, self._xp
            variance = xp.empty_like(self._weight)
            self._chip.kernels.effective_weights(arrays.conductance, arrays.written_at,
                                                 arrays.drift_xi, arrays.stuck, self._signs,
                                                 now, self._params, self._weight, variance)
            self._variance = variance if bool(xp.any(variance > 0.0)) else None
            self._uniform_variance = None
            if self._variance is not None and bool(variance.min() == variance.max()):
                self._uniform_variance = float(variance.ravel()[0])
            self._cache_time = now
            self._compensation = 1.0
            if self.periphery.drift_compensation and self.drift_reference > 0.0:
                current = self._total_conductance()
                self._compensation = self.drift_reference / current if current > 0.0 else 1.0
        return self._weight, self._variance

    def _total_conductance(self) -> float:
        """``sum |G_p(t)| / g_max`` over every device at the chip's time (see calibrate_drift)."""
        arrays, xp = self.arrays, self._xp
        total = xp.empty_like(self._weight)
        self._chip.kernels.effective_weights(xp.abs(arrays.conductance), arrays.written_at,
                                             arrays.drift_xi, arrays.stuck,
                                             xp.ones_like(self._signs), self._chip.time,
                                             self._params, total, None)
        return float(total.sum(dtype=np.float64))

    def _count_buffers(self) -> tuple[np.ndarray, np.ndarray]:
        """The two (rows, cols) float32 arrays the fast sampler's expected counts are written
        to, made at the first fast update and reused (8 bytes a weight; no fresh pages to
        fault in at every update)."""
        if self._counts is None:
            self._counts = (self._xp.empty(self.shape, dtype=np.float32),
                            self._xp.empty(self.shape, dtype=np.float32))
        return self._counts

    def _state_arrays(self) -> tuple[np.ndarray, ...]:
        a = self.arrays
        return (a.conductance, a.written_at, a.drift_xi, a.stuck, a.step_up, a.step_down,
                a.bound_low, a.bound_high)

    def _key(self, rng: RngLike) -> np.uint64:
        return np.uint64(draw_key(self._chip.runtime_rng(rng)))

    def _symmetric_range(self) -> float:
        """Largest |weight| (g_max units) representable in both signs, nominally."""
        device = self.device
        if device.update_rule == UpdateRule.CONTINUOUS:
            return 1.0
        if device.devices_per_weight == 2:
            return device.w_max
        return min(device.w_max, -device.w_min)

    def _update_exact(self, inputs: np.ndarray, errors: np.ndarray, lr: float,
                      rng: RngLike) -> None:
        periphery, kernels, xp = self.periphery, self._chip.kernels, self._xp
        length = periphery.pulse_length
        pulses_per_unit = lr / (self.weight_scale * self.device.dw_min)
        slot = np.sqrt(pulses_per_unit / length)
        x_abs, d_abs = xp.abs(inputs).astype(np.float64), xp.abs(errors).astype(np.float64)
        balance = xp.ones((inputs.shape[0], 1))
        if periphery.update_management:
            x_max = x_abs.max(axis=1, keepdims=True)
            d_max = d_abs.max(axis=1, keepdims=True)
            ok = (x_max > 0) & (d_max > 0)
            balance = xp.where(ok, xp.sqrt(xp.where(ok, d_max, 1.0) / xp.where(ok, x_max, 1.0)),
                               1.0)
        prob_x = xp.minimum(slot * x_abs * balance, 1.0)
        prob_d = xp.minimum(slot * d_abs / balance, 1.0)
        key = self._key(rng)
        x_bits = xp.empty(inputs.shape, dtype=np.uint64)
        d_bits = xp.empty(errors.shape, dtype=np.uint64)
        kernels.pulse_trains(prob_x, length, key, x_bits)
        kernels.pulse_trains(prob_d, length, key ^ np.uint64(0x5DEECE66D), d_bits)
        # The update's own noise gets a third derived key: sharing the x trains' key would
        # correlate a device's cycle noise with whether its input slot fired.
        kernels.apply_exact(_by_line(x_bits), _by_line(xp.sign(inputs).astype(np.int8)),
                            _by_line(d_bits), _by_line(xp.sign(errors).astype(np.int8)),
                            *self._state_arrays(), self._chip.time, self._params,
                            key ^ np.uint64(0x2545F4914F6CDD1D))


def _by_line(per_sample: np.ndarray) -> np.ndarray:
    """(batch, lines) -> (lines, batch), C-contiguous: the exact sampler's layout (NumPy or
    CuPy)."""
    return per_sample.T.copy(order="C")
