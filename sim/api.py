"""The Python API: run the calibrated model as `fentsim` does, from Python.

    import sim
    ds = sim.run()                                             # = `fentsim` (calibrated baseline)
    ds = sim.run("china_crackdown", ensemble="posterior", size=100)
    ds = sim.run("naloxone_up", intensity=2, solver={"end_year": 2030},
                 overrides=["params.relapse_rate=0.4"])      # `fentsim` override syntax
    grid = sim.sweep({"scenario": ["baseline", "naloxone_up"], "scenario.intensity": [1, 2]})
    grid = sim.sweep(experiment="supply_vs_demand")           # the experiment's own grid
    cmp = sim.compare(grid, grid.sel(scenario="baseline"), window=(2020, 2030))
    sim.load_scenario("both"), sim.load_params("literature"), sim.load_posterior(size=50)

Every function composes the same YAML configs as the console commands, with Hydra's own Compose
API (`sim.hydra_compose`: experiment folders and FENTSIM_EXPERIMENTS included; callable again
and from inside a running Hydra app), validates them the same way
(`prepare_run`, which `fentsim` uses too) and returns the dataset `fentsim` writes to result.nc:
same values, same `config` attribute and hash, and the scalar coordinates `scenario` and
`scenario_intensity` (plus every swept key, dots turned into underscores) that let
`xr.combine_nested` join results.  Mistakes raise `sim.errors.InputError` (one line naming the
field, the value and what is allowed).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from sim.calibrate.ensemble import DRAW_ID_ATTRS, Ensemble, ensemble_of, with_posterior_of
from sim.config import RunConfig, build_run, check_resources
from sim.errors import InputError
from sim.hydra_compose import compose, experiment_kind, options, sweep_values, sweeper_params
from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters
from sim.model.scenarios import apply_intensity
from sim.sweeps.aggregate import dimension_name
from sim.sweeps.compare import DEFAULT_VARIABLE, DEFAULT_WINDOW
from sim.sweeps.compare import compare as _compare
from sim.sweeps.resume import identity_attrs

__all__ = ["compare", "config", "load_params", "load_posterior", "load_scenario", "options",
           "prepare_run", "run", "run_config", "sweep"]

Overrides = Sequence[str] | Mapping[str, Any]


# --- configuration ------------------------------------------------------------------------------

def _flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [kv for k, v in value.items() for kv in _flatten(f"{prefix}.{k}", v)]
    return [(prefix, value)]


def config(scenario: str | None = None, *, params: str | Mapping[str, Any] | None = None,
           ensemble: str | int | None = None, size: int | None = None, seed: int | None = None,
           intensity: float | None = None, experiment: str | None = None,
           overrides: Overrides = (), **sections: Mapping[str, Any]) -> dict[str, Any]:
    """The plain config `fentsim` composes for these choices (what `run` runs).

    scenario, params (a name, or a mapping of parameter values on top of the calibrated ones),
    ensemble ('none', 'posterior', 'large', or an int: that many posterior draws), size and seed
    (of the ensemble), intensity (scenario.intensity), experiment (an experiment file);
    `overrides`: `fentsim` overrides ('key=value' strings) or a mapping {dotted key: value};
    `**sections`: nested values by section, e.g. solver={"end_year": 2030},
    levers={"naloxone_kits": {"start": 2020, "level": 2}}.  Unknown keys are InputErrors.
    """
    texts: list[str] = []
    values: list[tuple[str, Any]] = []
    if experiment is not None:
        texts.append(f"experiment={experiment}")
    if scenario is not None:
        texts.append(f"scenario={scenario}")
    if isinstance(params, str):
        texts.append(f"params={params}")
    elif params is not None:
        values += _flatten("params", params)
    if isinstance(ensemble, bool):
        raise InputError(f"ensemble: value {ensemble!r} not allowed; allowed: "
                         f"{', '.join(options('ensemble'))} or a number of posterior draws")
    if isinstance(ensemble, int):
        texts.append("ensemble=posterior")
        values.append(("ensemble.size", ensemble))
    elif ensemble is not None:
        texts.append(f"ensemble={ensemble}")
    if isinstance(overrides, Mapping):
        values += list(overrides.items())
    elif isinstance(overrides, str):
        texts.append(overrides)
    else:
        texts += [str(o) for o in overrides]
    for name, value in sections.items():
        values += _flatten(name, value)
    for key, value in (("ensemble.size", size), ("ensemble.seed", seed),
                       ("scenario.intensity", intensity)):
        if value is not None:
            values.append((key, value))
    cfg, choices = compose("config", texts, values)
    return with_posterior_of(cfg, choices.get("params"))


def prepare_run(cfg: Mapping[str, Any], out_dir: str | os.PathLike | None = None
                ) -> tuple[dict[str, Any], RunConfig, Ensemble]:
    """Validate a composed run config: scenario intensity applied, run objects and draws built.

    Every user input is checked here, before anything is computed or written (`fentsim` too),
    including the estimated memory of the run and, with `out_dir`, the size of its result file
    against the free space there (`sim.config.check_resources`), before the draws are built.
    """
    cfg = apply_intensity(cfg)
    run_cfg = build_run(cfg)
    check_resources(run_cfg, out_dir)
    return cfg, run_cfg, ensemble_of(run_cfg.params, run_cfg.ensemble)


def run_labels(cfg: Mapping[str, Any], swept: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Scalar coordinates of a result: its scenario, its intensity and every swept key's value."""
    scenario = cfg.get("scenario") or {}
    labels: dict[str, Any] = {"scenario": str(scenario.get("name", "")),
                              "scenario_intensity": float(scenario.get("intensity", 1.0) or 1.0)}
    for key, value in (swept or {}).items():
        if isinstance(value, (str, int, float, bool, np.generic)):
            labels[dimension_name(key)] = value
    return labels


def history_line(command: str) -> str:
    """One line of the CF `history` attribute: UTC time and the command that made the file."""
    return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {command}"


def label(ds: xr.Dataset, cfg: Mapping[str, Any], swept: Mapping[str, Any] | None,
          command: str, ensemble: Ensemble | None = None) -> xr.Dataset:
    """`ds` with its scalar coordinates (`run_labels`), identity hashes (config and, with
    `ensemble`, the content of the files it read: `config_sha256`, `input_sha256`), `history`
    and, for a dataset with draws, each draw's identity `draw_id` (unless already there)."""
    labels = run_labels(cfg, swept)
    ds = ds.assign_coords({k: ((), v) for k, v in labels.items()})
    for name in labels:
        ds[name].attrs.update(long_name=("scenario (configs/scenario)" if name == "scenario" else
                                         f"value of the override {name}"))
    ds.attrs.update(identity_attrs(cfg, ensemble.inputs if ensemble is not None else None))
    if ensemble is not None and "draw" in ds.dims and "draw_id" not in ds.coords:
        ds = ds.assign_coords(draw_id=("draw", ensemble.ids(), DRAW_ID_ATTRS))
    ds.attrs["history"] = history_line(command)
    return ds


def run_config(cfg: Mapping[str, Any], *, swept: Mapping[str, Any] | None = None,
               command: str = "sim.api.run") -> xr.Dataset:
    """Run a composed config (see `config`) and return the result dataset, as `fentsim` writes it."""
    cfg, run_cfg, ens = prepare_run(cfg)
    if ens.chunk_size is None:
        ds = run_cfg.simulate(ens, cfg)
    else:
        from sim.sweeps.chunked import simulate_chunked

        ds = simulate_chunked(ens.params_for, ens.draws, ens.chunk_size, run_cfg.levers,
                              run_cfg.solver, config=cfg, seed=ens.seed, ids_for=ens.ids,
                              run_draws=run_cfg.draws_simulator(ens, cfg))
    return label(ds, cfg, swept, command, ens)


def _command(texts: Sequence[str]) -> str:
    return "sim.api.run(" + ", ".join(repr(t) for t in texts) + ")"


def run(scenario: str | None = None, *, params: str | Mapping[str, Any] | None = None,
        ensemble: str | int | None = None, size: int | None = None, seed: int | None = None,
        intensity: float | None = None, experiment: str | None = None,
        overrides: Overrides = (), **sections: Mapping[str, Any]) -> xr.Dataset:
    """Run the model as `fentsim` does (calibrated baseline by default); see `config` for the
    arguments.  `sim.run()` is `fentsim`; `sim.run("china_crackdown", ensemble=100)` is
    `fentsim scenario=china_crackdown ensemble=posterior ensemble.size=100`."""
    if experiment is not None and experiment_kind(experiment) != "run":
        kind = experiment_kind(experiment)
        allowed = "sim.sweep(experiment=...)" if kind == "sweep" else "fentsim-study"
        raise InputError(f"experiment: value {experiment!r} is a {kind}, not a single run; "
                         f"allowed: {allowed}")
    cfg = config(scenario, params=params, ensemble=ensemble, size=size, seed=seed,
                 intensity=intensity, experiment=experiment, overrides=overrides, **sections)
    return run_config(cfg, command=f"sim.api.run(scenario={cfg['scenario'].get('name')!r})")


# --- sweeps and comparisons ---------------------------------------------------------------------

def _grid_of_experiment(experiment: str, texts: Sequence[str]) -> dict[str, list[Any]]:
    params = sweeper_params("config", [f"experiment={experiment}", *texts])
    if not params:
        raise InputError(f"experiment: value {experiment!r} has no sweep (hydra.sweeper.params); "
                         f"allowed: {', '.join(x for x in options('experiment') if experiment_kind(x) == 'sweep')}")
    return {k: sweep_values(k, vals) for k, vals in params.items()}


def sweep(grid: Mapping[str, Sequence[Any]] | None = None, *, experiment: str | None = None,
          **kwargs: Any) -> xr.Dataset:
    """Run every combination of `grid` ({override key: values}; or the experiment's own grid)
    and join the results along one dimension per key (dots become underscores:
    `scenario.intensity` -> `scenario_intensity`).  Other arguments as for `run`.

    The jobs run one after another in this process; for parallel or cluster runs use
    `fentsim -m`.  Each result keeps its provenance in the `config` of its own run (attrs that
    differ between cells are dropped from the joined dataset)."""
    texts = list(kwargs.pop("overrides", None) or ())
    if isinstance(texts, Mapping):
        raise InputError("overrides: a mapping is not allowed in sweep(); allowed: 'key=value' strings")
    if grid is None:
        if experiment is None:
            raise InputError("grid: missing; allowed: a mapping {override key: [values]} or "
                             "experiment=NAME")
        grid = _grid_of_experiment(experiment, texts)
    if not grid:
        raise InputError("grid: empty; allowed: a mapping {override key: [values]}")
    keys = list(grid)
    levels = [list(grid[k]) for k in keys]
    for key, values in zip(keys, levels):
        if not values:
            raise InputError(f"grid.{key}: no values; allowed: a list of one value or more")
        seen: list[Any] = []
        for value in values:   # as `fentsim -m` refuses them: 0.5 and 0.50 are one cell
            same = [v for v in seen if v == value or str(v) == str(value)]
            if same:
                raise InputError(f"grid.{key}: value {value!r} given twice (as {same[0]!r}); "
                                 f"allowed: distinct values, each once")
            seen.append(value)
    cells = np.empty([len(v) for v in levels], dtype=object)
    for index in itertools.product(*(range(len(v)) for v in levels)):
        swept = {k: levels[i][j] for i, (k, j) in enumerate(zip(keys, index))}
        cell_texts = [*texts, *(f"{k}={json.dumps(v) if isinstance(v, str) and ',' in v else v}"
                                for k, v in swept.items())]
        cfg = config(experiment=experiment, overrides=cell_texts, **kwargs)
        cells[index] = run_config(cfg, swept=swept, command=_command(cell_texts))
    dims = [dimension_name(k) for k in keys]
    joined = xr.combine_nested(cells.tolist(), concat_dim=dims, combine_attrs="drop_conflicts")
    joined = joined.transpose(*dims, ...)  # the swept dimensions first, as in sweep.nc
    joined.attrs["sweep_keys"] = json.dumps(keys)
    joined.attrs["sweep_dims"] = json.dumps({dimension_name(k): k for k in keys})
    return joined


def compare(a: xr.Dataset, b: xr.Dataset, window: Sequence[int] = DEFAULT_WINDOW,
            variable: str = DEFAULT_VARIABLE, paired: bool = True) -> xr.Dataset:
    """Deaths averted by A relative to reference B over `window` (inclusive years), draws paired
    by `draw_id` (`paired=False`: independent quantiles of ensembles with other draws): see
    `sim.sweeps.compare.compare`.  B may be a selection of A, e.g. `a.sel(scenario="baseline")`."""
    return _compare(a, b, window, variable, paired=paired)


# --- loaders ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    """A scenario file: its name, description, intensity and the lever interventions it sets."""

    name: str
    description: str
    intensity: float
    interventions: dict[str, dict[str, Any]]   # lever -> {start, ramp, level, mode} (set ones only)

    def levers(self) -> LeverSet:
        """The levers a run of this scenario uses (intensity applied)."""
        cfg = apply_intensity({"scenario": {"intensity": self.intensity},
                               "levers": self.interventions})
        return LeverSet.from_mapping(cfg["levers"])


def load_scenario(name: str) -> Scenario:
    """The scenario `name` of configs/scenario/ (e.g. 'china_crackdown'), as `fentsim` composes it."""
    cfg, _ = compose("config", [f"scenario={name}"])
    scenario = cfg["scenario"]
    return Scenario(str(scenario["name"]), str(scenario.get("description", "")),
                    float(scenario.get("intensity", 1.0)),
                    {k: v for k, v in cfg["levers"].items() if v.get("start") is not None})


def load_params(name: str = "calibrated") -> ModelParameters:
    """A parameter set of configs/params/ by name: 'calibrated' (what runs use: fitted to the
    article and the public series 2010-2024), 'article' (fitted to the article's figures alone),
    'literature' (the priors' centre)."""
    return ModelParameters.from_mapping(compose("config", [f"params={name}"])[0]["params"])


def load_posterior(size: int | None = None, *, seed: int = 0, params: str = "calibrated",
                   name: str = "posterior") -> ModelParameters:
    """Draws of the posterior ensemble as `ensemble=posterior` (or 'large') selects them, on top
    of the parameter set `params`: one value per draw in every field (`.n_draws`).  Without
    `size`, every draw of the posterior file."""
    cfg = with_posterior_of(compose("config", [f"params={params}", f"ensemble={name}"])[0], params)
    ens_cfg = dict(cfg["ensemble"], seed=seed)
    if size is None:
        from sim.calibrate.ensemble import posterior_path
        from sim.calibrate.fit import read_draws

        size = len(read_draws(posterior_path(ens_cfg.get("file")))[1])
    ens_cfg.update(size=size, chunk=None)
    base = ModelParameters.from_mapping(cfg["params"])
    ens = ensemble_of(base, ens_cfg)
    return ens.params_for(0, ens.size)
