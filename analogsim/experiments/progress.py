"""Progress of a run: one bar for the run, one per running trial, a line per finished trial.

Trials run in other processes (or on a Ray cluster), so they do not draw bars themselves: a
:class:`Reporter` sends small events (``start``, ``total``, ``advance``) to a sink (a
multiprocessing queue, a Ray queue, or the board itself for in-process trials) and the
:class:`Board` in the driver draws them. ``quiet`` silences all of it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm

Event = tuple[Any, ...]


class Reporter:
    """What a trial calls to report progress: ``stage(description, total)``, ``advance(n)``."""

    def __init__(self, trial_id: str, sink: Callable[[Event], None] | None) -> None:
        self.trial_id = trial_id
        self._sink = sink

    def stage(self, description: str, total: int) -> None:
        """Start a stage of ``total`` units (epochs, mini-batches, evaluations)."""
        self._send("stage", description, int(total))

    def advance(self, units: int = 1) -> None:
        self._send("advance", int(units))

    def _send(self, *event: Any) -> None:
        if self._sink is not None:
            self._sink((self.trial_id, *event))


class Board:
    """The progress display of one run (nothing at all when ``quiet``)."""

    def __init__(self, label: str, total: int, done: int, *, quiet: bool) -> None:
        self.quiet = quiet
        self._bars: dict[str, tqdm] = {}
        self._positions: dict[str, int] = {}
        self._done: set[str] = set()  # late events of finished trials are dropped
        self._free_positions: list[int] = []
        self._run = tqdm(total=total, initial=done, desc=label, unit="trial",
                         disable=quiet, position=0, leave=True, dynamic_ncols=True,
                         file=sys.stderr)

    def handle(self, event: Event) -> None:
        """Apply one event from a :class:`Reporter`."""
        if self.quiet:
            return
        trial_id, kind, *values = event
        if trial_id in self._done:
            return
        if kind == "stage":
            description, total = values
            self._stage(trial_id, f"  {trial_id}: {description}", total)
        elif kind == "advance" and trial_id in self._bars:
            self._bars[trial_id].update(values[0])

    def finished(self, trial_id: str, summary: str) -> None:
        """A trial is done: drop its bar, print its summary, move the run bar."""
        self._close(trial_id)
        self.write(summary)
        self._run.update(1)

    def failed(self, trial_id: str, message: str) -> None:
        self._close(trial_id)
        self.write(f"FAILED {trial_id}: {message}", always=True)

    def write(self, line: str, *, always: bool = False) -> None:
        if always or not self.quiet:
            tqdm.write(line, file=sys.stderr)

    def close(self) -> None:
        for trial_id in list(self._bars):
            self._close(trial_id)
        self._run.close()

    def _stage(self, trial_id: str, description: str, total: int) -> None:
        bar = self._bars.get(trial_id)
        if bar is not None:
            bar.reset(total=total)
            bar.set_description_str(description)
            return
        position = self._free_positions.pop(0) if self._free_positions \
            else len(self._bars) + 1
        self._positions[trial_id] = position
        self._bars[trial_id] = tqdm(total=total, desc=description, position=position,
                                    leave=False, dynamic_ncols=True, file=sys.stderr)

    def _close(self, trial_id: str) -> None:
        self._done.add(trial_id)
        bar = self._bars.pop(trial_id, None)
        if bar is not None:
            self._free_positions.append(self._positions.pop(trial_id))
            self._free_positions.sort()
            bar.close()
