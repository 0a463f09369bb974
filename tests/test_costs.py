"""Unit costs: dollars <-> lever levels round-trip; documented sources; bad input is one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.funding.costs import (CostModel, DEMAND_LEVERS, SUPPLY_LEVERS, dollars_to_level, history_at,
                       level_to_dollars, total_spending)
from sim.errors import InputError
from sim.model.levers import LEVER_SPECS

DEFAULT = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs/costs/default.yaml").read_text())


def test_default_costs_cover_every_lever_with_units_and_source():
    costs = CostModel.from_mapping(DEFAULT)
    assert set(costs.costs) == set(LEVER_SPECS) == set(SUPPLY_LEVERS) | set(DEMAND_LEVERS)
    assert costs["naloxone_kits"].cost == 30 and costs["naloxone_kits"].high == 75
    assert costs["moud_capacity"].low == 5000 and costs["moud_capacity"].high == 7000
    for uc in costs.costs.values():
        assert uc.units and uc.source and uc.low <= uc.cost <= uc.high


@pytest.mark.parametrize("lever", sorted(LEVER_SPECS))
def test_dollars_to_level_round_trips(lever):
    costs = CostModel.from_mapping(DEFAULT)
    baseline = {"treatment_entries": np.linspace(2e5, 4e5, 7), "initiation": np.linspace(3e4, 9e4, 7)}
    cpu = costs.cost_per_unit(lever, 7, seed=3, baseline=baseline)
    top = np.min(costs.max_spending(lever, 2020.0, cpu))
    spending = np.linspace(0, 0.9 * top, 7)
    level = costs.levels(lever, spending, 2020.0, cpu)
    assert np.allclose(costs.spending(lever, level, 2020.0, cpu), spending, rtol=1e-12, atol=1e-6)
    assert level[0] == pytest.approx(history_at(lever, 2020.0))
    # scalar, central cost
    central = float(costs.cost_per_unit(lever, 1, baseline={k: v[:1] for k, v in baseline.items()},
                                        sample=False)[0])
    one = dollars_to_level(lever, 1e6 if top > 1e6 else top / 2, 2020.0, central)
    assert level_to_dollars(lever, one, 2020.0, central) == pytest.approx(
        1e6 if top > 1e6 else top / 2)


def test_known_conversions():
    costs = CostModel.from_mapping({**DEFAULT, "sample": False})
    # $30M/yr at $30 a kit buys 1M kits/yr on top of 2020's 2,303,624
    assert costs.levels("naloxone_kits", 30e6, 2020.0) == pytest.approx(2303624 + 1e6)
    assert costs.levels("moud_capacity", 6e8, 2020.0) == pytest.approx(1443820 + 1e5)
    assert np.all(costs.cost_per_unit("test_strips", 4) == 1.5)
    # China's history is 0.3 after May 2019; $100M/yr at $1B per unit share buys 0.1 more
    assert costs.levels("enforcement_china_finished", 1e8, 2020.0) == pytest.approx(0.4)
    assert total_spending(1e6, 2020.0, 1.0, 2030) == pytest.approx(10.5e6)


def test_sampled_costs_stay_in_range_and_are_reproducible():
    costs = CostModel.from_mapping(DEFAULT)
    a = costs.cost_per_unit("naloxone_kits", 500, seed=1)
    assert np.all((a >= 20) & (a <= 75)) and np.array_equal(a, costs.cost_per_unit("naloxone_kits", 500, 1))
    assert not np.array_equal(a, costs.cost_per_unit("naloxone_kits", 500, 2))


def test_bad_costs_and_spending_are_one_line_errors():
    with pytest.raises(InputError, match=r"costs.levers.naloxone_kits.cost: value -1 not allowed"):
        CostModel.from_mapping({"levers": {"naloxone_kits": {**DEFAULT["levers"]["naloxone_kits"],
                                                              "cost": -1}}})
    with pytest.raises(InputError, match=r"costs.levers.naloxone: unknown key"):
        CostModel.from_mapping({"levers": {"naloxone": {}}})
    with pytest.raises(InputError, match=r"costs.levers.test_strips.source: required"):
        entry = {k: v for k, v in DEFAULT["levers"]["test_strips"].items() if k != "source"}
        CostModel.from_mapping({"levers": {"test_strips": entry}})
    costs = CostModel.from_mapping(DEFAULT)
    with pytest.raises(InputError, match=r"spending on enforcement_china_finished: value 1,000,000,000 .* "
                                         r"at most 699,000,000 US\$/yr"):
        costs.levels("enforcement_china_finished", 1e9, 2020.0)
    assert costs.levels("enforcement_china_finished", 1e9, 2020.0, clip=True) == pytest.approx(0.999)
    with pytest.raises(InputError, match=r"spending on naloxone_kits: value -5"):
        costs.levels("naloxone_kits", -5, 2020.0)
    with pytest.raises(InputError, match=r"level of prevention: value -0.1 below its history"):
        costs.spending("prevention", -0.1, 2020.0, cost_per_unit=1e9)
    with pytest.raises(InputError, match=r"costs.levers.prevention.per_unit: value \{'baseline': "
                                         r"'deaths'\} not allowed; allowed: a number > 0 or"):
        CostModel.from_mapping({"levers": {"prevention": {**DEFAULT["levers"]["prevention"],
                                                          "per_unit": {"baseline": "deaths"}}}})


def test_costs_per_baseline_quantity_scale_with_each_draws_baseline():
    """Outreach is costed per treatment entry and prevention per initiation averted: one unit of
    the lever costs the unit cost times the draw's own baseline quantity (issue 16: no quantity
    hard-coded from one calibration)."""
    costs = CostModel.from_mapping({**DEFAULT, "sample": False})
    assert costs.baseline_variables() == ["initiation", "treatment_entries"]
    assert costs.baseline_variables(["naloxone_kits"]) == []
    entries = np.array([1e5, 4e5])
    cpu = costs.cost_per_unit("treatment_seeking", 2, baseline={"treatment_entries": entries})
    assert np.allclose(cpu, 1500.0 * entries)
    with pytest.raises(ValueError, match="needs the draws' baseline"):
        costs.cost_per_unit("prevention", 2)
    with pytest.raises(ValueError, match="scales with the draw's baseline"):
        costs["prevention"].cost_per_unit  # noqa: B018
