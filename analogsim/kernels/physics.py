"""Scalar device parameters in the form the kernels take them.

A :class:`DevicePhysics` is derived from a device model (``DeviceModel.physics()``); kernels
receive it packed into one float64 vector (:meth:`DevicePhysics.pack`) indexed by the ``P_*``
constants below, which compiles the same way for Numba CPU and CUDA.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np


class UpdateRule(IntEnum):
    """How a device responds to update pulses."""

    #: Exact, continuous update ``w += dw`` (the ideal device): no pulses at all.
    CONTINUOUS = 0
    #: Bidirectional steps ``dw_up (1 - gamma_up w / w_max)``, ``dw_down (1 - gamma_down w /
    #: w_min)``; gamma = 1 is soft bounds, gamma = 0 constant steps. Clipped to the bounds.
    LINEAR_STEP = 1
    #: Unipolar SET pulses on one device of a differential pair (PCM), saturating at the upper
    #: bound, with a refresh of the pair when one side passes ``refresh_threshold``.
    UNIPOLAR_SET = 2


class DevicePhysics(NamedTuple):
    """Scalar parameters of a device model in uS and seconds (see the device docstrings)."""

    devices_per_weight: int
    update_rule: UpdateRule
    g_max: float
    #: Programming error sigma(g) = c0 + c1 g + c2 g^2 in uS, g = |G_target| / g_max.
    prog_coefficients: tuple[float, float, float]
    n_levels: int
    #: Range (uS) that ``n_levels`` programmable levels span.
    level_range: tuple[float, float]
    #: Read noise independent of the state, uS.
    read_noise_uS: float
    #: 1/f read noise (q0, q_exp, q_max, t_read): Q(g) = min(q0 / max(g^q_exp, 1e-3), q_max).
    read_1f: tuple[float, float, float, float]
    drift_t0: float
    #: Drift exponent mean mu(g) = clip(a ln g + b, lo, hi) as (a, b, lo, hi).
    drift_mu: tuple[float, float, float, float]
    #: Drift exponent spread sigma(g) = clip(a ln g + b, lo, hi) as (a, b, lo, hi).
    drift_sigma: tuple[float, float, float, float]
    dw_min_uS: float
    dw_min_std: float
    gamma: tuple[float, float]
    refresh_threshold: float

    def pack(self) -> np.ndarray:
        """All parameters as one float64 vector, indexed by the ``P_*`` constants."""
        values = [
            self.devices_per_weight, int(self.update_rule), self.g_max,
            *self.prog_coefficients, self.n_levels, *self.level_range,
            self.read_noise_uS, *self.read_1f, self.drift_t0,
            *self.drift_mu, *self.drift_sigma, self.dw_min_uS, self.dw_min_std,
            *self.gamma, self.refresh_threshold,
        ]
        return np.asarray(values, dtype=np.float64)


(P_DEVICES, P_RULE, P_GMAX, P_PROG0, P_PROG1, P_PROG2, P_LEVELS, P_LEVEL_LO, P_LEVEL_HI,
 P_READ, P_Q0, P_QEXP, P_QMAX, P_TREAD, P_T0, P_MU_A, P_MU_B, P_MU_LO, P_MU_HI,
 P_SD_A, P_SD_B, P_SD_LO, P_SD_HI, P_DW, P_DW_STD, P_GAMMA_UP, P_GAMMA_DOWN,
 P_REFRESH) = range(28)
PACKED_LENGTH = 28
