"""The model's equations, stated once: small named flow functions and `evaluate`, for one draw.

Every engine calls these compiled functions (`sim.model.compiled.jit`): the compiled per-draw
integrator (`sim.engine.kernel`), the solve_ivp path over a batch (`sim.engine.batch` loops
`evaluate` over draws) and the reported auxiliaries of the result dataset.  A change to a flow is
a change here and nowhere else.

Conventions (one draw):
- `t` time in decimal years; `y` the state vector laid out by `sim.model.state.LAYOUT` (stocks are
  reached by the named offsets below, multi-dimensional stocks in C order of (source, route));
- `p` one record of `parameter_records` (fields named as `ModelParameters`, plus derived fields);
- `lv` lever values at `t` in the order of `sim.model.levers.LEVER_SPECS` (named indices below);
- `dy` receives dy/dt (stock units per yr); `aux` receives the reported auxiliaries (`AUX_LAYOUT`).
Units are given in each docstring.
"""

from __future__ import annotations

import numpy as np

from sim.model.compiled import jit
from sim.model.levers import LEVER_SPECS
from sim.model.parameters import ModelParameters
from sim.model.state import LAYOUT, ROUTES, SOURCES, StateLayout, Stock

# US resident population (July estimates, US Census Bureau), persons; growth of 0.6 %/yr assumed
# after 2017 and before 2010 (Census projections give about 0.5-0.7 %/yr).
POPULATION_YEARS = np.arange(2010, 2018) + 0.5
POPULATION = np.array([309.3e6, 311.6e6, 313.9e6, 316.1e6, 318.4e6, 320.7e6, 323.1e6, 325.1e6])
POPULATION_GROWTH_AFTER_2017 = 0.006  # 1/yr, assumption
LOG_POPULATION = np.log(POPULATION)
assert np.all(np.diff(POPULATION_YEARS) == 1.0)   # us_population finds its knot by index

INTERDICTION_RAMP_START = 2013.25  # yr: middle of FY2013 (Oct 2012 - Sep 2013)
INTERDICTION_RAMP_END = 2018.25    # yr: middle of FY2018

# --- named positions ------------------------------------------------------------------------
N_SOURCES, N_ROUTES, N_STATE = len(SOURCES), len(ROUTES), LAYOUT.size
CHINA, INDIA = SOURCES.index("china"), SOURCES.index("india")
MAIL, LAND = ROUTES.index("mail"), ROUTES.index("land")
_AT = {name: sl.start for name, sl in LAYOUT.slices.items()}
CAPACITY, IN_TRANSIT, RETAIL = _AT["capacity"], _AT["in_transit"], _AT["retail"]
UNTREATED, IN_TREATMENT, REMISSION = _AT["untreated"], _AT["in_treatment"], _AT["remission"]
CUM_EXPORTS, CUM_SEIZED, CUM_ARRIVALS = _AT["cum_exports"], _AT["cum_seized"], _AT["cum_arrivals"]
CUM_CONSUMED, CUM_INITIATION = _AT["cum_consumed"], _AT["cum_initiation"]
CUM_TREATMENT_ENTRIES = _AT["cum_treatment_entries"]
CUM_DEATHS_FENTANYL = _AT["cum_deaths_fentanyl"]
CUM_DEATHS_HEROIN_ONLY = _AT["cum_deaths_heroin_only"]
CUM_DEATHS_OTHER_SYNTHETIC = _AT["cum_deaths_other_synthetic"]
CUM_DEATHS_BACKGROUND = _AT["cum_deaths_background"]
# The flows read only the physical stocks, which come first in the layout; the running totals
# after them are integrals of flows (the kernel forms stage states for these rows only).
N_DRIVING = LAYOUT.slices["remission"].stop
assert all((sl.start >= N_DRIVING) == name.startswith("cum_") for name, sl in LAYOUT.slices.items())

_LEVER = {name: i for i, name in enumerate(LEVER_SPECS)}
N_LEVERS = len(LEVER_SPECS)
ENFORCEMENT_FIRST = _LEVER["enforcement_china"]
assert tuple(_LEVER[f"enforcement_{s}"] for s in SOURCES) == tuple(
    range(ENFORCEMENT_FIRST, ENFORCEMENT_FIRST + N_SOURCES))
INTERDICTION_MAIL, INTERDICTION_LAND = _LEVER["interdiction_mail"], _LEVER["interdiction_land"]
NALOXONE_KITS, TEST_STRIPS = _LEVER["naloxone_kits"], _LEVER["test_strips"]
MOUD_CAPACITY, TREATMENT_SEEKING = _LEVER["moud_capacity"], _LEVER["treatment_seeking"]
PREVENTION = _LEVER["prevention"]

# The auxiliaries `evaluate` reports besides the derivatives (units, meaning).
AUXILIARIES: tuple[Stock, ...] = (
    Stock("fentanyl_share", (), "1", "fentanyl share of the opioid supply (heroin-equivalent mass)"),
    Stock("exports", ("source",), "kg/yr", "fentanyl exports toward the US market by source"),
    Stock("transit_outflow", ("source", "route"), "kg/yr",
          "shipments reaching the US border or mail facility (seized or not)"),
    Stock("seizure_probability", ("route",), "1", "probability that a shipment is seized"),
    Stock("naloxone_probability", (), "1", "probability naloxone is at hand at an overdose"),
    Stock("overdose_death_rate", (), "1/yr", "overdose deaths per untreated person-year"),
)
AUX_LAYOUT = StateLayout(AUXILIARIES)
_AUX = {name: sl.start for name, sl in AUX_LAYOUT.slices.items()}
AUX_SHARE, AUX_EXPORTS, AUX_TRANSIT_OUTFLOW = (_AUX["fentanyl_share"], _AUX["exports"],
                                               _AUX["transit_outflow"])
AUX_SEIZURE, AUX_NALOXONE, AUX_OD_RATE = (_AUX["seizure_probability"],
                                          _AUX["naloxone_probability"], _AUX["overdose_death_rate"])
N_AUX = AUX_LAYOUT.size

# Parameters derived once per draw (name: function of the parameter arrays), so the flows take
# an exp instead of a power.
DERIVED_PARAMETERS = {
    "log_interdiction_growth_2013_2018": lambda a: np.log(a["interdiction_growth_2013_2018"]),
}


def parameter_records(params: ModelParameters) -> np.ndarray:
    """Parameters as a structured array over draws: one float field per parameter, plus the
    derived fields of DERIVED_PARAMETERS."""
    arrays = params.as_arrays()
    for name, derive in DERIVED_PARAMETERS.items():
        arrays[name] = derive(arrays)
    records = np.empty(params.n_draws, dtype=[(name, "f8") for name in arrays])
    for name, values in arrays.items():
        records[name] = values
    return records


# --- exogenous inputs -----------------------------------------------------------------------

@jit(inline=True)
def us_population(t):
    """US resident population (persons) at time t (yr): log-linear between the census mid-years
    (one year apart, so the knot is found by index), 0.6 %/yr growth outside them."""
    if t > POPULATION_YEARS[-1]:
        log_pop = LOG_POPULATION[-1] + POPULATION_GROWTH_AFTER_2017 * (t - POPULATION_YEARS[-1])
    elif t < POPULATION_YEARS[0]:
        log_pop = LOG_POPULATION[0] + POPULATION_GROWTH_AFTER_2017 * (t - POPULATION_YEARS[0])
    else:
        k = min(int(t - POPULATION_YEARS[0]), POPULATION_YEARS.size - 2)
        w = (t - POPULATION_YEARS[k]) / (POPULATION_YEARS[k + 1] - POPULATION_YEARS[k])
        log_pop = LOG_POPULATION[k] + w * (LOG_POPULATION[k + 1] - LOG_POPULATION[k])
    return np.exp(log_pop)


@jit
def us_population_at(times):
    """`us_population` at each of `times` (yr), persons."""
    out = np.empty(times.size)
    for i in range(times.size):
        out[i] = us_population(times[i])
    return out


# --- supply flows ---------------------------------------------------------------------------

@jit(inline=True)
def fentanyl_share(retail, p):
    """Fentanyl share of the opioid supply in heroin-equivalent mass (1): 50F / (50F + H), F the
    retail consumption (kg/yr) and H the heroin supply (kg/yr)."""
    fentanyl_equivalent = p["potency_ratio"] * retail / p["retail_turnover_time"]
    return fentanyl_equivalent / (fentanyl_equivalent + p["heroin_supply"])


@jit(inline=True)
def capacity_change(capacity, share, enforcement, p):
    """Net change of a source's capacity (kg/yr^2).

    Growth (per-capita plus dormant-source entry) scales with the room left in the market
    (1 - fentanyl share) and the part not suppressed by enforcement; enforcement also dismantles
    capacity.  This gives an S-shaped takeover and substitution when one source is cut.
    """
    growth = (p["capacity_growth_rate"] * capacity + p["capacity_entry_rate"]) * (1.0 - share)
    return growth * (1.0 - enforcement) - p["enforcement_erosion_rate"] * enforcement * capacity


@jit(inline=True)
def mail_fraction(t, source, p):
    """Share of a source's exports sent by mail/express (1); China's shifts linearly from early to
    late over route_shift_duration around route_shift_midyear."""
    if source == CHINA:
        start = p["route_shift_midyear"] - 0.5 * p["route_shift_duration"]
        shift = min(max((t - start) / p["route_shift_duration"], 0.0), 1.0)
        return p["mail_fraction_china_early"] + shift * (
            p["mail_fraction_china_late"] - p["mail_fraction_china_early"])
    if source == INDIA:
        return p["mail_fraction_india"]
    return p["mail_fraction_other"]


@jit(inline=True)
def interdiction_index(t, p):
    """Historical growth of the interdiction hazard (1): 1 before FY2013, log-linear to FY2018,
    flat after."""
    progress = min(max((t - INTERDICTION_RAMP_START)
                       / (INTERDICTION_RAMP_END - INTERDICTION_RAMP_START), 0.0), 1.0)
    if progress >= 1.0:
        return p["interdiction_growth_2013_2018"]
    if progress > 0.0:
        return np.exp(progress * p["log_interdiction_growth_2013_2018"])
    return 1.0


@jit(inline=True)
def seizure_probability(hazard_2013, index, effort):
    """Probability that a shipment is seized (1): 1 - exp(-hazard_2013 x index x effort)."""
    return -np.expm1(-hazard_2013 * index * effort)


@jit(inline=True)
def transit_time(route, p):
    """Mean transit time of a route (yr)."""
    return p["transit_time_mail"] if route == MAIL else p["transit_time_land"]


@jit(inline=True)
def retail_consumption(retail, p):
    """Fentanyl consumed from the retail supply (kg/yr)."""
    return retail / p["retail_turnover_time"]


@jit
def fastest_drain_rate(p):
    """Largest first-order outflow rate of any stock (1/yr) of one draw: mail and land transit,
    retail turnover, treatment exits, remission and relapse.  Explicit solvers stay stable only
    while the step times this rate is inside their stability interval."""
    return max(1.0 / p["transit_time_mail"], 1.0 / p["transit_time_land"],
               1.0 / p["retail_turnover_time"], 1.0 / p["treatment_duration"],
               p["remission_rate"], p["relapse_rate"])


# --- demand flows ---------------------------------------------------------------------------

@jit(inline=True)
def initiation(p, prevention):
    """New people with illicit opioid use disorder (persons/yr), cut by prevention (share)."""
    return p["initiation_rate"] * (1.0 - prevention)


@jit(inline=True)
def treatment_entries(untreated, in_treatment, p, moud_capacity, seeking):
    """MOUD entries (persons/yr): seeking rate times untreated, limited by free capacity."""
    slots = p["moud_share_illicit"] * moud_capacity
    free = max(1.0 - in_treatment / max(slots, 1.0), 0.0)
    return p["treatment_seeking_rate"] * seeking * untreated * free


@jit(inline=True)
def naloxone_probability(kits_per_year, population, p):
    """Probability naloxone is at hand at an overdose (1): 1 - exp(-c x kits per 100k)."""
    return -np.expm1(-p["naloxone_coefficient"] * kits_per_year / population * 1e5)


@jit(inline=True)
def rescue_factor(naloxone, p):
    """Share of overdoses that stay fatal after help (1): 1 - w [1 - (1 - p_nal)(1 - r)]."""
    helped = 1.0 - (1.0 - naloxone) * (1.0 - p["rescue_without_naloxone"])
    return 1.0 - p["witnessed_fraction"] * helped


@jit(inline=True)
def test_strip_factor(strips_per_year, population, p):
    """Multiplier on fentanyl overdose incidence from test-strip use (1)."""
    coverage = 0.0 if strips_per_year == 0.0 else -np.expm1(
        -p["test_strip_coefficient"] * strips_per_year / population * 1e5)
    return 1.0 - p["test_strip_max_effect"] * coverage


@jit(inline=True)
def overdose_rates(share, rescue, strips, p):
    """Overdose death rate per untreated person-year (1/yr) and the fentanyl-involved share (1).

    rate = incidence x case fatality x rescue factor, with
    incidence = i0 ((1 - f) + kappa f s), case fatality = cf_h + (cf_f - cf_h) f (SOURCE model);
    s is the test-strip factor.  Deaths are attributed to fentanyl by the incidence- and
    lethality-weighted share of fentanyl exposures.
    """
    heroin_exposure = 1.0 - share
    fentanyl_exposure = p["fentanyl_incidence_multiplier"] * share * strips
    incidence = p["overdose_incidence"] * (heroin_exposure + fentanyl_exposure)
    fatality = p["case_fatality_heroin"] + (p["case_fatality_fentanyl"]
                                           - p["case_fatality_heroin"]) * share
    rate = incidence * fatality * rescue
    fentanyl_weight = fentanyl_exposure * p["case_fatality_fentanyl"]
    heroin_weight = heroin_exposure * p["case_fatality_heroin"]
    involved = fentanyl_weight / max(fentanyl_weight + heroin_weight, 1e-300)
    return rate, involved


def heroin_involved(heroin_only, fentanyl, coinvolvement):
    """Heroin-involved overdose deaths (deaths/yr): those involving heroin and not fentanyl plus
    the share `coinvolvement` (1, parameter heroin_coinvolvement) of fentanyl-involved deaths that
    also involve heroin.  Works on numbers and numpy arrays alike."""
    return heroin_only + coinvolvement * fentanyl


# --- the right-hand side --------------------------------------------------------------------

@jit(fastmath=True)
def evaluate(t, y, p, lv, dy, aux):
    """dy/dt of one draw (stock units per yr) into `dy`, and the reported auxiliaries into `aux`."""
    retail = max(y[RETAIL], 0.0)
    untreated = max(y[UNTREATED], 0.0)
    in_treatment = max(y[IN_TREATMENT], 0.0)
    remission = max(y[REMISSION], 0.0)
    population = us_population(t)

    # supply: fentanyl share, interdiction, exports by source and route, transit, retail
    share = fentanyl_share(retail, p)
    index = interdiction_index(t, p)
    seize_mail = seizure_probability(p["seizure_hazard_mail_2013"], index, lv[INTERDICTION_MAIL])
    seize_land = seizure_probability(p["seizure_hazard_land_2013"], index, lv[INTERDICTION_LAND])
    arrivals_total = 0.0
    for s in range(N_SOURCES):
        capacity = max(y[CAPACITY + s], 0.0)
        enforcement = lv[ENFORCEMENT_FIRST + s]
        exports = capacity * (1.0 - enforcement)
        dy[CAPACITY + s] = capacity_change(capacity, share, enforcement, p)
        dy[CUM_EXPORTS + s] = exports
        aux[AUX_EXPORTS + s] = exports
        mail_share = mail_fraction(t, s, p)
        for r in range(N_ROUTES):
            k = s * N_ROUTES + r
            in_transit = max(y[IN_TRANSIT + k], 0.0)
            outflow = in_transit / transit_time(r, p)
            if r == MAIL:
                shipped, seized = exports * mail_share, outflow * seize_mail
            else:
                shipped, seized = exports * (1.0 - mail_share), outflow * seize_land
            dy[IN_TRANSIT + k] = shipped - outflow
            dy[CUM_SEIZED + k] = seized
            dy[CUM_ARRIVALS + k] = outflow - seized
            aux[AUX_TRANSIT_OUTFLOW + k] = outflow
            arrivals_total += outflow - seized
    consumption = retail_consumption(retail, p)
    dy[RETAIL] = arrivals_total - consumption
    dy[CUM_CONSUMED] = consumption

    # demand: initiation, treatment, remission
    new_users = initiation(p, lv[PREVENTION])
    entries = treatment_entries(untreated, in_treatment, p, lv[MOUD_CAPACITY],
                                lv[TREATMENT_SEEKING])
    exits = in_treatment / p["treatment_duration"]
    to_remission = exits * p["treatment_success_fraction"]
    remitting = p["remission_rate"] * untreated
    relapse = p["relapse_rate"] * remission

    # overdose deaths: incidence x case fatality x rescue factor
    naloxone = naloxone_probability(lv[NALOXONE_KITS], population, p)
    strips = test_strip_factor(lv[TEST_STRIPS], population, p)
    od_rate, involved = overdose_rates(share, rescue_factor(naloxone, p), strips, p)
    od_deaths = od_rate * (untreated + p["treatment_overdose_ratio"] * in_treatment)
    od_untreated = od_rate * untreated
    background = p["background_death_rate"]

    dy[UNTREATED] = (new_users + relapse + exits - to_remission - entries - remitting
                     - od_untreated - background * untreated)
    dy[IN_TREATMENT] = entries - exits - (od_deaths - od_untreated) - background * in_treatment
    dy[REMISSION] = remitting + to_remission - relapse - background * remission
    dy[CUM_INITIATION] = new_users
    dy[CUM_TREATMENT_ENTRIES] = entries
    dy[CUM_DEATHS_FENTANYL] = involved * od_deaths
    dy[CUM_DEATHS_HEROIN_ONLY] = (1.0 - involved) * od_deaths
    dy[CUM_DEATHS_OTHER_SYNTHETIC] = p["background_synthetic_deaths"]
    dy[CUM_DEATHS_BACKGROUND] = background * (untreated + in_treatment + remission)

    aux[AUX_SHARE] = share
    aux[AUX_SEIZURE + MAIL] = seize_mail
    aux[AUX_SEIZURE + LAND] = seize_land
    aux[AUX_NALOXONE] = naloxone
    aux[AUX_OD_RATE] = od_rate


@jit
def initial_state(t0, p, lv, y):
    """State of one draw at t0 (1 Jan 2010) into `y`: capacity and people from the parameters;
    shipments in transit and the retail stock at the equilibrium of the initial exports (the
    enforcement and interdiction levers `lv` at t0); running totals zero."""
    for i in range(y.size):
        y[i] = 0.0
    capacities = (p["capacity_2010_china"], p["capacity_2010_india"], p["capacity_2010_other"])
    index = interdiction_index(t0, p)
    seize = (seizure_probability(p["seizure_hazard_mail_2013"], index, lv[INTERDICTION_MAIL]),
             seizure_probability(p["seizure_hazard_land_2013"], index, lv[INTERDICTION_LAND]))
    arriving = 0.0
    for s in range(N_SOURCES):
        y[CAPACITY + s] = capacities[s]
        exports = capacities[s] * (1.0 - lv[ENFORCEMENT_FIRST + s])
        mail_share = mail_fraction(t0, s, p)
        for r in range(N_ROUTES):
            shipped = exports * (mail_share if r == MAIL else 1.0 - mail_share)
            y[IN_TRANSIT + s * N_ROUTES + r] = shipped * transit_time(r, p)
            arriving += shipped * (1.0 - seize[r])
    y[RETAIL] = arriving * p["retail_turnover_time"]
    y[UNTREATED] = p["untreated_2010"]
    y[IN_TREATMENT] = p["in_treatment_2010"]
    y[REMISSION] = p["remission_2010"]
