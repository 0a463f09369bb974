"""Turn a plain configuration mapping (as Hydra composes it) into model objects, without Hydra.

Top-level sections: `params` (overrides of parameter defaults), `levers` (interventions),
`solver` (time window and tolerances), `ensemble` (which parameter draws), `scenario`
(name and description), `output` (file name and summary years).  Unknown keys are rejected, and
every lever intervention must start inside the simulated window [start_year, end_year + 1].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.errors import InputError, reject_unknown_keys
from sim.model.levers import LEVER_SPECS, LeverSet
from sim.model.parameters import ModelParameters
from sim.engine.solver import SolverSettings

SECTIONS = ("params", "levers", "solver", "ensemble", "scenario", "output", "experiment",
            "targets", "calibration", "sweep", "compare")
LEVER_KEYS = ("start", "ramp", "level", "mode")
OUTPUT_KEYS = ("filename", "summary_years")


@dataclass(frozen=True, eq=False)
class RunConfig:
    """Validated objects for one run."""

    params: ModelParameters
    levers: LeverSet
    solver: SolverSettings
    ensemble: Mapping[str, Any]
    output: Mapping[str, Any]


def section(cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A section of the config as a dict ({} if absent); a non-mapping is an InputError."""
    value = cfg.get(name) or {}
    if not isinstance(value, Mapping):
        raise InputError(f"{name}: expected a mapping of keys to values, got {value!r}")
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


def check_output(output: Mapping[str, Any]) -> None:
    """`output` has only known keys, `filename` is a plain *.nc name, `summary_years` integers."""
    reject_unknown_keys("output", output, OUTPUT_KEYS)
    name = str(output.get("filename", "result.nc"))
    if not name.endswith(".nc") or "/" in name or name.startswith("."):
        raise InputError(f"output.filename: value {name!r} must be a plain file name ending in .nc")
    years = output.get("summary_years", [])
    if not isinstance(years, (list, tuple)) or not all(
            isinstance(y, int) and not isinstance(y, bool) for y in years):
        raise InputError(f"output.summary_years: value {years!r} not allowed; allowed: a list of "
                         f"integer years, e.g. [2017, 2020]")


def build_run(cfg: Mapping[str, Any]) -> RunConfig:
    """Validate a composed config and build parameters, levers and solver settings."""
    reject_unknown_keys("config", [k for k in cfg if k != "hydra"], SECTIONS)
    params = ModelParameters.from_mapping(section(cfg, "params"))
    levers = LeverSet.from_mapping(section(cfg, "levers"))
    solver_cfg = section(cfg, "solver")
    for key, value in solver_cfg.items():
        if key not in ("method", "engine") and (isinstance(value, bool)
                                                or not isinstance(value, (int, float))):
            raise InputError(f"solver.{key}: value {value!r} is not a number")
    try:
        solver = SolverSettings.from_mapping(solver_cfg)
    except TypeError as exc:
        raise InputError(f"solver: {exc}") from None
    check_lever_window(levers, solver)
    output = section(cfg, "output")
    check_output(output)
    return RunConfig(params, levers, solver, section(cfg, "ensemble"), output)


def allowed_keys(path: str) -> list[str] | None:
    """Keys allowed under a dotted config path of a run ('' = top level); None if not known here."""
    from sim.calibrate.ensemble import ENSEMBLE_KEYS
    from sim.model.scenarios import SCENARIO_KEYS

    parts = path.split(".") if path else []
    known: dict[tuple[str, ...], Any] = {
        (): SECTIONS, ("params",): ModelParameters.names(), ("levers",): list(LEVER_SPECS),
        ("solver",): [f.name for f in dataclasses.fields(SolverSettings)],
        ("ensemble",): ENSEMBLE_KEYS, ("scenario",): SCENARIO_KEYS, ("output",): OUTPUT_KEYS,
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
