"""PNG figures of experiment results (matplotlib's object API with the Agg canvas: no pyplot,
no global backend state, safe in worker processes and without a display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from analogsim.experiments.config import Config
from analogsim.experiments.learning import LABELS
from analogsim.experiments.results import TrialResult
from analogsim.experiments.summary import (
    DRIFT_AXIS,
    Series,
    drift_series,
    mortality_tables,
    sweep_series,
)

AXIS_LABELS = {
    "programming": "programming-noise scale (x nominal)",
    "read": "read-noise scale (x nominal)",
    "dtod": "device-to-device variation scale (x nominal)",
    "update": "update-noise scale (x nominal)",
    DRIFT_AXIS: "time after training (s)",
}
AXIS_TITLES = {"programming": "programming noise", "read": "read noise",
               "dtod": "device-to-device variation", "update": "update noise",
               DRIFT_AXIS: "drift time"}
DEVICE_STYLES = ("-", "--", ":", "-.")
STYLES = {"no compensation": "-", "global compensation": "--", "periodic recalibration": ":",
          "recalibration + compensation": "-."}


def plot(command: str, results: dict[str, TrialResult], config: Config,
         stem: Path) -> list[Path]:
    """The figures of ``command``; files are named ``<stem>-<what>.png``."""
    plotters = {"train": plot_train, "sweep": plot_sweep, "mortality": plot_mortality,
                "drift": plot_drift}
    if command not in plotters or not results:
        return []
    return plotters[command](results, config, stem)


def _band(axes, curve: Series, label: str, **style) -> None:
    line = axes.plot(curve.x, curve.mean, marker="o", markersize=3, label=label, **style)[0]
    if np.any(curve.count > 1):
        axes.fill_between(curve.x, curve.mean - curve.std, curve.mean + curve.std,
                          color=line.get_color(), alpha=0.15, linewidth=0)


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def _percent_axis(axes) -> None:
    axes.set_ylabel("test accuracy")
    axes.set_ylim(0.0, 1.02)
    axes.grid(alpha=0.3)


# ---------------------------------------------------------------------- commands
def plot_train(results: dict[str, TrialResult], config: Config, stem: Path) -> list[Path]:
    figure = Figure(figsize=(8, 3.5))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for result in results.values():
        epochs = result.arrays["history/epoch"]
        loss_axes.plot(epochs, result.arrays["history/loss"], marker="o", markersize=3)
        accuracy_axes.plot(epochs, result.arrays["history/train_accuracy"], marker="o",
                           markersize=3, label="train (on the fly)")
        accuracy_axes.axhline(result.metrics["test_accuracy"], color="k", linestyle="--",
                              label=f"test {result.metrics['test_accuracy']:.3f}")
    loss_axes.set(xlabel="epoch", ylabel="loss", title="training loss")
    accuracy_axes.set(xlabel="epoch", title="accuracy")
    _percent_axis(accuracy_axes)
    accuracy_axes.legend()
    return [_save(figure, stem.with_name(f"{stem.name}-history.png"))]


def plot_sweep(results: dict[str, TrialResult], config: Config, stem: Path) -> list[Path]:
    paths = []
    for axis, curves in sweep_series(results, config).items():
        figure = Figure(figsize=(6.5, 4.2))
        axes = figure.subplots()
        learners = sorted({learner for _, learner in curves})
        devices = sorted({device for device, _ in curves})
        for (device, learner), curve in sorted(curves.items(), key=lambda item: item[0][::-1]):
            _band(axes, curve, f"{LABELS[learner]}, {device}",
                  color=f"C{learners.index(learner)}",
                  linestyle=DEVICE_STYLES[devices.index(device) % len(DEVICE_STYLES)])
        if axis == DRIFT_AXIS:
            axes.set_xscale("symlog", linthresh=1.0)
        axes.set_xlabel(AXIS_LABELS[axis])
        _percent_axis(axes)
        seeds = len(config.section("sweep")["seeds"])
        axes.set_title(f"{config.section('data')['name']}: accuracy vs {AXIS_TITLES[axis]} "
                       f"(mean ± std over {seeds} chips)", fontsize=10)
        axes.legend(fontsize=8)
        slug = "drift-time" if axis == DRIFT_AXIS else axis
        paths.append(_save(figure, stem.with_name(f"{stem.name}-{slug}.png")))
    return paths


def plot_mortality(results: dict[str, TrialResult], config: Config,
                   stem: Path) -> list[Path]:
    tables = mortality_tables(results, config)
    figure = Figure(figsize=(4.2 * len(tables) + 4.5, 4.0))
    panels = np.atleast_1d(figure.subplots(1, len(tables) + 1))
    for axes, (learner, table) in zip(panels, sorted(tables.items()), strict=False):
        # Only the chips something was trained on get a row (``sources`` may be a subset).
        rows = [k for k in range(len(table.chips)) if np.isfinite(table.matrix[k]).any()]
        matrix = table.matrix[rows]
        image = axes.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis")
        for (row, column), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                          color="w" if value < 0.6 else "k")
        axes.set_xticks(range(len(table.chips)), [str(c) for c in table.chips])
        axes.set_yticks(range(len(rows)), [str(table.chips[k]) for k in rows])
        axes.set(xlabel="evaluated on chip", ylabel="trained on chip", title=LABELS[learner])
        figure.colorbar(image, ax=axes, fraction=0.046)
    summary = panels[-1]
    for position, (learner, table) in enumerate(sorted(tables.items())):
        diagonal = np.diag(table.matrix)
        off = table.matrix[~np.eye(len(table.chips), dtype=bool)]
        retrained = table.retrained[np.isfinite(table.retrained)]
        values = [np.nanmean(diagonal), np.nanmean(off),
                  retrained.mean() if retrained.size else np.nan]
        summary.bar(np.arange(3) + 0.8 * position / len(tables), values,
                    width=0.8 / len(tables), label=LABELS[learner])
    summary.set_xticks(np.arange(3) + 0.4 - 0.4 / len(tables),
                       ["own chip", "other chips", "after retraining"])
    _percent_axis(summary)
    summary.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    summary.set_title("mortality penalty")
    return [_save(figure, stem.with_name(f"{stem.name}-transfer.png"))]


def plot_drift(results: dict[str, TrialResult], config: Config, stem: Path) -> list[Path]:
    curves = drift_series(results)
    figure = Figure(figsize=(5.0 * len(curves), 4.0))
    panels = np.atleast_1d(figure.subplots(1, len(curves), squeeze=False)[0])
    for axes, (learner, named) in zip(panels, sorted(curves.items()), strict=True):
        for name, curve in named.items():
            _band(axes, curve, name, linestyle=STYLES[name])
        axes.set_xscale("log")
        axes.set(xlabel="time after training (s)", title=LABELS[learner])
        for seconds, text in ((3600, "1 h"), (86400, "1 d"), (2.592e6, "1 mo"),
                              (3.1536e7, "1 y"), (3.1536e8, "10 y")):
            axes.axvline(seconds, color="0.8", linewidth=0.8)
            axes.text(seconds, 0.02, text, fontsize=7, ha="center")
        _percent_axis(axes)
        axes.legend(fontsize=8, loc="lower left")
    return [_save(figure, stem.with_name(f"{stem.name}-drift.png"))]
