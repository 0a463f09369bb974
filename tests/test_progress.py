"""No silent wait: the first compile says so (with a line every few seconds and its time), and
long work gets a line whenever it has been silent (sim/model/compiled.py)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import sim
from sim.engine import kernel
from sim.model import compiled


def uncompiled() -> SimpleNamespace:
    """A stand-in for a numba dispatcher whose on-disk cache is missing (or stale)."""
    return SimpleNamespace(targetoptions={}, _cache=SimpleNamespace(
        _cache_file=SimpleNamespace(_load_index=dict)))


def test_a_compile_is_said_with_a_heartbeat_and_its_time(monkeypatch):
    said: list[str] = []
    monkeypatch.setattr(compiled, "say", said.append)
    monkeypatch.setattr(compiled, "HEARTBEAT_S", 0.2)
    with compiled.compiling([uncompiled()]):
        time.sleep(0.75)
    assert said[0].startswith("compiling the model with numba") and "minutes" in said[0]
    assert sum("still compiling" in line for line in said) >= 2
    assert said[-1].startswith("compiled the model in ")
    said.clear()
    sim.simulate()   # compiles (saying so) if this checkout's cache is missing or stale
    assert all(compiled.is_cached(d) for d in kernel._compiled_functions())
    with compiled.compiling(kernel._compiled_functions()):
        pass
    assert said == [] or said[-1].startswith("compiled the model")   # nothing more once compiled
    said.clear()
    with compiled.compiling(kernel._compiled_functions()):
        pass
    assert said == []


def test_heartbeat_speaks_only_after_silence_and_counts_progress_elsewhere():
    lines: list[str] = []
    with compiled.Heartbeat(lines.append, "still running", every=0.2) as say:
        say("step 1")
        time.sleep(0.5)
    assert lines[0] == "step 1" and lines[1].startswith("still running (") and "step 1" in lines[1]
    lines.clear()
    done = iter(range(1000))
    with compiled.Heartbeat(lines.append, "sweep still running", every=0.3,
                            poll=lambda: f"{next(done)} finished"):
        time.sleep(0.8)   # the polled state changes every tick: progress, no line
    assert lines == []
