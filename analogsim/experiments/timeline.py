"""Trials that follow a chip through time: the drift experiment and the demo.

Drift modes (one trial each, on the same chip instance and training seeds):

- ``none``: the default periphery; conductances drift, nothing compensates;
- ``compensated``: the chip's periphery has ``Periphery(drift_compensation=True)``; the
  reference is recorded right after training (``tile.calibrate_drift()``; ``fit`` in situ and
  ``program`` ex-situ do it too) and every output is scaled by reference / total conductance;
- ``recalibrated``: the default periphery, and every ``recalibration_period`` seconds the
  forward-only learner runs ``recalibration_steps`` mini-batches on the chip, in situ. At a
  time that is both an evaluation and a recalibration time, the accuracy is measured first
  (the worst case of the period).
- ``recalibrated-compensated``: both. Each recalibration ends with a new compensation
  reference (``Learner.fit`` records it), so the devices it rewrote, whose drift starts
  over, and the ones it did not touch are measured against the state it left.

The compensated chip is compensated while it learns too, as a chip with that periphery would
be; it is trained with the same seeds, so the modes differ by the periphery alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analogsim.experiments.learning import (
    EX_SITU,
    evaluate,
    history_arrays,
    train_steps,
    trial_seed,
)
from analogsim.experiments.progress import Reporter
from analogsim.experiments.results import TrialResult
from analogsim.experiments.trials import (
    accuracy_over_time,
    label,
    train_on_chip,
    transfer_and_retrain,
)

Values = dict[str, Any]
DRIFT_MODES = ("none", "compensated", "recalibrated", "recalibrated-compensated")
COMPENSATED_MODES = ("compensated", "recalibrated-compensated")


def recalibration_times(period: float, last: float) -> list[float]:
    """``period, 2 period, ...`` up to ``last`` seconds (none when ``period`` is 0)."""
    if period <= 0.0:
        return []
    return [period * k for k in range(1, int(last // period) + 1)]


# ---------------------------------------------------------------------- drift
def drift_trial(params: dict, values: Values, report: Reporter) -> TrialResult:
    """Accuracy versus time after training, in one of :data:`DRIFT_MODES`."""
    mode = params["mode"]
    data, _, trained = train_on_chip(params, values, report,
                                     compensation=mode in COMPENSATED_MODES)
    net = trained.net
    if mode in COMPENSATED_MODES:
        for tile in net.tiles:
            tile.calibrate_drift()
    start = evaluate(trained, net, data.test)
    if mode.startswith("recalibrated"):
        curve = _recalibrated_curve(trained, data, values, params, report)
    else:
        curve = accuracy_over_time(trained, net, data, params["times"], report)
    arrays = {**history_arrays(trained.history), "drift/times": np.array(params["times"]),
              "drift/accuracy": curve}
    metrics = {"test_accuracy": start, "final_accuracy": float(curve[-1])}
    summary = (f"{label(params)} (drift, {mode}): {start:.3f} after training, "
               f"{curve[-1]:.3f} after {params['times'][-1]:.3g} s")
    return TrialResult("", {}, metrics, arrays, summary)


def _recalibrated_curve(trained: Any, data: Any, values: Values, params: dict,
                        report: Reporter) -> np.ndarray:
    net, times = trained.net, params["times"]
    events = sorted([(t, 0) for t in times] +
                    [(t, 1) for t in recalibration_times(params["recalibration_period"],
                                                          times[-1])])
    generator = np.random.default_rng(trial_seed(values["training"]["seed"], params["seed"], 2))
    batch_size = values["training"]["batch_size"]
    report.stage("drift, recalibrated", len(events))
    start, accuracy = net.chip.time, []
    for seconds, is_recalibration in events:
        net.chip.advance(max(0.0, start + seconds - net.chip.time))
        if is_recalibration:
            train_steps(trained, net, data.train, params["recalibration_steps"], batch_size,
                        generator)
        else:
            accuracy.append(evaluate(trained, net, data.test))
        report.advance()
    return np.array(accuracy)


# ---------------------------------------------------------------------- demo
def demo_trial(params: dict, values: Values, report: Reporter) -> TrialResult:
    """The demo's story for one learner: train on chip ``seed``, transfer the weights to the
    other chips (and retrain there, in situ), then let the first chip drift."""
    data, _, trained = train_on_chip(params, values, report, epochs=params["epochs"])
    net = trained.net
    accuracy = evaluate(trained, net, data.test)
    arrays = {**history_arrays(trained.history),
              **transfer_and_retrain(trained, data, values, params, accuracy, report)}
    arrays["drift/times"] = np.array(params["times"])
    arrays["drift/accuracy"] = accuracy_over_time(trained, net, data, params["times"], report)
    transferred = arrays["transfer/accuracy"]
    metrics = {"test_accuracy": accuracy, "train_seconds": trained.seconds,
               "transfer_mean": float(np.mean(transferred)),
               "transfer_std": float(np.std(transferred))}
    digital = getattr(trained.learner, "evaluate_digital", None)
    if params["learner"] in EX_SITU and callable(digital):
        metrics["digital_accuracy"] = float(digital(data.test))
    summary = (f"{label(params)}: {accuracy:.3f} after training ({trained.seconds:.0f} s), "
               f"{np.mean(transferred):.3f} on {len(transferred)} other chips")
    return TrialResult("", {}, metrics, arrays, summary)
