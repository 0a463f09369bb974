"""Scenario section of a run config: name, description and an intensity that scales interventions.

A scenario (configs/scenario/*.yaml) sets lever interventions (start, ramp, level, mode).  Its
`intensity` k scales how far each intervention departs from history, so one scenario file can be
swept over several strengths (`fentsim -m scenario=naloxone_up scenario.intensity=0.5,1,2`):

- mode 'scale' (level is a multiple of the historical path): level -> 1 + k (level - 1);
- mode 'set' (level is a value): level -> h + k (level - h), with h the historical value of the
  lever at the intervention's start.

k = 1 is the scenario as written, k = 0 is history (no change), k = 2 doubles the departure.
Levers without an intervention are left alone.  A scenario defined in dollars (a `funding`
section) is scaled in dollars: funding.total_usd_per_year -> k x total.  Hydra-free.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from pydantic import Field

from sim.errors import InputError
from sim.model.levers import LEVER_SPECS, Lever
from sim.schema import Number, Section, validate


class ScenarioSection(Section):
    """The `scenario` section of a run: its name, what it does, and how strongly (see module doc)."""

    name: str = Field("", description="text (the scenario's name)")
    description: str = Field("", description="text (what the scenario does)")
    intensity: Number | None = Field(1.0, ge=0, description="a number >= 0 (1 = the scenario as "
                                                            "written, 0 = history)")


SCENARIO_KEYS = tuple(ScenarioSection.model_fields)


def scenario_intensity(cfg: Mapping[str, Any]) -> float:
    """The validated `scenario.intensity` (1.0 if absent or null)."""
    k = validate(ScenarioSection, "scenario", cfg.get("scenario")).intensity
    return 1.0 if k is None else float(k)


def scaled_level(name: str, entry: Mapping[str, Any], k: float) -> Any:
    """The intervention level of lever `name` at intensity k (see module doc)."""
    level = np.asarray(entry["level"], dtype=float)
    mode = entry.get("mode", "set")
    if mode == "scale":
        out = 1.0 + k * (level - 1.0)
    else:
        history = Lever(LEVER_SPECS[name])
        start = np.asarray(entry["start"], dtype=float)
        base = np.vectorize(history.history_at)(start) if start.ndim else history.history_at(float(start))
        out = base + k * (level - base)
    return out.tolist() if np.ndim(out) else float(out)


def apply_intensity(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the run config with every lever intervention scaled by `scenario.intensity`.

    Returns the config unchanged (as a copy) when the intensity is 1.  Bounds are checked later by
    the levers themselves, so an intensity that takes a lever out of range is an InputError naming it.
    """
    out = copy.deepcopy(dict(cfg))
    k = scenario_intensity(out)
    if k == 1.0:
        return out
    funding = out.get("funding")
    if isinstance(funding, Mapping):   # a scenario in dollars: k times the money
        total = funding.get("total_usd_per_year")
        if isinstance(total, (int, float)) and not isinstance(total, bool):
            out["funding"] = {**funding, "total_usd_per_year": k * float(total)}
    levers = out.get("levers") or {}
    if not isinstance(levers, Mapping):
        return out  # build_run reports the malformed section
    for name, entry in levers.items():
        if name not in LEVER_SPECS or not isinstance(entry, Mapping):
            continue  # build_run reports unknown levers and malformed entries
        if entry.get("start") is None or entry.get("level") is None:
            continue
        try:
            levers[name] = {**entry, "level": scaled_level(name, entry, k)}
        except (TypeError, ValueError):
            raise InputError(f"levers.{name}: level {entry.get('level')!r} / start "
                             f"{entry.get('start')!r} must be numbers to apply scenario.intensity "
                             f"{k:g}") from None
    return out
