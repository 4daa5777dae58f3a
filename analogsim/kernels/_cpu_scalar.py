"""The scalar physics of :mod:`analogsim.kernels.scalar` compiled for the CPU with Numba."""

from __future__ import annotations

import numba

from analogsim.kernels.scalar import build

S = build(numba.njit)
