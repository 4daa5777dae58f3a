"""Shared helpers of the experiments tests: tiny configs and a test-double learner."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analogsim.learners import Learner

TINY_COMMON = """
[data]
name = "digits"
train_samples = 200
test_samples = 100

[network]
hidden = [16]

[training]
epochs = 1
batch_size = 50
seed = 0
"""


def write_config(folder: Path, name: str, command: str, body: str,
                 common: str = TINY_COMMON) -> Path:
    """Write ``<folder>/<name>.toml`` for ``command`` with the tiny common sections."""
    path = folder / f"{name}.toml"
    path.write_text(f'command = "{command}"\n{common}\n{body}\n', encoding="utf-8")
    return path


def tiny_sweep(folder: Path, name: str = "tiny-sweep", seeds: str = "[0, 1]",
               extra: str = "") -> Path:
    return write_config(folder, name, "sweep", f"""
[sweep]
devices = ["reram"]
learners = ["forward-forward"]
seeds = {seeds}
programming = [0.0, 2.0]
drift_times = [3600.0]
{extra}
""")


class ReadoutDouble(Learner):
    """A test double: a digital readout on the last layer, trained by SGD (no tile updates).

    Deterministic, fast, and enough to give accuracies well above chance on digits.
    """

    default_batch_size = 50

    def __init__(self, *, lr: float = 0.5, fail: bool = False) -> None:
        super().__init__()
        self.lr, self.fail = lr, fail

    def _setup(self, net, n_classes, rng):
        if self.fail:
            raise RuntimeError("the test double was told to fail")
        if getattr(net, "double_weight", None) is None:
            net.double_weight = np.zeros((net.widths[-1], n_classes), dtype=np.float32)

    def train_step(self, net, x, y, rng):
        h = net(x)
        logits = h @ net.double_weight
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        loss = float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-9)))
        p[np.arange(len(y)), y] -= 1.0
        net.double_weight -= np.float32(self.lr / len(y)) * (h.T @ p).astype(np.float32)
        return loss, int(np.sum(np.argmax(logits, axis=1) == y))

    def predict(self, net, x):
        weight = getattr(net, "double_weight", None)
        if weight is None:
            weight = np.zeros((net.widths[-1], self.n_classes), dtype=np.float32)
        return np.argmax(net(x) @ weight, axis=1).astype(np.int64)
