"""Exceptions raised by analogsim.

Every error names the offending parameter, what is allowed and what was given, in one format
(see :func:`analogsim._validation.check_range`).
"""

from __future__ import annotations


class AnalogSimError(Exception):
    """Base class of all analogsim errors."""


class ParameterError(AnalogSimError, ValueError):
    """A parameter is outside its allowed range or set."""


class ShapeError(AnalogSimError, ValueError):
    """An array has the wrong shape."""


class NonFiniteInputError(AnalogSimError, ValueError):
    """An input array holds NaN or infinity."""


class ChipFileError(AnalogSimError, OSError):
    """A file is not a readable analogsim chip (wrong kind, newer format, truncated, corrupt)."""


class DatasetError(AnalogSimError, OSError):
    """A data set cannot be found or its files are corrupt."""


class BackendUnavailableError(AnalogSimError, RuntimeError):
    """The requested compute backend (e.g. CUDA) is not available on this machine."""


class ForwardOnlyViolation(AnalogSimError, RuntimeError):
    """A forward-only learner touched the weights (read/program) of a tile."""
