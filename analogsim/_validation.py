"""Parameter checks that produce one message format.

"The 'dac_bits' parameter of Periphery must be an integer in [1, 32]. Got 33 instead."
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real

from analogsim.errors import ParameterError


def _number(value: float) -> str:
    """A bound as people write it: 16777216 rather than 1.67772e+07, 0.5 rather than 0.500."""
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}"


def _interval(low: float | None, high: float | None, closed: str) -> str:
    left = "[" if closed in ("both", "left") and low is not None else "("
    right = "]" if closed in ("both", "right") and high is not None else ")"
    low_text = "-inf" if low is None else _number(low)
    high_text = "inf" if high is None else _number(high)
    return f"{left}{low_text}, {high_text}{right}"


def check_range(
    owner: str,
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    closed: str = "both",
    integer: bool = False,
) -> None:
    """Raise :class:`ParameterError` unless ``low <= value <= high`` (per ``closed``).

    ``closed`` is one of "both", "left", "right", "neither". ``None`` bounds are open.
    """
    kind = "an integer" if integer else "a real number"
    wanted = f"{kind} in {_interval(low, high, closed)}"
    is_number = isinstance(value, Integral if integer else Real) and not isinstance(value, bool)
    if not is_number or (not integer and not math.isfinite(float(value))):
        raise ParameterError(
            f"The '{name}' parameter of {owner} must be {wanted}. Got {value!r} instead."
        )
    ok_low = low is None or (value >= low if closed in ("both", "left") else value > low)
    ok_high = high is None or (value <= high if closed in ("both", "right") else value < high)
    if not (ok_low and ok_high):
        raise ParameterError(
            f"The '{name}' parameter of {owner} must be {wanted}. Got {value!r} instead."
        )


def check_choice(owner: str, name: str, value: object, choices: Iterable[object]) -> None:
    """Raise :class:`ParameterError` unless ``value`` is one of ``choices``."""
    options = list(choices)
    # Compare type as well as value: 1 == True, but 1 is not a valid boolean flag.
    if not any(type(value) is type(option) and value == option for option in options):
        listed = ", ".join(repr(option) for option in options)
        raise ParameterError(
            f"The '{name}' parameter of {owner} must be one of {listed}. Got {value!r} instead."
        )
