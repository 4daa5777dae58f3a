"""``Chip(backend="cuda")`` on a real GPU: device-resident tiles, array kinds, files, and
agreement with the CPU backend.

Marked ``gpu`` and skipped without an NVIDIA GPU with CuPy and numba-cuda (run with
``python -m pytest -m gpu tests/gpu``). The same code path runs on Numba's simulator in
``test_cuda_backend_cudasim.py``, where it equals the CPU bit for bit; here the matmuls are
cuBLAS's, whose float32 sums round differently from the CPU BLAS (a few 1e-7 relative), so
outputs may differ by one ADC level where a value sits on a level boundary, and a pulse count
by one where a mean sits on a Poisson threshold. The tolerances below allow exactly that,
for a small fraction of elements, and the statistical test compares moments over many reads.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from cuda_cases import FUSED_ULPS

import analogsim as asim
from analogsim import devices
from analogsim.backends import cuda_unavailable_reason

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                       reason="needs the real numba.cuda, not the simulator"),
]
ROWS, COLS, BATCH, LR = 96, 80, 33, 0.05


@pytest.fixture(scope="module")
def cp():
    reason = cuda_unavailable_reason()
    if reason is not None:
        pytest.skip(f"needs the CUDA backend: {reason}")
    import cupy

    return cupy


def _inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0.0, 0.3, (ROWS, COLS)).astype(np.float32),
            rng.uniform(-1.0, 1.0, (BATCH, ROWS)).astype(np.float32),
            rng.normal(0.0, 0.5, (BATCH, COLS)).astype(np.float32))


def _pair(device, seed: int = 11):
    return asim.Chip(device=device, seed=seed), asim.Chip(device=device, seed=seed,
                                                          backend="cuda")


def _adc_level(tile: asim.Tile, x: np.ndarray) -> np.ndarray:
    """One ADC step in output units, per input row (noise management scales each row)."""
    row_scale = np.abs(x).max(axis=1, keepdims=True)
    return tile.periphery.adc_step * tile.weight_scale * row_scale


def test_backend_cuda_keeps_the_tiles_on_the_gpu(cp):
    chip = asim.Chip(backend="cuda")
    assert chip.backend == "cuda" and chip.kernels.name == "cuda" and chip.kernels.xp is cp
    tile = chip.tile("t", ROWS, COLS)
    for name in ("conductance", "written_at", "stuck", "adc_gain"):
        assert isinstance(getattr(tile.arrays, name), cp.ndarray), name
    assert asim.Chip(backend="auto").backend == "cuda"
    assert asim.Chip(backend="auto", kernels="numba").backend == "cpu"


def test_outputs_come_back_in_the_input_kind(cp):
    weights, x, d = _inputs()
    tile = asim.Chip(device=devices.ReRAM(), backend="cuda").tile("t", ROWS, COLS)
    tile.program(weights)
    assert isinstance(tile.forward(x), np.ndarray)
    assert isinstance(tile.forward(cp.asarray(x)), cp.ndarray)
    assert isinstance(tile.backward(cp.asarray(d)), cp.ndarray)
    assert isinstance(tile.read(), np.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(tile.forward(cp.asarray(x), rng=3)),
                                  tile.forward(x, rng=3))
    tile.update(cp.asarray(x), cp.asarray(d), LR)  # CuPy inputs update in place too
    cpu_tile = asim.Chip(device=devices.ReRAM()).tile("t", ROWS, COLS)
    assert isinstance(cpu_tile.forward(cp.asarray(x)), cp.ndarray)


def test_torch_cuda_tensors_go_in_and_come_back(cp):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    weights, x, _ = _inputs()
    tile = asim.Chip(backend="cuda").tile("t", ROWS, COLS)
    tile.program(weights)
    out = tile.forward(torch.from_numpy(x).cuda(), rng=4)
    assert isinstance(out, torch.Tensor) and out.is_cuda
    np.testing.assert_array_equal(out.cpu().numpy(), tile.forward(x, rng=4))


@pytest.mark.parametrize("name", ["reram", "pcm"])
def test_a_session_agrees_with_the_cpu_chip(cp, name):
    device = devices.preset(name)
    cpu, gpu = _pair(device)
    weights, x, d = _inputs()
    tiles = [chip.tile("t", ROWS, COLS) for chip in (cpu, gpu)]
    for tile in tiles:
        tile.program(weights)
    # Programming has no matmul: the kernels agree to float32 rounding.
    np.testing.assert_allclose(cp.asnumpy(tiles[1].arrays.conductance),
                               tiles[0].arrays.conductance, rtol=2**-22, atol=1e-9)
    outputs = [tile.forward(x, rng=1) for tile in tiles]
    level = _adc_level(tiles[0], x)
    gap = np.abs(outputs[1] - outputs[0])
    assert np.all(gap <= 1.01 * level + 1e-6)  # at most one ADC level...
    assert np.mean(gap > 1e-6) < 0.01  # ...and rarely that
    for tile in tiles:
        tile.update(x, d, LR)
    states = [cp.asnumpy(tiles[1].arrays.conductance), tiles[0].arrays.conductance]
    # Fused multiply-adds on the GPU move a conductance by an ulp or two of the largest one
    # (cuda_cases.FUSED_ULPS); a count moved by a rounded mean moves it by a step, rarely.
    ulp = float(np.spacing(np.float32(np.abs(states[1]).max())))
    differ = ~np.isclose(states[0], states[1], rtol=0.0, atol=FUSED_ULPS * ulp)
    assert np.mean(differ) < 0.01
    for chip in (cpu, gpu):
        chip.advance(3600.0)
    reads = [tile.read(rng=2) for tile in tiles]
    close = np.isclose(reads[1], reads[0], rtol=1e-5, atol=1e-6 * np.abs(weights).max())
    assert np.mean(~close) < 0.01


def test_forward_moments_match_the_cpu_chip(cp):
    """Mean and variance of 400 reads of every output: GPU against CPU within 5 standard
    errors each (false-failure rate about 1e-6 per element), at most 0.5 % of elements out."""
    device = devices.PCM()
    cpu, gpu = _pair(device, seed=2)
    weights, x, _ = _inputs(1)
    samples = []
    for chip in (cpu, gpu):
        tile = chip.tile("t", ROWS, COLS)
        tile.program(weights)
        chip.advance(86400.0)
        samples.append(np.stack([tile.forward(x[:8]) for _ in range(400)]))
    (mean_c, var_c), (mean_g, var_g) = ((s.mean(0), s.var(0)) for s in samples)
    n = samples[0].shape[0]
    mean_ok = np.abs(mean_g - mean_c) <= 5.0 * np.sqrt((var_c + var_g) / n) + 1e-6
    var_ok = np.abs(var_g - var_c) <= 5.0 * np.sqrt(2.0 / n * (var_c**2 + var_g**2)) + 1e-9
    assert np.mean(~mean_ok) < 0.005 and np.mean(~var_ok) < 0.005


def test_same_seed_same_results_on_the_gpu(cp):
    results = []
    for _ in range(2):
        chip = asim.Chip(device=devices.PCM(), seed=9, backend="cuda")
        tile = chip.tile("t", ROWS, COLS)
        weights, x, d = _inputs(2)
        tile.program(weights)
        tile.update(x, d, LR)
        tile.update(x, d, LR, sampler="exact")
        results.append((tile.forward(x), cp.asnumpy(tile.arrays.conductance)))
    for first, second in zip(*results, strict=True):
        np.testing.assert_array_equal(first, second)


def test_files_move_between_the_gpu_and_the_cpu(cp, tmp_path):
    weights, x, d = _inputs(3)
    chip = asim.Chip(device=devices.PCM(), seed=5, backend="cuda")
    tile = chip.tile("t", ROWS, COLS)
    tile.program(weights)
    tile.update(x, d, LR)
    path = tmp_path / "gpu.h5"
    chip.save(path)
    again = asim.Chip.load(path)
    assert again.backend == "cuda"
    on_cpu = asim.Chip.load(path, backend="cpu")
    assert on_cpu.backend == "cpu"
    state = cp.asnumpy(tile.arrays.conductance)
    np.testing.assert_array_equal(cp.asnumpy(again.tiles["t"].arrays.conductance), state)
    np.testing.assert_array_equal(on_cpu.tiles["t"].arrays.conductance, state)
    # Same backend: the loaded chip continues bit-identically.
    np.testing.assert_array_equal(again.tiles["t"].forward(x), tile.forward(x))
    cpu_path = tmp_path / "cpu.h5"
    on_cpu.save(cpu_path)
    back = asim.Chip.load(cpu_path, backend="cuda")
    np.testing.assert_array_equal(cp.asnumpy(back.tiles["t"].arrays.conductance), state)


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_reduced_precision_forward_stays_close(cp, precision):
    weights, x, _ = _inputs(4)
    outputs = []
    for chosen in ("fp32", precision):
        chip = asim.Chip(device=devices.ReRAM(), seed=1, backend="cuda",
                         matmul_precision=chosen)
        tile = chip.tile("t", ROWS, COLS)
        tile.program(weights)
        tile.periphery = asim.Periphery(adc_bits=None, out_noise=0.0, read_noise=False)
        outputs.append(tile.forward(x, rng=0))
    error = np.linalg.norm(outputs[1] - outputs[0]) / np.linalg.norm(outputs[0])
    assert error < {"tf32": 2e-3, "bf16": 1e-2}[precision]


def test_forward_forward_trains_on_the_gpu(cp):
    from analogsim.learners.forward_forward import ForwardForward

    data = asim.datasets.load("digits")
    accuracies = []
    for backend in ("cpu", "cuda"):
        chip = asim.Chip(device=devices.ReRAM(), seed=0, backend=backend)
        net = asim.Network(chip, [64, 100, 100], rng=0)
        learner = ForwardForward()
        learner.fit(net, data.train, epochs=2, rng=0, progress=False)
        accuracies.append(learner.evaluate(net, data.test))
    # The two runs are the same experiment up to rounding: similar, and well above chance.
    assert min(accuracies) >= 0.4
    assert abs(accuracies[0] - accuracies[1]) < 0.1
