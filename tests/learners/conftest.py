"""Shared fixtures of the learner tests: the digits data and a forward-only guard for tiles."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numba
import pytest
from threadpoolctl import threadpool_limits

import analogsim as asim
from analogsim.errors import ForwardOnlyViolation

#: Tile operations a forward-only learner must never call.
FORBIDDEN_TILE_OPERATIONS = ("read", "program", "backward")


@pytest.fixture(scope="session")
def digits() -> asim.datasets.Dataset:
    """scikit-learn's digits (64 features, 10 classes, 1437 train / 360 test samples)."""
    return asim.datasets.load("digits")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Run BLAS and Numba on one thread while these tests run.

    The learners call many small matmuls and kernels (batches of 64 rows); on a shared 2-core
    machine, thread pools that spin-wait for busy cores make each call up to a hundred times
    slower. One thread is also what a sweep of independent trials uses per process.
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    numba.set_num_threads(previous)


def _refuse(tile_name: str, operation: str) -> Callable[..., None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ForwardOnlyViolation(f"tile {tile_name!r}: {operation}() was called, but a "
                                   f"forward-only learner may only use forward() and update().")

    return refuse


def forbid_weight_access(net: asim.Network) -> asim.Network:
    """Make every tile of ``net`` raise ForwardOnlyViolation on read/program/backward.

    The instance methods are replaced, so the network's other tiles, chips and the class are
    untouched; ``forward`` and ``update`` keep working.
    """
    for tile in net.tiles:
        for operation in FORBIDDEN_TILE_OPERATIONS:
            setattr(tile, operation, _refuse(tile.name, operation))
    return net


@pytest.fixture
def forward_only_guard() -> Callable[[asim.Network], asim.Network]:
    """The :func:`forbid_weight_access` helper, as a fixture."""
    return forbid_weight_access
