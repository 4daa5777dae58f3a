"""``analogsim sweep CONFIG.toml``: accuracy versus device noise.

Results go to ``<out>/<config name>.h5`` (resumed when rerun), figures next to it; see
``experiments/README.md`` for the standard configs.
"""

from __future__ import annotations

import argparse

from analogsim.experiments.options import add_config_argument, add_run_arguments

HELP = "accuracy versus device noise over a grid (devices, learners, noise scales, chip seeds)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser, "sweep")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from analogsim.experiments.command import run_config_command

    return run_config_command("sweep", args)
