"""The ideal device: no noise, no drift, exact continuous updates (for validating learners)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from analogsim.devices._base import DeviceModel
from analogsim.errors import ParameterError
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

    def _check_extra(self) -> None:
        # Stuck devices and drift need the pulsed update's bookkeeping, which the exact
        # continuous update skips; an "ideal" device with them would be neither.
        for name in ("stuck_at_gmin", "stuck_at_gmax", "drift_nu", "drift_nu_dtod"):
            value = getattr(self, name)
            if value != 0.0:
                raise ParameterError(f"The '{name}' parameter of Ideal must be 0 (the ideal "
                                     f"device has no faults and no drift). Got {value!r} "
                                     f"instead; use ReRAM, ECRAM or PCM for these effects.")
