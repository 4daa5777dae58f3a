"""The hidden, fixed parameters of one tile and its mutable state.

Everything fixed about a physical tile (per-device step sizes, bounds, drift variates, stuck
devices, per-column ADC gain and offset) is drawn from ``SeedSequence([chip_seed, 0, *name])``:
the same chip seed and tile name give the same tile whatever else the chip holds or in which
order its tiles were made. Every draw is made even when its spread is zero, so scaling one
kind of variation (a noise sweep) leaves the others' variates unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from analogsim.devices import DeviceModel
from analogsim.kernels.physics import UpdateRule
from analogsim.periphery import Periphery

#: Stuck codes in ``TileArrays.stuck``.
FREE, STUCK_LOW, STUCK_HIGH = 0, 1, 2


def name_words(name: str) -> list[int]:
    """A tile name as four 32-bit words (stable across runs and platforms)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=16).digest()
    return [int.from_bytes(digest[k:k + 4], "little") for k in range(0, 16, 4)]


@dataclass
class TileArrays:
    """Per-device arrays of one tile, all shaped (P, rows, cols) except the ADC vectors.

    ``conductance`` (uS, float32) and ``written_at`` (s, float64) change; the rest is fixed.
    """

    conductance: np.ndarray
    written_at: np.ndarray
    drift_xi: np.ndarray
    stuck: np.ndarray
    step_up: np.ndarray
    step_down: np.ndarray
    bound_low: np.ndarray
    bound_high: np.ndarray
    adc_gain: np.ndarray
    adc_offset: np.ndarray
    adc_gain_rows: np.ndarray
    adc_offset_rows: np.ndarray

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)


def draw_tile_arrays(seed: int, name: str, rows: int, cols: int, device: DeviceModel,
                     periphery: Periphery, now: float) -> TileArrays:
    """Draw a new tile's hidden parameters; conductances start at zero (stuck ones fixed)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0, *name_words(name)]))
    shape = (device.devices_per_weight, rows, cols)
    xi = {key: rng.standard_normal(shape, dtype=np.float32)
          for key in ("step", "asymmetry", "high", "low", "drift")}
    stuck_draw = rng.random(shape, dtype=np.float32)
    stuck_side = rng.random(shape, dtype=np.float32) < 0.5
    adc = rng.standard_normal((4, max(rows, cols)), dtype=np.float32)

    g_max = device.g_max
    base = np.maximum(device.dw_min * g_max * (1.0 + device.dw_min_dtod * xi["step"]), 0.0)
    asymmetry = device.up_down + device.up_down_dtod * xi["asymmetry"]
    step_up = np.maximum(base * (1.0 + asymmetry), 0.0).astype(np.float32)
    step_down = np.maximum(base * (1.0 - asymmetry), 0.0).astype(np.float32)
    if device.update_rule == UpdateRule.CONTINUOUS:
        bound_high = np.full(shape, np.inf, dtype=np.float32)
        bound_low = np.full(shape, -np.inf, dtype=np.float32)
    else:
        bound_high = np.maximum(device.w_max * g_max * (1.0 + device.w_max_dtod * xi["high"]),
                                1e-3 * g_max).astype(np.float32)
        bound_low = np.minimum(device.w_min * g_max * (1.0 + device.w_min_dtod * xi["low"]),
                               0.0).astype(np.float32)

    stuck = np.full(shape, FREE, dtype=np.int8)
    stuck[stuck_draw < device.stuck_at_gmin] = STUCK_LOW
    high_range = (stuck_draw >= device.stuck_at_gmin) & (
        stuck_draw < device.stuck_at_gmin + device.stuck_at_gmax)
    stuck[high_range] = STUCK_HIGH

    conductance = np.zeros(shape, dtype=np.float32)
    finite_low = np.where(np.isfinite(bound_low), bound_low, 0.0)
    if device.devices_per_weight == 1:
        # One bidirectional element: "low" is the zero-weight state, "high" either bound.
        stuck_value = np.where(stuck_side, bound_high, finite_low)
    else:
        stuck_value = bound_high
    conductance[stuck == STUCK_HIGH] = stuck_value[stuck == STUCK_HIGH]
    conductance[stuck == STUCK_LOW] = np.where(device.devices_per_weight == 1, 0.0,
                                               finite_low)[stuck == STUCK_LOW]
    return TileArrays(
        conductance=conductance,
        written_at=np.full(shape, now, dtype=np.float64),
        drift_xi=xi["drift"],
        stuck=stuck,
        step_up=step_up,
        step_down=step_down,
        bound_low=bound_low,
        bound_high=bound_high,
        adc_gain=(1.0 + periphery.adc_gain_dtod * adc[0, :cols]).astype(np.float32),
        adc_offset=(periphery.adc_offset_dtod * adc[1, :cols]).astype(np.float32),
        adc_gain_rows=(1.0 + periphery.adc_gain_dtod * adc[2, :rows]).astype(np.float32),
        adc_offset_rows=(periphery.adc_offset_dtod * adc[3, :rows]).astype(np.float32),
    )
