"""A chip: one simulated physical instance holding named tiles and a clock.

``Chip(device=..., seed=...)``: everything fixed about the instance is drawn from ``seed`` and
each tile's name, so the same seed is the same chip. Run-time randomness (read noise, update
sampling) comes from the chip's own stream, seeded by ``seed`` too, unless a call passes
``rng``. ``save``/``load`` keep the whole instance, so a loaded chip continues bit-identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np

from analogsim._tile_parameters import draw_tile_arrays
from analogsim._validation import check_choice, check_range
from analogsim.devices import DeviceModel, Ideal, ReRAM
from analogsim.errors import BackendUnavailableError, ParameterError
from analogsim.kernels import KERNEL_SETS, get_kernels
from analogsim.periphery import Periphery
from analogsim.tile import RngLike, Tile

BACKENDS = ("cpu", "cuda", "auto")


class Chip:
    """One simulated chip instance.

    Parameters
    ----------
    device : DeviceModel, optional
        The device every tile is made of (default ``ReRAM()``); a tile may override it.
    seed : int, >= 0
        Identity of the instance: hidden parameters and the run-time stream derive from it.
    periphery : Periphery, optional
        Default periphery of the tiles; ``Periphery.ideal()`` for an ``Ideal`` device,
        ``Periphery()`` otherwise.
    backend : "cpu", "cuda" or "auto"
        Where the arrays live. Only "cpu" is available without a GPU; "auto" falls back to it.
    kernels : "numba" or "numpy"
        CPU kernel implementation (the NumPy references are slower, for checking).
    """

    def __init__(self, device: DeviceModel | None = None, seed: int = 0, *,
                 periphery: Periphery | None = None, backend: str = "cpu",
                 kernels: str = "numba") -> None:
        device = ReRAM() if device is None else device
        _check_device("Chip", device)
        check_range("Chip", "seed", seed, 0, 2**63 - 1, integer=True)
        check_choice("Chip", "backend", backend, BACKENDS)
        check_choice("Chip", "kernels", kernels, KERNEL_SETS)
        if periphery is None:
            periphery = Periphery.ideal() if isinstance(device, Ideal) else Periphery()
        _check_periphery("Chip", periphery)
        self.device = device
        self.seed = int(seed)
        self.periphery = periphery
        self.backend = _resolve_backend(backend)
        self.kernels = get_kernels(kernels)
        self.time = 0.0
        self._tiles: dict[str, Tile] = {}
        self._runtime = np.random.default_rng(np.random.SeedSequence([self.seed, 1]))

    # ------------------------------------------------------------------ tiles and clock
    @property
    def tiles(self) -> Mapping[str, Tile]:
        """The tiles by name (read-only view)."""
        return MappingProxyType(self._tiles)

    def tile(self, name: str, rows: int, cols: int, *, device: DeviceModel | None = None,
             periphery: Periphery | None = None) -> Tile:
        """Make the tile ``name`` of ``rows`` inputs by ``cols`` outputs on this chip.

        Its hidden parameters depend only on the chip seed, the name and the configuration.
        Conductances start at zero; ``program`` writes weights.
        """
        if not isinstance(name, str) or not name:
            raise ParameterError(f"The 'name' parameter of Chip.tile must be a non-empty "
                                 f"string. Got {name!r} instead.")
        if name in self._tiles:
            raise ParameterError(f"Chip.tile: a tile named {name!r} already exists on this "
                                 f"chip; use chip.tiles[{name!r}] or another name.")
        check_range("Chip.tile", "rows", rows, 1, 2**24, integer=True)
        check_range("Chip.tile", "cols", cols, 1, 2**24, integer=True)
        device = self.device if device is None else device
        periphery = self.periphery if periphery is None else periphery
        _check_device("Chip.tile", device)
        _check_periphery("Chip.tile", periphery)
        arrays = draw_tile_arrays(self.seed, name, rows, cols, device, periphery, self.time)
        tile = Tile(self, name, rows, cols, device, periphery, arrays)
        self._tiles[name] = tile
        return tile

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass: every tile drifts and its read noise grows."""
        check_range("Chip.advance", "seconds", seconds, 0.0, None)
        self.time += float(seconds)

    def runtime_rng(self, rng: RngLike = None) -> np.random.Generator:
        """The generator a call uses: ``rng`` if given (seed or Generator), else the chip's."""
        if rng is None:
            return self._runtime
        if isinstance(rng, np.random.Generator):
            return rng
        if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
            return np.random.default_rng(int(rng))
        raise ParameterError(f"The 'rng' parameter must be a numpy Generator, an int seed or "
                             f"None. Got {rng!r} instead.")

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the whole instance (config, hidden parameters, state, clock, random state)
        to an HDF5 file, atomically."""
        from analogsim.chip_io import save_chip

        save_chip(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Chip:
        """Read a chip written by :meth:`save`; it continues exactly where the saved one was."""
        from analogsim.chip_io import load_chip

        return load_chip(Path(path))

    def __repr__(self) -> str:
        names = ", ".join(self._tiles)
        return (f"Chip(device={type(self.device).__name__}, seed={self.seed}, "
                f"time={self.time:g} s, tiles=[{names}])")


def _check_device(owner: str, device: object) -> None:
    if not isinstance(device, DeviceModel):
        raise ParameterError(f"The 'device' parameter of {owner} must be a DeviceModel (e.g. "
                             f"analogsim.devices.PCM()). Got {device!r} instead.")


def _check_periphery(owner: str, periphery: object) -> None:
    if not isinstance(periphery, Periphery):
        raise ParameterError(f"The 'periphery' parameter of {owner} must be a Periphery. "
                             f"Got {periphery!r} instead.")


def _resolve_backend(backend: str) -> str:
    if backend == "cpu":
        return "cpu"
    from analogsim.backends import cuda_available

    if cuda_available():
        raise BackendUnavailableError("Chip: the CUDA backend is not implemented in this "
                                      "version yet; use backend='cpu'.")
    if backend == "auto":
        return "cpu"
    raise BackendUnavailableError("Chip: backend='cuda' needs an NVIDIA GPU with CuPy "
                                  "installed (pip install 'analogsim[gpu]'); none was found. "
                                  "Use backend='cpu' or 'auto'.")
