"""How the model's equations are compiled: numba's `njit` with the project's settings.

The equations (`sim.model.flows`) are plain scalar Python over one draw; numba compiles them to
machine code that every engine calls.  `NUMBA_DISABLE_JIT=1` runs the very same functions as
plain Python (slow, for debugging with pdb or prints).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numba

# Floating-point licences for the hot code: fused multiply-add, reassociation and reciprocal
# multiplication; never 'no NaN/inf' (the step control must see a NaN).
FAST_MATH = {"contract", "reassoc", "arcp"}


def jit(function=None, *, inline: bool = False, fastmath: bool = False, parallel: bool = False):
    """numba.njit with on-disk caching and numpy's error model; usable bare or with options."""
    options = {"cache": True, "error_model": "numpy"}
    if inline:
        options["inline"] = "always"
    if fastmath:
        options["fastmath"] = FAST_MATH
    if parallel:
        options["parallel"] = True
    decorate = numba.njit(**options)
    return decorate(function) if function is not None else decorate


# --- the first compile, said aloud --------------------------------------------------------------

COMPILE_MINUTES = "1-2 minutes"  # measured on the shared 2-core machine: 46 s alone, ~2 min in a sweep
HEARTBEAT_S = 5.0  # seconds between 'still compiling' lines (no silent wait longer than this)
log = logging.getLogger(__name__)


def say(message: str) -> None:
    """One progress line: through logging when a job configured it (console and the job's log),
    else on stderr (the Python API, a bare script)."""
    if logging.getLogger().hasHandlers():
        log.info(message)
    else:
        print(message, file=sys.stderr, flush=True)


def is_cached(dispatcher: Any) -> bool:
    """True if numba's on-disk cache holds machine code of `dispatcher` for its current source
    (inlined functions have no machine code of their own: True)."""
    if dispatcher.targetoptions.get("inline") == "always":
        return True
    try:
        return bool(dispatcher._cache._cache_file._load_index())  # {} if missing or stale
    except Exception:  # noqa: BLE001 - a numba without this layout: assume compiled
        return True


@contextlib.contextmanager
def compiling(dispatchers: Iterable[Any]) -> Iterator[None]:
    """Run the body, saying first (if any of `dispatchers` lacks cached machine code) that numba
    compiles the model and about how long it takes, then a line every HEARTBEAT_S seconds, then
    how long it took."""
    if numba.config.DISABLE_JIT or all(is_cached(d) for d in dispatchers):
        yield
        return
    say(f"compiling the model with numba (once after install or a change of sim/: about "
        f"{COMPILE_MINUTES} on 2 cores; later runs load it from sim/**/__pycache__)")
    start, done = time.monotonic(), threading.Event()

    def heartbeat() -> None:
        while not done.wait(HEARTBEAT_S):
            say(f"  still compiling ({time.monotonic() - start:.0f} s)")

    beat = threading.Thread(target=heartbeat, name="compile-heartbeat", daemon=True)
    beat.start()
    try:
        yield
    finally:
        done.set()
        beat.join()
        say(f"compiled the model in {time.monotonic() - start:.0f} s")


def announces_compile(dispatchers: Callable[[], Iterable[Any]]) -> Callable:
    """Decorator: the first call of the decorated function in a process runs inside
    `compiling(dispatchers())` (the functions it compiles)."""
    def decorate(function: Callable) -> Callable:
        first = [True]

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not first[0]:
                return function(*args, **kwargs)
            first[0] = False
            with compiling(dispatchers()):
                return function(*args, **kwargs)
        return wrapper
    return decorate
