"""The compiled engine (sim/engine/kernel.py): its flows are `sim.model.flows.evaluate` (compiled and as
Python), its trajectories agree with solve_ivp and a Radau reference, and the engine switch."""

import re
from pathlib import Path

import numpy as np
import pytest

from sim.engine import kernel
from sim.errors import InputError, SolverError
from sim.model.levers import LEVER_SPECS, LeverSet
from sim.engine.batch import BatchModel
from sim.model import flows
from sim.model.parameters import ModelParameters
from sim.results.dataset import to_dataset
from sim.engine.solver import SolverSettings, integrate
from sim.model.state import LAYOUT

DEATHS = ("deaths_synthetic", "deaths_fentanyl", "deaths_heroin")


def random_draws(n: int, seed: int) -> ModelParameters:
    """n draws with every parameter spread +-30 % around its default, inside its bounds."""
    rng = np.random.default_rng(seed)
    base = ModelParameters()
    changes = {}
    for name in ModelParameters.names():
        lo, hi = ModelParameters.metadata(name)["bounds"]
        value = float(getattr(base, name))
        changes[name] = np.clip(value * rng.uniform(0.7, 1.3, n), lo, hi)
    return base.replace(**changes)


def intervention_levers(n: int, seed: int) -> LeverSet:
    """Interventions that vary by draw, including a 'scale' ramp over a changing history."""
    rng = np.random.default_rng(seed)
    return LeverSet.from_mapping({
        "naloxone_kits": {"start": rng.uniform(2016, 2024, n), "ramp": rng.uniform(0.5, 3, n),
                          "level": rng.uniform(0.5, 3, n), "mode": "scale"},
        "enforcement_india_finished": {"start": 2020.5, "level": rng.uniform(0, 0.9, n)},
        "enforcement_china_precursor": {"start": 2021.5, "ramp": 0.5, "level": rng.uniform(0, 0.9, n)},
        "interdiction_mail": {"start": 2021.0, "ramp": 2.0, "level": 3.0, "mode": "scale"},
        "test_strips": {"start": 2022.0, "level": 5e6},
        "moud_capacity": {"start": 2018.2, "ramp": 0.5, "level": 1.5, "mode": "scale",
                          "end": rng.uniform(2018.4, 2023, n)},   # temporary, per-draw end
        "prevention": {"start": rng.uniform(2019, 2030, n), "level": 0.2},
    })


@pytest.mark.parametrize("t", [2010.0, 2013.9, 2016.7, 2019.5, 2021.3, 2023.25, 2030.0])
def test_every_engine_evaluates_the_one_statement_of_the_model(t):
    """The kernel's derivatives and the batch path's equal `flows.evaluate` run as plain Python
    (the source itself, not a compiled copy) at random states, parameters and interventions."""
    n = 16
    params, levers = random_draws(n, seed=1), intervention_levers(n, seed=2)
    model = BatchModel(params, levers)
    rng = np.random.default_rng(3)
    y = model.initial_state(2010.0) * rng.uniform(0.3, 40.0, (LAYOUT.size, n))
    y[LAYOUT.slices["capacity"]] *= rng.uniform(0, 1, (LAYOUT.stocks["capacity"].size, n)) < 0.8  # some zero
    expected = np.empty((LAYOUT.size, n))
    lever_values = levers.value_matrix(t, n)
    unreported = np.empty((LAYOUT.size, n))
    for d in range(n):
        flows.evaluate.py_func(t, y[:, d].copy(), model.records[d], lever_values[d],
                               expected[:, d], np.empty(flows.N_AUX),
                               flows.work_array(model.records[d]), True)
        flows.evaluate.py_func(t, y[:, d].copy(), model.records[d], lever_values[d],
                               unreported[:, d], np.empty(flows.N_AUX),
                               flows.work_array(model.records[d]), False)
    # the integrators skip the auxiliaries (report=False): the derivatives are the same bits
    np.testing.assert_array_equal(unreported, expected)
    kernel_dy = kernel.draw_derivatives(t, y, params, levers)
    batch_dy = model.derivatives(t, y.ravel()).reshape(LAYOUT.size, n)
    np.testing.assert_allclose(kernel_dy, expected, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(batch_dy, expected, rtol=1e-11, atol=1e-12)


def test_lever_fits_are_exact_on_a_segment_without_kinks():
    levers = intervention_levers(8, seed=4)
    history, interventions = kernel.lever_tables(levers, 8)
    fits = np.empty((history.shape[0], kernel.LEVER_FIT_COLUMNS))
    t_a, t_b = 2018.0, 2019.0   # naloxone history rises; some scale ramps overlap
    for d in range(8):
        own = {x for lever in levers.levers.values() if lever.start is not None
               for x in np.ravel([np.broadcast_to(lever.start, (8,))[d],
                                  (np.broadcast_to(lever.start, (8,))
                                   + np.broadcast_to(lever.ramp, (8,)))[d]])}
        knots = {x for spec in LEVER_SPECS.values() for x, _ in spec.history}
        edges = [t_a] + sorted(x for x in own | knots if t_a < x < t_b) + [t_b]
        for a, b in zip(edges[:-1], edges[1:]):
            kernel.fit_levers(a, b, history, interventions[d], fits)
            for t in np.linspace(a, b, 7):
                for i, name in enumerate(levers.levers):
                    exact = np.broadcast_to(levers[name](t), (8,))[d]
                    value = fits[i, 0] + (t - a) * (fits[i, 1] + (t - a) * fits[i, 2])
                    assert value == pytest.approx(exact, rel=1e-12, abs=1e-9), (name, d, t)


def _held_flags(levers: LeverSet, n: int, seed: int) -> dict[float, set[float]]:
    """`hold_market_terms`'s decision on every piece between input kinks (the stepper holds the
    terms once per piece) of `n` random draws: start -> flags seen."""
    from sim.engine.solver import kernel_edges
    params = random_draws(n, seed)
    records = flows.parameter_records(params)
    history, interventions = kernel.lever_tables(levers, n)
    _, kinks = kernel_edges(SolverSettings(output_step=1.0), 2010.0)
    edges, counts = kernel.draw_edges(kinks, levers, n)   # the pieces the stepper holds on
    fits = np.empty((history.shape[0], kernel.LEVER_FIT_COLUMNS))
    lv, saved = np.empty(history.shape[0]), np.empty(flows.N_WORK)
    held_dy, fresh_dy, aux = np.empty(flows.N_STATE), np.empty(flows.N_STATE), np.empty(flows.N_AUX)
    states = BatchModel(params, levers).initial_state(2010.0) * 1.7   # (state, draw)
    seen: dict[float, set[float]] = {}
    for d in range(n):
        work = flows.work_array(records[d])
        y = np.ascontiguousarray(states[:, d])
        own = edges[d, :counts[d]]
        for a, b in zip(own[:-1], own[1:]):
            kernel.fit_levers(a, b, history, interventions[d], fits)
            kernel.hold_market_terms(a, b, records[d], fits, lv, work, saved)
            flag = work[flows.WORK.terms_fixed]
            seen.setdefault(round(float(a), 4), set()).add(flag)
            if flag == flows.TERMS_FREE:
                continue
            # held terms are those computed afresh anywhere on the segment, and so is dy/dt
            for t in np.linspace(a, b, 5):
                for i in range(lv.size):
                    lv[i] = fits[i, 0] + (t - a) * (fits[i, 1] + (t - a) * fits[i, 2])
                fresh = flows.work_array(records[d])
                flows.evaluate(t, y, records[d], lv, held_dy, aux, work, False)
                flows.evaluate(t, y, records[d], lv, fresh_dy, aux, fresh, False)
                np.testing.assert_allclose(held_dy, fresh_dy, rtol=1e-14, atol=0.0,
                                           err_msg=f"draw {d} at {t}")
    return seen


def test_market_terms_are_held_only_where_they_do_not_change():
    """The stepper computes the market's time-and-lever terms once on a piece between input kinks
    where they are constant (`kernel.hold_market_terms`): the fentanyl channels' before FY2013
    (heroin's cost still trends), all of them from April 2024; never while a seizure path, an
    enforcement ramp or a 2023 disruption moves; and holding them leaves dy/dt as computed
    afresh.  Calendar years are no kinks: the piece from mid 2024 runs to the window's end."""
    seen = _held_flags(LeverSet.from_mapping({}), 4, seed=21)
    assert 2015.0 not in seen and 2030.0 not in seen
    assert seen[2010.0] == seen[2012.0] == {flows.FENTANYL_TERMS_FIXED}
    for start in (2013.25, 2014.0, 2018.25, 2019.33, 2021.0, 2023.33, 2023.87, 2024.12):
        assert seen[start] == {flows.TERMS_FREE}, start
    for start in (2024.25, 2024.5):
        assert seen[start] == {flows.ALL_TERMS_FIXED}, start


def test_a_ramping_intervention_stops_the_market_terms_being_held():
    """A land interdiction surge 2026-2028 with a one-year ramp (and back by 2030): the market's
    terms change on its ramps and are held again once it is at its level and after it ends."""
    levers = LeverSet.from_mapping({"interdiction_land": {
        "start": 2026.0, "ramp": 1.0, "level": 2.0, "mode": "scale", "end": 2029.0}})
    seen = _held_flags(levers, 3, seed=5)
    assert seen[2026.0] == seen[2029.0] == {flows.TERMS_FREE}
    assert seen[2024.5] == seen[2027.0] == seen[2030.0] == {flows.ALL_TERMS_FIXED}


def test_compiled_engine_matches_solve_ivp_with_per_draw_interventions():
    n = 24
    params, levers = random_draws(n, seed=5), intervention_levers(n, seed=6)
    results = {}
    for engine in ("compiled", "numpy"):   # two approximations: at an rtol below the 1e-4 compared
        settings = SolverSettings(output_step=0.25, engine=engine, rtol=1e-6)
        traj = integrate(params, levers, settings)
        assert traj.stats["engine"] == engine
        results[engine] = to_dataset(traj, params, levers, settings)
    for name in DEATHS + ("seizures_fy", "arrivals"):
        a, b = results["compiled"][name], results["numpy"][name]
        # 1e-3: the third model's supply capacity is a ceiling (a min() kink in the flows) that
        # solve_ivp's steps cross (the compiled stepper keeps such steps short); up to 7e-4
        # measured at rtol 1e-6
        assert float((abs(a - b) / abs(b).clip(1e-9)).max()) < 1e-3, name
    np.testing.assert_allclose(results["compiled"]["users_untreated"], results["numpy"]["users_untreated"],
                               rtol=3e-5)   # two approximations at rtol 1e-6


def test_compiled_engine_is_accurate_against_a_tight_reference():
    n = 6
    params = random_draws(n, seed=7)
    levers = LeverSet.from_mapping({})
    fast = SolverSettings(output_step=1.0, engine="compiled")
    reference = SolverSettings(output_step=1.0, method="Radau", rtol=1e-10, atol_mass=1e-10,
                               atol_people=1e-7)
    a = to_dataset(integrate(params, levers, fast), params, levers, fast)
    b = to_dataset(integrate(params, levers, reference), params, levers, reference)
    worst = max(float((abs(a[v] - b[v]) / abs(b[v])).max()) for v in DEATHS)
    # 1.5e-4 measured (heroin deaths in their retirement); 2.4e-3 before the stepper kept steps
    # across a switch of the flows short and restarted the running totals yearly
    assert worst < 5e-4


def posterior_draws(rows: list[int]) -> ModelParameters:
    """Rows of the committed posterior on the calibrated baseline."""
    from sim.calibrate.ensemble import posterior_path
    from sim.calibrate.fit import read_draws
    from tests.conftest import calibrated_params
    names, values = read_draws(posterior_path(None))
    return calibrated_params().replace(**{k: values[rows, i] for i, k in enumerate(names)})


def test_steps_across_a_kink_of_the_flows_stay_short_and_accurate():
    # posterior rows 3922 (a fentanyl channel's shipments kink in late 2012: its cumulative
    # output was 1% off at 2013 when one RK45 step crossed the kink, as the embedded error
    # estimate does not see it), 1247 and 2152 (heroin retiring 2025-2030, annual deaths a few)
    params = posterior_draws([3922, 1247, 2152])
    levers = LeverSet.from_mapping({})
    fast = SolverSettings(output_step=1.0)
    reference = SolverSettings(output_step=1.0, method="Radau", rtol=1e-10, atol_mass=1e-10,
                               atol_people=1e-7)
    a = to_dataset(integrate(params, levers, fast), params, levers, fast)
    b = to_dataset(integrate(params, levers, reference), params, levers, reference)
    worst = max(float((abs(a[v] - b[v]) / np.maximum(abs(b[v]), 1.0)).max()) for v in DEATHS)
    assert worst < 2e-4      # 6e-5 measured; 1.4e-2 before


def test_a_switch_that_only_rounding_flips_does_not_shrink_the_steps():
    # arrivals = demand up to rounding whenever spare capacity covers the shortfall: a switch
    # code that flipped with it made posterior row 529 take 1,039 steps instead of about 100
    params = posterior_draws([529] + list(range(0, 4000, 10)))
    traj = integrate(params, LeverSet.from_mapping({}), SolverSettings(output_step=1.0))
    assert traj.stats["steps_max"] < 400, traj.stats


def test_one_draw_gives_the_same_numbers_alone_and_in_a_batch():
    params, levers = random_draws(6, seed=8), intervention_levers(6, seed=9)
    settings = SolverSettings(output_step=1.0, engine="compiled")
    batch = integrate(params, levers, settings).states
    # per-draw steps: draw 3 integrated alone is bit-identical to its column in the batch
    alone_levers = LeverSet.from_mapping({
        name: ({"start": np.atleast_1d(np.broadcast_to(lv.start, (6,))[3:4]),
                "ramp": np.atleast_1d(np.broadcast_to(lv.ramp, (6,))[3:4]),
                "level": np.atleast_1d(np.broadcast_to(lv.level, (6,))[3:4]), "mode": lv.mode,
                **({"end": np.atleast_1d(np.broadcast_to(lv.end, (6,))[3:4])}
                   if lv.end is not None else {})}
               if lv.start is not None else {})
        for name, lv in levers.levers.items()})
    one = params.replace(**{k: v[3:4] for k, v in params.as_arrays().items()})
    alone = integrate(one, alone_levers, settings)
    np.testing.assert_array_equal(alone.states[:, 0], batch[:, 3])
    # and the dataset's auxiliaries, which read each draw's own lever values (levers per draw)
    from sim.results.dataset import SERIES
    batch_ds = to_dataset(integrate(params, levers, settings), params, levers, settings)
    alone_ds = to_dataset(alone, one, alone_levers, settings)
    for name in SERIES:
        np.testing.assert_array_equal(alone_ds[name].isel(draw=0).values,
                                      batch_ds[name].isel(draw=3).values, err_msg=name)


def test_auxiliaries_reported_on_the_way_equal_those_recomputed_from_the_stocks():
    """Annual outputs: the engine reports the series auxiliaries from the evaluation that ends
    each step at a year boundary; they equal `BatchModel.auxiliaries_over` at the stored stocks
    (exact lever values, market terms afresh) to rounding, with interventions per draw too.  The
    engine's levers come from one quadratic fit per piece between input kinks, exact but for
    rounding that grows over a piece: up to 4e-12 relative measured (naloxone, 2026-2028)."""
    import dataclasses
    from sim.results.dataset import SERIES
    params, levers = random_draws(6, seed=12), intervention_levers(6, seed=13)
    settings = SolverSettings(output_step=1.0, engine="compiled")
    traj = integrate(params, levers, settings)
    assert set(traj.auxiliaries) == set(SERIES)
    reported = to_dataset(traj, params, levers, settings)
    recomputed = to_dataset(dataclasses.replace(traj, auxiliaries={}), params, levers, settings)
    for name in SERIES:
        np.testing.assert_allclose(reported[name].values, recomputed[name].values, rtol=1e-10,
                                   atol=1e-300, err_msg=name)
    # monthly outputs: not every output time ends a step, so none are reported
    assert not integrate(params, levers, SolverSettings(output_step=1 / 12)).auxiliaries


def test_failing_draw_is_named(monkeypatch):
    records = flows.parameter_records

    def poisoned(params):  # parameters pass validation; a non-finite rate appears in draw 2 only
        out = records(params)
        out["overdose_incidence"][2] = np.inf
        return out
    monkeypatch.setattr(flows, "parameter_records", poisoned)
    with pytest.raises(SolverError, match=r"failing draw\(s\) \[2\]; parameters of draw 2"):
        integrate(random_draws(5, seed=10), LeverSet.from_mapping({}),
                  SolverSettings(engine="compiled"))


def test_engine_choice_is_validated():
    with pytest.raises(InputError, match="solver.engine: value 'fast' not allowed; allowed: auto"):
        SolverSettings(engine="fast")
    with pytest.raises(InputError, match="solver.engine: value 'compiled' runs RK45 only"):
        SolverSettings(engine="compiled", method="Radau")


def test_auto_engine_runs_other_methods_on_the_numpy_path():
    settings = SolverSettings(end_year=2012, method="Radau")
    assert not settings.uses_kernel
    traj = integrate(ModelParameters(), LeverSet.from_mapping({}), settings)
    assert traj.stats["engine"] == "numpy" and traj.stats["method"] == "Radau"


def test_machine_code_is_checked_against_the_source(monkeypatch):
    """Compiled flows that disagree with `flows.evaluate` run as Python (e.g. stale cached machine
    code after an edit of the layout) are recompiled, and if they still disagree the run stops."""
    kernel.verify_machine_code()
    assert kernel._VERIFIED
    recompiled = []
    source = flows.evaluate.py_func

    class Drifted:   # the source now says 1 % more of every flow than the machine code
        def py_func(t, y, p, lv, dy, aux, work, report):
            source(t, y, p, lv, dy, aux, work, report)
            dy *= 1.01

    monkeypatch.setattr(kernel, "_compiled_functions", lambda: [type("D", (), {
        "recompile": lambda self: recompiled.append(1)})()])
    monkeypatch.setattr(kernel.flows, "evaluate", Drifted)
    monkeypatch.setattr(kernel, "_VERIFIED", False)
    with pytest.raises(RuntimeError, match="compiled flows differ from sim.model.flows"):
        kernel.verify_machine_code()
    assert recompiled == [1]


def test_rk45_tableau_is_the_published_dormand_prince_pair():
    """The kernel's constants (scipy's public RK45 class attributes) are Dormand and Prince's
    (1980, J. Comput. Appl. Math. 6:19-26, table 2) 5(4) pair: nodes, stage matrix, fifth-order
    weights and the error weights b4 - b5 (scipy's sign); and no private scipy module is imported."""
    from fractions import Fraction as F

    c = [0, F(1, 5), F(3, 10), F(4, 5), F(8, 9), 1]
    a = [[], [F(1, 5)], [F(3, 40), F(9, 40)], [F(44, 45), F(-56, 15), F(32, 9)],
         [F(19372, 6561), F(-25360, 2187), F(64448, 6561), F(-212, 729)],
         [F(9017, 3168), F(-355, 33), F(46732, 5247), F(49, 176), F(-5103, 18656)]]
    b5 = [F(35, 384), 0, F(500, 1113), F(125, 192), F(-2187, 6784), F(11, 84), 0]
    b4 = [F(5179, 57600), 0, F(7571, 16695), F(393, 640), F(-92097, 339200), F(187, 2100), F(1, 40)]
    np.testing.assert_allclose(kernel.RK_C, [float(x) for x in c], rtol=1e-15)
    for i, row in enumerate(a):
        np.testing.assert_allclose(kernel.RK_A[i, :i], [float(x) for x in row], rtol=1e-15)
        assert not kernel.RK_A[i, i:].any()
    np.testing.assert_allclose(kernel.RK_B, [float(x) for x in b5[:6]], rtol=1e-15)
    np.testing.assert_allclose(kernel.RK_E, [float(q - p) for p, q in zip(b5, b4)], rtol=1e-14,
                               atol=1e-17)
    assert [kernel.C1, kernel.A54, kernel.B5, kernel.E6] == [0.2, float(a[5][4]), float(b5[5]),
                                                              float(b4[6] - b5[6])]
    assert kernel.ERROR_EXPONENT == -1 / 5
    source = Path(kernel.__file__).read_text()
    assert not re.search(r"^\s*(from|import)\s+scipy[\w.]*\._", source, re.M)
