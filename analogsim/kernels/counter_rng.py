"""Counter-based random numbers shared by the NumPy references and the compiled kernels.

A kernel receives a 64-bit ``key`` (drawn from the chip's ``numpy.random.Generator`` once per
call) and derives the random number for element ``counter`` as a pure function of
``(key, counter)``: SplitMix64's output function applied to ``key + (counter + 1) * gamma``.
This makes parallel kernels deterministic regardless of thread scheduling, lets a NumPy
reference reproduce a compiled kernel's numbers exactly, and is what a GPU kernel does too.

The scalar functions are plain Python over ``numpy.uint64`` so that Numba can compile them for
the CPU (``numba.njit``) and for CUDA (``numba.cuda.jit(device=True)``) from one source.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_2 = np.uint64(0x94D049BB133111EB)
SHIFT_30 = np.uint64(30)
SHIFT_27 = np.uint64(27)
SHIFT_31 = np.uint64(31)
SHIFT_32 = np.uint64(32)
SHIFT_11 = np.uint64(11)
ONE = np.uint64(1)
LOW_32 = np.uint64(0xFFFFFFFF)
INV_2_32 = 1.0 / 4294967296.0
INV_2_53 = 1.0 / 9007199254740992.0
TWO_PI = 2.0 * math.pi


def build_scalar_functions(jit):
    """Compile the scalar generators with ``jit`` (``numba.njit``, ``numba.cuda.jit(device=True)``
    or the identity for plain Python) and return them as a namespace.

    Returns
    -------
    types.SimpleNamespace with ``hash64(key, counter)``, ``uniform(key, counter)`` (float64 in
    (0, 1), 53 random bits) and ``normal(key, counter)`` (Box-Muller, cosine branch, tails cut at
    6.66 sigma). ``key`` and ``counter`` are uint64.
    """

    @jit
    def hash64(key, counter):
        z = key + (counter + ONE) * GOLDEN_GAMMA
        z = (z ^ (z >> SHIFT_30)) * MIX_1
        z = (z ^ (z >> SHIFT_27)) * MIX_2
        return z ^ (z >> SHIFT_31)

    @jit
    def uniform(key, counter):
        bits = hash64(key, counter) >> SHIFT_11
        return (float(bits) + 0.5) * INV_2_53

    @jit
    def normal(key, counter):
        bits = hash64(key, counter)
        u1 = (float(bits >> SHIFT_32) + 0.5) * INV_2_32
        u2 = (float(bits & LOW_32) + 0.5) * INV_2_32
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(TWO_PI * u2)

    return SimpleNamespace(hash64=hash64, uniform=uniform, normal=normal)


def hash64_array(key: int, counters: np.ndarray) -> np.ndarray:
    """Vectorised :func:`hash64` over an array of counters (NumPy reference)."""
    k = np.uint64(key)
    z = k + (counters.astype(np.uint64) + ONE) * GOLDEN_GAMMA
    z = (z ^ (z >> SHIFT_30)) * MIX_1
    z = (z ^ (z >> SHIFT_27)) * MIX_2
    return z ^ (z >> SHIFT_31)


def uniform_array(key: int, counters: np.ndarray) -> np.ndarray:
    """Vectorised :func:`uniform`."""
    bits = hash64_array(key, counters) >> SHIFT_11
    return (bits.astype(np.float64) + 0.5) * INV_2_53


def normal_array(key: int, counters: np.ndarray) -> np.ndarray:
    """Vectorised :func:`normal`."""
    bits = hash64_array(key, counters)
    u1 = ((bits >> SHIFT_32).astype(np.float64) + 0.5) * INV_2_32
    u2 = ((bits & LOW_32).astype(np.float64) + 0.5) * INV_2_32
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(TWO_PI * u2)


def draw_key(rng: np.random.Generator) -> int:
    """A fresh 64-bit stream key from a NumPy generator (one per kernel call)."""
    return int(rng.integers(0, 2**64, dtype=np.uint64))
