"""Funding in dollars from `fentsim` (issue 16): the `funding` section turns US$/yr into lever levels
per draw through the unit costs and each draw's own baseline; scenarios in dollars; the amount as
a sweep coordinate; zero spending is the baseline bit for bit; `fentsim-study` converts the same way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sim.api import config, run
from sim.calibrate.ensemble import ensemble_of
from sim.config import build_run
from sim.errors import InputError
from sim.funding.costs import CostModel, history_at, total_spending
from sim.funding.plan import (FundingPlan, baseline_quantities, baseline_year, spending_by_year)
from sim.study.funding import unit_costs

REPO = Path(__file__).resolve().parents[1]
WINDOW = slice(2026, 2030)   # scenarios in dollars start in 2026
SHORT = {"end_year": 2030}


def averted(policy: xr.Dataset, base: xr.Dataset) -> np.ndarray:
    """Deaths averted 2026-2030 per draw (paired)."""
    assert np.array_equal(policy["draw_id"].values, base["draw_id"].values)
    return (base["deaths_overdose"] - policy["deaths_overdose"]).sel(year=WINDOW).sum("year").values


@pytest.fixture(scope="module")
def baseline6():
    return run(ensemble=6, solver=SHORT)


def test_zero_spending_is_the_baseline_bit_for_bit(baseline6):
    """A scenario in dollars at 0 US$/yr adds no intervention: every data variable is identical."""
    zero = run("harm_reduction_funding_up", ensemble=6, solver=SHORT,
               overrides={"funding.total_usd_per_year": 0})
    assert set(zero.data_vars) == set(baseline6.data_vars)
    for name in baseline6.data_vars:
        a, b = zero[name].values, baseline6[name].values
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
    assert float(zero["funding_spending"].sum()) == 0.0


def test_money_buys_levels_per_draw_at_each_draws_unit_cost(baseline6):
    ds = run("harm_reduction_funding_up", ensemble=6, solver=SHORT)
    total = 1e8
    usd = ds["funding_usd_per_year"].to_series()
    assert usd["naloxone_kits"] == usd["test_strips"] == total / 2
    assert usd.drop(["naloxone_kits", "test_strips"]).eq(0).all()
    for lever in ("naloxone_kits", "test_strips"):
        level = ds["funding_level"].sel(lever=lever).values
        cpu = ds["funding_cost_per_unit"].sel(lever=lever).values
        assert np.allclose(level, history_at(lever, 2026.0) + total / 2 / cpu, rtol=1e-12)
        assert np.ptp(cpu) > 0   # unit costs sampled per draw with an ensemble
    costs = CostModel.from_mapping(config()["costs"])
    kits = ds["funding_cost_per_unit"].sel(lever="naloxone_kits").values
    assert np.all((kits >= costs["naloxone_kits"].low) & (kits <= costs["naloxone_kits"].high))
    assert np.isnan(ds["funding_level"].sel(lever="moud_capacity")).all()
    # spending follows the one-year ramp from 2026: half in 2026, all from 2027
    spend = ds["funding_spending"].sel(year=[2025, 2026, 2027, 2030]).values
    assert np.allclose(spend, [0, total / 2, total, total])
    window_total = float(ds["funding_spending"].sel(year=WINDOW).sum())
    assert window_total == pytest.approx(float(total_spending(total, 2026.0, 1.0, 2030)))
    assert np.all(averted(ds, baseline6) > 0)


def test_costs_per_baseline_quantity_use_each_draws_own_baseline(baseline6):
    """Outreach is bought per treatment entry: one unit of the multiplier costs the unit cost x the
    draw's own baseline entries in 2025, the year before the start (not a number from one calibration)."""
    ds = run("treatment_funding_up", ensemble=6, solver=SHORT,
             overrides={"costs.sample": False})
    entries_2019 = baseline6["treatment_entries"].sel(year=2025).values
    cpu = ds["funding_cost_per_unit"].sel(lever="treatment_seeking").values
    assert np.allclose(cpu, 1500.0 * entries_2019, rtol=1e-4)   # the plan integrates to its start only (different steps)
    assert np.ptp(entries_2019) > 0
    # and another parameter set has other baseline entries, hence other unit costs
    article = run("treatment_funding_up", params="article", ensemble=6, solver=SHORT,
                  overrides={"costs.sample": False})
    other = article["funding_cost_per_unit"].sel(lever="treatment_seeking").values
    assert not np.allclose(other, cpu)
    assert baseline_year(2020.0) == 2019 and baseline_year(2010.5) == 2010


def test_doubling_spending_on_a_saturating_lever_does_not_double_deaths_averted(baseline6):
    """Naloxone's rescue saturates (a kit reaches a witnessed overdose with falling probability):
    twice the money averts fewer than twice the deaths, in every draw."""
    one, two = (run("harm_reduction_funding_up", ensemble=6, solver=SHORT,
                    overrides={"funding.split": {"naloxone_kits": 1.0, "test_strips": 0.0},
                               "funding.total_usd_per_year": amount})
                for amount in (2e8, 4e8))
    a1, a2 = averted(one, baseline6), averted(two, baseline6)
    assert np.all(a1 > 0) and np.all(a2 > a1)
    assert np.all(a2 < 1.9 * a1), a2 / a1


def test_money_past_a_levers_maximum_buys_nothing(baseline6):
    """China cooperation at $10B/yr would withhold more than all exports: the level stops at the
    lever's maximum, the draw is flagged saturated, and the money still counts as spent."""
    ds = run("china_cooperation_funding", ensemble=6, solver=SHORT,
             overrides={"funding.total_usd_per_year": 1e10, "costs.sample": False})
    level = ds["funding_level"].sel(lever="enforcement_china_finished").values
    assert np.allclose(level, 0.999)
    assert ds["funding_saturated"].sel(lever="enforcement_china_finished").values.all()
    assert float(ds["funding_spending"].sel(year=2028)) == 1e10


def test_intensity_scales_the_dollars():
    cfg = config("interdiction_funding_up", intensity=2.0, solver=SHORT)
    ds = run("interdiction_funding_up", intensity=2.0, solver=SHORT)
    assert cfg["funding"]["total_usd_per_year"] == 1e8     # the scenario as written ...
    assert float(ds["funding_usd_per_year"].sum()) == 2e8  # ... run at twice the money


def test_study_and_fentsim_convert_money_the_same_way():
    """One place for the conversion: the study's unit costs are fentsim's for the same draws."""
    cfg = config("treatment_funding_up", ensemble=5, solver=SHORT)
    job = build_run(cfg)
    ens = ensemble_of(job.params, job.ensemble)
    params = ens.params()
    _, record = job.funding.buy(params, job.levers, job.solver, seed=ens.seed, sample=True)
    study = unit_costs(params, job.funding.costs, 2026.0, job.solver, ens.seed)
    for lever in ("moud_capacity", "treatment_seeking"):
        i = record.lever_index(lever)
        assert np.allclose(record.cost_per_unit[i], study[lever], rtol=1e-12)
    base = baseline_quantities(params, ["treatment_entries"], 2026.0, job.solver)
    assert base["treatment_entries"].shape == (5,)


@pytest.mark.parametrize("overrides,message", [
    ({"funding.total_usd_per_year": -1}, "funding.total_usd_per_year: value -1 not allowed"),
    ({"funding.split": {"naloxone_kits": 0.5, "test_strips": 0.3}},
     "funding.split: shares .* sum to 0.8; allowed: shares that sum to 1"),
    ({"funding.split": {"naloxone": 1.0}}, "funding.split.naloxone: unknown key"),
    ({"levers.naloxone_kits.start": 2021, "levers.naloxone_kits.level": 2},
     "levers.naloxone_kits.level: value 2 set directly and funded by funding.split.naloxone_kits"),
    ({"funding.end": 2019}, "funding.end: value 2019 not allowed; allowed: a year after"),
    ({"funding.start": 2040}, "funding.start: value 2040 outside the simulated window"),
    ({"funding.ramp": 0}, "funding.ramp: value 0 not allowed"),
    ({"funding.total_usd_per_year": True}, "funding.total_usd_per_year: value True is not a number; allowed: a finite number >= 0"),
])
def test_bad_funding_is_one_line(overrides, message):
    with pytest.raises(InputError, match=message):
        build_run(config("harm_reduction_funding_up", solver=SHORT, overrides=overrides))


def test_funding_in_chunks_is_the_funding_in_one_batch():
    """A large (chunked) ensemble buys each draw's levels at that draw's unit costs in the whole
    ensemble: the chunked result equals the one-batch result bit for bit."""
    import sim.api as api
    from sim.sweeps.chunked import simulate_chunked

    cfg = config("demand_side_funding", ensemble="large",
                 overrides={"ensemble.size": 6, "ensemble.chunk_size": 4}, solver=SHORT)
    job = build_run(cfg)
    ens = ensemble_of(job.params, job.ensemble)
    chunked = simulate_chunked(ens.params_for, ens.draws, ens.chunk_size, job.levers, job.solver,
                               config=cfg, seed=ens.seed, run_draws=job.draws_simulator(ens, cfg))
    whole = job.simulate(ens, cfg)
    for name in ("funding_level", "funding_cost_per_unit", "deaths_overdose", "funding_spending"):
        assert np.array_equal(chunked[name].values, whole[name].values, equal_nan=True), name
    assert np.ptp(chunked["funding_cost_per_unit"].sel(lever="naloxone_kits").values) > 0
    assert api.run_config(cfg)["funding_level"].shape == (13, 6)


def test_spending_by_year_integrates_the_ramp_exactly():
    years = np.arange(2019, 2026)
    out = spending_by_year(1e6, years, 2020.5, 1.0, 2023.0)
    # ramp 2020.5-2021.5: 2020 gets 1/8, 2021 gets 7/8; back down 2023-2024: 2023 half, 2024 0
    assert np.allclose(out, [0, 0.125e6, 0.875e6, 1e6, 0.5e6, 0, 0])
    assert FundingPlan.from_config({"total_usd_per_year": 0, "split": {}}, None).active is False


def test_cli_sweeps_the_amount_as_a_coordinate(tmp_path):
    """The issue's command: one sweep.nc with the amount as a coordinate, money in the report."""
    r = subprocess.run(
        [sys.executable, "-m", "sim.cli.main", "-m",
         "scenario=baseline,harm_reduction_funding_up,interdiction_funding_up",
         "funding.total_usd_per_year=25e6,100e6", "solver.end_year=2035",
         f"hydra.sweep.dir={tmp_path}", "hydra.callbacks.aggregate.report=true"],
        capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr
    with xr.open_dataset(tmp_path / "sweep.nc", engine="h5netcdf") as ds:
        assert list(ds["funding_total_usd_per_year"].values) == [25e6, 100e6]
        assert ds["funding_spending"].sel(scenario="baseline").sum() == 0
        spend = ds["funding_spending"].sel(scenario="interdiction_funding_up", year=2028)
        assert np.array_equal(spend.values, [25e6, 100e6])
    assert "cost per death averted" in r.stdout
    assert (tmp_path / "deaths_averted_vs_spending.png").stat().st_size > 10_000
    bad = subprocess.run([sys.executable, "-m", "sim.cli.main", "scenario=harm_reduction_funding_up",
                          "funding.split.naloxone_kits=0.9", f"hydra.run.dir={tmp_path}/bad"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "funding.split: shares" in bad.stderr and not (tmp_path / "bad" / "result.nc").exists()


def test_equal_spending_experiment_compares_portfolios_at_equal_amounts():
    """experiments/equal_spending.yaml sweeps supply- and demand-side scenarios in dollars over the
    same amounts, with the baseline as reference; every cell is a valid run."""
    from sim.api import _grid_of_experiment

    grid = _grid_of_experiment("equal_spending", [])
    scenarios = [str(s) for s in grid["scenario"]]
    assert "baseline" in scenarios and {"supply_side_funding", "demand_side_funding"} <= set(scenarios)
    amounts = [float(a) for a in grid["funding.total_usd_per_year"]]
    assert amounts == sorted(amounts) and amounts[0] > 0
    for name in scenarios:
        cfg = config(name, experiment="equal_spending",
                     overrides={"funding.total_usd_per_year": amounts[-1]})
        job = build_run(cfg)
        assert cfg["ensemble"]["name"] == "posterior" and job.funding is not None
        assert job.funding.active == (name != "baseline")
        sides = {"supply" if n.startswith(("interdiction", "enforcement")) else "demand"
                 for n in job.funding.split}
        assert len(sides) <= 1   # each scenario is one side or the other


def test_unknown_funding_keys_name_what_is_allowed():
    from sim.config import unknown_key_error

    assert "did you mean 'naloxone_kits'" in str(unknown_key_error("funding.split.naloxone"))
    assert "allowed: end, ramp, split, start, total_usd_per_year" in str(
        unknown_key_error("funding.totl"))
    line = str(unknown_key_error("funding.split.test_strips"))
    assert "++funding.split.test_strips=SHARE" in line and "every scenario of a sweep" in line


def test_money_given_to_a_scenario_that_funds_nothing_is_said(caplog):
    with caplog.at_level("INFO", logger="sim.funding.plan"):
        build_run(config("naloxone_up", overrides={"funding.total_usd_per_year": 1e8}))
    assert "scenario 'naloxone_up' funds no lever" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="sim.funding.plan"):   # a sweep's reference: silent
        build_run(config("baseline", overrides={"funding.total_usd_per_year": 1e8}))
    assert "funds no lever" not in caplog.text
