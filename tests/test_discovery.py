"""Scenario discovery: rules recover a planted box; the model portfolios run in one batch."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from pathlib import Path

from sim.funding.costs import CostModel
from sim.study.discovery import (case_table, discovery_options, find_rules, rules_markdown,
                           supply_vs_demand, widen_ensemble)
from sim.errors import InputError
from sim.model.parameters import ModelParameters
from sim.study.sensitivity import Factor, Outcome
from sim.engine.solver import SolverSettings

COSTS = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs/costs/default.yaml").read_text())


def test_tree_rules_recover_a_planted_box_with_coverage_and_density():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (2000, 3))
    y = ((x[:, 0] > 0.7) & (x[:, 2] < 0.5)).astype(int)
    rules, accuracy = find_rules(x, ["a", "b", "c"], y, max_depth=3, min_leaf_fraction=0.02, seed=0)
    assert accuracy > 0.98 and rules
    best = rules[0]
    assert best.density > 0.95 and best.coverage > 0.9
    text = best.text
    assert "a >" in text and "c <=" in text and "b" not in text.replace("c <=", "")


def test_no_rules_when_one_side_always_wins():
    rules, _ = find_rules(np.zeros((10, 1)), ["a"], np.zeros(10, int), 3, 0.05, 0)
    assert rules == []


def test_model_supply_vs_demand_cases_and_rules_markdown():
    base = ModelParameters()
    params = base.replace(overdose_incidence=np.linspace(0.12, 0.2, 6))
    factors = [Factor("naloxone_coefficient", "parameter", 2e-4, 5e-4, "1")]
    wide, varying = widen_ensemble(params, factors, ["overdose_incidence"], seed=0)
    assert varying == ["overdose_incidence", "naloxone_coefficient"]
    opts = discovery_options({"spending": [100, 1000]})
    ds = supply_vs_demand(wide, CostModel.from_mapping(COSTS), opts, 2020.0, 1.0,
                          SolverSettings(end_year=2022), Outcome(window=(2020, 2022)), seed=0)
    assert ds["deaths_averted"].shape == (2, 2, 6)
    assert np.all(ds["deaths_averted"].values > 0)
    assert ds["deaths_averted"].attrs["units"] == "deaths"
    x, names, y = case_table(ds, wide, varying)
    assert x.shape == (12, len(names)) and names[-1] == "spending_musd" and y.shape == (12,)
    rules, acc = find_rules(x, names, y, 2, 0.05, 0)
    text = rules_markdown(rules, y, acc, ds)
    assert f"Supply wins in {int(y.sum())} of 12 cases" in text


def test_bad_discovery_options():
    with pytest.raises(InputError, match=r"discovery.supply.china: unknown key"):
        discovery_options({"supply": ["china"]})
    with pytest.raises(InputError, match=r"discovery.max_depth: value 0 not allowed"):
        discovery_options({"max_depth": 0})
