"""The Forward-Forward subset tuning runs of ff-batch*.out: train once, evaluate both ways.

Usage: ``python ff_subset.py NAME EPOCHS TRAIN_SAMPLES '{"loss": "symba", ...}'`` (JSON learner
options; ``hidden`` and ``batch_size`` are taken out of them). Below 60000 training samples it
trains on a subset of that size and tests on 5000 test images (both drawn with seed 0); it
prints the test error by the softmax readout and by goodness, the last epoch's loss and
training accuracy, and seconds per epoch.
"""

from __future__ import annotations

import json
import sys
import time

import analogsim as asim


def main() -> None:
    name, epochs, n_train = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    options = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    hidden = options.pop("hidden", [500, 500])
    batch_size = options.pop("batch_size", 64)
    data = asim.datasets.load("fashion-mnist")
    subset = n_train < len(data.train)
    train = data.train.subset(n_train, rng=0) if subset else data.train
    test = data.test.subset(5000, rng=0) if subset else data.test
    net = asim.Network(asim.Chip(device=asim.devices.Ideal(), seed=0), [784, *hidden], rng=0)
    learner = asim.learners.ForwardForward(**options)
    start = time.time()
    history = learner.fit(net, train, epochs=epochs, batch_size=batch_size, rng=0,
                          progress=False)
    seconds = (time.time() - start) / epochs
    learner.predict_by = "readout"
    by_readout = 1 - learner.evaluate(net, test)
    learner.predict_by = "goodness"
    by_goodness = 1 - learner.evaluate(net, test)
    print(f"{name}: readout {by_readout:.4f} goodness {by_goodness:.4f} "
          f"loss {history[-1].loss:.3f} trainacc {history[-1].train_accuracy:.3f} "
          f"{seconds:.1f}s/ep", flush=True)


if __name__ == "__main__":
    main()
