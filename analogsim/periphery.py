"""The periphery of a tile: DAC on the inputs, ADC on the outputs, noise and scaling.

Signal path of ``Tile.forward`` (units in brackets):

1. noise management: each input vector is divided by its abs-max (if ``noise_management``);
2. DAC: the scaled input is clipped to ``[-dac_range, dac_range]`` and rounded to
   ``2**(dac_bits - 1) - 1`` levels per sign [normalised input units];
3. the array computes ``y = x W`` with W in units of g_max, plus per-device read noise;
4. additive output noise ``out_noise`` [output units: g_max times one full-scale input];
5. per-column ADC gain ``1 + adc_gain_dtod xi`` and offset ``adc_offset_dtod xi`` (drawn per
   chip), then the ADC clips to ``[-adc_range, adc_range]`` and rounds to ``2**(adc_bits - 1)
   - 1`` levels per sign;
6. the input scale and the tile's digital ``weight_scale`` are multiplied back in.

Defaults follow aihwkit's forward defaults (7-bit DAC, 9-bit ADC, output bound 12, output
noise 0.06); ADC gain and offset spreads of 2 % are assumed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from analogsim._validation import check_choice, check_range

SAMPLERS = ("fast", "exact")


@dataclass(frozen=True, kw_only=True)
class Periphery:
    """Converters, noise and update-pulse settings of a tile's periphery.

    Attributes
    ----------
    dac_bits : int or None
        Input DAC resolution in bits, in [2, 32] (sign plus magnitude); None: ideal. Default 7.
    dac_range : float
        Input DAC full scale, normalised input units (> 0). Default 1.0.
    adc_bits : int or None
        Output ADC resolution in bits, in [2, 32] (sign plus magnitude); None: ideal. Default 9.
    adc_range : float
        Output ADC full scale, output units (> 0). Default 12.0.
    adc_gain_dtod : float
        Per-column ADC gain spread (std, relative), drawn per chip, in [0, 1]. Default 0.02.
    adc_offset_dtod : float
        Per-column ADC offset spread (std, output units), drawn per chip. Default 0.02.
    out_noise : float
        Additive output noise (std, output units) at every read, >= 0. Default 0.06.
    read_noise : bool
        Whether ``forward`` includes per-device read noise (one extra matmul). Default True.
    noise_management : bool
        Scale each input vector by its abs-max before the DAC, undo after the ADC. Default True.
    drift_compensation : bool
        Scale outputs by a reference measured after programming (global drift compensation).
        Default False.
    pulse_length : int
        Stochastic pulse-train length BL of the update, in [1, 64]. Default 31.
    update_management : bool
        Balance the x and d pulse probabilities per sample (Gokmen & Vlasov 2017). Default True.
    sampler : str
        Default update sampler: "fast" (counts drawn from their exact means) or "exact"
        (stochastic pulse trains). Default "fast".
    """

    dac_bits: int | None = 7
    dac_range: float = 1.0
    adc_bits: int | None = 9
    adc_range: float = 12.0
    adc_gain_dtod: float = 0.02
    adc_offset_dtod: float = 0.02
    out_noise: float = 0.06
    read_noise: bool = True
    noise_management: bool = True
    drift_compensation: bool = False
    pulse_length: int = 31
    update_management: bool = True
    sampler: str = "fast"

    def __post_init__(self) -> None:
        owner = "Periphery"
        for name in ("dac_bits", "adc_bits"):
            value = getattr(self, name)
            if value is not None:
                check_range(owner, name, value, 2, 32, integer=True)
        check_range(owner, "dac_range", self.dac_range, 0.0, None, closed="neither")
        check_range(owner, "adc_range", self.adc_range, 0.0, None, closed="neither")
        check_range(owner, "adc_gain_dtod", self.adc_gain_dtod, 0.0, 1.0)
        check_range(owner, "adc_offset_dtod", self.adc_offset_dtod, 0.0, None)
        check_range(owner, "out_noise", self.out_noise, 0.0, None)
        check_range(owner, "pulse_length", self.pulse_length, 1, 64, integer=True)
        for name in ("read_noise", "noise_management", "drift_compensation",
                     "update_management"):
            check_choice(owner, name, getattr(self, name), (True, False))
        check_choice(owner, "sampler", self.sampler, SAMPLERS)

    @classmethod
    def ideal(cls, **overrides: Any) -> Periphery:
        """No quantisation, no output noise, no ADC variation (the floating-point reference)."""
        values: dict[str, Any] = dict(dac_bits=None, adc_bits=None, adc_gain_dtod=0.0,
                                      adc_offset_dtod=0.0, out_noise=0.0)
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def dac_step(self) -> float:
        """Input quantisation step (0 for an ideal DAC)."""
        return 0.0 if self.dac_bits is None else self.dac_range / (2 ** (self.dac_bits - 1) - 1)

    @property
    def adc_step(self) -> float:
        """Output quantisation step (0 for an ideal ADC)."""
        return 0.0 if self.adc_bits is None else self.adc_range / (2 ** (self.adc_bits - 1) - 1)
