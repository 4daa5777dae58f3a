"""Backend selection, array kinds in and out, and chip files across backends (CPU side).

The GPU itself is tested in ``tests/gpu`` (``-m gpu`` on a GPU; ``-m cudasim`` runs the
same code path on Numba's simulator). Here: what a machine without a GPU must do, and the
array-kind rules, with stand-ins for CUDA arrays.
"""

from __future__ import annotations

import importlib.util
import re
import types

import h5py
import numpy as np
import pytest

import analogsim as asim
from analogsim._arrays import as_batch, input_kind, to_backend, to_kind
from analogsim.backends import cuda_available, cuda_simulator_enabled, cuda_unavailable_reason
from analogsim.errors import BackendUnavailableError, ParameterError
from analogsim.kernels import KERNEL_SETS, MATMUL_PRECISIONS, get_kernels

HAS_CUPY = importlib.util.find_spec("cupy") is not None
no_gpu = pytest.mark.skipif(cuda_available(), reason="a GPU is present")


class FakeCudaTensor:
    """Stands in for a torch CUDA tensor: exports DLPack from a CUDA device."""

    def __dlpack__(self, stream=None):  # pragma: no cover - never called without CuPy
        raise AssertionError("not a real tensor")

    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA, device 0


# ------------------------------------------------------------------ array kinds
def test_input_kinds():
    assert input_kind(np.zeros(3)) == "numpy"
    assert input_kind([1.0, 2.0]) == "numpy"
    assert input_kind(FakeCudaTensor()) == "dlpack"


def test_cpu_tensors_and_lists_go_in_and_numpy_comes_out():
    torch = pytest.importorskip("torch")
    chip = asim.Chip(seed=0)
    tile = chip.tile("t", 4, 3)
    tile.program(np.full((4, 3), 0.1, np.float32))
    x = np.linspace(-1.0, 1.0, 8, dtype=np.float32).reshape(2, 4)
    expected = tile.forward(x, rng=1)
    for given in (torch.from_numpy(x), x.tolist()):
        out = tile.forward(given, rng=1)
        assert isinstance(out, np.ndarray)
        np.testing.assert_array_equal(out, expected)
    assert isinstance(tile.backward(torch.ones(3), rng=2), np.ndarray)
    assert isinstance(tile.read(), np.ndarray)


@pytest.mark.skipif(HAS_CUPY, reason="CuPy is installed")
def test_a_cuda_array_without_cupy_says_what_is_missing():
    tile = asim.Chip(seed=0).tile("t", 4, 3)
    with pytest.raises(BackendUnavailableError, match=r"Reading a CUDA array of type "
                                                      r"FakeCudaTensor on the CPU needs CuPy"):
        tile.forward(FakeCudaTensor())
    with pytest.raises(BackendUnavailableError, match=r"Returning a CUDA array needs CuPy"):
        to_kind(np.zeros(2), "cupy", None)


def test_numpy_round_trip_helpers_are_identities_on_numpy():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert to_backend(x, np) is x
    assert to_kind(x, "numpy", x) is x
    batch, was_vector = as_batch(x[0], 3, "owner", "x")
    assert was_vector and batch.shape == (1, 3)


def test_shape_errors_name_the_given_shape():
    tile = asim.Chip(seed=0).tile("t", 4, 3)
    with pytest.raises(asim.errors.ShapeError, match=r"must have shape \(batch, 4\) or \(4,\)\. "
                                                     r"Got \(5,\) instead"):
        tile.forward(np.ones(5))
    with pytest.raises(asim.errors.ShapeError, match=r"Got \(2, 5\) instead"):
        tile.forward(np.ones((2, 5)))


# ------------------------------------------------------------------ selection
def test_kernel_sets_and_precisions_are_listed():
    from analogsim.kernels.cuda.matmul import PRECISIONS

    assert KERNEL_SETS == ("numba", "numpy", "cuda", "cudasim")
    assert MATMUL_PRECISIONS == PRECISIONS


def test_auto_falls_back_to_the_cpu_without_a_gpu():
    if cuda_unavailable_reason() is None:
        pytest.skip("the GPU can run here")
    chip = asim.Chip(backend="auto")
    assert chip.backend == "cpu" and chip.kernels.name == "numba"
    chip = asim.Chip(backend="auto", kernels="numpy")
    assert chip.backend == "cpu" and chip.kernels.name == "numpy"


@no_gpu
def test_cuda_backend_names_what_is_missing():
    reason = cuda_unavailable_reason()
    assert reason is not None
    expected = "CuPy is not installed" if not HAS_CUPY else "finds no CUDA device"
    assert expected in reason
    with pytest.raises(BackendUnavailableError,
                       match=r"backend='cuda' needs an NVIDIA GPU with CuPy and numba-cuda "
                             r"\(pip install 'analogsim\[gpu\]'\); " + re.escape(reason)):
        asim.Chip(backend="cuda")
    with pytest.raises(BackendUnavailableError, match=r"kernels='cuda' needs an NVIDIA GPU"):
        asim.Chip(backend="auto", kernels="cuda")
    with pytest.raises(BackendUnavailableError, match=r"the 'cuda' kernel set needs an NVIDIA "
                                                      r"GPU"):
        get_kernels("cuda")


def test_numba_cuda_without_numpy_2_5_support_is_named(monkeypatch):
    """numba-cuda 0.30 fails to import its array typing under NumPy 2.5 (no np.row_stack):
    the backend says so before any kernel compiles, instead of Numba's AttributeError."""
    from analogsim.kernels.cuda import _runtime

    def broken_import(name):
        assert name == "numba.cuda.np.arrayobj"
        raise AttributeError("module 'numpy' has no attribute 'row_stack'")

    monkeypatch.setattr(_runtime, "np", types.SimpleNamespace(__version__="2.5.2"))
    monkeypatch.setattr(_runtime, "import_module", broken_import)
    with pytest.raises(BackendUnavailableError,
                       match=r"numba-cuda .* cannot compile kernels with NumPy 2\.5\.2 "
                             r"\(module 'numpy' has no attribute 'row_stack'\); install "
                             r"NumPy < 2\.5"):
        _runtime._check_numpy_support()

    def missing_module(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(_runtime, "import_module", missing_module)
    assert _runtime._check_numpy_support() is None  # another layout: nothing to check
    monkeypatch.setattr(_runtime, "np", np)
    monkeypatch.setattr(_runtime, "import_module", broken_import)
    assert _runtime._check_numpy_support() is None  # NumPy still has row_stack


@pytest.mark.skipif(cuda_simulator_enabled(), reason="the simulator is enabled")
def test_the_simulator_set_needs_the_simulator():
    with pytest.raises(BackendUnavailableError, match=r"needs NUMBA_ENABLE_CUDASIM=1 in the "
                                                      r"environment before Numba is imported"):
        asim.Chip(kernels="cudasim")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "numba", "precision": "tf32"},
     r"get_kernels: precision='tf32' runs on the tensor cores of a GPU \(kernels 'cuda'; "
     r"'cudasim' emulates it\); the CPU kernel set 'numba' runs 'fp32' only"),
    ({"name": "numpy", "precision": "half"},
     r"The 'precision' parameter of get_kernels must be one of 'fp32', 'tf32', 'bf16'\. "
     r"Got 'half' instead"),
])
def test_get_kernels_rejects_bad_precisions(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        get_kernels(**kwargs)


def test_cpu_kernel_sets_matmul_in_fp32():
    kernels = get_kernels("numba")
    assert kernels.xp is np and kernels.precision == "fp32" and kernels.matmul is np.matmul


# ------------------------------------------------------------------ files across backends
def _chip_with_history() -> asim.Chip:
    chip = asim.Chip(device=asim.devices.PCM(), seed=4)
    tile = chip.tile("t", 6, 5)
    rng = np.random.default_rng(0)
    tile.program(rng.normal(size=(6, 5)))
    tile.update(rng.normal(size=(3, 6)), rng.normal(size=(3, 5)), lr=0.1)
    chip.advance(60.0)
    return chip


def _mark_as_saved_on_the_gpu(path) -> None:
    with h5py.File(path, "r+") as handle:
        for key, value in (("backend", "cuda"), ("kernels", "cuda"),
                           ("matmul_precision", "tf32")):
            handle.attrs[key] = np.bytes_(value.encode())


@no_gpu
def test_a_chip_saved_on_the_gpu_loads_on_the_cpu(tmp_path):
    chip = _chip_with_history()
    path = tmp_path / "gpu.h5"
    chip.save(path)
    with h5py.File(path, "r") as handle:
        assert handle.attrs["backend"] == b"cpu"
        assert handle.attrs["matmul_precision"] == b"fp32"
    _mark_as_saved_on_the_gpu(path)
    with pytest.warns(RuntimeWarning, match=r"was saved on the GPU, which cannot run here "
                                            r"\(.+\); it is loaded on the CPU"):
        loaded = asim.Chip.load(path)
    assert loaded.backend == "cpu" and loaded.kernels.name == "numba"
    assert loaded.kernels.precision == "fp32"
    x = np.random.default_rng(2).normal(size=(3, 6))
    np.testing.assert_array_equal(loaded.tiles["t"].forward(x), chip.tiles["t"].forward(x))
    with pytest.raises(BackendUnavailableError, match=r"backend='cuda' needs an NVIDIA GPU"):
        asim.Chip.load(path, backend="cuda")


def test_load_checks_the_requested_placement(tmp_path):
    path = tmp_path / "chip.h5"
    _chip_with_history().save(path)
    with pytest.raises(ParameterError, match=r"Chip\.load: kernels='cuda' runs on the GPU"):
        asim.Chip.load(path, backend="cpu", kernels="cuda")
    with pytest.raises(ParameterError, match=r"The 'backend' parameter of Chip\.load must be "
                                             r"one of 'cpu', 'cuda', 'auto'"):
        asim.Chip.load(path, backend="gpu")
    assert asim.Chip.load(path, kernels="numpy").kernels.name == "numpy"


def test_files_without_backend_attributes_load_on_the_cpu(tmp_path):
    """Files written before the GPU backend have no 'backend' or 'matmul_precision'."""
    chip = _chip_with_history()
    path = tmp_path / "old.h5"
    chip.save(path)
    with h5py.File(path, "r+") as handle:
        del handle.attrs["backend"]
        del handle.attrs["matmul_precision"]
    loaded = asim.Chip.load(path)
    assert loaded.backend == "cpu" and loaded.kernels.precision == "fp32"
    np.testing.assert_array_equal(loaded.tiles["t"].arrays.conductance,
                                  chip.tiles["t"].arrays.conductance)
