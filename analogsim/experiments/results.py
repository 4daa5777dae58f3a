"""HDF5 results: one file per run, every finished trial kept atomically.

Layout of a run file ``RUN.h5``::

    attrs: command, config (the TOML text), config_json, config_digest, seeds (JSON),
           analogsim_version, git_commit, created, n_trials, complete
    /trials/<trial_id>      attrs: spec (JSON), summary, seconds; metrics as attributes of
                            /trials/<id>/metrics; arrays (history/..., drift/...) as datasets

While a run is going, each finished trial is first written to its own file in the sidecar
folder ``RUN.h5.trials/`` (temporary file, then ``os.replace``), and the run file is then
re-assembled from all finished trials, again through a temporary file and a rename. A run
killed at any moment therefore loses no finished trial; a rerun reads the trials already done
from the run file and the sidecar and skips them. When every trial is in, the sidecar is
removed. A run file or sidecar made from a different config is never appended to.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from analogsim.errors import AnalogSimError

FORMAT = "analogsim-results"
FORMAT_VERSION = 1


class ResultsMismatchError(AnalogSimError, ValueError):
    """An output file exists but was made from a different config: it is not appended to."""


@dataclass
class TrialResult:
    """What one trial produced.

    Attributes
    ----------
    trial_id : str
        Unique within a run; also the HDF5 group name.
    spec : dict
        The trial's parameters (JSON-able).
    metrics : dict of str to float
        Scalar results (e.g. ``test_accuracy``).
    arrays : dict of str to ndarray
        Array results by path (e.g. ``history/loss``, ``drift/accuracy``).
    summary : str
        The one-line summary printed when the trial finishes.
    seconds : float
        Wall time of the trial.
    files : dict of str to bytes
        Artifacts (e.g. a trained chip) written next to the run file as ``<run>-<name>``.
    """

    trial_id: str
    spec: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    summary: str = ""
    seconds: float = 0.0
    files: dict[str, bytes] = field(default_factory=dict)


class ResultsStore:
    """The results of one run at ``path``, made from the config with ``digest``.

    Parameters
    ----------
    path : path of the run file (``.h5``).
    config : the validated config (its text, canonical JSON and digest are stored).
    seeds : every seed the run uses, stored as a JSON attribute.
    overwrite : remove an existing run file and sidecar first, instead of resuming.
    """

    def __init__(self, path: str | Path, config: Any, seeds: dict[str, Any], *,
                 overwrite: bool = False) -> None:
        self.path = Path(path)
        self.sidecar = self.path.with_name(self.path.name + ".trials")
        self.config = config
        self.seeds = seeds
        #: Trial ids the run is made of (set by the runner); all done means complete.
        self.expected: set[str] = set()
        self.commit = git_commit()  # the code the run started with
        if overwrite:
            self.remove()
        self._check_owner()

    # ------------------------------------------------------------------ reading
    def finished(self) -> dict[str, TrialResult]:
        """Trials already done: in the run file, or in the sidecar (newer wins)."""
        done: dict[str, TrialResult] = {}
        if self.path.exists():
            done.update(load_results(self.path))
        if self.sidecar.is_dir():
            for file in sorted(self.sidecar.glob("*.h5")):
                with h5py.File(file, "r") as handle:
                    result = read_trial(handle["trial"])
                done[result.trial_id] = result
        return done

    # ------------------------------------------------------------------ writing
    def write_trial(self, result: TrialResult) -> None:
        """Keep ``result`` durably (sidecar file, atomically), then re-assemble the run file."""
        self.sidecar.mkdir(parents=True, exist_ok=True)
        for name, payload in result.files.items():
            target = self.artifact_path(name)
            temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            temporary.write_bytes(payload)
            os.replace(temporary, target)
        target = self.sidecar / f"{result.trial_id}.h5"
        temporary = self.sidecar / f".{result.trial_id}.h5.tmp-{os.getpid()}"
        with h5py.File(temporary, "w") as handle:
            handle.attrs["config_digest"] = self.config.digest()
            write_trial(handle.create_group("trial"), result)
        os.replace(temporary, target)
        self.assemble()

    def assemble(self) -> dict[str, TrialResult]:
        """Rewrite the run file from every finished trial (temporary file, then rename).

        Only the expected trials are kept, when they are known. When every expected trial is
        finished the run is marked complete and the sidecar is removed.
        """
        done = self.finished()
        if self.expected:
            done = {key: value for key, value in done.items() if key in self.expected}
        complete = bool(self.expected) and self.expected <= set(done)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with h5py.File(temporary, "w") as handle:
            self._write_attributes(handle, complete)
            group = handle.create_group("trials")
            for trial_id in sorted(done):
                write_trial(group.create_group(trial_id), done[trial_id])
        os.replace(temporary, self.path)
        if complete:
            shutil.rmtree(self.sidecar, ignore_errors=True)
        return done

    def artifact_path(self, name: str) -> Path:
        return self.path.with_name(f"{self.path.stem}-{name}")

    def remove(self) -> None:
        """Delete the run file and its sidecar (``--overwrite``)."""
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.sidecar, ignore_errors=True)

    # ------------------------------------------------------------------ internals
    def _check_owner(self) -> None:
        digest = self.config.digest()
        owners = []
        if self.path.exists():
            owners.append((self.path, _file_digest(self.path)))
        for file in sorted(self.sidecar.glob("*.h5")) if self.sidecar.is_dir() else []:
            owners.append((file, _file_digest(file)))
        for file, found in owners:
            if found != digest:
                raise ResultsMismatchError(
                    f"{file} holds results of a different config (digest {found[:12]}, this "
                    f"config {self.config.source} has {digest[:12]}); not appending to it. "
                    f"Choose another output with --out, or pass --overwrite to replace it.")

    def _write_attributes(self, handle: h5py.File, complete: bool) -> None:
        from analogsim import __version__

        attrs = handle.attrs
        attrs["format"] = FORMAT
        attrs["format_version"] = FORMAT_VERSION
        attrs["command"] = self.config.command
        attrs["config"] = self.config.text
        attrs["config_source"] = self.config.source
        attrs["config_json"] = self.config.canonical()
        attrs["config_digest"] = self.config.digest()
        attrs["seeds"] = json.dumps(self.seeds, sort_keys=True)
        attrs["analogsim_version"] = __version__
        attrs["git_commit"] = self.commit
        attrs["written"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        attrs["n_trials"] = len(self.expected)
        attrs["complete"] = bool(complete)


def _file_digest(path: Path) -> str:
    try:
        with h5py.File(path, "r") as handle:
            return str(handle.attrs.get("config_digest", ""))
    except OSError:
        return "unreadable"


# ---------------------------------------------------------------------- trial groups
def write_trial(group: h5py.Group, result: TrialResult) -> None:
    """Store ``result`` in ``group`` (artifacts are files, not stored here)."""
    group.attrs["trial_id"] = result.trial_id
    group.attrs["spec"] = json.dumps(result.spec, sort_keys=True)
    group.attrs["summary"] = result.summary
    group.attrs["seconds"] = float(result.seconds)
    metrics = group.create_group("metrics")
    for name, value in result.metrics.items():
        metrics.attrs[name] = float(value)
    for name, array in result.arrays.items():
        group.create_dataset(f"arrays/{name}", data=np.asarray(array))


def read_trial(group: h5py.Group) -> TrialResult:
    """The :class:`TrialResult` stored in ``group`` by :func:`write_trial`."""
    arrays: dict[str, np.ndarray] = {}
    if "arrays" in group:
        group["arrays"].visititems(
            lambda name, item: arrays.__setitem__(name, item[()])
            if isinstance(item, h5py.Dataset) else None)
    return TrialResult(
        trial_id=str(group.attrs["trial_id"]),
        spec=json.loads(group.attrs["spec"]),
        metrics={name: float(value) for name, value in group["metrics"].attrs.items()},
        arrays=arrays,
        summary=str(group.attrs["summary"]),
        seconds=float(group.attrs["seconds"]),
    )


def load_results(path: str | Path) -> dict[str, TrialResult]:
    """Every trial in the run file at ``path``, by trial id."""
    with h5py.File(path, "r") as handle:
        if handle.attrs.get("format") != FORMAT:
            raise ResultsMismatchError(f"{path} is not an analogsim results file.")
        trials = handle.get("trials", {})
        return {name: read_trial(trials[name]) for name in trials}


def run_attributes(path: str | Path) -> dict[str, Any]:
    """The run-level attributes of the results file at ``path``."""
    with h5py.File(path, "r") as handle:
        return {name: _plain(value) for name, value in handle.attrs.items()}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def git_commit() -> str:
    """The commit of the analogsim checkout (with ``+dirty`` if changed), or "unknown"."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if status else "")


def safe_id(*parts: Iterable[object] | object) -> str:
    """A trial id from ``parts``: letters, digits, ``.``, ``_``, ``=`` and ``-`` only."""
    text = "-".join(str(part) for part in parts)
    return "".join(c if c.isalnum() or c in "._=-" else "_" for c in text)
