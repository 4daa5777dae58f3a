"""Electrochemical RAM: near-symmetric, fine, almost linear steps."""

from __future__ import annotations

from dataclasses import dataclass

from analogsim.devices._base import DeviceModel, physical


@dataclass(frozen=True, kw_only=True)
class ECRAM(DeviceModel):
    """A metal-oxide ECRAM element (one bidirectional device per weight).

    Update: linear steps ``dw_up (1 - gamma_up w / w_max)`` and ``dw_down (1 - gamma_down w /
    w_min)`` with about 7000 steps across the range, little up/down imbalance and small
    device-to-device spread. Values are the fit to the metal-oxide ECRAM of Kim et al., IEDM
    2019, as used by aihwkit's ``EcRamMOPresetDevice``: ``dw_min = 2.82e-4``, bounds
    1.1714 / -0.8286, ``gamma_up = 0.4152``, ``gamma_down = 0.7342``, 10 % step spread, 5 %
    bound spread, cycle-to-cycle noise 2 times the step.

    Programming error (1 % of g_max), read noise (0.5 % of g_max) and retention drift
    (``drift_nu = 0.005``) are assumed small values, not a fit.
    """

    g_max: float = physical(10.0, "uS", "maximum conductance of one device", 0.0, None,
                            closed="neither")
    prog_noise_std: float = physical(0.01, "fraction of g_max",
                                     "programming error (std) of one write", 0.0, 1.0)
    read_noise_std: float = physical(0.005, "fraction of g_max",
                                     "read noise (std) of one device at every read", 0.0, 1.0)
    drift_nu: float = physical(0.005, "1", "mean drift exponent nu in G(t) ~ (t/t0)^-nu",
                               0.0, 1.0)
    drift_nu_dtod: float = physical(0.002, "1", "device-to-device spread (std) of nu",
                                    0.0, 1.0)
    dw_min: float = physical(2.8214e-4, "fraction of g_max",
                             "mean conductance step of one pulse", 0.0, 1.0, closed="right")
    dw_min_dtod: float = physical(0.1, "relative", "device-to-device spread of the step",
                                  0.0, 1.0)
    dw_min_std: float = physical(2.0, "relative to the step",
                                 "cycle-to-cycle noise (std) of one pulse", 0.0, 100.0)
    up_down_dtod: float = physical(0.01, "relative", "device-to-device spread of up_down",
                                   0.0, 1.0)
    w_max: float = physical(1.1714, "fraction of g_max", "upper bound of the update", 0.0,
                            None, closed="neither")
    w_max_dtod: float = physical(0.05, "relative", "device-to-device spread of w_max",
                                 0.0, 1.0)
    w_min: float = physical(-0.8286, "fraction of g_max", "lower bound of the update", None,
                            0.0)
    w_min_dtod: float = physical(0.05, "relative", "device-to-device spread of w_min",
                                 0.0, 1.0)
    gamma_up: float = physical(0.4152, "1", "state dependence of up steps (1: soft bounds)",
                               0.0, 1.0)
    gamma_down: float = physical(0.7342, "1",
                                 "state dependence of down steps (1: soft bounds)", 0.0, 1.0)
