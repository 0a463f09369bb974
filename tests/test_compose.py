"""The Hydra-free composition (sim.compose, used by the Python API) gives exactly the config that
Hydra composes for the console commands: same values, same key order, same errors' fields."""

from __future__ import annotations

import pytest
import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import OmegaConf

from sim import paths
from sim.compose import compose, experiment_kind, options, parse_value
from sim.errors import InputError

RUN_OVERRIDES = [
    [],
    *[[f"scenario={s}"] for s in options("scenario")],
    *[[f"ensemble={e}"] for e in options("ensemble")],
    *[[f"params={p}"] for p in options("params")],
    ["solver=accurate", "solver.end_year=2025"],
    *[[f"experiment={x}"] for x in options("experiment") if experiment_kind(x) != "study"],
    ["experiment=supply_vs_demand", "ensemble=none", "scenario=both"],
    ["params.relapse_rate=0.4", "levers.naloxone_kits.start=2020", "levers.naloxone_kits.level=2"],
    ["params.fentanyl_incidence_multiplier=[3.0,3.5]", "scenario.intensity=2", "solver.rtol=1e-5"],
    ["output.summary_years=[2017,2020]", "ensemble=posterior", "ensemble.size=7", "~output.filename"],
    ["+levers.prevention.extra=1", "++solver.method=Radau", "scenario.description='a, b'"],
]
STUDY_OVERRIDES = [[], *[[f"experiment={x}"] for x in options("experiment")
                         if experiment_kind(x) == "study"], ["sensitivity.sobol_n=32", "costs=default"]]
CALIBRATE_OVERRIDES = [[], ["targets=both"], ["targets=us_series", "calibration.seed=3"]]


def hydra_config(config_name, overrides):
    with initialize_config_dir(config_dir=str(paths.CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name, overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("config_name,overrides",
                         [("config", o) for o in RUN_OVERRIDES]
                         + [("study", o) for o in STUDY_OVERRIDES]
                         + [("calibrate", o) for o in CALIBRATE_OVERRIDES],
                         ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_same_config_as_hydra(config_name, overrides):
    ours = compose(config_name, overrides)
    theirs = hydra_config(config_name, overrides)
    # same values and the same key order (the `config` attribute of a result is YAML in that order)
    assert yaml.safe_dump(ours, sort_keys=False) == yaml.safe_dump(theirs, sort_keys=False)


@pytest.mark.parametrize("overrides,message", [
    (["params.foo=1"], "params.foo: unknown key; allowed:"),
    (["params.relapse_rat=1"], "params.relapse_rat: unknown key (did you mean 'relapse_rate'?)"),
    (["scenario=china"], "scenario: value 'china' not allowed"),
    (["scenario=baseline,both"], "a sweep (several values)"),
    (["targets=both"], "targets: not a config group of config; allowed: params, costs, funding, scenario"),
    (["solver"], "override 'solver': expected key=value"),
    (["+solver.end_year=2020"], "+solver.end_year: already in the config"),
])
def test_mistakes_are_one_line_input_errors(overrides, message):
    with pytest.raises(InputError) as info:
        compose("config", overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_override_values_parse_as_hydra_does():
    assert parse_value("1e-5") == 1e-5 and parse_value("2") == 2 and parse_value("null") is None
    assert parse_value("[1,'a, b',{x: 2}]") == [1, "a, b", {"x": 2}]
    assert parse_value("True") is True and parse_value("abc") == "abc"
