"""The backprop baselines: DigitalBackprop (PyTorch, ex-situ deployment) and AnalogBackprop
(transposed reads, pulsed updates), on digits."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import analogsim as asim
from analogsim.errors import BackendUnavailableError, ParameterError
from analogsim.learners._digital import chip_logits
from analogsim.learners.backprop import AnalogBackprop
from analogsim.learners.digital_backprop import DigitalBackprop


@pytest.fixture(scope="module")
def bp_digits() -> asim.datasets.Dataset:
    return asim.datasets.load("digits")


def _net(widths: list[int], device: asim.devices.DeviceModel | None = None, seed: int = 0,
         **options) -> asim.Network:
    device = asim.devices.Ideal() if device is None else device
    return asim.Network(asim.Chip(device=device, seed=seed), widths, rng=seed, **options)


def _refuse_calls(tiles: list[asim.Tile], names: tuple[str, ...]) -> None:
    """Make these tile operations fail the test (instance methods only)."""
    def refuse(name: str):
        def raise_error(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"tile.{name}() must not be called here")
        return raise_error

    for tile in tiles:
        for name in names:
            setattr(tile, name, refuse(name))


# ---------------------------------------------------------------------------- DigitalBackprop
def test_digital_backprop_deployed_on_ideal_reaches_95_percent(bp_digits) -> None:
    """Measured 0.969-0.978 on seeds 0-2, on the chip and in float alike."""
    pytest.importorskip("torch")
    net = _net([64, 128, 128])
    learner = DigitalBackprop()
    history = learner.fit(net, bp_digits.train, epochs=10, rng=0, progress=False)
    assert history[-1].train_accuracy > 0.99
    on_chip = learner.evaluate(net, bp_digits.test)
    assert on_chip >= 0.95
    assert on_chip == learner.evaluate_digital(bp_digits.test)


@pytest.mark.parametrize("normalisation, activation, widths", [
    ("rms", "relu", [64, 32, 10]),        # the last layer is the classifier
    ("layer", "tanh", [64, 32, 24]),      # a digital readout
    ("none", "sigmoid", [64, 32, 24]),
    ("rms", "identity", [64, 20, 20, 10]),
], ids=["rms-relu-last", "layer-tanh-readout", "none-sigmoid-readout", "rms-identity-last"])
def test_deployed_ideal_chip_computes_the_float_model(bp_digits, normalisation, activation,
                                                     widths) -> None:
    pytest.importorskip("torch")
    net = _net(widths, normalisation=normalisation, activation=activation)
    learner = DigitalBackprop(lr=3e-3)
    learner.fit(net, bp_digits.train.subset(400), epochs=2, rng=1, progress=False)
    assert (net.readout is None) == (widths[-1] == 10)
    x = bp_digits.test.x
    float_logits = learner.model.logits(x)
    np.testing.assert_allclose(chip_logits(net, x, "test", 10), float_logits,
                               rtol=1e-4, atol=1e-4 * np.abs(float_logits).max())


def test_ex_situ_deployment_onto_reram(bp_digits) -> None:
    """Programming error costs a little: measured 0.953-0.961 on ReRAM (float 0.975)."""
    pytest.importorskip("torch")
    learner = DigitalBackprop()
    learner.fit(_net([64, 128, 128]), bp_digits.train, epochs=10, rng=0, progress=False)
    reram = _net([64, 128, 128], device=asim.devices.ReRAM(), seed=2)
    learner.deploy(reram, rng=3)
    assert learner.evaluate(reram, bp_digits.test) >= 0.90


def test_training_never_touches_the_chip(bp_digits) -> None:
    pytest.importorskip("torch")
    net = _net([64, 16, 10], device=asim.devices.ReRAM())
    _refuse_calls(net.tiles, ("forward", "backward", "update", "read", "program"))
    learner = DigitalBackprop()
    learner.fit(net, bp_digits.train.subset(200), epochs=1, rng=0, progress=False,
                deploy=False)
    assert learner.evaluate_digital(bp_digits.test) > 0.1


def test_digital_backprop_is_reproducible(bp_digits) -> None:
    pytest.importorskip("torch")
    data = bp_digits.train.subset(300)

    def run(seed: int) -> tuple[np.ndarray, np.ndarray]:
        learner = DigitalBackprop()
        history = learner.fit(_net([64, 16, 10]), data, epochs=2, rng=seed, progress=False,
                              deploy=False)
        return history.as_arrays()["loss"], learner.model.numpy_parameters()[0][0]

    first, again, other = run(4), run(4), run(5)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_digital_backprop_bad_use_raises(bp_digits) -> None:
    pytest.importorskip("torch")
    with pytest.raises(ParameterError, match=r"'optimizer' parameter of DigitalBackprop must "
                                             r"be one of 'adam', 'sgd'. Got 'rmsprop'"):
        DigitalBackprop(optimizer="rmsprop")
    with pytest.raises(ParameterError, match=r"'momentum' parameter of DigitalBackprop"):
        DigitalBackprop(momentum=1.0)
    with pytest.raises(ParameterError, match=r"'schedule' parameter of DigitalBackprop must "
                                             r"be one of 'cosine', 'constant'"):
        DigitalBackprop(schedule="step")
    learner = DigitalBackprop()
    with pytest.raises(ParameterError, match=r"DigitalBackprop.deploy: there is no trained "
                                             r"model yet; call fit first"):
        learner.deploy(_net([64, 10]))
    with pytest.raises(ParameterError, match=r"evaluate_digital: there is no trained model"):
        learner.evaluate_digital(bp_digits.test)
    with pytest.raises(ParameterError, match=r"readout=False makes the last layer the "
                                             r"classifier, so the last width must be "
                                             r"n_classes = 10"):
        DigitalBackprop(readout=False).fit(_net([64, 12]), bp_digits.train, progress=False)
    learner.fit(_net([64, 10]), bp_digits.train.subset(100), epochs=1, progress=False)
    with pytest.raises(ParameterError, match=r"does not match the trained model"):
        learner.deploy(_net([64, 12, 10]))
    with pytest.raises(ParameterError, match=r"'data' must be a datasets.Split"):
        learner.evaluate_digital(bp_digits.test.x)
    narrow = asim.datasets.Split(bp_digits.test.x[:, :8], bp_digits.test.y)
    with pytest.raises(ParameterError, match=r"the model takes 64 inputs but the data has 8"):
        learner.evaluate_digital(narrow)


def test_missing_torch_is_a_clear_error(bp_digits, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    learner = DigitalBackprop()  # constructing needs no torch
    with pytest.raises(BackendUnavailableError, match=r"pip install 'analogsim\[torch\]'"):
        learner.fit(_net([64, 10]), bp_digits.train, epochs=1, progress=False)


# ---------------------------------------------------------------------------- AnalogBackprop
def test_analog_backprop_reaches_90_percent_on_ideal(bp_digits) -> None:
    """Measured 0.961-0.975 on seeds 0-2."""
    net = _net([64, 64, 10])
    learner = AnalogBackprop()
    learner.fit(net, bp_digits.train, epochs=10, rng=0, progress=False)
    assert net.readout is None
    assert learner.evaluate(net, bp_digits.test) >= 0.90


def test_analog_backprop_learns_on_reram(bp_digits) -> None:
    """Default ReRAM chip (pulsed soft-bounds updates, read noise, 7/9-bit converters):
    measured 0.89-0.92 on seeds 0-2 after 10 epochs; chance is 0.10, threshold 0.50. The
    error goes back by transposed reads: the weights are never read out."""
    net = _net([64, 64, 10], device=asim.devices.ReRAM())
    calls = []
    _refuse_calls(net.tiles, ("read",))
    for tile in net.tiles:
        backward = tile.backward
        tile.backward = lambda d, *, rng=None, _backward=backward: calls.append(1) or _backward(
            d, rng=rng)
    learner = AnalogBackprop()
    learner.fit(net, bp_digits.train, epochs=10, rng=0, progress=False)
    assert len(calls) == 10 * 45  # one transposed read per batch (45 batches of 32)
    assert learner.evaluate(net, bp_digits.test) >= 0.50


@pytest.mark.parametrize("normalisation, activation, widths", [
    ("rms", "tanh", [64, 12, 10]),
    ("layer", "sigmoid", [64, 12, 9, 7]),
    ("rms", "relu", [64, 12, 9, 7]),
    ("none", "tanh", [64, 12, 10]),
], ids=["rms-tanh-last", "layer-sigmoid-readout", "rms-relu-readout", "none-tanh-last"])
def test_analog_step_on_ideal_is_the_exact_gradient_step(bp_digits, normalisation, activation,
                                                        widths) -> None:
    """One AnalogBackprop step on an ideal chip equals plain SGD on PyTorch's gradient."""
    torch = pytest.importorskip("torch")
    from analogsim.learners.digital_backprop import _architecture, _FloatMLP

    net = _net(widths, normalisation=normalisation, activation=activation)
    rng = np.random.default_rng(0)
    for layer in net.layers:
        layer.bias[...] = rng.normal(0, 0.1, layer.bias.shape)
    learner = AnalogBackprop(lr=0.5, readout_lr=0.25)
    learner.n_classes = 10
    learner._setup(net, 10, rng)
    readout = net.readout is not None
    if readout:
        net.readout.weight[...] = rng.normal(0, 0.5, net.readout.weight.shape)
    model = _FloatMLP(_architecture(net, 10, readout), seed=0)
    before = [(t.read(), layer.bias.copy()) for t, layer in zip(net.tiles, net.layers,
                                                                 strict=True)]
    if readout:
        before.append((net.readout.weight.copy(), net.readout.bias.copy()))
    with torch.no_grad():
        for (weight, bias), w, b in zip(before, model.weights, model.biases, strict=True):
            w.copy_(torch.from_numpy(weight))
            b.copy_(torch.from_numpy(bias))
    x, y = bp_digits.train.x[:32], bp_digits.train.y[:32]
    loss = torch.nn.functional.cross_entropy(model._forward(torch.from_numpy(x)),
                                             torch.from_numpy(y))
    loss.backward()
    learner.train_step(net, x, y, rng)
    after = [(t.read(), layer.bias) for t, layer in zip(net.tiles, net.layers, strict=True)]
    rates = [0.5] * len(net.tiles)
    if readout:
        after.append((net.readout.weight, net.readout.bias))
        rates.append(0.25)
    for old, new, w, b, rate in zip(before, after, model.weights, model.biases, rates,
                                    strict=True):
        for value_before, value_after, grad in ((old[0], new[0], w.grad), (old[1], new[1], b.grad)):
            grad = grad.numpy()
            np.testing.assert_allclose(value_after, value_before - rate * grad, rtol=1e-4,
                                       atol=1e-4 * np.abs(grad).max())


def test_analog_backprop_is_reproducible(bp_digits) -> None:
    data = bp_digits.train.subset(300)

    def run(seed: int) -> tuple[np.ndarray, np.ndarray]:
        net = _net([64, 16, 10], device=asim.devices.ReRAM(), seed=1)
        learner = AnalogBackprop()
        history = learner.fit(net, data, epochs=2, rng=seed, progress=False)
        return history.as_arrays()["loss"], learner.predict(net, bp_digits.test.x)

    first, again, other = run(2), run(2), run(3)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_analog_backprop_bad_use_raises(bp_digits) -> None:
    with pytest.raises(ParameterError, match=r"'lr' parameter of AnalogBackprop must be a "
                                             r"real number in \(0, inf\). Got -0.1"):
        AnalogBackprop(lr=-0.1)
    with pytest.raises(ParameterError, match=r"'readout' parameter of AnalogBackprop"):
        AnalogBackprop(readout="yes")
    with pytest.raises(ParameterError, match=r"AnalogBackprop.fit: readout=False makes the "
                                             r"last layer the classifier"):
        AnalogBackprop(readout=False).fit(_net([64, 16]), bp_digits.train, progress=False)
    with pytest.raises(ParameterError, match=r"no readout and its last width 16 is not the "
                                             r"number of classes 10"):
        learner = AnalogBackprop()
        learner.n_classes = 10
        learner.predict(_net([64, 16]), bp_digits.test.x)
    with pytest.raises(ParameterError, match=r"labels must be in \[0, 5\)"):
        AnalogBackprop(n_classes=5).fit(_net([64, 5]), bp_digits.train, progress=False)
