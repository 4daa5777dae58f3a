"""``analogsim demo``: the main job, on the embedded digits data set (no download).

Trains a network in situ with Forward-Forward on a simulated ReRAM chip and prints a table of
test accuracy: right after training; after 1 hour, 1 day, 1 month and 1 year of drift; the
same weights on 5 other chip instances (the mortality penalty); those chips after a short
in-situ retraining; and the same network trained digitally and deployed ex-situ. Writes
``demo.h5`` and ``demo.png`` (into ``--out``, default the current directory).
"""

from __future__ import annotations

import argparse

from analogsim.experiments.options import add_run_arguments

HELP = "the main job: train in situ on a simulated ReRAM chip, then drift and mortality"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run (small network, few epochs, part of the data) "
                        "written to demo-quick.h5 / demo-quick.png")
    add_run_arguments(parser, out_help="directory for demo.h5 and demo.png (default: the "
                      "current directory)")


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    from analogsim.errors import AnalogSimError
    from analogsim.experiments.command import report_files, run_config
    from analogsim.experiments.demo import demo_config, demo_figure, demo_table

    start = time.perf_counter()
    try:
        config = demo_config(quick=args.quick)
        outcome, path = run_config(config, args)
    except (AnalogSimError, RuntimeError) as error:
        print(f"analogsim demo: error: {error}", file=sys.stderr)
        return 2
    print()
    print(demo_table(outcome.results, config))
    print()
    figure = demo_figure(outcome.results, path.with_suffix(".png")) if outcome.results \
        else None
    report_files(path, [figure] if figure else [], outcome)
    if not args.quiet:
        print(f"done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 1 if outcome.failures else 0
