"""Train one learner on Fashion-MNIST (784-500-500 plus the readout it needs); test error per epoch.

Usage (one thread per process; see docs/results/learners_fashion_mnist.md)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
    python experiments/learners_fashion_mnist.py --learner forward-forward --device ideal \\
        --epochs 20 --seed 0 --out results/ff-ideal.json --set lr=0.05

Networks: ``[784, 500, 500]`` with a digital readout for Forward-Forward, forward gradient,
digital and analog backprop; ``[784, 500, 500, 10]`` for PEPITA (its output layer is a tile).
The test error is measured after every epoch on the chip the learner trains on (for
``digital-backprop``: of the float model, the immortal reference, and after the last epoch
also ex-situ: the weights programmed onto Ideal, ReRAM and PCM chips, ``--deploy-seeds``
instances each). The JSON file is rewritten atomically after every epoch (temporary file,
fsync, rename), so a killed run keeps its finished epochs. Epoch seconds exclude evaluation.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import platform
import sys
import time

import numpy as np

import analogsim as asim

LEARNERS = {
    "forward-forward": "ForwardForward",
    "pepita": "PEPITA",
    "forward-gradient": "ForwardGradient",
    "digital-backprop": "DigitalBackprop",
    "analog-backprop": "AnalogBackprop",
}
DEVICES = {"ideal": "Ideal", "reram": "ReRAM", "pcm": "PCM"}
HIDDEN = [500, 500]


def parse_value(text: str) -> object:
    """``--set`` values: Python literals (0.05, 8, True, None, 'hard'), else the bare string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learner", required=True, choices=sorted(LEARNERS))
    parser.add_argument("--device", default="ideal", choices=sorted(DEVICES))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="chip, initial weights, batches")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: the learner's own")
    parser.add_argument("--train-samples", type=int, default=0, help="0: all 60000")
    parser.add_argument("--test-samples", type=int, default=0, help="0: all 10000")
    parser.add_argument("--deploy-seeds", type=int, default=1,
                        help="digital-backprop: chip instances per device for ex-situ deploy")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="learner constructor option (repeatable)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", required=True, help="results JSON (rewritten every epoch)")
    return parser.parse_args(argv)


def write_json(path: str, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file, fsync, rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w") as handle:
        json.dump(payload, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def make_chip(device: str, seed: int) -> asim.Chip:
    return asim.Chip(device=getattr(asim.devices, DEVICES[device])(), seed=seed)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        options[key.strip()] = parse_value(value.strip())
    learner = getattr(asim.learners, LEARNERS[args.learner])(**options)

    data = asim.datasets.load("fashion-mnist", **({"root": args.data_root}
                                                   if args.data_root else {}))
    train, test = data.train, data.test
    if args.train_samples:
        train = train.subset(args.train_samples, rng=args.seed)
    if args.test_samples:
        test = test.subset(args.test_samples, rng=args.seed)
    n_classes = int(train.y.max()) + 1
    widths = [train.n_features, *HIDDEN] + ([n_classes] if args.learner == "pepita" else [])
    net = asim.Network(make_chip(args.device, args.seed), widths, rng=args.seed)
    batch_size = args.batch_size or learner.default_batch_size
    steps_per_epoch = -(-len(train) // batch_size)
    digital = args.learner == "digital-backprop"

    payload = {
        "learner": args.learner, "device": args.device, "seed": args.seed,
        "widths": widths, "options": options, "batch_size": batch_size,
        "epochs_requested": args.epochs, "train_samples": len(train), "test_samples": len(test),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.node()} ({os.cpu_count()} cores, load "
                   f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} at start)",
        "threads": {k: os.environ.get(k) for k in
                    ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")},
        "evaluated_on": "float model" if digital else f"{args.device} chip (in situ)",
        "epochs": [], "complete": False,
    }
    write_json(args.out, payload)

    def test_error() -> float:
        accuracy = (learner.evaluate_digital(test) if digital
                    else learner.evaluate(net, test))
        return 1.0 - accuracy

    # Evaluate at the end of every epoch from inside one fit call, so that learning-rate
    # schedules run over the whole training (a fit per epoch would restart them).
    state = {"steps": 0, "epoch_start": None}  # set at the first step (after fit's setup)
    train_step = learner.train_step

    def record(epoch: int, loss: float, accuracy: float, seconds: float, error: float,
               eval_seconds: float) -> None:
        payload["epochs"].append({"epoch": epoch, "train_loss": loss,
                                  "train_accuracy": accuracy, "seconds": seconds,
                                  "test_error": error, "eval_seconds": eval_seconds})
        errors = [e["test_error"] for e in payload["epochs"]]
        payload["final_test_error"] = errors[-1]
        payload["best_test_error"] = min(errors)
        payload["best_epoch"] = int(np.argmin(errors)) + 1
        payload["seconds_per_epoch"] = float(np.mean([e["seconds"] for e in payload["epochs"]]))
        write_json(args.out, payload)
        print(f"epoch {epoch:2d}  loss {loss:.4f}  train acc {accuracy:.4f}  "
              f"test error {error:.4f}  {seconds:.1f} s (+{eval_seconds:.1f} s eval)",
              flush=True)

    running = {"loss": 0.0, "hits": 0, "n": 0}

    def stepping(net_, x, y, rng):
        if state["epoch_start"] is None:
            state["epoch_start"] = time.perf_counter()
        loss, hits = train_step(net_, x, y, rng)
        running["loss"] += loss * len(y)
        running["hits"] += hits
        running["n"] += len(y)
        state["steps"] += 1
        epoch, rest = divmod(state["steps"], steps_per_epoch)
        if rest == 0 and epoch < args.epochs:  # the last epoch is evaluated after fit
            seconds = time.perf_counter() - state["epoch_start"]
            start = time.perf_counter()
            error = test_error()
            eval_seconds = time.perf_counter() - start
            record(epoch, running["loss"] / running["n"], running["hits"] / running["n"],
                   seconds, error, eval_seconds)
            running.update(loss=0.0, hits=0, n=0)
            state["epoch_start"] = time.perf_counter()
        return loss, hits

    learner.train_step = stepping
    fit_options = {"deploy": False} if digital else {}
    learner.fit(net, train, epochs=args.epochs, batch_size=batch_size, rng=args.seed,
                progress=False, **fit_options)
    seconds = time.perf_counter() - state["epoch_start"]
    start = time.perf_counter()
    error = test_error()
    record(args.epochs, running["loss"] / running["n"], running["hits"] / running["n"],
           seconds, error, time.perf_counter() - start)

    if digital:  # ex-situ: the float weights programmed onto chips
        deployed = {}
        for device in ("ideal", "reram", "pcm"):
            errors = []
            for k in range(args.deploy_seeds):
                chip_net = asim.Network(make_chip(device, args.seed + k), widths, rng=args.seed)
                learner.deploy(chip_net)
                errors.append(1.0 - learner.evaluate(chip_net, test))
            deployed[device] = {"test_errors": errors, "mean": float(np.mean(errors)),
                                "chip_seeds": [args.seed + k for k in range(args.deploy_seeds)]}
            print(f"deployed ex-situ on {device}: test error {np.mean(errors):.4f} "
                  f"({', '.join(f'{e:.4f}' for e in errors)})", flush=True)
        payload["deployed"] = deployed
    payload["complete"] = True
    payload["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    write_json(args.out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
