"""The compiled CPU kernels are cached under a directory keyed by the kernel sources."""

from __future__ import annotations

import os

import numba

from analogsim.kernels import drift, mvm, program, pulsed_update, sources_digest


def test_cache_directory_is_keyed_by_every_kernel_source() -> None:
    key = f"analogsim-kernels-{sources_digest()}"
    for kernel in (drift.effective_weights_numba, mvm.epilogue_numba, program.program_numba,
                   pulsed_update.apply_fast_numba, pulsed_update.apply_exact_numba):
        path = kernel._cache._cache_path
        if key not in path.split(os.sep):
            # Numba falls back to __pycache__ only where the keyed directory cannot be made.
            assert not _writable_home_cache(), path
    # Numba's own setting is restored for everything else.
    assert "analogsim-kernels-" not in (numba.config.CACHE_DIR or "")


def _writable_home_cache() -> bool:
    """Whether the default base of the keyed cache directory can be created here."""
    home = os.environ.get("NUMBA_CACHE_DIR") or os.path.expanduser(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"))
    while not os.path.exists(home):
        home = os.path.dirname(home)
    return os.access(home, os.W_OK)


def test_digest_is_stable_and_short() -> None:
    assert sources_digest() == sources_digest()
    assert len(sources_digest()) == 16
    int(sources_digest(), 16)
