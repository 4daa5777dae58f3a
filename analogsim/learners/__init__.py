"""Learners that train a :class:`~analogsim.network.Network` on its chip.

Forward-only learners (Forward-Forward, forward gradients, PEPITA) use only ``tile.forward``,
``tile.update`` and layer-local digital computation; the baselines (digital backprop in
PyTorch, analog backprop on the chip) are the references they are measured against.
"""

from __future__ import annotations

from analogsim.learners._base import EpochRecord, History, Learner

__all__ = ["EpochRecord", "History", "Learner"]
