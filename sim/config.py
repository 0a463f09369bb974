"""Turn a plain configuration mapping (as Hydra composes it) into model objects, without Hydra.

Top-level sections: `params` (overrides of parameter defaults), `levers` (interventions),
`solver` (time window and tolerances), `ensemble` (which parameter draws), `scenario`
(name and description), `output` (file name and summary years).  Unknown keys are rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.errors import InputError, reject_unknown_keys
from sim.levers import LeverSet
from sim.parameters import ModelParameters
from sim.solver import SolverSettings

SECTIONS = ("params", "levers", "solver", "ensemble", "scenario", "output", "experiment",
            "targets", "calibration", "sweep", "compare")


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


def build_run(cfg: Mapping[str, Any]) -> RunConfig:
    """Validate a composed config and build parameters, levers and solver settings."""
    reject_unknown_keys("config", [k for k in cfg if k != "hydra"], SECTIONS)
    params = ModelParameters.from_mapping(section(cfg, "params"))
    levers = LeverSet.from_mapping(section(cfg, "levers"))
    try:
        solver = SolverSettings.from_mapping(section(cfg, "solver"))
    except TypeError as exc:
        raise InputError(f"solver: {exc}") from None
    return RunConfig(params, levers, solver, section(cfg, "ensemble"), section(cfg, "output"))
