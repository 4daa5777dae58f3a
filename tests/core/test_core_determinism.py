"""Same seed, same chip: hidden parameters, run-time streams and whole call sequences."""

from __future__ import annotations

import numpy as np
import pytest

import analogsim as asim
from analogsim._tile_parameters import TileArrays
from analogsim.devices import ECRAM, PCM, Ideal, ReRAM

DEVICES = [PCM(), ReRAM(), ECRAM(), Ideal()]
#: The arrays fixed when a tile is made (the rest, conductance and write times, is state).
HIDDEN = ("drift_xi", "stuck", "step_up", "step_down", "bound_low", "bound_high", "adc_gain",
          "adc_offset", "adc_gain_rows", "adc_offset_rows")


def _assert_same_arrays(first: asim.Tile, second: asim.Tile,
                        names: tuple[str, ...] = TileArrays.field_names()) -> None:
    for name in names:
        left, right = getattr(first.arrays, name), getattr(second.arrays, name)
        assert left.dtype == right.dtype, name
        np.testing.assert_array_equal(left, right, err_msg=name)


def _chip_with_tiles(device, seed: int, names: tuple[str, ...]) -> asim.Chip:
    chip = asim.Chip(device=device, seed=seed)
    for name in names:
        chip.tile(name, 24, 16)
    return chip


def _drive(chip: asim.Chip) -> list[np.ndarray]:
    """A fixed sequence of calls using the chip's own stream; returns everything it saw."""
    data = np.random.default_rng(100)  # the data, not the chip: the same for both chips
    tile = chip.tiles["fc1"]
    seen = []
    tile.program(data.normal(size=(24, 16)))
    for step in range(3):
        x, d = data.normal(size=(8, 24)), data.normal(size=(8, 16))
        seen.append(tile.forward(x))
        tile.update(x, d, lr=0.05, sampler="fast" if step % 2 == 0 else "exact")
        chip.advance(60.0)
        seen.append(tile.read())
    seen.append(chip.tiles["fc2"].forward(data.normal(size=(4, 24))))
    return seen


# --------------------------------------------------------------------------- hidden parameters
@pytest.mark.parametrize("device", DEVICES, ids=lambda d: type(d).__name__)
def test_same_seed_gives_an_identical_chip(device) -> None:
    first = _chip_with_tiles(device, 42, ("fc1", "fc2"))
    second = _chip_with_tiles(device, 42, ("fc1", "fc2"))
    for name in ("fc1", "fc2"):
        _assert_same_arrays(first.tiles[name], second.tiles[name])
    assert (first._runtime.bit_generator.state == second._runtime.bit_generator.state)


@pytest.mark.parametrize("device", [PCM(), ReRAM(), ECRAM()], ids=lambda d: type(d).__name__)
def test_two_seeds_give_different_chips(device) -> None:
    first = _chip_with_tiles(device, 0, ("fc1",)).tiles["fc1"]
    second = _chip_with_tiles(device, 1, ("fc1",)).tiles["fc1"]
    for name in ("drift_xi", "step_up", "bound_high", "adc_gain"):
        left, right = getattr(first.arrays, name), getattr(second.arrays, name)
        assert np.mean(left == right) < 0.01, name


def test_tile_names_are_part_of_the_identity() -> None:
    chip = _chip_with_tiles(ReRAM(), 0, ("fc1", "fc2"))
    assert np.mean(chip.tiles["fc1"].arrays.step_up == chip.tiles["fc2"].arrays.step_up) < 0.01


def test_hidden_parameters_do_not_depend_on_tile_order() -> None:
    device = PCM()
    forward = _chip_with_tiles(device, 5, ("fc1", "fc2", "fc3"))
    backward = asim.Chip(device=device, seed=5)
    backward.tile("other", 7, 3)
    backward.tile("fc3", 24, 16)
    backward.tile("fc2", 24, 16)
    backward.tiles["fc3"].program(np.ones((24, 16)))  # state changes elsewhere do not matter
    backward.advance(100.0)
    backward.tile("fc1", 24, 16)
    for name in ("fc1", "fc2", "fc3"):
        _assert_same_arrays(forward.tiles[name], backward.tiles[name], HIDDEN)


def test_noise_sweeps_keep_the_other_variates() -> None:
    # Scaling one kind of variation leaves every other per-device draw where it was.
    base = _chip_with_tiles(ReRAM(), 3, ("fc1",)).tiles["fc1"]
    sweep = _chip_with_tiles(ReRAM().scaled(programming=2.0, read=0.0), 3, ("fc1",))
    _assert_same_arrays(base, sweep.tiles["fc1"], HIDDEN)
    no_faults = _chip_with_tiles(ReRAM(stuck_at_gmin=0.0, stuck_at_gmax=0.0), 3, ("fc1",))
    _assert_same_arrays(base, no_faults.tiles["fc1"],
                        ("drift_xi", "step_up", "step_down", "bound_low", "bound_high"))


# --------------------------------------------------------------------------- run-time streams
@pytest.mark.parametrize("device", DEVICES, ids=lambda d: type(d).__name__)
def test_same_calls_on_two_same_seed_chips_give_identical_outputs(device) -> None:
    first = _chip_with_tiles(device, 9, ("fc1", "fc2"))
    second = _chip_with_tiles(device, 9, ("fc1", "fc2"))
    for left, right in zip(_drive(first), _drive(second), strict=True):
        np.testing.assert_array_equal(left, right)
    for name in ("fc1", "fc2"):
        _assert_same_arrays(first.tiles[name], second.tiles[name])


def test_different_seeds_give_different_outputs() -> None:
    first = _drive(_chip_with_tiles(PCM(), 9, ("fc1", "fc2")))
    second = _drive(_chip_with_tiles(PCM(), 10, ("fc1", "fc2")))
    assert not np.array_equal(first[0], second[0])


def test_forward_with_the_same_rng_is_identical() -> None:
    chip = _chip_with_tiles(PCM(), 1, ("fc1",))
    tile = chip.tiles["fc1"]
    tile.program(np.random.default_rng(0).normal(size=(24, 16)))
    x = np.random.default_rng(1).normal(size=(5, 24))
    np.testing.assert_array_equal(tile.forward(x, rng=7), tile.forward(x, rng=7))
    np.testing.assert_array_equal(tile.forward(x, rng=np.random.default_rng(3)),
                                  tile.forward(x, rng=np.random.default_rng(3)))
    assert not np.array_equal(tile.forward(x, rng=7), tile.forward(x, rng=8))
    # The chip's stream moves on: two plain calls differ, and an explicit rng leaves it alone.
    state = chip._runtime.bit_generator.state
    tile.forward(x, rng=7)
    assert chip._runtime.bit_generator.state == state
    assert not np.array_equal(tile.forward(x), tile.forward(x))


def test_same_rng_gives_identical_forward_on_two_same_seed_chips() -> None:
    tiles = []
    for _ in range(2):
        tile = _chip_with_tiles(PCM(), 1, ("fc1",)).tiles["fc1"]
        tile.program(np.random.default_rng(0).normal(size=(24, 16)), rng=4)
        tiles.append(tile)
    x = np.random.default_rng(1).normal(size=(5, 24))
    np.testing.assert_array_equal(tiles[0].forward(x, rng=11), tiles[1].forward(x, rng=11))

