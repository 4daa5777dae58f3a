"""Where the IDX files of MNIST-like data sets are looked for.

For a data set ``name`` and each base directory in order -- the ``root`` argument, then
``$ANALOGSIM_DATA`` -- the search tries ``<base>``, ``<base>/<name>`` and torchvision's layout
``<base>/<TorchName>/raw``; then Debian's ``<SYSTEM_DATA_DIR>/<name>`` (package
``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist/*.gz``). The first directory
holding all four files wins; each file may be plain or ``.gz`` (plain preferred).
"""

from __future__ import annotations

import os
from pathlib import Path

from analogsim.errors import DatasetError

#: Directory that holds one sub-directory per data set on Debian (module-level so tests can
#: point it elsewhere with ``monkeypatch.setattr``).
SYSTEM_DATA_DIR = Path("/usr/share/datasets")

#: Environment variable naming an extra directory to search.
ENV_VAR = "ANALOGSIM_DATA"

#: Role -> IDX file name (without the optional ``.gz``).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: Data set name -> torchvision's folder name (files in ``<root>/<folder>/raw``).
TORCHVISION_DIRS = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}

_HOW_TO_GET = {
    "fashion-mnist": (
        "To get them, run `apt-get install -y dataset-fashion-mnist` (it installs them into "
        "/usr/share/datasets/fashion-mnist), or download the four Fashion-MNIST IDX files into a "
        f"directory and pass root=<directory> to load() or set {ENV_VAR}=<directory>."
    ),
    "mnist": (
        "To get them, download the four MNIST IDX files into a directory and pass "
        f"root=<directory> to load() or set {ENV_VAR}=<directory> (torchvision's "
        "<directory>/MNIST/raw layout is found too)."
    ),
}


def search_dirs(name: str, root: str | os.PathLike[str] | None) -> list[Path]:
    """List the directories searched for data set ``name``, in order, without duplicates.

    Parameters
    ----------
    name : str
        Data set name, e.g. ``"fashion-mnist"``.
    root : str, os.PathLike or None
        Directory given by the caller, searched first.

    Returns
    -------
    list of pathlib.Path
    """
    bases = [Path(root)] if root is not None else []
    env = os.environ.get(ENV_VAR, "")
    if env:
        bases.append(Path(env))
    dirs: list[Path] = []
    for base in bases:
        dirs += [base, base / name]
        if name in TORCHVISION_DIRS:
            dirs.append(base / TORCHVISION_DIRS[name] / "raw")
    dirs.append(Path(SYSTEM_DATA_DIR) / name)
    return list(dict.fromkeys(dirs))


def _find_in(directory: Path) -> dict[str, Path]:
    """Map each role whose file exists in ``directory`` to its path (plain before ``.gz``)."""
    found = {}
    for role, stem in IDX_FILES.items():
        for candidate in (directory / stem, directory / f"{stem}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
    return found


def find_idx_files(name: str, root: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Find the four IDX files of data set ``name``.

    Parameters
    ----------
    name : str
        Data set name, e.g. ``"fashion-mnist"`` or ``"mnist"``.
    root : str, os.PathLike or None
        Directory searched first (see the module docstring for the whole order).

    Returns
    -------
    dict of str to pathlib.Path
        Keys ``train_images``, ``train_labels``, ``test_images``, ``test_labels``.

    Raises
    ------
    DatasetError
        No searched directory holds all four files. The message lists every directory looked
        in, what each lacked, and how to get the files.
    """
    notes = []
    for directory in search_dirs(name, root):
        if not directory.is_dir():
            notes.append(f"  {directory} (does not exist)")
            continue
        found = _find_in(directory)
        if len(found) == len(IDX_FILES):
            return found
        if found:
            missing = ", ".join(IDX_FILES[role] for role in IDX_FILES if role not in found)
            notes.append(f"  {directory} (missing {missing})")
        else:
            notes.append(f"  {directory} (no IDX files)")
    wanted = ", ".join(IDX_FILES.values())
    raise DatasetError(
        f"Cannot find the {name} data set: no directory holds all of its IDX files ({wanted}; "
        "each plain or with a .gz suffix). Looked in:\n"
        + "\n".join(notes)
        + "\n"
        + _HOW_TO_GET.get(name, "Put the files into a directory and pass root=<directory>.")
    )
