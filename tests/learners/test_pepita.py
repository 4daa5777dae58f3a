"""PEPITA: learning on ideal and ReRAM chips, the update rule, reproducibility, errors.

Accuracy thresholds were set from measured values with margin (digits, 360 test samples): on
Ideal, [64, 200, 10], 30 epochs, 0.933-0.942 over seeds 0-3 (threshold 0.90); on the default
ReRAM chip, [64, 100, 10], 5 epochs, 0.75-0.77 over seeds 0-2 (threshold 0.50, chance 0.10).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.special import softmax

import analogsim as asim
from analogsim.datasets import Split
from analogsim.errors import NonFiniteInputError, ParameterError
from analogsim.learners.pepita import PEPITA
from analogsim.network import normalise


def _net(widths: list[int], device: asim.devices.DeviceModel, seed: int = 0,
         **kwargs: object) -> asim.Network:
    return asim.Network(asim.Chip(device=device, seed=seed), widths, **kwargs)


def test_ideal_chip_reaches_90_percent(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 200, 10], asim.devices.Ideal())
    learner = PEPITA()
    history = learner.fit(net, digits.train, epochs=30, rng=0, progress=False)
    assert len(history) == 30
    assert history[-1].loss < history[0].loss
    assert learner.evaluate(net, digits.test) >= 0.90


def test_reram_chip_learns_well_above_chance(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 100, 10], asim.devices.ReRAM())
    learner = PEPITA()
    learner.fit(net, digits.train, epochs=5, rng=0, progress=False)
    assert learner.evaluate(net, digits.test) >= 0.50


def test_seeded_runs_are_reproducible(digits: asim.datasets.Dataset) -> None:
    """Same chip seed and learner seed: identical histories, F and predictions (noisy chip)."""
    results = []
    for _ in range(2):
        net = _net([64, 60, 10], asim.devices.ReRAM(), seed=3)
        learner = PEPITA()
        history = learner.fit(net, digits.train, epochs=2, rng=7, progress=False)
        columns = history.as_arrays()
        results.append((columns["loss"], columns["train_accuracy"], learner.projection,
                        learner.predict(net, digits.test.x)))
    for first, second in zip(*results, strict=True):
        np.testing.assert_array_equal(first, second)


def _reference_forward(weights: list[np.ndarray], biases: list[np.ndarray], norms: list[str],
                       inputs: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Float64 forward pass: each layer's normalised input (``norms[l]``) and its output
    (ReLU but the last)."""
    seen, outs, h = [], [], inputs
    for index, (weight, bias, norm) in enumerate(zip(weights, biases, norms, strict=True)):
        h_in = normalise(norm, h)
        h = h_in @ weight + bias
        h = h if index == len(weights) - 1 else np.maximum(h, 0.0)
        seen.append(h_in)
        outs.append(h)
    return seen, outs


def _reference_step(weights: list[np.ndarray], biases: list[np.ndarray], projection: np.ndarray,
                    x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """The paper's updates dW_l (as W <- W - lr dW_l), in float64 from the weights."""
    norms = ["none"] + ["rms"] * (len(weights) - 1)
    _, outs = _reference_forward(weights, biases, norms, x)
    error = softmax(outs[-1], axis=1) - np.eye(weights[-1].shape[1])[y]
    seen_mod, outs_mod = _reference_forward(weights, biases, norms, x - error @ projection)
    signals = [outs[k] - outs_mod[k] for k in range(len(weights) - 1)] + [error]
    return [seen_mod[k].T @ signals[k] / len(y) for k in range(len(weights))]


def test_update_is_the_papers_rule(digits: asim.datasets.Dataset) -> None:
    """One step on an ideal chip changes every W by -lr * dW of the paper's rule."""
    lr = 0.01
    net = _net([64, 30, 20, 10], asim.devices.Ideal(), seed=2)
    learner = PEPITA(lr=lr, feedback_scale=0.5, normalise_update=False)
    learner._check_data(net, digits.train, "test")
    learner._setup(net, 10, np.random.default_rng(0))
    x, y = digits.train.x[:16], digits.train.y[:16]
    before = [tile.read().astype(np.float64) for tile in net.tiles]
    biases = [layer.bias.astype(np.float64) for layer in net.layers]
    expected = _reference_step(before, biases, learner.projection.astype(np.float64), x, y)
    learner.train_step(net, x, y, np.random.default_rng(1))
    for tile, weight, step in zip(net.tiles, before, expected, strict=True):
        assert np.abs(step).max() > 0.0
        np.testing.assert_allclose(tile.read() - weight, -lr * step, rtol=2e-3, atol=1e-7)


def _options_reference_step(weights: list[np.ndarray], biases: list[np.ndarray],
                            projection: np.ndarray, x: np.ndarray, y: np.ndarray,
                            decay: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(dW_l, db_l) of the rule with every layer's input layer-normalised, the hidden signal
    rescaled per sample to |e| and the activity penalty added, in float64 from the weights."""
    norms = ["layer"] * len(weights)
    _, outs = _reference_forward(weights, biases, norms, x)
    error = softmax(outs[-1], axis=1) - np.eye(weights[-1].shape[1])[y]
    seen_mod, outs_mod = _reference_forward(weights, biases, norms, x - error @ projection)
    steps = []
    for k in range(len(weights)):
        signal = error
        if k < len(weights) - 1:
            raw = outs[k] - outs_mod[k]
            signal = raw * (np.linalg.norm(error, axis=1, keepdims=True)
                            / np.linalg.norm(raw, axis=1, keepdims=True)) + decay * outs[k]
        steps.append((seen_mod[k].T @ signal / len(y), signal.sum(axis=0) / len(y)))
    return steps


def test_update_with_the_options_is_the_documented_rule(digits: asim.datasets.Dataset) -> None:
    """hidden_lr, hidden_signal="normalised", activity_decay and both normalisations: one step
    on an ideal chip changes every W and b by the documented amounts."""
    lr, hidden_lr, decay = 0.01, 0.003, 0.05
    net = _net([64, 30, 20, 10], asim.devices.Ideal(), seed=2)
    learner = PEPITA(lr=lr, hidden_lr=hidden_lr, feedback_scale=0.5, hidden_signal="normalised",
                     activity_decay=decay, normalisation="layer", input_normalisation="layer")
    learner._check_data(net, digits.train, "test")
    learner._setup(net, 10, np.random.default_rng(0))
    assert [layer.normalisation for layer in net.layers] == ["layer"] * 3
    x, y = digits.train.x[:16], digits.train.y[:16]
    before = [tile.read().astype(np.float64) for tile in net.tiles]
    biases = [layer.bias.astype(np.float64) for layer in net.layers]
    expected = _options_reference_step(before, biases, learner.projection.astype(np.float64),
                                       x, y, decay)
    learner.train_step(net, x, y, np.random.default_rng(1))
    rates = [hidden_lr, hidden_lr, lr]
    for layer, weight, bias, (step, bias_step), rate in zip(net.layers, before, biases,
                                                           expected, rates, strict=True):
        assert np.abs(step).max() > 0.0
        np.testing.assert_allclose(layer.tile.read() - weight, -rate * step, rtol=2e-3,
                                   atol=1e-7)
        np.testing.assert_allclose(layer.bias - bias, -rate * bias_step, rtol=2e-3, atol=1e-7)


def test_bias_lr_overrides_every_layer(digits: asim.datasets.Dataset) -> None:
    """Given bias_lr, hidden biases learn at it too (not at hidden_lr)."""
    net = _net([64, 20, 10], asim.devices.Ideal(), seed=2)
    learner = PEPITA(lr=0.01, hidden_lr=0.0, bias_lr=0.1)
    learner.fit(net, digits.train, epochs=1, rng=0, progress=False)
    assert np.abs(net.layers[0].bias).max() > 0.0
    untouched = _net([64, 20, 10], asim.devices.Ideal(), seed=2)
    frozen = PEPITA(lr=0.01, hidden_lr=0.0)
    frozen.fit(untouched, digits.train, epochs=1, rng=0, progress=False)
    np.testing.assert_array_equal(untouched.layers[0].bias, 0.0)


def test_normalisation_options_set_the_network(digits: asim.datasets.Dataset) -> None:
    """The network computes what PEPITA trains: its layers get the normalisations asked for."""
    net = _net([64, 20, 20, 10], asim.devices.Ideal())
    learner = PEPITA(normalisation="layer", input_normalisation="rms")
    learner.fit(net, digits.train, epochs=1, rng=0, progress=False)
    assert [layer.normalisation for layer in net.layers] == ["rms", "layer", "layer"]
    hidden = net.activations(digits.test.x[:5])[-2]
    np.testing.assert_allclose(learner.logits(net, digits.test.x[:5]),
                               net.layers[-1].pre_activation(hidden), rtol=1e-6)
    kept = _net([64, 20, 10], asim.devices.Ideal())
    PEPITA().fit(kept, digits.train, epochs=1, rng=0, progress=False)
    assert [layer.normalisation for layer in kept.layers] == ["none", "rms"]


def test_options_stay_forward_only(digits: asim.datasets.Dataset,
                                   forward_only_guard: Callable[[asim.Network],
                                                                asim.Network]) -> None:
    net = forward_only_guard(_net([64, 40, 40, 10], asim.devices.ReRAM(), seed=1))
    learner = PEPITA(lr=0.05, hidden_lr=0.01, hidden_signal="normalised", activity_decay=0.002,
                     normalisation="layer", input_normalisation="layer")
    learner.fit(net, digits.train, epochs=2, rng=0, progress=False)
    assert learner.evaluate(net, digits.test) >= 0.2


def test_projection_scale() -> None:
    learner = PEPITA(feedback_scale=0.05)
    net = _net([400, 10], asim.devices.Ideal())
    learner._setup(net, 10, np.random.default_rng(0))
    bound = 0.05 * np.sqrt(6.0 / 400)
    assert learner.projection.shape == (10, 400)
    assert np.abs(learner.projection).max() <= bound
    # Uniform on [-a, a]: std a / sqrt(3); 4000 draws give the std to about 1.1 %.
    assert learner.projection.std() == pytest.approx(bound / np.sqrt(3.0), rel=0.05)


def test_projection_is_kept_when_fitting_again(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 20, 10], asim.devices.Ideal())
    learner = PEPITA()
    learner.fit(net, digits.train, epochs=1, rng=0, progress=False)
    projection = learner.projection.copy()
    learner.fit(net, digits.train, epochs=1, rng=1, progress=False)
    np.testing.assert_array_equal(learner.projection, projection)
    # Retraining a transferred copy uses the feedback the weights were learned with.
    other = net.transfer_to(asim.Chip(asim.devices.Ideal(), seed=1))
    learner.fit(other, digits.train, epochs=1, rng=1, progress=False)
    np.testing.assert_array_equal(learner.projection, projection)
    # A network of another shape needs, and gets, a new feedback matrix.
    narrow = asim.datasets.Split(digits.train.x[:, :32], digits.train.y)
    learner.fit(_net([32, 20, 10], asim.devices.Ideal(), seed=2), narrow, epochs=1, rng=1,
                progress=False)
    assert learner.projection.shape == (10, 32)


def test_logits_and_prediction(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 20, 10], asim.devices.Ideal())
    learner = PEPITA()
    learner.fit(net, digits.train, epochs=1, rng=0, progress=False)
    logits = learner.logits(net, digits.test.x[:5])
    assert logits.shape == (5, 10)
    np.testing.assert_array_equal(learner.predict(net, digits.test.x[:5]),
                                  np.argmax(logits, axis=1))


# ---------------------------------------------------------------------- bad input
def test_last_width_must_be_the_number_of_classes(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 20, 20], asim.devices.Ideal())
    with pytest.raises(ParameterError, match=r"last width must be 10; got widths \[64, 20, 20\]"):
        PEPITA().fit(net, digits.train, epochs=1, progress=False)


def test_data_width_must_match_the_network(digits: asim.datasets.Dataset) -> None:
    net = _net([32, 10], asim.devices.Ideal())
    with pytest.raises(ParameterError, match="network takes 32 inputs but the data has 64"):
        PEPITA().fit(net, digits.train, epochs=1, progress=False)


def test_labels_out_of_range(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 5], asim.devices.Ideal())
    with pytest.raises(ParameterError, match=r"labels must be in \[0, 5\)"):
        PEPITA(n_classes=5).fit(net, digits.train, epochs=1, progress=False)


def test_nan_inputs_are_refused(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 10], asim.devices.Ideal())
    learner = PEPITA()
    learner.fit(net, digits.train, epochs=1, progress=False)
    x = digits.test.x[:4].copy()
    x[1, 0] = np.nan
    with pytest.raises(NonFiniteInputError, match="must be finite"):
        learner.predict(net, x)
    with pytest.raises(NonFiniteInputError, match="must be finite"):
        Split(x, digits.test.y[:4])


def test_predict_checks_the_output_width(digits: asim.datasets.Dataset) -> None:
    learner = PEPITA()
    learner.fit(_net([64, 10], asim.devices.Ideal()), digits.train, epochs=1, progress=False)
    with pytest.raises(ParameterError, match="last width must be 10"):
        learner.predict(_net([64, 7], asim.devices.Ideal()), digits.test.x)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lr": -0.1}, r"'lr' parameter of PEPITA must be a real number in \[0, inf\)"),
    ({"bias_lr": -1.0}, "'bias_lr' parameter of PEPITA"),
    ({"feedback_scale": 0.0}, "'feedback_scale' parameter of PEPITA"),
    ({"normalise_update": 1},
     "'normalise_update' parameter of PEPITA must be one of True, False. Got 1"),
    ({"n_classes": 1}, "'n_classes' parameter of PEPITA"),
    ({"hidden_lr": -0.1}, r"'hidden_lr' parameter of PEPITA must be a real number in \[0, inf\)"),
    ({"hidden_signal": "scaled"}, "'hidden_signal' parameter of PEPITA must be one of"),
    ({"activity_decay": -1e-3}, "'activity_decay' parameter of PEPITA"),
    ({"normalisation": "batch"}, "'normalisation' parameter of PEPITA must be one of"),
    ({"input_normalisation": "batch"}, "'input_normalisation' parameter of PEPITA"),
])
def test_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        PEPITA(**kwargs)
