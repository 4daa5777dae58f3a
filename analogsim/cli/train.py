"""``analogsim train [CONFIG.toml] [flags]``: one learner, one chip, one data set.

Saves the results file (history, network, test accuracy), the trained chip
(``<out>/<name>-chip.h5``, loadable with ``Chip.load``) and a history figure. Flags override
the config's keys; without a config they make one (``--learner``, ``--device``, ...).
"""

from __future__ import annotations

import argparse

from analogsim.experiments.options import add_run_arguments

HELP = "train one learner on one chip and data set; save the chip and the history"

#: flag -> (config section, key)
FLAGS = {
    "learner": ("train", "learner"),
    "device": ("train", "device"),
    "chip_seed": ("train", "chip_seed"),
    "data": ("data", "name"),
    "data_root": ("data", "root"),
    "hidden": ("network", "hidden"),
    "epochs": ("training", "epochs"),
    "batch_size": ("training", "batch_size"),
    "seed": ("training", "seed"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", metavar="CONFIG.toml",
                        help='experiment config (command = "train"); optional with flags')
    parser.add_argument("--learner", help="forward-forward, pepita, forward-gradient, "
                        "analog-backprop or digital-backprop (default forward-forward)")
    parser.add_argument("--device", help="device preset: reram (default), pcm, ecram, ideal")
    parser.add_argument("--chip-seed", type=int, help="chip instance (default 0)")
    parser.add_argument("--data", help="digits (default), fashion-mnist or mnist")
    parser.add_argument("--data-root", help="directory searched first for IDX files")
    parser.add_argument("--hidden", type=int, nargs="+", help="hidden widths (default 256 256)")
    parser.add_argument("--epochs", type=int, help="training epochs (default 10)")
    parser.add_argument("--batch-size", type=int, help="mini-batch size (default 64)")
    parser.add_argument("--seed", type=int, help="seed of the weights and the learner")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    from analogsim.experiments.command import run_config_command
    from analogsim.experiments.config import ConfigError, load_config, validate

    overrides = {flag: getattr(args, flag) for flag in FLAGS
                 if getattr(args, flag) is not None}
    try:
        if args.config:
            config = load_config(args.config, "train")
            raw, source, label = config.values, config.source, None
        else:
            raw, source = {"command": "train"}, "command-line flags"
            label = "train-{}-{}".format(overrides.get("learner", "forward-forward"),
                                         overrides.get("device", "reram"))
        raw = {name: dict(value) if isinstance(value, dict) else value
               for name, value in raw.items()}
        for flag, value in overrides.items():
            section, key = FLAGS[flag]
            raw.setdefault(section, {})[key] = value
        config = validate(raw, source, text=None if overrides or not args.config
                          else config.text)
    except ConfigError as error:
        print(f"analogsim train: error: {error}", file=sys.stderr)
        return 2
    if label:
        import dataclasses

        config = dataclasses.replace(config, label=label)
    return run_config_command("train", args, config)
