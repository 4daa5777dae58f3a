"""``analogsim bench``: the kernels' ratio table against NumPy's float32 matmul.

Each operation is timed against the plain matmul of the same shape in the same run
(interleaved, see :mod:`analogsim.benchmarking`): the forward against ``x @ W``, the updates
against ``x.T @ d``. The ratio is the median time over the median reference time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import tempfile
from pathlib import Path
from typing import Any

HELP = "kernel benchmarks: ratio table against the plain matmul"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {text!r}")
    return value


def _shapes(text: str) -> tuple[tuple[int, int], ...]:
    """``1024x1024,4096x1024`` -> ((1024, 1024), (4096, 1024))."""
    shapes = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
            raise argparse.ArgumentTypeError(
                f"must be a comma-separated list of ROWSxCOLS with positive integers, e.g. "
                f"1024x1024,4096x1024; got {text!r}")
        shapes.append((int(parts[0]), int(parts[1])))
    return tuple(shapes)


def _choices(allowed: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(item.strip() for item in text.split(",") if item.strip())
        unknown = [item for item in chosen if item not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(
                f"must be a comma-separated list of {', '.join(allowed)}; got {text!r}")
        return chosen
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from analogsim.benchmarking import (
        DEFAULT_BATCH,
        DEFAULT_REPEATS,
        DEVICES,
        OPERATIONS,
        QUICK_BATCH,
        QUICK_REPEATS,
        QUICK_SHAPES,
    )

    quick = ",".join(f"{r}x{c}" for r, c in QUICK_SHAPES)
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny shapes ({quick}, batch {QUICK_BATCH}, {QUICK_REPEATS} "
                             f"repeats): checks that everything runs, not a measurement")
    parser.add_argument("--shapes", type=_shapes, metavar="RxC[,RxC...]",
                        help="tiles as ROWSxCOLS, rows = inputs (default 1024x1024,4096x1024)")
    parser.add_argument("--batch", type=_positive_int,
                        help=f"batch size (default {DEFAULT_BATCH})")
    parser.add_argument("--repeats", type=_positive_int,
                        help=f"timed rounds per row; the median is reported "
                             f"(default {DEFAULT_REPEATS})")
    parser.add_argument("--exact-repeats", type=_positive_int, default=1,
                        help="timed calls of the (slow) exact sampler per row (default 1)")
    parser.add_argument("--operations", type=_choices(tuple(OPERATIONS)),
                        metavar="OP[,OP...]",
                        help=f"rows to time, of {','.join(OPERATIONS)} (default all; "
                             f"update-fast-int8 needs PyTorch and is left out without it)")
    parser.add_argument("--devices", type=_choices(DEVICES), default=("reram",),
                        metavar="DEV[,DEV...]",
                        help=f"device models, of {','.join(DEVICES)} (default reram)")
    parser.add_argument("--threads", type=_positive_int,
                        help="threads for Numba, BLAS and PyTorch (default: as configured)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time (default); cpu: CPU time of this process, "
                             "steadier on a shared machine (best with --threads 1)")
    parser.add_argument("--prior-updates", type=_count, default=0, metavar="N",
                        help="fast updates applied to each update row's tile before it is "
                             "timed, so that it is timed in use (PCM pairs near their "
                             "refresh threshold) rather than freshly programmed (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the workload (default 0)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the results (with config and versions) to PATH")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 when a ratio misses its target")


def run(args: argparse.Namespace) -> int:
    import sys

    from analogsim import benchmarking as bm

    config = _config(args)
    missing = [name for name in config["operations"] if name not in bm.available_operations()]
    if missing:
        print(f"analogsim bench: error: {', '.join(missing)} needs PyTorch, which is not "
              f"installed (pip install torch==2.13.0)", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as restore:
        error = _limit_threads(args.threads, restore, config["operations"])
        if error:
            print(f"analogsim bench: error: {error}", file=sys.stderr)
            return 2
        print(f"analogsim bench: batch {config['batch']}, {config['repeats']} repeats "
              f"(exact sampler: {config['exact_repeats']}), median {config['clock']} times; "
              f"reference = NumPy float32 matmul, timed interleaved in this run", flush=True)
        if config["prior_updates"]:
            print(f"update rows: each tile timed after {config['prior_updates']} fast updates "
                  f"(--prior-updates)", flush=True)
        results = bm.run_suite(config["shapes"], batch=config["batch"],
                               operations=config["operations"], devices=config["devices"],
                               repeats=config["repeats"],
                               exact_repeats=config["exact_repeats"], seed=config["seed"],
                               clock=config["clock"], prior_updates=config["prior_updates"],
                               progress=_progress)
        threads = bm.thread_settings()
    load = _load_warning()
    print(f"threads: {bm.describe_threads(threads)}")
    if load:
        print(load)
    print(bm.format_table(results))
    if args.json is not None:
        _write_json(args.json, config, threads, results)
        print(f"results written to {args.json}")
    missed = [result for result in results if result.passed is False]
    return 1 if args.check and missed else 0


def _load_warning() -> str | None:
    """A warning when other work competes for the CPUs (wall-clock ratios then mislead)."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return None
    cpus = os.cpu_count() or 1
    if load <= cpus:
        return None
    return (f"warning: load average {load:.1f} on {cpus} CPUs: other processes compete for "
            f"the CPUs, so wall-clock times (the reference's most) are inflated; compare "
            f"with --threads 1 --clock cpu")


def _progress(result: Any) -> None:
    import sys

    print(f"  {result.spec.label} ({result.device}, {result.batch} x {result.rows}x"
          f"{result.cols}): {result.ms:.2f} ms, ratio {result.ratio:.2f}", file=sys.stderr,
          flush=True)


def _config(args: argparse.Namespace) -> dict[str, Any]:
    from analogsim import benchmarking as bm

    quick = args.quick
    return {
        "shapes": args.shapes or (bm.QUICK_SHAPES if quick else bm.DEFAULT_SHAPES),
        "batch": args.batch or (bm.QUICK_BATCH if quick else bm.DEFAULT_BATCH),
        "repeats": args.repeats or (bm.QUICK_REPEATS if quick else bm.DEFAULT_REPEATS),
        "exact_repeats": args.exact_repeats,
        "operations": args.operations or bm.available_operations(),
        "devices": args.devices,
        "seed": args.seed,
        "clock": args.clock,
        "prior_updates": args.prior_updates,
        "threads_option": args.threads,
        "quick": quick,
    }


def _limit_threads(threads: int | None, restore: contextlib.ExitStack,
                   operations: tuple[str, ...] = ()) -> str | None:
    """Apply ``--threads`` to Numba and BLAS (and PyTorch, for ``operations`` that use it)
    until ``restore`` closes; an error text or None."""
    if threads is None:
        return None
    import numba

    from analogsim.benchmarking import NEEDS

    available = numba.config.NUMBA_NUM_THREADS
    if threads > available:
        return (f"argument --threads: must be in [1, {available}] (NUMBA_NUM_THREADS); "
                f"got {threads}")
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    restore.callback(numba.set_num_threads, previous)
    if any(NEEDS.get(name) == "torch" for name in operations):
        import torch

        restore.callback(torch.set_num_threads, torch.get_num_threads())
        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    restore.enter_context(threadpool_limits(limits=threads, user_api="blas"))
    return None


def _write_json(path: Path, config: dict[str, Any], threads: dict[str, Any],
                results: list[Any]) -> None:
    """Write the results file atomically (temporary file in the same folder, then rename)."""
    import numpy as np

    import analogsim

    document = {
        "analogsim": analogsim.__version__,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "config": config,
        "threads": threads,
        "results": [result.to_dict() for result in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(document, stream, indent=2)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
