"""Forward gradients measured on the chip: activity or weight perturbation, local or global loss.

Ren et al., "Scaling forward gradient with local losses", ICLR 2023 (FG-A and LG-FG-A). A
forward gradient is ``g = (grad L . u) u`` for a random direction ``u`` with ``E[u u^T] = I``,
an unbiased estimate of ``grad L``. A chip computes no Jacobian-vector product, so the
directional derivative is measured: the loss is evaluated with the perturbation applied,

- one-sided: ``(L(v + eps u) - L(v)) / eps``, or
- antithetic (SPSA-style pairs, default): ``(L(v + eps u) - L(v - eps u)) / (2 eps)``,

and ``n_perturbations`` estimates are averaged per step.

``perturb="activity"`` (node perturbation, FG-A): ``v`` is a layer's pre-activation ``z`` (the
tile output plus bias), perturbed digitally after ``tile.forward``; each sample has its own
``u`` and its own measured loss, and the weight update is the layer-local outer product
``x^T g_z``: exactly ``tile.update``. Each sample's ``g_z`` is divided by ``1 + |x|^2`` (a
normalised, NLMS step: the layer's own input energy, known to the periphery), so that ``lr``
means the same on a 64-wide and on a 784-wide layer. With ``local=True`` (LG-FG-A, default)
each layer has a digital linear readout to the classes trained with cross-entropy, and the
layer is trained on its own readout's loss, which is a digital function of ``z``: no extra
chip pass is needed.
With ``groups > 1`` a layer's units are split into groups, each with its own direction and
its own measured loss (the local loss with only that group perturbed): the variance of an
activity forward gradient grows with the number of units sharing one measured loss (Ren et al.
split layers into groups for this reason), so it is that of a group, not of the layer. The
measurements are digital (a group moves the readout's logits by its own rows of the readout
weight), so many groups cost little time; ``groups`` equal to the width is coordinate-wise
finite differences of the local loss.
With ``local=False`` (FG-A) the loss is the final readout's; all layers are perturbed at once
and the perturbed activity is re-run through the later tiles (forward only, with fresh read
noise at every pass, as on a real chip).

``perturb="weight"``: ``v`` is a tile's weights. The chip cannot be written to an arbitrary
state, so the perturbation is applied as a pulsed update ``tile.update(a, -b, eps_w)`` (the
rank-1 direction ``u = a b^T`` with standard normal ``a``, ``b``, so ``E[u (x) u] = I``, at one
update cycle's cost), the batch loss is measured through the chip, and the perturbation is
undone by the opposite update. On an ideal device the undo is exact; on a real device it is
not (asymmetric, noisy, bounded steps): the residue accumulates as weight noise, which is the
honest physics of weight perturbation on a chip. ``eps_w = eps / sqrt(rows)`` so that, for an
input of unit RMS, ``eps`` is again the size of the change of the pre-activation. Biases are
not trained in this mode.

Readouts are digital and trained by Adam with the exact cross-entropy gradient (their input is a
layer's normalised activity, see :mod:`analogsim.learners._digital`). The last layer's
readout is ``net.readout``, so it travels with :meth:`Network.transfer_to`; the local readouts
of the other layers are kept on the network as ``net.local_readouts``. Prediction uses only
``net.readout``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from analogsim._validation import check_choice, check_range
from analogsim.datasets import Split
from analogsim.errors import ParameterError
from analogsim.learners._base import History, Learner
from analogsim.learners._digital import (
    NORM_EPS,
    ReadoutAdam,
    chip_logits,
    cross_entropy,
    logit_gradient,
    new_readout,
    readout_features,
)
from analogsim.learners._schedule import SCHEDULES, ScheduledLearning
from analogsim.network import Layer, Network, Readout, activate, normalise
from analogsim.tile import RngLike, Tile

PERTURBATIONS = ("activity", "weight")

# The measured per-sample loss (batch,) given a perturbation of each perturbed quantity.
Measure = Callable[[list[np.ndarray]], np.ndarray]


class ForwardGradient(ScheduledLearning, Learner):
    """Forward-gradient learner on the chip (activity perturbation with local losses by default).

    Parameters
    ----------
    lr : float, > 0
        Learning rate of the tiles and biases, as a normalised (NLMS) step: the update
        ``x^T g / (1 + |x|^2)`` moves each sample's pre-activation by ``lr`` times its
        gradient estimate, whatever the layer's width. Default 0.5. (On a 10k-sample subset
        of Fashion-MNIST, 784-500-500, 3 epochs: 20.2% test error at 0.1 with the cosine
        schedule against 24.6% at 0.5 constant; the digits tests are calibrated at 0.5.)
    readout_lr : float, > 0
        Learning rate of the digital readouts (Adam on cross-entropy). Default 1e-3.
    eps : float, > 0
        Perturbation size, in units of the pre-activation. Default 0.01.
    n_perturbations : int, >= 1
        Random directions averaged per step (antithetic pairs count once). Default 8.
    antithetic : bool
        Central differences ``L(+eps) - L(-eps)`` (default) instead of one-sided ones.
    local : bool
        Local losses, one readout per layer (LG-FG-A, default), or the global loss (FG-A).
    perturb : {"activity", "weight"}
        Perturb pre-activations (default) or weights (through ``tile.update``, see module).
    schedule : {"constant", "cosine"}
        ``lr`` and ``readout_lr`` over the steps of one ``fit``: constant, or cosine annealing
        to 0. Default "constant".
    groups : int, >= 1
        Split each layer's units into this many contiguous groups (at most one unit each);
        every group gets its own random direction and its own measured loss, the local loss
        with only that group's units perturbed (Ren et al.'s per-group perturbation). The
        variance of a group's estimate grows with the group's size, not the layer's, at the
        cost of ``groups`` loss measurements per direction (digital: the readout's logits
        change by the group's rows only, so a measurement costs ``O(batch x group x classes)``).
        Only with ``local=True`` and ``perturb="activity"``. Default 1 (the whole layer; the
        digits tests are calibrated on it). Measured on Fashion-MNIST, 784-500-500, Ideal,
        ``experiments/learners_fashion_mnist.py --learner forward-gradient --set
        schedule=cosine`` (seed 0): on a 10k-sample subset, 3 epochs, 5k test samples, test
        error 20.3% with frozen tiles (lr 1e-12), 19.3% with groups=50 at lr 0.1, and at
        lr 3: 24.6% (groups=1), 17.1% (50), 17.0% (100), 16.4% (500); groups=50 at lr 1 /
        10: 17.8% / 17.7%. Grouping is what makes the large step usable. On the full set
        (60k/10k) ``--set lr=3.0 --set groups=50`` with a 10-epoch cosine schedule: 12.1%
        after 10 epochs (19.6, 16.2, 16.5, 18.9, 14.1, 13.6, 13.0, 12.5, 12.2, 12.1% after
        epochs 1-10; 137 s per epoch on a loaded core), against 17.7% after 12 epochs at
        lr 0.1 with one group.
    n_classes : int, optional
        Number of classes; by default ``max(label) + 1`` of the training data.
    """

    forward_only = True
    default_batch_size = 32

    def __init__(self, *, lr: float = 0.5, readout_lr: float = 1e-3, eps: float = 0.01,
                 n_perturbations: int = 8, antithetic: bool = True, local: bool = True,
                 perturb: str = "activity", schedule: str = "constant", groups: int = 1,
                 n_classes: int | None = None) -> None:
        super().__init__(n_classes)
        owner = "ForwardGradient"
        check_range(owner, "lr", lr, 0.0, None, closed="neither")
        check_range(owner, "readout_lr", readout_lr, 0.0, None, closed="neither")
        check_range(owner, "eps", eps, 0.0, None, closed="neither")
        check_range(owner, "n_perturbations", n_perturbations, 1, 10**6, integer=True)
        check_choice(owner, "antithetic", antithetic, (True, False))
        check_choice(owner, "local", local, (True, False))
        check_choice(owner, "perturb", perturb, PERTURBATIONS)
        check_choice(owner, "schedule", schedule, SCHEDULES)
        check_range(owner, "groups", groups, 1, 2**24, integer=True)
        if groups > 1 and not (local and perturb == "activity"):
            raise ParameterError("The 'groups' parameter of ForwardGradient needs local=True "
                                 f"and perturb='activity'. Got groups={groups!r} with "
                                 f"local={local!r}, perturb={perturb!r} instead.")
        self.groups = int(groups)
        self.schedule = schedule
        self._step_factor = 1.0
        self.lr, self.readout_lr, self.eps = float(lr), float(readout_lr), float(eps)
        self.n_perturbations = int(n_perturbations)
        self.antithetic, self.local, self.perturb = antithetic, local, perturb

    # ------------------------------------------------------------------ Learner interface
    def fit(self, net: Network, data: Split, epochs: int = 10, *,
            batch_size: int | None = None, rng: RngLike = 0, progress: bool = True) -> History:
        """Train ``net`` in place (see :meth:`Learner.fit`), with the learning-rate schedule."""
        self._start_schedule(data, epochs, batch_size)
        return super().fit(net, data, epochs, batch_size=batch_size, rng=rng, progress=progress)

    def _setup(self, net: Network, n_classes: int, rng: np.random.Generator) -> None:
        """Give ``net`` its readouts (kept when they fit, so a second ``fit`` continues)."""
        widths = net.widths[1:]
        if not _fits(net.readout, widths[-1], n_classes):
            net.readout = new_readout(widths[-1], n_classes)
        local = getattr(net, "local_readouts", None)
        kept = (isinstance(local, list) and len(local) == len(widths) - 1
                and all(_fits(r, w, n_classes) for r, w in zip(local, widths, strict=False)))
        if self.local and not kept:
            net.local_readouts = [new_readout(width, n_classes) for width in widths[:-1]]

    def train_step(self, net: Network, x: np.ndarray, y: np.ndarray,
                   rng: np.random.Generator) -> tuple[float, int]:
        self._step_factor = factor = self._lr_factor()
        inputs, pre, acts = _forward(net, x, rng)
        logits = net.readout(readout_features(net, acts[-1]))
        loss = float(cross_entropy(logits.astype(np.float64), y).mean())
        hits = int(np.sum(np.argmax(logits, axis=1) == y))
        if self.perturb == "activity":
            grads = (self._local_activity(net, pre, y, rng) if self.local
                     else self._global_activity(net, pre, y, rng))
            for layer, layer_input, grad in zip(net.layers, inputs, grads, strict=True):
                step = grad / (len(y) * _input_energy(layer_input))
                layer.tile.update(layer_input, step, self.lr * factor, rng=rng)
                layer.bias -= np.float32(self.lr * factor) * step.sum(axis=0)
        else:
            self._weight_steps(net, inputs, y, rng)
        readouts = self._readouts(net)
        for readout, h in zip(readouts, acts[-len(readouts):], strict=True):
            features = readout_features(net, h)
            self._optimiser(readout).step(features, logit_gradient(readout(features), y),
                                          self.readout_lr * factor)
        return loss, hits

    def _optimiser(self, readout: Readout) -> ReadoutAdam:
        """The Adam state of ``readout`` (kept on it, so a second ``fit`` continues)."""
        state = getattr(readout, "adam", None)
        if not isinstance(state, ReadoutAdam) or state.readout is not readout:
            state = readout.adam = ReadoutAdam(readout)
        return state

    def predict(self, net: Network, x: object) -> np.ndarray:
        """Labels (batch,) from the last layer's readout ``net.readout``, on the chip."""
        if net.readout is None:
            raise ParameterError("ForwardGradient.predict: the network has no readout yet; "
                                 "train it with ForwardGradient.fit first.")
        logits = chip_logits(net, x, "ForwardGradient.predict", None)
        return np.argmax(logits, axis=1).astype(np.int64)

    # ------------------------------------------------------------------ estimators
    def _readouts(self, net: Network) -> list[Readout]:
        """The readouts trained each step: local ones then the final one (or only it)."""
        return [*net.local_readouts, net.readout] if self.local else [net.readout]

    def _local_activity(self, net: Network, pre: list[np.ndarray], y: np.ndarray,
                        rng: np.random.Generator) -> list[np.ndarray]:
        """LG-FG-A: each layer's z perturbed against its own readout's loss (digital)."""
        grads = []
        for layer, z, readout in zip(net.layers, pre, self._readouts(net), strict=True):
            if self.groups > 1:
                grads.append(self._group_estimate(net, layer, z, readout, y, rng))
                continue

            def measure(delta: list[np.ndarray], layer: Layer = layer, z: np.ndarray = z,
                        readout: Readout = readout) -> np.ndarray:
                h = activate(layer.activation, z + delta[0])
                return cross_entropy(readout(readout_features(net, h)).astype(np.float64), y)
            grads.extend(self._estimate(measure, [z.shape], rng))
        return grads

    def _group_estimate(self, net: Network, layer: Layer, z: np.ndarray, readout: Readout,
                        y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Per-group forward gradients of one layer's local loss (see ``groups``)."""
        starts, group_of = _groups(z.shape[1], self.groups)
        losses = _GroupLosses(net.normalisation, layer.activation, z, readout, y, starts)
        grad = np.zeros(z.shape)
        baseline = None if self.antithetic else losses.clean[:, None]
        for _ in range(self.n_perturbations):
            u = rng.standard_normal(z.shape)
            plus = losses(self.eps * u)
            if self.antithetic:
                slope = (plus - losses(-self.eps * u)) / (2 * self.eps)
            else:
                slope = (plus - baseline) / self.eps
            grad += slope[:, group_of] * u
        return (grad / self.n_perturbations).astype(np.float32)

    def _global_activity(self, net: Network, pre: list[np.ndarray], y: np.ndarray,
                         rng: np.random.Generator) -> list[np.ndarray]:
        """FG-A: every layer perturbed at once, the perturbed activity re-run on the chip."""
        def measure(deltas: list[np.ndarray]) -> np.ndarray:
            h = activate(net.layers[0].activation, pre[0] + deltas[0])
            for layer, delta in zip(net.layers[1:], deltas[1:], strict=True):
                h = activate(layer.activation, layer.pre_activation(h, rng=rng) + delta)
            return cross_entropy(net.readout(readout_features(net, h)).astype(np.float64), y)
        return self._estimate(measure, [z.shape for z in pre], rng)

    def _estimate(self, measure: Measure, shapes: list[tuple[int, ...]],
                  rng: np.random.Generator) -> list[np.ndarray]:
        """Average of ``n_perturbations`` forward gradients ``slope * u`` (per sample)."""
        grads = [np.zeros(shape) for shape in shapes]
        baseline = None if self.antithetic else measure([np.zeros(s) for s in shapes])
        for _ in range(self.n_perturbations):
            directions = [rng.standard_normal(shape) for shape in shapes]
            plus = measure([self.eps * u for u in directions])
            if self.antithetic:
                slope = (plus - measure([-self.eps * u for u in directions])) / (2 * self.eps)
            else:
                slope = (plus - baseline) / self.eps
            for grad, u in zip(grads, directions, strict=True):
                grad += slope[:, None] * u / self.n_perturbations
        return [grad.astype(np.float32) for grad in grads]

    def _weight_steps(self, net: Network, inputs: list[np.ndarray], y: np.ndarray,
                      rng: np.random.Generator) -> None:
        """Weight perturbation through pulsed updates; one update per layer at the end."""
        if self.local:
            for index, readout in enumerate(self._readouts(net)):
                def measure(index: int = index, readout: Readout = readout) -> float:
                    layer = net.layers[index]
                    z = layer.tile.forward(inputs[index], rng=rng) + layer.bias
                    h = activate(layer.activation, z)
                    logits = readout(readout_features(net, h)).astype(np.float64)
                    return float(cross_entropy(logits, y).mean())
                self._weight_estimate_and_update(net.layers[index:index + 1],
                                                 inputs[index:index + 1], measure, rng)
        else:
            def measure() -> float:
                h = inputs[0]  # the first layer's input is not normalised
                for layer in net.layers:
                    h = layer(h, rng=rng)
                logits = net.readout(readout_features(net, h)).astype(np.float64)
                return float(cross_entropy(logits, y).mean())
            self._weight_estimate_and_update(net.layers, inputs, measure, rng)

    def _weight_estimate_and_update(self, layers: list[Layer], inputs: list[np.ndarray],
                                    measure: Callable[[], float],
                                    rng: np.random.Generator) -> None:
        """Perturb the tiles of ``layers`` by ``+-eps_w a b^T``, measure, undo; then update."""
        tiles = [layer.tile for layer in layers]
        steps = [self.eps / np.sqrt(tile.rows) for tile in tiles]
        rows_a = [[] for _ in tiles]
        rows_d = [[] for _ in tiles]
        baseline = None if self.antithetic else measure()
        for _ in range(self.n_perturbations):
            pairs = [(rng.standard_normal((1, t.rows)), rng.standard_normal((1, t.cols)))
                     for t in tiles]
            _shift(tiles, pairs, steps, +1.0, rng)
            plus = measure()
            if self.antithetic:
                _shift(tiles, pairs, steps, -2.0, rng)
                minus = measure()
                _shift(tiles, pairs, steps, +1.0, rng)
                slopes = [(plus - minus) / (2 * step) for step in steps]
            else:
                _shift(tiles, pairs, steps, -1.0, rng)
                slopes = [(plus - baseline) / step for step in steps]
            for k, ((a, b), slope) in enumerate(zip(pairs, slopes, strict=True)):
                rows_a[k].append(a)
                rows_d[k].append(slope * b / self.n_perturbations)
        for tile, layer_input, a, d in zip(tiles, inputs, rows_a, rows_d, strict=True):
            energy = float(np.mean(_input_energy(layer_input)))  # the NLMS step, batch-wise
            tile.update(np.concatenate(a), np.concatenate(d) / energy,
                        self.lr * self._step_factor, rng=rng)


class _GroupLosses:
    """The local loss (batch, groups) of a layer with only one group's units perturbed.

    Exactly what ``cross_entropy(readout(normalise(activate(z + delta_g))))`` gives for each
    group's part ``delta_g`` of ``delta``, for all groups at once: a group changes the
    readout's linear part by its own rows of the weight and the normalisation's statistics by
    its own units' sums, so no (groups x batch x width) array is made.
    """

    def __init__(self, normalisation: str, activation: str, z: np.ndarray, readout: Readout,
                 y: np.ndarray, starts: np.ndarray) -> None:
        self.normalisation, self.activation, self.y, self.starts = (normalisation, activation,
                                                                    y, starts)
        self.z = z.astype(np.float64)
        self.h = activate(activation, self.z)
        self.weight = readout.weight.astype(np.float64)
        self.bias = readout.bias.astype(np.float64)
        self.linear = self.h @ self.weight  # (batch, classes)
        self.sum1 = self.h.sum(axis=1)
        self.sum2 = np.sum(self.h * self.h, axis=1)
        self.clean = self._cross_entropy(self._logits(self.linear, self.sum1, self.sum2))

    def __call__(self, delta: np.ndarray) -> np.ndarray:
        moved = activate(self.activation, self.z + delta)
        change = moved - self.h
        linear = self.linear[:, None, :] + self._sum(change[:, :, None] * self.weight[None])
        sum1 = self.sum1[:, None] + self._sum(change)
        sum2 = self.sum2[:, None] + self._sum(moved * moved - self.h * self.h)
        return self._cross_entropy(self._logits(linear, sum1, sum2))

    def _sum(self, values: np.ndarray) -> np.ndarray:
        """Sums over each group's units (axis 1): (batch, width, ...) -> (batch, groups, ...)."""
        width, count = values.shape[1], len(self.starts)
        if width == count:
            return values
        if width % count:
            return np.add.reduceat(values, self.starts, axis=1)
        grouped = values.reshape(values.shape[0], count, width // count, *values.shape[2:])
        return grouped.sum(axis=2)  # equal groups: a reshape is much faster than reduceat

    def _logits(self, linear: np.ndarray, sum1: np.ndarray, sum2: np.ndarray) -> np.ndarray:
        width = self.h.shape[1]
        if self.normalisation == "rms":
            rms = np.sqrt(np.maximum(sum2, 0.0) / width)
            linear = linear / (rms + NORM_EPS)[..., None]
        elif self.normalisation == "layer":
            mean = sum1 / width
            std = np.sqrt(np.maximum(sum2 / width - mean * mean, 0.0))
            linear = ((linear - mean[..., None] * self.weight.sum(axis=0))
                      / (std + NORM_EPS)[..., None])
        return linear + self.bias

    def _cross_entropy(self, logits: np.ndarray) -> np.ndarray:
        """Cross-entropy over the last axis (the classes), one class slice at a time: numpy
        reduces a short last axis slowly."""
        classes = [logits[..., c] for c in range(logits.shape[-1])]
        top = np.maximum.reduce(classes)
        total = np.add.reduce([np.exp(c - top) for c in classes])
        labels = self.y.reshape((-1,) + (1,) * (logits.ndim - 2))
        picked = np.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
        return np.log(total) + top - picked


def _groups(width: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Start index of each of ``min(groups, width)`` near-equal contiguous groups, and the
    group of every unit."""
    count = min(groups, width)
    sizes = np.full(count, width // count)
    sizes[:width % count] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return starts, np.repeat(np.arange(count), sizes)


def _shift(tiles: list[Tile], pairs: list[tuple[np.ndarray, np.ndarray]], steps: list[float],
           sign: float, rng: np.random.Generator) -> None:
    """``W += sign * step * a b^T`` on every tile, as one pulsed update each."""
    for tile, (a, b), step in zip(tiles, pairs, steps, strict=True):
        tile.update(a, -np.sign(sign) * b, abs(sign) * step, rng=rng)


def _forward(net: Network, x: np.ndarray, rng: np.random.Generator
             ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Layer inputs (normalised), pre-activations and activations of one clean pass."""
    inputs, pre, acts = [], [], []
    h = x
    for layer in net.layers:
        layer_input = normalise(layer.normalisation, h)
        z = layer.tile.forward(layer_input, rng=rng) + layer.bias
        h = activate(layer.activation, z)
        inputs.append(layer_input)
        pre.append(z)
        acts.append(h)
    return inputs, pre, acts


def _input_energy(layer_input: np.ndarray) -> np.ndarray:
    """``1 + |x|^2`` per sample (batch, 1): the normalised (NLMS) step divides by it, so that a
    step moves the pre-activation by ``lr`` times its gradient whatever the layer's width."""
    return 1.0 + np.sum(layer_input * layer_input, axis=1, keepdims=True)


def _fits(readout: Readout | None, width: int, n_classes: int) -> bool:
    return readout is not None and readout.weight.shape == (width, n_classes)
