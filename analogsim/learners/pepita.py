"""PEPITA (Dellaferrera & Kreiman, ICML 2022): learning from an error-modulated second pass.

A first forward pass gives the output error ``e = softmax(z_L) - onehot(y)``. A fixed random
projection ``F`` (n_classes, n_features) feeds the error back into the input, and a second
forward pass runs on ``x_mod = x - e F``. Every layer then learns from quantities it sees
itself, by one outer product applied as pulses through ``tile.update`` (``W <- W - lr x^T d``):

- hidden layers ``l < L``: ``d = h_l - h_l_mod``, input: the layer's modulated input;
- the output layer: ``d = e``, input: its modulated input ``h_{L-1, mod}``.

No weight is read and nothing goes backward through the chip. The output layer is an analog
tile like the others; its softmax is digital and the network's hidden activation is not
applied to it (PEPITA uses ``layer.pre_activation`` there), so the last width must be the
number of classes. The paper adds ``+ F e``; since ``F`` is drawn from a distribution symmetric
about zero, ``- e F`` is the same algorithm in distribution.

The digital biases learn from the same layer-local errors. Optionally (``normalise_update``)
each sample's contribution to an update is divided by the squared norm of the layer input it
multiplies (a normalised-LMS step).
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from analogsim._validation import check_choice, check_range
from analogsim.datasets import Split
from analogsim.errors import ParameterError
from analogsim.learners._base import History, Learner
from analogsim.learners._schedule import SCHEDULES, ScheduledLearning
from analogsim.network import Layer, Network, activate, normalise
from analogsim.tile import RngLike


class PEPITA(ScheduledLearning, Learner):
    """Present the Error to Perturb the Input To modulate Activity; forward-only.

    Parameters
    ----------
    lr : float, >= 0
        Learning rate of the analog weights (``tile.update``), per sample of a batch's mean
        update. Default 0.02.
    bias_lr : float, >= 0, optional
        Learning rate of the digital biases; defaults to ``lr``.
    feedback_scale : float, > 0
        Entries of ``F`` are uniform in ``+-feedback_scale * sqrt(6 / n_features)``; the paper
        uses 0.05. Default 0.05. (Larger values make the hidden layers learn more, since
        their signal ``h - h_mod`` scales with it, but are unstable: on Fashion-MNIST 0.5
        diverged within two epochs of the full training set, even with the cosine schedule.)
    normalise_update : bool
        Divide each sample's update by its layer input's squared norm, a normalised-LMS step
        (then ``lr`` near 1 to 4 is the range to try). Off by default: in our tests it
        learned more slowly at the output layer. Default False.
    schedule : "constant" or "cosine"
        Learning rates over the steps of one ``fit``: constant, or cosine annealing to 0.
        Default "cosine" (on a 10k-sample subset of Fashion-MNIST, 5 epochs: 22.2% test
        error against 22.7% constant).
    n_classes : int, optional
        Number of classes; inferred from the training labels by default. The network's last
        width must equal it.
    """

    default_batch_size = 64

    def __init__(self, *, lr: float = 0.02, bias_lr: float | None = None,
                 feedback_scale: float = 0.05, normalise_update: bool = False,
                 schedule: str = "cosine", n_classes: int | None = None) -> None:
        super().__init__(n_classes)
        check_range("PEPITA", "lr", lr, 0.0, None)
        if bias_lr is not None:
            check_range("PEPITA", "bias_lr", bias_lr, 0.0, None)
        check_range("PEPITA", "feedback_scale", feedback_scale, 0.0, None, closed="neither")
        check_choice("PEPITA", "normalise_update", normalise_update, (True, False))
        check_choice("PEPITA", "schedule", schedule, SCHEDULES)
        self.schedule = schedule
        self._step_factor = 1.0
        self.lr = float(lr)
        self.bias_lr = float(lr if bias_lr is None else bias_lr)
        self.feedback_scale = float(feedback_scale)
        self.normalise_update = normalise_update
        self.projection: np.ndarray | None = None
        self._trained_net: Network | None = None

    # ------------------------------------------------------------------ Learner interface
    def fit(self, net: Network, data: Split, epochs: int = 10, *,
            batch_size: int | None = None, rng: RngLike = 0, progress: bool = True) -> History:
        """Train ``net`` in place (see :meth:`Learner.fit`), with the learning-rate schedule."""
        self._start_schedule(data, epochs, batch_size)
        return super().fit(net, data, epochs, batch_size=batch_size, rng=rng, progress=progress)

    def _setup(self, net: Network, n_classes: int, rng: np.random.Generator) -> None:
        """Check the widths; draw ``F`` once and keep it while its shape fits.

        Keeping it means retraining a transferred copy (``net.transfer_to``) uses the same
        feedback the weights were learned with.
        """
        self._check_network(net, n_classes, "PEPITA.fit")
        shape = (n_classes, net.n_inputs)
        if self.projection is not None and self.projection.shape == shape:
            self._trained_net = net
            return
        bound = self.feedback_scale * np.sqrt(6.0 / net.n_inputs)
        self.projection = rng.uniform(-bound, bound, shape).astype(np.float32)
        self._trained_net = net

    def train_step(self, net: Network, x: np.ndarray, y: np.ndarray,
                   rng: np.random.Generator) -> tuple[float, int]:
        """Two forward passes, then one local update per layer."""
        self._step_factor = self._lr_factor()
        _, outputs = self._forward(net, x)
        probabilities = softmax(outputs[-1].astype(np.float64), axis=1)
        rows = np.arange(len(y))
        loss = float(-np.mean(np.log(np.maximum(probabilities[rows, y], 1e-12))))
        correct = int(np.sum(np.argmax(probabilities, axis=1) == y))
        error = probabilities
        error[rows, y] -= 1.0
        error = error.astype(np.float32)
        inputs_mod, outputs_mod = self._forward(net, x - error @ self.projection)
        last = len(net.layers) - 1
        for index, layer in enumerate(net.layers):
            signal = error if index == last else outputs[index] - outputs_mod[index]
            self._update(layer, inputs_mod[index], signal / len(y))
        return loss, correct

    def predict(self, net: Network, x: object) -> np.ndarray:
        """Labels (int64, (batch,)): argmax of the output layer's pre-activation."""
        inputs = net.check_inputs(x, "PEPITA.predict")
        if self.n_classes is not None:
            self._check_network(net, self.n_classes, "PEPITA.predict")
        return np.argmax(self.logits(net, inputs), axis=1).astype(np.int64)

    # ------------------------------------------------------------------ public helpers
    def logits(self, net: Network, x: object) -> np.ndarray:
        """The output layer's pre-activation (batch, n_classes); its softmax is the output."""
        inputs = net.check_inputs(x, "PEPITA.logits")
        return self._forward(net, inputs)[1][-1]

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _forward(net: Network, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per layer: the input the tile sees (normalised) and the output (the last one is the
        pre-activation: the output nonlinearity is the digital softmax)."""
        inputs, outputs, h = [], [], x
        last = len(net.layers) - 1
        for index, layer in enumerate(net.layers):
            h_in = normalise(layer.normalisation, h)
            pre = layer.tile.forward(h_in) + layer.bias
            h = pre if index == last else activate(layer.activation, pre)
            inputs.append(h_in)
            outputs.append(h)
        return inputs, outputs

    def _update(self, layer: Layer, layer_input: np.ndarray, signal: np.ndarray) -> None:
        """``W <- W - lr x^T d`` on the chip, ``b <- b - bias_lr sum(d)`` digitally."""
        factor = self._step_factor
        layer.bias -= np.float32(self.bias_lr * factor) * signal.sum(axis=0, dtype=np.float32)
        if self.normalise_update:
            norms = np.sum(np.square(layer_input, dtype=np.float64), axis=1, keepdims=True)
            signal = signal / (norms + 1e-6)
        layer.tile.update(layer_input, signal.astype(np.float32), self.lr * factor)

    def _check_network(self, net: Network, n_classes: int, owner: str) -> None:
        if net.widths[-1] != n_classes:
            raise ParameterError(f"{owner}: PEPITA's output layer gives one logit per class, so "
                                 f"the network's last width must be {n_classes}; got widths "
                                 f"{net.widths}. Make it with widths=[..., {n_classes}].")
