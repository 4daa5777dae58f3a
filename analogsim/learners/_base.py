"""What every learner shares: the fit loop, the history, progress, evaluation.

A learner subclasses :class:`Learner` and implements ``_setup`` (learner state for a network,
e.g. a fixed random projection), ``train_step`` (one mini-batch, returning the loss and the
number of correct predictions) and ``predict``. Forward-only learners (``forward_only =
True``) may only call ``tile.forward`` and ``tile.update`` and compute layer-local digital
quantities: never ``tile.read``, ``tile.program`` or ``tile.backward``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
from tqdm.auto import tqdm

from analogsim._validation import check_range
from analogsim.datasets import Split
from analogsim.datasets._dataset import as_generator
from analogsim.errors import ParameterError
from analogsim.network import Network
from analogsim.tile import RngLike


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of training: mean loss, training accuracy (on the fly), wall seconds."""

    epoch: int
    loss: float
    train_accuracy: float
    seconds: float


class History(list):
    """The per-epoch records of a ``fit``; ``as_arrays()`` gives one array per column."""

    def as_arrays(self) -> dict[str, np.ndarray]:
        keys = ("epoch", "loss", "train_accuracy", "seconds")
        return {key: np.array([asdict(record)[key] for record in self]) for key in keys}


class Learner:
    """Base class of the learners; see the module docstring."""

    forward_only: ClassVar[bool] = True
    default_batch_size: ClassVar[int] = 64

    def __init__(self, n_classes: int | None = None) -> None:
        if n_classes is not None:
            check_range(type(self).__name__, "n_classes", n_classes, 2, 2**20, integer=True)
        self.n_classes = n_classes

    # ------------------------------------------------------------------ to implement
    def _setup(self, net: Network, n_classes: int, rng: np.random.Generator) -> None:
        """Prepare learner state for ``net`` (called once at the start of ``fit``)."""

    def train_step(self, net: Network, x: np.ndarray, y: np.ndarray,
                   rng: np.random.Generator) -> tuple[float, int]:
        """Train on one mini-batch; return (mean loss, number of correct predictions)."""
        raise NotImplementedError

    def predict(self, net: Network, x: object) -> np.ndarray:
        """Predicted labels (int64, shape (batch,)) for inputs ``x`` (batch, n_features)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    def fit(self, net: Network, data: Split, epochs: int = 10, *, batch_size: int | None = None,
            rng: RngLike = 0, progress: bool = True) -> History:
        """Train ``net`` in place on ``data`` for ``epochs`` epochs; return the history.

        ``rng`` (int seed or Generator) drives batch order and the learner's own randomness;
        None uses the chip's run-time stream (still deterministic for a given chip seed).
        """
        owner = f"{type(self).__name__}.fit"
        check_range(owner, "epochs", epochs, 1, 10**6, integer=True)
        batch_size = self.default_batch_size if batch_size is None else batch_size
        check_range(owner, "batch_size", batch_size, 1, 10**7, integer=True)
        n_classes = self._check_data(net, data, owner)
        generator = net.chip.runtime_rng(None) if rng is None else as_generator(owner, rng)
        self._setup(net, n_classes, generator)
        history = History()
        bar = tqdm(total=epochs * -(-len(data) // batch_size), disable=not progress,
                   desc=type(self).__name__, unit="batch", leave=False)
        try:
            for epoch in range(1, epochs + 1):
                start, losses, correct = time.perf_counter(), [], 0
                for x, y in data.batches(batch_size, generator):
                    loss, hits = self.train_step(net, x, y, generator)
                    losses.append(loss * len(y))
                    correct += hits
                    bar.update(1)
                record = EpochRecord(epoch, float(np.sum(losses) / len(data)),
                                     correct / len(data), time.perf_counter() - start)
                history.append(record)
                bar.set_postfix(loss=f"{record.loss:.4f}", acc=f"{record.train_accuracy:.3f}")
        finally:
            bar.close()
        for tile in net.tiles:  # the weights just learned are the drift reference from now on
            if tile.periphery.drift_compensation:
                tile.calibrate_drift()
        return history

    def evaluate(self, net: Network, data: Split, *, batch_size: int = 1000) -> float:
        """Accuracy of ``net`` on ``data`` now (on its chip, with its noise), as a float."""
        self._check_data(net, data, f"{type(self).__name__}.evaluate")
        correct = 0
        for start in range(0, len(data), batch_size):
            x, y = data.x[start:start + batch_size], data.y[start:start + batch_size]
            correct += int(np.sum(self.predict(net, x) == y))
        return correct / len(data)

    def _check_data(self, net: Network, data: Split, owner: str) -> int:
        if not isinstance(data, Split):
            raise ParameterError(f"{owner}: 'data' must be a datasets.Split (e.g. "
                                 f"data.train). Got {type(data).__name__} instead.")
        if data.n_features != net.n_inputs:
            raise ParameterError(f"{owner}: the network takes {net.n_inputs} inputs but the "
                                 f"data has {data.n_features} features; make the network with "
                                 f"widths[0] = {data.n_features}.")
        n_classes = self.n_classes or int(data.y.max()) + 1
        n_classes = max(n_classes, 2)
        if int(data.y.max()) >= n_classes:
            raise ParameterError(f"{owner}: labels must be in [0, {n_classes}); the data has "
                                 f"label {int(data.y.max())}.")
        self.n_classes = n_classes
        return n_classes
