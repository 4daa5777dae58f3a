"""Kernel timings as ratios to NumPy's float32 matmul: shared by ``analogsim bench`` and the
pytest-benchmark suite in ``benchmarks/``.

Every operation is timed against its *reference* (the plain matmul of the same shape, the
limit an analog simulation cannot beat: ``x @ W`` for the forward, ``x.T @ d`` for the update)
in the same run, interleaved round by round, so that a machine shared with other work slows
both alike and the ratio stays meaningful. Compiled kernels are warmed up on a small tile
first, so no timing includes Numba compilation.

The workload is fixed by a seed: inputs ``x ~ U[0, 1)`` (batch, rows), errors
``d ~ N(0, 0.1^2)`` (batch, cols), weights ``W ~ N(0, 0.05^2)`` programmed with the default
``fill``, and ``lr = 0.001``, which gives the ReRAM update a few tens of pulses per device
and batch (reported as ``mean_pulses``).
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from analogsim.tile import Tile

#: (rows, cols) tiles of the issue's table; rows are the inputs.
DEFAULT_SHAPES = ((1024, 1024), (4096, 1024))
DEFAULT_BATCH = 256
DEFAULT_REPEATS = 15
#: Tiny shapes for smoke tests (``analogsim bench --quick``).
QUICK_SHAPES = ((64, 32), (128, 32))
QUICK_BATCH = 8
QUICK_REPEATS = 3
DEVICES = ("reram", "pcm")
LEARNING_RATE = 1e-3
#: Shape the kernels are compiled on before anything is timed.
WARMUP_SHAPE = (4, 16, 8)


@dataclass(frozen=True)
class Operation:
    """One row kind of the table: what is timed, against what, with which target ratio."""

    name: str
    label: str
    reference: str
    target: float | None


OPERATIONS = {
    op.name: op for op in (
        Operation("forward", "forward: read noise, DAC, ADC", "x @ W", 2.5),
        Operation("forward-no-noise", "forward: DAC, ADC, no read noise", "x @ W", 1.3),
        Operation("update-fast", "update: fast sampler", "x.T @ d", 3.0),
        Operation("update-fast-int8", "update: fast sampler, int8 counts", "x.T @ d", 3.0),
        Operation("update-exact", "update: exact sampler", "x.T @ d", None),
    )
}


@dataclass(frozen=True)
class Measurement:
    """Timings (ms) of one operation and its reference, taken interleaved in one run."""

    operation: str
    device: str
    batch: int
    rows: int
    cols: int
    times_ms: tuple[float, ...]
    reference_times_ms: tuple[float, ...]
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def spec(self) -> Operation:
        return OPERATIONS[self.operation]

    @property
    def ms(self) -> float:
        """Median time of the operation."""
        return statistics.median(self.times_ms)

    @property
    def reference_ms(self) -> float:
        """Median time of the reference matmul."""
        return statistics.median(self.reference_times_ms)

    @property
    def ratio(self) -> float:
        """Median operation time over median reference time."""
        return self.ms / self.reference_ms

    @property
    def min_ratio(self) -> float:
        """Best operation time over best reference time (less sensitive to other load)."""
        return min(self.times_ms) / min(self.reference_times_ms)

    @property
    def passed(self) -> bool | None:
        """Whether the ratio meets the target (None when the operation has none)."""
        target = self.spec.target
        return None if target is None else self.ratio <= target

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row.update(label=self.spec.label, reference=self.spec.reference,
                   target=self.spec.target, ms=self.ms, reference_ms=self.reference_ms,
                   ratio=self.ratio, min_ratio=self.min_ratio, passed=self.passed)
        return row


# ---------------------------------------------------------------------- workload
@dataclass(frozen=True)
class Workload:
    """The arrays every operation of one shape is timed on (float32, C-contiguous)."""

    x: np.ndarray
    d: np.ndarray
    weights: np.ndarray
    lr: float = LEARNING_RATE

    @classmethod
    def make(cls, batch: int, rows: int, cols: int, seed: int = 0) -> Workload:
        rng = np.random.default_rng(seed)
        x = rng.random((batch, rows), dtype=np.float32)
        d = rng.standard_normal((batch, cols), dtype=np.float32) * np.float32(0.1)
        weights = rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(0.05)
        return cls(x=x, d=d, weights=weights)


#: Operations that need an optional dependency, and its import name.
NEEDS = {"update-fast-int8": "torch"}


def available_operations() -> tuple[str, ...]:
    """The operations this installation can time (``update-fast-int8`` needs PyTorch)."""
    from analogsim.kernels.count_means_int8 import torch_available

    return tuple(name for name in OPERATIONS
                 if NEEDS.get(name) != "torch" or torch_available())


def make_tile(operation: str, workload: Workload, device: str = "reram",
              seed: int = 0) -> Tile:
    """A programmed tile of a fresh chip, with the periphery (and count precision)
    ``operation`` is timed with."""
    import analogsim as asim

    models = {"reram": asim.devices.ReRAM, "pcm": asim.devices.PCM}
    periphery = asim.Periphery(read_noise=operation != "forward-no-noise")
    chip = asim.Chip(device=models[device](), seed=seed, periphery=periphery,
                     count_precision="int8" if operation == "update-fast-int8" else None)
    rows, cols = workload.weights.shape
    tile = chip.tile("bench", rows=rows, cols=cols)
    tile.program(workload.weights)
    return tile


def callables(operation: str, tile: Tile,
              workload: Workload) -> tuple[Callable[[], object], Callable[[], object]]:
    """(operation, reference) on ``tile`` (see :func:`make_tile`) as functions of no
    arguments."""
    x, d, lr = workload.x, workload.d, workload.lr
    if operation.startswith("forward"):
        weights = workload.weights
        return (lambda: tile.forward(x)), (lambda: x @ weights)
    sampler = "exact" if operation == "update-exact" else "fast"
    return (lambda: tile.update(x, d, lr, sampler=sampler)), (lambda: x.T @ d)


def age_tile(tile: Tile, workload: Workload, updates: int, seed: int = 0) -> None:
    """Bring ``tile`` into use: ``updates`` fast updates of the workload's inputs, each with
    fresh errors of the workload's scale (drawn from ``seed``, apart from the workload's).

    An update's cost depends on the array's state: on a fresh PCM tile few pairs are near
    their refresh threshold, on one in use about 1 % of them are, each applied apart.
    """
    from analogsim._validation import check_range

    check_range("age_tile", "updates", updates, 0, integer=True)
    rng = np.random.default_rng([seed, 1])
    for _ in range(updates):
        d = rng.standard_normal(workload.d.shape, dtype=np.float32) * np.float32(0.1)
        tile.update(workload.x, d, workload.lr)


def mean_pulses(tile: Tile, workload: Workload) -> float:
    """Mean expected pulse count (up + down) of one device of ``tile`` over one update."""
    per_unit = workload.lr / (tile.weight_scale * tile.device.dw_min)
    per_sample = np.abs(workload.x).sum(axis=1) * np.abs(workload.d).sum(axis=1)
    magnitude = float(per_sample.sum(dtype=np.float64))
    return float(magnitude * per_unit / workload.weights.size)


# ---------------------------------------------------------------------- timing
#: "wall": elapsed time; "cpu": CPU time of this process, summed over its threads (robust to
#: other work on a shared machine, but it counts threads that spin while waiting).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_ms(function: Callable[[], object], clock: str = "wall") -> float:
    """Time of one call of ``function`` on ``clock`` (see :data:`CLOCKS`), in milliseconds."""
    timer = CLOCKS[clock]
    start = timer()
    function()
    return (timer() - start) * 1e3


def time_interleaved(function: Callable[[], object], reference: Callable[[], object],
                     repeats: int, *, reference_per_round: int = 1,
                     synchronize: Callable[[], object] | None = None,
                     clock: str = "wall") -> tuple[list[float], list[float]]:
    """Times (ms) of ``repeats`` calls of ``function`` and of its reference, alternated.

    Each round times ``reference_per_round`` reference calls, then one ``function`` call.
    The garbage collector is paused, as ``timeit`` does. ``synchronize`` (e.g. a GPU
    stream's) is called after every call, inside the timing.
    """
    def timed(call: Callable[[], object]) -> Callable[[], object]:
        return call if synchronize is None else (lambda: (call(), synchronize()))

    function, reference = timed(function), timed(reference)
    times, reference_times = [], []
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            reference_times += [time_ms(reference, clock) for _ in range(reference_per_round)]
            times.append(time_ms(function, clock))
    finally:
        if was_enabled:
            gc.enable()
    return times, reference_times


def warm_up(operations: Sequence[str], devices: Sequence[str] = ("reram",)) -> None:
    """Run every operation once on a small tile, so Numba compiles (or loads) its kernels."""
    workload = Workload.make(*WARMUP_SHAPE)
    for device in devices:
        for operation in operations:
            tile = make_tile(operation, workload, device)
            function, reference = callables(operation, tile, workload)
            function()
            reference()


def measure(operation: str, batch: int, rows: int, cols: int, *, device: str = "reram",
            repeats: int = DEFAULT_REPEATS, exact_repeats: int = 1,
            seed: int = 0, clock: str = "wall", prior_updates: int = 0) -> Measurement:
    """Time ``operation`` and its reference on one shape (kernels must be warm).

    Fast operations get one untimed call at full size, then ``repeats`` timed rounds. The
    exact sampler is slow (seconds per call at the default shapes): it gets
    ``exact_repeats`` timed calls, each after ``repeats`` reference calls. The tile of an
    update is first brought into use by ``prior_updates`` fast updates (:func:`age_tile`).
    """
    workload = Workload.make(batch, rows, cols, seed)
    tile = make_tile(operation, workload, device, seed)
    function, reference = callables(operation, tile, workload)
    extra = {}
    if operation.startswith("update"):
        age_tile(tile, workload, prior_updates, seed)
        extra["mean_pulses"] = mean_pulses(tile, workload)
        extra["prior_updates"] = prior_updates
    if operation == "update-exact":
        reference()
        times, reference_times = time_interleaved(function, reference, exact_repeats,
                                                  reference_per_round=repeats, clock=clock)
    else:
        function()
        reference()
        times, reference_times = time_interleaved(function, reference, repeats, clock=clock)
    return Measurement(operation, device, batch, rows, cols, tuple(times),
                       tuple(reference_times), extra)


def run_suite(shapes: Sequence[tuple[int, int]] = DEFAULT_SHAPES, *,
              batch: int = DEFAULT_BATCH, operations: Sequence[str] | None = None,
              devices: Sequence[str] = ("reram",), repeats: int = DEFAULT_REPEATS,
              exact_repeats: int = 1, seed: int = 0, clock: str = "wall",
              prior_updates: int = 0,
              progress: Callable[[Measurement], object] | None = None) -> list[Measurement]:
    """Warm up, then measure every (shape, device, operation); ``progress`` sees each row.
    ``operations``: default :func:`available_operations`. ``prior_updates``: see
    :func:`measure`."""
    operations = available_operations() if operations is None else tuple(operations)
    warm_up(operations, devices)
    results = []
    for rows, cols in shapes:
        for device in devices:
            for operation in operations:
                result = measure(operation, batch, rows, cols, device=device,
                                 repeats=repeats, exact_repeats=exact_repeats, seed=seed,
                                 clock=clock, prior_updates=prior_updates)
                results.append(result)
                if progress is not None:
                    progress(result)
    return results


# ---------------------------------------------------------------------- reporting
TABLE_COLUMNS = ("operation", "device", "shape", "ms", "reference ms", "ratio", "target",
                 "pass/fail")


def table_row(result: Measurement) -> tuple[str, ...]:
    """The table cells of one measurement."""
    target = result.spec.target
    verdict = {None: "-", True: "pass", False: "FAIL"}[result.passed]
    shape = f"{result.batch} x {result.rows}x{result.cols}"
    return (result.spec.label, result.device, shape, _milliseconds(result.ms),
            f"{_milliseconds(result.reference_ms)} ({result.spec.reference})",
            f"{result.ratio:#.3g}" if result.ratio < 100 else f"{result.ratio:.0f}",
            "-" if target is None else f"<= {target:g}", verdict)


def _milliseconds(value: float) -> str:
    return f"{value:.1f}" if value >= 100 else f"{value:#.3g}"


def format_table(results: Sequence[Measurement]) -> str:
    """A plain-text table (Markdown-compatible) of the measurements."""
    rows = [TABLE_COLUMNS, *(table_row(result) for result in results)]
    widths = [max(len(row[k]) for row in rows) for k in range(len(TABLE_COLUMNS))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                        strict=True)) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def thread_settings() -> dict[str, Any]:
    """Threads the timed code uses: Numba's count and layer, the BLAS library's, and the
    idle-thread settings (:mod:`analogsim._idle_threads`)."""
    import numba

    from analogsim._idle_threads import idle_thread_report

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet in this process
        layer = f"not initialised (configured: {numba.config.THREADING_LAYER})"
    settings: dict[str, Any] = {"numba_threads": numba.get_num_threads(),
                                "numba_threads_max": numba.config.NUMBA_NUM_THREADS,
                                "numba_threading_layer": layer}
    settings["blas"] = blas_info()
    torch = sys.modules.get("torch")
    if torch is not None:  # its int8 matmul counts for update-fast-int8
        settings["torch_threads"] = torch.get_num_threads()
    settings["idle_threads"] = idle_thread_report()
    return settings


def blas_info() -> list[dict[str, Any]]:
    """The BLAS libraries NumPy loaded (threadpoolctl), or [] if threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("internal_api", "version", "num_threads", "threading_layer", "architecture")
    return [{"loaded_by": _owner(pool.get("filepath", "")),
             **{key: pool.get(key) for key in keys}}
            for pool in threadpool_info() if pool.get("user_api") == "blas"]


def _owner(library_path: str) -> str:
    """``numpy`` for ``.../site-packages/numpy.libs/libopenblas.so`` (wheels vendor BLAS)."""
    from pathlib import Path

    folder = Path(library_path).parent.name
    return folder.removesuffix(".libs") if folder.endswith(".libs") else library_path


def describe_threads(settings: dict[str, Any]) -> str:
    """One line: ``numba 2 threads (omp), BLAS openblas 0.3.31: 2 threads``."""
    text = (f"numba {settings['numba_threads']} threads "
            f"(layer {settings['numba_threading_layer']})")
    pools = [pool for pool in settings["blas"] if pool.get("loaded_by") == "numpy"]
    for pool in pools or settings["blas"]:
        text += (f", BLAS {pool['internal_api']} {pool['version']}: "
                 f"{pool['num_threads']} threads")
    if not settings["blas"]:
        text += ", BLAS threads unknown (threadpoolctl not installed)"
    if "torch_threads" in settings:
        text += f", PyTorch {settings['torch_threads']} threads"
    return text
