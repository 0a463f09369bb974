"""fentsim: a system-dynamics (stock-and-flow ODE) model of the US illicit fentanyl epidemic.

The package is layered; imports only run down this list:
`sim.errors`, `sim.paths`, `sim.schema` <- `sim.model` <- `sim.engine` <- `sim.results` <- `sim.funding`
<- `sim.calibrate` <- `sim.config` <- `sim.sweeps` <- `sim.study` <- `sim.hydra_compose` (Hydra's
Compose API) <- `sim.api` <- `sim.cli`.
The names below are the public Python entry points, imported on first use so that importing a
low layer (say `sim.model.flows`) does not pull in the layers above it.  `sim.run`, `sim.sweep`
and the loaders (`sim.api`) run the calibrated model exactly as the `fentsim` command does;
`sim.simulate` is the bare model (literature parameter defaults unless given others).
(`sim.api.config` gives the composed config; `sim.config` is the module that validates it.)

Public API (`help(sim.NAME)` for each; `help(sim)` lists them all in full):

- `sim.run(scenario=..., overrides=...)`: one run as `fentsim` does it -> xarray.Dataset
- `sim.sweep(grid)`: every combination of a grid of overrides, as `fentsim -m` -> xarray.Dataset
- `sim.compare(a, b, window=(2020, 2030))`: deaths averted by A relative to B, paired draws
- `sim.simulate(params, levers, settings)`: the bare model (literature defaults unless given)
- `sim.load_scenario(name)`, `sim.load_params(name)`, `sim.load_posterior()`: the packaged inputs
- `sim.open_result(path)`: a result file (result.nc, sweep.nc) as a Dataset
- `sim.ModelParameters`, `sim.LeverSet`, `sim.SolverSettings`: parameters (with units and
  priors), levers (history and interventions) and solver settings
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "ModelParameters": "sim.model.parameters",
    "LeverSet": "sim.model.levers",
    "SolverSettings": "sim.engine.solver",
    "simulate": "sim.results.run",
    "run": "sim.api",
    "sweep": "sim.api",
    "compare": "sim.api",
    "load_scenario": "sim.api",
    "load_params": "sim.api",
    "load_posterior": "sim.api",
    "open_result": "sim.results.io",
}

__all__ = sorted(_PUBLIC)


def __dir__() -> list[str]:
    """The module's names and the public API (so `help(sim)` and tab completion show it)."""
    return sorted({*globals(), *_PUBLIC})


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
