"""``analogsim mortality CONFIG.toml``: chip A's weights on chips B..K.

Results go to ``<out>/<config name>.h5`` (resumed when rerun), figures next to it; see
``experiments/README.md`` for the standard configs.
"""

from __future__ import annotations

import argparse

from analogsim.experiments.options import add_config_argument, add_run_arguments

HELP = "train on chip A, evaluate on chips B..K: the transfer matrix and the retraining cost"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser, "mortality")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from analogsim.experiments.command import run_config_command

    return run_config_command("mortality", args)
