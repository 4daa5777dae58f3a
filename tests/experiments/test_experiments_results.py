"""HDF5 results: attributes, round trip, atomic trial files, refusal to mix configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from experiments_helpers import tiny_sweep

from analogsim import __version__
from analogsim.experiments.config import load_config
from analogsim.experiments.results import (
    ResultsMismatchError,
    ResultsStore,
    TrialResult,
    load_results,
    run_attributes,
    safe_id,
)


def _result(trial_id: str, accuracy: float = 0.5) -> TrialResult:
    return TrialResult(trial_id, {"kind": "sweep", "seed": 1}, {"test_accuracy": accuracy},
                       {"history/loss": np.array([2.0, 1.0]),
                        "drift/accuracy": np.array([0.5, 0.4])},
                       summary=f"{trial_id} done", seconds=1.5)


@pytest.fixture
def config(tmp_path):
    return load_config(tiny_sweep(tmp_path))


def test_trials_round_trip_with_the_run_attributes(tmp_path, config):
    store = ResultsStore(tmp_path / "run.h5", config, {"chip_seeds": [0, 1]})
    store.expected = {"a", "b"}
    store.write_trial(_result("a", 0.75))
    loaded = load_results(tmp_path / "run.h5")
    assert list(loaded) == ["a"]
    assert loaded["a"].metrics == {"test_accuracy": 0.75}
    assert loaded["a"].spec == {"kind": "sweep", "seed": 1}
    np.testing.assert_array_equal(loaded["a"].arrays["history/loss"], [2.0, 1.0])
    assert loaded["a"].summary == "a done" and loaded["a"].seconds == 1.5
    attrs = run_attributes(tmp_path / "run.h5")
    assert attrs["config"] == config.text
    assert attrs["config_digest"] == config.digest()
    assert json.loads(attrs["seeds"]) == {"chip_seeds": [0, 1]}
    assert attrs["analogsim_version"] == __version__
    assert attrs["git_commit"]  # a commit hash, or "unknown" outside a checkout
    assert attrs["complete"] == 0 and attrs["n_trials"] == 2


def test_the_sidecar_keeps_each_trial_and_goes_when_the_run_is_complete(tmp_path, config):
    store = ResultsStore(tmp_path / "run.h5", config, {})
    store.expected = {"a", "b"}
    store.write_trial(_result("a"))
    assert sorted(p.name for p in store.sidecar.iterdir()) == ["a.h5"]
    (tmp_path / "run.h5").unlink()  # the run file lost: the sidecar still has the trial
    assert list(ResultsStore(tmp_path / "run.h5", config, {}).finished()) == ["a"]
    store.write_trial(_result("b"))
    assert not store.sidecar.exists()
    assert sorted(load_results(tmp_path / "run.h5")) == ["a", "b"]
    assert run_attributes(tmp_path / "run.h5")["complete"] == 1
    resumed = ResultsStore(tmp_path / "run.h5", config, {})
    assert sorted(resumed.finished()) == ["a", "b"]


def test_a_leftover_temporary_file_is_not_a_finished_trial(tmp_path, config):
    store = ResultsStore(tmp_path / "run.h5", config, {})
    store.sidecar.mkdir()
    (store.sidecar / ".c.h5.tmp-999").write_bytes(b"half written")
    assert store.finished() == {}


def test_a_different_config_is_not_appended_to(tmp_path, config):
    store = ResultsStore(tmp_path / "run.h5", config, {})
    store.expected = {"a", "b"}
    store.write_trial(_result("a"))
    other = config.replace("training", epochs=3)
    with pytest.raises(ResultsMismatchError, match=r"run\.h5 holds results of a different "
                                                   r"config.*--overwrite"):
        ResultsStore(tmp_path / "run.h5", other, {})
    (tmp_path / "run.h5").unlink()
    with pytest.raises(ResultsMismatchError, match=r"a\.h5 holds results of a different"):
        ResultsStore(tmp_path / "run.h5", other, {})
    fresh = ResultsStore(tmp_path / "run.h5", other, {}, overwrite=True)
    assert fresh.finished() == {}


def test_artifacts_are_written_next_to_the_run_file(tmp_path, config):
    store = ResultsStore(tmp_path / "run.h5", config, {})
    result = _result("a")
    result.files = {"chip.h5": b"chip bytes"}
    store.write_trial(result)
    assert (tmp_path / "run-chip.h5").read_bytes() == b"chip bytes"


def test_safe_id_keeps_ids_usable_as_file_and_group_names():
    assert safe_id("sweep", "reram", "chip1", "programming2.5") == \
        "sweep-reram-chip1-programming2.5"
    assert safe_id("a/b c") == "a_b_c"


def test_trials_outside_the_plan_are_left_out_of_the_run_file(tmp_path, config):
    store = ResultsStore(tmp_path / "run.h5", config, {})
    store.write_trial(_result("old"))  # written when the plan was different
    store.expected = {"a"}
    store.write_trial(_result("a"))
    assert list(load_results(tmp_path / "run.h5")) == ["a"]
    assert run_attributes(tmp_path / "run.h5")["complete"] == 1
