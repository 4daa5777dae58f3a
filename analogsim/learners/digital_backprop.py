"""Digital backprop in PyTorch, the immortal float reference, and the ex-situ route.

:class:`DigitalBackprop` trains a float32 model of a :class:`~analogsim.network.Network` (same
widths, activations, normalisations, biases and readout) on the CPU, never touching the chip;
:meth:`DigitalBackprop.deploy` then programs its weights onto the chip, with the chip's
programming error (ex-situ training). PyTorch is an optional extra, imported only when a model
is built.
"""

from __future__ import annotations

import itertools

import numpy as np

from analogsim._validation import check_choice, check_range
from analogsim.datasets import Split
from analogsim.errors import BackendUnavailableError, ParameterError
from analogsim.learners._base import History, Learner
from analogsim.learners._digital import chip_logits
from analogsim.learners.backprop import wants_readout
from analogsim.network import Network, Readout
from analogsim.tile import RngLike

SCHEDULES = ("cosine", "constant")


class DigitalBackprop(Learner):
    """The float reference: an MLP in PyTorch (CPU) with the network's semantics.

    The model has the network's widths, activations, normalisations and biases (layer k:
    ``activation(normalise(h) W_k + b_k)``, the first layer's input not normalised), plus a
    readout to the classes: a digital linear layer on the normalised last activity, or the
    last layer itself when its width is the number of classes (its output taken before the
    activation). :meth:`fit` trains the model with cross-entropy and never touches the chip
    during training; :meth:`deploy` then programs the weights onto the chip and copies
    biases and readout (the ex-situ route). On an ``Ideal`` chip the deployed network computes
    what the float model computes.

    Parameters
    ----------
    lr : float, > 0
        Learning rate. Default 1e-3.
    optimizer : {"adam", "sgd"}
        Adam (default) or SGD with ``momentum``.
    momentum : float in [0, 1)
        Momentum of SGD (ignored by Adam). Default 0.9.
    weight_decay : float, >= 0
        L2 penalty (PyTorch's ``weight_decay``). Default 0.
    schedule : {"cosine", "constant"}
        Learning rate over the steps of one :meth:`fit` call: cosine annealing from ``lr`` to
        0 (default; the last weights are then not those of a noisy step) or constant.
    readout : bool, optional
        As for :class:`AnalogBackprop`: a digital readout (True), the last layer as the
        classifier (False) or by the widths (None, default).
    n_classes : int, optional
        Number of classes; by default ``max(label) + 1`` of the training data.

    Requires PyTorch (``pip install 'analogsim[torch]'``).
    """

    forward_only = False
    default_batch_size = 64

    def __init__(self, *, lr: float = 1e-3, optimizer: str = "adam", momentum: float = 0.9,
                 weight_decay: float = 0.0, schedule: str = "cosine",
                 readout: bool | None = None, n_classes: int | None = None) -> None:
        super().__init__(n_classes)
        owner = "DigitalBackprop"
        check_range(owner, "lr", lr, 0.0, None, closed="neither")
        check_choice(owner, "optimizer", optimizer, ("adam", "sgd"))
        check_range(owner, "momentum", momentum, 0.0, 1.0, closed="left")
        check_range(owner, "weight_decay", weight_decay, 0.0, None)
        check_choice(owner, "schedule", schedule, SCHEDULES)
        check_choice(owner, "readout", readout, (None, True, False))
        self.lr, self.optimizer, self.momentum = float(lr), optimizer, float(momentum)
        self.weight_decay, self.schedule, self.readout = float(weight_decay), schedule, readout
        self.model: _FloatMLP | None = None
        self._steps: tuple[int, int] = (0, 1)  # (steps taken, steps) of the current fit

    def fit(self, net: Network, data: Split, epochs: int = 10, *,
            batch_size: int | None = None, rng: RngLike = 0, progress: bool = True,
            deploy: bool = True) -> History:
        """Train the float model on ``data`` (see :meth:`Learner.fit`); then, unless
        ``deploy=False``, program it onto ``net``'s chip with :meth:`deploy`.

        A second ``fit`` on a network of the same architecture continues training the model
        (with the learning-rate schedule started again).
        """
        size = self.default_batch_size if batch_size is None else batch_size
        if isinstance(data, Split) and isinstance(size, int) and isinstance(epochs, int):
            self._steps = (0, max(1, epochs * -(-len(data) // max(size, 1))))
        history = super().fit(net, data, epochs, batch_size=batch_size, rng=rng,
                              progress=progress)
        if deploy:
            self.deploy(net)
        return history

    def _setup(self, net: Network, n_classes: int, rng: np.random.Generator) -> None:
        readout = wants_readout("DigitalBackprop.fit", net, n_classes, self.readout)
        architecture = _architecture(net, n_classes, readout)
        if self.model is None or self.model.architecture != architecture:
            self.model = _FloatMLP(architecture, seed=int(rng.integers(2**62)))
            self.model.make_optimizer(self.optimizer, self.lr, self.momentum,
                                      self.weight_decay)

    def train_step(self, net: Network, x: np.ndarray, y: np.ndarray,
                   rng: np.random.Generator) -> tuple[float, int]:
        taken, total = self._steps
        factor = 0.5 * (1.0 + np.cos(np.pi * taken / total)) if self.schedule == "cosine" else 1.0
        self._steps = (taken + 1, total)
        return self.model.step(x, y, self.lr * factor)

    def predict(self, net: Network, x: object) -> np.ndarray:
        """Labels (batch,) computed on ``net``'s chip (call :meth:`deploy` first)."""
        logits = chip_logits(net, x, "DigitalBackprop.predict", self.n_classes)
        return np.argmax(logits, axis=1).astype(np.int64)

    def deploy(self, net: Network, *, fill: float = 0.8, rng: RngLike = None) -> None:
        """Program the trained weights onto ``net``'s tiles (with the chip's programming
        error), copy biases, set ``net.readout`` (None when the last layer classifies).

        ``fill``: fraction of the device range the largest weight of each tile occupies.
        """
        model = self._trained("deploy")
        readout = model.architecture[-1]
        if _architecture(net, model.architecture[-2], readout) != model.architecture:
            raise ParameterError(f"DigitalBackprop.deploy: the network (widths {net.widths}, "
                                 f"activation {net.activation!r}, normalisation "
                                 f"{net.normalisation!r}) does not match the trained model "
                                 f"{model.architecture[:3]}.")
        weights, biases = model.numpy_parameters()
        for layer, weight, bias in zip(net.layers, weights, biases, strict=False):
            layer.tile.program(weight, fill=fill, rng=rng)
            layer.bias[...] = bias
        net.readout = Readout(weights[-1], biases[-1]) if readout else None

    def evaluate_digital(self, data: Split, *, batch_size: int = 1000) -> float:
        """Accuracy of the float model on ``data`` (a datasets.Split)."""
        model = self._trained("evaluate_digital")
        if not isinstance(data, Split):
            raise ParameterError(f"DigitalBackprop.evaluate_digital: 'data' must be a "
                                 f"datasets.Split. Got {type(data).__name__} instead.")
        if data.n_features != model.architecture[0][0]:
            raise ParameterError(f"DigitalBackprop.evaluate_digital: the model takes "
                                 f"{model.architecture[0][0]} inputs but the data has "
                                 f"{data.n_features} features.")
        correct = 0
        for start in range(0, len(data), batch_size):
            x, y = data.x[start:start + batch_size], data.y[start:start + batch_size]
            correct += int(np.sum(np.argmax(model.logits(x), axis=1) == y))
        return correct / len(data)

    def _trained(self, method: str) -> _FloatMLP:
        if self.model is None:
            raise ParameterError(f"DigitalBackprop.{method}: there is no trained model yet; "
                                 "call fit first.")
        return self.model


def _architecture(net: Network, n_classes: int, readout: bool) -> tuple:
    """What the float model must match: widths, activations, normalisations, readout."""
    return (tuple(net.widths), tuple(layer.activation for layer in net.layers),
            tuple(layer.normalisation for layer in net.layers), net.normalisation,
            n_classes, readout)


def _import_torch():
    try:
        import torch
    except ImportError as error:  # torch is an optional extra
        raise BackendUnavailableError("DigitalBackprop needs PyTorch; install it with "
                                      "pip install 'analogsim[torch]'.") from error
    return torch


class _FloatMLP:
    """The float32 PyTorch model of a network: weights (fan_in, fan_out) like the tiles."""

    def __init__(self, architecture: tuple, seed: int) -> None:
        torch = self.torch = _import_torch()
        self.architecture = architecture
        widths, _, _, _, n_classes, readout = architecture
        shapes = list(itertools.pairwise(widths))
        if readout:
            shapes.append((widths[-1], n_classes))
        generator = torch.Generator().manual_seed(seed)
        self.weights, self.biases = [], []
        for fan_in, fan_out in shapes:  # the Network's initialisation, uniform +-1/sqrt(fan_in)
            bound = 1.0 / np.sqrt(fan_in)
            uniform = torch.rand(fan_in, fan_out, generator=generator)
            self.weights.append(((2.0 * uniform - 1.0) * bound).requires_grad_())
            self.biases.append(torch.zeros(fan_out, requires_grad=True))
        self.optimizer = None

    def make_optimizer(self, name: str, lr: float, momentum: float,
                       weight_decay: float) -> None:
        parameters = [*self.weights, *self.biases]
        if name == "adam":
            self.optimizer = self.torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
        else:
            self.optimizer = self.torch.optim.SGD(parameters, lr=lr, momentum=momentum,
                                                  weight_decay=weight_decay)

    def _forward(self, x):
        _, activations, normalisations, readout_norm, _, readout = self.architecture
        h, last = x, len(activations) - 1
        for index, (activation, name) in enumerate(zip(activations, normalisations, strict=True)):
            z = self._normalise(name, h) @ self.weights[index] + self.biases[index]
            if index == last and not readout:
                return z
            h = self._activate(activation, z)
        return self._normalise(readout_norm, h) @ self.weights[-1] + self.biases[-1]

    def _normalise(self, name: str, h):
        """analogsim.network.normalise in torch (the clamp only keeps gradients finite)."""
        eps = 1e-6
        if name == "rms":
            return h / (self.torch.sqrt((h * h).mean(dim=1, keepdim=True).clamp_min(1e-30))
                        + eps)
        if name == "layer":
            centred = h - h.mean(dim=1, keepdim=True)
            variance = (centred * centred).mean(dim=1, keepdim=True)
            return centred / (self.torch.sqrt(variance.clamp_min(1e-30)) + eps)
        return h

    def _activate(self, name: str, z):
        torch = self.torch
        if name == "relu":
            return torch.relu(z)
        if name == "tanh":
            return torch.tanh(z)
        if name == "sigmoid":
            return torch.sigmoid(z)
        return z

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, int]:
        """One optimiser step at ``lr`` on cross-entropy; (loss, hits before the step)."""
        torch = self.torch
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        logits = self._forward(torch.from_numpy(x))
        target = torch.from_numpy(y)
        loss = torch.nn.functional.cross_entropy(logits, target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach()), int((logits.detach().argmax(dim=1) == target).sum())

    def logits(self, x: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self._forward(self.torch.from_numpy(np.ascontiguousarray(x))).numpy()

    def numpy_parameters(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return ([w.detach().numpy().copy() for w in self.weights],
                [b.detach().numpy().copy() for b in self.biases])
