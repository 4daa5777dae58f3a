"""The idle-thread defaults set on import (:mod:`analogsim._idle_threads`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from analogsim import _idle_threads
from analogsim._idle_threads import IDLE_SETTINGS, idle_thread_report, set_idle_thread_defaults

_PRINT_SETTINGS = ("import os, json, analogsim; print(json.dumps({name: os.environ.get(name) "
                   "for name in ('OMP_WAIT_POLICY', 'OPENBLAS_THREAD_TIMEOUT')}))")


def _python(code: str, **environment: str | None) -> str:
    env = dict(os.environ)
    for name, value in environment.items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout


def test_import_sets_both_variables_when_unset():
    settings = json.loads(_python(_PRINT_SETTINGS, OMP_WAIT_POLICY=None,
                                  OPENBLAS_THREAD_TIMEOUT=None))
    assert settings == IDLE_SETTINGS


def test_import_keeps_values_of_the_users_own():
    settings = json.loads(_python(_PRINT_SETTINGS, OMP_WAIT_POLICY="ACTIVE",
                                  OPENBLAS_THREAD_TIMEOUT="28"))
    assert settings == {"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_THREAD_TIMEOUT": "28"}


def test_report_says_who_set_each_and_whether_in_time(monkeypatch):
    monkeypatch.setattr(_idle_threads, "_at_import", {})
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "20")
    set_idle_thread_defaults()  # NumPy is loaded already in this process
    report = idle_thread_report()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert report["OPENBLAS_THREAD_TIMEOUT"] == "20 (yours)"
    assert report["OMP_WAIT_POLICY"].startswith("PASSIVE (set by analogsim")

    monkeypatch.setattr(_idle_threads, "_at_import", {})
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT")
    set_idle_thread_defaults()
    late = idle_thread_report()["OPENBLAS_THREAD_TIMEOUT"]
    assert "too late for NumPy's OpenBLAS" in late
    assert "export OPENBLAS_THREAD_TIMEOUT=16 before starting Python" in late


_IDLE_CPU = """
import analogsim, resource, time
import numpy as np
from threadpoolctl import threadpool_info
threads = max([pool["num_threads"] for pool in threadpool_info()
               if pool.get("internal_api") == "openblas"] or [0])
x = np.ones((512, 1024), dtype=np.float32)
for _ in range(3):
    x.T @ x
usage = resource.getrusage(resource.RUSAGE_SELF)
time.sleep(0.2)
after = resource.getrusage(resource.RUSAGE_SELF)
print(threads, after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime)
"""


def test_openblas_threads_sleep_after_a_matmul_when_analogsim_comes_first():
    # With OpenBLAS's default timeout its idle threads poll for about 0.1 s after a call:
    # measured 48 ms of CPU time in a 50 ms sleep on the 2-core CI machine.
    threads, cpu_seconds = _python(_IDLE_CPU, OPENBLAS_THREAD_TIMEOUT=None).split()
    if int(threads) < 2:
        pytest.skip("NumPy's BLAS is not a multi-threaded OpenBLAS here")
    assert float(cpu_seconds) < 0.02  # the main thread sleeps 0.2 s; the workers must too
