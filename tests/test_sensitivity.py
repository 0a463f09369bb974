"""Global sensitivity: the Sobol pipeline against the Ishigami function's exact indices, and a tiny
run of the model through the same pipeline (parameters and levers as arrays over draws)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sim.errors import InputError
from sim.model.parameters import ModelParameters
from sim.model.levers import LEVER_SPECS
from sim.study.sensitivity import (Factor, Outcome, build_factors, indices_dataset, model_evaluator,
                             morris, salib_problem, sensitivity_options, shares_history, sobol,
                             sobol_groups)
from sim.engine.solver import SolverSettings

# Ishigami (a=7, b=0.1) on [-pi, pi]^3: exact first-order and total indices (Saltelli et al. 2008).
A, B = 7.0, 0.1
V = A**2 / 8 + B * np.pi**4 / 5 + B**2 * np.pi**8 / 18 + 0.5
V1 = 0.5 * (1 + B * np.pi**4 / 5) ** 2
V2 = A**2 / 8
V13 = B**2 * np.pi**8 * (1 / 18 - 1 / 50)
S1_EXACT = np.array([V1 / V, V2 / V, 0.0])
ST_EXACT = np.array([(V1 + V13) / V, V2 / V, V13 / V])


def ishigami(x: np.ndarray) -> np.ndarray:
    return np.sin(x[:, 0]) + A * np.sin(x[:, 1]) ** 2 + B * x[:, 2] ** 4 * np.sin(x[:, 0])


def test_sobol_pipeline_matches_ishigami_exact_indices():
    factors = [Factor(f"x{i}", "parameter", -np.pi, np.pi, "1") for i in range(3)]
    res = sobol(salib_problem(factors), ishigami, n=2048, bootstrap=100, seed=1)
    assert np.allclose(res["S1"], S1_EXACT, atol=0.04)
    assert np.allclose(res["ST"], ST_EXACT, atol=0.04)
    assert np.all(res["S1_conf"] > 0) and np.all(res["ST_conf"] < 0.1)
    # the half sample is analysed from the first half of the same evaluations
    assert np.allclose(res["ST_half"], ST_EXACT, atol=0.08)
    ds = indices_dataset(factors, res, None, Outcome(), 2048)
    assert all("units" in ds[v].attrs and "long_name" in ds[v].attrs for v in ds.data_vars)
    assert ds.attrs["convergence_max_abs_change_ST"] < 0.08


def test_grouped_sobol_matches_ishigami_group_indices():
    """x1 and x3 as one Sobol group: its first-order index is (V1 + V13) / V, its total index
    1 - V2 / V; the dataset keeps every factor (ranges, Morris) and maps it to its group."""
    factors = [Factor("x0", "parameter", -np.pi, np.pi, "1", group="x0 and x2"),
               Factor("x1", "lever", -np.pi, np.pi, "1"),
               Factor("x2", "parameter", -np.pi, np.pi, "1", group="x0 and x2")]
    assert sobol_groups(factors) == ["x0 and x2", "x1"]
    res = sobol(salib_problem(factors, grouped=True), ishigami, n=2048, bootstrap=50, seed=1)
    assert res["runs"] == 2 * 2048 * (2 + 2)
    assert np.allclose(res["S1"], [(V1 + V13) / V, V2 / V], atol=0.04)
    assert np.allclose(res["ST"], [1 - V2 / V, V2 / V], atol=0.04)
    ds = indices_dataset(factors, res, None, Outcome(), 2048)
    assert list(ds["group"].values) == ["x0 and x2", "x1"] and ds.sizes["factor"] == 3
    assert list(ds["group_size"].values) == [2, 1] and list(ds["group_kind"].values) == [
        "parameter", "lever"]
    assert list(ds["factor_group"].values) == ["x0 and x2", "x1", "x0 and x2"]


def test_parameters_are_grouped_by_role_unless_asked_otherwise():
    base = ModelParameters()
    keep = ("overdose_incidence", "cost_sensitivity", "naloxone_coefficient", "naloxone_kits")
    exclude = [n for n in [*ModelParameters.names(), *LEVER_SPECS] if n not in keep]
    grouped = build_factors(base, sensitivity_options({"exclude": exclude}))
    assert {f.name: f.sobol_group for f in grouped} == {
        "overdose_incidence": "fitted parameters", "cost_sensitivity": "substitution constants",
        "naloxone_coefficient": "other uncertain parameters", "naloxone_kits": "naloxone_kits"}
    alone = build_factors(base, sensitivity_options({"exclude": exclude, "sobol_groups": "none"}))
    assert sorted(f.sobol_group for f in alone) == sorted(keep)
    with pytest.raises(InputError, match=r"sensitivity\.sobol_groups: value 'roles' not allowed; "
                                         r"allowed: role"):
        sensitivity_options({"sobol_groups": "roles"})


def test_morris_ranks_ishigami_inputs():
    factors = [Factor(f"x{i}", "parameter", -np.pi, np.pi, "1") for i in range(3)]
    res = morris(salib_problem(factors), ishigami, trajectories=40, levels=4, bootstrap=50, seed=0)
    assert res["mu_star"][1] > res["mu_star"][2] > 0 and res["runs"] == 40 * 4


def test_model_sobol_in_one_batch_has_levers_and_parameters():
    base = ModelParameters()
    opts = sensitivity_options({"exclude": [n for n in [*ModelParameters.names(), *LEVER_SPECS]
                                            if n not in ("overdose_incidence", "case_fatality_fentanyl",
                                                         "naloxone_kits")],
                                "levers": {"naloxone_kits": {"range": [1, 3], "mode": "scale"}}})
    factors = build_factors(base, opts)
    assert [f.kind for f in factors] == ["parameter", "parameter", "lever"]
    assert factors[0].log and factors[0].lo == pytest.approx(base.overdose_incidence / 1.3)
    calls = []
    evaluate = model_evaluator(base, factors, SolverSettings(end_year=2022),
                               Outcome(window=(2020, 2022)), 2020.0, 1.0, chunk=64,
                               progress=calls.append)
    res = sobol(salib_problem(factors), evaluate, n=4, bootstrap=20, seed=0)
    assert res["runs"] == 8 * (3 + 2) and len(calls) == 1      # one batch call
    assert np.all(np.isfinite(res["ST"])) and res["ST"][0] > res["ST"][2]


def test_bad_sensitivity_options_are_one_line_errors():
    with pytest.raises(InputError, match="sensitivity.sobol_n: value 30 .*power of 2"):
        sensitivity_options({"sobol_n": 30})
    with pytest.raises(InputError, match="sensitivity.levers.naloxone: unknown key"):
        build_factors(ModelParameters(), sensitivity_options({"levers": {"naloxone": {"range": [1, 2]}}}))
    with pytest.raises(InputError, match="study.outcome.variable: value 'deaths'"):
        Outcome.from_mapping({"variable": "deaths"})


def test_grouped_sobol_draws_posterior_groups_as_whole_draws(monkeypatch):
    """Two fitted parameters that the posterior ties together (a row's second value is a function
    of its first) reach the model as posterior rows, never as an independent combination; a
    member given a range of its own stays uniform on it."""
    import sim.study.sensitivity as sensitivity
    names = ["overdose_incidence", "fentanyl_incidence_multiplier", "untreated_2010"]
    first = np.linspace(0.10, 0.20, 50)
    values = np.column_stack([first, 1.0 + 20.0 * first, np.full(50, 9.0e5)])
    base = ModelParameters()
    exclude = [n for n in [*ModelParameters.names(), *LEVER_SPECS] if n not in names]
    opts = sensitivity_options({"exclude": exclude, "ranges": {"untreated_2010": [8.0e5, 1.0e6]}})
    factors = build_factors(base, opts, (names, values))
    assert {f.group for f in factors} == {"fitted parameters"}
    joint = sensitivity.joint_groups(factors, (names, values))["fitted parameters"]
    assert sorted(factors[j].name for j in joint) == sorted(names[:2])
    seen = []

    def fake_result_dataset(params, levers, settings):
        seen.append(params.as_arrays())
        n = params.n_draws
        return xr.Dataset({"deaths_overdose": (("year", "draw"), np.ones((1, n)))},
                          coords={"year": [2030]}), {}

    monkeypatch.setattr(sensitivity, "result_dataset", fake_result_dataset)
    evaluate = model_evaluator(base, factors, SolverSettings(), Outcome(window=(2030, 2030)),
                               2026.0, 1.0, chunk=1000, posterior=(names, values),
                               share_history=False)
    x = sobol_sample_matrix(salib_problem(factors, grouped=True), 64)
    evaluate(x)
    got = seen[0]
    assert np.allclose(got["fentanyl_incidence_multiplier"], 1.0 + 20.0 * got["overdose_incidence"])
    assert set(np.round(got["overdose_incidence"], 12)) <= set(np.round(first, 12))
    assert len(set(got["untreated_2010"])) > 10                 # its own uniform range
    assert got["untreated_2010"].min() >= 8.0e5 and got["untreated_2010"].max() <= 1.0e6


def sobol_sample_matrix(problem, n):
    from SALib.sample import sobol as sobol_sample
    return sobol_sample.sample(dict(problem), n, calc_second_order=False, seed=0)


def test_shared_history_gives_the_outcomes_of_whole_runs():
    """Rows of a Sobol sample that differ only in levers acting from 2026 share their integration
    to 2026 (`outcome_with_shared_history`): each row's cumulative deaths 2026-2035 equal those of
    its whole run 2010-2035 to the solver's tolerance (measured within 3e-6)."""
    from tests.conftest import calibrated_params
    base = calibrated_params()
    keep = ["overdose_incidence", "fentanyl_incidence_multiplier", "naloxone_kits",
            "enforcement_china_precursor"]
    exclude = [n for n in [*ModelParameters.names(), *LEVER_SPECS] if n not in keep]
    factors = build_factors(base, sensitivity_options({"exclude": exclude}))
    settings, outcome = SolverSettings(), Outcome(window=(2026, 2035))
    assert shares_history(settings, outcome, 2026.0)
    assert not shares_history(settings, Outcome(variable="seizures_fy", window=(2026, 2035)), 2026.0)
    assert not shares_history(settings, Outcome(window=(2024, 2035)), 2026.0)
    x = sobol_sample_matrix(salib_problem(factors), 8)      # 8 x (4 + 2) rows, 3 parameter sets each
    shared = model_evaluator(base, factors, settings, outcome, 2026.0, 1.0, chunk=20)(x)
    whole = model_evaluator(base, factors, settings, outcome, 2026.0, 1.0, chunk=20,
                            share_history=False)(x)
    np.testing.assert_allclose(shared, whole, rtol=1e-4)
    assert np.ptp(whole) > 0.01 * np.mean(whole)             # the rows differ: not vacuous
