"""The pieces every trial is made of: learners by name, chips, networks, training, evaluation.

Learners are resolved lazily by class name from :mod:`analogsim.learners`, so this module (and
the configs that name learners) imports before every learner exists. Ex-situ learners train a
digital copy and ``deploy`` it onto the chip; in-situ learners train on the chip itself.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

import analogsim.learners
from analogsim.chip import Chip
from analogsim.datasets import Dataset, Split, load
from analogsim.devices import PRESETS, DeviceModel, Ideal, preset
from analogsim.learners import History, Learner
from analogsim.network import Network
from analogsim.periphery import Periphery

#: Config name -> class name in analogsim.learners.
LEARNERS: dict[str, str] = {
    "forward-forward": "ForwardForward",
    "pepita": "PEPITA",
    "forward-gradient": "ForwardGradient",
    "analog-backprop": "AnalogBackprop",
    "digital-backprop": "DigitalBackprop",
}
#: Learners that train a digital copy and program it onto the chip (``deploy``).
EX_SITU = frozenset({"digital-backprop"})
#: Human-readable names for tables and plots.
LABELS: dict[str, str] = {
    "forward-forward": "Forward-Forward",
    "pepita": "PEPITA",
    "forward-gradient": "Forward gradient",
    "analog-backprop": "Analog backprop",
    "digital-backprop": "Digital backprop, ex-situ",
}
#: Learners whose last analog layer gives the class scores (widths end with n_classes); the
#: others add a digital readout on the last hidden layer themselves.
ANALOG_OUTPUT = frozenset({"pepita"})
DEVICE_NAMES = tuple(PRESETS)

Advance = Callable[[int], None]


#: Class name -> the submodule of analogsim.learners expected to define it.
MODULES: dict[str, str] = {
    "ForwardForward": "forward_forward",
    "PEPITA": "pepita",
    "ForwardGradient": "forward_gradient",
    "AnalogBackprop": "backprop",
    "DigitalBackprop": "digital_backprop",
}


def learner_class(name: str) -> type[Learner] | None:
    """The learner class behind config name ``name``, or None while it is not implemented.

    Looked up in :mod:`analogsim.learners`, then in its submodule (a learner that exists but
    is not exported yet).
    """
    class_name = LEARNERS[name]
    found = getattr(analogsim.learners, class_name, None)
    if found is None:
        try:
            module = importlib.import_module(f"analogsim.learners.{MODULES[class_name]}")
        except ImportError:
            return None
        found = getattr(module, class_name, None)
    return found


def check_learner_options(name: str, options: dict[str, object]) -> str | None:
    """Why ``name`` cannot be made with keyword arguments ``options`` (None when it can)."""
    cls = learner_class(name)
    if cls is None:
        return (f"learner '{name}' ({LEARNERS[name]}) is not available in this version of "
                f"analogsim.learners.")
    try:
        cls(**options)
    except (TypeError, ValueError) as error:
        return str(error)
    return None


def make_learner(name: str, options: dict[str, dict[str, object]]) -> Learner:
    """A fresh learner ``name`` with its options from the config's ``[learner_options]``."""
    cls = learner_class(name)
    if cls is None:
        raise RuntimeError(check_learner_options(name, {}))
    return cls(**options.get(name, {}))


def device_model(name: str, scales: dict[str, float] | None = None) -> DeviceModel:
    """The preset ``name`` with noise groups scaled (``DeviceModel.scaled``)."""
    model = preset(name)
    return model.scaled(**scales) if scales else model


@cache
def dataset(name: str, root: str, train_samples: int, test_samples: int) -> Dataset:
    """The data set of a config (cached per process), subsets drawn with fixed seeds."""
    data = load(name, root or None)
    train = data.train.subset(train_samples, rng=0) if 0 < train_samples < len(data.train) \
        else data.train
    test = data.test.subset(test_samples, rng=1) if 0 < test_samples < len(data.test) \
        else data.test
    return dataclasses.replace(data, train=train, test=test)


def config_dataset(values: dict) -> Dataset:
    section = values["data"]
    return dataset(section["name"], section["root"], section["train_samples"],
                   section["test_samples"])


def trial_seed(*parts: int) -> int:
    """A 32-bit seed derived from integers (e.g. the training seed and the chip seed)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def make_network(chip: Chip, data: Dataset, values: dict, seed: int, learner: str) -> Network:
    """A network on ``chip`` for ``learner``, initial weights from ``seed``.

    Widths ``[n_features, *hidden]``, plus an analog output layer of ``n_classes`` for the
    learners in :data:`ANALOG_OUTPUT`.
    """
    section = values["network"]
    widths = [data.n_features, *section["hidden"]]
    if learner in ANALOG_OUTPUT:
        widths.append(data.n_classes)
    return Network(chip, widths, activation=section["activation"], rng=seed)


@dataclass
class Trained:
    """A trained network, its learner and what training took."""

    net: Network
    learner: Learner
    history: History
    seconds: float


def train(name: str, net: Network, data: Split, values: dict, seed: int,
          advance: Advance | None = None, epochs: int | None = None) -> Trained:
    """Train ``net`` with learner ``name``, one ``fit`` epoch at a time (``advance`` after each).

    In situ: the learner trains the chip. Ex-situ: it trains a digital copy, then ``deploy``
    programs it onto ``net``'s tiles.
    """
    import time

    learner = make_learner(name, values["learner_options"])
    epochs = values["training"]["epochs"] if epochs is None else epochs
    generator = np.random.default_rng(seed)
    history, start = History(), time.perf_counter()
    options = {"deploy": False} if name in EX_SITU else {}  # deployed once, at the end
    for epoch in range(1, epochs + 1):
        record = learner.fit(net, data, epochs=1, batch_size=values["training"]["batch_size"],
                             rng=generator, progress=False, **options)[-1]
        history.append(dataclasses.replace(record, epoch=epoch))
        if advance:
            advance(1)
    if name in EX_SITU:
        learner.deploy(net)
    return Trained(net, learner, history, time.perf_counter() - start)


def evaluate(trained: Trained, net: Network, split: Split) -> float:
    """Test accuracy of ``net`` (on its chip, now) as the trained learner predicts."""
    return float(trained.learner.evaluate(net, split))


def retrain(trained: Trained, net: Network, data: Dataset, values: dict, *, target: float,
            max_steps: int, check_every: int, seed: int,
            advance: Advance | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Retrain ``net`` in situ for ``max_steps`` mini-batches, checking its test accuracy.

    The test accuracy is measured before retraining and every ``check_every`` mini-batches;
    the recovery cost is the first check that reaches ``target``. Training runs the whole
    budget either way, so the final accuracy is not selected by the stopping rule.

    Returns
    -------
    steps : int array, (n_checks,)
        Mini-batches done at each check (the first is 0, before any retraining).
    accuracy : float array, (n_checks,)
    steps_to_recover : float
        The first ``steps`` value whose accuracy reached ``target``; NaN when none did.
    """
    batch_size = values["training"]["batch_size"]
    generator = np.random.default_rng(seed)
    steps, accuracy = [0], [evaluate(trained, net, data.test)]
    while steps[-1] < max_steps:
        chunk = min(check_every, max_steps - steps[-1])
        train_steps(trained, net, data.train, chunk, batch_size, generator)
        steps.append(steps[-1] + chunk)
        accuracy.append(evaluate(trained, net, data.test))
        if advance:
            advance(chunk)
    reached = [s for s, a in zip(steps, accuracy, strict=True) if a >= target]
    return (np.array(steps), np.array(accuracy),
            float(reached[0]) if reached else math.nan)


def train_steps(trained: Trained, net: Network, split: Split, steps: int, batch_size: int,
                generator: np.random.Generator) -> None:
    """``steps`` more mini-batches of in-situ training of ``net`` on a random part of ``split``.

    The learner keeps its state between calls (a second ``fit`` continues the first).
    """
    samples = min(steps * batch_size, len(split))
    trained.learner.fit(net, split.subset(samples, rng=generator), epochs=1,
                        batch_size=batch_size, rng=generator, progress=False)


def history_arrays(history: History) -> dict[str, np.ndarray]:
    """The history as ``history/<column>`` arrays for a results file."""
    return {f"history/{key}": value for key, value in history.as_arrays().items()}


def compensating_periphery(model: DeviceModel) -> Periphery:
    """The chip's default periphery for ``model``, with global drift compensation on."""
    default = Periphery.ideal() if isinstance(model, Ideal) else Periphery()
    return dataclasses.replace(default, drift_compensation=True)
