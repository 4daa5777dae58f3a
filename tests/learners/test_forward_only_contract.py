"""The forward-only contract (DESIGN.md section 5): a forward-only learner trains with tiles
whose ``read``, ``program`` and ``backward`` raise, and trains exactly as it does without the
guard (same seeds, same chip: the same history and predictions, bit for bit).

Runs mostly on the default ReRAM chip, so the pulsed update and the noisy periphery are on
the path.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import analogsim as asim
from analogsim.errors import ForwardOnlyViolation
from analogsim.learners import Learner
from analogsim.learners.forward_forward import ForwardForward
from analogsim.learners.forward_gradient import ForwardGradient
from analogsim.learners.pepita import PEPITA

Guard = Callable[[asim.Network], asim.Network]

#: name: (learner factory, widths after the 64 digits features, device, accuracy it reaches in
#: 2 epochs, with margin; chance is 0.10). Every forward-only learner of this package belongs
#: here. Goodness prediction and the global forward gradient run on Ideal: on ReRAM they need
#: far longer than 2 epochs (the global estimate reached 0.13 there).
CASES = {
    "forward_forward_random": (lambda: ForwardForward(), [40, 40], asim.devices.ReRAM(), 0.5),
    "forward_forward_hard": (lambda: ForwardForward(negatives="hard"), [40, 40],
                             asim.devices.ReRAM(), 0.5),
    "forward_forward_goodness": (lambda: ForwardForward(predict_by="goodness"), [100, 100],
                                 asim.devices.Ideal(), 0.3),
    "pepita": (lambda: PEPITA(lr=0.05), [40, 40, 10], asim.devices.ReRAM(), 0.2),
    "forward_gradient_local": (lambda: ForwardGradient(), [40, 40], asim.devices.ReRAM(), 0.2),
    "forward_gradient_global": (lambda: ForwardGradient(local=False), [40, 40],
                                asim.devices.Ideal(), 0.2),
    # Weight perturbation on ReRAM stays at chance over these 2 epochs (measured 0.11): the
    # perturb-and-undo pulses do not cancel on an asymmetric, noisy device, and their residue
    # swamps the learning signal. On Ideal the undo is exact and it learns (measured 0.65).
    "forward_gradient_weight": (lambda: ForwardGradient(perturb="weight"), [40, 40],
                                asim.devices.Ideal(), 0.4),
}


def _train(make: Callable[[], Learner], widths: list[int], device: asim.devices.DeviceModel,
           digits: asim.datasets.Dataset,
           guard: Guard | None) -> tuple[Learner, asim.Network, dict[str, np.ndarray]]:
    net = asim.Network(asim.Chip(device=device, seed=11), [64, *widths])
    if guard is not None:
        guard(net)
    learner = make()
    history = learner.fit(net, digits.train, epochs=2, rng=5, progress=False)
    return learner, net, history.as_arrays()


@pytest.mark.parametrize("case", sorted(CASES))
def test_trains_identically_without_weight_access(case: str, digits: asim.datasets.Dataset,
                                                  forward_only_guard: Guard) -> None:
    make, widths, device, reached = CASES[case]
    assert make().forward_only
    free, free_net, free_history = _train(make, widths, device, digits, None)
    guarded, guarded_net, guarded_history = _train(make, widths, device, digits,
                                                   forward_only_guard)
    for column in ("loss", "train_accuracy"):
        np.testing.assert_array_equal(guarded_history[column], free_history[column])
    np.testing.assert_array_equal(guarded.predict(guarded_net, digits.test.x),
                                  free.predict(free_net, digits.test.x))
    accuracy = guarded.evaluate(guarded_net, digits.test)
    assert accuracy == free.evaluate(free_net, digits.test)
    assert accuracy >= reached


def test_guard_refuses_every_weight_access(forward_only_guard: Guard) -> None:
    """The guard itself works: reads, programming, transposed reads and transfers raise."""
    net = forward_only_guard(asim.Network(asim.Chip(seed=0), [6, 4, 3]))
    tile = net.tiles[0]
    with pytest.raises(ForwardOnlyViolation, match=r"read\(\) was called"):
        tile.read()
    with pytest.raises(ForwardOnlyViolation, match=r"program\(\) was called"):
        tile.program(np.zeros(tile.shape))
    with pytest.raises(ForwardOnlyViolation, match=r"backward\(\) was called"):
        tile.backward(np.ones(tile.cols))
    with pytest.raises(ForwardOnlyViolation, match=r"'net.0': read\(\) was called"):
        net.transfer_to(asim.Chip(seed=1))
    assert tile.forward(np.ones(tile.rows)).shape == (tile.cols,)
    tile.update(np.ones(tile.rows), np.ones(tile.cols), 0.01)
