"""The fast update's count means: fp32 (the default) against int8, with each engine.

Usage::

    python benchmarks/count_means_engines.py [rows ...]

One thread (set before NumPy, Numba and PyTorch load), batch 256, 1024 columns and the given
row counts (default 1024 and 4096), the workload of ``analogsim bench``. Prints the 20th
percentile of the CPU time of 15 calls of the reference ``x.T @ d``, of the fp32 means and of
``Int8CountMeans`` with the "torch" engine (where PyTorch is installed) and the "float32"
engine, in three interleaved rounds.
"""

import argparse
import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                 "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402

import analogsim  # noqa: E402, F401  (its idle-thread settings before any BLAS loads)
from analogsim.benchmarking import Workload  # noqa: E402
from analogsim.kernels import count_means_int8  # noqa: E402
from analogsim.kernels.pulsed_update import pulse_count_means  # noqa: E402

PULSES_PER_UNIT = 30.0


def percentile_ms(call, calls: int = 15) -> float:
    call()
    seconds = []
    for _ in range(calls):
        start = time.process_time()
        call()
        seconds.append(time.process_time() - start)
    return 1e3 * float(np.percentile(seconds, 20))


def time_shape(rows: int, engines: list[str]) -> None:
    """Three interleaved rounds of every call on a 256 x rows x 1024 workload."""
    workload = Workload.make(256, rows, 1024)
    x, d = workload.x, workload.d
    out = (np.empty((rows, 1024), np.float32), np.empty((rows, 1024), np.float32))
    calls = {"x.T @ d": lambda: x.T @ d,
             "fp32 means": lambda: pulse_count_means(x, d, PULSES_PER_UNIT, out=out)}
    for engine in engines:
        means = count_means_int8.Int8CountMeans(engine)
        calls[f"int8, {engine}"] = lambda means=means: means(x, d, PULSES_PER_UNIT, out=out)
    for _ in range(3):
        print(f"256 x {rows}x1024: " + ", ".join(
            f"{name} {percentile_ms(call):.2f} ms" for name, call in calls.items()), flush=True)


def main(row_counts: list[int]) -> None:
    engines = ["torch", "float32"] if count_means_int8.torch_available() else ["float32"]
    if "torch" in engines:
        count_means_int8._torch().set_num_threads(1)
    for rows in row_counts:
        time_shape(rows, engines)


def positive_rows(text: str) -> int:
    rows = int(text) if text.isdigit() else 0
    if rows < 1:
        raise argparse.ArgumentTypeError(f"rows must be a positive integer, got {text!r}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", type=positive_rows, default=[1024, 4096],
                        help="tile rows to time (default 1024 4096); 1024 columns, batch 256")
    main(parser.parse_args().rows)
