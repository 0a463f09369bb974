"""Money in the comparison: spending, deaths averted per million US$, cost per death averted
(quantiles inverted from the per-million ones), the money table block, CSV rows, the frontier figure
and the CLI, on small known datasets and on a real paired ensemble."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import xarray as xr

import sim
import sim.cli.compare as cli
from sim.sweeps.aggregate import dimension_name
from sim.errors import InputError
from sim.results.io import write_dataset
from sim.sweeps.compare import (MONEY_METRICS, QUANTILES, compare, comparison_csv_text,
                                comparison_table, has_money, select)
from sim.sweeps.plots import plot_frontier
from sim.sweeps.report import FRONTIER_PNG, sweep_report
from tests.test_compare import YEARS, known

FUNDING_DIM = dimension_name("funding.total_usd_per_year")
MONEY_COLUMNS = ("spending (M$)", "cost per death averted", "deaths averted per $1M")


def funded(ds: xr.Dataset, usd_per_year, factors=None) -> xr.Dataset:
    """`ds` with `funding_spending` (US$/yr, the same every year unless an array per year) and,
    if given, deaths multiplied per draw by `factors`."""
    ds = ds.copy(deep=True)
    if factors is not None:
        f = xr.DataArray(np.asarray(factors, float), dims="draw")
        for name in ("deaths_overdose", "deaths_synthetic"):
            ds[name] = (ds[name] * f).assign_attrs(ds[name].attrs)
    spend = np.broadcast_to(np.asarray(usd_per_year, float), YEARS.shape).copy()
    ds["funding_spending"] = ("year", spend, {
        "units": "US$/yr", "long_name": "extra spending above history in the calendar year (funding)"})
    return ds


def test_spending_and_per_million_by_hand_paired_by_draw():
    # B: 1000 deaths/yr in draw 0, 2000 in draw 1; A: 900 and 1500 -> paired averted 100 and 500 per yr
    b = funded(known(1000), 0.0)
    a = funded(known(900), 10e6, factors=[1.0, 1500.0 / 1800.0])
    window, years = (2021, 2024), 4
    cmp = compare(a, b, window=window)
    spending = 10e6 * years
    np.testing.assert_allclose(cmp.spending.values, [spending, spending])
    averted = np.array([100.0, 500.0]) * years
    np.testing.assert_allclose(cmp.deaths_averted.values, averted)
    np.testing.assert_allclose(cmp.deaths_averted_per_million.values, averted / (spending / 1e6))
    np.testing.assert_allclose(cmp.cost_per_death_averted.values, spending / averted)
    # paired: the per-million quantiles are those of the paired ratios, not of quantile differences
    expected = np.quantile(averted / (spending / 1e6), QUANTILES)
    np.testing.assert_allclose(cmp.deaths_averted_per_million_quantiles.values, expected)
    for name in MONEY_METRICS:
        for var in (name, f"{name}_quantiles"):
            assert cmp[var].attrs["units"] and cmp[var].attrs["long_name"], var
    assert cmp.spending.attrs["units"] == "US$"
    assert cmp.deaths_averted_per_million.attrs["units"] == "deaths per million US$"
    assert cmp.cost_per_death_averted_quantiles.attrs["units"] == "US$ per death averted"


def test_spending_is_a_minus_b_over_the_window_only():
    spend = np.where(YEARS >= 2025, 4e6, 0.0)    # ramps in 2025
    cmp = compare(funded(known(900), spend), funded(known(1000), 1e6), window=(2020, 2026))
    assert cmp.spending.values.tolist() == [2 * 4e6 - 7 * 1e6] * 2


def test_cost_quantiles_are_the_inverted_per_million_quantiles():
    draws = 7
    rng = np.random.default_rng(3)
    b = funded(known(1000, draws=draws), 0.0)
    a = funded(known(1000, draws=draws), 5e6, factors=rng.uniform(0.5, 0.9, draws) / (1 + np.arange(draws)))
    cmp = compare(a, b, window=(2020, 2020))
    pm = cmp.deaths_averted_per_million_quantiles.values
    cost = cmp.cost_per_death_averted_quantiles.values
    np.testing.assert_allclose(cost, 1e6 / pm[::-1])
    assert cost[0] <= cost[1] <= cost[2]
    # not the raw quantiles of the per-draw costs (they differ by the interpolation)
    raw = np.quantile(cmp.cost_per_death_averted.values, QUANTILES)
    assert raw[1] == pytest.approx(cost[1]) and not np.allclose(raw, cost)


def test_zero_spending_cell_is_nan_and_deaths_added_is_inf():
    cells = [funded(known(1000), 0.0), funded(known(900), 0.0), funded(known(1100), 2e6),
             funded(known(950), 3e6, factors=[1.0, 2200.0 / 1900.0])]
    sweep = xr.concat(cells, dim="scenario").assign_coords(
        scenario=np.array(["baseline", "unfunded", "worse", "mixed"], dtype=object))
    cmp = compare(sweep, select(sweep, {"scenario": "baseline"}), window=(2020, 2020))
    for name in ("deaths_averted_per_million", "cost_per_death_averted"):
        for cell in ("baseline", "unfunded"):
            assert np.isnan(cmp[name].sel(scenario=cell).values).all(), (name, cell)
            assert np.isnan(cmp[f"{name}_quantiles"].sel(scenario=cell).values).all(), (name, cell)
    assert cmp.spending.sel(scenario="unfunded").values.tolist() == [0.0, 0.0]
    worse = cmp.sel(scenario="worse")
    assert (worse.deaths_averted.values < 0).all()
    assert np.isposinf(worse.cost_per_death_averted.values).all()
    assert np.isposinf(worse.cost_per_death_averted_quantiles.values).all()
    assert (worse.deaths_averted_per_million_quantiles.values < 0).all()
    # mixed: draw 0 averts 50, draw 1 adds 200 -> low cost finite, high cost inf
    mixed = cmp.sel(scenario="mixed")
    assert mixed.deaths_averted.values.tolist() == [50.0, -200.0]
    cq = mixed.cost_per_death_averted_quantiles.values
    assert np.isfinite(cq[0]) and np.isposinf(cq[2])
    assert cq[0] == pytest.approx(1e6 / mixed.deaths_averted_per_million_quantiles.values[2])
    table = comparison_table(cmp)
    money = table.split("\nmoney over 2020-2020:")[1]
    rows = {line.split()[0]: line for line in money.splitlines() if line.split()
            and line.split()[0] in ("baseline", "unfunded", "worse", "mixed")}
    assert rows["baseline"].split()[-2:] == ["n/a", "n/a"]
    assert "none averted" in rows["worse"] and "to none averted]" in rows["mixed"]


def test_without_funding_spending_no_money_and_the_table_unchanged():
    a, b = known(900), known(1000)
    plain = compare(a, b)
    for other_a, other_b in ((funded(a, 1e6), b), (a, funded(b, 0.0))):
        cmp = compare(other_a, other_b)
        assert not any(name in cmp for name in MONEY_METRICS)
        assert not has_money(cmp)
        assert comparison_table(cmp) == comparison_table(plain)
        assert comparison_csv_text(cmp) == comparison_csv_text(plain)
    both_zero = compare(funded(a, 0.0), funded(b, 0.0))   # carried but nothing spent
    assert "spending" in both_zero and not has_money(both_zero)
    assert comparison_table(both_zero) == comparison_table(plain)
    assert "deaths_averted_per_million" not in both_zero and "money" not in both_zero.attrs
    same = compare(funded(a, 5e6), funded(a, 5e6))   # sim.compare(A, A) of a funded run
    assert "deaths_averted_per_million" not in same and "cost_per_death_averted" not in same
    assert same.attrs["money"].startswith("not applicable")     # said in words, not NaN
    assert comparison_table(same).endswith(same.attrs["money"])
    assert not any(c in comparison_table(plain) for c in MONEY_COLUMNS)


def test_bad_funding_spending_one_line():
    bad = funded(known(1000), 0.0)
    bad["funding_spending"].attrs["units"] = "million US$"
    with pytest.raises(InputError, match=r"^B: variable 'funding_spending' .* allowed: dimension "
                                         r"year, units US\$/yr$"):
        compare(funded(known(900), 1e6), bad)


def money_sweep(draws=3) -> xr.Dataset:
    """A sweep-like dataset: scenario x funding_total_usd_per_year (US$/yr), deaths falling with
    the dollars for the funded scenarios, the baseline and an unfunded scenario spending nothing."""
    totals = np.array([25e6, 100e6, 400e6])
    rows = []
    for scenario, per_dollar in (("baseline", 0.0), ("harm_reduction_funding_up", 2e-7),
                                 ("interdiction_funding_up", 1e-7), ("naloxone_up", 0.0)):
        cells = []
        for total in totals:
            ds = known(1000 - 1000 * per_dollar * total / 100 if per_dollar else 1000, draws=draws)
            spend = total if per_dollar else 0.0
            cells.append(funded(ds, spend))
        rows.append(xr.concat(cells, dim=FUNDING_DIM).assign_coords({FUNDING_DIM: totals}))
    sweep = xr.concat(rows, dim="scenario").assign_coords(scenario=np.array(
        ["baseline", "harm_reduction_funding_up", "interdiction_funding_up", "naloxone_up"],
        dtype=object))
    return sweep


def test_sweep_table_csv_and_frontier(tmp_path):
    sweep = money_sweep()
    ref = select(sweep, {"scenario": "baseline"})
    cmp = compare(sweep, ref, window=(2020, 2022))
    assert cmp.spending.dims == ("scenario", FUNDING_DIM, "draw")
    assert np.isnan(cmp.deaths_averted_per_million.sel(scenario="baseline")).all()
    got = cmp.spending.sel(scenario="harm_reduction_funding_up", draw=0).values
    np.testing.assert_allclose(got, sweep[FUNDING_DIM].values * 3)
    table = comparison_table(cmp)
    assert all(column in table for column in MONEY_COLUMNS)
    assert "2.5e+07" in table   # the swept dollars, readable
    rows = list(csv.DictReader(comparison_csv_text(cmp).splitlines()))
    assert {r["metric"] for r in rows} >= set(MONEY_METRICS)
    row = next(r for r in rows if r["scenario"] == "harm_reduction_funding_up"
               and float(r[FUNDING_DIM]) == 100e6 and r["metric"] == "cost_per_death_averted")
    assert row["units"] == "US$ per death averted"
    per_million = cmp.deaths_averted_per_million_quantiles.sel(
        scenario="harm_reduction_funding_up", **{FUNDING_DIM: 100e6})
    assert float(row["median"]) == pytest.approx(1e6 / float(per_million.sel(quantile=0.5)))
    assert float(row["q05"]) == pytest.approx(1e6 / float(per_million.sel(quantile=0.95)))
    path = plot_frontier(cmp, tmp_path / "frontier.png")
    assert path.exists() and path.stat().st_size > 0


def test_frontier_axes(monkeypatch):
    import sim.sweeps.plots as plots
    monkeypatch.setattr(plots, "_save", lambda fig, path: fig)
    cmp = compare(money_sweep(), select(money_sweep(), {"scenario": "baseline"}), window=(2020, 2022))
    ax = plots.plot_frontier(cmp, "unused.png").axes[0]
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["harm_reduction_funding_up", "interdiction_funding_up"]   # no zero spending
    assert ax.get_xscale() == "log"   # 25 to 400 million: more than 10x
    assert "US$ per year" in ax.get_xlabel() and "$25M" in [t.get_text() for t in ax.get_xticklabels()] and "2020-2022" in ax.get_ylabel()
    x = ax.get_lines()[0].get_xdata()
    np.testing.assert_allclose(x, [25e6, 100e6, 400e6])   # US$/yr, ticks read $25M ...
    # without the swept dollars: the window's total spending on x, in US$
    one = cmp.sel({FUNDING_DIM: 100e6}).drop_vars(FUNDING_DIM)
    ax = plots.plot_frontier(one, "unused.png").axes[0]
    assert ax.get_xscale() == "linear" and "(US$)" in ax.get_xlabel()
    assert ax.get_lines()[0].get_xdata().tolist() == [300e6]
    with pytest.raises(InputError, match=r"^comparison: no money metrics"):
        plots.plot_frontier(compare(known(900), known(1000)), "unused.png")


def test_sweep_report_writes_the_frontier(tmp_path):
    _, paths = sweep_report(money_sweep(), tmp_path, {"scenario": "baseline"}, (2020, 2022))
    assert paths["frontier_png"] == tmp_path / FRONTIER_PNG
    assert paths["frontier_png"].stat().st_size > 0
    _, plain = sweep_report(xr.concat([known(1000), known(900)], dim="scenario").assign_coords(
        scenario=np.array(["baseline", "x"], dtype=object)), tmp_path / "plain",
        {"scenario": "baseline"}, (2020, 2022))
    assert "frontier_png" not in plain


def test_cli_prints_money_columns_and_draws_the_frontier(tmp_path, capsys):
    write_dataset(money_sweep(), tmp_path / "sweep.nc")
    cli.main([str(tmp_path / "sweep.nc"), "--window", "2020", "2022",
              "--output", str(tmp_path / "cmp.nc"), "--figures", str(tmp_path / "figs")])
    out = capsys.readouterr().out
    assert all(column in out for column in MONEY_COLUMNS)
    assert (tmp_path / "figs" / FRONTIER_PNG).stat().st_size > 0
    assert "cost_per_death_averted" in (tmp_path / "cmp.csv").read_text()
    write_dataset(known(900), tmp_path / "a.nc")
    write_dataset(known(1000), tmp_path / "b.nc")
    cli.main([str(tmp_path / "a.nc"), str(tmp_path / "b.nc"), "--figures", str(tmp_path / "f2")])
    out = capsys.readouterr().out
    assert not any(column in out for column in MONEY_COLUMNS)
    assert not (tmp_path / "f2" / FRONTIER_PNG).exists()


@pytest.fixture(scope="module")
def paired_runs():
    end = {"end_year": 2024}
    return (sim.run("naloxone_up", ensemble=5, solver=end), sim.run(ensemble=5, solver=end))


def test_real_ensemble_paired_by_draw_identity(paired_runs):
    a, b = paired_runs
    usd = np.where(a["year"].values >= 2020, 50e6, 0.0)
    a = a.assign(funding_spending=("year", usd, {"units": "US$/yr", "long_name": "f"}))
    b = b.assign(funding_spending=("year", 0.0 * usd, {"units": "US$/yr", "long_name": "f"}))
    cmp = compare(a, b, window=(2020, 2024))
    assert cmp.attrs["pairing"] == "draws paired by draw identity (draw_id)"
    spending = 5 * 50e6
    np.testing.assert_allclose(cmp.spending.values, spending)
    averted = (b.deaths_overdose - a.deaths_overdose).sel(year=slice(2020, 2024)).sum("year")
    np.testing.assert_allclose(cmp.deaths_averted_per_million.values,
                               averted.values / (spending / 1e6), rtol=1e-12)
    assert has_money(cmp) and "deaths averted per $1M" in comparison_table(cmp)
