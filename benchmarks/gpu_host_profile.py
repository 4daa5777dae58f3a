"""Where a batch-256 forward and fast update of a 1024x1024 GPU tile spend their host time.

Usage (on a machine with an NVIDIA GPU)::

    python benchmarks/gpu_host_profile.py

Prints the wall time per call, then ``cProfile`` tables (by own time and by cumulative time)
of 50 calls of each.
"""
import cProfile
import pstats
import time

import cupy as cp

import analogsim as asim
from analogsim.benchmarking import Workload

w = Workload.make(256, 1024, 1024)
x, d, weights = (cp.asarray(a) for a in (w.x, w.d, w.weights))
chip = asim.Chip(device=asim.devices.ReRAM(), seed=0, backend="cuda")
tile = chip.tile("bench", rows=1024, cols=1024)
tile.program(weights)
for _ in range(5):
    tile.forward(x)
    tile.update(x, d, w.lr)
cp.cuda.Device().synchronize()
calls = (("forward", lambda: tile.forward(x)), ("update", lambda: tile.update(x, d, w.lr)))
for name, fn in calls:
    t = time.perf_counter()
    for _ in range(50):
        fn()
    cp.cuda.Device().synchronize()
    print(name, "wall per call (ms):", (time.perf_counter() - t) / 50 * 1e3, flush=True)
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(50):
        fn()
    cp.cuda.Device().synchronize()
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(22)
    pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
