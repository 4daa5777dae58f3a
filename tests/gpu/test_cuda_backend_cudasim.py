"""The whole GPU code path (chip, tiles, network, learner) on Numba's CUDA simulator.

The "cudasim" kernel set is the "cuda" set with NumPy arrays: the tile calls the same Numba
CUDA kernels it calls on a GPU, the simulator runs them, and the matmuls are NumPy's (the same
BLAS calls as the CPU set's). So a chip on "cudasim" must give what a chip on the CPU's
"numba" set gives, call after call, with the tolerances of ``cuda_cases``: conductances and
outputs to one or two float32 ulps (exp/log/pow and FMA contraction round one float64 ulp
apart, see ``cuda_cases``), write times, pulse counts, stuck devices and everything digital
exactly. The runs are seeded, so a pass is not luck of the draw.

Needs ``NUMBA_ENABLE_CUDASIM=1`` before Numba is imported; ``test_cudasim_runner.py`` runs
this module in a subprocess with it. Arrays are tiny: the simulator runs every CUDA thread as
a Python thread.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from cuda_cases import FLOAT32_RTOL, STATE_ATOL_US, assert_close_float32

import analogsim as asim
from analogsim import devices
from analogsim.errors import BackendUnavailableError
from analogsim.kernels import cuda as cuda_kernels
from analogsim.kernels import get_kernels
from analogsim.kernels.cuda.matmul import emulated_matmul

pytestmark = pytest.mark.cudasim
if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 before Numba is imported; without it "
                "test_cudasim_runner.py runs this module in a subprocess",
                allow_module_level=True)

ROWS, COLS, BATCH, LR = 6, 5, 3, 0.05
#: A pair (PCM), an element with a state-independent read noise (ReRAM, the row-variance
#: path), both with 10 % stuck devices, and the ideal device (exact, continuous update).
DEVICES = {
    "reram-faulty": devices.ReRAM(stuck_at_gmin=0.1, stuck_at_gmax=0.1, n_levels=32),
    "pcm-faulty": devices.PCM(stuck_at_gmin=0.1, stuck_at_gmax=0.1, n_levels=16),
    "ideal": devices.Ideal(),
}


def _inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, 0.3, (ROWS, COLS)).astype(np.float32)
    x = rng.uniform(-1.0, 1.0, (BATCH, ROWS)).astype(np.float32)
    d = rng.normal(0.0, 0.5, (BATCH, COLS)).astype(np.float32)
    return weights, x, d


def _state(tile: asim.Tile) -> tuple[np.ndarray, np.ndarray]:
    return tile.arrays.conductance.copy(), tile.arrays.written_at.copy()


def _session(chip: asim.Chip) -> dict[str, object]:
    """Every tile operation once, recording what it returns and the state it leaves."""
    weights, x, d = _inputs()
    tile = chip.tile("t", ROWS, COLS)
    record: dict[str, object] = {}
    tile.program(weights)
    record["program"] = _state(tile)
    record["forward"] = tile.forward(x)
    record["forward 1-D"] = tile.forward(x[0])
    record["backward"] = tile.backward(d)
    tile.update(x, d, LR, sampler="fast")
    record["update fast"] = _state(tile)
    tile.update(x, d, LR, sampler="exact")
    record["update exact"] = _state(tile)
    chip.advance(3600.0)
    record["forward aged"] = tile.forward(x)
    record["read"] = tile.read()
    tile.calibrate_drift()
    record["drift reference"] = tile.drift_reference
    chip.advance(86400.0)
    record["compensation"] = tile.drift_compensation_factor()
    record["forward later"] = tile.forward(x, rng=5)
    return record


def _assert_sessions_agree(actual: dict[str, object], expected: dict[str, object]) -> None:
    assert actual.keys() == expected.keys()
    for step, value in expected.items():
        got = actual[step]
        if isinstance(value, tuple):  # (conductance, written_at)
            assert_close_float32(got[0], value[0])
            np.testing.assert_array_equal(got[1], value[1], err_msg=step)
        elif isinstance(value, np.ndarray):
            assert isinstance(got, np.ndarray), step
            assert got.dtype == value.dtype and got.shape == value.shape, step
            assert_close_float32(got, value)
        else:
            assert got == pytest.approx(value, rel=1e-12), step


# ------------------------------------------------------------------ tile operations
@pytest.mark.parametrize("name", list(DEVICES))
def test_tile_session_matches_the_cpu_chip(name):
    device = DEVICES[name]
    simulated = asim.Chip(device=device, seed=11, kernels="cudasim")
    assert simulated.backend == "cpu" and simulated.kernels.name == "cudasim"
    expected = _session(asim.Chip(device=device, seed=11))
    actual = _session(simulated)
    _assert_sessions_agree(actual, expected)
    if name != "ideal":  # the case must exercise the pulses and the stuck devices
        assert not np.array_equal(actual["update fast"][0], actual["program"][0])
        assert not np.array_equal(actual["update exact"][0], actual["update fast"][0])
        assert np.any(simulated.tiles["t"].arrays.stuck != 0)


def test_same_seed_same_results_on_the_simulator():
    first = _session(asim.Chip(device=DEVICES["pcm-faulty"], seed=3, kernels="cudasim"))
    second = _session(asim.Chip(device=DEVICES["pcm-faulty"], seed=3, kernels="cudasim"))
    for step, value in first.items():
        if isinstance(value, tuple):
            for a, b in zip(value, second[step], strict=True):
                np.testing.assert_array_equal(a, b, err_msg=step)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, second[step], err_msg=step)
        else:
            assert value == second[step], step


def test_update_through_the_cuda_set_counts_like_the_cpu():
    """The set's count means (two matmuls, one float32 pass) equal the CPU kernel's."""
    _, x, d = _inputs(2)
    up, down = get_kernels("cudasim").count_means(x, d, 37.0)
    cpu_up, cpu_down = get_kernels("numba").count_means(x, d, 37.0)
    np.testing.assert_array_equal(up, cpu_up)
    np.testing.assert_array_equal(down, cpu_down)
    assert up.dtype == down.dtype == np.float32


# ------------------------------------------------------------------ save and load
def test_save_load_round_trip_across_kernel_sets(tmp_path):
    device = DEVICES["pcm-faulty"]
    _, x, d = _inputs(1)
    chip = asim.Chip(device=device, seed=5, kernels="cudasim")
    _session(chip)
    path = tmp_path / "sim.h5"
    chip.save(path)

    same = asim.Chip.load(path)  # the saved set, which runs in this process
    assert same.kernels.name == "cudasim"
    on_cpu = asim.Chip.load(path, kernels="numba")
    assert on_cpu.kernels.name == "numba" and on_cpu.backend == "cpu"
    for loaded in (same, on_cpu):
        np.testing.assert_array_equal(loaded.tiles["t"].arrays.conductance,
                                      chip.tiles["t"].arrays.conductance)
    # The saved chip and the one loaded with the same kernels continue identically; the
    # CPU kernels continue within the float32 tolerance.
    results = []
    for each in (chip, same, on_cpu):
        tile = each.tiles["t"]
        tile.update(x, d, LR)
        results.append((tile.forward(x), tile.arrays.conductance.copy()))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])
    assert_close_float32(results[2][0], results[0][0])
    assert_close_float32(results[2][1], results[0][1])

    cpu_path = tmp_path / "cpu.h5"
    on_cpu.save(cpu_path)
    back = asim.Chip.load(cpu_path, kernels="cudasim")
    assert back.kernels.name == "cudasim"
    np.testing.assert_array_equal(back.tiles["t"].forward(x, rng=9),
                                  on_cpu.tiles["t"].forward(x, rng=9))


# ------------------------------------------------------------------ network and learner
def test_forward_forward_epoch_matches_the_cpu_chip():
    from analogsim.learners.forward_forward import ForwardForward

    data = asim.datasets.load("digits").train.subset(24, rng=0)
    results = []
    for kernels in ("numba", "cudasim"):
        chip = asim.Chip(device=devices.ReRAM(), seed=2, kernels=kernels)
        net = asim.Network(chip, [64, 8], rng=0)
        learner = ForwardForward()
        history = learner.fit(net, data, epochs=1, batch_size=12, rng=0, progress=False)
        tile = net.layers[0].tile
        results.append((history.as_arrays(), tile.arrays.conductance.copy(),
                        learner.predict(net, data.x)))
    (cpu_history, cpu_state, cpu_labels), (sim_history, sim_state, sim_labels) = results
    # Digital from here: a float32 ulp in a layer output moves the losses by far less than
    # 1e-6 relative, and no prediction.
    for column, values in cpu_history.items():
        if column == "seconds":
            continue
        np.testing.assert_allclose(sim_history[column], values, rtol=1e-6, err_msg=column)
    np.testing.assert_allclose(sim_state, cpu_state, rtol=16 * FLOAT32_RTOL,
                               atol=STATE_ATOL_US)
    np.testing.assert_array_equal(sim_labels, cpu_labels)


# ------------------------------------------------------------------ kernel set and precision
def test_the_simulator_set_runs_the_cuda_kernels_on_numpy_arrays():
    kernels = get_kernels("cudasim")
    assert kernels.name == "cudasim" and kernels.xp is np and kernels.precision == "fp32"
    assert kernels.apply_fast is cuda_kernels.apply_fast_cuda
    assert kernels.epilogue is cuda_kernels.epilogue_cuda
    assert kernels.program is cuda_kernels.program_cuda
    assert kernels.effective_weights is cuda_kernels.effective_weights_cuda
    with pytest.raises(BackendUnavailableError, match=r"the 'cuda' kernel set needs an NVIDIA "
                                                      r"GPU"):
        get_kernels("cuda")


def test_reduced_precision_is_emulated_and_kept_by_save(tmp_path):
    device = DEVICES["reram-faulty"]
    weights, x, _ = _inputs(3)
    outputs = {}
    for precision in ("fp32", "tf32", "bf16"):
        chip = asim.Chip(device=device, seed=1, kernels="cudasim", matmul_precision=precision)
        assert chip.kernels.precision == precision
        tile = chip.tile("t", ROWS, COLS)
        tile.program(weights)
        tile.periphery = asim.Periphery(adc_bits=None, out_noise=0.0, read_noise=False)
        outputs[precision] = tile.forward(x, rng=0)
        if precision != "fp32":
            a, b = x, weights
            np.testing.assert_array_equal(chip.kernels.matmul(a, b),
                                          emulated_matmul(a, b, precision).astype(np.float32))
            path = tmp_path / f"{precision}.h5"
            chip.save(path)
            assert asim.Chip.load(path).kernels.precision == precision
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                assert asim.Chip.load(path, kernels="numba").kernels.precision == "fp32"
    scale = np.abs(outputs["fp32"]).max()
    for precision, bits in (("tf32", 10), ("bf16", 7)):
        error = np.abs(outputs[precision] - outputs["fp32"]).max() / scale
        assert 0.0 < error < 4 * ROWS * 2.0**-bits, (precision, error)


# ------------------------------------------------------------------ device arrays (stand-in)
@pytest.fixture
def fake_cupy():
    """CuPy's place taken by a host-memory stand-in that, like CuPy, refuses NumPy arrays
    mixed with its own (``fake_cupy``): the tile's device path, run by the simulator."""
    import fake_cupy as fake

    module = fake.install()
    try:
        yield module
    finally:
        fake.uninstall()


def _device_chip(fake, device, seed=11):
    """A chip whose kernel set is the "cuda" set allocating with the stand-in (the private
    hook: the set is swapped before any tile exists)."""
    chip = asim.Chip(device=device, seed=seed, kernels="cudasim")
    chip.kernels = cuda_kernels.get_cuda_kernels(fake, name="cuda")
    return chip


@pytest.mark.parametrize("name", ["pcm-faulty", "ideal"])
def test_device_resident_tiles_match_the_cpu_chip(fake_cupy, name):
    device = DEVICES[name]
    chip = _device_chip(fake_cupy, device)
    actual = _session(chip)
    tile = chip.tiles["t"]
    for field in ("conductance", "written_at", "stuck", "adc_gain", "adc_offset_rows"):
        assert isinstance(getattr(tile.arrays, field), fake_cupy.ndarray), field
    # NumPy in, NumPy out (not the device type); the state compared on the host.
    for step, value in actual.items():
        if isinstance(value, tuple):
            actual[step] = tuple(fake_cupy.asnumpy(v) for v in value)
        elif isinstance(value, np.ndarray):
            assert type(value) is np.ndarray, step
    _assert_sessions_agree(actual, _session(asim.Chip(device=device, seed=11)))


def test_device_inputs_return_device_outputs(fake_cupy):
    import fake_cupy as fake

    weights, x, d = _inputs(4)
    chip = _device_chip(fake_cupy, DEVICES["reram-faulty"])
    tile = chip.tile("t", ROWS, COLS)
    tile.program(fake_cupy.asarray(weights))
    expected = tile.forward(x, rng=1)
    on_device = tile.forward(fake_cupy.asarray(x), rng=1)
    assert isinstance(on_device, fake_cupy.ndarray)
    np.testing.assert_array_equal(on_device.get(), expected)
    tensor = tile.backward(fake.FakeCudaTensor(d[0]), rng=2)
    assert isinstance(tensor, fake.FakeCudaTensor) and tensor.data.shape == (ROWS,)
    np.testing.assert_array_equal(tensor.data, tile.backward(d[0], rng=2))
    tile.update(fake_cupy.asarray(x), fake.FakeCudaTensor(d), LR, sampler="exact")
    tile.update(x, d, LR, sampler="fast")
    assert type(tile.read()) is np.ndarray
    # A CPU tile takes device inputs through the host and returns their kind.
    cpu_tile = asim.Chip(seed=0).tile("c", ROWS, COLS)
    assert isinstance(cpu_tile.forward(fake_cupy.asarray(x)), fake_cupy.ndarray)
    assert isinstance(cpu_tile.forward(fake.FakeCudaTensor(x)), fake.FakeCudaTensor)


def test_device_chip_saves_to_the_host_and_loads_on_the_cpu(fake_cupy, tmp_path):
    chip = _device_chip(fake_cupy, DEVICES["pcm-faulty"], seed=6)
    _session(chip)
    path = tmp_path / "device.h5"
    chip.save(path)
    loaded = asim.Chip.load(path, kernels="numba")
    state = chip.tiles["t"].arrays
    for field in ("conductance", "written_at", "bound_high"):
        np.testing.assert_array_equal(getattr(loaded.tiles["t"].arrays, field),
                                      getattr(state, field).get())
    _, x, _ = _inputs(5)
    assert_close_float32(loaded.tiles["t"].forward(x, rng=3), chip.tiles["t"].forward(x, rng=3))
