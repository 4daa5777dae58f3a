"""Bad input fails early, naming the parameter, what is allowed and what was given."""

from __future__ import annotations

import re

import numpy as np
import pytest

import analogsim as asim
from analogsim.devices import PCM, ReRAM
from analogsim.errors import (
    AnalogSimError,
    BackendUnavailableError,
    NonFiniteInputError,
    ParameterError,
    ShapeError,
)

ROWS, COLS = 6, 4
#: "[0, inf)" or "[0, inf]": how the open upper end is printed is not the point here.
NON_NEGATIVE = r"\[0, inf[\])]"


@pytest.fixture
def tile() -> asim.Tile:
    tile = asim.Chip(device=ReRAM(), seed=0).tile("fc", ROWS, COLS)
    tile.program(np.full((ROWS, COLS), 0.1))
    return tile


def test_errors_are_value_errors_of_one_family() -> None:
    for error in (ParameterError, ShapeError, NonFiniteInputError):
        assert issubclass(error, ValueError) and issubclass(error, AnalogSimError)


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("shape", [(2, ROWS + 1), (ROWS + 1,), (2, ROWS, 1), ()])
def test_forward_rejects_wrong_shapes(tile: asim.Tile, shape: tuple[int, ...]) -> None:
    with pytest.raises(ShapeError, match=rf"The 'x' argument of Tile\.forward must have shape "
                                         rf"\(batch, {ROWS}\) or \({ROWS},\)\. Got "
                                         rf"{re.escape(str(shape))} instead"):
        tile.forward(np.ones(shape))


def test_forward_rejects_an_empty_batch(tile: asim.Tile) -> None:
    with pytest.raises(ShapeError, match=r"The 'x' argument of Tile\.forward is empty "
                                         r"\(shape \(0, 6\)\)"):
        tile.forward(np.ones((0, ROWS)))


def test_forward_rejects_non_numeric_input(tile: asim.Tile) -> None:
    with pytest.raises(ShapeError, match=r"The 'x' argument of Tile\.forward must be a numeric "
                                         r"array\. Got dtype <U1 instead"):
        tile.forward(np.array(["a"] * ROWS))


def test_backward_rejects_wrong_shapes(tile: asim.Tile) -> None:
    with pytest.raises(ShapeError, match=rf"The 'd' argument of Tile\.backward must have shape "
                                         rf"\(batch, {COLS}\) or \({COLS},\)\. Got \(3, 6\)"):
        tile.backward(np.ones((3, ROWS)))


@pytest.mark.parametrize(("x_shape", "d_shape", "name", "width"), [
    ((3, ROWS + 2), (3, COLS), "x", ROWS),
    ((3, ROWS), (3, COLS + 1), "d", COLS),
    ((3, COLS), (3, ROWS), "x", ROWS),  # transposed by mistake
])
def test_update_rejects_wrong_shapes(tile: asim.Tile, x_shape, d_shape, name: str,
                                     width: int) -> None:
    with pytest.raises(ShapeError, match=rf"The '{name}' argument of Tile\.update must have "
                                         rf"shape \(batch, {width}\)"):
        tile.update(np.ones(x_shape), np.ones(d_shape), lr=0.1)


def test_update_rejects_different_batch_sizes(tile: asim.Tile) -> None:
    with pytest.raises(ValueError, match=r"Tile\.update: 'x' and 'd' must have the same batch "
                                         r"size; got 3 and 2"):
        tile.update(np.ones((3, ROWS)), np.ones((2, COLS)), lr=0.1)


@pytest.mark.parametrize("shape", [(COLS, ROWS), (ROWS,), (ROWS, COLS, 1)])
def test_program_rejects_wrong_shapes(tile: asim.Tile, shape: tuple[int, ...]) -> None:
    with pytest.raises(ShapeError, match=rf"The 'weights' argument of Tile\.program must have "
                                         rf"shape \({ROWS}, {COLS}\)\. "
                                         rf"Got {re.escape(str(shape))}"):
        tile.program(np.ones(shape))


# --------------------------------------------------------------------------- non-finite values
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_forward_rejects_non_finite_inputs(tile: asim.Tile, bad: float) -> None:
    x = np.ones((3, ROWS))
    x[1, 2] = bad
    with pytest.raises(NonFiniteInputError, match=r"The 'x' argument of Tile\.forward must be "
                                                  r"finite; it holds 1 NaN/inf value\(s\), the "
                                                  r"first at index \(1, 2\)"):
        tile.forward(x)


def test_non_finite_values_leave_the_tile_untouched(tile: asim.Tile) -> None:
    before = tile.arrays.conductance.copy()
    d = np.ones((2, COLS))
    d[0, 0] = np.nan
    with pytest.raises(NonFiniteInputError, match=r"The 'd' argument of Tile\.update must be "
                                                  r"finite"):
        tile.update(np.ones((2, ROWS)), d, lr=0.1)
    x = np.ones((2, ROWS))
    x[1, 5] = np.inf
    with pytest.raises(NonFiniteInputError, match=r"The 'x' argument of Tile\.update must be "
                                                  r"finite.*index \(1, 5\)"):
        tile.update(x, np.ones((2, COLS)), lr=0.1)
    weights = np.zeros((ROWS, COLS))
    weights[:, 1] = np.nan
    with pytest.raises(NonFiniteInputError, match=r"The 'weights' argument of Tile\.program "
                                                  r"must be finite; it holds 6 NaN/inf"):
        tile.program(weights)
    np.testing.assert_array_equal(tile.arrays.conductance, before)


def test_inputs_that_overflow_float32_are_rejected(tile: asim.Tile) -> None:
    with pytest.raises(NonFiniteInputError, match=r"The 'x' argument of Tile\.forward must fit "
                                                  r"in float32 .*largest magnitude is 1e\+300"):
        tile.forward(np.full(ROWS, 1e300))


# --------------------------------------------------------------------------- scalars
@pytest.mark.parametrize("lr", [-0.1, np.nan, np.inf, "0.1"])
def test_update_rejects_bad_learning_rates(tile: asim.Tile, lr: object) -> None:
    with pytest.raises(ParameterError, match=rf"The 'lr' parameter of Tile\.update must be a "
                                             rf"real number in {NON_NEGATIVE}\. Got "
                                             rf"{re.escape(repr(lr))} instead"):
        tile.update(np.ones(ROWS), np.ones(COLS), lr=lr)  # type: ignore[arg-type]


def test_update_rejects_unknown_sampler(tile: asim.Tile) -> None:
    with pytest.raises(ParameterError, match=r"The 'sampler' parameter of Tile\.update must be "
                                             r"one of 'fast', 'exact'\. Got 'gibbs' instead"):
        tile.update(np.ones(ROWS), np.ones(COLS), lr=0.1, sampler="gibbs")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fill": 0.0}, r"The 'fill' parameter of Tile\.program must be a real number in \(0, 1\]\. "
                    r"Got 0\.0 instead"),
    ({"fill": 1.5}, r"The 'fill' parameter of Tile\.program .*Got 1\.5 instead"),
    ({"weight_scale": -1.0}, r"The 'weight_scale' parameter of Tile\.program must be a real "
                             r"number in \(0, inf\)\. Got -1\.0 instead"),
])
def test_program_rejects_bad_scales(tile: asim.Tile, kwargs, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        tile.program(np.ones((ROWS, COLS)), **kwargs)


@pytest.mark.parametrize("rng", ["seed", 1.5, True])
def test_rejects_bad_rng(tile: asim.Tile, rng: object) -> None:
    with pytest.raises(ParameterError, match=r"The 'rng' parameter must be a numpy Generator, "
                                             rf"an int seed or None\. Got {re.escape(repr(rng))}"):
        tile.forward(np.ones(ROWS), rng=rng)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- chip
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seed": -1}, r"The 'seed' parameter of Chip must be an integer in \[0, 9\.22337e\+18\]\. "
                   r"Got -1 instead"),
    ({"seed": 1.5}, r"The 'seed' parameter of Chip must be an integer .*Got 1\.5 instead"),
    ({"device": "pcm"}, r"The 'device' parameter of Chip must be a DeviceModel .*Got 'pcm'"),
    ({"backend": "tpu"}, r"The 'backend' parameter of Chip must be one of 'cpu', 'cuda', "
                         r"'auto'\. Got 'tpu' instead"),
    ({"kernels": "fortran"}, r"The 'kernels' parameter of Chip must be one of 'numba', "
                             r"'numpy', 'cuda', 'cudasim'\. Got 'fortran' instead"),
    ({"matmul_precision": "fp16"}, r"The 'matmul_precision' parameter of Chip must be one of "
                                   r"'fp32', 'tf32', 'bf16'\. Got 'fp16' instead"),
    ({"matmul_precision": "tf32"}, r"Chip: matmul_precision='tf32' runs on the tensor cores "
                                   r"of a GPU \(backend='cuda'\); the CPU kernels \('numba'\)"),
    ({"kernels": "cuda"}, r"Chip: kernels='cuda' runs on the GPU; use backend='cuda'"),
    ({"backend": "cuda", "kernels": "numpy"}, r"Chip: kernels='numpy' runs on the CPU; "
                                              r"backend='cuda' runs the 'cuda' kernels"),
    ({"periphery": {"adc_bits": 9}}, r"The 'periphery' parameter of Chip must be a Periphery"),
])
def test_chip_rejects_bad_arguments(kwargs, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        asim.Chip(**kwargs)


def test_cuda_backend_without_a_gpu_says_so() -> None:
    from analogsim.backends import cuda_available

    if cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(BackendUnavailableError, match=r"backend='cuda' needs an NVIDIA GPU"):
        asim.Chip(backend="cuda")


@pytest.mark.parametrize(("args", "message"), [
    (("", 3, 3), r"The 'name' parameter of Chip\.tile must be a non-empty string\. Got ''"),
    (("a", 0, 3), r"The 'rows' parameter of Chip\.tile must be an integer in \[1, "),
    (("a", 3, 2.5), r"The 'cols' parameter of Chip\.tile must be an integer .*Got 2\.5"),
])
def test_tile_rejects_bad_arguments(args, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        asim.Chip(device=PCM()).tile(*args)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"device": "pcm"}, r"The 'device' parameter of Chip\.tile must be a DeviceModel .*"
                        r"Got 'pcm' instead"),
    ({"periphery": {"adc_bits": 9}}, r"The 'periphery' parameter of Chip\.tile must be a "
                                     r"Periphery\. Got \{'adc_bits': 9\} instead"),
])
def test_tile_rejects_bad_overrides(kwargs, message: str) -> None:
    chip = asim.Chip()
    with pytest.raises(ParameterError, match=message):
        chip.tile("fc", 3, 3, **kwargs)
    assert dict(chip.tiles) == {}


def test_tile_names_are_unique() -> None:
    chip = asim.Chip()
    chip.tile("fc", 2, 2)
    with pytest.raises(ParameterError, match=r"Chip\.tile: a tile named 'fc' already exists"):
        chip.tile("fc", 3, 3)


@pytest.mark.parametrize("seconds", [-1.0, np.nan, np.inf])
def test_advance_rejects_negative_or_non_finite_time(seconds: float) -> None:
    with pytest.raises(ParameterError, match=rf"The 'seconds' parameter of Chip\.advance must "
                                             rf"be a real number in {NON_NEGATIVE}"):
        asim.Chip().advance(seconds)
