"""ForwardForward: ideal and ReRAM chips, the local update rule, reproducibility, errors.

Accuracy thresholds were set from measured values with margin (digits, 360 test samples): on
Ideal, [64, 200, 200], 15 epochs, readout 0.956-0.964 and goodness 0.894-0.908 over seeds 0-3
(thresholds 0.90 and 0.85); on the default ReRAM chip, [64, 100, 100], 5 epochs, readout
0.82-0.89 over seeds 0-2 (threshold 0.50, chance is 0.10). Hard negatives: [64, 100], 8
epochs, readout 0.92-0.93 (threshold 0.85).
"""

from __future__ import annotations

import numpy as np
import pytest

import analogsim as asim
from analogsim.datasets import Split
from analogsim.errors import NonFiniteInputError, ParameterError
from analogsim.learners.forward_forward import ForwardForward


def _net(widths: list[int], device: asim.devices.DeviceModel, seed: int = 0,
         **kwargs: object) -> asim.Network:
    return asim.Network(asim.Chip(device=device, seed=seed), widths, **kwargs)


def test_ideal_chip_reaches_90_percent(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 200, 200], asim.devices.Ideal())
    learner = ForwardForward()
    history = learner.fit(net, digits.train, epochs=15, rng=0, progress=False)
    assert len(history) == 15
    assert history[-1].train_accuracy > history[0].train_accuracy
    assert history[-1].loss < history[0].loss
    assert learner.evaluate(net, digits.test) >= 0.90
    learner.predict_by = "goodness"
    assert learner.evaluate(net, digits.test) >= 0.85


def test_reram_chip_learns_well_above_chance(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 100, 100], asim.devices.ReRAM())
    learner = ForwardForward()
    learner.fit(net, digits.train, epochs=5, rng=0, progress=False)
    assert learner.evaluate(net, digits.test) >= 0.50


@pytest.mark.parametrize("negatives", ["hard", "hardest"])
def test_hard_negatives_train(digits: asim.datasets.Dataset, negatives: str) -> None:
    net = _net([64, 100], asim.devices.Ideal())
    learner = ForwardForward(negatives=negatives)
    learner.fit(net, digits.train, epochs=8, rng=0, progress=False)
    assert learner.evaluate(net, digits.test) >= 0.85


def test_seeded_runs_are_reproducible(digits: asim.datasets.Dataset) -> None:
    """Same chip seed and learner seed: identical histories and predictions, on a noisy chip."""
    results = []
    for _ in range(2):
        net = _net([64, 60, 60], asim.devices.ReRAM(), seed=3)
        learner = ForwardForward(negatives="hard")
        history = learner.fit(net, digits.train, epochs=2, rng=7, progress=False)
        columns = history.as_arrays()
        results.append((columns["loss"], columns["train_accuracy"],
                        learner.predict(net, digits.test.x), net.readout.weight.copy()))
    for first, second in zip(*results, strict=True):
        np.testing.assert_array_equal(first, second)


def test_layer_update_is_the_gradient_of_the_local_loss() -> None:
    """One layer's step equals -lr * d(FF loss)/dW (torch autograd) on an ideal chip."""
    torch = pytest.importorskip("torch")  # the optional 'torch' extra
    batch, n_in, n_out, lr = 6, 12, 9, 0.01
    net = _net([n_in, n_out], asim.devices.Ideal(), seed=1)
    layer = net.layers[0]
    layer.bias[:] = np.linspace(-0.1, 0.1, n_out, dtype=np.float32)
    learner = ForwardForward(lr=lr, threshold=0.05, peer_normalisation=0.0,
                             normalise_update=False, n_classes=3)
    h_in = np.random.default_rng(0).uniform(0.0, 1.0, (2 * batch, n_in)).astype(np.float32)
    weight = torch.tensor(layer.tile.read(), dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(layer.bias, dtype=torch.float64, requires_grad=True)
    goodness = torch.relu(torch.tensor(h_in, dtype=torch.float64) @ weight + bias).pow(2).sum(1)
    sign = torch.cat([-torch.ones(batch), torch.ones(batch)]).double()
    loss = torch.nn.functional.softplus(sign * (goodness - 0.05 * n_out)).sum() / batch
    loss.backward()
    before = layer.tile.read()
    bias_before = layer.bias.copy()
    reported, _ = learner._train_layer(0, layer, h_in, batch)
    assert reported == pytest.approx(loss.item(), rel=1e-5)
    np.testing.assert_allclose(layer.tile.read() - before, -lr * weight.grad.numpy(),
                               rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(layer.bias - bias_before, -lr * bias.grad.numpy(),
                               rtol=1e-3, atol=1e-7)


def test_symba_update_is_the_gradient_of_its_loss() -> None:
    """SymBa: one layer's step equals -lr * d(softplus(-alpha (G_pos - G_neg)))/dW."""
    torch = pytest.importorskip("torch")
    batch, n_in, n_out, lr, alpha = 5, 10, 7, 0.02, 30.0
    net = _net([n_in, n_out], asim.devices.Ideal(), seed=2)
    layer = net.layers[0]
    learner = ForwardForward(lr=lr, loss="symba", symba_alpha=alpha, peer_normalisation=0.0,
                             normalise_update=False, n_classes=3)
    h_in = np.random.default_rng(1).uniform(0.0, 1.0, (2 * batch, n_in)).astype(np.float32)
    weight = torch.tensor(layer.tile.read(), dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(layer.bias, dtype=torch.float64, requires_grad=True)
    goodness = torch.relu(torch.tensor(h_in, dtype=torch.float64) @ weight + bias).pow(2).sum(1)
    gap = goodness[:batch] - goodness[batch:]
    loss = torch.nn.functional.softplus(-alpha / n_out * gap).mean()
    loss.backward()
    before = layer.tile.read()
    reported, _ = learner._train_layer(0, layer, h_in, batch)
    assert reported == pytest.approx(loss.item(), rel=1e-5)
    np.testing.assert_allclose(layer.tile.read() - before, -lr * weight.grad.numpy(),
                               rtol=1e-3, atol=1e-7)


def test_symba_loss_learns_digits(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 100], asim.devices.Ideal())
    learner = ForwardForward(loss="symba", symba_alpha=100.0)
    history = learner.fit(net, digits.train, epochs=8, rng=0, progress=False)
    assert history[-1].loss < history[0].loss
    assert learner.evaluate(net, digits.test) >= 0.85


def test_label_overlay(digits: asim.datasets.Dataset) -> None:
    """The label value follows the data's scale; one label feature marks the class."""
    learner = ForwardForward(label_scale=0.5)
    learner.fit(_net([64, 8], asim.devices.Ideal()), digits.train, epochs=1, progress=False)
    rms_norm = np.sqrt(np.mean(np.sum(digits.train.x.astype(np.float64) ** 2, axis=1)))
    assert learner.label_value == pytest.approx(0.5 * rms_norm, rel=1e-6)
    x = digits.test.x[:3]
    marked = learner._with_labels(x, np.array([4, 0, 9]))
    expected = x.copy()
    expected[:, :10] = 0.0
    expected[[0, 1, 2], [4, 0, 9]] = learner.label_value
    np.testing.assert_array_equal(marked, expected)
    neutral = learner._with_neutral_label(x)
    np.testing.assert_allclose(neutral[:, :10], learner.label_value / 10)
    np.testing.assert_array_equal(neutral[:, 10:], x[:, 10:])


def test_goodness_scores_shape_and_prediction(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 50, 50], asim.devices.Ideal())
    learner = ForwardForward(predict_by="goodness")
    learner.fit(net, digits.train, epochs=1, rng=0, progress=False)
    scores = learner.goodness_scores(net, digits.test.x[:7])
    assert scores.shape == (7, 10)
    np.testing.assert_array_equal(learner.predict(net, digits.test.x[:7]),
                                  np.argmax(scores, axis=1))


def test_readout_is_kept_when_fitting_again(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 40], asim.devices.Ideal())
    learner = ForwardForward()
    learner.fit(net, digits.train, epochs=1, rng=0, progress=False)
    readout = net.readout
    learner.fit(net, digits.train, epochs=1, rng=1, progress=False)
    assert net.readout is readout
    assert readout.weight.shape == (40, 10)


# ---------------------------------------------------------------------- bad input
def test_too_few_features_for_the_label_overlay() -> None:
    rng = np.random.default_rng(0)
    data = Split(rng.uniform(0, 1, (30, 5)), np.arange(30) % 10)
    net = _net([5, 8], asim.devices.Ideal())
    with pytest.raises(ParameterError, match="label overlay writes 10 classes"):
        ForwardForward().fit(net, data, epochs=1, progress=False)


def test_data_width_must_match_the_network(digits: asim.datasets.Dataset) -> None:
    net = _net([32, 8], asim.devices.Ideal())
    with pytest.raises(ParameterError, match="network takes 32 inputs but the data has 64"):
        ForwardForward().fit(net, digits.train, epochs=1, progress=False)


def test_labels_out_of_range(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 8], asim.devices.Ideal())
    with pytest.raises(ParameterError, match=r"labels must be in \[0, 5\)"):
        ForwardForward(n_classes=5).fit(net, digits.train, epochs=1, progress=False)


def test_nan_inputs_are_refused(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 8], asim.devices.Ideal())
    learner = ForwardForward()
    learner.fit(net, digits.train, epochs=1, progress=False)
    x = digits.test.x[:4].copy()
    x[2, 3] = np.nan
    with pytest.raises(NonFiniteInputError, match="must be finite"):
        learner.predict(net, x)
    with pytest.raises(NonFiniteInputError, match="must be finite"):
        Split(x, digits.test.y[:4])


def test_network_without_normalisation_is_refused(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 8, 8], asim.devices.Ideal(), normalisation="none")
    with pytest.raises(ParameterError, match="normalisation='rms'"):
        ForwardForward().fit(net, digits.train, epochs=1, progress=False)


def test_skip_first_layer_needs_two_layers(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 8], asim.devices.Ideal())
    with pytest.raises(ParameterError, match="skip_first_layer=True needs at least two"):
        ForwardForward(skip_first_layer=True).fit(net, digits.train, epochs=1, progress=False)


def test_predict_before_fit(digits: asim.datasets.Dataset) -> None:
    net = _net([64, 8], asim.devices.Ideal())
    with pytest.raises(ParameterError, match="number of classes is unknown"):
        ForwardForward().predict(net, digits.test.x)
    with pytest.raises(ParameterError, match="needs the readout a fit trains"):
        ForwardForward(n_classes=10).predict(net, digits.test.x)
    with pytest.raises(ParameterError, match="label strength is set by fit"):
        ForwardForward(n_classes=10, predict_by="goodness").predict(net, digits.test.x)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"threshold": 0.0}, r"'threshold' parameter of ForwardForward must be a real number in "
                         r"\(0, inf\)"),
    ({"lr": -1.0}, "'lr' parameter of ForwardForward"),
    ({"negatives": "worst"}, "'negatives' parameter of ForwardForward must be one of"),
    ({"predict_by": "vote"}, "'predict_by' parameter of ForwardForward must be one of"),
    ({"loss": "hinge"}, "'loss' parameter of ForwardForward must be one of 'threshold', "
                        "'symba'"),
    ({"symba_alpha": 0.0}, r"'symba_alpha' parameter of ForwardForward must be a real number "
                           r"in \(0, inf\)"),
    ({"goodness": "max"}, "'goodness' parameter of ForwardForward must be one of"),
    ({"peer_momentum": 1.0}, "'peer_momentum' parameter of ForwardForward"),
    ({"label_scale": 0.0}, "'label_scale' parameter of ForwardForward"),
    ({"n_classes": 1}, "'n_classes' parameter of ForwardForward"),
])
def test_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        ForwardForward(**kwargs)
