"""Re-run a result file from its own provenance and check that it matches.

A result's `config` attribute holds the resolved configuration that produced it (with scenario
intensity already applied to the levers), so it is rebuilt with `build_run` as is.  A chunked
ensemble (`ensemble.chunk_size`) is re-run in the same canonical chunks, in memory.

Everything that defines the result is compared: every data variable and coordinate (present in
both, same dimensions, same values, same `units` and `long_name`), the dimension sizes, and the
attributes that describe what was run (`DEFINING_ATTRS`: config, its hash and input-file hashes,
seed, solver settings, draw range).  A variable deleted from the file, a shifted coordinate or a
changed draws file is a difference.  Memory is estimated before the file is loaded or anything is
run (`check_rerun_memory`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from sim.sweeps.chunked import simulate_chunked
from sim.config import (build_run, check_memory, file_bytes_per_draw, plan_draws,
                        run_bytes_per_draw)
from sim.calibrate.ensemble import DRAW_ID_ATTRS, ensemble_of
from sim.errors import InputError
from sim.results.io import ENGINE, open_result
from sim.sweeps.resume import CONFIG_HASH_ATTR, INPUTS_ATTR, identity_attrs

DEFINING_ATTRS = ("config", CONFIG_HASH_ATTR, INPUTS_ATTR, "seed", "solver_method", "solver_rtol",
                  "solver_atol_mass_kg", "solver_atol_people", "draws_first", "draws_end",
                  "chunk_size", "Conventions")
VARIABLE_ATTRS = ("units", "long_name")


@dataclass
class RerunResult:
    """The regenerated dataset and how it compares with the original."""

    dataset: xr.Dataset
    identical: list[str]
    different: dict[str, float]  # variable -> largest relative difference
    original_commit: str
    current_commit: str
    mismatches: list[str] = field(default_factory=list)  # coordinates, dims, attrs, missing names

    @property
    def matches(self) -> bool:
        return not self.different and not self.mismatches


def config_of(ds: xr.Dataset, name: str = "result") -> dict:
    """The resolved configuration recorded in a result's attrs."""
    text = ds.attrs.get("config")
    if not text:
        raise InputError(f"{name}: attribute 'config' missing; only files written by fentsim can be "
                         f"re-run")
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)   # where, never what: no content quoted
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{name}: attribute 'config' is not valid YAML{where}; allowed: the "
                         f"config fentsim records") from None
    if not isinstance(cfg, dict):
        raise InputError(f"{name}: attribute 'config' is not a mapping")
    return cfg


def check_rerun_memory(cfg: dict, file_bytes: int) -> None:
    """Refuse (one line) a rerun whose estimated memory exceeds the budget: the original loaded,
    the regenerated dataset (twice while chunks are joined), and one solver batch."""
    run = build_run(cfg)
    plan = plan_draws(run.params, run.ensemble)
    if plan is None:
        return
    regenerated = plan.job * file_bytes_per_draw(run.solver) * (2 if plan.batch < plan.job else 1)
    needed = (file_bytes + regenerated + plan.batch * run_bytes_per_draw(run.solver)
              + plan.whole_bytes)
    check_memory(needed, f"re-running {plan.job:,} draw(s) at solver.output_step "
                         f"{run.solver.output_step:g} yr (file of {file_bytes:,} bytes)",
                 "a machine with more memory, or a higher limit if it fits")


def _values_equal(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a.astype(str), b.astype(str)))


def _attr_text(value) -> str:
    if isinstance(value, np.ndarray):
        return repr(value.tolist())
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    return repr(value)


def compare_datasets(original: xr.Dataset, new: xr.Dataset
                     ) -> tuple[list[str], dict[str, float], list[str]]:
    """(identical data variables, different ones with their largest relative difference, other
    mismatches: missing or extra variables and coordinates, dims, values of coordinates, attrs)."""
    identical, different, mismatches = [], {}, []
    for kind, names_a, names_b in (("data variable", original.data_vars, new.data_vars),
                                   ("coordinate", original.coords, new.coords)):
        for name in sorted(set(names_b) - set(names_a), key=str):
            mismatches.append(f"{kind} {name}: missing from the original")
        for name in sorted(set(names_a) - set(names_b), key=str):
            if kind == "data variable":
                different[str(name)] = float("inf")
            mismatches.append(f"{kind} {name}: not in the re-run")
    for name in sorted(set(original.dims) | set(new.dims), key=str):
        na, nb = original.sizes.get(name), new.sizes.get(name)
        if na != nb:
            mismatches.append(f"dimension {name}: {na} in the original, {nb} in the re-run")
    for name in original.variables:
        if name not in new.variables:
            continue
        a, b = original[name].variable, new[name].variable
        if a.dims != b.dims:
            mismatches.append(f"{name}: dimensions {a.dims} in the original, {b.dims} in the re-run")
        for key in VARIABLE_ATTRS:
            if _attr_text(a.attrs.get(key)) != _attr_text(b.attrs.get(key)):
                mismatches.append(f"{name}: attribute {key} {a.attrs.get(key)!r} in the original, "
                                  f"{b.attrs.get(key)!r} in the re-run")
        equal = a.dims == b.dims and _values_equal(a.values, b.values)
        if name in original.data_vars:
            if equal:
                identical.append(str(name))
            else:
                av, bv = a.values, b.values
                with np.errstate(all="ignore"):
                    rel = (np.nanmax(np.abs(av - bv) / np.maximum(np.abs(av), 1e-300))
                           if av.shape == bv.shape and av.dtype.kind in "fc"
                           and bv.dtype.kind in "fc" else float("inf"))
                different[str(name)] = float(rel)
        elif not equal:
            mismatches.append(f"coordinate {name}: values differ")
    for key in DEFINING_ATTRS:
        if key in original.attrs or key in new.attrs:
            a, b = original.attrs.get(key), new.attrs.get(key)
            if _attr_text(a) != _attr_text(b):
                what = ("missing from the original" if key not in original.attrs else
                        "not in the re-run" if key not in new.attrs else "differs")
                mismatches.append(f"attribute {key}: {what}")
    return identical, different, mismatches


def _with_labels(new: xr.Dataset, original: xr.Dataset, cfg: dict,
                 swept: Sequence[str] = ()) -> xr.Dataset:
    """The re-run with the original's scalar label coordinates (`fentsim` adds its scenario and
    intensity, and in a sweep every swept key's value): scenario and intensity from the recorded
    config (so a changed label is a difference) unless the sweep swept them (`swept`: dimension
    names; a swept key's label is its override's value, as `sim.api.run_labels` gives it), the
    swept values as recorded."""
    scenario = cfg.get("scenario") or {}
    from_config = {"scenario": str(scenario.get("name", "")),
                   "scenario_intensity": float(scenario.get("intensity", 1.0) or 1.0)}
    for name, coord in original.coords.items():
        if coord.ndim != 0 or name in new.coords:
            continue
        value = coord.values[()] if name in swept else from_config.get(str(name), coord.values[()])
        new = new.assign_coords({name: xr.Variable((), value, attrs=dict(coord.attrs))})
    return new


def rerun(original: xr.Dataset, name: str = "result", swept: Sequence[str] = ()) -> RerunResult:
    """Regenerate `original` from its recorded config and compare everything that defines it."""
    cfg = config_of(original, name)
    run = build_run(cfg)
    ensemble = ensemble_of(run.params, run.ensemble)
    if ensemble.chunk_size is None:
        new = run.simulate(ensemble, cfg)
        new = new.assign_coords(draw_id=("draw", ensemble.ids(), DRAW_ID_ATTRS))
    else:  # the same canonical chunks, in memory
        new = simulate_chunked(ensemble.params_for, ensemble.draws, ensemble.chunk_size,
                               run.levers, run.solver, config=cfg, seed=ensemble.seed,
                               ids_for=lambda a, b: ensemble.ids(a, b),
                               run_draws=run.draws_simulator(ensemble, cfg))
    new.attrs.update(identity_attrs(cfg, ensemble.inputs))
    new = _with_labels(new, original, cfg, swept)
    identical, different, mismatches = compare_datasets(original, new)
    return RerunResult(new, identical, different, str(original.attrs.get("git_commit", "unknown")),
                       str(new.attrs.get("git_commit", "unknown")), mismatches)


def rerun_file(path: str | os.PathLike, swept: Sequence[str] = ()) -> RerunResult:
    """`rerun` of a result file: its config read and the memory estimated before it is loaded."""
    path = Path(path)
    original = None
    if path.is_file():
        try:
            with xr.open_dataset(path, engine=ENGINE, decode_times=False) as lazy:  # attrs only
                attrs = dict(lazy.attrs)
        except Exception:  # unreadable: open_result below names the problem
            attrs = None
        if attrs is not None:
            check_rerun_memory(config_of(xr.Dataset(attrs=attrs), str(path)),
                               path.stat().st_size)
    original = open_result(path)
    return rerun(original, name=str(path), swept=swept)


SWEEP_TITLE = "fentsim sweep"
NOT_DEFINING_SWEEP_VARS = ("job_git_commit",)   # like git_commit: where, not what, was run


@dataclass
class SweepRerunResult:
    """A sweep regenerated job by job and combined again, and how it compares with the original:
    each job's own comparison (`jobs`, job folder -> RerunResult) and the combined dataset's."""

    dataset: xr.Dataset
    jobs: dict[str, RerunResult]
    identical: list[str]
    different: dict[str, float]
    original_commit: str
    current_commit: str
    mismatches: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return (not self.different and not self.mismatches
                and all(job.matches for job in self.jobs.values()))


def sweep_location(path: str | os.PathLike) -> tuple[Path, Path] | None:
    """(sweep folder, sweep file) if `path` is a sweep folder or a sweep dataset, else None."""
    from sim.results.io import netcdf_title
    from sim.sweeps.aggregate import SWEEP_FILENAME

    path = Path(path)
    if path.is_dir():
        return path, path / SWEEP_FILENAME
    if path.is_file() and (netcdf_title(path) or "").startswith(SWEEP_TITLE):
        return path.parent, path
    return None


def rerun_sweep(path: str | os.PathLike, parse: Any) -> SweepRerunResult:
    """Regenerate every job of a sweep from the config recorded in its result, combine them as
    `fentsim-aggregate` does, and compare job by job and the combined dataset with the sweep's
    (everything but the git commit the jobs ran at).  The sweep must be complete.  `parse`: the
    override parser of sim.sweeps.aggregate.survey_sweep (Hydra's, given by the caller)."""
    import shutil
    import tempfile

    from sim.results.io import write_dataset
    from sim.sweeps.aggregate import combine_cells, dimension_name, survey_sweep

    found = sweep_location(path)
    if found is None:
        raise InputError(f"sweep: value {str(path)!r} is neither a sweep folder nor a sweep "
                         f"dataset; allowed: a folder written by fentsim -m, or its sweep.nc")
    sweep_dir, sweep_file = found
    if not sweep_file.is_file():
        raise InputError(f"sweep folder {str(sweep_dir)!r}: no {sweep_file.name}; allowed: a "
                         f"combined sweep (fentsim-aggregate {sweep_dir} writes it)")
    original = open_result(sweep_file)
    if not str(original.attrs.get("title", "")).startswith(SWEEP_TITLE):
        raise InputError(f"sweep file {str(sweep_file)!r}: not a sweep dataset (title); allowed: "
                         f"the sweep.nc that fentsim -m or fentsim-aggregate writes")
    incomplete = int(original.attrs.get("jobs_missing_or_failed", 0) or 0)
    if incomplete:
        raise InputError(f"sweep file {str(sweep_file)!r}: {incomplete} job(s) missing or failed; "
                         f"allowed: a complete sweep (rerun those jobs, then fentsim-aggregate)")
    survey = survey_sweep(sweep_dir, parse=parse)
    jobs: dict[str, RerunResult] = {}
    with tempfile.TemporaryDirectory(prefix="fentsim-rerun-") as tmp:
        for idx, result_path in survey.results.items():
            record = survey.records[idx]
            rel = record.directory.relative_to(sweep_dir)
            outcome = rerun_file(result_path, swept=[dimension_name(k) for k in survey.keys])
            jobs[str(rel)] = outcome
            shutil.copytree(record.directory / ".hydra", Path(tmp) / rel / ".hydra")
            write_dataset(outcome.dataset, Path(tmp) / rel / result_path.name)
        new, _ = combine_cells(survey_sweep(tmp, parse=parse))
    # cells in the original's order (an experiment's sweep is combined in its sweeper's order;
    # the jobs found again in the folder may come in another): aligned by label, not position
    for dim in survey.keys:
        name = dimension_name(dim)
        if (name in original.indexes and name in new.indexes
                and set(original[name].values.tolist()) == set(new[name].values.tolist())):
            new = new.sel({name: original[name].values})
    for key in ("sweep_dir", "history", "sweep_command"):
        if key in original.attrs:
            new.attrs[key] = original.attrs[key]
    keep = [v for v in NOT_DEFINING_SWEEP_VARS if v in original.variables or v in new.variables]
    identical, different, mismatches = compare_datasets(
        original.drop_vars(keep, errors="ignore"), new.drop_vars(keep, errors="ignore"))
    return SweepRerunResult(new, jobs, identical, different,
                            str(original.attrs.get("git_commit", "unknown")),
                            str(new.attrs.get("git_commit", "unknown")), mismatches)
