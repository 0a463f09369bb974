"""Compiled batch engine (optional, needs numba): RK45 run per draw, draws spread over the cores.

`sim.model.flows` states the model once, in numpy over a batch of draws.  This module states the same
flows for one draw in scalar form, so numba can compile them into a loop with no temporaries, and
runs scipy's own Dormand-Prince 5(4) pair (its tableau, error norm, step-size control, initial
step and fourth-order dense output, read from `scipy.integrate`) separately for every draw, in
parallel over draws.  Each draw has its own step size, so a kink in one draw no longer shortens
the steps of the others.  `tests/test_kernel.py` checks `draw_rhs` against `sim.model.flows.rhs` at
random states, times, parameters and interventions, and the trajectories against `solve_ivp`.

Without numba, `available()` is False and `sim.engine.solver` uses `solve_ivp` over the batch instead
(the pure-numpy path, same results within the tolerances).  Hydra-free.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate._ivp.rk import RK45

from sim.model.levers import LEVER_SPECS, LeverSet
from sim.model.flows import INTERDICTION_RAMP_END, INTERDICTION_RAMP_START, POPULATION, \
    POPULATION_GROWTH_AFTER_2017, POPULATION_YEARS
from sim.model.parameters import ModelParameters
from sim.model.state import LAYOUT, ROUTES, SOURCES

try:
    import numba
    from numba import njit, prange
except ImportError:  # the pure-numpy path in sim.engine.solver takes over
    numba = None

# Where each stock starts in the state vector (sim.model.state.LAYOUT); multi-dimensional stocks are
# laid out in C order of (source, route).
_START = {name: sl.start for name, sl in LAYOUT.slices.items()}
CAPACITY, IN_TRANSIT, RETAIL = _START["capacity"], _START["in_transit"], _START["retail"]
UNTREATED, IN_TREATMENT, REMISSION = (_START["untreated"], _START["in_treatment"],
                                      _START["remission"])
CUM_EXPORTS, CUM_SEIZED, CUM_ARRIVALS = (_START["cum_exports"], _START["cum_seized"],
                                         _START["cum_arrivals"])
CUM_CONSUMED, CUM_INITIATION = _START["cum_consumed"], _START["cum_initiation"]
CUM_TREATMENT_ENTRIES = _START["cum_treatment_entries"]
CUM_DEATHS_FENTANYL = _START["cum_deaths_fentanyl"]
CUM_DEATHS_HEROIN_ONLY = _START["cum_deaths_heroin_only"]
CUM_DEATHS_OTHER_SYNTHETIC = _START["cum_deaths_other_synthetic"]
CUM_DEATHS_BACKGROUND = _START["cum_deaths_background"]
N_SOURCES, N_ROUTES, N_STATE = len(SOURCES), len(ROUTES), LAYOUT.size
# The flows read only the physical stocks, which come first in the layout; the cumulative stocks
# after them are integrals of flows.  Stage states are therefore formed for the first N_DRIVING
# rows only (the step's solution and error estimate still cover every row).
N_DRIVING = LAYOUT.slices["remission"].stop
assert all(sl.start >= N_DRIVING for name, sl in LAYOUT.slices.items() if name.startswith("cum_"))
assert all(sl.stop <= N_DRIVING for name, sl in LAYOUT.slices.items()
           if not name.startswith("cum_"))
MAIL, LAND = ROUTES.index("mail"), ROUTES.index("land")

# Lever rows of the lever tables, by name.
_LEVER = {name: i for i, name in enumerate(LEVER_SPECS)}
ENFORCEMENT = tuple(_LEVER[f"enforcement_{s}"] for s in SOURCES)
ENFORCEMENT_FIRST = ENFORCEMENT[0]
assert ENFORCEMENT == tuple(range(ENFORCEMENT_FIRST, ENFORCEMENT_FIRST + N_SOURCES))
INTERDICTION_MAIL, INTERDICTION_LAND = _LEVER["interdiction_mail"], _LEVER["interdiction_land"]
NALOXONE_KITS, TEST_STRIPS = _LEVER["naloxone_kits"], _LEVER["test_strips"]
MOUD_CAPACITY, TREATMENT_SEEKING = _LEVER["moud_capacity"], _LEVER["treatment_seeking"]
PREVENTION = _LEVER["prevention"]

POP_YEARS = POPULATION_YEARS.astype(float)
assert np.all(np.diff(POP_YEARS) == 1.0)   # us_population finds its knot by index
LOG_POP = np.log(POPULATION)

# scipy's RK45 (Dormand-Prince 5(4)): stage times, stage matrix, weights, error weights, dense output.
RK_C, RK_A, RK_B, RK_E, RK_P = RK45.C, RK45.A, RK45.B, RK45.E, RK45.P
assert RK_C.size == 6 and RK_E.size == 7 and RK_B[1] == 0.0 and RK_E[1] == 0.0
# As scalars and columns, so the compiled loops see compile-time constants.
C1, C2, C3, C4, C5 = RK_C[1:]
A10 = RK_A[1, 0]
A20, A21 = RK_A[2, :2]
A30, A31, A32 = RK_A[3, :3]
A40, A41, A42, A43 = RK_A[4, :4]
A50, A51, A52, A53, A54 = RK_A[5, :5]
B0, B2, B3, B4, B5 = RK_B[[0, 2, 3, 4, 5]]
E0, E2, E3, E4, E5, E6 = RK_E[[0, 2, 3, 4, 5, 6]]
ERROR_EXPONENT = -1.0 / (RK45.error_estimator_order + 1.0)
SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0   # as scipy.integrate._ivp.rk
MAX_STEPS = 1_000_000                              # per draw, before giving up
PARALLEL_CHUNK = 64   # draws handed to a thread at a time: a stalled core delays little

# Floating-point licences for the hot loops: fused multiply-add, reassociation (vectorised sums)
# and reciprocal multiplication; never 'no NaN/inf' (the step control must see NaN).
FAST_MATH = {"contract", "reassoc", "arcp"}

# Failure codes returned per draw.
OK, STEP_TOO_SMALL, TOO_MANY_STEPS = 0, 1, 2
FAILURE_REASONS = {STEP_TOO_SMALL: "step size too small (non-finite or very stiff derivative)",
                   TOO_MANY_STEPS: f"more than {MAX_STEPS} steps"}


def available() -> bool:
    """True when numba is installed and the compiled engine can run."""
    return numba is not None


def parameter_records(params: ModelParameters) -> np.ndarray:
    """Parameters as a structured array over draws (one named float field per parameter, plus the
    log of the interdiction growth, so the flows take an exp instead of a power)."""
    arrays = params.as_arrays()
    arrays["log_interdiction_growth_2013_2018"] = np.log(arrays["interdiction_growth_2013_2018"])
    records = np.empty(params.n_draws, dtype=[(name, "f8") for name in arrays])
    for name, values in arrays.items():
        records[name] = values
    return records


KNOTS = max(len(spec.history) for spec in LEVER_SPECS.values())
# Columns of a lever's row in the history table: knot count, then knot years, then knot values.
COUNT, YEARS, VALUES = 0, 1, 1 + KNOTS
# Last axis of the intervention table (draw, lever, ...): start (yr), ramp (yr), level, flags.
START, RAMP, LEVEL, ACTIVE, SCALE = range(5)
LEVER_FIT_COLUMNS = 5  # value at segment start, c1, c2, and a two-slot cache (see fit_levers)


def lever_tables(levers: LeverSet, n_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """Levers as two float arrays for the kernel (few array arguments keep calls cheap).

    history (lever, column): knot count, knot years (yr), knot values, padded with the last knot;
    interventions (draw, lever, field): start (yr), ramp (yr), level, active (0/1), scale mode (0/1).
    """
    history = np.zeros((len(LEVER_SPECS), 1 + 2 * KNOTS))
    interventions = np.zeros((n_draws, len(LEVER_SPECS), 5))
    interventions[:, :, RAMP] = 1.0
    for i, spec in enumerate(LEVER_SPECS.values()):
        knots = np.array(spec.history, dtype=float)
        history[i, COUNT] = len(knots)
        history[i, YEARS:YEARS + KNOTS] = knots[-1, 0]
        history[i, VALUES:VALUES + KNOTS] = knots[-1, 1]
        history[i, YEARS:YEARS + len(knots)] = knots[:, 0]
        history[i, VALUES:VALUES + len(knots)] = knots[:, 1]
        lever = levers[spec.name]
        if lever.start is not None:
            interventions[:, i, START] = np.broadcast_to(lever.start, (n_draws,))
            interventions[:, i, RAMP] = np.broadcast_to(lever.ramp, (n_draws,))
            interventions[:, i, LEVEL] = np.broadcast_to(lever.level, (n_draws,))
            interventions[:, i, ACTIVE] = 1.0
            interventions[:, i, SCALE] = float(lever.mode == "scale")
    return history, interventions


if numba is not None:
    @njit(error_model="numpy", cache=True)
    def _interp(t, xs, ys, count):
        """Piecewise-linear interpolation through the first `count` knots, flat outside."""
        if t <= xs[0]:
            return ys[0]
        for k in range(1, count):
            if t <= xs[k]:
                w = (t - xs[k - 1]) / (xs[k] - xs[k - 1])
                return ys[k - 1] + w * (ys[k] - ys[k - 1])
        return ys[count - 1]

    @njit(error_model="numpy", cache=True, inline="always")
    def lever_value(t, i, history, intervention):
        """Value of lever row i at time t (yr) for one draw (its `intervention` rows), as
        `sim.model.levers.Lever.__call__`."""
        base = _interp(t, history[i, YEARS:YEARS + KNOTS], history[i, VALUES:VALUES + KNOTS],
                       int(history[i, COUNT]))
        if intervention[i, ACTIVE] == 0.0:
            return base
        weight = min(max((t - intervention[i, START]) / intervention[i, RAMP], 0.0), 1.0)
        level = intervention[i, LEVEL]
        target = level * base if intervention[i, SCALE] != 0.0 else level
        return base + weight * (target - base)

    @njit(error_model="numpy", cache=True)
    def fit_levers(t_a, t_b, history, intervention, coefficients):
        """Quadratic in s = t - t_a through every lever's values at t_a, the midpoint and t_b.

        On a segment without kinks each lever is linear in t, or quadratic while a 'scale'
        intervention ramps over a changing history; the fit is then exact, and evaluating it
        costs two multiply-adds instead of a table search.  Rows: (value at t_a, c1, c2, and two
        cache slots of `seizure_probability`).
        """
        span = t_b - t_a
        for i in range(coefficients.shape[0]):
            v_a = lever_value(t_a, i, history, intervention)
            v_m = lever_value(t_a + 0.5 * span, i, history, intervention)
            v_b = lever_value(t_b, i, history, intervention)
            c2 = 2.0 * (v_b - 2.0 * v_m + v_a) / (span * span) if span > 0.0 else 0.0
            coefficients[i, 0] = v_a
            coefficients[i, 1] = (v_b - v_a) / span - c2 * span if span > 0.0 else 0.0
            coefficients[i, 2] = c2
            coefficients[i, 3] = np.nan   # cache of `seizure_probability`: index, value
            coefficients[i, 4] = np.nan

    @njit(error_model="numpy", cache=True, inline="always")
    def _lever(coefficients, i, s):
        """Lever row i at s yr after the segment start, from `fit_levers`."""
        return coefficients[i, 0] + s * (coefficients[i, 1] + s * coefficients[i, 2])

    @njit(error_model="numpy", cache=True, inline="always")
    def seizure_probability(hazard_2013, interdiction_index, levers, i, since):
        """1 - exp(-hazard x index x effort) (1), as `sim.model.flows.seizure_probability`.  On a segment
        where the effort lever is flat and the index constant (most of them), the value of the
        previous call is reused: same inputs, same bits, one expm1 fewer."""
        if levers[i, 1] == 0.0 and levers[i, 2] == 0.0 and levers[i, 3] == interdiction_index:
            return levers[i, 4]
        value = -np.expm1(-hazard_2013 * interdiction_index * _lever(levers, i, since))
        if levers[i, 1] == 0.0 and levers[i, 2] == 0.0:
            levers[i, 3], levers[i, 4] = interdiction_index, value
        return value

    @njit(error_model="numpy", cache=True, inline="always")
    def us_population(t):
        """US resident population (persons), as `sim.model.flows.us_population`; the census years are
        one year apart, so the knot is found by index, not by search."""
        if t > POP_YEARS[-1]:
            log_pop = LOG_POP[-1] + POPULATION_GROWTH_AFTER_2017 * (t - POP_YEARS[-1])
        elif t < POP_YEARS[0]:
            log_pop = LOG_POP[0] + POPULATION_GROWTH_AFTER_2017 * (t - POP_YEARS[0])
        else:
            k = min(int(t - POP_YEARS[0]), POP_YEARS.size - 2)
            w = (t - POP_YEARS[k]) / (POP_YEARS[k + 1] - POP_YEARS[k])
            log_pop = LOG_POP[k] + w * (LOG_POP[k + 1] - LOG_POP[k])
        return np.exp(log_pop)

    @njit(error_model="numpy", cache=True, fastmath=FAST_MATH)
    def draw_rhs(t, y, p, levers, origin, dy):
        """dy/dt of one draw (stock units per yr) into `dy`: the flows of `sim.model.flows.flows`.

        `levers` holds the lever fits of `fit_levers` for the segment starting at `origin` (yr).
        """
        since = t - origin
        retail = max(y[RETAIL], 0.0)
        untreated = max(y[UNTREATED], 0.0)
        in_treatment = max(y[IN_TREATMENT], 0.0)
        remission = max(y[REMISSION], 0.0)
        population = us_population(t)

        # supply: fentanyl share, interdiction, route split
        fentanyl_equivalent = p["potency_ratio"] * retail / p["retail_turnover_time"]
        share = fentanyl_equivalent / (fentanyl_equivalent + p["heroin_supply"])
        progress = min(max((t - INTERDICTION_RAMP_START)
                           / (INTERDICTION_RAMP_END - INTERDICTION_RAMP_START), 0.0), 1.0)
        interdiction_index = 1.0
        if progress >= 1.0:
            interdiction_index = p["interdiction_growth_2013_2018"]
        elif progress > 0.0:
            interdiction_index = np.exp(progress * p["log_interdiction_growth_2013_2018"])
        seize_mail = seizure_probability(p["seizure_hazard_mail_2013"], interdiction_index,
                                         levers, INTERDICTION_MAIL, since)
        seize_land = seizure_probability(p["seizure_hazard_land_2013"], interdiction_index,
                                         levers, INTERDICTION_LAND, since)
        shift_start = p["route_shift_midyear"] - 0.5 * p["route_shift_duration"]
        shift = min(max((t - shift_start) / p["route_shift_duration"], 0.0), 1.0)
        arrivals_total = 0.0
        for s in range(N_SOURCES):
            capacity = max(y[CAPACITY + s], 0.0)
            enforcement = _lever(levers, ENFORCEMENT_FIRST + s, since)
            exports = capacity * (1.0 - enforcement)
            growth = (p["capacity_growth_rate"] * capacity + p["capacity_entry_rate"]) * (1.0 - share)
            dy[CAPACITY + s] = (growth * (1.0 - enforcement)
                                - p["enforcement_erosion_rate"] * enforcement * capacity)
            dy[CUM_EXPORTS + s] = exports
            if s == 0:
                mail_share = p["mail_fraction_china_early"] + shift * (
                    p["mail_fraction_china_late"] - p["mail_fraction_china_early"])
            elif s == 1:
                mail_share = p["mail_fraction_india"]
            else:
                mail_share = p["mail_fraction_other"]
            for r in range(N_ROUTES):
                k = s * N_ROUTES + r
                in_transit = max(y[IN_TRANSIT + k], 0.0)
                if r == MAIL:
                    shipped, outflow = exports * mail_share, in_transit / p["transit_time_mail"]
                    seized = outflow * seize_mail
                else:
                    shipped, outflow = exports * (1.0 - mail_share), in_transit / p["transit_time_land"]
                    seized = outflow * seize_land
                dy[IN_TRANSIT + k] = shipped - outflow
                dy[CUM_SEIZED + k] = seized
                dy[CUM_ARRIVALS + k] = outflow - seized
                arrivals_total += outflow - seized
        consumption = retail / p["retail_turnover_time"]
        dy[RETAIL] = arrivals_total - consumption
        dy[CUM_CONSUMED] = consumption

        # demand: initiation, treatment, remission
        initiation = p["initiation_rate"] * (1.0 - _lever(levers, PREVENTION, since))
        slots = p["moud_share_illicit"] * _lever(levers, MOUD_CAPACITY, since)
        free = max(1.0 - in_treatment / max(slots, 1.0), 0.0)
        entries = (p["treatment_seeking_rate"] * _lever(levers, TREATMENT_SEEKING, since)
                   * untreated * free)
        exits = in_treatment / p["treatment_duration"]
        to_remission = exits * p["treatment_success_fraction"]
        remitting = p["remission_rate"] * untreated
        relapse = p["relapse_rate"] * remission

        # overdose deaths: incidence x case fatality x rescue factor
        naloxone = -np.expm1(-p["naloxone_coefficient"] * _lever(levers, NALOXONE_KITS, since)
                             / population * 1e5)
        helped = 1.0 - (1.0 - naloxone) * (1.0 - p["rescue_without_naloxone"])
        rescue = 1.0 - p["witnessed_fraction"] * helped
        strips_per_year = _lever(levers, TEST_STRIPS, since)
        coverage = 0.0 if strips_per_year == 0.0 else -np.expm1(
            -p["test_strip_coefficient"] * strips_per_year / population * 1e5)
        strips = 1.0 - p["test_strip_max_effect"] * coverage
        heroin_exposure = 1.0 - share
        fentanyl_exposure = p["fentanyl_incidence_multiplier"] * share * strips
        incidence = p["overdose_incidence"] * (heroin_exposure + fentanyl_exposure)
        fatality = p["case_fatality_heroin"] + (p["case_fatality_fentanyl"]
                                             - p["case_fatality_heroin"]) * share
        od_rate = incidence * fatality * rescue
        fentanyl_weight = fentanyl_exposure * p["case_fatality_fentanyl"]
        heroin_weight = heroin_exposure * p["case_fatality_heroin"]
        involved = fentanyl_weight / max(fentanyl_weight + heroin_weight, 1e-300)
        od_deaths = od_rate * (untreated + p["treatment_overdose_ratio"] * in_treatment)
        od_untreated = od_rate * untreated
        background = p["background_death_rate"]

        dy[UNTREATED] = (initiation + relapse + exits - to_remission - entries - remitting
                         - od_untreated - background * untreated)
        dy[IN_TREATMENT] = (entries - exits - (od_deaths - od_untreated)
                            - background * in_treatment)
        dy[REMISSION] = remitting + to_remission - relapse - background * remission
        dy[CUM_INITIATION] = initiation
        dy[CUM_TREATMENT_ENTRIES] = entries
        dy[CUM_DEATHS_FENTANYL] = involved * od_deaths
        dy[CUM_DEATHS_HEROIN_ONLY] = (1.0 - involved) * od_deaths
        dy[CUM_DEATHS_OTHER_SYNTHETIC] = p["background_synthetic_deaths"]
        dy[CUM_DEATHS_BACKGROUND] = background * (untreated + in_treatment + remission)

    @njit(error_model="numpy", cache=True, fastmath=FAST_MATH, inline="always")
    def _stage_state(y, h, k0, k1, k2, k3, k4, stage, out):
        """out = y + h * sum_{j < stage} A[stage, j] k_j (scipy's RK45 matrix A) for the rows the
        flows read (N_DRIVING); stages j >= `stage` are never read, so stale values of a rejected
        step cannot leak in."""
        if stage == 1:
            for i in range(N_DRIVING):
                out[i] = y[i] + h * (A10 * k0[i])
        elif stage == 2:
            for i in range(N_DRIVING):
                out[i] = y[i] + h * (A20 * k0[i] + A21 * k1[i])
        elif stage == 3:
            for i in range(N_DRIVING):
                out[i] = y[i] + h * (A30 * k0[i] + A31 * k1[i] + A32 * k2[i])
        elif stage == 4:
            for i in range(N_DRIVING):
                out[i] = y[i] + h * (A40 * k0[i] + A41 * k1[i] + A42 * k2[i] + A43 * k3[i])
        else:
            for i in range(N_DRIVING):
                out[i] = y[i] + h * (A50 * k0[i] + A51 * k1[i] + A52 * k2[i] + A53 * k3[i]
                                     + A54 * k4[i])

    @njit(error_model="numpy", cache=True, fastmath=FAST_MATH, inline="always")
    def _store_dense(times, k, t, t_new, y, y_new, step, k0, k1, k2, k3, k4, k5, k6, first, out,
                     d, q):
        """Store rows first.. of the state at `times` inside (t, t_new] into out[:, d, :] by
        scipy's RK45 quartic dense output (q: scratch for its 7 weights); the next index."""
        while k < times.size and times[k] <= t_new:
            if times[k] == t_new:
                for i in range(first, first + out.shape[0]):
                    out[i - first, d, k] = y_new[i]
            else:
                theta = (times[k] - t) / step
                for j in range(7):
                    q[j] = 0.0
                    power = theta
                    for m in range(RK_P.shape[1]):
                        q[j] += RK_P[j, m] * power
                        power *= theta
                for i in range(first, first + out.shape[0]):
                    out[i - first, d, k] = y[i] + step * (
                        q[0] * k0[i] + q[1] * k1[i] + q[2] * k2[i] + q[3] * k3[i]
                        + q[4] * k4[i] + q[5] * k5[i] + q[6] * k6[i])
            k += 1
        return k

    @njit(error_model="numpy", cache=True, fastmath=FAST_MATH)
    def _integrate_draw(y0, p, d, history, intervention, edges, times, series_times, fiscal_times,
                        fiscal_first, rtol, atol, max_step, out, series_out, fiscal_out, stats):
        """RK45 for draw d from edges[0] to edges[-1], stopping at each edge (this draw's input
        kinks), steps at most `max_step` (yr) long.  By dense output it stores the state at `times`
        into out[:, d, :] (state, draw, time), its first rows at `series_times` into
        series_out[:, d, :] and rows fiscal_first.. at `fiscal_times` into fiscal_out[:, d, :].
        Returns a failure code."""
        n = y0.size
        levers = np.empty((history.shape[0], LEVER_FIT_COLUMNS))
        origin = edges[0]
        fit_levers(edges[0], edges[1], history, intervention, levers)
        y = y0.copy()
        t = edges[0]
        k0, k1, k2, k3, k4, k5, k6 = (np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n),
                                      np.zeros(n), np.zeros(n), np.zeros(n))
        y_new = np.empty(n)
        scale = np.empty(n)
        draw_rhs(t, y, p, levers, origin, k0)
        # initial step as scipy.integrate._ivp.common.select_initial_step
        d0 = d1 = 0.0
        for i in range(n):
            scale[i] = atol[i] + abs(y[i]) * rtol
            d0 += (y[i] / scale[i]) ** 2
            d1 += (k0[i] / scale[i]) ** 2
        d0, d1 = np.sqrt(d0 / n), np.sqrt(d1 / n)
        h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
        h0 = min(h0, edges[1] - t)
        for i in range(n):
            y_new[i] = y[i] + h0 * k0[i]
        draw_rhs(t + h0, y_new, p, levers, origin, k1)
        d2 = 0.0
        for i in range(n):
            d2 += ((k1[i] - k0[i]) / scale[i]) ** 2
        d2 = np.sqrt(d2 / n) / h0
        h1 = max(1e-6, h0 * 1e-3) if (d1 <= 1e-15 and d2 <= 1e-15) else \
            (0.01 / max(d1, d2)) ** (-ERROR_EXPONENT)
        h = min(100 * h0, h1, edges[1] - t, max_step)
        nfev, steps, rejected = 2, 0, 0
        q = np.empty(7)
        k_out = _store_dense(times, 0, t, t, y, y, 0.0, k0, k1, k2, k3, k4, k5, k6, 0, out, d, q)
        k_series = _store_dense(series_times, 0, t, t, y, y, 0.0, k0, k1, k2, k3, k4, k5, k6, 0,
                                series_out, d, q)
        k_fiscal = _store_dense(fiscal_times, 0, t, t, y, y, 0.0, k0, k1, k2, k3, k4, k5, k6,
                                fiscal_first, fiscal_out, d, q)
        for seg in range(1, edges.size):
            bound = edges[seg]
            origin = edges[seg - 1]
            fit_levers(origin, bound, history, intervention, levers)
            while t < bound:
                step_rejected = False
                while True:
                    if steps + rejected > MAX_STEPS:
                        return TOO_MANY_STEPS
                    if h < 10.0 * abs(np.nextafter(t, np.inf) - t):
                        return STEP_TOO_SMALL
                    t_new = min(t + h, bound)
                    step = t_new - t
                    _stage_state(y, step, k0, k1, k2, k3, k4, 1, y_new)
                    draw_rhs(t + C1 * step, y_new, p, levers, origin, k1)
                    _stage_state(y, step, k0, k1, k2, k3, k4, 2, y_new)
                    draw_rhs(t + C2 * step, y_new, p, levers, origin, k2)
                    _stage_state(y, step, k0, k1, k2, k3, k4, 3, y_new)
                    draw_rhs(t + C3 * step, y_new, p, levers, origin, k3)
                    _stage_state(y, step, k0, k1, k2, k3, k4, 4, y_new)
                    draw_rhs(t + C4 * step, y_new, p, levers, origin, k4)
                    _stage_state(y, step, k0, k1, k2, k3, k4, 5, y_new)
                    draw_rhs(t + C5 * step, y_new, p, levers, origin, k5)
                    for i in range(n):
                        y_new[i] = y[i] + step * (B0 * k0[i] + B2 * k2[i] + B3 * k3[i]
                                                  + B4 * k4[i] + B5 * k5[i])
                    draw_rhs(t_new, y_new, p, levers, origin, k6)
                    nfev += 6
                    total = 0.0
                    for i in range(n):
                        err = step * (E0 * k0[i] + E2 * k2[i] + E3 * k3[i] + E4 * k4[i]
                                      + E5 * k5[i] + E6 * k6[i])
                        err /= atol[i] + max(abs(y[i]), abs(y_new[i])) * rtol
                        total += err * err
                    norm = np.sqrt(total / n)
                    if norm < 1.0:
                        factor = MAX_FACTOR if norm == 0.0 else \
                            min(MAX_FACTOR, SAFETY * norm ** ERROR_EXPONENT)
                        if step_rejected:
                            factor = min(1.0, factor)
                        h = min(step * factor, max_step)
                        break
                    if not norm >= 1.0:  # NaN: shrink as far as allowed
                        norm = 1e10
                    h = step * max(MIN_FACTOR, SAFETY * norm ** ERROR_EXPONENT)
                    step_rejected = True
                    rejected += 1
                steps += 1
                # dense output at the storage times inside (t, t_new]
                k_out = _store_dense(times, k_out, t, t_new, y, y_new, step, k0, k1, k2, k3, k4,
                                     k5, k6, 0, out, d, q)
                k_series = _store_dense(series_times, k_series, t, t_new, y, y_new, step, k0, k1,
                                        k2, k3, k4, k5, k6, 0, series_out, d, q)
                k_fiscal = _store_dense(fiscal_times, k_fiscal, t, t_new, y, y_new, step, k0, k1,
                                        k2, k3, k4, k5, k6, fiscal_first, fiscal_out, d, q)
                t = t_new
                y, y_new = y_new, y
                k0, k6 = k6, k0
        stats[d, 0], stats[d, 1], stats[d, 2] = nfev, steps, rejected
        return OK

    @njit(error_model="numpy", cache=True, parallel=True)
    def _integrate_batch(y0, records, history, interventions, edges, edge_count, times,
                         series_times, fiscal_times, fiscal_first, rtol, atol, max_step, out,
                         series_out, fiscal_out, stats, status):
        for d in prange(y0.shape[1]):
            status[d] = _integrate_draw(y0[:, d].copy(), records[d], d, history, interventions[d],
                                        edges[d, :edge_count[d]], times, series_times,
                                        fiscal_times, fiscal_first, rtol, atol[:, d].copy(),
                                        max_step[d], out, series_out, fiscal_out, stats)


def draw_edges(edges: np.ndarray, levers: LeverSet, n_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment edges of every draw (yr): the shared `edges` plus the draw's own intervention start
    and end dates inside the window.  Returns edges (n_draws, width) padded with +inf, and counts."""
    extra = [np.broadcast_to(np.asarray(date, dtype=float), (n_draws,))
             for lever in levers.levers.values() if lever.start is not None
             for date in (lever.start, np.asarray(lever.start) + np.asarray(lever.ramp))]
    both = np.concatenate([np.broadcast_to(edges, (n_draws, edges.size)),
                           np.stack(extra, axis=1) if extra else np.empty((n_draws, 0))], axis=1)
    both = np.round(both, 10)
    both[(both < edges[0]) | (both > edges[-1])] = np.inf
    both.sort(axis=1)
    repeated = np.zeros_like(both, dtype=bool)
    repeated[:, 1:] = both[:, 1:] == both[:, :-1]
    both[repeated] = np.inf
    both.sort(axis=1)
    count = np.isfinite(both).sum(axis=1)
    return np.ascontiguousarray(both[:, :count.max()]), count


_VERIFIED = False


def verify_machine_code() -> None:
    """Check the compiled flows against `sim.model.flows.rhs` once a process; recompile if they differ.

    numba's on-disk cache is keyed to this file only: constants taken from other modules (the
    state layout, lever order, population table, scipy's tableau) are frozen into the cached
    machine code, so after an edit elsewhere it could be stale.  A mismatch at a reference state
    triggers a recompilation from the current sources; a mismatch after that is an error.
    """
    global _VERIFIED
    if _VERIFIED:
        return
    from sim.model.flows import ModelContext, initial_state, rhs
    params, levers = ModelParameters(), LeverSet.from_mapping({
        name: {"start": 2021.0, "ramp": 2.0, "level": 1.5, "mode": "scale"}
        for name in ("naloxone_kits", "interdiction_land")})
    ctx = ModelContext.build(params, levers)
    y = initial_state(ctx) * np.linspace(0.5, 40.0, N_STATE)[:, np.newaxis]

    def mismatch() -> float:
        worst = 0.0
        for t in (2012.0, 2015.3, 2022.0, 2030.0):
            expected = rhs(t, y.ravel(), ctx).reshape(y.shape)
            got = draw_derivatives(t, y, params, levers)
            worst = max(worst, float(np.max(np.abs(got - expected)
                                            / np.maximum(np.abs(expected), 1e-12))))
        return worst

    if mismatch() > 1e-9:
        for dispatcher in (_interp, lever_value, fit_levers, _lever, seizure_probability,
                           us_population, draw_rhs, _stage_state, _store_dense, _integrate_draw,
                           _integrate_batch):   # callees before callers
            dispatcher.recompile()
        if mismatch() > 1e-9:
            raise RuntimeError("sim.engine.kernel: compiled flows differ from sim.model.flows.rhs; delete "
                               "sim/__pycache__/kernel*.nb* and report this")
    _VERIFIED = True


def integrate_batch(y0: np.ndarray, params: ModelParameters, levers: LeverSet, edges: np.ndarray,
                    times: np.ndarray, series_times: np.ndarray, series_rows: slice,
                    fiscal_times: np.ndarray, fiscal_rows: slice, rtol: float, atol: np.ndarray,
                    max_step: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict, np.ndarray]:
    """Integrate every draw from y0 (n_state, n_draws) over the segments between `edges` (yr, plus
    each draw's own intervention dates), with steps of at most `max_step` (yr, per draw).

    Returns every state at `times` (yr), shape (n_state, n_draws, n_times); the states
    `series_rows` (leading rows) at `series_times` and `fiscal_rows` at `fiscal_times`, each
    (rows, n_draws, n_times); statistics; and a failure code per draw (0 = ok).
    """
    if numba is None:
        raise RuntimeError("sim.engine.kernel needs numba (pip install numba); use the numpy path")
    verify_machine_code()
    n = y0.shape[1]
    assert series_rows.start == 0
    out = np.empty((N_STATE, n, times.size))  # each draw writes short contiguous runs
    series_out = np.empty((series_rows.stop, n, series_times.size))
    fiscal_out = np.empty((fiscal_rows.stop - fiscal_rows.start, n, fiscal_times.size))
    stats = np.zeros((n, 3), dtype=np.int64)
    status = np.zeros(n, dtype=np.int64)
    previous_chunk = numba.get_parallel_chunksize()
    numba.set_parallel_chunksize(PARALLEL_CHUNK)
    try:
        _integrate_batch(np.ascontiguousarray(y0), parameter_records(params),
                         *lever_tables(levers, n),
                         *draw_edges(np.asarray(edges, dtype=float), levers, n),
                         np.asarray(times, dtype=float), np.asarray(series_times, dtype=float),
                         np.asarray(fiscal_times, dtype=float), int(fiscal_rows.start),
                         float(rtol), np.ascontiguousarray(atol),
                         np.ascontiguousarray(max_step, dtype=float), out, series_out, fiscal_out,
                         stats, status)
    finally:
        numba.set_parallel_chunksize(previous_chunk)
    summary = {"nfev": int(stats[:, 0].sum()), "steps_mean": float(stats[:, 1].mean()),
               "steps_max": int(stats[:, 1].max()), "rejected": int(stats[:, 2].sum()),
               "threads": numba.get_num_threads()}
    return out, series_out, fiscal_out, summary, status


def draw_derivatives(t: float, y: np.ndarray, params: ModelParameters, levers: LeverSet) -> np.ndarray:
    """dy/dt of every draw from the compiled flows, (n_state, n_draws) (for tests and checks)."""
    n = y.shape[1]
    records, (history, interventions) = parameter_records(params), lever_tables(levers, n)
    out = np.empty_like(y)
    fits = np.empty((len(LEVER_SPECS), LEVER_FIT_COLUMNS))
    for d in range(n):
        column = np.empty(N_STATE)
        fit_levers(float(t), float(t), history, interventions[d], fits)
        draw_rhs(float(t), np.ascontiguousarray(y[:, d]), records[d], fits, float(t), column)
        out[:, d] = column
    return out
