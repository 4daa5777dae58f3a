"""Digital periphery shared by the gradient learners: readouts, softmax cross-entropy, norms.

Everything here is layer-local digital computation (the periphery next to a tile): it sees a
layer's activity, a label and its own float weights, never the chip's weights.

A readout (local or final) reads the activity of a layer after the network's normalisation,
``normalise(net.normalisation, h)``, the same signal the next layer would receive; this keeps
its input scale fixed while the layer below learns.
"""

from __future__ import annotations

import numpy as np

from analogsim.errors import ParameterError
from analogsim.network import Network, Readout, activate, normalise

NORM_EPS = 1e-6  # the eps of analogsim.network.normalise


def readout_features(net: Network, h: np.ndarray) -> np.ndarray:
    """What a readout of ``net`` sees of activity ``h`` (batch, width): ``h`` normalised."""
    return normalise(net.normalisation, h)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (batch, classes) logits, stable for large values."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample cross-entropy (batch,) of logits (batch, classes) against int labels."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return log_norm - shifted[np.arange(len(y)), y]


def logit_gradient(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d(mean cross-entropy)/d(logits): ``(softmax - onehot) / batch``, shape (batch, classes)."""
    grad = softmax(logits)
    grad[np.arange(len(y)), y] -= 1.0
    return grad / len(y)


def new_readout(width: int, n_classes: int) -> Readout:
    """A zero-initialised digital readout (width -> n_classes)."""
    return Readout(np.zeros((width, n_classes), dtype=np.float32))


def readout_step(readout: Readout, features: np.ndarray, grad_logits: np.ndarray,
                 lr: float) -> np.ndarray:
    """One SGD step of ``readout`` on d(loss)/d(logits); returns d(loss)/d(features).

    The returned gradient uses the weights before the step (as backprop does).
    """
    grad_features = grad_logits @ readout.weight.T
    readout.weight -= np.float32(lr) * (features.T @ grad_logits).astype(np.float32)
    readout.bias -= np.float32(lr) * grad_logits.sum(axis=0).astype(np.float32)
    return grad_features


class ReadoutAdam:
    """Adam (Kingma & Ba 2015) for one digital readout: its moment estimates and step count.

    The readouts of the forward-only learners are digital, so they may use any optimiser; Adam
    trains a linear readout on non-centred, slowly changing features far faster than SGD.
    """

    def __init__(self, readout: Readout, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        self.readout = readout
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.moments = [(np.zeros_like(p), np.zeros_like(p))
                        for p in (readout.weight, readout.bias)]
        self.steps = 0

    def step(self, features: np.ndarray, grad_logits: np.ndarray, lr: float) -> None:
        """One Adam step on d(loss)/d(logits) (batch, classes) for features (batch, width)."""
        self.steps += 1
        grads = ((features.T @ grad_logits).astype(np.float32),
                 grad_logits.sum(axis=0).astype(np.float32))
        correction1 = 1.0 - self.beta1 ** self.steps
        correction2 = 1.0 - self.beta2 ** self.steps
        params = (self.readout.weight, self.readout.bias)
        for param, grad, (first, second) in zip(params, grads, self.moments, strict=True):
            first *= self.beta1
            first += (1.0 - self.beta1) * grad
            second *= self.beta2
            second += (1.0 - self.beta2) * grad * grad
            denominator = np.sqrt(second / correction2) + self.eps
            param -= np.float32(lr / correction1) * first / denominator


def normalise_backward(name: str, h: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
    """Exact d(loss)/dh through ``normalise(name, h)`` given d(loss)/d(output), all (batch, n).

    RMS: ``a = h / s`` with ``s = rms(h) + eps``; the Jacobian is ``(I - h h^T / (n rms s)) / s``
    (the division by ``s`` alone, the usual on-chip approximation, drops the projection term).
    Layer norm: the same with the mean removed. Both are cheap digital operations on
    quantities the periphery holds, so the exact form is used.
    """
    if name == "rms":
        rms = np.sqrt(np.mean(h * h, axis=1, keepdims=True))
        scale = rms + NORM_EPS
        safe_rms = np.where(rms > 0.0, rms, 1.0)
        projection = np.mean(grad_out * h, axis=1, keepdims=True) / (safe_rms * scale)
        return (grad_out - h * projection) / scale
    if name == "layer":
        centred = h - h.mean(axis=1, keepdims=True)
        std = centred.std(axis=1, keepdims=True)
        scale = std + NORM_EPS
        safe_std = np.where(std > 0.0, std, 1.0)
        projection = np.mean(grad_out * centred, axis=1, keepdims=True) / (safe_std * scale)
        grad = grad_out - grad_out.mean(axis=1, keepdims=True) - centred * projection
        return grad / scale
    return grad_out


def chip_logits(net: Network, x: np.ndarray, owner: str, n_classes: int | None,
                *, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Logits of ``net`` on its chip: its digital readout, or the last tile's pre-activation.

    Without ``net.readout`` the last layer is the classifier: its output (tile plus bias) is
    used before the activation, so its width must be the number of classes.
    """
    h = net.check_inputs(x, owner)
    for layer in net.layers[:-1]:
        h = layer(h, rng=rng)
    last = net.layers[-1]
    if net.readout is None:
        if n_classes is not None and last.tile.cols != n_classes:
            raise ParameterError(f"{owner}: the network has no readout and its last width "
                                 f"{last.tile.cols} is not the number of classes {n_classes}; "
                                 "train it with this learner first (fit) or deploy it.")
        return last.pre_activation(h, rng=rng)
    h = activate(last.activation, last.pre_activation(h, rng=rng))
    return net.readout(readout_features(net, h))
