"""Classification data sets for analogsim experiments, as validated float32 arrays in [0, 1].

>>> import analogsim.datasets as ds
>>> data = ds.load("digits")
>>> data.train.x.shape, data.test.x.shape
((1437, 64), (360, 64))

``"digits"`` ships with scikit-learn; ``"fashion-mnist"`` and ``"mnist"`` read IDX files from
disk (see :func:`load` for where they are looked for).
"""

from __future__ import annotations

from analogsim.datasets._dataset import Dataset, Split
from analogsim.datasets._load import available, load

__all__ = ["Dataset", "Split", "available", "load"]
