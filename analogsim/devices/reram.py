"""Resistive RAM: bidirectional soft-bounds updates with device-to-device asymmetry."""

from __future__ import annotations

from dataclasses import dataclass

from analogsim.devices._base import DeviceModel, physical


@dataclass(frozen=True, kw_only=True)
class ReRAM(DeviceModel):
    """A filamentary ReRAM element (one bidirectional device per weight, referenced).

    Update: soft bounds (``gamma_up = gamma_down = 1``): an up pulse moves the conductance by
    ``dw_up (1 - w / w_max)``, a down pulse by ``dw_down (1 - w / w_min)``, so steps shrink
    towards each bound and up and down steps differ everywhere but at the symmetry point; each
    device draws its own step size, imbalance and bounds. The update values are the soft-bounds
    fit to the HfO2 ReRAM of Gong et al., Nat. Commun. 9, 2102 (2018), as used by aihwkit's
    ``ReRamSBPresetDevice``: ``dw_min = 0.002``, bounds 1.25 / -0.75 with 24 % / 40 % spread,
    ``dw_min_dtod = 0.3``, cycle-to-cycle noise 3.75 times the step (aihwkit adds it in
    dw_min units; here it is multiplicative, DESIGN.md section 3).

    Programming error (3 % of g_max after write-verify), read noise (1 % of g_max) and
    conductance relaxation (``drift_nu = 0.01``) are assumed values of the order reported for
    HfOx arrays (Wan et al., Nature 608, 504 (2022)); they are not a fit. Stuck devices:
    0.2 % at each bound, an assumed yield.
    """

    g_max: float = physical(40.0, "uS", "maximum conductance of one device", 0.0, None,
                            closed="neither")
    prog_noise_std: float = physical(0.03, "fraction of g_max",
                                     "programming error (std) of one write", 0.0, 1.0)
    read_noise_std: float = physical(0.01, "fraction of g_max",
                                     "read noise (std) of one device at every read", 0.0, 1.0)
    drift_nu: float = physical(0.01, "1", "mean drift exponent nu in G(t) ~ (t/t0)^-nu",
                               0.0, 1.0)
    drift_nu_dtod: float = physical(0.005, "1", "device-to-device spread (std) of nu",
                                    0.0, 1.0)
    dw_min: float = physical(0.002, "fraction of g_max", "mean conductance step of one pulse",
                             0.0, 1.0, closed="right")
    dw_min_dtod: float = physical(0.3, "relative", "device-to-device spread of the step",
                                  0.0, 1.0)
    dw_min_std: float = physical(3.75, "relative to the step",
                                 "cycle-to-cycle noise (std) of one pulse", 0.0, 100.0)
    up_down_dtod: float = physical(0.01, "relative", "device-to-device spread of up_down",
                                   0.0, 1.0)
    w_max: float = physical(1.25, "fraction of g_max", "upper bound of the update", 0.0, None,
                            closed="neither")
    w_max_dtod: float = physical(0.24, "relative", "device-to-device spread of w_max",
                                 0.0, 1.0)
    w_min: float = physical(-0.75, "fraction of g_max", "lower bound of the update", None, 0.0)
    w_min_dtod: float = physical(0.4, "relative", "device-to-device spread of w_min",
                                 0.0, 1.0)
    gamma_up: float = physical(1.0, "1", "state dependence of up steps (1: soft bounds)",
                               0.0, 1.0)
    gamma_down: float = physical(1.0, "1", "state dependence of down steps (1: soft bounds)",
                                 0.0, 1.0)
    stuck_at_gmin: float = physical(0.002, "fraction", "devices stuck at the lowest state",
                                    0.0, 1.0)
    stuck_at_gmax: float = physical(0.002, "fraction", "devices stuck at the highest state",
                                    0.0, 1.0)
