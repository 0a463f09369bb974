"""What the solver stores (every stock at the output grid and year boundaries, cumulative seizures
alone at fiscal-year starts) and the step cap that keeps explicit methods stable."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from sim.model.levers import LeverSet
from sim.engine.batch import BatchModel
from sim.model.parameters import ModelParameters
from sim.results.dataset import to_dataset
from sim.engine.solver import (FISCAL_ROWS, FISCAL_STOCKS, FISCAL_YEAR_START, PHYSICAL_ROWS, PHYSICAL_STOCKS,
                        SolverSettings, fiscal_times, integrate, max_stable_step, series_times,
                        stability_boundary, storage_times)
from sim.model.state import LAYOUT

ANNUAL = dict(start_year=2010, end_year=2024, output_step=1.0)


@pytest.mark.parametrize("engine", ["compiled", "numpy"])
def test_fiscal_starts_hold_cumulative_seizures_only(engine):
    settings = SolverSettings(**ANNUAL, engine=engine)
    traj = integrate(ModelParameters(), LeverSet.from_mapping({}), settings)
    fiscal = fiscal_times(settings)
    assert fiscal.size == settings.years.size          # every FY that ends inside the window
    np.testing.assert_allclose(fiscal, settings.years + FISCAL_YEAR_START, atol=1e-9)
    assert traj.states.shape == (LAYOUT.size, 1, storage_times(settings).size)
    assert traj.fiscal.shape == (FISCAL_ROWS.stop - FISCAL_ROWS.start, 1, fiscal.size)
    for stock in FISCAL_STOCKS:
        assert traj.stock_at(stock, fiscal).shape == LAYOUT.shapes[stock] + (1, fiscal.size)
    with pytest.raises(KeyError, match="not stored"):
        traj.stock_at("untreated", fiscal[0])
    with pytest.raises(KeyError, match="not stored"):
        traj.at(2015.5)


def test_monthly_series_hold_the_physical_stocks_and_totals_stay_at_year_boundaries():
    monthly = SolverSettings(start_year=2010, end_year=2014)          # default grid: monthly
    params = ModelParameters().replace(overdose_incidence=np.array([0.1, 0.2]))
    levers = LeverSet.from_mapping({})
    compiled = integrate(params, levers, monthly)
    numpy_path = integrate(params, levers, SolverSettings(start_year=2010, end_year=2014,
                                                          engine="numpy"))
    grid = monthly.output_times
    np.testing.assert_array_equal(series_times(monthly), grid)
    np.testing.assert_array_equal(compiled.times, np.arange(2010.0, 2016.0))
    assert compiled.series.shape == (PHYSICAL_ROWS.stop, 2, grid.size)
    for traj in (compiled, numpy_path):
        assert set(traj.at(2012 + 5 / 12)) == set(PHYSICAL_STOCKS)       # between year ends
        assert len(traj.at(2012.0)) == len(LAYOUT.slices)                 # a year end: all
        with pytest.raises(KeyError, match="not stored"):
            traj.stock_at("cum_deaths_fentanyl_only", grid)
    for name in PHYSICAL_STOCKS:
        got = compiled.stock_at(name, grid)
        assert got.shape == LAYOUT.shapes[name] + (2, grid.size)
        np.testing.assert_allclose(got, numpy_path.stock_at(name, grid), rtol=2e-3, atol=1e-3)
        # a year end reads the same from either block
        np.testing.assert_array_equal(got[..., 24], compiled.stock_at(name, 2012.0))
    # an annual grid needs no series block: nothing is stored twice
    assert integrate(params, levers, SolverSettings(**ANNUAL)).series.size == 0


def test_last_fiscal_year_is_one_year_of_seizures():
    """FY seizures of the last year must not depend on how far past it the run goes (the last FY
    once ran to the end of the window, a quarter year too long)."""
    levers = LeverSet.from_mapping({})
    short = SolverSettings(**ANNUAL)
    longer = SolverSettings(**{**ANNUAL, "end_year": ANNUAL["end_year"] + 3})
    params = ModelParameters()
    fy_short = to_dataset(integrate(params, levers, short), params, levers, short)["seizures_fy"]
    fy_long = to_dataset(integrate(params, levers, longer), params, levers, longer)["seizures_fy"]
    last = ANNUAL["end_year"]
    np.testing.assert_allclose(fy_short.sel(year=last), fy_long.sel(year=last), rtol=1e-4)
    np.testing.assert_allclose(fy_short.sel(year=slice(2011, last)),
                               fy_long.sel(year=slice(2011, last)), rtol=1e-4)


@pytest.mark.parametrize("method", ["RK45", "RK23", "DOP853"])
def test_stability_boundary_is_where_a_decaying_mode_starts_to_grow(method):
    """Integrating y' = -y with steps just inside the boundary decays; just outside, it grows."""
    boundary = stability_boundary(method)
    for factor, grows in ((0.99, False), (1.01, True)):
        h = factor * boundary
        sol = solve_ivp(lambda t, y: -y, (0.0, 200 * h), [1.0], method=method, first_step=h,
                        max_step=h, rtol=1e3, atol=1e3)   # huge tolerances: every step is h
        assert (abs(sol.y[0, -1]) > 1.0) == grows, (method, factor, sol.y[0, -1])
    assert stability_boundary("RK45") == pytest.approx(3.3066, abs=1e-4)


def test_max_stable_step_follows_the_fastest_drain():
    params = ModelParameters().replace(know_how_finished_rate=np.array([1.0, 4.0]),
                                       know_how_synthesis_rate=0.5, capacity_adjustment_time=2.0)
    model = BatchModel(params, LeverSet.from_mapping({}))
    rates = model.fastest_drain_rate()
    assert rates[1] == 4.0 and rates[0] < 4.0
    np.testing.assert_allclose(max_stable_step(model, "RK45"), stability_boundary("RK45") / rates)
    assert np.all(np.isinf(max_stable_step(model, "Radau")))
