"""The fast sampler's count means from exact int8 matmuls (``count_precision="int8"``).

PyTorch's int8 path against its NumPy reference (bit for bit), the quantization itself, the
error against the fp32 means in units of the Poisson noise, and the option on a chip.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import analogsim as asim
from analogsim.benchmarking import Workload
from analogsim.errors import BackendUnavailableError, ParameterError, ShapeError
from analogsim.kernels import count_means_int8, get_kernels
from analogsim.kernels.count_means_int8 import (
    INT8_LEVELS,
    INT8_SMALLEST,
    column_scales,
    pulse_count_means_int8_numpy,
    quantize_int8,
)
from analogsim.kernels.pulsed_update import pulse_count_means

needs_torch = pytest.mark.skipif(not count_means_int8.torch_available(),
                                 reason="the int8 count matmuls run in PyTorch (torch extra)")
#: Both engines of Int8CountMeans; PyTorch's needs the torch extra.
ENGINES = [pytest.param("torch", marks=needs_torch), "float32"]
#: The engine of the tests of what follows the products (the guard, the buffers): PyTorch's
#: where it runs; the two give the same sums (``test_int8_counts_of_either_engine_...``).
ENGINE = "torch" if count_means_int8.torch_available() else "float32"


def _workload(batch: int, rows: int, cols: int, seed: int, signed: bool = False):
    """The bench's inputs and errors (``x`` shifted to U[-0.5, 0.5) when ``signed``)."""
    workload = Workload.make(batch, rows, cols, seed)
    return (workload.x - np.float32(0.5) if signed else workload.x), workload.d


def _poisson_units(means: tuple[np.ndarray, ...], exact: tuple[np.ndarray, ...]) -> np.ndarray:
    """|int8 mean - fp32 mean| / sqrt(fp32 mean), at least 1 pulse in the root."""
    return np.concatenate([(np.abs(m - e) / np.sqrt(np.maximum(e, 1))).ravel()
                           for m, e in zip(means, exact, strict=True)])


# ---------------------------------------------------------------------- quantization
def test_quantization_maps_each_column_max_to_127_and_zero_columns_to_zero():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((40, 6), dtype=np.float32)
    values[:, 2] = 0.0
    values[:, 3] *= np.float32(1e-37)  # below INT8_SMALLEST: treated as zeros
    values[:, 4] = -np.abs(values[:, 4])
    inverse, scale = np.empty(6, np.float32), np.empty(6, np.float32)
    column_scales(values, inverse, scale)
    signed, magnitude = np.empty(values.shape, np.int8), np.empty(values.shape, np.int8)
    quantize_int8(values, inverse, signed, magnitude)
    assert np.array_equal(np.abs(signed.astype(int)), magnitude)
    assert np.abs(signed).max(axis=0).tolist() == [INT8_LEVELS, INT8_LEVELS, 0, 0,
                                                   INT8_LEVELS, INT8_LEVELS]
    assert scale[2] == scale[3] == 0 and np.abs(values[:, 3]).max() < INT8_SMALLEST
    assert (signed[:, 4] <= 0).all()
    # each level is within half a step of the value
    live = [0, 1, 4, 5]
    steps = np.abs(values[:, live] - signed[:, live] * scale[live])
    assert (steps <= 0.5 * scale[live] * (1 + 1e-5)).all()


# ---------------------------------------------------------------------- engines = NumPy
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("shape", [(7, 5, 3), (64, 33, 17), (256, 128, 96)])
def test_int8_counts_of_either_engine_equal_the_numpy_reference_bit_for_bit(shape, signed,
                                                                             engine):
    batch, rows, cols = shape
    x, d = _workload(batch, rows, cols, seed=sum(shape), signed=signed)
    x[:, 0] = 0.0  # a zero column on each side
    d[:, -1] = 0.0
    means = count_means_int8.Int8CountMeans(engine)
    assert means.engine == engine
    up, down = means(x, d, 37.5)
    reference = pulse_count_means_int8_numpy(x, d, 37.5)
    assert np.array_equal(up, reference[0]) and np.array_equal(down, reference[1])
    assert (up[0] == 0).all() and (down[:, -1] == 0).all()
    buffers = (np.full((rows, cols), np.nan, np.float32), np.full((rows, cols), np.nan,
                                                                  np.float32))
    assert means(x, d, 37.5, out=buffers) is buffers
    assert np.array_equal(buffers[0], up) and np.array_equal(buffers[1], down)


@pytest.mark.parametrize("engine", ENGINES)
def test_batches_past_the_int32_range_are_summed_in_int64_chunks(monkeypatch, engine):
    """A batch longer than INT8_BATCH (133,143 samples) is summed over chunks in int64;
    shrunk here so that a small batch takes that path."""
    x, d = _workload(50, 12, 9, seed=3, signed=True)
    monkeypatch.setattr(count_means_int8, "INT8_BATCH", 8)
    up, down = count_means_int8.Int8CountMeans(engine)(x, d, 5.0)
    reference = pulse_count_means_int8_numpy(x, d, 5.0)
    assert np.array_equal(up, reference[0]) and np.array_equal(down, reference[1])


def test_float32_products_stay_exact_past_2_to_the_24():
    """All levels at +-127: a count sums 127^2 per sample, so past 1040 samples (2**24) one
    float32 matmul would round; chunks of FLOAT32_BATCH keep every sum exact."""
    assert count_means_int8.FLOAT32_BATCH == 1040
    batch = 2 * count_means_int8.FLOAT32_BATCH + 21  # 2101 samples: the sum 33,887,029 is odd
    x = np.ones((batch, 3), np.float32)
    d = np.ones((batch, 2), np.float32)
    d[1::2, 1] = -1.0
    levels = (np.full((batch, 3), 127, np.int8), np.full((batch, 2), 127, np.int8))
    total = np.empty((3, 2), np.int32)
    count_means_int8._float32_level_products(*levels, total, np.empty((3, 2), np.float32))
    assert (total == batch * 127 * 127).all()
    one_matmul = levels[0].T.astype(np.float32) @ levels[1].astype(np.float32)
    assert (one_matmul.astype(np.int64) != batch * 127 * 127).all()  # what chunks avoid
    means = count_means_int8.Int8CountMeans("float32")
    up, down = means(x, d, 1.0)
    reference = pulse_count_means_int8_numpy(x, d, 1.0)
    assert np.array_equal(up, reference[0]) and np.array_equal(down, reference[1])
    assert down[0, 0] == np.float32(batch) and up[0, 0] == 0.0


def test_bad_out_buffers_are_named():
    x, d = _workload(8, 4, 3, seed=0)
    with pytest.raises(ShapeError, match="C-contiguous float32 arrays of shape"):
        count_means_int8.Int8CountMeans(ENGINE)(x, d, 1.0, out=(np.empty((4, 3)),
                                                                 np.empty((4, 3))))


# ---------------------------------------------------------------------- error budget
@pytest.mark.statistical
@pytest.mark.parametrize("signed", [False, True])
def test_int8_means_err_far_below_the_poisson_noise(signed):
    """At about 10 pulses a device (the bench workload's 12), the int8 means differ from
    the fp32 ones by well under their Poisson standard deviation. Measured (seed 1,
    256 x 256 x 256): RMS 0.0023 sd and at most 0.012 sd, for non-negative and for signed
    inputs alike; bounds with margin: RMS 0.01, max 0.05."""
    x, d = _workload(256, 256, 256, seed=1, signed=signed)
    pulses_per_unit = 10.0 / float((np.abs(x).T @ np.abs(d)).mean())
    exact = pulse_count_means(x, d, pulses_per_unit)
    errors = _poisson_units(pulse_count_means_int8_numpy(x, d, pulses_per_unit), exact)
    assert np.sqrt(np.mean(errors**2)) < 0.01
    assert errors.max() < 0.05


def _guard_case(case: str):
    """(x, d, pulses_per_unit, marked): workloads that make the guard recount."""
    rng = np.random.default_rng(2)
    x = rng.random((128, 96), dtype=np.float32)
    d = rng.standard_normal((128, 80), dtype=np.float32)
    marked = np.array([], dtype=np.int64)
    pulses = 10.0
    if case == "outlier in every error column":
        d[rng.integers(0, 128, 80), np.arange(80)] *= np.float32(100)
    elif case == "outliers in three error columns":
        marked = np.array([5, 40, 77])
        d[[3, 60, 100], marked] *= np.float32(1000)
    elif case == "outliers in two input columns":
        marked = np.array([11, 70])
        x[[9, 90], marked] *= np.float32(100)
    else:  # thousands of pulses a device: the rounding error outgrows the Poisson noise
        pulses = 5000.0
    return x, d, pulses / float((np.abs(x).T @ np.abs(d)).mean()), marked


@pytest.mark.parametrize(("case", "kind"), [
    ("outlier in every error column", "everything"),
    ("outliers in three error columns", "columns"),
    ("outliers in two input columns", "rows"),
    ("thousands of pulses", "everything"),
])
def test_the_guard_recounts_in_fp32_where_int8_would_err(case, kind):
    x, d, pulses_per_unit, marked = _guard_case(case)
    means = count_means_int8.Int8CountMeans(ENGINE)
    up, down = means(x, d, pulses_per_unit)
    assert {name for name, calls in means.recounts.items() if calls} == {kind}
    reference = pulse_count_means_int8_numpy(x, d, pulses_per_unit)
    assert np.array_equal(up, reference[0]) and np.array_equal(down, reference[1])
    if kind == "everything":
        exact = pulse_count_means(x, d, pulses_per_unit)
        assert np.array_equal(up, exact[0]) and np.array_equal(down, exact[1])
    elif kind == "columns":  # the outlier columns exactly, the rest in int8
        exact = pulse_count_means(x, np.ascontiguousarray(d[:, marked]), pulses_per_unit)
        assert np.array_equal(up[:, marked], exact[0])
        plain = pulse_count_means(x, d, pulses_per_unit)
        assert not np.array_equal(up, plain[0])
    else:
        exact = pulse_count_means(np.ascontiguousarray(x[:, marked]), d, pulses_per_unit)
        assert np.array_equal(down[marked], exact[1])
    errors = _poisson_units((up, down), pulse_count_means(x, d, pulses_per_unit))
    assert np.sqrt(np.mean(errors**2)) < 0.01


@pytest.mark.parametrize("pulses", [10.0, 40.0, 100.0, 300.0, 1000.0])
def test_rows_skipped_by_the_guards_bound_change_no_count(pulses):
    """Rows whose bound on the predicted variance is below the limit skip the check; across
    the pulse levels where rows start to be checked and devices to be marked, the result
    stays the NumPy reference's (which checks every device) bit for bit."""
    x, d = _workload(128, 160, 144, seed=7, signed=True)
    d[5, 3] *= np.float32(30)  # one loud column, marked from some level on
    pulses_per_unit = pulses / float((np.abs(x).T @ np.abs(d)).mean())
    up, down = count_means_int8.Int8CountMeans(ENGINE)(x, d, pulses_per_unit)
    reference = pulse_count_means_int8_numpy(x, d, pulses_per_unit)
    assert np.array_equal(up, reference[0]) and np.array_equal(down, reference[1])


@pytest.mark.statistical
def test_the_guard_keeps_the_rms_error_below_its_tolerance():
    """At 100 and 1000 pulses a device the guard recounts what it predicts would err by
    more than INT8_TOLERANCE (0.05 sd RMS); what is left errs by less. Measured (seed 1,
    256 x 256 x 256, U[0, 1) inputs, normal errors): RMS 0.0071 and 0.022 sd."""
    x, d = _workload(256, 256, 256, seed=1)
    for pulses in (100.0, 1000.0):
        pulses_per_unit = pulses / float((np.abs(x).T @ np.abs(d)).mean())
        exact = pulse_count_means(x, d, pulses_per_unit)
        errors = _poisson_units(pulse_count_means_int8_numpy(x, d, pulses_per_unit), exact)
        assert np.sqrt(np.mean(errors**2)) < count_means_int8.INT8_TOLERANCE


# ---------------------------------------------------------------------- the option
def test_count_precision_is_validated_and_cpu_only():
    with pytest.raises(ParameterError, match="'count_precision' parameter of Chip"):
        asim.Chip(count_precision="int4")
    with pytest.raises(ParameterError, match="count_precision='int8' runs on the CPU"):
        asim.Chip(kernels="cudasim", count_precision="int8")
    with pytest.raises(ParameterError, match="count_precision='int8' runs on the CPU"):
        get_kernels("cudasim", count_precision="int8")


def _reference_counts(means) -> bool:
    """Whether ``means`` gives the NumPy reference's counts on a small workload."""
    x, d = _workload(40, 24, 20, seed=6, signed=True)
    got, reference = means(x, d, 12.0), pulse_count_means_int8_numpy(x, d, 12.0)
    return all(np.array_equal(a, b) for a, b in zip(got, reference, strict=True))


def test_int8_counts_without_pytorch_run_in_float32_and_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails
    count_means_int8._torch.cache_clear()  # a found PyTorch is cached; a failure is not
    with pytest.warns(RuntimeWarning, match=r"not installed: pip install torch==2\.13\.0.*"
                                            r"multiplied in float32: the same counts"):
        chip = asim.Chip(count_precision="int8")
    assert chip.kernels.count_precision == "int8"
    assert chip.kernels.count_means.kernel.engine == "float32"
    assert _reference_counts(chip.kernels.count_means.kernel)
    with pytest.raises(BackendUnavailableError, match=r"pip install torch==2\.13\.0"):
        count_means_int8.Int8CountMeans("torch")
    with pytest.raises(ParameterError, match="'engine' parameter of Int8CountMeans"):
        count_means_int8.Int8CountMeans("int4")
    # the NumPy reference set needs no PyTorch and says nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert asim.Chip(kernels="numpy", count_precision="int8").kernels.count_precision \
            == "int8"


def test_a_pytorch_without_a_cpu_int8_matmul_is_named(monkeypatch):
    class OldTorch:  # PyTorch before 2.3: no CPU kernel for torch._int_mm
        __version__ = "2.2.0"
        int8 = "int8"

        @staticmethod
        def ones(shape, dtype):
            return None

        @staticmethod
        def _int_mm(a, b):
            raise RuntimeError("Could not run 'aten::_int_mm' with arguments from the 'CPU' "
                               "backend.")

    monkeypatch.setitem(sys.modules, "torch", OldTorch)
    count_means_int8._torch.cache_clear()
    with pytest.warns(RuntimeWarning, match=r"torch\._int_mm, PyTorch 2\.3 and later"
                                            r"\); PyTorch 2\.2\.0 has none"):
        means = asim.Chip(count_precision="int8").kernels.count_means.kernel
    assert means.engine == "float32" and _reference_counts(means)
    assert not count_means_int8.torch_available()


def _trained_tile(chip: asim.Chip, updates: int = 3):
    rng = np.random.default_rng(5)
    tile = chip.tile("fc", rows=48, cols=40)
    tile.program(rng.normal(0, 0.05, (48, 40)).astype(np.float32))
    for _ in range(updates):
        x = rng.random((32, 48), dtype=np.float32)
        d = rng.normal(0, 0.1, (32, 40)).astype(np.float32)
        tile.update(x, d, 0.01)
    return tile


@pytest.mark.filterwarnings("ignore:PyTorch:RuntimeWarning")  # without it: float32 engine
@pytest.mark.parametrize("device", [asim.devices.ReRAM(), asim.devices.PCM()],
                         ids=["reram", "pcm"])
def test_a_chip_with_int8_counts_matches_its_numpy_reference(device):
    numba_tile = _trained_tile(asim.Chip(device, seed=4, count_precision="int8"))
    numpy_tile = _trained_tile(asim.Chip(device, seed=4, kernels="numpy",
                                         count_precision="int8"))
    assert np.array_equal(numba_tile.arrays.conductance, numpy_tile.arrays.conductance)
    fp32_tile = _trained_tile(asim.Chip(device, seed=4))
    assert not np.array_equal(numba_tile.arrays.conductance, fp32_tile.arrays.conductance)
    # the same physics: the weights agree to a small fraction of the pulsed change
    start = asim.Chip(device, seed=4).tile("fc", rows=48, cols=40)
    start.program(np.random.default_rng(5).normal(0, 0.05, (48, 40)).astype(np.float32))
    change = np.abs(fp32_tile.read() - start.read()).mean()
    assert np.abs(numba_tile.read() - fp32_tile.read()).mean() < 0.5 * change


@pytest.mark.filterwarnings("ignore:PyTorch:RuntimeWarning")
def test_save_and_load_keep_int8_counts(tmp_path):
    chip = asim.Chip(asim.devices.PCM(), seed=2, count_precision="int8")
    tile = _trained_tile(chip, updates=1)
    chip.save(tmp_path / "chip.h5")
    loaded = asim.Chip.load(tmp_path / "chip.h5")
    assert loaded.kernels.count_precision == "int8"
    rng = np.random.default_rng(9)
    x = rng.random((16, 48), dtype=np.float32)
    d = rng.normal(0, 0.1, (16, 40)).astype(np.float32)
    tile.update(x, d, 0.01)
    loaded.tiles["fc"].update(x, d, 0.01)
    assert np.array_equal(tile.read(), loaded.tiles["fc"].read())
    fp32 = asim.Chip(asim.devices.PCM(), seed=2)
    fp32.save(tmp_path / "fp32.h5")
    assert asim.Chip.load(tmp_path / "fp32.h5").kernels.count_precision is None


@needs_torch
def test_a_chip_loaded_without_pytorch_continues_its_int8_counts_bit_for_bit(tmp_path,
                                                                              monkeypatch):
    chip = asim.Chip(asim.devices.ReRAM(), seed=2, count_precision="int8")
    tile = _trained_tile(chip, updates=1)
    chip.save(tmp_path / "chip.h5")
    monkeypatch.setitem(sys.modules, "torch", None)
    count_means_int8._torch.cache_clear()
    with pytest.warns(RuntimeWarning, match="multiplied in float32: the same counts"):
        loaded = asim.Chip.load(tmp_path / "chip.h5")
    assert loaded.kernels.count_precision == "int8"
    assert loaded.kernels.count_means.kernel.engine == "float32"
    rng = np.random.default_rng(9)
    for _ in range(2):
        x = rng.random((16, 48), dtype=np.float32)
        d = rng.normal(0, 0.1, (16, 40)).astype(np.float32)
        tile.update(x, d, 0.01)
        loaded.tiles["fc"].update(x, d, 0.01)
    assert np.array_equal(tile.read(), loaded.tiles["fc"].read())
