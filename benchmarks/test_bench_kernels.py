"""The kernels against NumPy's float32 matmul of the same shape, with pytest-benchmark.

Each group holds one kind of operation at one shape together with its reference, so the
table shows the ratio; ``extra_info`` of every operation also carries ``ratio``: its median
over the median of reference calls timed between its rounds (interleaved, same run).
Run: ``python -m pytest benchmarks --benchmark-only`` (see README.md).
"""

from __future__ import annotations

import statistics

import pytest

from analogsim import benchmarking as bm

REFERENCES = {"forward": "x @ W", "update": "x.T @ d"}


def _group(kind: str, shape: tuple[int, int, int]) -> str:
    batch, rows, cols = shape
    return f"{kind} ({REFERENCES[kind]}) batch {batch}, {rows}x{cols}"


@pytest.fixture(scope="module")
def workload(bench_shape: tuple[int, int, int]) -> bm.Workload:
    return bm.Workload.make(*bench_shape)


@pytest.mark.parametrize("kind", ["forward", "update"])
def test_reference_matmul(benchmark, bench_shape, workload, bench_rounds, kind):
    """NumPy's float32 matmul: ``x @ W`` for the forward, ``x.T @ d`` for the update."""
    x, d, weights = workload.x, workload.d, workload.weights
    reference = (lambda: x @ weights) if kind == "forward" else (lambda: x.T @ d)
    benchmark.group = _group(kind, bench_shape)
    benchmark.extra_info.update(operation=f"reference {REFERENCES[kind]}", ratio=1.0)
    benchmark.pedantic(reference, rounds=bench_rounds, warmup_rounds=1)


@pytest.mark.parametrize("operation", list(bm.OPERATIONS))
def test_operation(benchmark, bench_shape, workload, bench_rounds, operation, device):
    """One row of ``analogsim bench``; the reference is timed before every round."""
    if operation not in bm.available_operations():
        pytest.skip(f"{operation} needs {bm.NEEDS[operation]}, which is not installed")
    spec = bm.OPERATIONS[operation]
    tile = bm.make_tile(operation, workload, device)
    function, reference = bm.callables(operation, tile, workload)
    reference_ms: list[float] = []
    exact = operation == "update-exact"
    benchmark.group = _group(operation.split("-")[0], bench_shape)
    benchmark.pedantic(function, setup=lambda: reference_ms.append(bm.time_ms(reference)),
                       rounds=1 if exact else bench_rounds, warmup_rounds=0 if exact else 1)
    benchmark.extra_info.update(operation=spec.label, device=device, target=spec.target,
                                reference_ms=statistics.median(reference_ms))
    if operation.startswith("update"):
        benchmark.extra_info["mean_pulses"] = bm.mean_pulses(tile, workload)
    if benchmark.stats is not None:  # None under --benchmark-disable
        ratio = benchmark.stats.stats.median * 1e3 / statistics.median(reference_ms)
        benchmark.extra_info.update(ratio=ratio, passed=None if spec.target is None
                                    else ratio <= spec.target)
