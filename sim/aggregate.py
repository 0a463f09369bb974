"""Combine the jobs of a sweep into one dataset with the swept keys as dimensions.  Hydra-free.

A sweep directory (Hydra multirun) holds one folder per job, each with `.hydra/overrides.yaml`
(the job's overrides, written when the job starts) and, if the job finished, its result file.  The
combined dataset has one dimension per swept key (e.g. `scenario`, `scenario.intensity`,
`levers.naloxone_kits.level`) in front of the result's own dimensions (draw, year, time, ...).
Cells whose job is missing or failed hold NaN and are named in `job_status`.

The expected jobs (from `multirun.yaml`) are worked out by the caller (the CLI, which may use
Hydra's override parser) and passed in as lists of `key=value` strings; without them the swept keys
are the keys whose values differ between the jobs found.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from sim.errors import InputError
from sim.io import open_result

SWEEP_FILENAME = "sweep.nc"
RESULT_FILENAME = "result.nc"
JOB_ERROR_FILENAME = "error.txt"  # written by a multirun job that stopped on bad input


@dataclass
class JobRecord:
    """One job of a sweep: where it ran, its overrides and what happened."""

    index: tuple[Any, ...]            # values of the swept keys
    directory: Path | None = None
    overrides: list[str] = field(default_factory=list)
    status: str = "missing"           # ok | failed | missing
    reason: str = ""


@dataclass
class SweepReport:
    """What combining a sweep found: swept keys, per-job records, and the output written."""

    sweep_dir: Path
    keys: list[str]
    jobs: list[JobRecord]
    output: Path | None = None

    @property
    def ok(self) -> list[JobRecord]:
        return [j for j in self.jobs if j.status == "ok"]

    @property
    def problems(self) -> list[JobRecord]:
        return [j for j in self.jobs if j.status != "ok"]

    def text(self) -> str:
        """Human-readable summary: counts, then one line per missing or failed job."""
        lines = [f"sweep {self.sweep_dir}: {len(self.ok)} of {len(self.jobs)} job(s) combined"
                 + (f" over {', '.join(self.keys)}" if self.keys else "")]
        for job in self.problems:
            where = f" in {job.directory}" if job.directory else ""
            label = " ".join(f"{k}={v}" for k, v in zip(self.keys, job.index)) or "(single job)"
            lines.append(f"  {job.status}: {label}{where}: {job.reason}")
        if self.output:
            lines.append(f"wrote {self.output}")
        return "\n".join(lines)


def parse_override(text: str) -> tuple[str, Any]:
    """'key=value' (Hydra override syntax, with optional +/++ prefix) -> (key, typed value)."""
    key, sep, value = text.partition("=")
    if not sep:
        raise InputError(f"override {text!r}: expected key=value")
    key = key.lstrip("+~")
    try:
        typed = yaml.safe_load(value) if value != "" else ""
    except yaml.YAMLError:
        typed = value
    if isinstance(typed, (dict, list)) or typed is None:
        typed = value
    return key, typed


def _job_dirs(sweep_dir: Path) -> list[Path]:
    """Folders under the sweep holding `.hydra/overrides.yaml` (any depth up to 4), sorted."""
    found = []
    for path in sorted(sweep_dir.rglob(".hydra/overrides.yaml")):
        job = path.parent.parent
        if job != sweep_dir and len(job.relative_to(sweep_dir).parts) <= 4:
            found.append(job)
    return found


def _read_overrides(job: Path) -> list[str]:
    with open(job / ".hydra" / "overrides.yaml", encoding="utf-8") as f:
        values = yaml.safe_load(f) or []
    return [str(v) for v in values]


def _result_name(job: Path, default: str) -> str:
    """output.filename from the job's saved config, or `default`."""
    cfg_path = job / ".hydra" / "config.yaml"
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = yaml.safe_load(f) or {}
        return str((cfg.get("output") or {}).get("filename", default))
    except (OSError, yaml.YAMLError, AttributeError):
        return default


def swept_keys(expected: Sequence[Sequence[str]]) -> list[str]:
    """Keys whose value differs between the expected jobs, in order of first appearance."""
    values: dict[str, set] = {}
    for job in expected:
        for text in job:
            key, value = parse_override(text)
            values.setdefault(key, set()).add(repr(value))
    keys = [k for k, v in values.items() if len(v) > 1]
    # a key absent from some jobs but present in others is swept as well
    for job in expected:
        present = {parse_override(t)[0] for t in job}
        keys += [k for k in values if k not in present and k not in keys]
    return keys


def _index(overrides: Sequence[str], keys: Sequence[str]) -> tuple[Any, ...]:
    given = dict(parse_override(t) for t in overrides)
    return tuple(given.get(k) for k in keys)


def _coordinate(values: list[Any]) -> np.ndarray:
    """A coordinate array for swept values: int, float or str."""
    if all(isinstance(v, bool) for v in values):
        return np.array([str(v).lower() for v in values], dtype=object)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=float)
    return np.array([str(v) for v in values], dtype=object)


def _same_coords(ref: xr.Dataset, ds: xr.Dataset) -> str:
    """'' if ds has the same dimension coordinates as ref, else what differs."""
    for name in ref.dims:
        if name not in ds.dims:
            return f"dimension {name!r} missing"
        a, b = ref[name].values, ds[name].values
        if a.shape != b.shape or not np.array_equal(a, b):
            return (f"coordinate {name!r} differs from the first job's "
                    f"({b.size} value(s) vs {a.size})")
    return ""


def combine_sweep(sweep_dir: str | Path, expected: Sequence[Sequence[str]] | None = None,
                  result_filename: str = RESULT_FILENAME) -> tuple[xr.Dataset, SweepReport]:
    """Combine the finished jobs of a sweep; return the dataset and a report of every job.

    `expected`: the overrides of every job the sweep launched (in launch order).  Jobs found on
    disk but not expected are combined too.  Raises InputError if no job finished.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        what = "not a directory" if sweep_dir.exists() else "not found"
        raise InputError(f"sweep directory {str(sweep_dir)!r}: {what}")
    found = {job: _read_overrides(job) for job in _job_dirs(sweep_dir)}
    if not found and not expected:
        raise InputError(f"sweep directory {str(sweep_dir)!r}: no jobs found "
                         f"(expected folders with .hydra/overrides.yaml, as `fentsim -m` writes)")
    all_jobs = list(expected or []) + [o for o in found.values()]
    keys = swept_keys(all_jobs)

    records: dict[tuple, JobRecord] = {}
    for overrides in expected or []:
        idx = _index(overrides, keys)
        records.setdefault(idx, JobRecord(idx, overrides=list(overrides),
                                          reason="no job folder (never started)"))
    datasets: dict[tuple, xr.Dataset] = {}
    ref: xr.Dataset | None = None
    for job, overrides in found.items():
        idx = _index(overrides, keys)
        rec = records.setdefault(idx, JobRecord(idx, overrides=overrides))
        if rec.status == "ok":
            continue  # duplicate job for the same cell: keep the first
        rec.directory, rec.overrides = job, overrides
        path = job / _result_name(job, result_filename)
        if not path.is_file():
            error = job / JOB_ERROR_FILENAME
            rec.status = "failed"
            rec.reason = (error.read_text(encoding="utf-8").strip() if error.is_file() else
                          f"no {path.name} (job failed, was killed or is still running; see its log)")
            continue
        try:
            ds = open_result(path)
        except InputError as exc:
            rec.status, rec.reason = "failed", str(exc)
            continue
        if ref is None:
            ref = ds
        else:
            why = _same_coords(ref, ds)
            if why:
                rec.status, rec.reason = "failed", f"cannot combine: {why}"
                continue
        rec.status, rec.reason = "ok", ""
        datasets[idx] = ds
    report = SweepReport(sweep_dir, keys, list(records.values()))
    if ref is None:
        first = report.problems[0] if report.problems else None
        detail = f"; first: {first.status} {first.directory or ''}: {first.reason}" if first else ""
        raise InputError(f"sweep directory {str(sweep_dir)!r}: none of {len(records)} job(s) has a "
                         f"readable result{detail}".replace("\n", " "))
    return _stack(ref, keys, records, datasets, sweep_dir), report


def _stack(ref: xr.Dataset, keys: list[str], records: dict[tuple, JobRecord],
           datasets: dict[tuple, xr.Dataset], sweep_dir: Path) -> xr.Dataset:
    """Lay the job datasets on the grid of swept values (NaN where a job is missing)."""
    levels: list[list[Any]] = []
    for i, _ in enumerate(keys):
        seen: list[Any] = []
        for idx in records:
            if not any(_equal(idx[i], s) for s in seen):
                seen.append(idx[i])
        levels.append(seen)
    shape = tuple(len(v) for v in levels)
    positions = {idx: tuple(_position(levels[i], v) for i, v in enumerate(idx)) for idx in records}

    data_vars = {}
    for name, var in ref.data_vars.items():
        full = np.full(shape + var.shape, np.nan, dtype=float)
        for idx, ds in datasets.items():
            full[positions[idx]] = ds[name].values
        data_vars[name] = xr.Variable(tuple(keys) + var.dims, full, attrs=dict(var.attrs))
    status = np.full(shape, "missing", dtype=object)
    reason = np.full(shape, "", dtype=object)
    job_dir = np.full(shape, "", dtype=object)
    job_config = np.full(shape, "", dtype=object)
    job_commit = np.full(shape, "", dtype=object)
    for idx, rec in records.items():
        pos = positions[idx]
        status[pos], reason[pos] = rec.status, rec.reason
        job_dir[pos] = str(rec.directory.relative_to(sweep_dir)) if rec.directory else ""
        if idx in datasets:
            job_config[pos] = str(datasets[idx].attrs.get("config", ""))
            job_commit[pos] = str(datasets[idx].attrs.get("git_commit", ""))
    dims = tuple(keys)
    data_vars["job_status"] = xr.Variable(dims, status, attrs={
        "units": "1", "long_name": "status of the job for this cell: ok, failed or missing"})
    data_vars["job_reason"] = xr.Variable(dims, reason, attrs={
        "units": "1", "long_name": "why a job is failed or missing ('' if ok)"})
    data_vars["job_dir"] = xr.Variable(dims, job_dir, attrs={
        "units": "1", "long_name": "job folder relative to the sweep directory"})
    data_vars["job_config"] = xr.Variable(dims, job_config, attrs={
        "units": "1", "long_name": "resolved config of the job (YAML, its own provenance)"})
    data_vars["job_git_commit"] = xr.Variable(dims, job_commit, attrs={
        "units": "1", "long_name": "git commit the job ran at"})

    coords = {name: ref[name].variable for name in ref.coords}
    for key, values in zip(keys, levels):
        coords[key] = xr.Variable((key,), _coordinate(values),
                                  attrs={"long_name": f"swept override {key}", "units": "1"})
    ds = xr.Dataset(data_vars, coords=coords)
    n_ok = sum(1 for r in records.values() if r.status == "ok")
    ds.attrs = {
        "title": "fentsim sweep: job results combined over the swept overrides",
        "Conventions": "CF-1.11",
        "sweep_dir": str(sweep_dir),
        "sweep_keys": json.dumps(keys),
        "jobs_expected": len(records),
        "jobs_combined": n_ok,
        "jobs_missing_or_failed": len(records) - n_ok,
        "job_attrs_note": "each job's own provenance (config, git commit) is in job_config and "
                          "job_git_commit; attrs here describe the combination only",
    }
    for attr in ("git_commit", "package_versions"):
        values = {str(d.attrs.get(attr, "")) for d in datasets.values()}
        if len(values) == 1:
            ds.attrs[attr] = values.pop()
    return ds


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def _position(levels: list[Any], value: Any) -> int:
    for i, v in enumerate(levels):
        if _equal(v, value):
            return i
    raise KeyError(value)


def expand_product(sweeps: dict[str, list[str]]) -> list[list[str]]:
    """Cartesian product of {key: [value strings]} as override lists (helper for tests and callers)."""
    keys = list(sweeps)
    return [[f"{k}={v}" for k, v in zip(keys, combo)]
            for combo in itertools.product(*(sweeps[k] for k in keys))]
