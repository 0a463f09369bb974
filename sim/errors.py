"""Error types of the simulator.

`InputError` is a user mistake (bad config value, unknown key, unreadable file): the command-line
layer prints its one-line message and exits non-zero without a traceback.  `SolverError` is a
numerical failure of a run and names the failing draw.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from typing import Any


class InputError(ValueError):
    """A user input is invalid; the message is one line naming the field, the value and what is allowed."""


class SolverError(RuntimeError):
    """The ODE solver failed; the message names the failing draw(s) and their parameters."""


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for the closest allowed name, or '' if none is close."""
    close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def checked_number(field: str, value: Any, allowed: str, ok: Callable[[float], bool]) -> float:
    """`value` as a float if it is a finite number (not a boolean) for which `ok` holds, else an
    InputError: '<field>: value <value> not allowed; allowed: <allowed>'."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not ok(float(value)):
        raise InputError(f"{field}: value {value!r} not allowed; allowed: {allowed}")
    return float(value)


def reject_unknown_keys(section: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    """Raise InputError for the first key in `given` that is not in `allowed`."""
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            raise InputError(
                f"{section}.{key}: unknown key{did_you_mean(key, allowed)}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
