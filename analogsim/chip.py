"""A chip: one simulated physical instance holding named tiles and a clock.

``Chip(device=..., seed=...)``: everything fixed about the instance is drawn from ``seed`` and
each tile's name, so the same seed is the same chip. Run-time randomness (read noise, update
sampling) comes from the chip's own stream, seeded by ``seed`` too, unless a call passes
``rng``. ``save``/``load`` keep the whole instance, so a loaded chip continues bit-identically
(on the same backend; a chip saved on one backend loads on the other).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np

from analogsim._tile_parameters import draw_tile_arrays
from analogsim._validation import check_choice, check_range
from analogsim.devices import DeviceModel, Ideal, ReRAM
from analogsim.errors import BackendUnavailableError, ParameterError
from analogsim.kernels import (
    COUNT_PRECISIONS,
    HOST_KERNEL_SETS,
    KERNEL_SETS,
    MATMUL_PRECISIONS,
    get_kernels,
)
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
        Where the arrays live. "cuda" keeps every tile's arrays on an NVIDIA GPU as CuPy
        arrays, with the Numba CUDA kernels and cuBLAS matmuls; it needs CuPy seeing a GPU
        and numba-cuda (``pip install 'analogsim[gpu]'``), else it raises
        :class:`~analogsim.errors.BackendUnavailableError` saying what is missing. "auto"
        takes the GPU when it can run and the CPU otherwise. Inputs may be NumPy, CuPy or
        CUDA DLPack arrays (torch CUDA tensors) on either backend; results come back in the
        input's kind (NumPy in, NumPy out), and ``Tile.read`` returns NumPy.
    kernels : "numba", "numpy", "cuda" or "cudasim", optional
        Kernel implementation. Default: "numba" on the CPU, "cuda" on the GPU. "numpy" runs
        the NumPy references (slower, for checking); "cudasim" runs the CUDA kernels on
        Numba's CPU simulator with NumPy arrays (slow; for testing the GPU path without a
        GPU, needs ``NUMBA_ENABLE_CUDASIM=1`` before Numba is imported). Naming a CPU set
        with ``backend="auto"`` keeps the chip on the CPU.
    matmul_precision : "fp32", "tf32" or "bf16"
        Precision of the tile matmuls (default "fp32"). "tf32" and "bf16" run them on the
        GPU's tensor cores (backend "cuda"; "cudasim" emulates their rounding); their error
        against the device noise is tabulated in :mod:`analogsim.kernels.cuda.matmul`: TF32
        is far below it for every preset, bf16 not always.
    count_precision : None or "int8"
        Precision of the fast sampler's two count matmuls (the expected up and down pulses
        of every device). None (default): the matmul precision. "int8": exact int8 matmuls
        of the update's inputs and errors, each quantized to 255 levels of its column's
        largest magnitude, which made a fast update about 1.6x faster on a CPU with int8
        dot products (``benchmarks/README.md``). A mean then errs by a small fraction of
        its Poisson noise; where the predicted error passes 5 % of it, its column is
        recounted in fp32 (``docs/architecture.md``, "The fast sampler's count means in
        int8"). CPU kernels only: "numba" runs PyTorch's int8 matmul (PyTorch 2.3 or later,
        ``pip install torch==2.13.0``), or without it float32 matmuls of the same levels,
        exact for them (the same counts, no faster than None; a RuntimeWarning says so);
        "numpy" runs its NumPy reference.

    Same seed, same backend and kernels: identical results. The CPU and GPU backends draw
    the same hidden parameters and the same random numbers and agree to floating-point
    rounding of the matmuls (see ``docs/architecture.md``).
    """

    def __init__(self, device: DeviceModel | None = None, seed: int = 0, *,
                 periphery: Periphery | None = None, backend: str = "cpu",
                 kernels: str | None = None, matmul_precision: str = "fp32",
                 count_precision: str | None = None) -> None:
        device = ReRAM() if device is None else device
        _check_device("Chip", device)
        check_range("Chip", "seed", seed, 0, 2**63 - 1, integer=True)
        check_choice("Chip", "backend", backend, BACKENDS)
        if kernels is not None:
            check_choice("Chip", "kernels", kernels, KERNEL_SETS)
        check_choice("Chip", "matmul_precision", matmul_precision, MATMUL_PRECISIONS)
        check_choice("Chip", "count_precision", count_precision, COUNT_PRECISIONS)
        if periphery is None:
            periphery = Periphery.ideal() if isinstance(device, Ideal) else Periphery()
        _check_periphery("Chip", periphery)
        self.device = device
        self.seed = int(seed)
        self.periphery = periphery
        self.backend, kernels = _resolve_backend(backend, kernels)
        if matmul_precision != "fp32" and kernels not in ("cuda", "cudasim"):
            raise ParameterError(f"Chip: matmul_precision={matmul_precision!r} runs on the "
                                 f"tensor cores of a GPU (backend='cuda'); the CPU kernels "
                                 f"({kernels!r}) run 'fp32' only.")
        if count_precision is not None and kernels not in ("numba", "numpy"):
            raise ParameterError(f"Chip: count_precision={count_precision!r} runs on the CPU "
                                 f"(kernels 'numba' or 'numpy'); the {kernels!r} kernels count "
                                 f"in the matmul precision: leave count_precision out.")
        self.kernels = get_kernels(kernels, precision=matmul_precision,
                                   count_precision=count_precision)
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
    def load(cls, path: str | Path, *, backend: str | None = None,
             kernels: str | None = None) -> Chip:
        """Read a chip written by :meth:`save`; it continues exactly where the saved one was.

        The arrays are stored as NumPy; they go to the backend of the loaded chip, which is
        ``backend`` if given ("cpu", "cuda" or "auto"), else the saved chip's. A chip saved
        on the GPU loads on the CPU where there is none (with a warning), and vice versa with
        ``backend="cuda"``. ``kernels`` as in :class:`Chip` (default: the saved set where it
        can run on that backend, else the backend's default); the matmul precision is kept
        where the kernels support it.
        """
        from analogsim.chip_io import load_chip

        if backend is not None:
            check_choice("Chip.load", "backend", backend, BACKENDS)
        if kernels is not None:
            check_choice("Chip.load", "kernels", kernels, KERNEL_SETS)
        check_placement("Chip.load", backend, kernels)
        return load_chip(Path(path), backend=backend, kernels=kernels)

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


def check_placement(owner: str, backend: str | None, kernels: str | None) -> None:
    """Raise :class:`ParameterError` when ``kernels`` cannot run on ``backend``."""
    if backend == "cpu" and kernels == "cuda":
        raise ParameterError(f"{owner}: kernels='cuda' runs on the GPU; use backend='cuda' (or "
                             f"'auto'), or a CPU kernel set ('numba', 'numpy', 'cudasim') with "
                             f"backend='cpu'.")
    if backend == "cuda" and kernels not in (None, "cuda"):
        raise ParameterError(f"{owner}: kernels={kernels!r} runs on the CPU; backend='cuda' "
                             f"runs the 'cuda' kernels (leave 'kernels' out, or use "
                             f"backend='cpu').")


def _resolve_backend(backend: str, kernels: str | None) -> tuple[str, str]:
    """(backend, kernel set) for the requested ones; raises where they cannot run."""
    check_placement("Chip", backend, kernels)
    if backend == "cpu":
        return "cpu", "numba" if kernels is None else kernels
    if backend == "auto" and kernels in HOST_KERNEL_SETS:
        return "cpu", kernels
    from analogsim.backends import cuda_available, cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if reason is None:
        return "cuda", "cuda"
    if backend == "auto" and kernels is None:
        if cuda_available():  # a GPU is there but cannot be used: say why
            warnings.warn(f"Chip(backend='auto'): running on the CPU although CuPy sees a "
                          f"GPU: {reason}.", RuntimeWarning, stacklevel=3)
        return "cpu", "numba"
    asked = "backend='cuda'" if backend == "cuda" else "kernels='cuda'"
    raise BackendUnavailableError(f"Chip: {asked} needs an NVIDIA GPU with CuPy and "
                                  f"numba-cuda (pip install 'analogsim[gpu]'); {reason}. Use "
                                  f"backend='cpu' or 'auto'.")
