"""Shapes and warm-up of the pytest-benchmark suite (see README.md in this folder)."""

from __future__ import annotations

import pytest

from analogsim import benchmarking as bm


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bench-quick", action="store_true",
                     help="analogsim benchmarks: tiny shapes, to check that the suite runs")
    parser.addoption("--bench-devices", default="reram",
                     help=f"analogsim benchmarks: comma-separated device models, of "
                          f"{','.join(bm.DEVICES)} (default reram)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bench_shape" in metafunc.fixturenames:
        quick = metafunc.config.getoption("--bench-quick")
        batch = bm.QUICK_BATCH if quick else bm.DEFAULT_BATCH
        shapes = bm.QUICK_SHAPES if quick else bm.DEFAULT_SHAPES
        metafunc.parametrize("bench_shape", [(batch, rows, cols) for rows, cols in shapes],
                             ids=[f"{batch}x{rows}x{cols}" for rows, cols in shapes],
                             scope="module")
    if "device" in metafunc.fixturenames:
        devices = metafunc.config.getoption("--bench-devices").split(",")
        unknown = sorted(set(devices) - set(bm.DEVICES))
        if unknown:
            raise pytest.UsageError(f"--bench-devices must be a comma-separated list of "
                                    f"{', '.join(bm.DEVICES)}; got {unknown}")
        metafunc.parametrize("device", devices)


@pytest.fixture(scope="session")
def bench_rounds(request: pytest.FixtureRequest) -> int:
    """Timed rounds per benchmark (the exact sampler gets one)."""
    return bm.QUICK_REPEATS if request.config.getoption("--bench-quick") else bm.DEFAULT_REPEATS


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernels(request: pytest.FixtureRequest) -> None:
    """Compile (or load) every Numba kernel on a small tile before anything is timed."""
    bm.warm_up(bm.available_operations(), request.config.getoption("--bench-devices").split(","))
