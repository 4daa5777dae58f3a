"""Device models: frozen, validated dataclasses of physical parameters (uS, seconds).

``Ideal``, ``PCM``, ``ReRAM`` and ``ECRAM`` each define programming error, read noise, drift
and the pulsed-update response, plus device-to-device variation and faults. Use
:func:`preset` to make one by name.
"""

from __future__ import annotations

from analogsim._validation import check_choice
from analogsim.devices._base import DeviceModel
from analogsim.devices.ecram import ECRAM
from analogsim.devices.ideal import Ideal
from analogsim.devices.pcm import PCM
from analogsim.devices.reram import ReRAM

PRESETS: dict[str, type[DeviceModel]] = {
    "ideal": Ideal,
    "pcm": PCM,
    "reram": ReRAM,
    "ecram": ECRAM,
}


def preset(name: str, **overrides: object) -> DeviceModel:
    """A device model by (case-insensitive) name, e.g. ``preset("ReRAM", dw_min=0.001)``."""
    key = name.lower() if isinstance(name, str) else name
    check_choice("preset", "name", key, PRESETS)
    return PRESETS[key](**overrides)


def from_dict(values: dict[str, object]) -> DeviceModel:
    """Rebuild a device model from :meth:`DeviceModel.to_dict` output."""
    fields = dict(values)
    kind = str(fields.pop("kind"))
    return preset(kind, **fields)


__all__ = ["ECRAM", "PCM", "PRESETS", "DeviceModel", "Ideal", "ReRAM", "from_dict", "preset"]
