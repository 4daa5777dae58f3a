import sys, json, time, os
import numpy as np
import analogsim as asim
name, epochs, n_train = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
opts = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
hidden = opts.pop("hidden", [500, 500])
bs = opts.pop("batch_size", 64)
data = asim.datasets.load("fashion-mnist")
train = data.train.subset(n_train, rng=0) if n_train < 60000 else data.train
test = data.test.subset(5000, rng=0) if n_train < 60000 else data.test
net = asim.Network(asim.Chip(device=asim.devices.Ideal(), seed=0), [784, *hidden], rng=0)
L = asim.learners.ForwardForward(**opts)
t = time.time()
h = L.fit(net, train, epochs=epochs, batch_size=bs, rng=0, progress=False)
el = time.time() - t
L.predict_by = "readout"; r = 1 - L.evaluate(net, test)
L.predict_by = "goodness"; g = 1 - L.evaluate(net, test)
print(f"{name}: readout {r:.4f} goodness {g:.4f} loss {h[-1].loss:.3f} trainacc {h[-1].train_accuracy:.3f} {el/epochs:.1f}s/ep", flush=True)
