"""Re-run a result file from its own provenance and check that the data match.

A result's `config` attribute holds the resolved configuration that produced it (with scenario
intensity already applied to the levers), so it is rebuilt with `build_run` as is.  A chunked
ensemble (`ensemble.chunk_size`) is re-run in the same canonical chunks, in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
import yaml

from sim.sweeps.chunked import simulate_chunked
from sim.config import build_run
from sim.calibrate.ensemble import ensemble_of
from sim.errors import InputError
from sim.results.run import simulate


@dataclass
class RerunResult:
    """The regenerated dataset and how it compares with the original."""

    dataset: xr.Dataset
    identical: list[str]
    different: dict[str, float]  # variable -> largest relative difference
    original_commit: str
    current_commit: str


def config_of(ds: xr.Dataset, name: str = "result") -> dict:
    """The resolved configuration recorded in a result's attrs."""
    text = ds.attrs.get("config")
    if not text:
        raise InputError(f"{name}: attribute 'config' missing; only files written by fentsim can be "
                         f"re-run")
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{name}: attribute 'config' is not valid YAML ({exc.problem})") from None
    if not isinstance(cfg, dict):
        raise InputError(f"{name}: attribute 'config' is not a mapping")
    return cfg


def rerun(original: xr.Dataset, name: str = "result") -> RerunResult:
    """Regenerate `original` from its recorded config and compare every data variable."""
    cfg = config_of(original, name)
    run = build_run(cfg)
    ensemble = ensemble_of(run.params, run.ensemble)
    if ensemble.chunk_size is None:
        new = simulate(ensemble.params(), run.levers, run.solver, config=cfg, seed=ensemble.seed)
    else:  # the same canonical chunks, in memory
        new = simulate_chunked(ensemble.params_for, ensemble.draws, ensemble.chunk_size,
                               run.levers, run.solver, config=cfg, seed=ensemble.seed)
    identical, different = [], {}
    for var in original.data_vars:
        if var not in new:
            different[var] = float("inf")
            continue
        a, b = original[var].values, new[var].values
        if a.shape == b.shape and np.array_equal(a, b, equal_nan=True):
            identical.append(var)
        else:
            with np.errstate(all="ignore"):
                rel = np.nanmax(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)) if a.shape == b.shape \
                    else float("inf")
            different[var] = float(rel)
    return RerunResult(new, identical, different, str(original.attrs.get("git_commit", "unknown")),
                       str(new.attrs.get("git_commit", "unknown")))
