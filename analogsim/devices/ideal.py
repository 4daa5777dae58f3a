"""The ideal device: no noise, no drift, exact continuous updates (for validating learners)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from analogsim.devices._base import DeviceModel
from analogsim.kernels.physics import UpdateRule


@dataclass(frozen=True, kw_only=True)
class Ideal(DeviceModel):
    """A noiseless device whose conductance follows every update exactly.

    ``update`` applies ``W <- W - lr x^T d`` without pulses, bounds or noise; programming and
    reading are exact and nothing drifts. A chip of ideal devices gets an ideal periphery by
    default (no DAC/ADC quantisation, no output noise), so it is the floating-point reference
    a learner must match before it meets real devices.
    """

    update_rule: ClassVar[UpdateRule] = UpdateRule.CONTINUOUS
