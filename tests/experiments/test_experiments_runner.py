"""The runner: trials in this process, in local worker processes, on Ray; resume; failures."""

from __future__ import annotations

import argparse

import pytest
from experiments_helpers import ReadoutDouble, tiny_sweep

import analogsim.learners
from analogsim.experiments.command import run_config
from analogsim.experiments.config import load_config
from analogsim.experiments.plans import plan
from analogsim.experiments.results import load_results, run_attributes


def _args(out, workers=0, ray=None) -> argparse.Namespace:
    return argparse.Namespace(out=str(out), workers=workers, ray=ray, threads=1, quiet=False,
                              overwrite=False)


@pytest.fixture
def double(monkeypatch):
    """Every learner name resolves to the test double (in this process only)."""
    monkeypatch.setattr(analogsim.learners, "ForwardForward", ReadoutDouble, raising=False)
    return ReadoutDouble


def test_in_process_run_writes_every_trial_and_a_rerun_skips_them(tmp_path, double, capsys):
    config = load_config(tiny_sweep(tmp_path))
    trials, _ = plan(config)
    outcome, path = run_config(config, _args(tmp_path))
    assert outcome.failures == {} and outcome.skipped == 0
    stored = load_results(path)
    assert sorted(stored) == sorted(t.trial_id for t in trials)
    assert all(0.0 <= r.metrics["test_accuracy"] <= 1.0 for r in stored.values())
    assert run_attributes(path)["complete"] == 1
    capsys.readouterr()
    again, _ = run_config(config, _args(tmp_path))
    assert again.skipped == len(trials)
    assert "6 of 6 trials already finished, skipped" in capsys.readouterr().err
    assert {k: r.seconds for k, r in load_results(path).items()} == \
        {k: r.seconds for k, r in stored.items()}


def test_a_failing_trial_is_reported_and_the_others_are_kept(tmp_path, monkeypatch, capsys):
    class Flaky(ReadoutDouble):
        def __init__(self, **options):
            super().__init__(**options)
            self.fail = Flaky.failing

    Flaky.failing = True
    monkeypatch.setattr(analogsim.learners, "ForwardForward", Flaky, raising=False)
    config = load_config(tiny_sweep(tmp_path, seeds="[0]"))
    outcome, path = run_config(config, _args(tmp_path))
    assert len(outcome.failures) == 3
    assert "the test double was told to fail" in capsys.readouterr().err
    assert not path.with_name(path.name + ".trials").exists() or load_results(path) == {}
    Flaky.failing = False
    retried, _ = run_config(config, _args(tmp_path))
    assert retried.failures == {} and len(load_results(path)) == 3


def test_worker_processes_give_the_same_results_as_one_process(tmp_path):
    config = load_config(tiny_sweep(tmp_path, seeds="[0]"))
    inline, _ = run_config(config, _args(tmp_path / "inline", workers=0))
    pooled, path = run_config(config, _args(tmp_path / "pool", workers=2))
    assert pooled.failures == {}
    assert {k: r.metrics for k, r in load_results(path).items()} == \
        {k: r.metrics for k, r in inline.results.items()}


@pytest.mark.slow  # starting Ray takes 15-20 s on a loaded 2-core machine
def test_a_small_sweep_through_a_local_ray_instance(tmp_path):
    pytest.importorskip("ray")
    config = load_config(tiny_sweep(tmp_path, seeds="[0]"))
    inline, _ = run_config(config, _args(tmp_path / "inline", workers=0))
    outcome, path = run_config(config, _args(tmp_path / "ray", workers=2, ray="local"))
    assert outcome.failures == {}
    assert {k: r.metrics for k, r in load_results(path).items()} == \
        {k: r.metrics for k, r in inline.results.items()}
    assert run_attributes(path)["complete"] == 1
