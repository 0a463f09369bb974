"""Model tests after Sterman (Business Dynamics ch. 21): balance, extremes, accuracy, batching."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters
from sim.results.dataset import to_dataset
from sim.engine.solver import SolverSettings, integrate
from sim.model.state import LAYOUT

SHORT = SolverSettings(end_year=2022)
PEOPLE_STOCKS = ("untreated", "in_treatment", "remission")
PHYSICAL_STOCKS = ("capacity", "in_transit", "retail") + PEOPLE_STOCKS


def random_parameters(n: int, seed: int) -> ModelParameters:
    """n draws uniform within every parameter's bounds (log-uniform for log-scale parameters)."""
    rng = np.random.default_rng(seed)
    values = {}
    for name in ModelParameters.names():
        meta = ModelParameters.metadata(name)
        lo, hi = meta["bounds"]
        if meta["scale"] == "log":
            lo = max(lo, hi * 1e-4)
            values[name] = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        else:
            values[name] = rng.uniform(lo, hi, n)
    values["route_shift_midyear"] = rng.uniform(2012, 2022, n)
    return ModelParameters(**values)


def stocks(traj):
    return LAYOUT.unpack(traj.states)


@pytest.fixture(scope="module")
def baseline_traj():
    return integrate(ModelParameters(), LeverSet.from_mapping({}), SolverSettings())


def test_kilograms_balance(baseline_traj):
    s = stocks(baseline_traj)
    exported = s["cum_exports"].sum(axis=0)
    in_transit = s["in_transit"].sum(axis=(0, 1))
    seized = s["cum_seized"].sum(axis=(0, 1))
    arrived = s["cum_arrivals"].sum(axis=(0, 1))
    # exports = change in transit + seized + arrived
    np.testing.assert_allclose(exported, in_transit - in_transit[..., :1] + seized + arrived,
                               rtol=1e-5, atol=1e-4)
    # arrivals = change in retail + consumed
    np.testing.assert_allclose(arrived, s["retail"] - s["retail"][..., :1] + s["cum_consumed"],
                               rtol=1e-5, atol=1e-4)
    assert exported[..., -1].max() > 1000  # the check is not vacuous: tonnes moved


def test_people_balance(baseline_traj):
    s = stocks(baseline_traj)
    people = sum(s[k] for k in PEOPLE_STOCKS)
    deaths = s["cum_deaths_fentanyl"] + s["cum_deaths_heroin_only"] + s["cum_deaths_background"]
    np.testing.assert_allclose(people - people[..., :1], s["cum_initiation"] - deaths,
                               rtol=1e-6, atol=1.0)
    assert deaths[..., -1].max() > 1e5


def test_no_negative_stocks_over_random_draws():
    params = random_parameters(64, seed=1)
    traj = integrate(params, LeverSet.from_mapping({}), SHORT)
    s = {name: traj.stock_at(name, SHORT.output_times) for name in PHYSICAL_STOCKS}  # monthly
    for name in PHYSICAL_STOCKS:
        # a stock decaying towards zero may undershoot zero by the integration error, of the
        # order of atol + rtol x its size earlier in the run (each draw takes its own steps);
        # nothing more
        atol = SHORT.atol_mass if name in ("capacity", "in_transit", "retail") else SHORT.atol_people
        peak = np.abs(s[name]).max(axis=-1)
        allowed = 10 * (atol + SHORT.rtol * peak)
        worst = (-s[name].min(axis=-1) / allowed).max()
        assert worst <= 1.0, f"{name} went negative: {s[name].min()}"
    assert np.all(np.isfinite(traj.states))


def test_zero_supply_gives_zero_fentanyl_deaths():
    params = ModelParameters(capacity_2010_china=0.0, capacity_2010_india=0.0,
                             capacity_2010_other=0.0, capacity_entry_rate=0.0)
    ds = to_dataset(integrate(params, LeverSet.from_mapping({}), SHORT), params,
                    LeverSet.from_mapping({}), SHORT)
    assert float(abs(ds.deaths_fentanyl).max()) == 0.0
    assert float(ds.fentanyl_share.max()) == 0.0
    assert float(ds.deaths_heroin.min()) > 1000  # heroin deaths go on
    # synthetic deaths are then only the non-fentanyl background (tramadol etc.)
    np.testing.assert_allclose(ds.deaths_synthetic, params.background_synthetic_deaths, rtol=1e-6)


def test_interdiction_near_one_stops_arrivals():
    params = ModelParameters(seizure_hazard_mail_2013=5.0, seizure_hazard_land_2013=5.0)
    full = {"start": 2010.0, "ramp": 0.01, "level": 100.0, "mode": "scale"}
    levers = LeverSet.from_mapping({"interdiction_mail": full, "interdiction_land": full})
    ds = to_dataset(integrate(params, levers, SHORT), params, levers, SHORT)
    default = ModelParameters()
    base = to_dataset(integrate(default, LeverSet.from_mapping({}), SHORT), default,
                      LeverSet.from_mapping({}), SHORT)
    assert float(ds.seizure_probability.sel(time=slice(2011, None)).min()) > 0.999999
    arrivals = ds.arrivals.sel(year=slice(2011, None)).sum("source")
    exports = ds.exports.sel(time=slice(2011, None)).sum("source").mean("time")
    assert float(arrivals.max()) < 1e-6 * float(exports.max())
    assert ds.deaths_fentanyl.sel(year=2020).item() < 1e-3 * base.deaths_fentanyl.sel(year=2020).item()


def test_no_users_no_overdose_deaths():
    params = ModelParameters(untreated_2010=0.0, in_treatment_2010=0.0, remission_2010=0.0,
                             initiation_rate=0.0)
    ds = to_dataset(integrate(params, LeverSet.from_mapping({}), SHORT), params,
                    LeverSet.from_mapping({}), SHORT)
    assert float(abs(ds.deaths_fentanyl).max()) == 0.0
    assert float(abs(ds.deaths_heroin).max()) == 0.0
    assert float(ds.fentanyl_share.max()) > 0.1  # the supply is there, nobody to die of it


def test_tighter_tolerance_changes_annual_deaths_by_less_than_0_1_percent():
    params, levers = ModelParameters(), LeverSet.from_mapping({})
    loose = to_dataset(integrate(params, levers, SolverSettings()), params, levers, SolverSettings())
    tight_settings = SolverSettings(method="DOP853", rtol=1e-10, atol_mass=1e-10, atol_people=1e-7)
    tight = to_dataset(integrate(params, levers, tight_settings), params, levers, tight_settings)
    for name in ("deaths_synthetic", "deaths_fentanyl", "deaths_heroin"):
        rel = abs(loose[name] - tight[name]) / tight[name]
        assert float(rel.max()) < 1e-3, name


def test_batch_equals_single_runs():
    params = random_parameters(4, seed=7)
    levers = LeverSet.from_mapping({})
    batch = to_dataset(integrate(params, levers, SHORT), params, levers, SHORT)
    for i in range(4):
        one_params = params.draw(i)
        one = to_dataset(integrate(one_params, levers, SHORT), one_params, levers, SHORT)
        for name in ("deaths_synthetic", "deaths_heroin", "users_untreated"):
            np.testing.assert_allclose(batch[name].isel(draw=i), one[name].isel(draw=0),
                                       rtol=1e-4, atol=1e-3, err_msg=name)


def test_fentanyl_share_rises_from_near_zero():
    ds = to_dataset(integrate(ModelParameters(), LeverSet.from_mapping({}), SHORT),
                    ModelParameters(), LeverSet.from_mapping({}), SHORT)
    share = ds.fentanyl_share.isel(draw=0)
    assert float(share.sel(time=2010.0)) < 0.01
    assert float(share.sel(time=2020.0)) > 0.2
    assert float(share.diff("time").sel(time=slice(2010, 2019)).min()) >= 0


def test_naloxone_lever_lowers_deaths():
    params = ModelParameters()
    more = LeverSet.from_mapping({"naloxone_kits": {"start": 2020, "ramp": 1, "level": 3,
                                                    "mode": "scale"}})
    base = to_dataset(integrate(params, LeverSet.from_mapping({}), SHORT), params,
                      LeverSet.from_mapping({}), SHORT)
    up = to_dataset(integrate(params, more, SHORT), params, more, SHORT)
    assert up.deaths_synthetic.sel(year=2022).item() < base.deaths_synthetic.sel(year=2022).item()
    np.testing.assert_allclose(up.deaths_synthetic.sel(year=2019), base.deaths_synthetic.sel(year=2019),
                               rtol=1e-6)


def test_china_enforcement_cuts_china_exports_and_others_substitute():
    params = ModelParameters()
    cut = LeverSet.from_mapping({"enforcement_china": {"start": 2020, "ramp": 1, "level": 0.9}})
    base = to_dataset(integrate(params, LeverSet.from_mapping({}), SHORT), params,
                      LeverSet.from_mapping({}), SHORT)
    ds = to_dataset(integrate(params, cut, SHORT), params, cut, SHORT)
    china = lambda d: d.exports.sel(source="china", time=2022.0).item()  # noqa: E731
    india = lambda d: d.capacity.sel(source="india", time=2022.0).item()  # noqa: E731
    assert china(ds) < 0.2 * china(base)
    assert india(ds) > india(base)


def test_solver_failure_names_the_failing_draw(monkeypatch):
    import sim.engine.batch
    from sim.errors import SolverError

    original = sim.engine.batch.BatchModel.derivatives

    def poisoned(self, t, y):
        out = original(self, t, y).reshape(-1, self.n_draws)
        out[:, 1] = np.nan  # draw 1 breaks
        return out.ravel()

    monkeypatch.setattr(sim.engine.batch.BatchModel, "derivatives", poisoned)
    params = ModelParameters(relapse_rate=np.array([0.5, 0.6, 0.7]))
    with pytest.raises(SolverError) as err:  # the numpy path (the compiled one: test_kernel.py)
        integrate(params, LeverSet.from_mapping({}), dataclasses.replace(SHORT, engine="numpy"))
    message = str(err.value)
    assert "failing draw(s) [1]" in message
    assert "'relapse_rate': 0.6" in message
