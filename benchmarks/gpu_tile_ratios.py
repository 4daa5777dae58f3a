"""The issue's ratio table on a GPU chip: batch 256, 1024x1024 and 4096x1024 tiles.

Usage (on a machine with an NVIDIA GPU, CuPy and numba-cuda)::

    python benchmarks/gpu_tile_ratios.py

Each operation of :data:`analogsim.benchmarking.OPERATIONS` runs on a tile of a
``Chip(backend="cuda")`` with the CPU table's workload (:class:`~analogsim.benchmarking.
Workload`, CuPy arrays in). Each row is the median of its rounds over the median of the
cuBLAS fp32 reference (``x @ W`` or ``x.T @ d``) timed just before it, round by round, each
bracketed by CUDA events on CuPy's stream. The targets are those of the CPU table. At this
batch the GPU's work takes tens of microseconds, so the ratios measure the host-side cost
of a call (Python, argument conversion, kernel launches), not the kernels.
"""

from __future__ import annotations

import statistics

import cupy as cp

import analogsim as asim
from analogsim.benchmarking import OPERATIONS, Workload

SHAPES = ((1024, 1024), (4096, 1024))
BATCH = 256
MODELS = {"reram": asim.devices.ReRAM, "pcm": asim.devices.PCM}


def timed_ms(function, stream) -> float:
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    start.record(stream)
    function()
    stop.record(stream)
    stop.synchronize()
    return cp.cuda.get_elapsed_time(start, stop)


def measure(device: str, rows: int, cols: int, operation: str) -> tuple[float, float]:
    """(operation, reference) medians in ms."""
    workload = Workload.make(BATCH, rows, cols)
    x, d, weights = (cp.asarray(a) for a in (workload.x, workload.d, workload.weights))
    periphery = asim.Periphery(read_noise=operation != "forward-no-noise")
    chip = asim.Chip(device=MODELS[device](), seed=0, periphery=periphery, backend="cuda")
    tile = chip.tile("bench", rows=rows, cols=cols)
    tile.program(weights)
    if operation.startswith("forward"):
        function, reference = (lambda: tile.forward(x)), (lambda: x @ weights)
    else:
        sampler = operation.removeprefix("update-")
        function = lambda: tile.update(x, d, workload.lr, sampler=sampler)  # noqa: E731
        reference = lambda: x.T @ d  # noqa: E731
    stream = cp.cuda.get_current_stream()
    for _ in range(3):
        function()
        reference()
    rounds = 10 if operation == "update-exact" else 100
    times, references = [], []
    for _ in range(rounds):
        references.append(timed_ms(reference, stream))
        times.append(timed_ms(function, stream))
    return statistics.median(times), statistics.median(references)


def main() -> None:
    lines = ["| device | tile | operation | time | cuBLAS fp32 reference | ratio | "
             "target (CPU) |", "|---|---|---|---|---|---|---|"]
    for device in MODELS:
        for rows, cols in SHAPES:
            for operation in OPERATIONS:
                if operation == "update-fast-int8":  # a CPU option (PyTorch's int8 matmul)
                    continue
                time_ms, reference_ms = measure(device, rows, cols, operation)
                target = OPERATIONS[operation].target
                lines.append(f"| {device} | {rows}x{cols} | {operation} | {time_ms:.3f} ms | "
                             f"{reference_ms:.4f} ms | {time_ms / reference_ms:.1f}x | "
                             f"{target if target else '-'} |")
                print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
