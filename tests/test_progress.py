"""No silent wait: a compile says so (with a line every few seconds and its time), loading
cached machine code says nothing, and long work gets a line whenever it has been silent
(sim/model/compiled.py)."""

from __future__ import annotations

import time

import numba.core.event

import sim
from sim.model import compiled


def test_a_compile_is_said_with_a_heartbeat_and_its_time(monkeypatch):
    said: list[str] = []
    monkeypatch.setattr(compiled, "say", said.append)
    monkeypatch.setattr(compiled, "HEARTBEAT_S", 0.2)
    with compiled.compiling():
        with numba.core.event.trigger_event("numba:compile", data={}):  # as numba compiles
            time.sleep(0.75)
    assert said[0].startswith("compiling the model with numba") and "minutes" in said[0]
    assert sum("still compiling" in line for line in said) >= 2
    assert said[-1].startswith("compiled the model in ")
    sim.simulate()   # compiled now, if it was not
    said.clear()
    with compiled.compiling():
        sim.simulate()   # machine code loaded from numba's cache: nothing to say
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
