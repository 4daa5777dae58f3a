"""Experiment configs: TOML files checked against a schema before any work starts.

A config is a TOML file with a top-level ``command`` and sections. Every command shares
``[data]``, ``[network]``, ``[training]`` and ``[learner_options]``; each command adds its own
section (``[train]``, ``[sweep]``, ``[mortality]``, ``[drift]``, ``[demo]``). The schema below
is data: each key has a type, a default and a check. An unknown section or key, a value of the
wrong type or out of range is a :class:`ConfigError` that names the key and the file.

>>> from analogsim.experiments.config import load_config
>>> config = load_config("experiments/sweep-digits.toml")     # doctest: +SKIP
>>> config.section("sweep")["seeds"]                           # doctest: +SKIP
[0, 1, 2]
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import itertools
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analogsim.datasets import available
from analogsim.errors import AnalogSimError
from analogsim.experiments.learning import (
    DEVICE_NAMES,
    LEARNERS,
    check_learner_options,
    learner_class,
)

COMMANDS = ("demo", "train", "sweep", "mortality", "drift")
NOISE_AXES = ("programming", "read", "dtod", "update")
MAX_RECALIBRATIONS = 1000


class ConfigError(AnalogSimError, ValueError):
    """An experiment config has an unknown key, a value of the wrong type or out of range."""


@dataclass(frozen=True)
class Key:
    """One config key: its type (``"int"``, ``"float"``, ``"str"``, ``"bool"``, ``"list[int]"``,
    ``"list[float]"``, ``"list[str]"``), default, and a check returning an error text or None."""

    kind: str
    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None
    #: A key added after results files existed: left out of :meth:`Config.canonical` at its
    #: default, so that files written before it still match their config on a resume.
    added_later: bool = False


# ---------------------------------------------------------------------------------- checks
def at_least(low: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if v < low]
        return f"must be >= {low:g}; got {bad[0]!r}" if bad else None
    return check


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if v not in choices]
        listed = ", ".join(repr(c) for c in choices)
        return f"must be one of {listed}; got {bad[0]!r}" if bad else None
    return check


def non_empty(inner: Callable[[Any], str | None] | None = None
              ) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not value:
            return "must not be empty"
        return inner(value) if inner else None
    return check


# ---------------------------------------------------------------------------------- schema
COMMON: dict[str, dict[str, Key]] = {
    "data": {
        "name": Key("str", "digits", "data set name", one_of(available())),
        "root": Key("str", "", "directory searched first for IDX files ('' = default search)"),
        "train_samples": Key("int", 0, "random subset of the training split (0 = all)",
                             at_least(0)),
        "test_samples": Key("int", 0, "random subset of the test split (0 = all)",
                            at_least(0)),
    },
    "network": {
        "hidden": Key("list[int]", [256, 256], "hidden layer widths",
                      non_empty(at_least(1))),
        "activation": Key("str", "relu", "hidden activation",
                          one_of(("relu", "tanh", "sigmoid", "identity"))),
    },
    "training": {
        "epochs": Key("int", 10, "training epochs", at_least(1)),
        "batch_size": Key("int", 64, "mini-batch size", at_least(1)),
        "seed": Key("int", 0, "seed of the initial weights and of the learner", at_least(0)),
        "backend": Key("str", "cpu", "where the chips' arrays live: cpu, cuda (an NVIDIA "
                       "GPU with CuPy) or auto (the GPU when there is one)",
                       one_of(("cpu", "cuda", "auto"))),
        "count_precision": Key("str", "fp32", "the fast update's count matmuls: fp32, or int8 "
                               "(CPU; with PyTorch about 1.6x faster updates, see "
                               "Chip(count_precision=))", one_of(("fp32", "int8")),
                               added_later=True),
    },
}

def implemented(value: Any) -> str | None:
    """Every learner named is known and implemented in this version."""
    problem = one_of(tuple(LEARNERS))(value)
    if problem:
        return problem
    missing = [name for name in (value if isinstance(value, list) else [value])
               if learner_class(name) is None]
    return (f"names learner '{missing[0]}' ({LEARNERS[missing[0]]}), which is not available "
            f"in this version of analogsim.learners" if missing else None)


LEARNER_LIST = non_empty(implemented)
DEVICE = one_of(DEVICE_NAMES)

COMMAND_SECTIONS: dict[str, dict[str, Key]] = {
    "train": {
        "learner": Key("str", "forward-forward", "learner", implemented),
        "device": Key("str", "reram", "device preset of the chip", DEVICE),
        "chip_seed": Key("int", 0, "seed of the chip instance", at_least(0)),
    },
    "sweep": {
        "devices": Key("list[str]", ["reram"], "device presets", non_empty(DEVICE)),
        "learners": Key("list[str]", ["forward-forward"], "learners", LEARNER_LIST),
        "seeds": Key("list[int]", [0, 1, 2], "chip seeds (spread over instances)",
                     non_empty(at_least(0))),
        "programming": Key("list[float]", [], "programming-noise scales", at_least(0)),
        "read": Key("list[float]", [], "read-noise scales", at_least(0)),
        "dtod": Key("list[float]", [], "device-to-device variation scales", at_least(0)),
        "update": Key("list[float]", [], "cycle-to-cycle update-noise scales", at_least(0)),
        "drift_times": Key("list[float]", [], "seconds of drift after training, evaluated "
                           "on every trial", at_least(0)),
        "grid": Key("bool", False, "full product of the noise axes (else one axis at a time)"),
    },
    "mortality": {
        "learners": Key("list[str]", ["forward-forward", "digital-backprop"], "learners",
                        LEARNER_LIST),
        "device": Key("str", "reram", "device preset of the chips", DEVICE),
        "chips": Key("list[int]", [0, 1, 2, 3, 4, 5], "chip seeds: each one trained on is "
                     "evaluated on all the others", non_empty(at_least(0))),
        "sources": Key("list[int]", [], "chips trained on (default: all of 'chips')",
                       at_least(0)),
        "retrain_steps": Key("int", 92, "mini-batches of in-situ retraining per chip",
                             at_least(0)),
        "check_every": Key("int", 4, "mini-batches between accuracy checks while retraining",
                           at_least(1)),
        "recover_within": Key("float", 0.02, "recovered when within this accuracy of the "
                              "source chip", at_least(0)),
    },
    "drift": {
        "learners": Key("list[str]", ["forward-forward", "digital-backprop"], "learners",
                        LEARNER_LIST),
        "device": Key("str", "reram", "device preset of the chip", DEVICE),
        "seeds": Key("list[int]", [0, 1, 2], "chip seeds", non_empty(at_least(0))),
        "times": Key("list[float]", [1.0, 10.0, 100.0, 3600.0, 86400.0, 604800.0, 2.592e6,
                                     3.1536e7, 3.1536e8],
                     "seconds after training, ascending", non_empty(at_least(0))),
        "compensation": Key("bool", True, "also a chip with global drift compensation"),
        "recalibration_period": Key("float", 2.592e6, "seconds between in-situ "
                                    "recalibrations (0: no recalibrated curve)", at_least(0)),
        "recalibration_steps": Key("int", 4, "mini-batches per recalibration", at_least(1)),
    },
    "demo": {
        "device": Key("str", "reram", "device preset of the chips", DEVICE),
        "chip_seed": Key("int", 0, "seed of the chip trained on", at_least(0)),
        "other_chips": Key("int", 5, "other chip instances the weights are transferred to",
                           at_least(1)),
        "times": Key("list[float]", [3600.0, 86400.0, 2.592e6, 3.1536e7],
                     "drift times (seconds after training)", non_empty(at_least(0))),
        "retrain_steps": Key("int", 46, "mini-batches of in-situ retraining per chip",
                             at_least(0)),
        "check_every": Key("int", 2, "mini-batches between accuracy checks while retraining",
                           at_least(1)),
        "recover_within": Key("float", 0.02, "recovered when within this accuracy of the "
                              "source chip", at_least(0)),
        "backprop_epochs": Key("int", 30, "epochs of the digital backprop baseline",
                               at_least(1)),
    },
}

TOP_LEVEL = {
    "command": Key("str", None, "which command this config is for", one_of(COMMANDS)),
    "description": Key("str", "", "what the experiment shows"),
}


# ---------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class Config:
    """A validated config: every key present (defaults filled), plus where it came from."""

    values: dict[str, Any]
    source: str
    text: str = field(repr=False)
    label: str | None = None

    @property
    def command(self) -> str:
        return str(self.values["command"])

    @property
    def name(self) -> str:
        """A short name for output files: ``label``, the config file's stem, or the command."""
        if self.label:
            return self.label
        stem = Path(self.source).stem
        return stem if self.source.endswith(".toml") else self.command

    def section(self, name: str) -> dict[str, Any]:
        return self.values[name]

    def canonical(self) -> str:
        """The values as sorted JSON: two configs doing the same work compare equal (keys
        ``added_later`` are left out at their default)."""
        values = copy.deepcopy(self.values)
        for name, keys in COMMON.items():
            for key, spec in keys.items():
                if spec.added_later and values.get(name, {}).get(key) == spec.default:
                    del values[name][key]
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    def replace(self, section: str, **values: Any) -> Config:
        """A copy with keys of ``section`` changed (validated like a file's)."""
        raw = copy.deepcopy(self.values)
        raw[section].update(values)
        return dataclasses.replace(validate(raw, self.source), label=self.label)


def load_config(path: str | Path, command: str | None = None) -> Config:
    """Read and validate the TOML config at ``path`` (for ``command``, if given)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file ({error.strerror}).") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}.") from None
    config = validate(raw, str(path), text=text)
    if command is not None and config.command != command:
        raise ConfigError(f"{path}: key 'command' is {config.command!r}, but this is the "
                          f"'{command}' command; run 'analogsim {config.command} {path}'.")
    return config


def validate(raw: Mapping[str, Any], source: str, *, text: str | None = None) -> Config:
    """Check ``raw`` (parsed TOML) against the schema; fill defaults; return a Config."""
    if "command" not in raw:
        raise ConfigError(f"{source}: missing key 'command' (one of "
                          f"{', '.join(repr(c) for c in COMMANDS)}).")
    values: dict[str, Any] = {}
    for name, key in TOP_LEVEL.items():
        values[name] = _value(raw, name, key, name, source)
    command = values["command"]
    sections = {**COMMON, command: COMMAND_SECTIONS[command]}
    known = [*TOP_LEVEL, *sections, "learner_options"]
    for name in raw:
        if name not in known:
            raise ConfigError(_unknown(source, name, known, f"a {command} config"))
    for section, keys in sections.items():
        table = raw.get(section, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: key '{section}' must be a table ([{section}]); "
                              f"got {type(table).__name__} {table!r}.")
        for name in table:
            if name not in keys:
                raise ConfigError(_unknown(source, f"{section}.{name}",
                                           [f"{section}.{k}" for k in keys], f"[{section}]"))
        values[section] = {name: _value(table, name, key, f"{section}.{name}", source)
                           for name, key in keys.items()}
    values["learner_options"] = _learner_options(raw.get("learner_options", {}), source)
    if command == "drift":
        _check_drift(values["drift"], source)
    if text is None:
        text = to_toml(values)
    return Config(values, source, text)


def _value(table: Mapping[str, Any], name: str, key: Key, dotted: str, source: str) -> Any:
    if name not in table:
        if key.default is None:
            raise ConfigError(f"{source}: missing key '{dotted}' ({key.doc}).")
        return copy.deepcopy(key.default)
    value = _coerce(table[name], key.kind)
    if value is None:
        raise ConfigError(f"{source}: key '{dotted}' must be {_describe(key.kind)}; got "
                          f"{_type_name(table[name])} {table[name]!r}.")
    problem = key.check(value) if key.check else None
    if problem:
        raise ConfigError(f"{source}: key '{dotted}' {problem}.")
    return value


def _coerce(value: Any, kind: str) -> Any:
    """``value`` converted to ``kind`` (ints are floats too), or None when it is not one."""
    if kind.startswith("list["):
        if not isinstance(value, list):
            return None
        items = [_coerce(item, kind[5:-1]) for item in value]
        return None if any(item is None for item in items) else items
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if kind == "int":
        return value if isinstance(value, int) else None
    if kind == "float":
        return float(value) if isinstance(value, int | float) else None
    return value if isinstance(value, str) else None


def _describe(kind: str) -> str:
    names = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}
    if kind.startswith("list["):
        inner = names[kind[5:-1]].split(" ", 1)[1]
        return f"a list of {inner}s"
    return names[kind]


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _unknown(source: str, name: str, known: list[str], where: str) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return (f"{source}: unknown key '{name}' in {where}.{hint} Known keys: "
            f"{', '.join(known)}.")


def _learner_options(table: Any, source: str) -> dict[str, dict[str, Any]]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: key 'learner_options' must be a table of tables "
                          f"([learner_options.<learner>]); got {_type_name(table)}.")
    options: dict[str, dict[str, Any]] = {}
    for learner, kwargs in table.items():
        dotted = f"learner_options.{learner}"
        if learner not in LEARNERS:
            raise ConfigError(_unknown(source, dotted, [f"learner_options.{n}"
                                                        for n in LEARNERS], "[learner_options]"))
        if not isinstance(kwargs, Mapping):
            raise ConfigError(f"{source}: key '{dotted}' must be a table of keyword arguments; "
                              f"got {_type_name(kwargs)} {kwargs!r}.")
        problem = check_learner_options(learner, dict(kwargs))
        if problem:
            raise ConfigError(f"{source}: key '{dotted}': {problem}")
        options[learner] = dict(kwargs)
    return options


def _check_drift(section: dict[str, Any], source: str) -> None:
    times, period = section["times"], section["recalibration_period"]
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise ConfigError(f"{source}: key 'drift.times' must be strictly ascending; got "
                          f"{times}.")
    if period > 0 and times[-1] / period > MAX_RECALIBRATIONS:
        raise ConfigError(f"{source}: key 'drift.recalibration_period' = {period:g} s gives "
                          f"{times[-1] / period:.0f} recalibrations up to {times[-1]:g} s; at "
                          f"most {MAX_RECALIBRATIONS} are allowed (use a period of at least "
                          f"{times[-1] / MAX_RECALIBRATIONS:.3g} s).")


# ---------------------------------------------------------------------------------- TOML out
def to_toml(values: Mapping[str, Any]) -> str:
    """Write a config's values as TOML (scalars and lists only, as the schema allows)."""
    lines = [f"{name} = {_toml_value(values[name])}" for name in TOP_LEVEL if name in values]
    for section, table in values.items():
        if section in TOP_LEVEL or section == "learner_options":
            continue
        lines += ["", f"[{section}]"]
        lines += [f"{name} = {_toml_value(value)}" for name, value in table.items()]
    for learner, kwargs in values.get("learner_options", {}).items():
        lines += ["", f'[learner_options."{learner}"]']
        lines += [f"{name} = {_toml_value(value)}" for name, value in kwargs.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)
