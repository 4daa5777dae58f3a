"""Fast-update time right after ``chip.advance`` against training with no clock step.

Usage::

    python benchmarks/update_after_clock_step.py [reram] [pcm]

One thread (set before NumPy and Numba load), 1024x1024 tiles, batch 256, the workload of
``analogsim bench``. Prints the 20th percentile of the CPU time of 8 updates with no clock
step, then of the 1st, 2nd, 3rd and 4th update after each of 8 clock steps of 60 s. The
first update after a step settles the drift of nearly every device it pulses; the later
ones settle only the devices the earlier ones left unpulsed (many, for PCM's one-sided
pulses).
"""

import os
import sys

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                 "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402

import analogsim as asim  # noqa: E402
from analogsim.benchmarking import Workload  # noqa: E402

MODELS = {"reram": asim.devices.ReRAM, "pcm": asim.devices.PCM}


def percentile_ms(seconds: list[float]) -> float:
    return 1e3 * float(np.percentile(seconds, 20))


def timed_update(tile, x, d, lr) -> float:
    start = time.process_time()
    tile.update(x, d, lr)
    return time.process_time() - start


def main(names: list[str]) -> None:
    workload = Workload.make(256, 1024, 1024)
    x, d, lr = workload.x, workload.d, workload.lr
    for name in names:
        chip = asim.Chip(device=MODELS[name](), seed=0)
        tile = chip.tile("t", rows=1024, cols=1024)
        tile.program(workload.weights)
        tile.update(x, d, lr)  # compiles
        steady = [timed_update(tile, x, d, lr) for _ in range(8)]
        after: list[list[float]] = [[] for _ in range(4)]
        for _ in range(8):
            chip.advance(60.0)
            for times in after:
                times.append(timed_update(tile, x, d, lr))
        print(f"{name}: no clock step {percentile_ms(steady):.1f} ms; updates 1-4 after a "
              f"step: " + ", ".join(f"{percentile_ms(times):.1f}" for times in after),
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(MODELS))
