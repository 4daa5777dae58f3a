"""The device-model base class: physical fields with units and ranges, validated on creation.

Every field is declared with :func:`physical`, which records its unit, its allowed range and a
one-line description as dataclass metadata. ``__post_init__`` checks each field against that
range, so a bad preset fails where it is made, with a message naming the field.

Conventions (see DESIGN.md section 2): conductances in microsiemens (uS), time in seconds.
Update-related sizes (``dw_min``, ``w_max``, ``w_min``) are fractions of ``g_max``.
``*_dtod`` fields are drawn once per device when a chip is made; ``*_std`` fields at every event.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from analogsim._validation import check_range
from analogsim.kernels.physics import DevicePhysics, UpdateRule


def physical(
    default: Any,
    unit: str,
    doc: str,
    low: float | None = None,
    high: float | None = None,
    *,
    closed: str = "both",
    integer: bool = False,
    optional: bool = False,
) -> Any:
    """A dataclass field carrying its unit, allowed range and description."""
    meta = {
        "unit": unit,
        "doc": doc,
        "low": low,
        "high": high,
        "closed": closed,
        "integer": integer,
        "optional": optional,
    }
    return field(default=default, metadata=meta)


@dataclass(frozen=True, kw_only=True)
class DeviceModel:
    """Physical parameters of one kind of analog memory device.

    Subclasses are presets (``Ideal``, ``PCM``, ``ReRAM``, ``ECRAM``) with cited values. All four
    behaviours are defined by every model: programming error, read noise, drift over time and
    the pulsed-update response, plus device-to-device variation and faults.
    """

    g_max: float = physical(25.0, "uS", "maximum conductance of one device", 0.0, None,
                            closed="neither")
    # Programming.
    prog_noise_std: float = physical(0.0, "fraction of g_max",
                                     "programming error (std) of one write", 0.0, 1.0)
    n_levels: int | None = physical(None, "levels", "programmable levels (None: continuous)",
                                    2, 2**20, integer=True, optional=True)
    # Read noise.
    read_noise_std: float = physical(0.0, "fraction of g_max",
                                     "read noise (std) of one device at every read", 0.0, 1.0)
    # Drift.
    drift_nu: float = physical(0.0, "1", "mean drift exponent nu in G(t) ~ (t/t0)^-nu",
                               0.0, 1.0)
    drift_nu_dtod: float = physical(0.0, "1", "device-to-device spread (std) of nu", 0.0, 1.0)
    drift_t0: float = physical(20.0, "s", "drift reference time after a write", 0.0, None,
                               closed="neither")
    # Pulsed update.
    dw_min: float = physical(0.001, "fraction of g_max", "mean conductance step of one pulse",
                             0.0, 1.0, closed="right")
    dw_min_dtod: float = physical(0.0, "relative", "device-to-device spread of the step",
                                  0.0, 1.0)
    dw_min_std: float = physical(0.0, "relative to the step",
                                 "cycle-to-cycle noise (std) of one pulse", 0.0, 100.0)
    up_down: float = physical(0.0, "relative", "mean up/down step imbalance", -0.99, 0.99)
    up_down_dtod: float = physical(0.0, "relative", "device-to-device spread of up_down",
                                   0.0, 1.0)
    w_max: float = physical(1.0, "fraction of g_max", "upper bound of the update", 0.0, None,
                            closed="neither")
    w_max_dtod: float = physical(0.0, "relative", "device-to-device spread of w_max", 0.0, 1.0)
    w_min: float = physical(-1.0, "fraction of g_max", "lower bound of the update", None, 0.0)
    w_min_dtod: float = physical(0.0, "relative", "device-to-device spread of w_min", 0.0, 1.0)
    gamma_up: float = physical(0.0, "1", "state dependence of up steps (1: soft bounds)",
                               0.0, 1.0)
    gamma_down: float = physical(0.0, "1", "state dependence of down steps (1: soft bounds)",
                                 0.0, 1.0)
    # Faults.
    stuck_at_gmin: float = physical(0.0, "fraction", "devices stuck at the lowest state",
                                    0.0, 1.0)
    stuck_at_gmax: float = physical(0.0, "fraction", "devices stuck at the highest state",
                                    0.0, 1.0)

    #: Devices per weight: 1 = one bidirectional element, 2 = a unipolar differential pair.
    devices_per_weight: ClassVar[int] = 1
    #: How the update behaves; overridden by presets.
    update_rule: ClassVar[UpdateRule] = UpdateRule.LINEAR_STEP
    #: Fields scaled by :meth:`scaled`, per noise group.
    noise_groups: ClassVar[dict[str, tuple[str, ...]]] = {
        "programming": ("prog_noise_std",),
        "read": ("read_noise_std",),
        "update": ("dw_min_std",),
        "drift": ("drift_nu", "drift_nu_dtod"),
    }

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for spec in dataclasses.fields(self):
            meta = spec.metadata
            if "unit" not in meta:
                continue
            value = getattr(self, spec.name)
            if value is None and meta["optional"]:
                continue
            check_range(owner, spec.name, value, meta["low"], meta["high"],
                        closed=meta["closed"], integer=meta["integer"])
        check_range(owner, "stuck_at_gmin + stuck_at_gmax",
                    self.stuck_at_gmin + self.stuck_at_gmax, 0.0, 1.0)
        self._check_extra()

    def _check_extra(self) -> None:
        """Cross-field checks of a subclass."""

    # ----------------------------------------------------------------------------- derived
    def physics(self) -> DevicePhysics:
        """The scalar parameters the kernels use, in uS and seconds."""
        return DevicePhysics(
            devices_per_weight=self.devices_per_weight,
            update_rule=self.update_rule,
            g_max=self.g_max,
            prog_coefficients=(self.prog_noise_std * self.g_max, 0.0, 0.0),
            n_levels=self.n_levels or 0,
            level_range=(self.w_min * self.g_max, self.w_max * self.g_max),
            read_noise_uS=self.read_noise_std * self.g_max,
            read_1f=(0.0, 0.0, 0.0, 250e-9),
            drift_t0=self.drift_t0,
            drift_mu=(0.0, self.drift_nu, self.drift_nu, self.drift_nu),
            drift_sigma=(0.0, self.drift_nu_dtod, self.drift_nu_dtod, self.drift_nu_dtod),
            dw_min_uS=self.dw_min * self.g_max,
            dw_min_std=self.dw_min_std,
            gamma=(self.gamma_up, self.gamma_down),
            refresh_threshold=math.inf,
        )

    def scaled(self, **factors: float) -> DeviceModel:
        """A copy with whole noise groups multiplied, for sweeps of accuracy versus noise.

        Parameters
        ----------
        **factors
            ``programming=``, ``read=``, ``update=``, ``drift=`` and ``dtod=`` (every ``*_dtod``
            field), each a non-negative factor.
        """
        owner = f"{type(self).__name__}.scaled"
        names = {spec.name for spec in dataclasses.fields(self)}
        groups = dict(self.noise_groups)
        groups["dtod"] = tuple(sorted(name for name in names if name.endswith("_dtod")))
        changes: dict[str, float] = {}
        for group, factor in factors.items():
            if group not in groups:
                allowed = ", ".join(repr(name) for name in sorted(groups))
                raise TypeError(f"{owner}() got an unknown noise group {group!r}; "
                                f"allowed: {allowed}.")
            check_range(owner, group, factor, 0.0, None)
            for name in groups[group]:
                changes[name] = changes.get(name, getattr(self, name)) * factor
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict, with the class name under ``"kind"``."""
        values = dataclasses.asdict(self)
        values["kind"] = type(self).__name__
        return values

    @classmethod
    def describe(cls) -> str:
        """A table of the fields with units, defaults and descriptions."""
        rows = []
        for spec in dataclasses.fields(cls):
            meta = spec.metadata
            if "unit" in meta:
                rows.append(f"{spec.name:>16} = {spec.default!s:<10} [{meta['unit']}] "
                            f"{meta['doc']}")
        return "\n".join(rows)
