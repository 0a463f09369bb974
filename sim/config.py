"""Turn a plain configuration mapping (as Hydra composes it) into model objects, without Hydra.

Top-level sections: `params` (overrides of parameter defaults), `levers` (interventions),
`solver` (time window and tolerances), `ensemble` (which parameter draws), `scenario`
(name and description), `output` (file name and summary years).  Unknown keys are rejected, and
every lever intervention must start inside the simulated window [start_year, end_year + 1].

Values are checked before anything is computed: years are whole years (the window runs from 1 Jan
`solver.start_year` to 31 Dec `solver.end_year`), booleans are not numbers, every lever field is
checked whether or not an intervention is set (`ramp` at least one day), the output step is at
least one day, and `check_resources` refuses a run whose estimated memory exceeds the budget
(`FENTSIM_MAX_MEMORY_MB`, default half the machine's memory) or whose result file would not fit
on the disk.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pydantic import Field, create_model, field_validator, model_validator

from sim.errors import InputError, reject_unknown_keys
from sim.schema import Integer, Number, Section, validate
from sim.funding.plan import FUNDING_KEYS, FundingPlan, funding_variables
from sim.model.levers import DAY_YR, LEVER_SPECS, MIN_RAMP_YR, LeverSet
from sim.model.parameters import PRIOR_ROLES, ModelParameters
from sim.engine.solver import SolverSettings
from sim.model.outputs import values_per_draw
from sim.model.state import DIM_SIZES

SECTIONS = ("params", "levers", "solver", "ensemble", "scenario", "output", "experiment",
            "targets", "calibration", "sweep", "compare", "funding", "costs")
MIN_OUTPUT_STEP_YR = DAY_YR   # daily outputs at most
END_YEAR_RANGE = (2011, 2100)
MEMORY_ENV = "FENTSIM_MAX_MEMORY_MB"
# Estimated peak memory per draw (float64 values), measured with the model's second version (six
# supply channels): a posterior run of 100 and 700 draws, monthly outputs 2010-2035, peaks about
# 161 kB a draw higher for the larger (integration, dataset building), i.e. about 52 values per
# draw and output time plus 120 per calendar year; rounded up.  (The result file's size is not
# measured but derived from the declared outputs, sim/model/outputs.py.)
RUN_VALUES_PER_TIME, RUN_VALUES_PER_YEAR = 56, 120
FILE_OVERHEAD_BYTES = 256 * 1024


@dataclass(frozen=True, eq=False)
class RunConfig:
    """Validated objects for one run."""

    params: ModelParameters
    levers: LeverSet
    solver: SolverSettings
    ensemble: Mapping[str, Any]
    output: Mapping[str, Any]
    funding: FundingPlan | None = None   # None: built without a funding section (no spending)

    def draws_simulator(self, ensemble: Any, config: Mapping[str, Any] | None = None
                        ) -> Callable[[int, int], xr.Dataset]:
        """(a, b) -> the result of draws [a, b) of `ensemble` (a sim.calibrate.ensemble.Ensemble):
        the funding bought per draw (sim/funding/plan.py; unit costs of those draws in the whole
        ensemble), then the model; the result carries the funding variables (zero spending when
        nothing is funded).  Chunked runs call it chunk by chunk."""
        from sim.results.run import simulate

        plan = self.funding or FundingPlan.from_config(None, None)

        def run_draws(a: int, b: int) -> xr.Dataset:
            params = ensemble.params_for(a, b)
            levers, record = plan.buy(params, self.levers, self.solver, seed=ensemble.seed or 0,
                                      sample=ensemble.seed is not None, first=a)
            ds = simulate(params, levers, self.solver, config=dict(config) if config else None,
                          seed=ensemble.seed)
            return ds.merge(funding_variables(record, ds["year"].values))
        return run_draws

    def simulate(self, ensemble: Any, config: Mapping[str, Any] | None = None) -> xr.Dataset:
        """Run this job's draws of `ensemble` in one batch (see `draws_simulator`)."""
        return self.draws_simulator(ensemble, config)(*ensemble.draws)


def section(cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A section of the config as a dict ({} if absent); a non-mapping is an InputError."""
    value = cfg.get(name) or {}
    if not isinstance(value, Mapping):
        raise InputError(f"{name}: value {value!r} not allowed; allowed: a mapping of keys to values")
    return dict(value)


def check_lever_window(levers: LeverSet, solver: SolverSettings) -> None:
    """Every intervention starts inside the simulated window [t_start, t_end] (yr)."""
    for name, lever in levers.levers.items():
        if lever.start is None:
            continue
        start = np.asarray(lever.start, dtype=float)
        bad = (start < solver.t_start) | (start > solver.t_end)
        if np.any(bad):
            raise InputError(f"levers.{name}.start: value {start[bad].reshape(-1)[0]:g} outside the "
                             f"simulated window [{solver.t_start:g}, {solver.t_end:g}] yr "
                             f"(solver.end_year {solver.end_year} + 1)")


class OutputSection(Section):
    """The `output` section: the result file's name and the years of the printed summary."""

    filename: str = Field("result.nc", description="a plain file name ending in .nc")
    summary_years: list[Integer] = Field(default_factory=list,
                                         description="a list of integer years, e.g. [2017, 2020]")

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not name.endswith(".nc") or "/" in name or name.startswith("."):
            raise InputError(f"output.filename: value {name!r} must be a plain file name ending in .nc")
        return name


OUTPUT_KEYS = tuple(OutputSection.model_fields)


def check_output(output: Mapping[str, Any]) -> None:
    """`output` has only known keys, `filename` is a plain *.nc name, `summary_years` integers
    (declared by `OutputSection`)."""
    validate(OutputSection, "output", output)


def _per_draw(allowed_range: str, ok: Callable[[float], bool]) -> Any:
    """A field holding a number or a list of numbers (one per draw) for which `ok` holds."""
    def check(value: Any) -> Any:
        items = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in items):
            raise ValueError("not_a_number")
        if not all(math.isfinite(v) and ok(float(v)) for v in items):
            raise ValueError(allowed_range)
        return value
    return check


_ANY_NUMBER = _per_draw("a finite number or null", lambda v: True)
_RAMP_ALLOWED = f"a number of years >= {MIN_RAMP_YR:.4g} (one day)"


class LeverEntry(Section):
    """The fields of one lever in the `levers` section, checked whether or not an intervention is
    set: start, level and end numbers (or lists over draws) or null, ramp at least one day (ramp
    0 or 1e-300 alike are steps the solver cannot see).  What the values mean, and whether they
    fit the lever, is `sim.model.levers.LeverSet.from_mapping`'s to say."""

    model_config = Section.model_config | {"strict": False}
    start: Any = Field(None, description="a number (year) or null")
    ramp: Any = Field(1.0, description=_RAMP_ALLOWED)
    level: Any = Field(None, description="a number or null")
    mode: Any = Field("set", description="set, scale")
    end: Any = Field(None, description="a number (year) or null")

    @field_validator("start", "level", "end")
    @classmethod
    def _numbers_or_null(cls, value: Any) -> Any:
        return value if value is None else _ANY_NUMBER(value)

    @field_validator("ramp")
    @classmethod
    def _ramp(cls, value: Any) -> Any:
        return _per_draw(_RAMP_ALLOWED, lambda v: v >= MIN_RAMP_YR)(value)


LEVER_KEYS = tuple(LeverEntry.model_fields)


def check_lever_entries(levers: Mapping[str, Any]) -> None:
    """Every field of every known lever's entry (`LeverEntry`); unknown levers are left to
    `LeverSet.from_mapping`."""
    for name, entry in levers.items():
        if name in LEVER_SPECS and isinstance(entry, Mapping):
            validate(LeverEntry, f"levers.{name}", entry)


_SOLVER_TYPES = {"int": Number, "float": Number, "str": str}   # years may be written 2030.0
_SOLVER_ALLOWED = {"start_year": "2010 (the model's initial state is for 1 Jan 2010)",
                   "end_year": f"a whole year in [{END_YEAR_RANGE[0]}, {END_YEAR_RANGE[1]}] (the run "
                               f"ends 31 Dec)",
                   "output_step": f"a number of years in [{MIN_OUTPUT_STEP_YR:.4g}, 1]",
                   "rtol": "a number in (0, 1)", "atol_mass": "a number in (0, 1) kg",
                   "atol_people": "a number in (0, 1) persons"}


class _SolverChecks(Section):
    """Checks of the `solver` section beyond types (its fields are `SolverSettings`')."""

    @model_validator(mode="after")
    def _whole_years_and_daily_outputs(self) -> _SolverChecks:
        for key in ("start_year", "end_year"):
            value = getattr(self, key, None)
            if isinstance(value, float) and not value.is_integer():
                raise InputError(f"solver.{key}: value {value!r} is not a whole year; allowed: "
                                 f"{_SOLVER_ALLOWED[key]}")
        step = getattr(self, "output_step", None)
        if step is not None and 0 < step < MIN_OUTPUT_STEP_YR:
            raise InputError(f"solver.output_step: value {step:g} outside allowed range "
                             f"[{MIN_OUTPUT_STEP_YR:.4g}, 1] yr (at most daily outputs)")
        return self


# The `solver` section, declared by the fields of SolverSettings (sim/engine/solver.py): a number
# where it holds a number, known keys only; ranges are SolverSettings' own checks.
SolverSection = create_model(
    "SolverSection", __base__=_SolverChecks,
    **{f.name: (_SOLVER_TYPES[str(f.type)] | None,
                Field(None, description=_SOLVER_ALLOWED.get(f.name, f"a {str(f.type)}")))
       for f in dataclasses.fields(SolverSettings) if f.init})


def check_solver_values(solver_cfg: Mapping[str, Any]) -> None:
    """Numbers where numbers belong; whole years; an output step of at least one day."""
    validate(SolverSection, "solver", solver_cfg)


# Every section a composed config may hold (the values are each section's own business).
RunSections = create_model("RunSections", __base__=Section,
                           **{name: (Any, None) for name in SECTIONS})


def build_run(cfg: Mapping[str, Any]) -> RunConfig:
    """Validate a composed config and build parameters, levers and solver settings."""
    validate(RunSections, "config", {k: v for k, v in cfg.items() if k != "hydra"})
    params = ModelParameters.from_mapping(cfg.get("params"))
    levers_cfg = section(cfg, "levers")
    check_lever_entries(levers_cfg)
    levers = LeverSet.from_mapping(levers_cfg)
    solver_cfg = section(cfg, "solver")
    check_solver_values(solver_cfg)
    for key in ("start_year", "end_year"):  # 2030.0 is the year 2030
        if isinstance(solver_cfg.get(key), float):
            solver_cfg[key] = int(solver_cfg[key])
    try:
        solver = SolverSettings.from_mapping(solver_cfg)
    except TypeError as exc:
        raise InputError(f"solver: {exc}") from None
    check_lever_window(levers, solver)
    output = section(cfg, "output")
    check_output(output)
    funding = FundingPlan.from_config(section(cfg, "funding"), cfg.get("costs"), levers_cfg)
    funding.check_window(solver)
    funding.note_unspent(str((cfg.get("scenario") or {}).get("name", "")))
    return RunConfig(params, levers, solver, section(cfg, "ensemble"), output, funding)


def allowed_keys(path: str) -> list[str] | None:
    """Keys allowed under a dotted config path of a run ('' = top level); None if not known here."""
    from sim.calibrate.ensemble import ENSEMBLE_KEYS
    from sim.model.scenarios import SCENARIO_KEYS

    parts = path.split(".") if path else []
    known: dict[tuple[str, ...], Any] = {
        (): SECTIONS, ("params",): ModelParameters.names(), ("levers",): list(LEVER_SPECS),
        ("solver",): [f.name for f in dataclasses.fields(SolverSettings)],
        ("ensemble",): ENSEMBLE_KEYS, ("scenario",): SCENARIO_KEYS, ("output",): OUTPUT_KEYS,
        ("funding",): FUNDING_KEYS, ("funding", "split"): list(LEVER_SPECS),
    }
    if len(parts) == 2 and parts[0] == "levers" and parts[1] in LEVER_SPECS:
        return list(LEVER_KEYS)
    found = known.get(tuple(parts))
    return list(found) if found is not None else None


def unknown_key_error(full_key: str) -> InputError:
    """The one-line error for a dotted key that is not in the config (e.g. `params.foo`)."""
    parent, _, key = full_key.rpartition(".")
    parts = full_key.split(".")
    if parts[0] == "hydra":
        return InputError(f"{full_key}: unknown key of Hydra's own config (see `fentsim --cfg hydra`)")
    if parts[:2] == ["funding", "split"] and len(parts) == 3 and parts[2] in LEVER_SPECS:
        return InputError(f"{full_key}: {parts[2]} has no share in this scenario's funding.split "
                          f"(in a sweep: in one of its scenarios, e.g. baseline); allowed: "
                          f"++{full_key}=SHARE to add it (shares sum to 1; it then applies to "
                          f"every scenario of a sweep), or a scenario in dollars that funds it")
    # the first unknown segment decides the message
    for i in range(len(parts)):
        allowed = allowed_keys(".".join(parts[:i]))
        if allowed is not None and parts[i] not in allowed:
            try:
                reject_unknown_keys(".".join(parts[:i]) or "config", [parts[i]], allowed)
            except InputError as exc:
                return exc
    return InputError(f"{full_key}: unknown key (not in the composed config under {parent or 'the top level'!r}; "
                      f"key {key!r})")


# --- resources: memory and disk, estimated before anything is allocated -------------------------

def memory_limit_bytes() -> int:
    """The memory budget of one run: `FENTSIM_MAX_MEMORY_MB` (MB), default half the machine's memory."""
    text = os.environ.get(MEMORY_ENV)
    if text:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"{MEMORY_ENV}: value {text!r} not allowed; allowed: a positive "
                             f"number of megabytes")
        return int(value * 1e6)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)
    except (ValueError, OSError, AttributeError):
        return 4_000_000_000


def _size(n_bytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.1f} {unit}"
    return f"{n_bytes:.0f} B"


def run_bytes_per_draw(solver: SolverSettings) -> int:
    """Estimated peak memory of one draw of a batch (integration and the result dataset)."""
    n_times, n_years = solver.output_times.size, solver.years.size
    return 8 * (RUN_VALUES_PER_TIME * n_times + RUN_VALUES_PER_YEAR * n_years)


def file_bytes_per_draw(solver: SolverSettings) -> int:
    """Estimated bytes of one draw in a result file."""
    n_times, n_years = solver.output_times.size, solver.years.size
    n_params = len(ModelParameters.names())
    return 8 * (values_per_draw("time", DIM_SIZES) * n_times
                + values_per_draw("year", DIM_SIZES) * n_years
                + values_per_draw("parameter", DIM_SIZES) * n_params
                + 3 * len(LEVER_SPECS) + 4)  # funding variables by lever, the draw's identity


@dataclass(frozen=True)
class DrawPlan:
    """How many draws a job holds: in the file, per solver batch, in the whole ensemble."""

    job: int
    batch: int
    size: int
    bootstrap: bool
    priors: int = 0   # parameters drawn from their priors for every draw of the ensemble

    @property
    def whole_bytes(self) -> int:
        """Arrays over the whole ensemble built up front: resampled rows, prior draws."""
        return 8 * self.size * ((1 if self.bootstrap else 0) + self.priors)


def plan_draws(params: ModelParameters, ensemble: Mapping[str, Any]) -> DrawPlan | None:
    """Draw counts of a job from the raw `ensemble` config, without building the draws (None if
    the config is malformed: `sim.calibrate.ensemble.ensemble_of` then names the problem)."""
    from sim.calibrate.ensemble import EnsembleSection, chunk_range

    try:
        opts = validate(EnsembleSection, "ensemble", ensemble)
    except InputError:
        return None
    if opts.name == "none":
        return DrawPlan(params.n_draws, params.n_draws, params.n_draws, False)
    size, chunk_size = opts.size, opts.chunk_size
    bootstrap = opts.name == "posterior_bootstrap"
    priors = (sum(ModelParameters.metadata(n).get("role") in PRIOR_ROLES
                  for n in ModelParameters.names()) if opts.sample_priors else 0)
    if chunk_size is None:
        return DrawPlan(size, size, size, bootstrap, priors)
    a, b = (0, size) if opts.chunk is None else chunk_range(opts.chunk, size, chunk_size)
    return DrawPlan(b - a, min(chunk_size, b - a), size, bootstrap, priors)


def check_memory(needed: int, what: str, allowed: str) -> None:
    """Refuse, with one line naming `what` and the limit, if `needed` bytes exceed the budget."""
    limit = memory_limit_bytes()
    if needed > limit:
        raise InputError(f"{what} needs about {_size(needed)} of memory, above the limit of "
                         f"{_size(limit)} ({MEMORY_ENV}); allowed: {allowed}")


def check_disk(needed: int, folder: Path, what: str, allowed: str) -> None:
    """Refuse if a file of about `needed` bytes would not fit in the free space at `folder`."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return  # cannot tell: the write itself reports a full disk
    if needed > free:
        raise InputError(f"{what} would write about {_size(needed)} to {str(folder)!r}, where "
                         f"{_size(free)} is free; allowed: {allowed}")


def check_resources(run: RunConfig, out_dir: str | os.PathLike | None = None) -> None:
    """Refuse a run whose estimated memory exceeds the budget or whose result file would not fit
    on the disk of `out_dir`, before anything is allocated (one line naming the settings)."""
    plan = plan_draws(run.params, run.ensemble)
    if plan is None:
        return
    per_draw = run_bytes_per_draw(run.solver)
    steps = run.solver.output_times.size
    needed = plan.batch * per_draw + plan.whole_bytes
    what = (f"solver.output_step {run.solver.output_step:g} yr ({steps:,} output times) with "
            f"{plan.batch:,} draw(s) per batch")
    hint = ("a coarser solver.output_step, or fewer draws per batch "
            f"(ensemble.chunk_size, about {per_draw:,} bytes a draw)")
    if plan.whole_bytes > memory_limit_bytes() // 2:
        what, hint = (f"ensemble.size {plan.size:,} (the resampled rows and prior draws alone)",
                      "a smaller ensemble.size")
    check_memory(needed, what, hint)
    if out_dir is not None:
        file_bytes = plan.job * file_bytes_per_draw(run.solver) + FILE_OVERHEAD_BYTES
        check_disk(file_bytes, Path(out_dir),
                   f"ensemble.size {plan.size:,} (this job: {plan.job:,} draw(s)) at "
                   f"solver.output_step {run.solver.output_step:g} yr",
                   "fewer draws, a coarser solver.output_step, or a folder with more space")
