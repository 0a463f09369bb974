"""Every scenario and experiment composes; scenarios document themselves; intensity scaling."""

from __future__ import annotations

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sim.config import build_run
from sim.errors import InputError
from sim.model.scenarios import apply_intensity
from tests.conftest import REPO

CONFIGS = REPO / "configs"
SCENARIOS = sorted(p.stem for p in (CONFIGS / "scenario").glob("*.yaml"))
EXPERIMENT_FILES = sorted((REPO / "experiments").glob("*.yaml"))
# `fentsim -m` experiments carry a sweep; `fentsim-study` experiments a `study` section.
STUDY_EXPERIMENTS = [p.stem for p in EXPERIMENT_FILES if "study" in yaml.safe_load(p.read_text())]
EXPERIMENTS = [p.stem for p in EXPERIMENT_FILES if p.stem not in STUDY_EXPERIMENTS]
REQUIRED = {"baseline", "china_crackdown", "india_substitution", "interdiction_surge",
            "harm_reduction_up", "treatment_expansion", "prevention", "supply_side", "demand_side",
            "both"}


def composed(*overrides: str, hydra: bool = False):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=hydra)
    return cfg


def test_required_scenarios_exist():
    assert REQUIRED <= set(SCENARIOS)
    assert "supply_vs_demand" in EXPERIMENTS


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_composes_builds_and_is_documented(name):
    cfg = OmegaConf.to_container(composed(f"scenario={name}"), resolve=True)
    assert cfg["scenario"]["name"] == name
    assert cfg["scenario"]["description"]
    build_run(apply_intensity(cfg))  # validates every lever and parameter
    text = (CONFIGS / "scenario" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_")
    comments = " ".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    if name != "baseline" and "defaults:" not in text:  # combinations point to their parts
        assert "assumption" in comments.lower()
    if name != "baseline":  # an intervention: lever levels, or money (a scenario in dollars)
        assert (any(v.get("start") is not None for v in cfg["levers"].values())
                or (cfg["funding"]["total_usd_per_year"] > 0 and cfg["funding"]["split"]))


def test_combinations_contain_their_parts():
    both = OmegaConf.to_container(composed("scenario=both"), resolve=True)["levers"]
    for part in ("supply_side", "demand_side"):
        levers = OmegaConf.to_container(composed(f"scenario={part}"), resolve=True)["levers"]
        for name, entry in levers.items():
            if entry["start"] is not None:
                assert both[name] == entry, (part, name)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_with_its_sweep(name):
    cfg = composed(f"experiment={name}", hydra=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    assert params, "an experiment carries its sweep in hydra.sweeper.params"
    assert cfg.hydra.callbacks.aggregate.report is True
    for scenario in str(params["scenario"]).split(","):
        one = OmegaConf.to_container(composed(f"experiment={name}", f"scenario={scenario}"),
                                     resolve=True)
        build_run(apply_intensity(one))


@pytest.mark.parametrize("name", STUDY_EXPERIMENTS)
def test_study_experiment_composes(name):
    from sim.study.workflow import study_options
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("study", overrides=[f"experiment={name}"])
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert study_options(plain)["name"] == name


def test_intensity_scales_departure_from_history():
    cfg = OmegaConf.to_container(composed("scenario=both", "scenario.intensity=2"), resolve=True)
    out = apply_intensity(cfg)["levers"]
    assert out["naloxone_kits"]["level"] == pytest.approx(3.0)       # scale: 1 + 2 (2 - 1)
    assert out["enforcement_china_finished"]["level"] == pytest.approx(0.9)   # set: 0.3 + 2 (0.6 - 0.3)
    assert out["enforcement_china_precursor"]["level"] == pytest.approx(0.85)  # 0.15 + 2 (0.5 - 0.15)
    assert out["test_strips"]["level"] == pytest.approx(1.0e7)       # set from history 0
    zero = apply_intensity({**cfg, "scenario": {**cfg["scenario"], "intensity": 0}})["levers"]
    assert zero["moud_capacity"]["level"] == pytest.approx(1.0)
    assert zero["enforcement_china_finished"]["level"] == pytest.approx(0.3)
    assert cfg["levers"]["naloxone_kits"]["level"] == 2.0  # input not mutated


@pytest.mark.parametrize("value", [-1, "x", float("nan"), True])
def test_bad_intensity_is_one_line_input_error(value):
    with pytest.raises(InputError, match=r"^scenario\.intensity: value .* allowed"):
        apply_intensity({"scenario": {"name": "x", "intensity": value}})


def test_unknown_scenario_key_rejected():
    with pytest.raises(InputError, match=r"scenario\.intensty: unknown key"):
        apply_intensity({"scenario": {"name": "x", "intensty": 2}})
