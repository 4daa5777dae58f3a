"""``analogsim demo``: mortal computation in two minutes, on the embedded digits data set.

Forward-Forward trains a network in situ on simulated ReRAM chip 0. The demo then measures,
on the test set: the chip right after training; the same chip after 1 hour, 1 day, 1 month
and 1 year of drift; the same weights transferred (read out, programmed) to 5 other chip
instances, the mortality penalty; those chips after a short in-situ retraining, and how many
mini-batches each needed to come back within 2 points; and, as the immortal reference, the same
network trained digitally by backprop and deployed ex-situ onto the chips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from analogsim.experiments.config import Config, validate
from analogsim.experiments.results import TrialResult
from analogsim.experiments.summary import nan_mean_std

DEMO_TOML = """\
command = "demo"
description = "Forward-Forward in situ on ReRAM: drift, mortality, retraining; backprop ex-situ"

[data]
name = "digits"

[network]
hidden = [256, 256]

[training]
epochs = 15
batch_size = 64
seed = 0

[demo]
device = "reram"
chip_seed = 0
other_chips = 5
times = [3600.0, 86400.0, 2592000.0, 31536000.0]
retrain_steps = 46
check_every = 2
recover_within = 0.02
backprop_epochs = 30

[learner_options.forward-forward]
predict_by = "readout"
"""

#: What --quick changes: a small network and few epochs, for tests and a first look.
QUICK = {"network": {"hidden": [64]}, "training": {"epochs": 2},
         "data": {"train_samples": 400, "test_samples": 120},
         "demo": {"other_chips": 2, "retrain_steps": 4, "backprop_epochs": 3}}

TIME_NAMES = {3600.0: "1 hour", 86400.0: "1 day", 2592000.0: "1 month",
              31536000.0: "1 year", 315360000.0: "10 years"}


def demo_config(quick: bool = False) -> Config:
    """The demo's built-in config (``quick``: the reduced one)."""
    import dataclasses
    import tomllib

    raw = tomllib.loads(DEMO_TOML)
    if quick:
        for section, values in QUICK.items():
            raw.setdefault(section, {}).update(values)
    config = validate(raw, "analogsim demo (built-in config)",
                      text=None if quick else DEMO_TOML)
    return dataclasses.replace(config, label="demo-quick" if quick else "demo")


def time_name(seconds: float) -> str:
    return TIME_NAMES.get(float(seconds), f"{seconds:g} s")


# ---------------------------------------------------------------------- table
def demo_table(results: dict[str, TrialResult], config: Config) -> str:
    """The table the demo prints."""
    data, network = config.section("data"), config.section("network")
    from analogsim.experiments.learning import config_dataset

    dataset = config_dataset(config.values)
    widths = "-".join(str(w) for w in [dataset.n_features, *network["hidden"]])
    device = config.section("demo")["device"]
    lines = [f"{data['name']} ({len(dataset.train)} train / {len(dataset.test)} test images), "
             f"network {widths}, simulated {device} chips; test accuracy:", ""]
    insitu = results.get("demo-forward-forward")
    if insitu:
        lines += _insitu_rows(insitu, config)
    exsitu = results.get("demo-digital-backprop")
    if exsitu:
        lines += ["", *_exsitu_rows(exsitu)]
    return "\n".join(lines)


def _row(text: str, value: str) -> str:
    return f"  {text:<46}{value}"


def _pct(value: float) -> str:
    return f"{100 * value:5.1f} %"


def _spread(values: np.ndarray) -> str:
    mean, std, _ = nan_mean_std(values)
    return (f"{_pct(mean)} ± {100 * std:.1f}  (min {100 * np.nanmin(values):.1f}, "
            f"max {100 * np.nanmax(values):.1f})")


def _drift_rows(result: TrialResult) -> list[str]:
    rows = []
    for seconds, accuracy in zip(result.arrays["drift/times"], result.arrays["drift/accuracy"],
                                 strict=True):
        rows.append(_row(f"after {time_name(seconds)} of drift", _pct(accuracy)))
    return rows


def _insitu_rows(result: TrialResult, config: Config) -> list[str]:
    spec, metrics, arrays = result.spec, result.metrics, result.arrays
    transferred = arrays["transfer/accuracy"]
    lines = [f"Forward-Forward, trained in situ on chip {spec['seed']} "
             f"({spec['epochs']} epochs, {metrics['train_seconds']:.0f} s)",
             _row("on the chip, right after training", _pct(metrics["test_accuracy"])),
             *_drift_rows(result),
             _row(f"same weights on {len(transferred)} other chips", _spread(transferred)),
             _row("  mortality penalty",
                  f"{100 * (np.mean(transferred) - metrics['test_accuracy']):+5.1f} points")]
    if "retrain/final_accuracy" in arrays:
        needed = arrays["retrain/steps_to_recover"]
        recovered = np.isfinite(needed)
        within = 100 * spec["recover_within"]
        batch = config.section("training")["batch_size"]
        steps = (f"after {np.mean(needed[recovered]):.1f} mini-batches on average (max "
                 f"{np.max(needed[recovered]):.0f})" if recovered.any() else "")
        lines += [_row(f"those chips after {spec['retrain_steps']} mini-batches in situ",
                       _spread(arrays["retrain/final_accuracy"])),
                  _row(f"  back within {within:g} points of chip {spec['seed']}",
                       f"{recovered.sum()}/{len(needed)} chips {steps}"),
                  _row("", f"(mini-batches of {batch} images, accuracy checked every "
                           f"{spec['check_every']})")]
    return lines


def _exsitu_rows(result: TrialResult) -> list[str]:
    spec, metrics, arrays = result.spec, result.metrics, result.arrays
    lines = [f"Digital backprop (PyTorch, {spec['epochs']} epochs), deployed ex-situ"]
    if "digital_accuracy" in metrics:
        lines.append(_row("in floating point, before deployment",
                          _pct(metrics["digital_accuracy"])))
    lines += [_row(f"programmed onto chip {spec['seed']}", _pct(metrics["test_accuracy"])),
              *_drift_rows(result),
              _row(f"programmed onto the {len(arrays['transfer/accuracy'])} other chips",
                   _spread(arrays["transfer/accuracy"]))]
    return lines


# ---------------------------------------------------------------------- figure
def demo_figure(results: dict[str, TrialResult], path: Path) -> Path:
    """Three panels: drift on chip 0, accuracy per chip, in-situ retraining curves."""
    figure = Figure(figsize=(14, 4.2))
    drift_axes, chips_axes, retrain_axes = figure.subplots(1, 3)
    names = {"demo-forward-forward": "Forward-Forward (in situ)",
             "demo-digital-backprop": "Backprop (ex-situ)"}
    for trial_id, name in names.items():
        if trial_id in results:
            result = results[trial_id]
            times = np.concatenate([[1.0], result.arrays["drift/times"]])
            accuracy = np.concatenate([[result.metrics["test_accuracy"]],
                                       result.arrays["drift/accuracy"]])
            drift_axes.plot(times, accuracy, marker="o", label=name)
    drift_axes.set_xscale("log")
    drift_axes.set_xticks([1.0, 3600, 86400, 2592000, 31536000],
                          ["0", "1 h", "1 d", "1 mo", "1 y"])
    drift_axes.set(xlabel="time after training", ylabel="test accuracy", ylim=(0, 1.02),
                   title="drift, on the chip trained on")
    drift_axes.legend(fontsize=8)
    _chips_panel(chips_axes, results)
    _retrain_panel(retrain_axes, results)
    low = _lowest(results)
    for axes in (drift_axes, chips_axes, retrain_axes):
        axes.grid(alpha=0.3)
        axes.set_ylim(low, 1.0)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def _lowest(results: dict[str, TrialResult]) -> float:
    """A common lower y limit: a tenth below the lowest accuracy shown, at least 0."""
    values = [r.metrics["test_accuracy"] for r in results.values()]
    for result in results.values():
        for name in ("drift/accuracy", "transfer/accuracy", "retrain/accuracy"):
            if name in result.arrays:
                values.extend(np.asarray(result.arrays[name]).ravel().tolist())
    finite = [v for v in values if np.isfinite(v)]
    return max(0.0, np.floor(10 * min(finite) - 0.5) / 10) if finite else 0.0


def _chips_panel(axes, results: dict[str, TrialResult]) -> None:
    bars: list[tuple[str, np.ndarray, list[int]]] = []
    insitu = results.get("demo-forward-forward")
    if insitu:
        chips = [insitu.spec["seed"], *insitu.spec["targets"]]
        own = insitu.metrics["test_accuracy"]
        bars.append(("FF, transferred", np.r_[own, insitu.arrays["transfer/accuracy"]], chips))
        if "retrain/final_accuracy" in insitu.arrays:
            bars.append(("FF, after retraining",
                         np.r_[own, insitu.arrays["retrain/final_accuracy"]], chips))
    exsitu = results.get("demo-digital-backprop")
    if exsitu:
        chips = [exsitu.spec["seed"], *exsitu.spec["targets"]]
        bars.append(("backprop, ex-situ", np.r_[exsitu.metrics["test_accuracy"],
                                                exsitu.arrays["transfer/accuracy"]], chips))
    width = 0.8 / max(1, len(bars))
    for k, (name, values, chips) in enumerate(bars):
        axes.bar(np.arange(len(chips)) + k * width, values, width=width, label=name)
    if bars:
        chips = bars[0][2]
        axes.set_xticks(np.arange(len(chips)) + 0.4 - width / 2,
                        [f"chip {c}" + ("\n(trained)" if i == 0 else "")
                         for i, c in enumerate(chips)], fontsize=8)
    axes.set(ylabel="test accuracy", ylim=(0, 1.02), title="the same weights on other chips")
    axes.legend(fontsize=8, loc="lower right")


def _retrain_panel(axes, results: dict[str, TrialResult]) -> None:
    insitu = results.get("demo-forward-forward")
    axes.set(xlabel="in-situ retraining (mini-batches)", ylabel="test accuracy",
             ylim=(0, 1.02), title="Forward-Forward retraining on the other chips")
    if not insitu or "retrain/steps" not in insitu.arrays:
        return
    steps, accuracy = insitu.arrays["retrain/steps"], insitu.arrays["retrain/accuracy"]
    for row, chip in enumerate(insitu.spec["targets"]):
        keep = np.isfinite(steps[row])
        axes.plot(steps[row][keep], accuracy[row][keep], marker="o", markersize=3,
                  label=f"chip {chip}")
    own = insitu.metrics["test_accuracy"]
    axes.axhline(own, color="k", linewidth=1, label="chip 0 after training")
    axes.axhline(own - insitu.spec["recover_within"], color="k", linestyle=":", linewidth=1,
                 label="recovery threshold")
    axes.legend(fontsize=7, loc="lower right")
