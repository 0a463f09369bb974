"""One entry point for a run: parameters + levers + solver settings -> result `xarray.Dataset`."""

from __future__ import annotations

import json
import time
from typing import Any

import xarray as xr
import yaml

from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters
from sim.results.provenance import git_commit, package_versions
from sim.results.dataset import to_dataset
from sim.engine.solver import SolverSettings, integrate, settings_dict


def result_dataset(params: ModelParameters, levers: LeverSet,
                   settings: SolverSettings) -> tuple[xr.Dataset, dict[str, Any]]:
    """Integrate and build the result dataset, without provenance (for callers that read a few
    numbers off it, such as the study's model runs); also returns the solver's statistics with
    the integration's wall time (s)."""
    started = time.perf_counter()
    traj = integrate(params, levers, settings)
    stats = {**traj.stats, "wall_seconds": round(time.perf_counter() - started, 4)}
    return to_dataset(traj, params, levers, settings), stats


def simulate(params: ModelParameters | None = None, levers: LeverSet | None = None,
             settings: SolverSettings | None = None, *, config: dict[str, Any] | None = None,
             seed: int | None = None) -> xr.Dataset:
    """Run the model for every draw in `params` and return the result dataset with provenance.

    `config` is the resolved configuration recorded in the attrs (defaults to the parameter
    overrides, levers and solver settings actually used); `seed` is recorded when draws were sampled.
    """
    params = params or ModelParameters()
    levers = levers or LeverSet.from_mapping({})
    settings = settings or SolverSettings()
    ds, stats = result_dataset(params, levers, settings)
    if config is None:
        config = {"levers": levers.describe(), "solver": settings_dict(settings)}
    ds.attrs.update({
        "title": "fentsim: system-dynamics model of the US illicit fentanyl epidemic",
        "Conventions": "CF-1.11",
        "config": yaml.safe_dump(config, sort_keys=False),
        "git_commit": git_commit(),
        "package_versions": package_versions(),
        "seed": -1 if seed is None else int(seed),
        "solver_method": settings.method,
        "solver_rtol": settings.rtol,
        "solver_atol_mass_kg": settings.atol_mass,
        "solver_atol_people": settings.atol_people,
        "solver_stats": json.dumps(stats),
    })
    return ds
