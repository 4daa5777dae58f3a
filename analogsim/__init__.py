"""analogsim: simulated analog in-memory computing chips and forward-only on-chip learning.

>>> import analogsim as asim
>>> chip = asim.Chip(device=asim.devices.PCM(), seed=0)
>>> tile = chip.tile("fc1", rows=784, cols=256)
"""

from __future__ import annotations

from analogsim._idle_threads import set_idle_thread_defaults

set_idle_thread_defaults()  # before NumPy's OpenBLAS and Numba's OpenMP pool load

from analogsim import datasets, devices, errors, kernels, learners
from analogsim.chip import Chip
from analogsim.network import Network
from analogsim.periphery import Periphery
from analogsim.tile import Tile

__version__ = "0.1.0"

__all__ = [
    "Chip",
    "Network",
    "Periphery",
    "Tile",
    "__version__",
    "datasets",
    "devices",
    "errors",
    "kernels",
    "learners",
]
