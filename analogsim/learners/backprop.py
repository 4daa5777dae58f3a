"""Analog backprop on the chip, the in-situ baseline (as aihwkit trains analog layers).

Per mini-batch: the forward pass runs through the tiles; the output error goes back through
the *same* noisy arrays with transposed reads (``tile.backward``), through the digital
derivatives of the activation and of the normalisation between layers; then every tile gets
the pulsed outer-product update ``tile.update(x, delta, lr)`` (``W <- W - lr x^T delta``), all
after the backward pass, with the weights the errors went through. Biases and the optional
readout are digital and take plain SGD steps.

The normalisation's Jacobian is applied exactly (see
:func:`analogsim.learners._digital.normalise_backward`); it needs only the layer's activity,
which the periphery holds. The common shortcut, dividing by the same RMS, drops a rank-1
projection and is not used.

The float reference (PyTorch) and the ex-situ route are in
:mod:`analogsim.learners.digital_backprop`.
"""

from __future__ import annotations

import numpy as np

from analogsim._validation import check_choice, check_range
from analogsim.errors import ParameterError
from analogsim.learners._base import Learner
from analogsim.learners._digital import (
    chip_logits,
    cross_entropy,
    logit_gradient,
    new_readout,
    normalise_backward,
    readout_features,
    readout_step,
)
from analogsim.network import Network, activate, activation_derivative, normalise


def wants_readout(owner: str, net: Network, n_classes: int, readout: bool | None) -> bool:
    """Whether a digital readout sits on top of ``net`` (``readout=None``: unless the last
    width is already the number of classes); raise if the choice cannot work."""
    last = net.widths[-1]
    if readout is None:
        return last != n_classes
    if not readout and last != n_classes:
        raise ParameterError(f"{owner}: readout=False makes the last layer the classifier, so "
                             f"the last width must be n_classes = {n_classes}; got widths "
                             f"{net.widths}. Use readout=True or None, or end the widths with "
                             f"{n_classes}.")
    return bool(readout)


class AnalogBackprop(Learner):
    """Backpropagation on the chip: transposed reads for the error, pulsed updates.

    Parameters
    ----------
    lr : float, > 0
        Learning rate of the tiles and biases (weight units per unit gradient). Default 0.02.
    readout_lr : float, > 0, optional
        Learning rate of the digital readout; default ``lr``.
    readout : bool, optional
        Put a digital linear readout on top (True), make the last layer the classifier
        (False: its width must be the number of classes and its output is used before the
        activation), or choose by the widths (None, default).
    n_classes : int, optional
        Number of classes; by default ``max(label) + 1`` of the training data.
    """

    forward_only = False
    default_batch_size = 32

    def __init__(self, *, lr: float = 0.02, readout_lr: float | None = None,
                 readout: bool | None = None, n_classes: int | None = None) -> None:
        super().__init__(n_classes)
        owner = "AnalogBackprop"
        check_range(owner, "lr", lr, 0.0, None, closed="neither")
        if readout_lr is not None:
            check_range(owner, "readout_lr", readout_lr, 0.0, None, closed="neither")
        check_choice(owner, "readout", readout, (None, True, False))
        self.lr = float(lr)
        self.readout_lr = self.lr if readout_lr is None else float(readout_lr)
        self.readout = readout

    def _setup(self, net: Network, n_classes: int, rng: np.random.Generator) -> None:
        """A zero digital readout when one is wanted (kept when it fits); none otherwise."""
        if not wants_readout("AnalogBackprop.fit", net, n_classes, self.readout):
            net.readout = None
        elif net.readout is None or net.readout.weight.shape != (net.widths[-1], n_classes):
            net.readout = new_readout(net.widths[-1], n_classes)

    def train_step(self, net: Network, x: np.ndarray, y: np.ndarray,
                   rng: np.random.Generator) -> tuple[float, int]:
        inputs, pre, acts = [], [], []
        h = x
        for layer in net.layers:
            inputs.append(normalise(layer.normalisation, h))
            pre.append(layer.tile.forward(inputs[-1], rng=rng) + layer.bias)
            h = activate(layer.activation, pre[-1])
            acts.append(h)
        if net.readout is None:
            logits = pre[-1]
            delta = logit_gradient(logits.astype(np.float64), y).astype(np.float32)
        else:
            features = readout_features(net, acts[-1])
            logits = net.readout(features)
            grad_logits = logit_gradient(logits.astype(np.float64), y).astype(np.float32)
            grad_features = readout_step(net.readout, features, grad_logits, self.readout_lr)
            grad_h = normalise_backward(net.normalisation, acts[-1], grad_features)
            delta = grad_h * activation_derivative(net.layers[-1].activation, pre[-1])
        deltas = self._backward(net, delta, pre, acts, rng)
        for layer, layer_input, layer_delta in zip(net.layers, inputs, deltas, strict=True):
            layer.tile.update(layer_input, layer_delta, self.lr, rng=rng)
            layer.bias -= np.float32(self.lr) * layer_delta.sum(axis=0)
        loss = float(cross_entropy(logits.astype(np.float64), y).mean())
        return loss, int(np.sum(np.argmax(logits, axis=1) == y))

    def _backward(self, net: Network, delta: np.ndarray, pre: list[np.ndarray],
                  acts: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        """Errors d(loss)/dz of every layer, last first, through transposed reads."""
        deltas = [delta]
        for index in range(len(net.layers) - 1, 0, -1):
            layer = net.layers[index]
            grad_input = layer.tile.backward(delta, rng=rng)
            grad_h = normalise_backward(layer.normalisation, acts[index - 1], grad_input)
            delta = grad_h * activation_derivative(net.layers[index - 1].activation,
                                                   pre[index - 1])
            deltas.append(delta)
        return deltas[::-1]

    def predict(self, net: Network, x: object) -> np.ndarray:
        """Labels (batch,) from the readout (or the last tile's output), on the chip."""
        logits = chip_logits(net, x, "AnalogBackprop.predict", self.n_classes)
        return np.argmax(logits, axis=1).astype(np.int64)

