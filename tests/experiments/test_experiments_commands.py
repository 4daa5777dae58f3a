"""The commands end to end on tiny configs (in this process), and how trials are planned."""

from __future__ import annotations

import numpy as np
import pytest
from experiments_helpers import TINY_COMMON, tiny_sweep, write_config

from analogsim import Chip
from analogsim.cli.main import main
from analogsim.experiments.config import load_config
from analogsim.experiments.plans import noise_points, plan
from analogsim.experiments.results import load_results
from analogsim.experiments.timeline import recalibration_times

RUN = ["--workers", "0", "--threads", "1", "-q"]


def test_noise_points_one_axis_at_a_time_or_the_grid():
    section = {"programming": [0.0, 2.0], "read": [1.0, 3.0], "dtod": [], "update": [],
               "grid": False}
    points = noise_points(section)
    assert points[0] == {"programming": 1.0, "read": 1.0, "dtod": 1.0, "update": 1.0}
    assert [(p["programming"], p["read"]) for p in points] == [(1, 1), (0, 1), (2, 1), (1, 3)]
    grid = noise_points(dict(section, grid=True))
    assert len(grid) == 4 and {"programming": 2.0, "read": 3.0, "dtod": 1.0,
                               "update": 1.0} in grid


def test_plans_name_every_trial_once(tmp_path):
    trials, seeds = plan(load_config(tiny_sweep(tmp_path)))
    assert len(trials) == 6 and len({t.trial_id for t in trials}) == 6
    assert "sweep-reram-forward-forward-chip1-programming2" in {t.trial_id for t in trials}
    assert seeds["chip_seeds"] == [0, 1]
    mortality = write_config(tmp_path, "m", "mortality",
                             '[mortality]\nlearners = ["forward-forward"]\nchips = [3, 4, 5]\n')
    trials, _ = plan(load_config(mortality))
    assert [t.params["targets"] for t in trials] == [[4, 5], [3, 5], [3, 4]]


def test_recalibration_schedule():
    assert recalibration_times(10.0, 35.0) == [10.0, 20.0, 30.0]
    assert recalibration_times(0.0, 35.0) == []


def test_sweep_writes_one_figure_per_swept_axis(tmp_path, capsys):
    config = tiny_sweep(tmp_path, seeds="[0]")
    assert main(["sweep", str(config), "--out", str(tmp_path), *RUN]) == 0
    printed = capsys.readouterr().out
    assert "programming" in printed and "drift time" in printed
    assert (tmp_path / "tiny-sweep-programming.png").stat().st_size > 10_000
    assert (tmp_path / "tiny-sweep-drift-time.png").exists()
    stored = load_results(tmp_path / "tiny-sweep.h5")
    nominal = stored["sweep-reram-forward-forward-chip0-nominal"]
    assert nominal.arrays["drift/accuracy"].shape == (1,)
    assert len(nominal.arrays["history/loss"]) == 1


def test_train_with_flags_saves_the_chip_and_the_history(tmp_path, capsys):
    code = main(["train", "--learner", "forward-forward", "--device", "pcm", "--hidden", "16",
                 "--epochs", "2", "--chip-seed", "3", "--out", str(tmp_path), *RUN])
    assert code == 0
    result = load_results(tmp_path / "train-forward-forward-pcm.h5")[
        "train-forward-forward-pcm-chip3"]
    np.testing.assert_array_equal(result.arrays["history/epoch"], [1, 2])
    chip = Chip.load(tmp_path / "train-forward-forward-pcm-chip.h5")
    assert chip.seed == 3 and list(chip.tiles) == ["net.0"]
    assert (tmp_path / "train-forward-forward-pcm-history.png").exists()
    assert "test accuracy" in capsys.readouterr().out


def test_mortality_gives_the_transfer_matrix_and_the_retraining_cost(tmp_path, capsys):
    config = write_config(tmp_path, "mort", "mortality", """
[mortality]
learners = ["forward-forward"]
chips = [0, 1, 2]
sources = [0]
retrain_steps = 2
check_every = 1
recover_within = 1.0
""")
    assert main(["mortality", str(config), "--out", str(tmp_path), *RUN]) == 0
    result = load_results(tmp_path / "mort.h5")["mortality-reram-forward-forward-chip0"]
    np.testing.assert_array_equal(result.arrays["transfer/targets"], [1, 2])
    # within 100 points of the source: recovered at once, no retraining step needed
    np.testing.assert_array_equal(result.arrays["retrain/steps_to_recover"], [0.0, 0.0])
    assert (tmp_path / "mort-transfer.png").exists()
    assert "Forward-Forward" in capsys.readouterr().out


def test_drift_with_compensation_and_recalibration(tmp_path):
    config = write_config(tmp_path, "drifting", "drift", """
[drift]
learners = ["forward-forward"]
seeds = [0]
times = [1.0, 1000.0, 1e6]
recalibration_period = 5e5
recalibration_steps = 1
""")
    assert main(["drift", str(config), "--out", str(tmp_path), *RUN]) == 0
    stored = load_results(tmp_path / "drifting.h5")
    modes = ("compensated", "none", "recalibrated", "recalibrated-compensated")
    assert sorted(stored) == [f"drift-reram-forward-forward-chip0-{mode}" for mode in modes]
    assert all(r.arrays["drift/accuracy"].shape == (3,) for r in stored.values())
    # the same chip instance and training seeds: identical until the periphery differs
    none, recalibrated = (stored[f"drift-reram-forward-forward-chip0-{mode}"]
                          for mode in ("none", "recalibrated"))
    assert none.metrics["test_accuracy"] == recalibrated.metrics["test_accuracy"]
    assert none.arrays["drift/accuracy"][0] == recalibrated.arrays["drift/accuracy"][0]
    # compensated with and without recalibration: identical until the first recalibration
    compensated, both = (stored[f"drift-reram-forward-forward-chip0-{mode}"]
                         for mode in ("compensated", "recalibrated-compensated"))
    np.testing.assert_array_equal(compensated.arrays["drift/accuracy"][:2],
                                  both.arrays["drift/accuracy"][:2])
    assert (tmp_path / "drifting-drift.png").exists()


def test_a_different_config_is_refused_by_the_command(tmp_path, capsys):
    config = tiny_sweep(tmp_path, seeds="[0]", extra='update = [2.0]')
    assert main(["sweep", str(config), "--out", str(tmp_path), *RUN]) == 0
    before = load_results(tmp_path / "tiny-sweep.h5")
    config.write_text(config.read_text().replace("update = [2.0]", "update = [3.0]"))
    capsys.readouterr()
    assert main(["sweep", str(config), "--out", str(tmp_path), *RUN]) == 2
    assert "holds results of a different config" in capsys.readouterr().err
    assert sorted(load_results(tmp_path / "tiny-sweep.h5")) == sorted(before)


@pytest.mark.parametrize("option", ["--workers", "--threads"])
def test_bad_numbers_of_workers_are_rejected(option, capsys):
    with pytest.raises(SystemExit, match="2"):
        main(["sweep", "x.toml", option, "-1"])
    assert "must be >=" in capsys.readouterr().err


def test_cuda_backend_without_a_gpu_fails_before_any_work(tmp_path, capsys):
    from analogsim.backends import cuda_unavailable_reason

    if cuda_unavailable_reason() is None:
        pytest.skip("a usable GPU is present")
    common = TINY_COMMON.replace("[training]", '[training]\nbackend = "cuda"')
    config = write_config(tmp_path, "on-gpu", "train", "", common=common)
    assert main(["train", str(config), "--out", str(tmp_path), *RUN]) == 2
    assert "training.backend = 'cuda' needs an NVIDIA GPU" in capsys.readouterr().err
    assert not (tmp_path / "on-gpu.h5").exists()


@pytest.mark.filterwarnings("ignore:PyTorch:RuntimeWarning")  # without it: float32, no faster
def test_int8_count_precision_reaches_the_trained_chips(tmp_path):
    from analogsim.experiments.trials import chip_options

    config = write_config(tmp_path, "fp32", "train", "")
    assert chip_options(load_config(config).values)["count_precision"] is None
    common = TINY_COMMON.replace("[training]", '[training]\ncount_precision = "int8"')
    config = write_config(tmp_path, "int8", "train", "", common=common)
    values = load_config(config).values
    assert chip_options(values) == {"backend": "cpu", "count_precision": "int8"}
    assert main(["train", str(config), "--out", str(tmp_path), *RUN]) == 0
    assert (tmp_path / "int8.h5").exists()
