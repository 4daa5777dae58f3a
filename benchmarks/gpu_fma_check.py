"""GPU against CPU, function by function: the scalar pieces of the fast update, bit for bit.

Usage (on a machine with an NVIDIA GPU)::

    python benchmarks/gpu_fma_check.py

Each line counts the elements where the CUDA build of a scalar function (normal draws,
Poisson counts, pulse sums, pulse blocks) differs from its CPU build on the same inputs,
with the largest relative difference. On an H100 the float polynomials and the sums
``a + b * c`` differ in their last bit where NVVM fused a multiply-add (the CPU build does
not). Under ``NUMBA_ENABLE_CUDASIM=1`` it runs on the simulator with 256 elements, where
everything agrees (no CuPy needed there).
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import cuda

from analogsim import devices
from analogsim.kernels.cuda._runtime import scalar_physics
from analogsim.kernels.scalar import build

try:
    import cupy as xp
except ImportError:  # the simulator runs on host arrays
    xp = np
    xp.asnumpy = np.asarray

N = 1 << (8 if os.environ.get("NUMBA_ENABLE_CUDASIM") else 18)
KEY = np.uint64(0xD1B5_4A32_D192_ED03)
F1, F0 = np.float32(1.0), np.float32(0.0)
GPU = scalar_physics()
CPU = build(numba.njit(inline="always", error_model="numpy"))
# Kernels find functions as globals, not as attributes of a namespace.
g_normal32, c_normal32 = GPU.normal_pair32, CPU.normal_pair32
g_normal, c_normal = GPU.normal, CPU.normal
g_hash, c_hash = GPU.hash64, CPU.hash64
g_poisson, c_poisson = GPU.poisson_count, CPU.poisson_count
g_sums, c_sums = GPU.pulse_sums, CPU.pulse_sums
g_up, c_up = GPU.steps_up, CPU.steps_up
g_down, c_down = GPU.steps_down, CPU.steps_down


def report(name: str, gpu: np.ndarray, cpu: np.ndarray) -> None:
    gpu, cpu = np.asarray(gpu).ravel(), np.asarray(cpu).ravel()
    bad = np.flatnonzero(gpu != cpu)
    line = f"{name:12s} {bad.size:7d} of {gpu.size} differ"
    if bad.size:
        gap = np.abs(gpu[bad].astype(np.float64) - cpu[bad])
        relative = np.max(gap / np.maximum(np.abs(cpu[bad]), 1e-30))
        line += f"; largest relative difference {relative:.3g}"
    print(line, flush=True)


def run(kernel, loop, outputs, *inputs):
    """The CUDA ``kernel`` and the CPU ``loop`` on the same inputs: (gpu, cpu) outputs."""
    on_gpu = [xp.zeros(o.shape, o.dtype) for o in outputs]
    kernel[(N + 255) // 256, 256](*(xp.asarray(a) if isinstance(a, np.ndarray) else a
                                    for a in inputs), *on_gpu)
    loop(*inputs, *outputs)
    return [xp.asnumpy(a) for a in on_gpu], outputs


@cuda.jit
def normals_gpu(key, cos32, sin32, normal64):
    e = cuda.grid(1)
    if e < cos32.size:
        cos32[e], sin32[e] = g_normal32(key, np.uint64(e))
        normal64[e] = g_normal(key, np.uint64(e))


@numba.njit
def normals_cpu(key, cos32, sin32, normal64):
    for e in range(cos32.size):
        cos32[e], sin32[e] = c_normal32(key, np.uint64(e))
        normal64[e] = c_normal(key, np.uint64(e))


@cuda.jit
def counts_gpu(key, means, counts):
    e = cuda.grid(1)
    if e < counts.size:
        counts[e] = g_poisson(means[e], g_hash(key, np.uint64(e)), 0.0)


@numba.njit
def counts_cpu(key, means, counts):
    for e in range(counts.size):
        counts[e] = c_poisson(means[e], c_hash(key, np.uint64(e)), 0.0)


@cuda.jit
def blocks_gpu(g, n, step, bound, z, p, decay, total, up, down):
    e = cuda.grid(1)
    if e < g.size:
        decay[e], total[e] = g_sums(F1 - step[e], n[e])
        up[e] = g_up(g[e], n[e], step[e], bound[e], 1.0, -bound[e], z[e], p)
        down[e] = g_down(g[e], n[e], step[e], -bound[e], 1.0, bound[e], z[e], p)


@numba.njit
def blocks_cpu(g, n, step, bound, z, p, decay, total, up, down):
    for e in range(g.size):
        decay[e], total[e] = c_sums(F1 - step[e], n[e])
        up[e] = c_up(g[e], n[e], step[e], bound[e], 1.0, -bound[e], z[e], p)
        down[e] = c_down(g[e], n[e], step[e], -bound[e], 1.0, bound[e], z[e], p)


def main() -> None:
    rng = np.random.default_rng(0)
    f32 = [np.zeros(N, np.float32) for _ in range(4)]
    gpu, cpu = run(normals_gpu, normals_cpu, [f32[0], f32[1], np.zeros(N)], KEY)
    for name, k in (("normal32 cos", 0), ("normal32 sin", 1), ("normal64", 2)):
        report(name, gpu[k], cpu[k])
    means = rng.exponential(4.0, N)
    means[::7] = 0.0
    gpu, cpu = run(counts_gpu, counts_cpu, [np.zeros(N, np.int64)], KEY, means)
    report("poisson", gpu[0], cpu[0])
    g = rng.uniform(-1, 1, N).astype(np.float32)
    n = rng.integers(0, 80, N)
    step = rng.uniform(1e-3, 0.05, N).astype(np.float32)
    bound = rng.uniform(0.5, 1.5, N).astype(np.float32)
    z = rng.standard_normal(N).astype(np.float32)
    p = devices.ReRAM().physics().pack()
    gpu, cpu = run(blocks_gpu, blocks_cpu, f32, g, n, step, bound, z, p)
    for k, name in enumerate(("sums decay", "sums total", "steps_up", "steps_down")):
        report(name, gpu[k], cpu[k])


if __name__ == "__main__":
    main()
