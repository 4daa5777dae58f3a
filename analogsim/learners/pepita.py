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

Options beyond the paper (defaults keep the paper's rule; all stay forward-only and
layer-local): a hidden-layer learning rate (``hidden_lr``), a per-sample rescaling of the hidden
signal (``hidden_signal="normalised"``), an L2 penalty on hidden activity applied as part of the
same pulsed update (``activity_decay``), and the digital input normalisation PEPITA sets on the
network's layers (``normalisation``, ``input_normalisation``). Together they took the
784-500-500-10 network on Fashion-MNIST (Ideal chip, 20 epochs, seed 0) from 17.2% to 14.4%
test error; see the class docstring for the options and the measurements.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from analogsim._validation import check_choice, check_range
from analogsim.datasets import Split
from analogsim.errors import ParameterError
from analogsim.learners._base import History, Learner
from analogsim.learners._schedule import SCHEDULES, ScheduledLearning
from analogsim.network import NORMALISATIONS, Layer, Network, activate, normalise
from analogsim.tile import RngLike

#: How the hidden layers' signal ``h - h_mod`` enters their update (see ``hidden_signal``).
HIDDEN_SIGNALS = ("raw", "normalised")


class PEPITA(ScheduledLearning, Learner):
    """Present the Error to Perturb the Input To modulate Activity; forward-only.

    Parameters
    ----------
    lr : float, >= 0
        Learning rate of the analog weights (``tile.update``), per sample of a batch's mean
        update. Default 0.02.
    bias_lr : float, >= 0, optional
        Learning rate of all the digital biases; by default each layer's bias learns at its
        weights' rate (``lr`` for the output layer, ``hidden_lr`` for hidden layers).
    hidden_lr : float, >= 0, optional
        Learning rate of the hidden layers' weights; defaults to ``lr`` (the paper: one rate).
        A per-layer rate is our addition. With the raw signal, raising it alone does not
        help: on a 10k-sample subset of Fashion-MNIST (5 epochs, lr 0.02, cosine, RMS network)
        hidden_lr 0.02 / 0.1 / 0.3 / 0.6 / 2 gave 22.1 / 22.1 / 24.9 / 36.8 / 66.5% test error,
        and hidden_lr 0 (frozen random hidden layers) 22.1%: with the paper's defaults the
        hidden layers contribute nothing on that task.
    feedback_scale : float, > 0
        Entries of ``F`` are uniform in ``+-feedback_scale * sqrt(6 / n_features)``; the paper
        uses 0.05. Default 0.05. (Larger values make the hidden layers learn more, since
        their signal ``h - h_mod`` scales with it, but are unstable: on Fashion-MNIST 0.5
        diverged within two epochs of the full training set, even with the cosine schedule.)
    hidden_signal : "raw" or "normalised"
        ``"raw"`` (the paper): a hidden layer's signal is ``d = h - h_mod``.
        ``"normalised"`` (our addition, not from the paper): each sample's ``d`` is rescaled to
        the norm of that sample's output error, ``d * |e| / |d|``, so its size no longer grows
        with the layer's own weights. ``h - h_mod`` is proportional to the layer's weights
        (to first order ``d_1 = relu' * (e F W_1)``), so the raw update grows the weights
        that make it larger: with the raw signal and hidden_lr 1 on Fashion-MNIST (layer
        normalisation, lr 0.1, constant rates), ``|W_1|`` went from 12.9 to 7.7e6 within 1500
        steps and the test error to 58%. Default "raw".
    activity_decay : float, >= 0
        ``lambda``: add ``lambda * h`` to each hidden layer's signal, the gradient of the L2
        activity penalty ``lambda/2 |h|^2`` (an input-weighted weight decay,
        ``W <- W - lr lambda x^T h``, applied by the same pulses; our addition, not from the
        paper). It keeps the hidden code sparse. Fashion-MNIST, full training set, constant
        rates lr 0.05, hidden_lr 0.01, "normalised" signal, "layer" normalisations: without
        it the fraction of active units of the second hidden layer rose from 0.51 to 0.67 over
        3000 steps and the training loss rose with it (0.43 at step 1500, 0.58 at 3000); with
        0.002 the loss fell to 0.36 at step 3000, and the test error was 14.3% against 19.2%
        without. 0.005 learned more slowly (15.0% at step 3000). Default 0.
    normalisation : None, "rms", "layer" or "none"
        Digital normalisation of the inputs of the layers after the first, set on the
        network's layers when ``fit`` starts (so the network computes what PEPITA trains);
        None keeps the network's own. "layer" (centring and scaling each sample) makes the
        output layer better conditioned than "rms" (whose inputs share a large mean): 10k
        subset, 5 epochs, lr 0.02: 20.7% against 22.1%. Default None.
    input_normalisation : None, "rms", "layer" or "none"
        The same for the first layer's input (the network's default is "none": raw pixels);
        applied to ``x`` and ``x_mod`` alike. 10k subset, 5 epochs, lr 0.1, hidden_lr 0.01,
        "normalised" signal, normalisation "layer": 16.9% with "layer" against 17.7% with
        "none". Default None.
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

    Notes
    -----
    Fashion-MNIST, 784-500-500-10 on the Ideal chip, full data, 20 epochs, seed 0, cosine
    schedule (``experiments/learners_fashion_mnist.py``): the defaults give 17.2% test error
    (docs/results/learners_fashion_mnist.md). With ``hidden_lr=0.01,
    hidden_signal="normalised", normalisation="layer", input_normalisation="layer"``:
    ``lr=0.02, activity_decay=0.002``: 13.7% after 20 epochs (seeds 1 and 2: 14.0% and
    13.5%); ``lr=0.03``: 14.1%; ``lr=0.05`` and activity_decay 0.002 / 0.003 / 0.001:
    14.4 / 14.7 / 14.9%. Training accuracy ends near 0.94, so these overfit. Without
    ``activity_decay`` (lr 0.1, hidden_lr 0.003 / 0.03) the training loss rose after a few
    epochs: 15.8 / 22.7%. The defaults keep the paper's rule.
    """

    default_batch_size = 64

    def __init__(self, *, lr: float = 0.02, bias_lr: float | None = None,
                 hidden_lr: float | None = None, feedback_scale: float = 0.05,
                 hidden_signal: str = "raw", activity_decay: float = 0.0,
                 normalisation: str | None = None, input_normalisation: str | None = None,
                 normalise_update: bool = False, schedule: str = "cosine",
                 n_classes: int | None = None) -> None:
        super().__init__(n_classes)
        check_range("PEPITA", "lr", lr, 0.0, None)
        if bias_lr is not None:
            check_range("PEPITA", "bias_lr", bias_lr, 0.0, None)
        if hidden_lr is not None:
            check_range("PEPITA", "hidden_lr", hidden_lr, 0.0, None)
        check_range("PEPITA", "feedback_scale", feedback_scale, 0.0, None, closed="neither")
        check_choice("PEPITA", "hidden_signal", hidden_signal, HIDDEN_SIGNALS)
        check_range("PEPITA", "activity_decay", activity_decay, 0.0, None)
        check_choice("PEPITA", "normalisation", normalisation, (None, *NORMALISATIONS))
        check_choice("PEPITA", "input_normalisation", input_normalisation,
                     (None, *NORMALISATIONS))
        check_choice("PEPITA", "normalise_update", normalise_update, (True, False))
        check_choice("PEPITA", "schedule", schedule, SCHEDULES)
        self.schedule = schedule
        self._step_factor = 1.0
        self.lr = float(lr)
        self.hidden_lr = float(lr if hidden_lr is None else hidden_lr)
        # Biases: ``bias_lr`` everywhere when given, else each layer's weight learning rate.
        self.bias_lr = float(lr if bias_lr is None else bias_lr)
        self._hidden_bias_lr = float(self.hidden_lr if bias_lr is None else bias_lr)
        self.hidden_signal = hidden_signal
        self.activity_decay = float(activity_decay)
        self.normalisation = normalisation
        self.input_normalisation = input_normalisation
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
        """Check the widths; set the layers' digital input normalisation where the options ask
        for one; draw ``F`` once and keep it while its shape fits.

        Keeping it means retraining a transferred copy (``net.transfer_to``) uses the same
        feedback the weights were learned with.
        """
        self._check_network(net, n_classes, "PEPITA.fit")
        for index, layer in enumerate(net.layers):
            wanted = self.input_normalisation if index == 0 else self.normalisation
            if wanted is not None:
                layer.normalisation = wanted
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
            if index == last:
                self._update(layer, inputs_mod[index], error / len(y), self.lr, self.bias_lr)
                continue
            signal = outputs[index] - outputs_mod[index]
            if self.hidden_signal == "normalised":
                size = np.sqrt(np.sum(np.square(signal), axis=1, keepdims=True))
                scale = np.sqrt(np.sum(np.square(error), axis=1, keepdims=True)) / (size + 1e-12)
                signal = signal * scale.astype(np.float32)
            if self.activity_decay:
                signal = signal + np.float32(self.activity_decay) * outputs[index]
            self._update(layer, inputs_mod[index], signal / len(y), self.hidden_lr,
                         self._hidden_bias_lr)
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

    def _update(self, layer: Layer, layer_input: np.ndarray, signal: np.ndarray, lr: float,
                bias_lr: float) -> None:
        """``W <- W - lr x^T d`` on the chip, ``b <- b - bias_lr sum(d)`` digitally."""
        factor = self._step_factor
        layer.bias -= np.float32(bias_lr * factor) * signal.sum(axis=0, dtype=np.float32)
        if self.normalise_update:
            norms = np.sum(np.square(layer_input, dtype=np.float64), axis=1, keepdims=True)
            signal = signal / (norms + 1e-6)
        layer.tile.update(layer_input, signal.astype(np.float32), lr * factor)

    def _check_network(self, net: Network, n_classes: int, owner: str) -> None:
        if net.widths[-1] != n_classes:
            raise ParameterError(f"{owner}: PEPITA's output layer gives one logit per class, so "
                                 f"the network's last width must be {n_classes}; got widths "
                                 f"{net.widths}. Make it with widths=[..., {n_classes}].")
