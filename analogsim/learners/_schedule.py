"""Learning-rate schedules over the steps of one ``fit`` call, shared by the forward-only learners.

``"constant"`` keeps the learning rates; ``"cosine"`` anneals them from their set values to 0
over the mini-batch steps of a ``fit`` call (a second ``fit`` starts the schedule again), as
:class:`~analogsim.learners.DigitalBackprop` does. A ``train_step`` called outside ``fit`` runs
at the full learning rates.
"""

from __future__ import annotations

import numpy as np

from analogsim.datasets import Split

SCHEDULES = ("constant", "cosine")


class ScheduledLearning:
    """Mixin: ``_start_schedule`` in ``fit``, ``_lr_factor()`` once per ``train_step``."""

    schedule: str = "constant"
    _schedule_steps: tuple[int, int] | None = None

    def _start_schedule(self, data: object, epochs: object, batch_size: object) -> None:
        """Count the steps of the coming ``fit`` (nothing to do when its arguments are bad:
        ``Learner.fit`` then raises its own error)."""
        size = getattr(self, "default_batch_size", 64) if batch_size is None else batch_size
        if isinstance(data, Split) and isinstance(size, int) and isinstance(epochs, int) \
                and size > 0 and epochs > 0:
            self._schedule_steps = (0, max(1, epochs * -(-len(data) // size)))
        else:
            self._schedule_steps = None

    def _lr_factor(self) -> float:
        """The learning-rate multiplier of this step (and advance the schedule by one step)."""
        if self._schedule_steps is None or self.schedule == "constant":
            return 1.0
        taken, total = self._schedule_steps
        self._schedule_steps = (taken + 1, total)
        return float(0.5 * (1.0 + np.cos(np.pi * min(taken, total) / total)))
