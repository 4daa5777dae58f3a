"""Idle-thread settings that stop Numba's and OpenBLAS's thread pools fighting for cores.

A tile's forward and update alternate a BLAS matmul (OpenBLAS's threads) and a compiled
Numba kernel (Numba's OpenMP threads). By default the idle threads of each pool keep
polling for work after a call: OpenBLAS's for ``2**28`` cycles (about 0.1 s: measured 48 ms
of CPU time while the main thread slept 50 ms after a matmul), libgomp's for a few hundred
thousand polls. While they poll they share the cores with the working threads of the other
pool. Measured on 2 cores at batch 256 and 1024x1024 (``docs/architecture.md``,
"Threads"): an update took 27.6 ms with both defaults, 16.4 ms with libgomp's threads
sleeping and 13.3 ms with both pools sleeping; a forward 8.0 ms against 3.6 ms.

On import, analogsim therefore sets two environment variables, unless they are set already
(a value of your own always wins):

``OMP_WAIT_POLICY=PASSIVE``
    Idle OpenMP threads sleep. libgomp reads it when it is loaded, which Numba does at its
    first parallel kernel: in effect unless a parallel Numba kernel ran before analogsim was
    imported. OpenMP libraries loaded later (PyTorch's) read it too.
``OPENBLAS_THREAD_TIMEOUT=16``
    Idle OpenBLAS threads poll for ``2**16`` cycles (tens of microseconds), then sleep.
    OpenBLAS reads it when it is loaded, that is when NumPy is first imported: in effect for
    NumPy only when analogsim is imported before NumPy (as the ``analogsim`` command does),
    and for any OpenBLAS loaded later (SciPy's). Otherwise export it before starting Python.

:func:`idle_thread_report` says which of the two are in effect (``analogsim info``).
"""

from __future__ import annotations

import os
import sys

#: The variables analogsim sets when they are not set, and their values.
IDLE_SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "16"}

#: Module whose presence means Numba's OpenMP pool has been started (libgomp loaded).
_NUMBA_OMP_POOL = "numba.np.ufunc.omppool"

_at_import: dict[str, dict[str, object]] = {}


def set_idle_thread_defaults() -> None:
    """Set each variable of :data:`IDLE_SETTINGS` that is not set, and record whether the
    library that reads it was already loaded (then the value does not reach it)."""
    loaded_before = {"OMP_WAIT_POLICY": _NUMBA_OMP_POOL in sys.modules,
                     "OPENBLAS_THREAD_TIMEOUT": "numpy" in sys.modules}
    for name, value in IDLE_SETTINGS.items():
        ours = name not in os.environ
        if ours:
            os.environ[name] = value
        _at_import.setdefault(name, {"value": os.environ[name], "set_by_analogsim": ours,
                                     "reader_loaded_before": loaded_before[name]})


def idle_thread_report() -> dict[str, str]:
    """For each variable: its value, and whether analogsim set it in time for Numba's pool
    (``OMP_WAIT_POLICY``) or NumPy's OpenBLAS (``OPENBLAS_THREAD_TIMEOUT``)."""
    readers = {"OMP_WAIT_POLICY": "Numba's OpenMP threads",
               "OPENBLAS_THREAD_TIMEOUT": "NumPy's OpenBLAS"}
    report = {}
    for name, state in _at_import.items():
        if not state["set_by_analogsim"]:
            report[name] = f"{state['value']} (yours)"
        elif state["reader_loaded_before"]:
            report[name] = (f"{state['value']} (set by analogsim, too late for "
                            f"{readers[name]}, loaded before analogsim was imported: export "
                            f"{name}={state['value']} before starting Python)")
        else:
            report[name] = f"{state['value']} (set by analogsim, seen by {readers[name]})"
    return report
