"""``analogsim demo --quick`` end to end: the table, demo-quick.h5 and demo-quick.png."""

from __future__ import annotations

import json

from analogsim.cli.main import main
from analogsim.experiments.demo import demo_config
from analogsim.experiments.results import load_results, run_attributes


def test_quick_demo_runs_end_to_end_and_writes_its_files(tmp_path, capsys):
    code = main(["demo", "--quick", "--out", str(tmp_path), "--workers", "0", "-q"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    for row in ("on the chip, right after training", "after 1 hour of drift",
                "after 1 year of drift", "same weights on 2 other chips", "mortality penalty",
                "those chips after 4 mini-batches in situ", "deployed ex-situ",
                "programmed onto the 2 other chips"):
        assert row in printed.out
    assert f"results: {tmp_path / 'demo-quick.h5'}" in printed.out
    assert f"figure:  {tmp_path / 'demo-quick.png'}" in printed.out
    assert (tmp_path / "demo-quick.png").stat().st_size > 20_000
    results = load_results(tmp_path / "demo-quick.h5")
    assert sorted(results) == ["demo-digital-backprop", "demo-forward-forward"]
    insitu = results["demo-forward-forward"]
    assert insitu.arrays["drift/accuracy"].shape == (4,)
    assert insitu.arrays["transfer/accuracy"].shape == (2,)
    assert "retrain/steps_to_recover" in insitu.arrays
    attrs = run_attributes(tmp_path / "demo-quick.h5")
    assert attrs["config_digest"] == demo_config(quick=True).digest()
    assert json.loads(attrs["seeds"])["chip_seeds"] == [0, 1, 2]


def test_the_full_demo_config_is_the_documented_one():
    config = demo_config()
    assert config.name == "demo"
    assert config.section("data")["name"] == "digits"
    assert config.section("demo")["other_chips"] == 5
    assert config.section("demo")["times"] == [3600.0, 86400.0, 2592000.0, 31536000.0]
