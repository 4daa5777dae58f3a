"""Command-line options shared by the experiment commands (argparse only: cheap to import)."""

from __future__ import annotations

import argparse


def count(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def add_run_arguments(parser: argparse.ArgumentParser, *, out_help: str = "") -> None:
    """``--out``, ``--workers``, ``--ray``, ``--threads``, ``-q``, ``--overwrite``."""
    parser.add_argument("--out", default=".", metavar="DIR",
                        help=out_help or "directory for the results file and the figures "
                        "(default: the current directory)")
    parser.add_argument("--workers", type=count(0), default=None, metavar="N",
                        help="local worker processes (default: one per core; 0: run the "
                        "trials in this process)")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run the trials on the Ray cluster at ADDRESS ('local' starts "
                        "one in this process); needs the 'ray' extra")
    parser.add_argument("--threads", type=count(1), default=None, metavar="N",
                        help="compute threads per worker (default: cores / workers)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars and no per-trial lines")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing results file instead of resuming it")


def add_config_argument(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("config", metavar="CONFIG.toml",
                        help=f"experiment config (command = \"{command}\"); see experiments/")
