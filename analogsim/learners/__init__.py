"""Learners that train a :class:`~analogsim.network.Network` on its chip.

Forward-only learners (Forward-Forward, forward gradients, PEPITA) use only ``tile.forward``,
``tile.update`` and layer-local digital computation; the baselines (digital backprop in
PyTorch, analog backprop on the chip) are the references they are measured against.
"""

from __future__ import annotations

from analogsim.learners._base import EpochRecord, History, Learner
from analogsim.learners.backprop import AnalogBackprop
from analogsim.learners.digital_backprop import DigitalBackprop
from analogsim.learners.forward_forward import ForwardForward
from analogsim.learners.forward_gradient import ForwardGradient
from analogsim.learners.pepita import PEPITA

__all__ = [
    "PEPITA",
    "AnalogBackprop",
    "DigitalBackprop",
    "EpochRecord",
    "ForwardForward",
    "ForwardGradient",
    "History",
    "Learner",
]
