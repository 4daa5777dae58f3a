"""Run the trials of an experiment: local worker processes by default, or a Ray cluster.

Both paths call the same function on each trial (:func:`execute`) and hand every result back
to this process, which writes it to the :class:`~analogsim.experiments.results.ResultsStore`
as soon as it arrives: the same trials, the same file. Trials already in the store are
skipped, so a rerun resumes.

Threads: the machine's cores are shared between workers (``threads`` per worker, default
``cpu_count // workers``); BLAS, OpenMP, Numba and PyTorch in each worker are limited to it,
since oversubscribed BLAS threads on small matrices are many times slower than one thread.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue as queue_module
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from analogsim.experiments.progress import Board, Event, Reporter
from analogsim.experiments.results import ResultsStore, TrialResult

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


@dataclass(frozen=True)
class Trial:
    """One unit of work: ``kind`` names the function in :mod:`analogsim.experiments.trials`,
    ``params`` its JSON-able arguments."""

    trial_id: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunOutcome:
    """All finished trials of the run (earlier ones included) and the failures of this one."""

    results: dict[str, TrialResult]
    failures: dict[str, str]
    skipped: int


def execute(trial: Trial, values: dict[str, Any],
            sink: Callable[[Event], None] | None) -> TrialResult:
    """Run one trial (in whatever process this is) and time it."""
    from analogsim.experiments.trials import run_trial

    start = time.perf_counter()
    result = run_trial(trial, values, Reporter(trial.trial_id, sink))
    result.seconds = time.perf_counter() - start
    return result


def run_trials(trials: list[Trial], store: ResultsStore, *, workers: int | None = None,
               ray: str | None = None, threads: int | None = None, quiet: bool = False,
               label: str = "run") -> RunOutcome:
    """Run the trials not yet in ``store`` and write each result as it finishes.

    Parameters
    ----------
    trials : every trial of the run (unique ids).
    store : where results go; trials already there are skipped.
    workers : local worker processes (default: the CPU count, at most the trials to run);
        0 runs the trials in this process, one after the other.
    ray : a Ray cluster address, or "local" to start a Ray instance in this process.
    threads : compute threads per worker (default ``cpu_count // workers``, at least 1).
    quiet : no progress bars and no per-trial lines.
    """
    ids = [trial.trial_id for trial in trials]
    if len(set(ids)) != len(ids):
        raise ValueError("run_trials: trial ids must be unique.")
    store.expected = set(ids)
    done = store.finished()
    pending = [trial for trial in trials if trial.trial_id not in done]
    cores = os.cpu_count() or 1
    if workers is None:
        workers = max(1, min(cores, len(pending)))
    threads = threads or max(1, cores // max(1, workers))
    board = Board(label, len(trials), len(trials) - len(pending), quiet=quiet)
    if len(pending) < len(trials):
        board.write(f"resuming {store.path}: {len(trials) - len(pending)} of {len(trials)} "
                    f"trials already finished, skipped")
    stale = set(done) - store.expected
    if stale:
        board.write(f"note: {len(stale)} trial(s) in {store.path} are not part of this run "
                    f"(written by another version of analogsim?) and are left out of it; "
                    f"--overwrite starts afresh", always=True)
    failures: dict[str, str] = {}

    def finish(trial: Trial, result: TrialResult | None, error: BaseException | None) -> None:
        if error is not None:
            failures[trial.trial_id] = f"{type(error).__name__}: {error}"
            board.failed(trial.trial_id, failures[trial.trial_id])
            return
        store.write_trial(result)
        board.finished(trial.trial_id, result.summary)

    try:
        if not pending:
            pass
        elif ray is not None:
            _run_ray(pending, store.config.values, ray, workers, threads, board, finish)
        elif workers == 0:
            _run_inline(pending, store.config.values, threads, board, finish)
        else:
            _run_pool(pending, store.config.values, workers, threads, board, finish)
    finally:
        board.close()
    results = store.assemble()
    return RunOutcome(results, failures, len(trials) - len(pending))


Finish = Callable[[Trial, TrialResult | None, BaseException | None], None]


# ---------------------------------------------------------------------- in this process
def _run_inline(pending: list[Trial], values: dict, threads: int, board: Board,
                finish: Finish) -> None:
    with limit_threads(threads):
        for trial in pending:
            try:
                result = execute(trial, values, board.handle)
            except Exception as error:  # a failed trial must not stop the others
                finish(trial, None, error)
            else:
                finish(trial, result, None)


@contextlib.contextmanager
def limit_threads(threads: int) -> Iterator[None]:
    """Limit BLAS/OpenMP (threadpoolctl), Numba and PyTorch threads in this process."""
    import sys

    import numba
    from threadpoolctl import threadpool_limits

    numba_before = numba.get_num_threads()
    torch = sys.modules.get("torch")
    torch_before = torch.get_num_threads() if torch else None
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if torch:
        torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            yield
    finally:
        numba.set_num_threads(numba_before)
        if torch and torch_before:
            torch.set_num_threads(torch_before)


# ---------------------------------------------------------------------- local processes
_EVENTS: Any = None


def _init_worker(events: Any) -> None:
    global _EVENTS
    _EVENTS = events


def _execute_in_worker(trial: Trial, values: dict) -> TrialResult:
    return execute(trial, values, _EVENTS.put if _EVENTS is not None else None)


@contextlib.contextmanager
def _child_threads(threads: int) -> Iterator[dict[str, str]]:
    """Set the thread variables that processes started inside this block read at start."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    values = {name: str(threads) for name in THREAD_VARIABLES}
    os.environ.update(values)
    try:
        yield values
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run_pool(pending: list[Trial], values: dict, workers: int, threads: int, board: Board,
              finish: Finish) -> None:
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    with _child_threads(threads):
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                   initializer=_init_worker, initargs=(events,))
        futures = {pool.submit(_execute_in_worker, trial, values): trial for trial in pending}
    try:
        while futures:
            finished, _ = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(events.get_nowait, queue_module.Empty, board)
            for future in finished:
                trial = futures.pop(future)
                error = future.exception()
                finish(trial, None if error else future.result(), error)
        pool.shutdown(wait=True)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        events.close()


def _drain(get: Callable[[], Event], empty: type[Exception], board: Board) -> None:
    while True:
        try:
            board.handle(get())
        except empty:
            return


# ---------------------------------------------------------------------- Ray
def _execute_remote(trial: Trial, values: dict, events: Any) -> TrialResult:
    return execute(trial, values, events.put_nowait)


def _run_ray(pending: list[Trial], values: dict, address: str, workers: int, threads: int,
             board: Board, finish: Finish) -> None:
    try:
        import ray
        from ray.util.queue import Empty, Queue
    except ImportError:
        raise RuntimeError("--ray needs Ray, which is not installed: pip install "
                           "'analogsim[ray]' (or pip install 'ray[default]').") from None
    environment = {name: str(threads) for name in THREAD_VARIABLES}
    started = not ray.is_initialized()
    if started:
        options: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                       runtime_env={"env_vars": environment})
        if address == "local":
            ray.init(num_cpus=max(1, workers), **options)
        else:
            ray.init(address=address, **options)
    try:
        events = Queue()
        task = ray.remote(num_cpus=1)(_execute_remote)
        refs = {task.remote(trial, values, events): trial for trial in pending}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
            _drain(events.get_nowait, Empty, board)
            for ref in ready:
                trial = refs.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as error:  # RayTaskError wraps the trial's exception
                    finish(trial, None, error)
                else:
                    finish(trial, result, None)
        events.shutdown()
    finally:
        if started:
            ray.shutdown()
