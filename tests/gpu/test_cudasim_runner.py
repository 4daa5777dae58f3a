"""Runs the CUDA-simulator tests in a subprocess with ``NUMBA_ENABLE_CUDASIM=1``.

Numba reads ``NUMBA_ENABLE_CUDASIM`` once, when it is first imported, and by the time a test
module is collected the rest of the suite has imported it. Setting the variable in this
process would therefore come too late, and it would change ``numba.cuda`` for every later
test. Instead this test starts a fresh interpreter with the variable set, runs
``test_cuda_kernels_cudasim.py`` there and requires that its tests passed (not merely that
pytest exited 0, which an all-skipped run would also do). So ``python -m pytest`` and
``python -m pytest -m cudasim`` both run the simulator tests, isolated from the others; with
the variable already set (``NUMBA_ENABLE_CUDASIM=1 python -m pytest -m cudasim``) they run in
process and this test steps aside.

It runs the kernel cases (``test_cuda_kernels_cudasim.py``) and the whole chip on the
simulator's kernel set (``test_cuda_backend_cudasim.py``) in one interpreter, so the
simulated kernels are built once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SIMULATOR_TESTS = [Path(__file__).with_name(name) for name in
                   ("test_cuda_kernels_cudasim.py", "test_cuda_backend_cudasim.py")]
#: The simulator modules hold 27 + 13 tests; fewer passing means some were skipped or lost.
MINIMUM_PASSED = 40


@pytest.mark.cudasim
def test_cuda_kernels_pass_on_the_simulator():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        pytest.skip("the simulator tests run in this process (NUMBA_ENABLE_CUDASIM=1)")
    environment = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    command = [sys.executable, "-m", "pytest", *map(str, SIMULATOR_TESTS), "-m", "cudasim",
               "-q", "-p", "no:cacheprovider", "--no-header"]
    result = subprocess.run(command, env=environment, capture_output=True, text=True,
                            timeout=600, cwd=SIMULATOR_TESTS[0].parents[2], check=False)
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed is not None and int(passed.group(1)) >= MINIMUM_PASSED, report
