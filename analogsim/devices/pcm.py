"""Phase-change memory: the Nandakumar statistical model and unipolar SET updates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from analogsim._validation import check_range
from analogsim.devices._base import DeviceModel, physical
from analogsim.errors import ParameterError
from analogsim.kernels.physics import DevicePhysics, UpdateRule

#: Programming error sigma(g) = (c0 + c1 g + c2 g^2) g_max / 25 uS, g = G_T / g_max.
NANDAKUMAR_PROGRAMMING = (0.26348, 1.9650, -1.1731)
#: Drift mean mu(g) = clip(a ln g + b, lo, hi) and spread sigma(g) likewise.
NANDAKUMAR_DRIFT_MU = (-0.0155, 0.0244, 0.049, 0.1)
NANDAKUMAR_DRIFT_SIGMA = (-0.0125, -0.0059, 0.008, 0.045)
#: 1/f read noise Q(g) = min(q0 / max(g^q_exp, 1e-3), q_max).
NANDAKUMAR_READ_Q = (0.0088, 0.65, 0.2)


@dataclass(frozen=True, kw_only=True)
class PCM(DeviceModel):
    """Phase-change memory: two unipolar devices per weight, w ~ (G+ - G-) / g_max.

    Programming, drift and read noise follow the statistical model of Nandakumar et al.
    (ICECS 2019; the fit aihwkit's ``PCMLikeNoiseModel`` uses), with g = G_T / g_max and
    g_max = 25 uS:

    - programming: sigma = (0.26348 + 1.9650 g - 1.1731 g^2) g_max / 25 uS, G = max(G_T +
      sigma xi, 0);
    - drift: G(t) = G_prog ((t + t0) / t0)^-nu, t0 = 20 s, nu = |mu + sigma xi| with
      mu = clip(-0.0155 ln g + 0.0244, 0.049, 0.1), sigma = clip(-0.0125 ln g - 0.0059,
      0.008, 0.045); xi is fixed per device;
    - 1/f read noise: Q = min(0.0088 / max(g^0.65, 1e-3), 0.2), sigma_read = G(t) Q
      sqrt(ln((t + t0 + t_read) / (2 t_read))), t_read = 250 ns. The ``+ t0`` (time since the
      write plus the drift reference) keeps the logarithm positive right after programming.

    Update: each device only increases (partial SET pulses); a positive weight change pulses
    G+, a negative one G-. A SET step is ``dw_min (1 - G / G_max_device)`` (saturating), with
    cycle-to-cycle noise of ``dw_min_std`` steps. When either device of a pair passes
    ``refresh_threshold`` of its maximum, the pair is refreshed: read, both reset, and the
    difference reprogrammed onto one device with programming noise. Step values (2 % of g_max
    per pulse, spread equal to the mean) are of the order of the gradual SET of Nandakumar et
    al., J. Appl. Phys. 124, 152135 (2018); they are not a fit.

    ``prog_noise_std`` and ``read_noise_std`` add a state-independent part on top of the
    model; ``*_scale`` fields scale the model itself (used by noise sweeps).
    """

    prog_noise_scale: float = physical(1.0, "1", "factor on the Nandakumar programming error",
                                       0.0, 100.0)
    read_noise_scale: float = physical(1.0, "1", "factor on the Nandakumar 1/f read noise",
                                       0.0, 100.0)
    drift_scale: float = physical(1.0, "1", "factor on the Nandakumar drift exponents",
                                  0.0, 10.0)
    t_read: float = physical(250e-9, "s", "duration of one read (1/f noise integration)",
                             0.0, None, closed="neither")
    dw_min: float = physical(0.02, "fraction of g_max", "mean conductance step of one pulse",
                             0.0, 1.0, closed="right")
    dw_min_dtod: float = physical(0.3, "relative", "device-to-device spread of the step",
                                  0.0, 1.0)
    dw_min_std: float = physical(1.0, "relative to the step",
                                 "cycle-to-cycle noise (std) of one pulse", 0.0, 100.0)
    w_max: float = physical(1.0, "fraction of g_max", "upper bound of one device", 0.0, None,
                            closed="neither")
    w_max_dtod: float = physical(0.1, "relative", "device-to-device spread of w_max", 0.0, 1.0)
    w_min: float = physical(0.0, "fraction of g_max", "lower bound of one device (reset)",
                            None, 0.0)
    gamma_up: float = physical(1.0, "1", "saturation of SET steps (1: soft bound)", 0.0, 1.0)
    refresh_threshold: float = physical(0.9, "fraction of the device maximum",
                                        "refresh the pair when one device passes this",
                                        0.0, 1.0, closed="right")
    stuck_at_gmin: float = physical(0.002, "fraction", "devices stuck at the lowest state",
                                    0.0, 1.0)
    stuck_at_gmax: float = physical(0.002, "fraction", "devices stuck at the highest state",
                                    0.0, 1.0)

    devices_per_weight: ClassVar[int] = 2
    update_rule: ClassVar[UpdateRule] = UpdateRule.UNIPOLAR_SET
    noise_groups: ClassVar[dict[str, tuple[str, ...]]] = {
        "programming": ("prog_noise_scale", "prog_noise_std"),
        "read": ("read_noise_scale", "read_noise_std"),
        "update": ("dw_min_std",),
        "drift": ("drift_scale",),
    }

    def _check_extra(self) -> None:
        for name in ("drift_nu", "drift_nu_dtod", "up_down", "up_down_dtod", "w_min_dtod",
                     "gamma_down"):
            value = getattr(self, name)
            if value != 0.0:
                raise ParameterError(
                    f"PCM does not use '{name}' (Nandakumar drift model, unipolar SET update); "
                    f"got {value!r}. Use drift_scale for drift, dw_min* for the update."
                )
        check_range("PCM", "w_min", self.w_min, 0.0, 0.0)

    def physics(self) -> DevicePhysics:
        base = super().physics()
        scale = self.g_max / 25.0 * self.prog_noise_scale
        c0, c1, c2 = (coefficient * scale for coefficient in NANDAKUMAR_PROGRAMMING)
        q0, q_exp, q_max = NANDAKUMAR_READ_Q
        mu_a, mu_b, mu_lo, mu_hi = NANDAKUMAR_DRIFT_MU
        sd_a, sd_b, sd_lo, sd_hi = NANDAKUMAR_DRIFT_SIGMA
        k = self.drift_scale
        return base._replace(
            prog_coefficients=(c0 + self.prog_noise_std * self.g_max, c1, c2),
            level_range=(0.0, self.w_max * self.g_max),
            read_1f=(q0 * self.read_noise_scale, q_exp, q_max * self.read_noise_scale,
                     self.t_read),
            drift_mu=(mu_a * k, mu_b * k, mu_lo * k, mu_hi * k),
            drift_sigma=(sd_a * k, sd_b * k, sd_lo * k, sd_hi * k),
            refresh_threshold=self.refresh_threshold,
        )


def nandakumar_programming_sigma(g_target: float, g_max: float = 25.0) -> float:
    """Programming error (uS) of the Nandakumar model at target conductance ``g_target`` (uS)."""
    g = g_target / g_max
    c0, c1, c2 = NANDAKUMAR_PROGRAMMING
    return (c0 + c1 * g + c2 * g * g) * g_max / 25.0


def nandakumar_drift_moments(g_target: float, g_max: float = 25.0) -> tuple[float, float]:
    """(mu, sigma) of the drift exponent at target conductance ``g_target`` (uS)."""
    g = max(g_target / g_max, 1e-6)
    mu_a, mu_b, mu_lo, mu_hi = NANDAKUMAR_DRIFT_MU
    sd_a, sd_b, sd_lo, sd_hi = NANDAKUMAR_DRIFT_SIGMA
    mu = min(max(mu_a * math.log(g) + mu_b, mu_lo), mu_hi)
    sigma = min(max(sd_a * math.log(g) + sd_b, sd_lo), sd_hi)
    return mu, sigma
