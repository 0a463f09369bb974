"""Hydra's Compose API for the Python API (sim/hydra_compose.py): the config the console commands
compose, the user's experiment folders, Hydra's global state left as found, one-line errors and
Hydra's own override grammar."""

from __future__ import annotations

import pytest
import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

import sim.api
from sim import paths
from sim.errors import InputError
from sim.hydra_compose import compose, experiment_kind, options, parse_override, sweep_values


def hydra_config(config_name, overrides):
    with initialize_config_dir(config_dir=str(paths.CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name, overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("config_name,overrides", [
    ("config", ["experiment=supply_vs_demand", "ensemble=none", "scenario=both"]),
    ("config", ["params.fentanyl_incidence_multiplier=[3.0,3.5]", "+levers.prevention.extra=1",
                "~output.filename", "scenario.description='a, b'"]),
    ("study", ["experiment=which_lever"]),
    ("calibrate", ["targets=us_series", "calibration.seed=3"]),
], ids=["run", "values", "study", "calibrate"])
def test_same_config_as_the_commands(config_name, overrides):
    ours, choices = compose(config_name, overrides)
    # same values and the same key order (the `config` attribute of a result is YAML in that order)
    assert yaml.safe_dump(ours, sort_keys=False) == yaml.safe_dump(hydra_config(config_name, overrides),
                                                                   sort_keys=False)
    assert choices["params"] in options("params") and "hydra" not in ours


def test_hydra_state_is_left_as_found(tmp_path):
    """Repeated calls, and calls from inside an initialised Hydra (a running app), compose the
    same config and leave the caller's GlobalHydra in place."""
    assert not GlobalHydra.instance().is_initialized()
    first = sim.api.config("naloxone_up", intensity=2)
    assert sim.api.config("naloxone_up", intensity=2) == first
    assert not GlobalHydra.instance().is_initialized()
    (tmp_path / "app.yaml").write_text("answer: 42\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        outer = GlobalHydra.instance().hydra
        assert sim.api.config("naloxone_up", intensity=2) == first
        assert GlobalHydra.instance().hydra is outer     # the app's own Hydra is back
        assert hydra_compose("app")["answer"] == 42       # and still composes from its folder
    assert not GlobalHydra.instance().is_initialized()


def test_user_experiment_folders_from_the_api(tmp_path, monkeypatch):
    (tmp_path / "mine.yaml").write_text("# @package _global_\nsolver:\n  end_year: 2021\n")
    monkeypatch.setenv(paths.USER_EXPERIMENTS_ENV, str(tmp_path))
    assert "mine" in options("experiment") and "supply_vs_demand" in options("experiment")
    assert experiment_kind("mine") == "run" and experiment_kind("supply_vs_demand") == "sweep"
    assert sim.api.config(experiment="mine")["solver"]["end_year"] == 2021
    monkeypatch.delenv(paths.USER_EXPERIMENTS_ENV)
    with pytest.raises(InputError, match="experiment: value 'mine' not allowed"):
        sim.api.config(experiment="mine")


@pytest.mark.parametrize("overrides,message", [
    (["params.foo=1"], "params.foo: unknown key; allowed:"),
    (["params.relapse_rat=1"], "params.relapse_rat: unknown key (did you mean 'relapse_rate'?)"),
    (["scenario=china"], "scenario: value 'china' not allowed"),
    (["scenario=baseline,both"], "a sweep (several values)"),
    (["targets=both"], "targets: not a config group of config; allowed: costs, ensemble, experiment"),
    (["solver"], "override 'solver': not valid override syntax"),
    (["+solver.end_year=2020"], "+solver.end_year: already in the config"),
])
def test_mistakes_are_one_line_input_errors(overrides, message):
    with pytest.raises(InputError) as info:
        compose("config", overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_values_set_after_the_overrides():
    cfg, _ = compose("config", ["scenario=both"], {"solver.end_year": 2030, "params.relapse_rate": 0.4})
    assert cfg["solver"]["end_year"] == 2030 and cfg["params"]["relapse_rate"] == 0.4
    with pytest.raises(InputError, match=r"solver.end_yer: unknown key \(did you mean 'end_year'"):
        compose("config", [], {"solver.end_yer": 2030})


def test_overrides_parse_by_hydras_grammar():
    assert parse_override("x=5e-1") == parse_override("x=0.50") == ("x", 0.5)
    assert parse_override("+a.b=2") == ("a.b", 2) and parse_override("s='a, b'") == ("s", "a, b")
    assert parse_override("hydra/launcher=joblib") == ("hydra/launcher", "joblib")
    assert parse_override("l=[1, 2]") == ("l", "[1,2]")   # a list as Hydra writes it
    assert sweep_values("x", "1,2.5,5e-1") == [1, 2.5, 0.5]
    assert sweep_values("x", "range(1,4)") == [1, 2, 3]
    with pytest.raises(InputError, match="not valid override syntax"):
        parse_override("x=[1")
