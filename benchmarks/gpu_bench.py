"""GPU benchmark of the CUDA kernels: correctness first, then ratios measured in the same run.

Usage (on a machine with an NVIDIA GPU, CuPy and numba-cuda)::

    python benchmarks/gpu_bench.py [--out DIR] [--size 4096] [--batches 1024 4096]

and, on any CPU, a smoke run of the same code paths on Numba's CUDA simulator with tiny
sizes (timings meaningless)::

    python benchmarks/gpu_bench.py --smoke --out /tmp/bench

It checks every CUDA kernel against its Numba CPU twin on a mid-sized random case (outputs
poisoned with NaN first), then times at ``size x size`` tiles with each batch:

- forward (DAC, matmul, variance matmul for per-device read noise, epilogue with output noise
  and ADC) against one cuBLAS fp32 matmul of the same shape (target: at most 2.3x);
- the epilogue and the fast pulsed-update kernels: bytes they must move per second against a
  device-to-device copy (target: at least 60 %); single kernels are timed as replays of a
  captured CUDA graph, so launch gaps stay out (the method used is recorded);
- the TF32 and bf16 matmul options: speed-up over fp32 and the RMS error they add relative to
  the read-noise std of the outputs, per device preset.

Writes ``gpu_bench.md`` (the table) and ``gpu_bench.json`` (numbers, config, seeds, versions)
atomically into ``--out`` (default ``$OUT``, else the working directory).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

if "--smoke" in sys.argv:  # must precede the first import of Numba
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np

import analogsim
from analogsim import devices
from analogsim._tile_parameters import draw_tile_arrays
from analogsim.kernels import cuda as cuda_kernels
from analogsim.kernels import drift, mvm, pulsed_update
from analogsim.kernels.cuda.matmul import matmul
from analogsim.periphery import Periphery

SEED = 20240601
KEY = np.uint64(0x0123_4567_89AB_CDEF)
PRESETS = ("reram", "pcm", "ecram")


class Backend:
    """CuPy on the GPU (timed with CUDA events), or NumPy on the simulator (``smoke``)."""

    def __init__(self, smoke: bool) -> None:
        self.smoke = smoke
        if smoke:
            self.xp = np
            return
        import cupy

        self.xp = cupy
        self.stream = cupy.cuda.Stream(non_blocking=True)

    def sync(self) -> None:
        if not self.smoke:
            self.xp.cuda.get_current_stream().synchronize()

    def asnumpy(self, array):
        return np.asarray(array) if self.smoke else self.xp.asnumpy(array)

    def time(self, fn, *, inner: int = 10, repeats: int = 7, graph: bool = False):
        """Median seconds per call of ``fn`` and the method: 'graph' (replays of ``inner``
        captured calls), 'events' (``inner`` back-to-back calls between two events) or
        'wall' (the simulator)."""
        if self.smoke:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start, "wall"
        cupy = self.xp
        with self.stream:
            for _ in range(3):
                fn()
            self.stream.synchronize()
            runner, method = (lambda: [fn() for _ in range(inner)]), "events"
            if graph:
                try:
                    self.stream.begin_capture()
                    for _ in range(inner):
                        fn()
                    captured = self.stream.end_capture()
                    captured.launch(self.stream)
                    self.stream.synchronize()
                    runner, method = (lambda: captured.launch(self.stream)), "graph"
                except Exception as error:  # capture not supported by some call: fall back
                    print(f"  (graph capture failed: {type(error).__name__}: {error})")
                    try:
                        self.stream.end_capture()
                    except Exception:
                        pass
                    self.xp.cuda.Device().synchronize()
            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
            times = []
            for _ in range(repeats):
                start.record(self.stream)
                runner()
                stop.record(self.stream)
                stop.synchronize()
                times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3 / inner)
        return statistics.median(times), method


# ------------------------------------------------------------------ the pipeline, xp-generic
def make_tile(backend, device, rows, cols, seed=SEED):
    """A tile of ``device`` on the backend, programmed with random weights; its maps."""
    xp = backend.xp
    arrays = draw_tile_arrays(seed, "bench", rows, cols, device, Periphery(), 0.0)
    state = {name: xp.asarray(getattr(arrays, name)) for name in (
        "conductance", "written_at", "drift_xi", "stuck", "step_up", "step_down", "bound_low",
        "bound_high", "adc_gain", "adc_offset")}
    p = xp.asarray(device.physics().pack())
    weights = np.random.default_rng(seed).uniform(-0.8, 0.8, (rows, cols)) * device.g_max
    if device.devices_per_weight == 1:
        targets = weights[None]
    else:
        targets = np.stack([np.maximum(weights, 0.0), np.maximum(-weights, 0.0)])
    cuda_kernels.program_cuda(xp.asarray(targets, dtype=np.float32), state["conductance"],
                              state["written_at"], state["stuck"], state["bound_low"],
                              state["bound_high"], 0.0, p, KEY)
    weight = xp.empty((rows, cols), np.float32)
    variance = xp.empty((rows, cols), np.float32)
    signs = xp.asarray(np.array([1.0, -1.0][: device.devices_per_weight]))
    cuda_kernels.effective_weights_cuda(state["conductance"], state["written_at"],
                                        state["drift_xi"], state["stuck"], signs, 0.0, p,
                                        weight, variance)
    return state, p, weight, variance


def quantize(xp, x, periphery):
    """Noise management and DAC on the backend (as ``mvm.quantize_inputs``)."""
    scale = xp.max(xp.abs(x), axis=1)
    scale = xp.where(scale == 0.0, 1.0, scale).astype(np.float32)
    step, bound = periphery.dac_step, periphery.dac_range
    x_q = xp.clip(xp.floor(x / scale[:, None] / step + 0.5) * step, -bound, bound)
    return x_q.astype(np.float32), scale


def forward(backend, x, weight, variance, gain, offset, periphery, precision="fp32"):
    """One noisy analog read: DAC, two matmuls, the fused epilogue (output in place)."""
    x_q, scale = quantize(backend.xp, x, periphery)
    y = matmul(x_q, weight, precision=precision)
    noise_variance = matmul(x_q * x_q, variance, precision=precision)
    cuda_kernels.epilogue_cuda(y, noise_variance, scale, gain, offset, periphery.out_noise,
                               periphery.adc_step, periphery.adc_range, 1.0, KEY, y)
    return y


# ------------------------------------------------------------------ correctness
def check_correctness(backend, rows=192, cols=160, batch=64):
    """Largest deviation of each CUDA kernel from its Numba CPU twin, relative to the
    largest expected value (:func:`_deviation`)."""
    xp, rng, results = backend.xp, np.random.default_rng(SEED), {}
    device = devices.ReRAM(stuck_at_gmin=0.05, stuck_at_gmax=0.05)
    state, p, weight, _ = make_tile(backend, device, rows, cols)
    host = {name: backend.asnumpy(value) for name, value in state.items()}
    p_host, signs = device.physics().pack(), np.array([1.0])
    expected = np.empty((2, rows, cols), np.float32)
    drift.effective_weights_numba(host["conductance"], host["written_at"], host["drift_xi"],
                                  host["stuck"], signs, 0.0, p_host, expected[0], expected[1])
    results["effective_weights"] = _deviation(backend.asnumpy(weight), expected[0])
    y = rng.normal(size=(batch, cols)).astype(np.float32)
    noise = rng.uniform(0, 0.05, (batch, cols)).astype(np.float32)
    scale = rng.uniform(0.5, 2, batch).astype(np.float32)
    reference = np.empty_like(y)
    args = (0.06, 12 / 255, 12.0, 0.7, KEY)
    mvm.epilogue_numba(y, noise, scale, host["adc_gain"], host["adc_offset"], *args, reference)
    out = xp.full(y.shape, np.nan, np.float32)
    cuda_kernels.epilogue_cuda(xp.asarray(y), xp.asarray(noise), xp.asarray(scale),
                               state["adc_gain"], state["adc_offset"], *args, out)
    results["epilogue"] = _deviation(backend.asnumpy(out), reference)
    up, down = (rng.exponential(3.0, (rows, cols)).astype(np.float32) for _ in range(2))
    names = ("conductance", "written_at", "drift_xi", "stuck", "step_up", "step_down",
             "bound_low", "bound_high")
    cpu_state = [host[name].copy() for name in names]
    pulsed_update.apply_fast_numba(up, down, *cpu_state, 10.0, p_host, KEY)
    cuda_kernels.apply_fast_cuda(xp.asarray(up), xp.asarray(down),
                                 *(state[name] for name in names), 10.0, p, KEY)
    results["apply_fast"] = _deviation(backend.asnumpy(state["conductance"]), cpu_state[0])
    return results


def _deviation(actual, expected):
    """Largest difference over the largest expected magnitude: the GPU build fuses
    ``a * b + c`` into one multiply-add and the CPU build does not, so single values (those
    where a sum cancels) can differ by far more than their own ulp, but never by more than
    a few ulps of the array's scale (``tests/gpu/cuda_cases.py``)."""
    if not np.all(np.isfinite(actual)):
        return float("inf")
    return float(np.max(np.abs(actual - expected)) / max(float(np.max(np.abs(expected))),
                                                         1e-30))


# ------------------------------------------------------------------ timings
def bench_copy(backend, n_bytes):
    xp = backend.xp
    src = xp.ones(n_bytes // 4, np.float32)
    dst = xp.empty_like(src)
    seconds, method = backend.time(lambda: xp.copyto(dst, src), graph=True)
    return {"bytes": 2 * src.nbytes, "seconds": seconds, "GBps": 2 * src.nbytes / seconds / 1e9,
            "method": method}


def bench_forward(backend, size, batch, copy_gbps):
    xp, periphery = backend.xp, Periphery()
    rng = np.random.default_rng(SEED + batch)
    state, _, weight, variance = make_tile(backend, devices.ReRAM(), size, size)
    x = xp.asarray(rng.uniform(-1, 1, (batch, size)).astype(np.float32))
    gain, offset = state["adc_gain"], state["adc_offset"]
    fp32, _ = backend.time(lambda: matmul(x, weight))
    full, _ = backend.time(lambda: forward(backend, x, weight, variance, gain, offset,
                                           periphery))
    y = xp.asarray(rng.normal(size=(batch, size)).astype(np.float32))
    noise = xp.asarray(rng.uniform(0, 0.05, (batch, size)).astype(np.float32))
    scale = xp.ones(batch, np.float32)
    out = xp.empty_like(y)
    epilogue, method = backend.time(lambda: cuda_kernels.epilogue_cuda(
        y, noise, scale, gain, offset, 0.06, periphery.adc_step, periphery.adc_range, 1.0,
        KEY, out), graph=True)
    epilogue_bytes = 3 * y.nbytes  # y and variance read, output written
    return {"batch": batch, "matmul_fp32_s": fp32, "forward_s": full,
            "forward_over_matmul": full / fp32, "epilogue_s": epilogue,
            "epilogue_GBps": epilogue_bytes / epilogue / 1e9,
            "epilogue_over_copy": epilogue_bytes / epilogue / 1e9 / copy_gbps,
            "epilogue_method": method}


def bench_pulsed_update(backend, size, device_name, copy_gbps):
    """apply_fast with every weight pulsed both ways (means 2 to 4), clock not advanced."""
    xp, device = backend.xp, devices.preset(device_name)
    state, p, _, _ = make_tile(backend, device, size, size)
    rng = np.random.default_rng(SEED)
    up, down = (xp.asarray(rng.uniform(2.0, 4.0, (size, size)).astype(np.float32))
                for _ in range(2))
    names = ("conductance", "written_at", "drift_xi", "stuck", "step_up", "step_down",
             "bound_low", "bound_high")
    arrays = [state[name] for name in names]
    seconds, method = backend.time(lambda: cuda_kernels.apply_fast_cuda(
        up, down, *arrays, 0.0, p, KEY), graph=True)
    # Per weight: two means; per touched device: conductance and write time read and
    # written, stuck flag, both bounds, the step(s) of its direction(s).
    per_side = 8 + 16 + 1 + 8
    weight_bytes = 8 + (per_side + 8 if device.devices_per_weight == 1 else 2 * (per_side + 4))
    achieved = weight_bytes * size * size / seconds / 1e9
    return {"device": device_name, "seconds": seconds, "bytes_per_weight": weight_bytes,
            "GBps": achieved, "over_copy": achieved / copy_gbps, "method": method}


def bench_precision(backend, size, batch, device_name):
    xp, periphery = backend.xp, Periphery()
    _, _, weight, variance = make_tile(backend, devices.preset(device_name), size, size)
    x = xp.asarray(np.random.default_rng(SEED).uniform(-1, 1, (batch, size)).astype(np.float32))
    x_q, _ = quantize(xp, x, periphery)
    reference = x_q.astype(np.float64) @ weight.astype(np.float64)
    noise_std = xp.sqrt((x_q.astype(np.float64) ** 2) @ variance.astype(np.float64))
    rows = {}
    for precision in ("fp32", "tf32", "bf16"):
        if backend.smoke and precision != "fp32":
            continue
        seconds, _ = backend.time(lambda precision=precision: matmul(x_q, weight,
                                                                     precision=precision))
        error = matmul(x_q, weight, precision=precision).astype(np.float64) - reference
        ratio = float(xp.sqrt(xp.mean(error**2) / xp.mean(noise_std**2)))
        rows[precision] = {"seconds": seconds, "error_over_read_noise": ratio}
    for values in rows.values():
        values["speedup"] = rows["fp32"]["seconds"] / values["seconds"]
    return rows


# ------------------------------------------------------------------ report
def bench_ff_epoch(smoke, data_root=None):
    """Seconds of one in-situ Forward-Forward epoch (ReRAM, 784-500-500, the options of
    ``experiments/train-fashion-mnist.toml``) on the GPU chip and on a CPU chip of this
    machine. Smoke: 64 digits images, 64-32-32, on the simulator."""
    import analogsim as asim

    if smoke:
        train = asim.datasets.load("digits").train.subset(64, rng=SEED)
        hidden, kernels = [32, 32], {"kernels": "cudasim"}
    else:
        try:
            data = asim.datasets.load("fashion-mnist", **({"root": data_root}
                                                         if data_root else {}))
        except asim.errors.AnalogSimError as error:
            if data_root:  # asked for explicitly: a wrong folder is an error, not a skip
                raise SystemExit(f"gpu_bench: --data-root {data_root!r}: {error}") from error
            return {"skipped": f"Fashion-MNIST not found: {error}"}
        train, hidden, kernels = data.train, [500, 500], {"backend": "cuda"}
    options = {"loss": "symba", "symba_alpha": 400.0, "lr": 0.5, "peer_normalisation": 0.3,
               "readout_optimizer": "adam", "readout_lr": 1e-3, "schedule": "cosine"}
    seconds = {}
    for where, placement in (("gpu", kernels), ("cpu", {"backend": "cpu"})):
        chip = asim.Chip(device=asim.devices.ReRAM(), seed=SEED, **placement)
        net = asim.Network(chip, [train.n_features, *hidden], rng=SEED)
        learner = asim.learners.ForwardForward(**options)
        start = time.perf_counter()
        learner.fit(net, train, epochs=1, rng=SEED, progress=False)
        seconds[where] = time.perf_counter() - start
    return {"samples": len(train), "widths": [train.n_features, *hidden],
            "gpu_s": seconds["gpu"], "cpu_s": seconds["cpu"],
            "cpu_threads": os.cpu_count(), "speedup": seconds["cpu"] / seconds["gpu"]}


def versions(backend):
    from importlib import metadata

    import numba

    found = {"analogsim": analogsim.__version__, "numpy": np.__version__,
             "numba": numba.__version__, "python": sys.version.split()[0]}
    try:
        found["numba-cuda"] = metadata.version("numba-cuda")
    except metadata.PackageNotFoundError:
        found["numba-cuda"] = None
    if not backend.smoke:
        import cupy

        found["cupy"] = cupy.__version__
        found["device"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        found["driver"] = cupy.cuda.runtime.driverGetVersion()
    return found


def table(report):
    lines = [f"GPU benchmark ({report['versions'].get('device', 'CUDA simulator, smoke')}), "
             f"{report['config']['size']}x{report['config']['size']} tiles", "",
             "| measurement | value | reference (same run) | ratio | target |",
             "|---|---|---|---|---|"]
    copy = report["copy"]
    for row in report["forward"]:
        lines.append(f"| forward, read noise + ADC, batch {row['batch']} | "
                     f"{row['forward_s'] * 1e3:.3f} ms | fp32 matmul "
                     f"{row['matmul_fp32_s'] * 1e3:.3f} ms | "
                     f"{row['forward_over_matmul']:.2f}x | <= 2.3x |")
        lines.append(f"| epilogue kernel, batch {row['batch']} ({row['epilogue_method']}) | "
                     f"{row['epilogue_GBps']:.0f} GB/s | copy {copy['GBps']:.0f} GB/s | "
                     f"{row['epilogue_over_copy']:.0%} | >= 60 % |")
    for row in report["pulsed_update"]:
        lines.append(f"| apply_fast, {row['device']}, all pulsed ({row['method']}) | "
                     f"{row['GBps']:.0f} GB/s | copy {copy['GBps']:.0f} GB/s | "
                     f"{row['over_copy']:.0%} | >= 60 % |")
    for (name, batch), rows in report["precision"].items():
        for precision, row in rows.items():
            lines.append(f"| {precision} matmul, {name}, batch {batch} | "
                         f"{row['seconds'] * 1e3:.3f} ms, error "
                         f"{row['error_over_read_noise']:.2%} of read noise | fp32 "
                         f"{rows['fp32']['seconds'] * 1e3:.3f} ms | "
                         f"{row['speedup']:.2f}x faster | error < 10 % |")
    epoch = report.get("ff_epoch", {})
    if "skipped" in epoch:
        lines.append(f"| one Forward-Forward epoch, Fashion-MNIST 784-500-500 | skipped: "
                     f"{epoch['skipped']} | | | |")
    elif epoch:
        lines.append(f"| one Forward-Forward epoch in situ, ReRAM, {epoch['samples']} images, "
                     f"{'-'.join(map(str, epoch['widths']))} | {epoch['gpu_s']:.1f} s | CPU "
                     f"chip on this machine ({epoch['cpu_threads']} cores) "
                     f"{epoch['cpu_s']:.1f} s | {epoch['speedup']:.1f}x faster | - |")
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--batches", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--data-root", default=None,
                        help="folder with the Fashion-MNIST IDX files (default: the usual "
                             "places, see analogsim.datasets.load)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes on the CUDA simulator (checks the script, not speed)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.size, args.batches = 40, [8, 16]
    backend = Backend(args.smoke)
    report = {"config": {"size": args.size, "batches": args.batches, "seed": SEED,
                         "key": int(KEY), "smoke": args.smoke},
              "versions": versions(backend)}
    report["correctness"] = check_correctness(backend) if not args.smoke else (
        check_correctness(backend, rows=12, cols=10, batch=4))
    print("largest deviation from the CPU kernels (over the largest value):", report["correctness"])
    if max(report["correctness"].values()) > 1e-5:
        raise SystemExit("correctness check failed; no timings taken")
    report["copy"] = bench_copy(backend, 16 * 2**20 if args.smoke else 1 << 30)
    report["forward"] = [bench_forward(backend, args.size, batch, report["copy"]["GBps"])
                         for batch in args.batches]
    report["pulsed_update"] = [bench_pulsed_update(backend, args.size, name,
                                                   report["copy"]["GBps"])
                               for name in ("reram", "pcm")]
    report["precision"] = {(name, batch): bench_precision(backend, args.size, batch, name)
                           for name in PRESETS for batch in args.batches}
    report["ff_epoch"] = bench_ff_epoch(args.smoke, args.data_root)
    markdown = table(report)
    print(markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    report["precision"] = {f"{name}/batch{batch}": rows
                           for (name, batch), rows in report["precision"].items()}
    write_atomically(args.out / "gpu_bench.md", markdown)
    write_atomically(args.out / "gpu_bench.json", json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
