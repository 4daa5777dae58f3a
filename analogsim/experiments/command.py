"""What the experiment commands share: options, running a config, reporting the outputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analogsim.errors import AnalogSimError, BackendUnavailableError
from analogsim.experiments.config import Config, load_config
from analogsim.experiments.plans import plan
from analogsim.experiments.results import ResultsStore
from analogsim.experiments.runner import RunOutcome, run_trials


def run_config_command(command: str, args: argparse.Namespace,
                       config: Config | None = None) -> int:
    """Load (unless given) and run a config; print the table, the files, the failures."""
    from analogsim.experiments import plots, tables

    try:
        config = config or load_config(args.config, command)
        outcome, path = run_config(config, args)
    except (AnalogSimError, RuntimeError) as error:
        print(f"analogsim {command}: error: {error}", file=sys.stderr)
        return 2
    text = tables.table(command, outcome.results, config)
    if text:
        print(text)
    figures = plots.plot(command, outcome.results, config, path.with_suffix(""))
    report_files(path, figures, outcome)
    return 1 if outcome.failures else 0


def run_config(config: Config, args: argparse.Namespace) -> tuple[RunOutcome, Path]:
    """Run every trial of ``config`` not yet in its results file under ``args.out``.

    ``training.backend = "cuda"`` is checked here, before any work, for local workers (a Ray
    cluster's GPUs are on its nodes, not necessarily on this machine).
    """
    if config.section("training")["backend"] == "cuda" and not args.ray:
        from analogsim.backends import cuda_unavailable_reason

        reason = cuda_unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError(
                f"{config.source}: training.backend = 'cuda' needs an NVIDIA GPU with CuPy "
                f"and numba-cuda on this machine; {reason}. Use 'cpu' or 'auto'.")
    trials, seeds = plan(config)
    path = Path(args.out) / f"{config.name}.h5"
    store = ResultsStore(path, config, seeds, overwrite=args.overwrite)
    outcome = run_trials(trials, store, workers=args.workers, ray=args.ray,
                         threads=args.threads, quiet=args.quiet, label=config.name)
    return outcome, path


def report_files(path: Path, figures: list[Path], outcome: RunOutcome) -> None:
    print(f"results: {path.resolve()}")
    for figure in figures:
        print(f"figure:  {figure.resolve()}")
    if outcome.failures:
        print(f"{len(outcome.failures)} trial(s) failed (see above); run the same command "
              f"again to retry them, finished trials are kept.", file=sys.stderr)
