"""The no-rebound criterion for supply measures (issue 22, item 8), declared once for the tests
(tests/test_behaviour.py) and the table of docs/validation.md (scripts/rebound.py).

A supply measure rebounds in a draw when some year 2020-2040 has more opioid overdose deaths
(`deaths_overdose`, deaths/yr) than the same draw's baseline by more than REBOUND_EXCESS. The
measures are a permanent cut of a channel at its source (REBOUND_LEVELS withheld from REBOUND_START,
ramped over a year) and a temporary tripling of mail and land interdiction over 2026-2029.
Hydra-free.
"""

from __future__ import annotations

import xarray as xr

from sim.engine.solver import SolverSettings
from sim.model.levers import LeverSet

REBOUND_WINDOW = SolverSettings(end_year=2040, output_step=0.5)   # runs to 2040, outputs half-yearly
REBOUND_YEARS = (2020, 2040)   # calendar years compared with the baseline
REBOUND_START = 2026.0         # yr: the scenarios' default start
REBOUND_EXCESS = 0.005         # a year's deaths more than 0.5 % above the paired baseline's ...
REBOUND_DRAWS = 0.05           # ... in at most 5 % of the draws (issue 22 item 8)
REBOUND_LEVELS = (0.3, 0.6, 0.99)   # share of a channel withheld at its source
SURGE_END = 2029.0             # yr: the temporary interdiction surge ends


def permanent_cut(lever: str, level: float) -> LeverSet:
    """`level` of a channel's supply withheld at its source by `lever` from REBOUND_START on."""
    return LeverSet.from_mapping({lever: {"start": REBOUND_START, "ramp": 1.0, "level": level}})


def interdiction_surge() -> LeverSet:
    """Mail and land interdiction effort x3 from REBOUND_START to SURGE_END (ramped a year each way)."""
    surge = {"start": REBOUND_START, "ramp": 1.0, "level": 3.0, "mode": "scale", "end": SURGE_END}
    return LeverSet.from_mapping({"interdiction_mail": surge, "interdiction_land": surge})


def peak_ratio(ds: xr.Dataset, base: xr.Dataset) -> xr.DataArray:
    """Per draw, the largest ratio of a year's deaths_overdose to the paired baseline's over
    REBOUND_YEARS (1: never above it)."""
    ratio = ds.deaths_overdose / base.deaths_overdose
    return ratio.sel(year=slice(*REBOUND_YEARS)).max("year")


def rebounding_draws(ds: xr.Dataset, base: xr.Dataset) -> float:
    """Share of draws (0-1) in which some year of REBOUND_YEARS exceeds the paired baseline's
    deaths by more than REBOUND_EXCESS."""
    return float((peak_ratio(ds, base) > 1.0 + REBOUND_EXCESS).mean())
