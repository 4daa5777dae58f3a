"""Aggregate trial results into what tables and plots show (means and spreads over seeds)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from analogsim.experiments.config import NOISE_AXES, Config
from analogsim.experiments.results import TrialResult

DRIFT_AXIS = "drift time (s)"


@dataclass
class Series:
    """One curve: x values, the mean and standard deviation over seeds, and the count."""

    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray


def series(points: dict[float, list[float]]) -> Series:
    xs = sorted(points)
    values = [np.asarray(points[x], dtype=float) for x in xs]
    return Series(np.array(xs), np.array([v.mean() for v in values]),
                  np.array([v.std() for v in values]), np.array([v.size for v in values]))


def _of_kind(results: dict[str, TrialResult], kind: str) -> list[TrialResult]:
    return [r for _, r in sorted(results.items()) if r.spec.get("kind") == kind]


# ---------------------------------------------------------------------- sweep
def sweep_series(results: dict[str, TrialResult], config: Config
                 ) -> dict[str, dict[tuple[str, str], Series]]:
    """Accuracy versus each swept axis, per (device, learner): {axis: {(device, learner): S}}.

    A trial counts for axis ``a`` when every other axis is at its reference value (1, or the
    first swept value when a grid does not contain 1).
    """
    section = config.section("sweep")
    swept = {axis: section[axis] for axis in NOISE_AXES if section[axis]}
    reference = {axis: 1.0 if (not section["grid"] or 1.0 in values) else values[0]
                 for axis, values in swept.items()}
    out: dict[str, dict[tuple[str, str], dict[float, list[float]]]] = {}
    for result in _of_kind(results, "sweep"):
        key = (result.spec["device"], result.spec["learner"])
        scales = result.spec["scales"]
        for axis in swept:
            others = all(scales[b] == reference.get(b, 1.0) for b in NOISE_AXES if b != axis)
            if others:
                out.setdefault(axis, {}).setdefault(key, defaultdict(list))[
                    scales[axis]].append(result.metrics["test_accuracy"])
        at_reference = all(scales[b] == reference.get(b, 1.0) for b in NOISE_AXES)
        if section["drift_times"] and at_reference:
            points = out.setdefault(DRIFT_AXIS, {}).setdefault(key, defaultdict(list))
            for t, accuracy in zip(result.arrays["drift/times"],
                                   result.arrays["drift/accuracy"], strict=True):
                points[float(t)].append(float(accuracy))
    order = [axis for axis in [*NOISE_AXES, DRIFT_AXIS] if axis in out]
    return {axis: {key: series(points) for key, points in out[axis].items()}
            for axis in order}


# ---------------------------------------------------------------------- mortality
@dataclass
class Mortality:
    """Per learner: chips (seeds), the transfer matrix (row trained on, column evaluated on;
    NaN where not run), and retraining steps to recover (same shape, NaN if not recovered)."""

    chips: list[int]
    matrix: np.ndarray
    steps: np.ndarray
    retrained: np.ndarray


def mortality_tables(results: dict[str, TrialResult], config: Config) -> dict[str, Mortality]:
    chips = list(config.section("mortality")["chips"])
    index = {chip: k for k, chip in enumerate(chips)}
    tables: dict[str, Mortality] = {}
    for result in _of_kind(results, "mortality"):
        learner, source = result.spec["learner"], result.spec["seed"]
        shape = (len(chips), len(chips))
        table = tables.setdefault(learner, Mortality(chips, np.full(shape, np.nan),
                                                     np.full(shape, np.nan),
                                                     np.full(shape, np.nan)))
        if source not in index:
            continue
        row = index[source]
        table.matrix[row, row] = result.metrics["source_accuracy"]
        targets = result.arrays["transfer/targets"]
        for k, target in enumerate(targets):
            column = index[int(target)]
            table.matrix[row, column] = result.arrays["transfer/accuracy"][k]
            if "retrain/steps_to_recover" in result.arrays:
                table.steps[row, column] = result.arrays["retrain/steps_to_recover"][k]
                table.retrained[row, column] = result.arrays["retrain/final_accuracy"][k]
    return tables


# ---------------------------------------------------------------------- drift
#: The curve name of each drift mode (tables and figure legends).
DRIFT_CURVES = {"none": "no compensation", "compensated": "global compensation",
                "recalibrated": "periodic recalibration",
                "recalibrated-compensated": "recalibration + compensation"}


def drift_series(results: dict[str, TrialResult]) -> dict[str, dict[str, Series]]:
    """Accuracy versus time per learner and curve (:data:`DRIFT_CURVES`), mean and spread
    over chip seeds."""
    names = DRIFT_CURVES
    out: dict[str, dict[str, dict[float, list[float]]]] = {}
    for result in _of_kind(results, "drift"):
        curves = out.setdefault(result.spec["learner"], {})
        points = curves.setdefault(names[result.spec["mode"]], defaultdict(list))
        for t, accuracy in zip(result.arrays["drift/times"], result.arrays["drift/accuracy"],
                               strict=True):
            points[float(t)].append(float(accuracy))
    return {learner: {name: series(curves[name]) for name in names.values() if name in curves}
            for learner, curves in out.items()}


def nan_mean_std(values: np.ndarray) -> tuple[float, float, int]:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return float("nan"), float("nan"), 0
    return float(finite.mean()), float(finite.std()), int(finite.size)
