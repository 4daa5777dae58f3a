"""The scalar physics and per-weight rules compiled for the CPU with Numba.

- ``S``: the scalar physics of :mod:`analogsim.kernels.scalar`, ordinary Numba functions
  (LLVM inlines what pays), with the drift rules' ``log`` and ``exp`` in their scalar form
  (``math.frexp``/``ldexp`` instead of selects: the same numbers, a third of the time).
- ``RULES``: the per-weight pulse rules of :mod:`analogsim.kernels.device_rules`, compiled
  ``inline="always"`` so that a pulse costs no call (a call with eight 3-D arrays as
  arguments costs about 70 ns), except the rare refresh of a PCM pair.
- ``SI``: the scalar physics again, compiled ``inline="always"``, for the step rule of the
  fast sampler's vectorised loops.
- ``RNG``: the counter-based generator of :mod:`analogsim.kernels.counter_rng` compiled
  ``inline="always"``, for loops that must vectorise (the MVM epilogue, programming, the
  fast sampler's row draws): a normal that is called instead of inlined does not vectorise
  (32 ns a normal instead of 3.5 ns).

Inlining the scalar physics into the rules as well was measured slower to run, and made the
fast update take 100 s instead of 7 s to compile.

Inlined code takes the error model of the kernel it is inlined into; the kernels that draw
normals in a loop use ``error_model="numpy"``, as the division of ``log_unit`` would
otherwise block vectorisation.
"""

from __future__ import annotations

import numba

from analogsim.kernels.counter_rng import build_scalar_functions
from analogsim.kernels.device_rules import build_device_rules
from analogsim.kernels.scalar import build

_inline = numba.njit(inline="always", error_model="numpy")
S = build(numba.njit, scalar_math=True)
RULES = build_device_rules(_inline, S, rare_jit=numba.njit)
RNG = build_scalar_functions(_inline)
#: The scalar physics compiled ``inline="always"``, for the few rules the fast sampler applies
#: in vectorised loops (``pulse_block``, ``block_ratio``); Numba compiles only those used.
SI = build(_inline)
