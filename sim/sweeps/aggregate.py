"""Combine the jobs of a sweep into one dataset with the swept keys as dimensions.  Hydra-free.

A sweep directory (Hydra multirun) holds one folder per job, each with `.hydra/overrides.yaml`
(the job's overrides, written when the job starts) and, if the job finished, its result file.  The
combined dataset has one dimension per swept key in front of the result's own dimensions (draw,
year, time, ...), named as a Python identifier (`dimension_name`: `scenario`,
`scenario_intensity`, `levers_naloxone_kits_level`); the attribute `sweep_dims` maps each back to
its override key.
Cells whose job is missing or failed hold NaN and are named in `job_status`.

The expected jobs (from `multirun.yaml`) are worked out by the caller (the CLI, with Hydra's
sweeper) and passed in as lists of `key=value` strings; without them the swept keys are the keys
whose values differ between the jobs found.  Overrides are read by Hydra's own grammar: the
caller passes its parser (`parse`: 'key=value' -> (key, typed value), in practice
`sim.hydra_compose.parse_override`), so this module stays Hydra-free.  Two expected jobs with the same values
(`0.5,0.50,5e-1`) are an InputError.

Every result is checked against its folder: the config recorded in the result must be the job's
own (`.hydra/config.yaml`, with `scenario.intensity` applied as the job applied it); a result moved
or copied from another job's folder is listed as failed, never combined under the wrong labels.
The cells' draws are compared by identity (`draw_id`): unless an `ensemble.*` key is swept, a job
whose draws differ from the first job's is listed as failed, so the cells of a sweep are always
paired draw by draw.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from sim.errors import InputError
from sim.results.io import ENGINE, open_result

SWEEP_FILENAME = "sweep.nc"
CHUNK_KEY = "ensemble.chunk"  # swept alone: the jobs are slices of one ensemble (see concatenate_chunks)
RESULT_FILENAME = "result.nc"
JOB_ERROR_FILENAME = "error.txt"  # written by a multirun job that failed
DRAW_ID = "draw_id"


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
    notes: list[str] = field(default_factory=list)
    combined: bool = True   # False: the finished jobs were not combined (split ensemble incomplete)

    @property
    def ok(self) -> list[JobRecord]:
        return [j for j in self.jobs if j.status == "ok"]

    @property
    def problems(self) -> list[JobRecord]:
        return [j for j in self.jobs if j.status != "ok"]

    def text(self) -> str:
        """Human-readable summary: counts, then one line per missing or failed job."""
        done = "combined" if self.combined else "finished, none combined"
        lines = [f"sweep {self.sweep_dir}: {len(self.ok)} of {len(self.jobs)} job(s) {done}"
                 + (f" over {', '.join(self.keys)}" if self.keys else "")]
        for job in self.problems:
            where = f" in {job.directory}" if job.directory else ""
            label = " ".join(f"{k}={v}" for k, v in zip(self.keys, job.index)) or "(single job)"
            lines.append(f"  {job.status}: {label}{where}: {job.reason}")
        lines += self.notes
        if self.output:
            lines.append(f"wrote {self.output}")
        return "\n".join(lines)


ParseOverride = Callable[[str], tuple[str, Any]]   # 'key=value' -> (key, typed value)


def dimension_name(key: str) -> str:
    """The dataset dimension (a Python identifier) of a swept override key:
    'scenario.intensity' -> 'scenario_intensity', 'levers.naloxone_kits.level' ->
    'levers_naloxone_kits_level'."""
    name = re.sub(r"\W", "_", key.lstrip("+~"))
    return name if not name[:1].isdigit() else f"_{name}"


def duplicate_jobs(expected: Sequence[Sequence[str]], parse: ParseOverride) -> list[list[int]]:
    """Groups (job numbers) of expected jobs whose overrides have the same typed values."""
    seen: dict[tuple, list[int]] = {}
    for num, job in enumerate(expected):
        cell = tuple(sorted((k, repr(_canonical(v))) for k, v in map(parse, job)))
        seen.setdefault(cell, []).append(num)
    return [nums for nums in seen.values() if len(nums) > 1]


def _canonical(value: Any) -> Any:
    """Equal numbers alike (1 == 1.0), other values as they are."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def check_duplicates(expected: Sequence[Sequence[str]] | None, parse: ParseOverride) -> None:
    """InputError if two expected jobs have the same values (e.g. `x=0.5,0.50,5e-1`)."""
    groups = duplicate_jobs(expected or [], parse)
    if groups:
        nums = groups[0]
        shown = "; ".join(" ".join(expected[i]) for i in nums)
        raise InputError(f"sweep: jobs {', '.join(map(str, nums))} have the same values "
                         f"({shown}); allowed: each value once per swept key")


def _job_dirs(sweep_dir: Path) -> list[Path]:
    """Folders under the sweep holding `.hydra/overrides.yaml` (any depth up to 4), sorted."""
    found = []
    for path in sorted(sweep_dir.rglob(".hydra/overrides.yaml")):
        job = path.parent.parent
        if job != sweep_dir and len(job.relative_to(sweep_dir).parts) <= 4:
            found.append(job)
    return found


def _read_overrides(job: Path) -> list[str]:
    """A job's `.hydra/overrides.yaml`: a list of 'key=value' strings (InputError otherwise)."""
    path = job / ".hydra" / "overrides.yaml"
    try:
        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        what = getattr(exc, "strerror", None) or type(exc).__name__
        raise InputError(f"job folder {str(job)!r}: .hydra/overrides.yaml cannot be read ({what}); "
                         f"allowed: a YAML list of key=value strings, as fentsim -m writes") from None
    if not isinstance(values, list) or not all(
            isinstance(v, str) and "=" in v for v in values):
        raise InputError(f"job folder {str(job)!r}: .hydra/overrides.yaml is not a list of "
                         f"key=value strings; allowed: a YAML list such as [scenario=baseline]")
    return values


def _job_config(job: Path) -> tuple[dict[str, Any] | None, bool]:
    """The job's own config (`.hydra/config.yaml`) and whether it can be compared as is (False
    if missing, unreadable or holding interpolations)."""
    try:
        text = (job / ".hydra" / "config.yaml").read_text(encoding="utf-8")
        cfg = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None, False
    if not isinstance(cfg, dict):
        return None, False
    return cfg, "${" not in text


def _params_choice(job: Path) -> str | None:
    """The job's `params` option (`.hydra/hydra.yaml`: hydra.runtime.choices.params), or None."""
    try:
        hydra_cfg = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text(encoding="utf-8"))
        return str(hydra_cfg["hydra"]["runtime"]["choices"]["params"])
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError):
        return None


def _lookup(cfg: Any, key: str) -> tuple[bool, Any]:
    for part in key.split("."):
        if not isinstance(cfg, dict) or part not in cfg:
            return False, None
        cfg = cfg[part]
    return True, cfg


def job_mismatch(job: Path, overrides: Sequence[str], result_config: Any,
                 parse: ParseOverride) -> str:
    """'' if a result's recorded config is the job's own, else why not (see the module doc)."""
    from sim.calibrate.ensemble import with_posterior_of
    from sim.model.scenarios import apply_intensity
    from sim.sweeps.resume import config_hash

    if not isinstance(result_config, dict):
        return "result has no readable config attribute"
    own, comparable = _job_config(job)
    if own is not None and comparable:
        try:  # as the job ran it: intensity applied, the posterior of its params resolved
            expected = with_posterior_of(apply_intensity(own), _params_choice(job))
        except InputError:
            expected = None
        if expected is not None:
            if config_hash(expected) == config_hash(result_config):
                return ""
            return ("result file was written for another config than this job's "
                    "(.hydra/config.yaml): moved or copied from another job folder?")
    for text in overrides:  # no usable config.yaml: the overrides must match the recorded config
        key, value = parse(text)
        if key.startswith("hydra") or key.startswith("levers.") or "/" in key:
            continue
        found, recorded = _lookup(result_config, key + (".name" if key == "scenario" else ""))
        if found and _canonical(recorded) != _canonical(value) and str(recorded) != str(value):
            return (f"result file was written for {key}={recorded!r}, the job's override is "
                    f"{text}: moved or copied from another job folder?")
    return ""


def _result_name(job: Path, default: str) -> str:
    """output.filename from the job's saved config, or `default`."""
    cfg_path = job / ".hydra" / "config.yaml"
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = yaml.safe_load(f) or {}
        return str((cfg.get("output") or {}).get("filename", default))
    except (OSError, yaml.YAMLError, AttributeError):
        return default


def swept_keys(expected: Sequence[Sequence[str]], parse: ParseOverride) -> list[str]:
    """Keys whose value differs between the expected jobs, in order of first appearance."""
    values: dict[str, set] = {}
    for job in expected:
        for text in job:
            key, value = parse(text)
            values.setdefault(key, set()).add(repr(value))
    keys = [k for k, v in values.items() if len(v) > 1]
    # a key absent from some jobs but present in others is swept as well
    for job in expected:
        present = {parse(t)[0] for t in job}
        keys += [k for k in values if k not in present and k not in keys]
    return keys


def _index(overrides: Sequence[str], keys: Sequence[str], parse: ParseOverride) -> tuple[Any, ...]:
    given = dict(parse(t) for t in overrides)
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


@dataclass
class Survey:
    """The jobs of a sweep on disk: swept keys, a record per cell, result files of finished jobs."""

    sweep_dir: Path
    keys: list[str]
    records: dict[tuple, JobRecord]
    results: dict[tuple, Path]
    parse: ParseOverride

    def report(self) -> SweepReport:
        return SweepReport(self.sweep_dir, self.keys, list(self.records.values()))


def survey_sweep(sweep_dir: str | Path, expected: Sequence[Sequence[str]] | None = None,
                 result_filename: str = RESULT_FILENAME, *, parse: ParseOverride) -> Survey:
    """Find the jobs of a sweep and their result files; jobs without one are marked failed.

    `expected`: the overrides of every job the sweep launched (in launch order).  Jobs found on
    disk but not expected are included too.  `parse`: Hydra's override parser (module doc).
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        what = "not a directory" if sweep_dir.exists() else "not found"
        raise InputError(f"sweep directory {str(sweep_dir)!r}: {what}")
    check_duplicates(expected, parse)
    found = {job: _read_overrides(job) for job in _job_dirs(sweep_dir)}
    if not found and not expected:
        raise InputError(f"sweep directory {str(sweep_dir)!r}: no jobs found "
                         f"(expected folders with .hydra/overrides.yaml, as `fentsim -m` writes)")
    all_jobs = list(expected or []) + [o for o in found.values()]
    keys = swept_keys(all_jobs, parse)

    records: dict[tuple, JobRecord] = {}
    for overrides in expected or []:
        idx = _index(overrides, keys, parse)
        records.setdefault(idx, JobRecord(idx, overrides=list(overrides),
                                          reason="no job folder (never started)"))
    results: dict[tuple, Path] = {}
    for job, overrides in found.items():
        idx = _index(overrides, keys, parse)
        rec = records.setdefault(idx, JobRecord(idx, overrides=overrides))
        if idx in results:
            continue  # duplicate job for the same cell: keep the first
        rec.directory, rec.overrides = job, overrides
        path = job / _result_name(job, result_filename)
        if not path.is_file():
            error = job / JOB_ERROR_FILENAME
            log = task_log(job, sweep_dir)
            rec.status = "failed"
            rec.reason = (error.read_text(encoding="utf-8").strip() if error.is_file() else
                          f"no {path.name} (job failed, was killed or is still running"
                          + ("" if log else "; see its log") + ")")
            if log is not None:
                rec.reason += f"; log: {log}"
            continue
        rec.status, rec.reason = "ok", ""
        results[idx] = path
    return Survey(sweep_dir, keys, records, results, parse)


def task_log(job: Path, sweep_dir: Path) -> Path | None:
    """The stderr log of a job run by a submitit launcher (SLURM or local), if it can be found.

    Such a job's `.hydra/hydra.yaml` holds its submitit id (`hydra.job.id`, e.g. `123_4` for task
    4 of array job 123) and `hydra.launcher.submitit_folder` (`${hydra.sweep.dir}/.submitit/%j` by
    default); submitit writes the task's stderr to `<that folder>/<id>_<rank>_log.err`.
    """
    try:
        with open(job / ".hydra" / "hydra.yaml", encoding="utf-8") as f:
            hydra = (yaml.safe_load(f) or {}).get("hydra") or {}
        job_id = str((hydra.get("job") or {}).get("id") or "")
        folder = str((hydra.get("launcher") or {}).get("submitit_folder") or "")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    if not job_id or not folder or "/" in job_id:
        return None
    candidates = [sweep_dir / ".submitit" / job_id]
    if "${" not in folder.replace("${hydra.sweep.dir}", ""):
        candidates.insert(0, Path(folder.replace("${hydra.sweep.dir}", str(sweep_dir))
                                  .replace("%j", job_id)))
    for where in candidates:
        logs = sorted(where.glob(f"{job_id}_*_log.err"))
        if logs:
            return logs[0].resolve()
    return None


def no_result_error(survey: Survey) -> InputError:
    """The error when none of a sweep's jobs has a readable result."""
    report = survey.report()
    first = report.problems[0] if report.problems else None
    detail = f"; first: {first.status} {first.directory or ''}: {first.reason}" if first else ""
    return InputError(f"sweep directory {str(survey.sweep_dir)!r}: none of {len(survey.records)} "
                      f"job(s) has a readable result{detail}".replace("\n", " "))


def combine_sweep(sweep_dir: str | Path, expected: Sequence[Sequence[str]] | None = None,
                  result_filename: str = RESULT_FILENAME, *, parse: ParseOverride
                  ) -> tuple[xr.Dataset, SweepReport]:
    """Combine the finished jobs of a sweep; return the dataset and a report of every job.

    Raises InputError if no job finished.
    """
    return combine_cells(survey_sweep(sweep_dir, expected, result_filename, parse=parse))


def _recorded_config(attrs: dict[str, Any]) -> Any:
    try:
        return yaml.safe_load(str(attrs.get("config", "")))
    except yaml.YAMLError:
        return None


def _same_draws(ref: xr.Dataset, ds: xr.Dataset) -> str:
    """'' if ds holds the same draws (by `draw_id`) as ref, else what differs."""
    if (DRAW_ID in ref.coords) != (DRAW_ID in ds.coords):
        return "one of the jobs has no draw identities (draw_id); rerun it"
    if DRAW_ID not in ref.coords:
        return ""
    a, b = ref[DRAW_ID].values.astype(str), ds[DRAW_ID].values.astype(str)
    if a.shape != b.shape or not np.array_equal(a, b):
        diff = int(np.sum(a != b)) if a.shape == b.shape else max(a.size, b.size)
        return (f"its draws differ from the first job's ({diff} of {a.size} draw_id differ: another "
                f"ensemble seed, size or draws file); cells would not be paired")
    return ""


def damaged(path: Path, ds: xr.Dataset) -> str:
    """'' if a job's result is intact, else why not: its content changed since the job finished
    (checksum beside it, sim.sweeps.resume), or NaN in its annual deaths or arrivals."""
    from sim.sweeps.resume import checksum_matches, checksum_path

    if checksum_path(path).is_file() and not checksum_matches(path):
        return "result file changed since its job finished (checksum differs): rerun the job"
    for name in ds.data_vars:
        if (str(name).startswith("deaths_") or name == "arrivals") and "year" in ds[name].dims \
                and ds[name].dtype.kind == "f":
            nan = np.isnan(ds[name].values)
            if nan.any():
                years = np.unique(np.asarray(ds["year"].values)[np.nonzero(nan)[ds[name].dims.index("year")]])
                return (f"damaged result: {name} is NaN in {int(nan.sum())} value(s) (years "
                        f"{int(years.min())}-{int(years.max())}): rerun the job")
    return ""


def combine_cells(survey: Survey) -> tuple[xr.Dataset, SweepReport]:
    """Lay the surveyed jobs' results on the grid of swept values (see `combine_sweep`)."""
    datasets: dict[tuple, xr.Dataset] = {}
    ref: xr.Dataset | None = None
    ensemble_swept = any(k.startswith("ensemble") for k in survey.keys)
    for idx, path in survey.results.items():
        rec = survey.records[idx]
        try:
            ds = open_result(path)
        except InputError as exc:
            rec.status, rec.reason = "failed", str(exc)
            continue
        why = (job_mismatch(rec.directory, rec.overrides, _recorded_config(ds.attrs), survey.parse)
               or damaged(path, ds))
        if why:
            rec.status, rec.reason = "failed", why
            continue
        if ref is None:
            ref = ds
        else:
            why = _same_coords(ref, ds) or ("" if ensemble_swept else _same_draws(ref, ds))
            if why:
                rec.status, rec.reason = "failed", f"cannot combine: {why}"
                continue
        datasets[idx] = ds
    if ref is None:
        raise no_result_error(survey)
    return (_stack(ref, survey.keys, survey.records, datasets, survey.sweep_dir),
            survey.report())


@dataclass
class _Slice:
    """One finished job of a split ensemble: its draws [first, end), result file, attrs, config."""

    first: int
    end: int
    path: Path
    attrs: dict[str, Any]
    config: dict[str, Any]
    record: JobRecord


def _read_slice(path: Path, record: JobRecord, parse: ParseOverride) -> _Slice:
    """A split-ensemble job's result, attrs only (InputError if unreadable or not chunked)."""
    from sim.sweeps.rerun import config_of

    try:
        with xr.open_dataset(path, engine=ENGINE, decode_times=False) as ds:
            attrs = dict(ds.attrs)
    except Exception as exc:  # h5py/h5netcdf raise many types for corrupt files
        raise InputError(f"result file {str(path)!r}: not a readable NetCDF file "
                         f"({type(exc).__name__})") from None
    cfg = config_of(xr.Dataset(attrs=attrs), str(path))
    why = job_mismatch(record.directory, record.overrides, cfg, parse)
    if why:
        raise InputError(why)
    if "draws_first" not in attrs or not isinstance(cfg.get("ensemble"), dict):
        raise InputError(f"result file {str(path)!r}: not a chunked ensemble result "
                         f"(no draws_first attribute)")
    whole = {**cfg, "ensemble": {**cfg["ensemble"], "chunk": None}}  # as the unsplit run's
    return _Slice(int(attrs["draws_first"]), int(attrs["draws_end"]), path, attrs, whole, record)


def concatenate_chunks(survey: Survey, output: str | Path) -> SweepReport:
    """Reassemble a split ensemble (only `ensemble.chunk` swept) along `draw` into `output`.

    The file equals what one run of the whole ensemble writes (same draws, same values; config
    with `ensemble.chunk` null and its hash).  It is written only if every slice finished, all
    share one config but for `ensemble.chunk`, and together they hold each draw once; missing or
    failed slices are in the report (nothing written), gaps or overlaps are an InputError.
    Memory is bounded by `ensemble.chunk_size` draws.
    """
    from sim.sweeps.chunked import concatenate
    from sim.sweeps.resume import CONFIG_HASH_ATTR, INPUTS_ATTR, config_hash, run_hash

    others = [k for k in survey.keys if k != CHUNK_KEY]
    if others:
        raise InputError(f"{CHUNK_KEY}: swept together with {', '.join(others)}; allowed: "
                         f"{CHUNK_KEY} as the only swept key (one split sweep per setting)")
    report = survey.report()
    slices: list[_Slice] = []
    for idx, path in survey.results.items():
        rec = survey.records[idx]
        try:
            slices.append(_read_slice(path, rec, survey.parse))
        except InputError as exc:
            rec.status, rec.reason = "failed", str(exc)
    slices.sort(key=lambda s: s.first)
    for other in slices[1:]:
        if config_hash(other.config) != config_hash(slices[0].config):
            other.record.status = "failed"
            other.record.reason = (f"config differs from that of {slices[0].record.directory} in "
                                   f"more than {CHUNK_KEY}; cannot join")
        elif other.attrs.get(INPUTS_ATTR) != slices[0].attrs.get(INPUTS_ATTR):
            other.record.status = "failed"
            other.record.reason = (f"input files (ensemble.file content) differ from those of "
                                   f"{slices[0].record.directory}; cannot join")
    if report.problems or not slices:
        report.combined = False
        report.notes.append(f"  nothing written: a split ensemble ({CHUNK_KEY}) is joined only "
                            f"when every slice has finished; rerun the failed or missing ones")
        return report
    whole = slices[0].config
    size = int(whole["ensemble"]["size"])
    edges = [0] + [e for s in slices for e in (s.first, s.end)] + [size]
    for end, start in zip(edges[::2], edges[1::2]):
        if end != start:
            what = "in no job" if start > end else "in more than one job"
            a, b = sorted((end, start))
            raise InputError(f"{CHUNK_KEY}: draws {a}..{b - 1} of {size} are {what} of "
                             f"{survey.sweep_dir}; allowed: slices k/K for every k = 0..K-1 of one K")
    stats = [json.loads(s.attrs["solver_stats"]) for s in slices]
    attrs = {**slices[0].attrs, "config": yaml.safe_dump(whole, sort_keys=False),
             CONFIG_HASH_ATTR: run_hash(whole, json.loads(slices[0].attrs.get(INPUTS_ATTR) or "{}")),
             "draws_first": 0, "draws_end": size,
             "solver_stats": json.dumps({
                 "chunk_nfev": [n for st in stats for n in st["chunk_nfev"]],
                 "wall_seconds": round(sum(st["wall_seconds"] for st in stats), 3)}),
             "assembled_from": json.dumps([str(s.record.directory.relative_to(survey.sweep_dir))
                                           for s in slices])}
    report.output = concatenate([s.path for s in slices], output, attrs,
                                block=int(whole["ensemble"]["chunk_size"]))
    report.notes.append(f"  draws 0..{size - 1} joined along draw from {len(slices)} slice(s)")
    return report


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
    dims = tuple(dimension_name(k) for k in keys)
    positions = {idx: tuple(_position(levels[i], v) for i, v in enumerate(idx)) for idx in records}

    data_vars = {}
    for name, var in ref.data_vars.items():
        full = np.full(shape + var.shape, np.nan, dtype=float)
        for idx, ds in datasets.items():
            full[positions[idx]] = ds[name].values
        data_vars[name] = xr.Variable(dims + var.dims, full, attrs=dict(var.attrs))
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
    if DRAW_ID in ref.coords:  # one draw_id per draw, or per cell and draw if the cells differ
        ids = {idx: ds[DRAW_ID].values.astype(str) for idx, ds in datasets.items()
               if DRAW_ID in ds.coords}
        first = ids[next(iter(ids))] if ids else None
        if first is not None and any(v.shape != first.shape or not np.array_equal(v, first)
                                     for v in ids.values()):
            grid = np.full(shape + first.shape, "", dtype=object)
            for idx, v in ids.items():
                grid[positions[idx]] = v
            coords[DRAW_ID] = xr.Variable(dims + ref[DRAW_ID].dims, grid,
                                          attrs=dict(ref[DRAW_ID].attrs))
    for key, dim, values in zip(keys, dims, levels):
        coords[dim] = xr.Variable((dim,), _coordinate(values),
                                  attrs={"long_name": f"swept override {key}", "override": key})
    ds = xr.Dataset(data_vars, coords=coords)
    n_ok = sum(1 for r in records.values() if r.status == "ok")
    ds.attrs = {
        "title": "fentsim sweep: job results combined over the swept overrides",
        "Conventions": "CF-1.11",
        "sweep_dir": str(sweep_dir),
        "sweep_keys": json.dumps(keys),
        "sweep_dims": json.dumps(dict(zip(dims, keys))),
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
