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
from collections.abc import Callable, Iterator
from typing import Any

from sim.numba_cache import configure_cache

configure_cache()   # a cache folder this user can write, before numba is imported (sim/numba_cache.py)

import numba  # noqa: E402
import numba.core.event  # noqa: E402

# Floating-point licences for the hot code: fused multiply-add, reassociation and reciprocal
# multiplication; never 'no NaN/inf' (the step control must see a NaN).
FAST_MATH = {"contract", "reassoc", "arcp"}
# A loop over a tuple of constants (e.g. parameter names) unrolled at compile time, so that each
# name can index a parameter record (sim/model/flows.py, `channel_constant`).
literal_unroll = numba.literal_unroll


def jit(function=None, *, inline: bool = False, fastmath: bool = False, parallel: bool = False,
        no_refcount: bool = False):
    """numba.njit with on-disk caching and numpy's error model; usable bare or with options.

    `no_refcount`: compiled without numba's reference counting (its `_nrt=False`, the option numba
    uses for its own hot helpers): the arrays are borrowed from the caller, which holds them, and
    the function cannot allocate (an allocation does not compile).  Each count is an atomic
    operation: in `flows.evaluate` and the kernel's stepper they took a quarter of the time."""
    options = {"cache": True, "error_model": "numpy"}
    if no_refcount:
        options["_nrt"] = False
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


class _Announcer(numba.core.event.Listener):
    """Listens to numba's compile events (fired only when machine code is made, not when it is
    loaded from the on-disk cache): the first one says what is happening, then a heartbeat."""

    def __init__(self) -> None:
        self.beat: Heartbeat | None = None
        self.start = 0.0

    def on_start(self, event: Any) -> None:
        if self.beat is None:
            self.start = time.monotonic()
            self.beat = Heartbeat(say, "  still compiling").__enter__()
            self.beat(f"compiling the model with numba (once after install or a change of sim/: "
                      f"about {COMPILE_MINUTES} on 2 cores; later runs load it from the cache)")
            self.beat.last_message = ""

    def on_end(self, event: Any) -> None:
        pass

    def finish(self) -> None:
        if self.beat is not None:
            self.beat.__exit__(None, None, None)
            say(f"compiled the model in {time.monotonic() - self.start:.0f} s")


@contextlib.contextmanager
def compiling() -> Iterator[None]:
    """Run the body; if numba compiles anything in it (machine code missing from its cache, or
    stale), say so first with about how long it takes, then a line every HEARTBEAT_S seconds, then
    how long it took.  Loading cached machine code says nothing."""
    announcer = _Announcer()
    try:
        with numba.core.event.install_listener("numba:compile", announcer):
            yield
    finally:
        announcer.finish()


def announces_compile(function: Callable) -> Callable:
    """Decorator: the first call of the decorated function in a process runs inside
    `compiling()`, so a compile it triggers is said aloud."""
    first = [True]

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not first[0]:
            return function(*args, **kwargs)
        first[0] = False
        with compiling():
            return function(*args, **kwargs)
    return wrapper
