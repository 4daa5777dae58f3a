"""Forward-Forward (Hinton 2022, supervised variant), trained in place on the chip.

Each sample is shown twice: with its true label written over the first ``n_classes`` input
features (the positive pass) and with a wrong label (the negative pass). Every layer is trained
on its own: its goodness ``G = sum_j a_j^2`` (or the mean) should exceed the threshold ``theta``
on positives and stay below it on negatives, through the logistic loss
``softplus(-(G_pos - theta)) + softplus(G_neg - theta)``. The layer's error
``delta = dLoss/d(pre-activation)`` needs only that layer's output, so the update is the local
outer product ``tile.update(normalised input, delta, lr)``: exactly what a crossbar applies as
pulses. RMS normalisation between layers (the network's ``normalisation``) hides the previous
layer's goodness from the next one. ``loss="symba"`` replaces the threshold loss by SymBa's
(Lee & Song 2023), ``softplus(-alpha (G_pos - G_neg))`` on each sample's pair of passes: on
Fashion-MNIST it learned features a linear readout separates better than random ones, which
the threshold loss did not (see the ``loss`` parameter).

Options from the paper: peer normalisation (each unit's running mean activity is pulled towards
the layer's average), hard negatives (the wrong label the co-trained softmax readout finds most
likely), and two ways to predict: the label whose overlay gives the largest goodness summed over
layers, or the softmax readout. The readout is a digital float layer on the layer-normalised
activities of a neutral-label pass (every label feature ``label_value / n_classes``); it is
co-trained by plain SGD in every step, which is also what the on-the-fly training accuracy of the
history measures.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax

from analogsim._validation import check_choice, check_range
from analogsim.datasets import Split
from analogsim.errors import ParameterError
from analogsim.learners._base import History, Learner
from analogsim.learners._digital import ReadoutAdam
from analogsim.learners._schedule import SCHEDULES, ScheduledLearning
from analogsim.network import (
    Layer,
    Network,
    Readout,
    activate,
    activation_derivative,
    normalise,
)
from analogsim.tile import RngLike

NEGATIVES = ("random", "hard", "hardest")
PREDICT_BY = ("readout", "goodness")
GOODNESS = ("sum", "mean")
LOSSES = ("threshold", "symba")


class ForwardForward(ScheduledLearning, Learner):
    """Hinton's Forward-Forward algorithm with a label overlay; forward-only.

    Parameters
    ----------
    threshold : float, > 0
        Goodness threshold per unit: the logistic loss is centred on ``threshold * width`` for
        ``goodness="sum"`` and on ``threshold`` for ``"mean"``. Default 0.05.
    lr : float, >= 0
        Learning rate of the analog weights (``tile.update``); with ``normalise_update`` it is
        the step of a sample's own pre-activation per unit of its error. Default 0.2 (on
        Fashion-MNIST 784-500-500, with the Adam readout and the cosine schedule over 20
        epochs, 0.2 made the readout worse from epoch to epoch, test error 19.3% after one
        epoch and 26.8% after four, against 17.8% and 17.3% at 0.05; 0.05 fails the digits
        tests, which are calibrated at 0.2).
    bias_lr : float, >= 0, optional
        Learning rate of the digital biases; defaults to ``lr``.
    readout_lr : float, >= 0, optional
        Learning rate of the digital softmax readout. With ``readout_optimizer="sgd"`` it is
        normalised by the readout's number of input features (the squared norm of its
        layer-normalised input), default 10.0; with ``"adam"`` it is Adam's step size,
        default 1e-3.
    readout_optimizer : "sgd" or "adam"
        Optimiser of the digital readout: plain SGD (``readout_lr`` as above) or Adam
        (``readout_lr`` is then Adam's step size). Default "sgd". (On a 10k-sample subset of
        Fashion-MNIST, 5 epochs, 784-500-500: test error 19.6% with Adam against 21.3%.)
    negatives : "random", "hard" or "hardest"
        Wrong labels drawn uniformly; drawn in proportion to the readout's probabilities of
        the wrong classes (Hinton's hard negatives); or the readout's most likely wrong
        class. Default "random".
    predict_by : "readout" or "goodness"
        Prediction by the softmax readout (one pass) or by the largest goodness over all
        candidate labels (``n_classes`` passes). May be changed after training: the readout
        is always co-trained. Default "readout".
    goodness : "sum" or "mean"
        Goodness of a layer: the sum (Hinton's) or the mean over its units of the squared
        activities. The mean makes a loss ``width`` times softer, too soft for plain SGD in
        our tests. Default "sum".
    peer_normalisation : float, >= 0
        Weight of Hinton's peer normalisation (0 turns it off). Default 0.03, his value.
    peer_momentum : float in [0, 1)
        Decay of the running mean activity used by peer normalisation. Default 0.9.
    label_scale : float, > 0
        Strength of the label overlay relative to the data: the feature of the overlaid class
        is set to ``label_value = label_scale * sqrt(mean ||x||^2)`` over the training inputs
        (computed by ``fit``), so the label stands out as much in 784 pixels as in 64. Default
        0.6 (label values about 2.3 on digits, 7.6 on Fashion-MNIST; a fixed value of 1 is
        too weak on Fashion-MNIST for layer 1 to learn label-image conjunctions).
    skip_first_layer : bool
        Leave the first layer out of the goodness prediction and of the readout's input, as
        Hinton did (it needs at least two layers). Default False.
    normalise_update : bool
        Divide each sample's weight update by its layer input's squared norm (a normalised-LMS
        step: raw pixels and RMS-normalised activities of any width then share one ``lr``).
        Default True.
    schedule : "constant" or "cosine"
        Learning rates (``lr``, ``bias_lr``, ``readout_lr``) over the steps of one ``fit``:
        constant, or cosine annealing to 0. Default "constant". (With the Adam readout on
        the same subset: 18.4% with "cosine" against 19.6%.)
    loss : "threshold" or "symba"
        The layer loss: Hinton's logistic loss around the threshold, or SymBa's (Lee & Song,
        arXiv:2303.08418, 2023) ``softplus(-alpha (G_pos - G_neg))`` on the goodness gap
        between each sample's positive and negative pass, which pushes both passes with
        equal force and needs no threshold. Default "threshold" (the digits tests are
        calibrated on it). On Fashion-MNIST, 10k training images, 5 epochs, 784-500-500,
        Adam readout, cosine schedule, readout test error on 5k images: 18.2% with the
        threshold loss (lr 0.05), 17.1% with untrained random weights (lr 0), 16.5% with
        SymBa (alpha 400, lr 0.5); on the full set, 20 epochs: 13.9% with SymBa against
        21.0% with the threshold loss (``docs/results/learners_fashion_mnist.md``).
    symba_alpha : float, > 0
        SymBa's scale of the goodness gap (``loss="symba"``), per unit of goodness;
        with ``goodness="sum"`` it is divided by the layer's width. Default 4.0, theirs.
    n_classes : int, optional
        Number of classes; inferred from the training labels by default.
    """

    default_batch_size = 64

    def __init__(self, *, threshold: float = 0.05, lr: float = 0.2,
                 bias_lr: float | None = None, readout_lr: float | None = None,
                 readout_optimizer: str = "sgd",
                 negatives: str = "random", predict_by: str = "readout",
                 goodness: str = "sum", peer_normalisation: float = 0.03,
                 peer_momentum: float = 0.9, label_scale: float = 0.6,
                 skip_first_layer: bool = False, normalise_update: bool = True,
                 schedule: str = "constant", loss: str = "threshold",
                 symba_alpha: float = 4.0, n_classes: int | None = None) -> None:
        super().__init__(n_classes)
        owner = "ForwardForward"
        check_range(owner, "threshold", threshold, 0.0, None, closed="neither")
        check_range(owner, "lr", lr, 0.0, None)
        if bias_lr is not None:
            check_range(owner, "bias_lr", bias_lr, 0.0, None)
        check_choice(owner, "readout_optimizer", readout_optimizer, ("sgd", "adam"))
        if readout_lr is None:
            readout_lr = 1e-3 if readout_optimizer == "adam" else 10.0
        check_range(owner, "readout_lr", readout_lr, 0.0, None)
        check_choice(owner, "negatives", negatives, NEGATIVES)
        check_choice(owner, "predict_by", predict_by, PREDICT_BY)
        check_choice(owner, "goodness", goodness, GOODNESS)
        check_range(owner, "peer_normalisation", peer_normalisation, 0.0, None)
        check_range(owner, "peer_momentum", peer_momentum, 0.0, 1.0, closed="left")
        check_range(owner, "label_scale", label_scale, 0.0, None, closed="neither")
        check_choice(owner, "skip_first_layer", skip_first_layer, (True, False))
        check_choice(owner, "normalise_update", normalise_update, (True, False))
        check_choice(owner, "schedule", schedule, SCHEDULES)
        check_choice(owner, "loss", loss, LOSSES)
        check_range(owner, "symba_alpha", symba_alpha, 0.0, None, closed="neither")
        self.schedule = schedule
        self.loss = loss
        self.symba_alpha = float(symba_alpha)
        self._step_factor = 1.0
        self.threshold = float(threshold)
        self.lr = float(lr)
        self.bias_lr = float(lr if bias_lr is None else bias_lr)
        self.readout_lr = float(readout_lr)
        self.readout_optimizer = readout_optimizer
        self.negatives = negatives
        self.predict_by = predict_by
        self.goodness = goodness
        self.peer_normalisation = float(peer_normalisation)
        self.peer_momentum = float(peer_momentum)
        self.label_scale = float(label_scale)
        self.skip_first_layer = skip_first_layer
        self.normalise_update = normalise_update
        self.label_value: float | None = None
        self._mean_activity: list[np.ndarray] = []
        self._trained_net: Network | None = None

    # ------------------------------------------------------------------ Learner interface
    def fit(self, net: Network, data: Split, epochs: int = 10, *,
            batch_size: int | None = None, rng: RngLike = 0, progress: bool = True) -> History:
        """Train ``net`` in place (see :meth:`Learner.fit`); sets :attr:`label_value` first."""
        if isinstance(data, Split):
            norms = np.sum(np.square(data.x, dtype=np.float64), axis=1)
            self.label_value = self.label_scale * float(np.sqrt(np.mean(norms)))
        self._start_schedule(data, epochs, batch_size)
        return super().fit(net, data, epochs, batch_size=batch_size, rng=rng, progress=progress)

    def _setup(self, net: Network, n_classes: int, rng: np.random.Generator) -> None:
        self._check_network(net, n_classes, "ForwardForward.fit")
        features = self._readout_width(net)
        readout = net.readout
        if readout is None or readout.weight.shape != (features, n_classes):
            net.readout = Readout(np.zeros((features, n_classes), dtype=np.float32))
        if self._trained_net is not net:
            self._mean_activity = [np.zeros(width, dtype=np.float32) for width in net.widths[1:]]
            self._trained_net = net

    def train_step(self, net: Network, x: np.ndarray, y: np.ndarray,
                   rng: np.random.Generator) -> tuple[float, int]:
        """One step: the readout on a neutral pass, then every layer on positives/negatives."""
        self._step_factor = self._lr_factor()
        features = self._features(net, self._with_neutral_label(x))
        log_probs = log_softmax(net.readout(features), axis=1)
        wrong = self._negative_labels(y, log_probs, rng)
        h = np.concatenate([self._with_labels(x, y), self._with_labels(x, wrong)])
        losses = []
        for index, layer in enumerate(net.layers):
            loss, h = self._train_layer(index, layer, normalise(layer.normalisation, h), len(y))
            losses.append(loss)
        self._train_readout(net.readout, features, log_probs, y)
        correct = int(np.sum(np.argmax(log_probs, axis=1) == y))
        return float(np.mean(losses)), correct

    def predict(self, net: Network, x: object) -> np.ndarray:
        """Labels (int64, (batch,)) by goodness over all labels or by the softmax readout."""
        inputs = net.check_inputs(x, "ForwardForward.predict")
        n_classes = self._require_classes()
        self._check_network(net, n_classes, "ForwardForward.predict")
        if self.predict_by == "readout":
            expected = (self._readout_width(net), n_classes)
            if net.readout is None or net.readout.weight.shape != expected:
                raise ParameterError("ForwardForward.predict: predict_by='readout' needs the "
                                     "readout a fit trains; call fit(net, ...) first or use "
                                     "predict_by='goodness'.")
            features = self._features(net, self._with_neutral_label(inputs))
            return np.argmax(net.readout(features), axis=1).astype(np.int64)
        return np.argmax(self.goodness_scores(net, inputs), axis=1).astype(np.int64)

    # ------------------------------------------------------------------ public helpers
    def goodness_scores(self, net: Network, x: object) -> np.ndarray:
        """Goodness summed over the scored layers for every candidate label: (batch, n_classes).

        All labels go through the chip as one batch of ``batch * n_classes`` rows.
        """
        inputs = net.check_inputs(x, "ForwardForward.goodness_scores")
        n_classes = self._require_classes()
        batch = len(inputs)
        labels = np.repeat(np.arange(n_classes), batch)
        h = self._with_labels(np.tile(inputs, (n_classes, 1)), labels)
        total = np.zeros(batch * n_classes)
        for k, layer in enumerate(net.layers):
            h = layer(h)
            if k > 0 or not self.skip_first_layer:
                total += self._goodness(h)
        return total.reshape(n_classes, batch).T

    # ------------------------------------------------------------------ one layer
    def _train_layer(self, index: int, layer: Layer, h_in: np.ndarray,
                     batch: int) -> tuple[float, np.ndarray]:
        """Update one layer from its own output on [positives; negatives]: (loss, output)."""
        pre = layer.tile.forward(h_in) + layer.bias
        out = activate(layer.activation, pre)
        loss, d_goodness = self._goodness_loss(self._goodness(out), out.shape[1], batch)
        d_out = d_goodness[:, None] * self._goodness_gradient(out)
        if self.peer_normalisation > 0.0:
            d_out[:batch] += self._peer_gradient(index, out[:batch])
        delta = d_out * activation_derivative(layer.activation, pre)
        factor = self._step_factor
        layer.bias -= np.float32(self.bias_lr * factor) * delta.sum(axis=0, dtype=np.float32)
        if self.normalise_update:
            delta /= np.sum(np.square(h_in, dtype=np.float64), axis=1, keepdims=True) + 1e-6
        layer.tile.update(h_in, delta.astype(np.float32), self.lr * factor)
        return loss, out

    def _goodness_loss(self, goodness: np.ndarray, width: int,
                       batch: int) -> tuple[float, np.ndarray]:
        """The layer loss over [positives; negatives] and its gradient per goodness value."""
        if self.loss == "symba":
            alpha = self.symba_alpha / (width if self.goodness == "sum" else 1.0)
            gap = goodness[:batch] - goodness[batch:]
            loss = float(np.mean(np.logaddexp(0.0, -alpha * gap)))
            pull = alpha * expit(-alpha * gap) / batch  # d loss / d G_neg = -d loss / d G_pos
            return loss, np.concatenate([-pull, pull])
        margin = goodness - self._layer_threshold(width)
        sign = np.concatenate([-np.ones(batch), np.ones(batch)])  # positives up, negatives down
        loss = float(np.mean(np.logaddexp(0.0, sign * margin)) * 2.0)
        return loss, sign * expit(sign * margin) / batch

    def _goodness(self, out: np.ndarray) -> np.ndarray:
        squares = np.square(out, dtype=np.float64)
        return squares.sum(axis=1) if self.goodness == "sum" else squares.mean(axis=1)

    def _layer_threshold(self, width: int) -> float:
        return self.threshold * width if self.goodness == "sum" else self.threshold

    def _goodness_gradient(self, out: np.ndarray) -> np.ndarray:
        scale = 2.0 if self.goodness == "sum" else 2.0 / out.shape[1]
        return scale * out

    def _peer_gradient(self, index: int, positive_out: np.ndarray) -> np.ndarray:
        """Hinton's peer normalisation: pull each unit's mean activity to the layer's mean.

        ``m_j`` is the running mean of unit j's activity on positive data; every positive
        sample's loss gradient for unit j gets ``weight * (m_j - mean_k m_k) / batch``, so
        units more active than their peers are pushed down and silent ones up (an update
        computed from the layer's own outputs only).
        """
        running = self._mean_activity[index]
        running *= np.float32(self.peer_momentum)
        running += np.float32(1.0 - self.peer_momentum) * positive_out.mean(axis=0)
        return self.peer_normalisation * (running - running.mean()) / len(positive_out)

    # ------------------------------------------------------------------ labels and readout
    def _strength(self) -> float:
        """The value of the label feature that marks a class."""
        if self.label_value is None:
            raise ParameterError("ForwardForward.predict: the label strength is set by fit from "
                                 "the training data; call fit(net, data.train) first.")
        return self.label_value

    def _with_labels(self, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``x`` with its first ``n_classes`` features replaced by the one-hot ``labels``."""
        out = np.array(x, dtype=np.float32, copy=True)
        out[:, : self.n_classes] = 0.0
        out[np.arange(len(x)), labels] = self._strength()
        return out

    def _with_neutral_label(self, x: np.ndarray) -> np.ndarray:
        """``x`` with every label feature at ``1 / n_classes`` of the label strength."""
        out = np.array(x, dtype=np.float32, copy=True)
        out[:, : self.n_classes] = self._strength() / self.n_classes
        return out

    def _negative_labels(self, y: np.ndarray, log_probs: np.ndarray,
                         rng: np.random.Generator) -> np.ndarray:
        """A wrong label per sample: uniform, in proportion to the readout, or its argmax."""
        if self.negatives == "random":
            return (y + rng.integers(1, self.n_classes, size=len(y))) % self.n_classes
        wrong = np.exp(log_probs)
        wrong[np.arange(len(y)), y] = 0.0
        if self.negatives == "hardest":
            return np.argmax(wrong, axis=1)
        cumulative = np.cumsum(wrong, axis=1)
        draws = rng.random(len(y)) * cumulative[:, -1]
        return np.minimum((cumulative < draws[:, None]).sum(axis=1), self.n_classes - 1)

    def _features(self, net: Network, x: np.ndarray) -> np.ndarray:
        """The readout's input: the scored layers' activities, layer-normalised, concatenated.

        Layer normalisation (not RMS) removes each sample's mean over the units: ReLU
        activities share a large positive mean, which made the readout's SGD oscillate on
        Fashion-MNIST (its accuracy fell from 0.77 to 0.70 over 5 epochs with RMS features).
        """
        parts, h = [], x
        for index, layer in enumerate(net.layers):
            h = layer(h)
            if index > 0 or not self.skip_first_layer:
                parts.append(normalise("layer", h))
        return np.concatenate(parts, axis=1)

    def _train_readout(self, readout: Readout, features: np.ndarray, log_probs: np.ndarray,
                       y: np.ndarray) -> None:
        """One SGD step of the softmax readout on the cross-entropy (digital)."""
        error = np.exp(log_probs)
        error[np.arange(len(y)), y] -= 1.0
        if self.readout_optimizer == "adam":
            state = getattr(readout, "adam", None)
            if not isinstance(state, ReadoutAdam) or state.readout is not readout:
                state = readout.adam = ReadoutAdam(readout)
            state.step(features, error / len(y), self.readout_lr * self._step_factor)
            return
        # Normalised by the feature count (the squared norm of layer-normalised features).
        error = (error / (len(y) * features.shape[1])).astype(np.float32)
        lr = np.float32(self.readout_lr * self._step_factor)
        readout.weight -= lr * (features.T @ error)
        readout.bias -= lr * error.sum(axis=0)

    def _readout_width(self, net: Network) -> int:
        return int(sum(net.widths[2:] if self.skip_first_layer else net.widths[1:]))

    # ------------------------------------------------------------------ checks
    def _require_classes(self) -> int:
        if self.n_classes is None:
            raise ParameterError("ForwardForward.predict: the number of classes is unknown; "
                                 "call fit(net, data.train) first or pass n_classes=... to "
                                 "ForwardForward.")
        return self.n_classes

    def _check_network(self, net: Network, n_classes: int, owner: str) -> None:
        if net.n_inputs < n_classes:
            raise ParameterError(f"{owner}: the label overlay writes {n_classes} classes into "
                                 f"the first inputs, but the network has only {net.n_inputs} "
                                 f"inputs; use data with at least {n_classes} features.")
        if net.normalisation == "none" and len(net.layers) > 1:
            raise ParameterError(f"{owner}: Forward-Forward needs a normalisation between "
                                 f"layers (it hides a layer's goodness from the next); make "
                                 f"the network with normalisation='rms' (or 'layer'), not "
                                 f"'none'.")
        if self.skip_first_layer and len(net.layers) < 2:
            raise ParameterError(f"{owner}: skip_first_layer=True needs at least two layers; "
                                 f"the network has {len(net.layers)}. Add a layer or set "
                                 f"skip_first_layer=False.")
