"""What one trial does, for each kind of experiment.

A trial function takes the trial's ``params``, the config ``values`` and a progress
:class:`~analogsim.experiments.progress.Reporter`, and returns a
:class:`~analogsim.experiments.results.TrialResult`. Trials are independent: each builds its
own chips from seeds, so any worker (a local process or a Ray task) can run any trial.

Seeds: the chip trained on has the trial's chip seed; the initial weights and the learner's
stream come from ``trial_seed(training.seed, chip seed)``, so replicates over chip seeds differ
in the instance and in the training run, and the same trial always gives the same result.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from analogsim.chip import Chip
from analogsim.datasets import Dataset
from analogsim.experiments.learning import (
    EX_SITU,
    LABELS,
    Trained,
    compensating_periphery,
    config_dataset,
    device_model,
    evaluate,
    history_arrays,
    make_network,
    retrain,
    train,
    trial_seed,
)
from analogsim.experiments.progress import Reporter
from analogsim.experiments.results import TrialResult
from analogsim.network import Network

Values = dict[str, Any]


def run_trial(trial: Any, values: Values, report: Reporter) -> TrialResult:
    """Run ``trial`` (a :class:`~analogsim.experiments.runner.Trial`) by its kind."""
    from analogsim.experiments.timeline import demo_trial, drift_trial

    kinds: dict[str, Callable[[dict, Values, Reporter], TrialResult]] = {
        "train": train_trial,
        "sweep": sweep_trial,
        "mortality": mortality_trial,
        "drift": drift_trial,
        "demo": demo_trial,
    }
    result = kinds[trial.kind](trial.params, values, report)
    result.trial_id = trial.trial_id
    result.spec = {"kind": trial.kind, **trial.params}
    return result


# ---------------------------------------------------------------------- shared steps
def train_on_chip(params: dict, values: Values, report: Reporter, *,
                  scales: dict[str, float] | None = None, epochs: int | None = None,
                  compensation: bool = False) -> tuple[Dataset, Chip, Trained]:
    """Build the chip ``params['device']``/``params['seed']`` and train on it.

    ``compensation``: the chip's periphery compensates drift globally (the reference is
    recorded after training, by ``fit`` in situ or by ``program`` ex-situ).
    """
    data = config_dataset(values)
    model = device_model(params["device"], scales)
    periphery = compensating_periphery(model) if compensation else None
    chip = Chip(model, seed=params["seed"], periphery=periphery, **chip_options(values))
    seed = trial_seed(values["training"]["seed"], params["seed"])
    net = make_network(chip, data, values, seed, params["learner"])
    epochs = values["training"]["epochs"] if epochs is None else epochs
    report.stage(f"training {params['learner']}", epochs)
    trained = train(params["learner"], net, data.train, values, seed, report.advance, epochs)
    return data, chip, trained


def chip_options(values: Values) -> dict[str, Any]:
    """The ``Chip`` keywords of the ``[training]`` section: backend and count precision."""
    training = values["training"]
    precision = training.get("count_precision", "fp32")  # absent in configs of older versions
    return {"backend": training["backend"],
            "count_precision": None if precision == "fp32" else precision}


def accuracy_over_time(trained: Trained, net: Network, data: Dataset, times: list[float],
                       report: Reporter) -> np.ndarray:
    """Test accuracy at ``times`` seconds after now (ascending)."""
    chip, start, accuracy = net.chip, net.chip.time, []
    report.stage("drift", len(times))
    for seconds in times:
        chip.advance(max(0.0, start + seconds - chip.time))
        accuracy.append(evaluate(trained, net, data.test))
        report.advance()
    return np.array(accuracy)


def transfer_and_retrain(trained: Trained, data: Dataset, values: Values, params: dict,
                         source_accuracy: float, report: Reporter) -> dict[str, np.ndarray]:
    """Weights to each chip of ``params['targets']``, then in-situ retraining on each.

    In situ: ``net.transfer_to`` (read out here, programmed there), then ``retrain_steps``
    mini-batches of in-situ retraining; the recovery cost is the first check within
    ``recover_within`` of the source accuracy. Ex-situ: the digital weights are
    deployed on each chip; nothing to retrain (NaN steps).
    """
    device, targets = params["device"], params["targets"]
    chips = [Chip(device_model(device), seed=seed, **chip_options(values)) for seed in targets]
    if params["learner"] in EX_SITU:
        nets = []
        for chip in chips:
            nets.append(make_network(chip, data, values, trial_seed(0, chip.seed),
                                     params["learner"]))
            trained.learner.deploy(nets[-1])
    else:
        nets = [trained.net.transfer_to(chip) for chip in chips]
    report.stage("transfer", len(nets))
    transferred = []
    for net in nets:
        transferred.append(evaluate(trained, net, data.test))
        report.advance()
    arrays = {"transfer/targets": np.array(targets),
              "transfer/accuracy": np.array(transferred)}
    if params["learner"] not in EX_SITU and params["retrain_steps"] > 0:
        arrays.update(_retrain_all(trained, nets, data, values, params, source_accuracy,
                                   report))
    return arrays


def _retrain_all(trained: Trained, nets: list[Network], data: Dataset, values: Values,
                 params: dict, source_accuracy: float, report: Reporter
                 ) -> dict[str, np.ndarray]:
    target = source_accuracy - params["recover_within"]
    report.stage("retraining", len(nets) * params["retrain_steps"])
    curves, recovered = [], []
    for net in nets:
        steps, accuracy, needed = retrain(
            trained, net, data, values, target=target, max_steps=params["retrain_steps"],
            check_every=params["check_every"],
            seed=trial_seed(values["training"]["seed"], params["seed"], net.chip.seed, 1),
            advance=report.advance)
        curves.append((steps, accuracy))
        recovered.append(needed)
    width = max(len(steps) for steps, _ in curves)
    steps_table = np.full((len(curves), width), np.nan)
    accuracy_table = np.full((len(curves), width), np.nan)
    for row, (steps, accuracy) in enumerate(curves):
        steps_table[row, :len(steps)] = steps
        accuracy_table[row, :len(accuracy)] = accuracy
    final = [accuracy[-1] for _, accuracy in curves]
    return {"retrain/steps": steps_table, "retrain/accuracy": accuracy_table,
            "retrain/steps_to_recover": np.array(recovered),
            "retrain/final_accuracy": np.array(final)}


def network_arrays(net: Network) -> dict[str, np.ndarray]:
    """The digital parts of ``net`` (the chip file holds the analog ones)."""
    arrays = {"network/widths": np.array(net.widths)}
    for index, layer in enumerate(net.layers):
        arrays[f"network/bias_{index}"] = layer.bias
    if net.readout is not None:
        arrays["network/readout_weight"] = net.readout.weight
        arrays["network/readout_bias"] = net.readout.bias
    return arrays


def chip_bytes(chip: Chip) -> bytes:
    """The chip file (``Chip.save``) as bytes, to send back from a worker."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "chip.h5"
        chip.save(path)
        return path.read_bytes()


def label(params: dict) -> str:
    return f"{LABELS[params['learner']]} on {params['device']} chip {params['seed']}"


# ---------------------------------------------------------------------- train
def train_trial(params: dict, values: Values, report: Reporter) -> TrialResult:
    """Train one learner on one chip; keep the history, the network and the chip file."""
    data, chip, trained = train_on_chip(params, values, report)
    accuracy = evaluate(trained, trained.net, data.test)
    history = trained.history
    metrics = {"test_accuracy": accuracy, "train_accuracy": history[-1].train_accuracy,
               "train_seconds": trained.seconds}
    arrays = {**history_arrays(history), **network_arrays(trained.net)}
    summary = (f"{label(params)}: test accuracy {accuracy:.3f} after {len(history)} epochs "
               f"({trained.seconds:.0f} s)")
    return TrialResult("", {}, metrics, arrays, summary, files={"chip.h5": chip_bytes(chip)})


# ---------------------------------------------------------------------- sweep
def sweep_trial(params: dict, values: Values, report: Reporter) -> TrialResult:
    """Train on a chip whose noise groups are scaled; evaluate now and after drift."""
    scales = params["scales"]
    data, _, trained = train_on_chip(params, values, report,
                                     scales={k: v for k, v in scales.items() if v != 1.0})
    accuracy = evaluate(trained, trained.net, data.test)
    metrics = {"test_accuracy": accuracy, "train_accuracy": trained.history[-1].train_accuracy}
    arrays = history_arrays(trained.history)
    times = params["drift_times"]
    if times:
        arrays["drift/times"] = np.array(times)
        arrays["drift/accuracy"] = accuracy_over_time(trained, trained.net, data, times,
                                                      report)
    changed = ", ".join(f"{k} x{v:g}" for k, v in scales.items() if v != 1.0) or "nominal"
    summary = f"{label(params)}, {changed}: test accuracy {accuracy:.3f}"
    return TrialResult("", {}, metrics, arrays, summary)


# ---------------------------------------------------------------------- mortality
def mortality_trial(params: dict, values: Values, report: Reporter) -> TrialResult:
    """Train on chip ``seed``; evaluate on every target chip; retrain there in situ."""
    data, _, trained = train_on_chip(params, values, report)
    source = evaluate(trained, trained.net, data.test)
    arrays = {**history_arrays(trained.history),
              **transfer_and_retrain(trained, data, values, params, source, report)}
    transferred = arrays["transfer/accuracy"]
    metrics = {"source_accuracy": source, "transfer_mean": float(np.mean(transferred)),
               "transfer_std": float(np.std(transferred)),
               "penalty": source - float(np.mean(transferred))}
    summary = (f"{label(params)}: {source:.3f} here, {np.mean(transferred):.3f} "
               f"± {np.std(transferred):.3f} on {len(transferred)} other chips")
    if "retrain/steps_to_recover" in arrays:
        needed = arrays["retrain/steps_to_recover"]
        metrics["recovered_fraction"] = float(np.mean(np.isfinite(needed)))
        metrics["steps_to_recover_mean"] = _finite_mean(needed)
        summary += f", recovered in {metrics['steps_to_recover_mean']:.0f} steps"
    return TrialResult("", {}, metrics, arrays, summary)


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan
