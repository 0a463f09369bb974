"""How the model's equations are compiled: numba's `njit` with the project's settings, and the
first compile said aloud (`compiling`; `Heartbeat`: a line whenever long work has been silent).

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

COMPILE_MINUTES = "1-2 minutes"  # measured on the shared 2-core machine: 46-58 s alone (load up to 12)
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


class Heartbeat:
    """A progress line whenever `say` has been silent for `every` seconds: '<text> (N s; last:
    <the last line said>)'.  Use as a context manager; call the object to say a line through it.
    With `poll` (a function giving the state of work done elsewhere, e.g. jobs finished), a change
    of its answer counts as progress too, and the line gives it instead of the last line said.

        with Heartbeat(log.info, "  still running") as say:
            say("step 1 of 3")    # ... a long silent batch ...  -> '  still running (5 s; ...)'
    """

    def __init__(self, say: Callable[[str], None], text: str, every: float | None = None,
                 poll: Callable[[], str] | None = None) -> None:
        self.say, self.text, self.poll = say, text, poll
        self.every = HEARTBEAT_S if every is None else every
        self._seen = poll() if poll else None
        self.start = self.last = time.monotonic()
        self.last_message = ""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def __call__(self, message: str) -> None:
        self.last, self.last_message = time.monotonic(), message.strip()
        self.say(message)

    def _beat(self) -> None:
        while not self._done.wait(min(0.5, self.every)):
            now = time.monotonic()
            state = self.poll() if self.poll else None
            if state != self._seen:   # progress made elsewhere (and said there)
                self._seen, self.last = state, now
            elif now - self.last >= self.every:
                self.last = now
                last = (f"; {state}" if state is not None else
                        f"; last: {self.last_message}" if self.last_message else "")
                self.say(f"{self.text} ({now - self.start:.0f} s{last})")

    def __enter__(self) -> Heartbeat:
        self.start = self.last = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


@contextlib.contextmanager
def compiling(dispatchers: Iterable[Any]) -> Iterator[None]:
    """Run the body, saying first (if any of `dispatchers` lacks cached machine code) that numba
    compiles the model and about how long it takes, then a line every HEARTBEAT_S seconds, then
    how long it took."""
    if numba.config.DISABLE_JIT or all(is_cached(d) for d in dispatchers):
        yield
        return
    start = time.monotonic()
    with Heartbeat(say, "  still compiling") as beat:
        beat(f"compiling the model with numba (once after install or a change of sim/: about "
             f"{COMPILE_MINUTES} on 2 cores; later runs load it from sim/**/__pycache__)")
        beat.last_message = ""
        yield
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
