"""A run killed mid-way loses no finished trial, and a rerun resumes, skipping them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import h5py
import pytest
from experiments_helpers import write_config

from analogsim.experiments.results import load_results, run_attributes

SWEEP = """
[sweep]
devices = ["reram"]
learners = ["forward-forward"]
seeds = [0, 1]
programming = [0.5, 2.0]
"""
COMMON = """
[data]
name = "digits"
test_samples = 100

[network]
hidden = [32]

[training]
epochs = 1
"""


def _command(config, out, workers) -> list[str]:
    return [sys.executable, "-m", "analogsim.cli.main", "sweep", str(config), "--out",
            str(out), "--workers", str(workers), "--threads", "1"]


def _trials_in(path) -> int:
    try:
        with h5py.File(path, "r") as handle:
            return len(handle["trials"])
    except (OSError, KeyError):
        return 0


@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)],
                         ids=["in-process", "worker-process"])
def test_a_killed_run_keeps_its_finished_trials_and_a_rerun_resumes(tmp_path, workers):
    config = write_config(tmp_path, "killed", "sweep", SWEEP, common=COMMON)
    out = tmp_path / "out"
    run_file = out / "killed.h5"
    process = subprocess.Popen(_command(config, out, workers), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _trials_in(run_file) == 0:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no trial finished within 120 s"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the run and its worker process, at once
        process.wait()
        process.stderr.close()
    before = load_results(run_file)
    assert 1 <= len(before) < 6, "the kill should land mid-way through the six trials"
    assert run_attributes(run_file)["complete"] == 0

    rerun = subprocess.run(_command(config, out, workers), capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    # Trials finished after the last merge into the run file wait in the sidecar folder, so
    # the rerun may skip more than the run file held at the kill, never fewer.
    skipped = re.search(r"(\d+) of 6 trials already finished, skipped", rerun.stderr)
    assert skipped is not None, rerun.stderr
    assert len(before) <= int(skipped.group(1)) < 6
    after = load_results(run_file)
    assert len(after) == 6 and run_attributes(run_file)["complete"] == 1
    for trial_id, result in before.items():  # kept as they were, not run again
        assert after[trial_id].seconds == result.seconds
        assert after[trial_id].metrics == result.metrics
    assert not (out / "killed.h5.trials").exists()
