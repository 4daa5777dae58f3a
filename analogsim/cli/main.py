"""Entry point of the ``analogsim`` console script.

Each subcommand lives in its own module ``analogsim.cli.<name>`` that defines
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``; modules are imported
only when their command runs, so ``analogsim info`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "info": "versions, backends found, threads",
    "demo": "the main job: train in situ on a simulated ReRAM chip, then drift and mortality",
    "train": "train one learner on one chip and data set",
    "sweep": "accuracy versus device noise over a grid",
    "mortality": "train on chip A, evaluate on chips B..K",
    "drift": "accuracy versus time after training",
    "bench": "kernel benchmarks: ratio table against the plain matmul",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="analogsim",
        description="Simulated analog in-memory computing chips and forward-only on-chip learning.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(_module=f"analogsim.cli.{name.replace('-', '_')}")
        try:
            module = importlib.import_module(sub.get_default("_module"))
        except ModuleNotFoundError as error:
            if error.name != sub.get_default("_module"):
                raise
            sub.set_defaults(_missing=True)
            continue
        module.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "_missing", False):
        print(f"analogsim: the '{args.command}' command is not available in this version.",
              file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
