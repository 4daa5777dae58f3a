"""Plain-text tables of experiment results, printed when a command finishes."""

from __future__ import annotations

import numpy as np

from analogsim.experiments.config import Config
from analogsim.experiments.learning import LABELS
from analogsim.experiments.results import TrialResult
from analogsim.experiments.summary import (
    DRIFT_AXIS,
    drift_series,
    mortality_tables,
    nan_mean_std,
    sweep_series,
)


def table(command: str, results: dict[str, TrialResult], config: Config) -> str:
    """The text summary of ``command``'s results."""
    writers = {"train": train_table, "sweep": sweep_table, "mortality": mortality_table,
               "drift": drift_table}
    if command not in writers or not results:
        return ""
    return writers[command](results, config)


def _percent(value: float, spread: float | None = None) -> str:
    if not np.isfinite(value):
        return "    -   "
    text = f"{100 * value:5.1f} %"
    return text if spread is None else f"{text} ± {100 * spread:4.1f}"


def train_table(results: dict[str, TrialResult], config: Config) -> str:
    lines = []
    for result in results.values():
        lines.append(result.summary)
    return "\n".join(lines)


def sweep_table(results: dict[str, TrialResult], config: Config) -> str:
    lines = [f"{'axis':<16}{'value':>10}  {'device':<8}{'learner':<28}accuracy (mean ± std)"]
    for axis, curves in sweep_series(results, config).items():
        for (device, learner), curve in sorted(curves.items()):
            for x, mean, std, count in zip(curve.x, curve.mean, curve.std, curve.count,
                                           strict=True):
                name = "drift time" if axis == DRIFT_AXIS else axis
                lines.append(f"{name:<16}{x:>10.3g}  {device:<8}{LABELS[learner]:<28}"
                             f"{_percent(mean, std)}  (n={count})")
    return "\n".join(lines)


def mortality_table(results: dict[str, TrialResult], config: Config) -> str:
    lines = [f"{'learner':<28}{'own chip':>14}{'other chips':>20}{'retrained':>20}"
             f"{'steps to recover':>20}"]
    for learner, found in sorted(mortality_tables(results, config).items()):
        eye = np.eye(len(found.chips), dtype=bool)
        own = nan_mean_std(np.diag(found.matrix))
        other = nan_mean_std(found.matrix[~eye])
        retrained = nan_mean_std(found.retrained[~eye])
        steps = found.steps[~eye]
        recovered = int(np.sum(np.isfinite(steps)))
        tried = int(np.sum(np.isfinite(found.retrained[~eye])))
        steps_text = (f"{nan_mean_std(steps)[0]:.0f} ({recovered}/{tried})" if tried
                      else "- (ex-situ)")
        lines.append(f"{LABELS[learner]:<28}{_percent(own[0]):>14}"
                     f"{_percent(other[0], other[1]):>20}"
                     f"{_percent(retrained[0], retrained[1]):>20}{steps_text:>20}")
    return "\n".join(lines)


def drift_table(results: dict[str, TrialResult], config: Config) -> str:
    lines = []
    for learner, named in sorted(drift_series(results).items()):
        lines.append(f"{LABELS[learner]}")
        names = list(named)
        lines.append(f"  {'time (s)':>10}" + "".join(f"{name:>30}" for name in names))
        times = next(iter(named.values())).x
        for index, seconds in enumerate(times):
            cells = [_percent(named[name].mean[index], named[name].std[index])
                     for name in names]
            lines.append(f"  {seconds:>10.3g}" + "".join(f"{cell:>30}" for cell in cells))
    return "\n".join(lines)
