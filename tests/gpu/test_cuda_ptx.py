"""Every CUDA kernel compiles for a Hopper GPU (sm_90), without a GPU.

The simulator runs the kernels as Python, so it cannot catch what only the real CUDA target
rejects (typing, unsupported calls, uint64/int64 mixing). ``numba.cuda.compile_ptx`` runs
that target's whole front end and NVVM; it needs the real ``numba.cuda`` (numba-cuda, not the
simulator) and libNVVM and NVRTC, e.g. ``pip install numba-cuda "cuda-toolkit[nvvm,nvrtc]==13.*"``.
Skipped when they are missing, as on the CPU CI machine.
"""

from __future__ import annotations

import importlib.util
import os
from types import SimpleNamespace

import pytest

from analogsim.kernels.cuda import drift, mvm, program, pulsed_update

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                                reason="compiles for the real CUDA target, not the simulator")

HOPPER = (9, 0)


@pytest.fixture(scope="module")
def compile_ptx():
    """``numba.cuda.compile_ptx`` with device functions compiled for sm_90 without a GPU."""
    if importlib.util.find_spec("numba_cuda") is None:
        pytest.skip("needs NVIDIA's numba-cuda (Numba's built-in CUDA target is deprecated)")
    cuda = pytest.importorskip("numba.cuda")
    if "simulator" in cuda.jit.__module__:
        pytest.skip("numba.cuda is the simulator")
    if getattr(cuda, "implementation", "") != "NVIDIA":
        pytest.skip("needs NVIDIA's numba-cuda (Numba's built-in CUDA target is deprecated)")
    from numba.cuda import dispatcher

    patch = pytest.MonkeyPatch()
    # Device functions ask the current device for its compute capability; there is none.
    patch.setattr(dispatcher, "get_current_device",
                  lambda: SimpleNamespace(compute_capability=HOPPER), raising=False)

    def probe(out):
        out[0] = 1.0

    try:
        cuda.compile_ptx(probe, "void(float32[::1])", cc=HOPPER)
    except Exception as error:  # the toolchain, not our code: libNVVM or NVRTC missing
        patch.undo()
        pytest.skip(f"no CUDA compiler toolchain (libNVVM/NVRTC): {type(error).__name__}")
    yield lambda kernel, signature: cuda.compile_ptx(kernel.py_func, signature, cc=HOPPER)
    patch.undo()


F32_2D, F32_3D = "float32[:, ::1]", "float32[:, :, ::1]"
F64_3D, I8_3D = "float64[:, :, ::1]", "int8[:, :, ::1]"
STATE = f"{F32_3D}, {F64_3D}, {F32_3D}, {I8_3D}, {F32_3D}, {F32_3D}, {F32_3D}, {F32_3D}"
SIGNATURES = {
    "epilogue": (mvm, f"void({F32_2D}, {F32_2D}, boolean, float32[::1], float32[::1], "
                      f"float32[::1], float64, float64, float64, float64, uint64, {F32_2D})"),
    "effective_weights": (drift, f"void({F32_3D}, {F64_3D}, {F32_3D}, {I8_3D}, float64[::1], "
                                 f"float64, float64[::1], {F32_2D}, boolean, {F32_2D})"),
    "program": (program, f"void({F32_3D}, {F32_3D}, {F64_3D}, {I8_3D}, {F32_3D}, {F32_3D}, "
                         f"float64, float64[::1], uint64)"),
    "apply_fast": (pulsed_update, f"void({F32_2D}, {F32_2D}, {STATE}, float64, float64[::1], "
                                  f"uint64)"),
    "pulse_trains": (pulsed_update, "void(float64[:, ::1], int64, uint64, uint64[:, ::1])"),
    "apply_exact": (pulsed_update, f"void(uint64[:, ::1], int8[:, ::1], uint64[:, ::1], "
                                   f"int8[:, ::1], {STATE}, float64, float64[::1], uint64)"),
}


@pytest.mark.parametrize("name", list(SIGNATURES))
def test_kernel_compiles_for_hopper(compile_ptx, name):
    module, signature = SIGNATURES[name]
    ptx, _ = compile_ptx(getattr(module._kernels(), name), signature)
    assert ".target sm_90" in ptx
    assert f"{name}_kernel" in ptx
