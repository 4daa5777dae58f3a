"""A network: layers of tiles on one chip, with the digital periphery between them.

Layer k computes ``h_{k+1} = activation(tile_k.forward(normalise(h_k)) + bias_k)``: the matrix
product is analog (on the chip), normalisation, bias and activation are digital and
layer-local. An optional digital readout (a float linear layer) may sit on top. A network
lives on one chip; :meth:`Network.transfer_to` reads its weights out and programs them into
another instance (the mortality experiment).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

import numpy as np

from analogsim._arrays import as_batch
from analogsim._validation import check_choice, check_range
from analogsim.chip import Chip
from analogsim.errors import ParameterError
from analogsim.tile import RngLike, Tile

ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")
NORMALISATIONS = ("rms", "layer", "none")


def activate(name: str, z: np.ndarray) -> np.ndarray:
    """Apply the activation ``name`` elementwise."""
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    return z


def activation_derivative(name: str, z: np.ndarray) -> np.ndarray:
    """Derivative of the activation at pre-activation ``z`` (digital, layer-local)."""
    if name == "relu":
        return (z > 0.0).astype(z.dtype)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1.0 - s)
    return np.ones_like(z)


def normalise(name: str, h: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """RMS normalisation (FF: divide by the root mean square), layer norm, or nothing."""
    if name == "rms":
        return h / (np.sqrt(np.mean(h * h, axis=1, keepdims=True)) + eps)
    if name == "layer":
        centred = h - h.mean(axis=1, keepdims=True)
        return centred / (centred.std(axis=1, keepdims=True) + eps)
    return h


@dataclass
class Layer:
    """One analog layer: its tile plus the digital bias, activation and input normalisation."""

    tile: Tile
    activation: str
    normalisation: str
    bias: np.ndarray

    def pre_activation(self, h: np.ndarray, *, rng: RngLike = None) -> np.ndarray:
        """``tile.forward(normalise(h)) + bias``: (batch, rows) -> (batch, cols)."""
        return self.tile.forward(normalise(self.normalisation, h), rng=rng) + self.bias

    def __call__(self, h: np.ndarray, *, rng: RngLike = None) -> np.ndarray:
        return activate(self.activation, self.pre_activation(h, rng=rng))


@dataclass
class Readout:
    """A digital linear layer ``h W + b`` (float32), e.g. a softmax readout."""

    weight: np.ndarray
    bias: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.weight = np.ascontiguousarray(self.weight, dtype=np.float32)
        if self.bias is None:
            self.bias = np.zeros(self.weight.shape[1], dtype=np.float32)

    def __call__(self, h: np.ndarray) -> np.ndarray:
        return h @ self.weight + self.bias


class Network:
    """Layers of tiles on ``chip`` with widths ``[n_in, n_1, ..., n_L]``.

    Parameters
    ----------
    chip : Chip
    widths : sequence of int
        Layer widths, input first; at least two entries, each >= 1.
    activation : str
        "relu" (default), "tanh", "sigmoid" or "identity" for hidden layers.
    normalisation : str
        Digital normalisation of each layer's input except the first: "rms" (FF's, default),
        "layer" or "none".
    name : str
        Prefix of the tile names (``"{name}.0"``, ``"{name}.1"``, ...).
    init_scale : float
        Initial weights are uniform in ``+-init_scale / sqrt(fan_in)`` (default 1.0).
    fill : float
        Fraction of the device range the largest initial weight occupies (default 0.5),
        leaving headroom for in-situ learning.
    rng : int or Generator
        Seed of the initial weights (digital, before programming). Default 0.
    """

    def __init__(self, chip: Chip, widths: list[int] | tuple[int, ...], *,
                 activation: str = "relu", normalisation: str = "rms", name: str = "net",
                 init_scale: float = 1.0, fill: float = 0.5, rng: RngLike = 0) -> None:
        if not isinstance(chip, Chip):
            raise ParameterError(f"The 'chip' parameter of Network must be a Chip. "
                                 f"Got {chip!r} instead.")
        widths = list(widths)
        if len(widths) < 2:
            raise ParameterError(f"The 'widths' parameter of Network must list at least two "
                                 f"widths (inputs and outputs). Got {widths!r} instead.")
        for width in widths:
            check_range("Network", "widths[...]", width, 1, 2**24, integer=True)
        check_choice("Network", "activation", activation, ACTIVATIONS)
        check_choice("Network", "normalisation", normalisation, NORMALISATIONS)
        check_range("Network", "init_scale", init_scale, 0.0, None, closed="neither")
        self.chip = chip
        self.widths = widths
        self.activation = activation
        self.normalisation = normalisation
        self.name = name
        self.readout: Readout | None = None
        #: Digital readouts of the hidden layers, for learners with local losses.
        self.local_readouts: list[Readout] = []
        generator = chip.runtime_rng(rng) if rng is not None else np.random.default_rng(0)
        self.layers: list[Layer] = []
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
            tile = chip.tile(f"{name}.{index}", fan_in, fan_out)
            bound = init_scale / np.sqrt(fan_in)
            tile.program(generator.uniform(-bound, bound, (fan_in, fan_out)), fill=fill)
            self.layers.append(Layer(tile, activation, "none" if index == 0 else normalisation,
                                     np.zeros(fan_out, dtype=np.float32)))

    @property
    def n_inputs(self) -> int:
        return self.widths[0]

    @property
    def tiles(self) -> list[Tile]:
        return [layer.tile for layer in self.layers]

    def check_inputs(self, x: object, owner: str = "Network") -> np.ndarray:
        """``x`` as float32 (batch, n_inputs), with a clear error for a wrong width or NaN."""
        array, _ = as_batch(x, self.n_inputs, owner, "x")
        return array

    def activations(self, x: object, *, rng: RngLike = None) -> list[np.ndarray]:
        """The output of every layer for inputs ``x`` (batch, n_inputs), input excluded."""
        h = self.check_inputs(x, "Network.activations")
        outputs = []
        for layer in self.layers:
            h = layer(h, rng=rng)
            outputs.append(h)
        return outputs

    def __call__(self, x: object, *, rng: RngLike = None) -> np.ndarray:
        """The last layer's output (the readout is applied separately, by learners)."""
        return self.activations(x, rng=rng)[-1]

    def transfer_to(self, chip: Chip, *, rng: RngLike = None) -> Network:
        """The same network on ``chip``: weights read out (noisy) here and programmed there.

        Digital parts (biases, the readout and any local readouts, with their optimiser
        state) are copied exactly. Tile names are kept, so ``chip`` must not hold tiles of
        those names already.
        """
        clone = Network.__new__(Network)
        clone.chip = chip
        clone.widths = list(self.widths)
        clone.activation = self.activation
        clone.normalisation = self.normalisation
        clone.name = self.name
        clone.layers = []
        for layer in self.layers:
            source = layer.tile
            tile = chip.tile(source.name, source.rows, source.cols)
            tile.program(source.read(rng=rng), weight_scale=source.weight_scale, rng=rng)
            clone.layers.append(Layer(tile, layer.activation, layer.normalisation,
                                      layer.bias.copy()))
        clone.readout = copy.deepcopy(self.readout)
        clone.local_readouts = copy.deepcopy(self.local_readouts)
        return clone

    def __repr__(self) -> str:
        return (f"Network(widths={self.widths}, activation={self.activation!r}, "
                f"chip={self.chip!r})")
