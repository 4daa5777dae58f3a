"""``analogsim info``: versions, compute backends found, threads and BLAS.

Versions come from the installed distributions' metadata, so optional heavy packages (torch,
CuPy) are reported without being imported. Backends are probed only when this command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from importlib import metadata
from typing import Any

HELP = "versions, backends found, threads"

#: label -> distribution names to try: the first one installed is reported.
PACKAGES = {
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "numba": ("numba",),
    "numba-cuda": ("numba-cuda",),
    "h5py": ("h5py",),
    "scikit-learn": ("scikit-learn",),
    "torch": ("torch",),
    "cupy": ("cupy", "cupy-cuda12x", "cupy-cuda11x", "cupy-cuda13x"),
    "threadpoolctl": ("threadpoolctl",),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON instead of text")


def run(args: argparse.Namespace) -> int:
    report = collect()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def collect() -> dict[str, Any]:
    """Everything ``analogsim info`` reports, as plain data."""
    import analogsim
    from analogsim.benchmarking import thread_settings

    _start_numba_threads()
    return {
        "analogsim": analogsim.__version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()}, "
                  f"{sys.executable})",
        "platform": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "packages": {label: package_version(names) for label, names in PACKAGES.items()},
        "backends": backends(),
        "threads": thread_settings(),
    }


def package_version(distributions: tuple[str, ...]) -> str | None:
    """Version of the first of ``distributions`` that is installed, else None."""
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def backends() -> dict[str, str]:
    """Each compute backend and whether it is usable here (with the reason when not)."""
    from analogsim.backends import cuda_available

    found = {"cpu": "available (Numba kernels; NumPy references)"}
    if package_version(PACKAGES["cupy"]) is None:
        found["cuda (CuPy)"] = "not available: CuPy is not installed"
    elif cuda_available():
        found["cuda (CuPy)"] = "available"
    else:
        found["cuda (CuPy)"] = "not available: CuPy sees no CUDA device"
    found["numba.cuda"] = _numba_cuda_status()
    try:
        from analogsim.backends import cuda_unavailable_reason

        reason = cuda_unavailable_reason()
    except Exception as error:  # a broken CUDA toolkit must not break `info`
        reason = f"{type(error).__name__}: {error}"
    found["Chip(backend='cuda')"] = "available" if reason is None else f"not available: {reason}"
    found["count_precision='int8'"] = _int8_counts_status()
    return found


#: The first PyTorch release with a CPU int8 matmul (``torch._int_mm``).
INT8_MATMUL_SINCE = (2, 3)
#: CPU flags (Linux ``/proc/cpuinfo``) of int8 dot-product instructions.
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def _int8_counts_status() -> str:
    """Whether ``Chip(count_precision="int8")`` can run here, and whether it should pay off."""
    version = package_version(PACKAGES["torch"])
    if version is None:
        return ("no faster than fp32: PyTorch is not installed (pip install torch==2.13.0), "
                "so the int8 levels are multiplied in float32 (the same counts)")
    if _major_minor(version) < INT8_MATMUL_SINCE:
        return (f"no faster than fp32: PyTorch {version} predates its CPU int8 matmul (2.3; "
                f"pip install torch==2.13.0), so the int8 levels are multiplied in float32 "
                f"(the same counts)")
    flags = cpu_flags()
    found = [flag for flag in INT8_DOT_FLAGS if flag in flags]
    if found:
        return f"available (PyTorch {version}; int8 dot products: {', '.join(found)})"
    if not flags:
        return f"available (PyTorch {version}; CPU flags unknown)"
    return (f"available (PyTorch {version}), but this CPU has no int8 dot products "
            f"({', '.join(INT8_DOT_FLAGS)}): probably no faster than the fp32 default")


def _major_minor(version: str) -> tuple[int, ...]:
    """``(major, minor)`` of a version string such as "2.13.0+cpu" (shorter if it has fewer
    leading numbers)."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])


def cpu_flags() -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def _numba_cuda_status() -> str:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "simulator (NUMBA_ENABLE_CUDASIM=1): kernels run on the CPU"
    try:
        from numba import cuda

        return "available" if cuda.is_available() else "not available: no CUDA device/driver"
    except Exception as error:  # a broken CUDA toolkit must not break `info`
        return f"not available: {type(error).__name__}: {error}"


def _start_numba_threads() -> None:
    """Run one small compiled parallel kernel so Numba picks its threading layer."""
    import numpy as np

    from analogsim.kernels.mvm import epilogue_numba

    y = np.zeros((2, 2), dtype=np.float32)
    ones = np.ones(2, dtype=np.float32)
    epilogue_numba(y, None, ones, ones, ones * 0, 0.0, 0.0, np.inf, 1.0, np.uint64(0), y)


def format_report(report: dict[str, Any]) -> str:
    """The text ``analogsim info`` prints."""
    lines = [f"analogsim {report['analogsim']}",
             f"python     {report['python']}",
             f"platform   {report['platform']}",
             "packages:"]
    for label, version in report["packages"].items():
        lines.append(f"  {label:<14} {version or 'not installed'}")
    lines.append("backends:")
    for name, status in report["backends"].items():
        lines.append(f"  {name:<14} {status}")
    threads = report["threads"]
    lines.append("threads:")
    lines.append(f"  {'numba':<14} {threads['numba_threads']} of "
                 f"{threads['numba_threads_max']} (threading layer: "
                 f"{threads['numba_threading_layer']})")
    for pool in threads["blas"]:
        lines.append(f"  {'BLAS':<14} {pool['internal_api']} {pool['version']} "
                     f"(loaded by {pool['loaded_by']}): "
                     f"{pool['num_threads']} threads ({pool['threading_layer']}, "
                     f"{pool['architecture']})")
    if not threads["blas"]:
        lines.append(f"  {'BLAS':<14} unknown (install threadpoolctl to see it)")
    lines.append("idle threads (sleep instead of polling; see docs/architecture.md, Threads):")
    for name, state in threads["idle_threads"].items():
        lines.append(f"  {name} = {state}")
    return "\n".join(lines)
