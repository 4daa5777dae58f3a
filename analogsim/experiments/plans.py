"""From a validated config to the list of trials a command runs (and the seeds it uses).

Trial ids are stable and readable (``sweep-reram-forward-forward-chip1-programming2``), so a
rerun recognises the trials it has already finished.
"""

from __future__ import annotations

import itertools
from typing import Any

from analogsim.experiments.config import NOISE_AXES, Config
from analogsim.experiments.learning import EX_SITU
from analogsim.experiments.results import safe_id
from analogsim.experiments.runner import Trial

Plan = tuple[list[Trial], dict[str, Any]]


def plan(config: Config) -> Plan:
    """The trials of ``config``'s command and a record of its seeds."""
    planners = {"train": plan_train, "sweep": plan_sweep, "mortality": plan_mortality,
                "drift": plan_drift, "demo": plan_demo}
    return planners[config.command](config)


def _seeds(config: Config, chip_seeds: list[int]) -> dict[str, Any]:
    return {"training_seed": config.section("training")["seed"],
            "chip_seeds": sorted(set(chip_seeds)),
            "derivation": "chip seed as given; initial weights and learner stream from "
                          "SeedSequence([training_seed, chip seed])"}


def plan_train(config: Config) -> Plan:
    section = config.section("train")
    params = {"learner": section["learner"], "device": section["device"],
              "seed": section["chip_seed"]}
    trial_id = safe_id("train", params["learner"], params["device"], f"chip{params['seed']}")
    return [Trial(trial_id, "train", params)], _seeds(config, [params["seed"]])


def noise_points(section: dict[str, Any]) -> list[dict[str, float]]:
    """The noise-scale combinations of a sweep: one axis at a time around the nominal point
    (every scale 1), or the full grid; without duplicates, nominal first."""
    axes = {axis: section[axis] for axis in NOISE_AXES if section[axis]}
    nominal = dict.fromkeys(NOISE_AXES, 1.0)
    if section["grid"]:
        points = [dict(nominal, **dict(zip(axes, combo, strict=True)))
                  for combo in itertools.product(*axes.values())]
    else:
        points = [nominal] + [dict(nominal, **{axis: value})
                              for axis, values in axes.items() for value in values]
    unique: list[dict[str, float]] = []
    for point in points:
        if point not in unique:
            unique.append(point)
    return unique


def point_name(scales: dict[str, float]) -> str:
    changed = [f"{axis}{value:g}" for axis, value in scales.items() if value != 1.0]
    return "-".join(changed) or "nominal"


def plan_sweep(config: Config) -> Plan:
    section = config.section("sweep")
    trials = []
    for device, learner, scales, seed in itertools.product(
            section["devices"], section["learners"], noise_points(section), section["seeds"]):
        params = {"device": device, "learner": learner, "seed": seed, "scales": scales,
                  "drift_times": section["drift_times"]}
        trial_id = safe_id("sweep", device, learner, f"chip{seed}", point_name(scales))
        trials.append(Trial(trial_id, "sweep", params))
    return trials, _seeds(config, section["seeds"])


def plan_mortality(config: Config) -> Plan:
    section = config.section("mortality")
    sources = section["sources"] or section["chips"]
    trials = []
    for learner, source in itertools.product(section["learners"], sources):
        params = {"device": section["device"], "learner": learner, "seed": source,
                  "targets": [chip for chip in section["chips"] if chip != source],
                  "retrain_steps": section["retrain_steps"],
                  "check_every": section["check_every"],
                  "recover_within": section["recover_within"]}
        trial_id = safe_id("mortality", section["device"], learner, f"chip{source}")
        trials.append(Trial(trial_id, "mortality", params))
    return trials, _seeds(config, [*section["chips"], *sources])


def plan_drift(config: Config) -> Plan:
    section = config.section("drift")
    trials = []
    for learner, seed in itertools.product(section["learners"], section["seeds"]):
        modes = ["none"]
        if section["compensation"]:
            modes.append("compensated")
        if section["recalibration_period"] > 0 and learner not in EX_SITU:
            modes.append("recalibrated")
            if section["compensation"]:
                modes.append("recalibrated-compensated")
        for mode in modes:
            params = {"device": section["device"], "learner": learner, "seed": seed,
                      "mode": mode, "times": section["times"],
                      "recalibration_period": section["recalibration_period"],
                      "recalibration_steps": section["recalibration_steps"]}
            trial_id = safe_id("drift", section["device"], learner, f"chip{seed}", mode)
            trials.append(Trial(trial_id, "drift", params))
    return trials, _seeds(config, section["seeds"])


def plan_demo(config: Config) -> Plan:
    section = config.section("demo")
    seed = section["chip_seed"]
    targets = [seed + k for k in range(1, section["other_chips"] + 1)]
    common = {"device": section["device"], "seed": seed, "targets": targets,
              "times": section["times"], "retrain_steps": section["retrain_steps"],
              "check_every": section["check_every"],
              "recover_within": section["recover_within"]}
    trials = [
        Trial("demo-forward-forward", "demo",
              dict(common, learner="forward-forward",
                   epochs=config.section("training")["epochs"])),
        Trial("demo-digital-backprop", "demo",
              dict(common, learner="digital-backprop", epochs=section["backprop_epochs"])),
    ]
    return trials, _seeds(config, [seed, *targets])
