"""The model's equations, stated once: small named flow functions and `evaluate`, for one draw.

Every engine calls these compiled functions (`sim.model.compiled.jit`): the compiled per-draw
integrator (`sim.engine.kernel`), the solve_ivp path over a batch (`sim.engine.batch` loops
`evaluate` over draws) and the reported auxiliaries of the result dataset.  A change to a flow is
a change here and nowhere else.

Conventions (one draw):
- `t` time in decimal years; `y` the state vector laid out by `sim.model.state.LAYOUT` (stocks are
  reached by the named offsets below; channel-dimensioned stocks in the order of CHANNELS);
- `p` one record of `parameter_records` (fields named as `ModelParameters`);
- `lv` lever values at `t` in the order of `sim.model.levers.LEVER_SPECS` (named indices below);
- `dy` receives dy/dt (stock units per yr); `aux` receives the reported auxiliaries (`AUX_LAYOUT`);
- `work` the draw's scratch, made once per draw by `work_array(p)` (offsets WORK; it also holds
  the draw's constants, e.g. the logs of its seizure hazards at the knots).
Speed (about 7 million evaluations for a 10,000-draw ensemble; half the time was libm's exp, log
and pow): `evaluate` and the functions it hands arrays to allocate nothing and are compiled
without reference counts (`no_refcount`); what depends only on the draw is computed once in
`work_array` (e^asc, the knots' logs); a value computed once is not computed again (a power of 1
is skipped, c^-s once per distinct retail cost and not at all for the cheapest, the price's three
powers from one log, initiation's path and its price power in one exp, heroin's seizure chance once
per land effort); what only the reported auxiliaries need (the shortage price) is computed only
when they are asked for (`report`).

The market (third version; evidence and priors of every constant in `sim/model/parameters.py`):
- Supply runs through six channels (source, form, route; `sim.model.state.CHANNELS`).  Each has a
  delivered cost per heroin-equivalent (HE) kg: c = base (1 + rho s) / (1 - s) (1 - e)^-gamma, with
  s the seizure probability of its route and e source-country enforcement (Reuter and Kleiman's
  risks and prices: losses and risk compensation act as a tax on the trade); e combines the
  enforcement levers with the dated 2023 disruptions (Sinaloa halt, Woodside summit).  Retail cost
  per HE dose = (delivered cost + distribution markup) / (1 + markup).  Heroin retires: as its
  trade shrinks it gets harder to find (heroin share of delivered supply ^ -heroin_scale_elasticity,
  a cost-equivalent scarcity cost in the choice model); what users pay for it does not explode.
- Target shares of demand by a nested logit of retail cost: heroin against a fentanyl nest whose
  channels are opened by know-how (logistic diffusion of the mail trade in finished fentanyl and of
  synthesis in Mexico: the S-shaped takeover of 2013-2018).  The logit's inclusive value is
  reported as `cost_price_index`; the money price P_c weighs heroin's retail cost and the
  fentanyl nest's price by their shares (the nest's price: the CES mean of its channels' retail
  costs, which a dearer channel never lowers).
- Demand D = users x consumption per user x P_c^eps (HE kg/yr).  Each channel's capacity adjusts
  over an adjustment time toward the shipments that deliver its share of demand after its losses
  (seized and withheld drugs are replaced at a cost); capacity is a ceiling, never an obligation:
  a channel ships at most what its share needs, so arrivals never exceed demand and a cut or an
  interdiction surge that ends leaves no glut.  While capacity lags, arrivals fall short and the
  reported price rises, P = P_c (arrivals / D)^(1/eps).
- People: untreated (with a high-risk part, `high_risk`, depleted by deaths and replenished by
  entries), in MOUD, in remission.  Initiation follows a fitted path times P_c^(initiation price
  elasticity): a dearer market deters new use (participation).
- Overdose by product (heroin only, heroin adulterated with fentanyl, fentanyl only) in proportions
  from the HE fentanyl share; one formula gives the total and the split, so
  fentanyl-involved + heroin-involved - both = all opioid overdose deaths.  Risk per use scales
  with consumption per user at the cost-based price (P_c^eps)^eta, the COVID-19 pulse from March
  2020 times a persistent post-2020 shift, naloxone (SOURCE rescue factor; kit history to 2024),
  test strips, and retail potency (DEA pill testing: lower from October 2023); the high-risk group
  dies at high_risk_relative_risk times the rate of the rest.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from sim.model.compiled import jit, literal_unroll
from sim.model.levers import LEVER_SPECS
from sim.model.parameters import ModelParameters
from sim.model.state import CHANNELS, LAYOUT, PRODUCTS, ROUTES, StateLayout, Stock

# --- exogenous paths: dates (yr) -------------------------------------------------------------
# US resident population (July estimates, US Census Bureau, Vintage 2024 for 2022-2024), persons;
# +0.5 %/yr outside 2010-2024 (Census projections' order of magnitude; no later data used).
POPULATION_YEARS = np.arange(2010, 2025, dtype=np.float64) + 0.5
POPULATION = np.array([309.3e6, 311.6e6, 313.9e6, 316.1e6, 318.4e6, 320.7e6, 323.1e6, 325.1e6,
                       327.2e6, 328.2e6, 331.5e6, 331.9e6, 334.0e6, 336.8e6, 340.1e6])
LOG_POPULATION = np.log(POPULATION)
POPULATION_GROWTH = 0.005                            # 1/yr
LOG_10 = math.log(10.0)                              # overdose intensity's cap: price response 10
SEIZURE_KNOTS = (2013.25, 2018.25, 2021.25, 2024.25)  # mid FY2013, FY2018, FY2021, FY2024
SEIZURE_PROBABILITY_MAX = 0.2                        # top of the documented plausible range
PILL_SHIFT = (2019.0, 2021.5)                        # pill share of land fentanyl rises between
INITIATION_KNOTS = (2010.0, 2014.0, 2018.0, 2021.0, 2024.0)  # piecewise log-linear, flat after 2024
COVID_START, COVID_RAMP = 2020.17, 0.25              # March 2020; full shock by June 2020
RISK_SHIFT = (2020.17, 2022.0)                       # persistent per-use risk shift (pills, xylazine,
                                                     # using alone) ramps in March 2020 -> 2022
POTENCY_FALL = (2023.75, 2024.25)                    # retail potency: DEA pill tests 2023 -> 2024,
                                                     # centred on 1 Jan 2024 (yearly averages)
DISRUPTION_MEXICO = (2023.33, 2023.58)               # May 2023 Sinaloa halt, in effect by August
DISRUPTION_CHINA = (2023.87, 2024.12)                # Woodside summit 15 Nov 2023 -> working group
PHARMA_START = 2010.0                                # diverted pharmaceutical fentanyl falls from
HEROIN_COST_TREND = (2010.0, 2017.0)                 # heroin base cost changes log-linearly
# Every date where an exogenous path has a kink: the solvers stop and restart there.
KINKS = tuple(sorted({*SEIZURE_KNOTS, *PILL_SHIFT, *INITIATION_KNOTS, 2012.0, COVID_START,
                      COVID_START + COVID_RAMP, *RISK_SHIFT, *POTENCY_FALL, *DISRUPTION_MEXICO,
                      *DISRUPTION_CHINA, *HEROIN_COST_TREND}))

# --- named positions -------------------------------------------------------------------------
N_STATE = LAYOUT.size
N_CHANNELS = len(CHANNELS)
_CHANNEL = {c.name: i for i, c in enumerate(CHANNELS)}
CHINA_FINISHED, CHINA_PRECURSOR = _CHANNEL["china_finished_mail"], _CHANNEL["china_precursor_land"]
HEROIN = _CHANNEL["heroin_land"]
N_FENTANYL_CHANNELS = HEROIN          # the fentanyl channels come first
MAIL, LAND = ROUTES.index("mail"), ROUTES.index("land")
CHANNEL_ROUTE = np.array([ROUTES.index(c.route) for c in CHANNELS], dtype=np.int64)
KNOW_HOW_FINISHED, KNOW_HOW_SYNTHESIS = 1, 2
CHANNEL_KNOW_HOW = np.array([{"none": 0, "finished": 1, "synthesis": 2}[c.know_how]
                             for c in CHANNELS], dtype=np.int64)
# Alternative-specific constants (Channel.constant): the channels that declare one and the names of
# their parameters, unrolled at compile time (`channel_constant`); every other channel has 0.
ASC_CHANNELS = np.array([k for k, c in enumerate(CHANNELS) if c.constant], dtype=np.int64)
ASC_PARAMETERS = tuple(c.constant for c in CHANNELS if c.constant)
assert set(ASC_PARAMETERS) <= set(ModelParameters.names()), ASC_PARAMETERS
HEROIN_ONLY, BOTH, FENTANYL_ONLY = (PRODUCTS.index("heroin_only"),
                                    PRODUCTS.index("heroin_with_fentanyl"),
                                    PRODUCTS.index("fentanyl_only"))

_AT = {name: sl.start for name, sl in LAYOUT.slices.items()}
CAPACITY, KH_FINISHED, KH_SYNTHESIS = (_AT["capacity"], _AT["know_how_finished"],
                                       _AT["know_how_synthesis"])
UNTREATED, IN_TREATMENT, REMISSION = _AT["untreated"], _AT["in_treatment"], _AT["remission"]
HIGH_RISK = _AT["high_risk"]
CUM_OUTPUT, CUM_WITHHELD, CUM_SEIZED, CUM_ARRIVALS = (
    _AT["cum_output"], _AT["cum_withheld"], _AT["cum_seized"], _AT["cum_arrivals"])
CUM_SEIZED_PRODUCT, CUM_DEMAND = _AT["cum_seized_product"], _AT["cum_demand"]
CUM_DEATHS_HEROIN_ONLY, CUM_DEATHS_BOTH, CUM_DEATHS_FENTANYL_ONLY = (
    _AT["cum_deaths_heroin_only"], _AT["cum_deaths_both"], _AT["cum_deaths_fentanyl_only"])
CUM_OD_DEATHS_IN_TREATMENT = _AT["cum_od_deaths_in_treatment"]
CUM_DEATHS_PHARMA, CUM_DEATHS_OTHER_SYNTHETIC, CUM_DEATHS_BACKGROUND = (
    _AT["cum_deaths_pharma_fentanyl"], _AT["cum_deaths_other_synthetic"],
    _AT["cum_deaths_background"])
CUM_INITIATION, CUM_TREATMENT_ENTRIES = _AT["cum_initiation"], _AT["cum_treatment_entries"]
# The flows read only the physical stocks, which come first in the layout; the running totals
# after them are integrals of flows (the kernel forms stage states for these rows only).
N_DRIVING = sum(s.size for s in LAYOUT.stocks.values() if s.kind == "physical")
assert all((sl.start >= N_DRIVING) == (LAYOUT.stocks[name].kind == "total")
           for name, sl in LAYOUT.slices.items()), "physical stocks must come first in STOCKS"

_LEVER = {name: i for i, name in enumerate(LEVER_SPECS)}
N_LEVERS = len(LEVER_SPECS)
CHANNEL_ENFORCEMENT = np.array([_LEVER[c.enforcement_lever] for c in CHANNELS], dtype=np.int64)
INTERDICTION_MAIL, INTERDICTION_LAND = _LEVER["interdiction_mail"], _LEVER["interdiction_land"]
NALOXONE_KITS, TEST_STRIPS = _LEVER["naloxone_kits"], _LEVER["test_strips"]
MOUD_CAPACITY, TREATMENT_SEEKING = _LEVER["moud_capacity"], _LEVER["treatment_seeking"]
PREVENTION = _LEVER["prevention"]

# The auxiliaries `evaluate` reports besides the derivatives (units, meaning).
AUXILIARIES: tuple[Stock, ...] = (
    Stock("population", (), "persons", "US resident population"),
    Stock("seizure_probability", ("route",), "1",
          "probability that a fentanyl shipment is seized, by route"),
    Stock("seizure_probability_heroin", (), "1", "probability that a heroin shipment is seized"),
    Stock("delivered_cost", ("channel",), "1",
          "delivered cost per heroin-equivalent kg by channel (heroin in 2010 without interdiction = 1)"),
    Stock("target_share", ("channel",), "1", "each channel's share of demand (nested logit of cost)"),
    Stock("arrivals", ("channel",), "HE kg/yr", "arrivals on the US retail market by channel"),
    Stock("cost_price_index", (), "1",
          "the choice model's aggregate attractiveness (nested-logit inclusive value in cost units); "
          "not a price"),
    Stock("price_index", (), "1",
          "retail money price per heroin-equivalent dose: heroin's retail cost and the fentanyl "
          "nest's price weighted by their shares, supply shortage included (heroin in 2010 = 1; "
          "the dataset divides by 1 Jan 2015)"),
    Stock("demand", (), "HE kg/yr", "opioid demand at the cost-based price"),
    Stock("heroin_arrivals", (), "kg/yr", "heroin arriving on the US retail market (pure)"),
    Stock("fentanyl_arrivals", (), "kg/yr", "fentanyl arriving on the US retail market (pure)"),
    Stock("fentanyl_share", (), "1", "fentanyl share of the retail opioid supply (HE terms)"),
    Stock("nflis_share", (), "1",
          "expected fentanyl share of heroin and fentanyl forensic laboratory reports (NFLIS)"),
    Stock("product_share", ("product",), "1", "share of use episodes by product"),
    Stock("consumption_per_user", (), "HE kg/yr", "opioid consumption per using person-year"),
    Stock("naloxone_probability", (), "1", "probability naloxone is at hand at an overdose"),
    Stock("risk_environment", (), "1",
          "exogenous overdose-risk multiplier: COVID-19 pulse x persistent post-2020 risk shift"),
    Stock("retail_potency", (), "1",
          "fatality of fentanyl-containing use relative to 2023 (DEA pill testing path)"),
    Stock("overdose_death_rate", (), "1/yr", "opioid overdose deaths per untreated person-year"),
    Stock("pill_share", (), "1", "share of land-route fentanyl (pure mass) pressed into pills"),
)
AUX_LAYOUT = StateLayout(AUXILIARIES)
# Offsets of the auxiliaries in `aux`, by name (AUX.price_index): derived from AUXILIARIES, so a
# new auxiliary is one entry there (numba reads this named tuple as compile-time constants).
AUX = namedtuple("AuxOffsets", AUX_LAYOUT.slices)(*(sl.start for sl in AUX_LAYOUT.slices.values()))
N_AUX = AUX_LAYOUT.size
# `work`: one draw's scratch for `evaluate`, a flat array reached by the named offsets WORK (no
# views: an array view costs numba an atomic reference count).  Its caller makes it once per draw
# with `work_array(p)` and reuses it, so an evaluation allocates nothing.  First the market's terms
# that depend on time and levers alone (`market_terms`): per channel enforcement, delivered and
# retail cost; per fentanyl channel the log retail cost and c_k^-s (scaled by the nest's largest,
# e^-top); the seizure probabilities by route, top and the heroin channel's seizure probability and
# log retail cost.  Then per channel the target share and shipments needed, and the logit weight
# a_k c_k^-s e^-top per fentanyl channel; then the draw's constants, computed once by `work_array`
# (e^asc per fentanyl channel; values and their logs of the log-linear paths: hazards of seizure by
# route at the knots, initiation at the knots; log(1 - heroin seizure probability) and the land
# effort its seizure chance was last computed at; heroin's base cost after its trend,
# e^heroin_cost_change).  `terms_fixed` says which of the market's terms are
# held (`market`; 0 unless a caller sets it), and last `regime`, written by every evaluation: the
# branches its state-dependent switches took (see `evaluate`).
_WORK_BLOCKS = (("enforcement", N_CHANNELS), ("cost", N_CHANNELS), ("retail", N_CHANNELS),
                ("log_retail", N_FENTANYL_CHANNELS), ("cost_weight", N_FENTANYL_CHANNELS),
                ("seizure", len(ROUTES)), ("top", 1), ("seizure_heroin", 1),
                ("log_retail_heroin", 1),
                ("shares", N_CHANNELS), ("needed", N_CHANNELS), ("weight", N_FENTANYL_CHANNELS),
                ("exp_asc", N_FENTANYL_CHANNELS), ("hazard_mail", 2 * len(SEIZURE_KNOTS)),
                ("hazard_land", 2 * len(SEIZURE_KNOTS)), ("initiation", 2 * len(INITIATION_KNOTS)),
                ("log_kept_heroin", 1), ("heroin_effort", 1), ("heroin_cost_after_trend", 1),
                ("terms_fixed", 1), ("regime", 1))
WORK = namedtuple("WorkOffsets", [name for name, _ in _WORK_BLOCKS])(
    *np.cumsum([0] + [size for _, size in _WORK_BLOCKS[:-1]]).tolist())
assert HEROIN == N_CHANNELS - 1, "market_terms computes the heroin channel's terms alone: it is last"
# Offsets in `work` of the market's terms (`market_terms`): those of the fentanyl channels (with
# the routes' seizure probabilities and the nest's top) and those of the heroin channel.
FENTANYL_TERMS = np.array(
    [getattr(WORK, block) + k for block in ("enforcement", "cost", "retail", "log_retail",
                                            "cost_weight") for k in range(N_FENTANYL_CHANNELS)]
    + [WORK.seizure + r for r in range(len(ROUTES))] + [WORK.top], dtype=np.int64)
HEROIN_TERMS = np.array([WORK.enforcement + HEROIN, WORK.cost + HEROIN, WORK.retail + HEROIN,
                         WORK.seizure_heroin, WORK.log_retail_heroin], dtype=np.int64)
# Values of work[WORK.terms_fixed]: every market term recomputed at each evaluation; the fentanyl
# channels' terms held (the heroin channel's recomputed); all held.
TERMS_FREE, FENTANYL_TERMS_FIXED, ALL_TERMS_FIXED = 0.0, 1.0, 2.0
N_WORK = sum(size for _, size in _WORK_BLOCKS)


def parameter_records(params: ModelParameters) -> np.ndarray:
    """Parameters as a structured array over draws: one float field per parameter."""
    names = params.names()
    records = np.empty(params.n_draws, dtype=[(name, "f8") for name in names])
    for name in names:   # a scalar or (n_draws,) field, broadcast into place (no copy first)
        records[name] = getattr(params, name)
    return records


# --- exogenous paths -------------------------------------------------------------------------

@jit
def us_population(t):
    """US resident population (persons) at t (yr): log-linear between the census mid-years,
    +0.5 %/yr outside them."""
    if t <= POPULATION_YEARS[0]:
        return POPULATION[0] * math.exp(POPULATION_GROWTH * (t - POPULATION_YEARS[0]))
    if t >= POPULATION_YEARS[-1]:
        return POPULATION[-1] * math.exp(POPULATION_GROWTH * (t - POPULATION_YEARS[-1]))
    k = min(int(t - POPULATION_YEARS[0]), POPULATION_YEARS.size - 2)
    w = t - POPULATION_YEARS[k]
    return math.exp(LOG_POPULATION[k] + w * (LOG_POPULATION[k + 1] - LOG_POPULATION[k]))


@jit
def us_population_at(times):
    """`us_population` at each of `times` (yr), persons."""
    out = np.empty(times.size)
    for i in range(times.size):
        out[i] = us_population(times[i])
    return out


@jit
def store_loglinear(values, work, at):
    """A log-linear path's values at its knots (> 0) into work[at:at + n], their logs into
    work[at + n:at + 2n] (`loglinear_path` reads them)."""
    n = len(values)
    i = 0
    for value in literal_unroll(values):
        work[at + i] = value
        work[at + n + i] = math.log(max(value, 1e-300))
        i += 1


@jit(no_refcount=True)
def loglinear_log(t, knots, work, at):
    """log of a piecewise log-linear path through (knots[i], values[i]) (values > 0), flat
    outside: linear in t between the logs stored by `store_loglinear` at work[at + n:]."""
    n = len(knots)
    if t <= knots[0]:
        return work[at + n]
    if t >= knots[n - 1]:
        return work[at + 2 * n - 1]
    k = 0
    while t > knots[k + 1]:
        k += 1
    w = (t - knots[k]) / (knots[k + 1] - knots[k])
    return (1.0 - w) * work[at + n + k] + w * work[at + n + k + 1]


@jit(no_refcount=True)
def loglinear_path(t, knots, work, at):
    """Piecewise log-linear path through (knots[i], values[i]) (values > 0), flat outside
    (`loglinear_log`); the values and their logs stored by `store_loglinear` at work[at]."""
    n = len(knots)
    if t <= knots[0]:
        return work[at]
    if t >= knots[n - 1]:
        return work[at + n - 1]
    return math.exp(loglinear_log(t, knots, work, at))


@jit
def store_seizure_hazards(probability_2013, rise_2018, rise_2021, rise_2024, work, at):
    """A route's seizure history as hazards -log(1 - p) at its knots, into work[at]
    (`store_loglinear`): p13 at mid FY2013, then at mid FY2018, FY2021 and FY2024 each
    p = previous + rise x (PMAX - previous) (PMAX = SEIZURE_PROBABILITY_MAX)."""
    p13 = probability_2013
    p18 = p13 + rise_2018 * (SEIZURE_PROBABILITY_MAX - p13)
    p21 = p18 + rise_2021 * (SEIZURE_PROBABILITY_MAX - p18)
    p24 = p21 + rise_2024 * (SEIZURE_PROBABILITY_MAX - p21)
    store_loglinear((-math.log(1.0 - p13), -math.log(1.0 - p18), -math.log(1.0 - p21),
                     -math.log(1.0 - p24)), work, at)


@jit
def occurrence(hazard):
    """1 - e^-hazard (1): the chance of at least one event at a cumulative Poisson hazard (1).
    Written with exp, not expm1: glibc's expm1 costs about three times its exp, and on the
    compiled engine's hot path (seizure, naloxone) it took 11 % of the time (perf, 2026-12-03);
    the hazards here are 1e-4 and more, where the two agree to 1e-12 relative."""
    return 1.0 - math.exp(-hazard)


@jit(no_refcount=True)
def seizure_probability(t, work, at, effort):
    """Probability that a shipment on a route is seized (1) at t (yr).

    History (`store_seizure_hazards`, at work[at]): p13 at mid FY2013, rising at mid FY2018, FY2021
    and FY2024, so interdiction keeps changing after FY2018 (STOP Act mail screening, land-port
    scanning), never falls and stays in the documented range; the hazard -log(1 - p) is log-linear
    between the knots, flat outside.  The lever `effort` (1 = history) multiplies the hazard.
    """
    hazard = loglinear_path(t, SEIZURE_KNOTS, work, at)
    return min(occurrence(hazard * max(effort, 0.0)), 1.0 - 1e-12)


@jit
def ramp(t, start, end):
    """0 before `start`, linear to 1 at `end` (yr), 1 after."""
    return min(max((t - start) / (end - start), 0.0), 1.0)


@jit
def risk_shift(t, size):
    """Persistent per-use risk multiplier (1): 1 + size x ramp(March 2020 -> 2022)."""
    return 1.0 + size * ramp(t, RISK_SHIFT[0], RISK_SHIFT[1])


@jit
def retail_potency(t, level_2024):
    """Fatality of fentanyl-containing use relative to 2023 (1): 1 until October 2023, linear to
    `level_2024` by April 2024, held after (DEA pill testing, yearly: lethal-dose share 7 in 10 in
    2023 -> 5 in 10 in 2024; the ramp is centred on the turn of the year so that the calendar-year
    averages carry the yearly figures)."""
    return 1.0 + (level_2024 - 1.0) * ramp(t, POTENCY_FALL[0], POTENCY_FALL[1])


@jit
def supply_disruption(t, k, p):
    """Share of channel k's shipments withheld by the dated 2023 supply events (1): the Sinaloa
    halt on Mexican synthesis (May 2023) and China's post-Woodside action (Nov 2023)."""
    kept = 1.0
    if CHANNEL_KNOW_HOW[k] == KNOW_HOW_SYNTHESIS:
        kept *= 1.0 - p["disruption_mexico_2023"] * ramp(t, DISRUPTION_MEXICO[0], DISRUPTION_MEXICO[1])
    if k == CHINA_FINISHED or k == CHINA_PRECURSOR:
        kept *= 1.0 - p["disruption_china_2023"] * ramp(t, DISRUPTION_CHINA[0], DISRUPTION_CHINA[1])
    return 1.0 - kept


@jit
def covid_risk(t, size, decay):
    """Exogenous overdose-risk multiplier (1): 1 + size x ramp(March-June 2020) x
    exp(-decay (t - June 2020)); 1 before March 2020."""
    if t <= COVID_START:
        return 1.0
    ramp = min((t - COVID_START) / COVID_RAMP, 1.0)
    return 1.0 + size * ramp * math.exp(-decay * max(t - COVID_START - COVID_RAMP, 0.0))


@jit
def pharma_fentanyl_deaths(t, deaths_2010, floor, rate):
    """Deaths from diverted pharmaceutical fentanyl (deaths/yr): falling from 2010 to a floor."""
    return floor + (deaths_2010 - floor) * math.exp(-rate * max(t - PHARMA_START, 0.0))


@jit(no_refcount=True)
def log_initiation_path(t, work):
    """log of initiation into illicit-opioid use disorder (persons/yr) before prevention and the
    price: piecewise linear (the path log-linear) through 2010, 2014, 2018, 2021 and 2024 (the
    prescription pathway falls after 2011), flat after 2024 (the knots' logs stored by
    `work_array`).  A log, so that the price's power joins it in one exp (`evaluate`)."""
    return loglinear_log(t, INITIATION_KNOTS, work, WORK.initiation)


@jit
def pill_share(t, p):
    """Share of land-route fentanyl (pure mass) pressed into pills (1): linear 2019 -> mid 2021."""
    w = min(max((t - PILL_SHIFT[0]) / (PILL_SHIFT[1] - PILL_SHIFT[0]), 0.0), 1.0)
    return p["pill_share_2019"] + w * (p["pill_share_2021"] - p["pill_share_2019"])


@jit
def heroin_base_cost(t, log_change):
    """Heroin's base cost per kg (1 in 2010): log-linear change to 2017, flat after."""
    w = min(max((t - HEROIN_COST_TREND[0]) / (HEROIN_COST_TREND[1] - HEROIN_COST_TREND[0]),
                0.0), 1.0)
    return math.exp(w * log_change)


# --- supply: the market ----------------------------------------------------------------------

@jit
def delivered_cost(base, seizure, enforcement, risk_premium, enforcement_exponent):
    """Delivered cost per HE kg (1): base x (1 + rho s) / (1 - s) x (1 - e)^-gamma — losses to
    seizure, risk compensation and the tax of source enforcement on what still gets out."""
    s = min(seizure, 0.999)
    e = min(max(enforcement, 0.0), 0.999)
    cost = base * (1.0 + risk_premium * s) / (1.0 - s)
    if e == 0.0:        # 1 ** x = 1: the power is skipped, the value is the same
        return cost
    return cost * (1.0 - e) ** (-enforcement_exponent)


@jit
def retail_cost(delivered, markup):
    """Retail cost per HE dose (1 = heroin in 2010 without interdiction): (delivered cost +
    distribution markup) / (1 + markup).  Enforcement and seizures raise the delivered cost; the
    retail price moves by the same absolute amount (Reuter and Kleiman), a fraction of it."""
    return (delivered + markup) / (1.0 + markup)


@jit
def logistic_growth(level, rate):
    """Logistic diffusion of know-how (1/yr): r K (1 - K)."""
    return rate * level * (1.0 - level)


@jit(no_refcount=True)
def nested_logit_shares(work, beta, nest, preference, log_cost_heroin, log_sum_v, total_v, report):
    """Target shares of demand by channel into work[WORK.shares:]; returns the cost-based
    inclusive value when `report` (0.0 otherwise: it is reported, never used by the flows).

    The nest's weights v_k = a_k c_k^-s (s = beta / nest; work[WORK.weight:] holds them times
    e^-top, their sum `total_v`) and its log-sum log V = log sum_k v_k (`log_sum_v`).  Within the nest w_k = v_k / V; the nest's
    share S_F = e^a V^nest / (e^a V^nest + c_H^-beta), the heroin channel the rest; the
    inclusive value P_c = (e^a V^nest + c_H^-beta)^(-1/beta) (= c_H while no fentanyl is
    available).
    """
    log_nest = preference + nest * log_sum_v
    log_heroin = -beta * log_cost_heroin
    if log_nest >= log_heroin:      # the larger weight is 1: one exp for the other
        other = math.exp(log_heroin - log_nest)
        fentanyl, high = 1.0 / (1.0 + other), log_nest
    else:
        other = math.exp(log_nest - log_heroin)
        fentanyl, high = other / (1.0 + other), log_heroin
    for k in range(N_FENTANYL_CHANNELS):
        work[WORK.shares + k] = fentanyl * work[WORK.weight + k] / total_v
    work[WORK.shares + HEROIN] = 1.0 - fentanyl
    if not report:
        return 0.0
    return math.exp(-(high + math.log1p(other)) / beta)


@jit
def channel_seizure(k, mail, land, heroin):
    """Seizure probability of channel k (its route's; heroin has its own)."""
    if k == HEROIN:
        return heroin
    return mail if CHANNEL_ROUTE[k] == MAIL else land


@jit(no_refcount=True)
def heroin_log_scarcity(y, p, work, mail, land, heroin):
    """Log of heroin's scarcity (a multiplier on its cost in the choice model, not on its money
    price) as its trade shrinks: -elasticity x log(heroin share of what the channels' capacities
    deliver to the US market, HE, after source enforcement and seizure); 0 while heroin is the
    whole market (heroin retires: less revenue, fewer growers, traffickers and sellers, a product
    that is harder to find).  It weighs in the choice, not in the money price: a share-weighted
    price with a cost that grows faster than the share falls (the fitted elasticity is above 1)
    would be dominated by the product nobody buys any more.  Delivered, not shipped: capacity
    built to replace withheld or seized product is no market share."""
    total, mine = 0.0, 0.0
    for k in range(N_CHANNELS):
        delivered = (max(y[CAPACITY + k], 0.0) * (1.0 - work[WORK.enforcement + k])
                     * (1.0 - min(channel_seizure(k, mail, land, heroin), 0.999)))
        total += delivered
        if k == HEROIN:
            mine = delivered
    if total <= 0.0 or mine >= total:
        return 0.0
    return -p["heroin_scale_elasticity"] * math.log(max(mine / total, 1e-6))


@jit
def channel_constant(k, p):
    """Alternative-specific constant of channel k in the fentanyl nest (1, log attractiveness):
    the parameter its Channel declares (`constant`), 0 for a channel that declares none."""
    asc = 0.0
    i = 0
    for name in literal_unroll(ASC_PARAMETERS):
        if ASC_CHANNELS[i] == k:
            asc = p[name]
        i += 1
    return asc


@jit
def work_array(p):
    """Scratch for `evaluate` of draw `p` (offsets WORK), with the draw's constants stored."""
    work = np.empty(N_WORK)
    store_seizure_hazards(p["seizure_prob_mail_2013"], p["seizure_rise_mail_2018"],
                          p["seizure_rise_mail_2021"], p["seizure_rise_mail_2024"], work,
                          WORK.hazard_mail)
    store_seizure_hazards(p["seizure_prob_land_2013"], p["seizure_rise_land_2018"],
                          p["seizure_rise_land_2021"], p["seizure_rise_land_2024"], work,
                          WORK.hazard_land)
    store_loglinear((p["initiation_2010"], p["initiation_2014"], p["initiation_2018"],
                     p["initiation_2021"], p["initiation_2024"]), work, WORK.initiation)
    work[WORK.log_kept_heroin] = math.log1p(-p["seizure_prob_heroin"])
    work[WORK.heroin_effort] = np.nan   # the land effort its seizure probability was computed at
    work[WORK.heroin_cost_after_trend] = heroin_base_cost(HEROIN_COST_TREND[1],
                                                          p["heroin_cost_change"])
    for k in range(N_FENTANYL_CHANNELS):
        work[WORK.exp_asc + k] = math.exp(channel_constant(k, p))
    work[WORK.terms_fixed] = TERMS_FREE
    work[WORK.regime] = 0.0
    return work


@jit(no_refcount=True)
def same_retail_cost(k, work):
    """The first channel before k with channel k's route and enforcement (for fentanyl channels,
    which share their base cost, its delivered and retail cost are then k's, bit for bit), or -1."""
    for j in range(k):
        if (CHANNEL_ROUTE[j] == CHANNEL_ROUTE[k]
                and work[WORK.enforcement + j] == work[WORK.enforcement + k]):
            return j
    return -1


@jit(inline=True)
def channel_terms(k, t, p, lv, work, mail, land, heroin):
    """Channel k's enforcement (its lever and the dated 2023 disruptions), delivered and retail
    cost per HE dose into `work`, from the seizure probabilities (mail, land, heroin); a fentanyl
    channel's log retail cost too.  A fentanyl channel with the route and enforcement of an
    earlier one (`same_retail_cost`) takes its costs, bit for bit."""
    lever = min(max(lv[CHANNEL_ENFORCEMENT[k]], 0.0), 0.999)
    work[WORK.enforcement + k] = 1.0 - (1.0 - lever) * (1.0 - supply_disruption(t, k, p))
    same = same_retail_cost(k, work) if k < N_FENTANYL_CHANNELS else -1
    if same >= 0:
        work[WORK.cost + k] = work[WORK.cost + same]
        work[WORK.retail + k] = work[WORK.retail + same]
        work[WORK.log_retail + k] = work[WORK.log_retail + same]
        return
    if k != HEROIN:
        base = p["fentanyl_cost_ratio"]
    elif t >= HEROIN_COST_TREND[1]:
        base = work[WORK.heroin_cost_after_trend]
    else:
        base = heroin_base_cost(t, p["heroin_cost_change"])
    work[WORK.cost + k] = delivered_cost(base, channel_seizure(k, mail, land, heroin),
                                         work[WORK.enforcement + k], p["risk_premium"],
                                         p["enforcement_cost_exponent"])
    work[WORK.retail + k] = retail_cost(work[WORK.cost + k], p["retail_markup"])
    if k < N_FENTANYL_CHANNELS:
        work[WORK.log_retail + k] = math.log(work[WORK.retail + k])


@jit(no_refcount=True)
def market_terms(t, p, lv, work, heroin_only):
    """The market's terms that depend on time and levers alone, into `work` (FENTANYL_TERMS and
    HEROIN_TERMS; only the latter when `heroin_only`): seizure probabilities by route and of heroin,
    each channel's terms (`channel_terms`), each fentanyl channel's retail cost to the power -s
    (s = beta / nest), computed once per distinct retail cost and scaled by the nest's largest
    (e^-top), and the heroin channel's log retail cost.  Shares follow the retail cost per HE dose,
    `retail_cost`: delivered cost plus the domestic distribution markup that supply-side measures
    do not touch."""
    effort = max(lv[INTERDICTION_LAND], 0.0)
    if effort != work[WORK.heroin_effort]:   # recomputed only when the effort moves
        work[WORK.heroin_effort] = effort
        work[WORK.seizure_heroin] = occurrence(-work[WORK.log_kept_heroin] * effort)
    if heroin_only:
        channel_terms(HEROIN, t, p, lv, work, work[WORK.seizure + MAIL],
                      work[WORK.seizure + LAND], work[WORK.seizure_heroin])
        work[WORK.log_retail_heroin] = math.log(work[WORK.retail + HEROIN])
        return
    mail = seizure_probability(t, work, WORK.hazard_mail, lv[INTERDICTION_MAIL])
    land = seizure_probability(t, work, WORK.hazard_land, lv[INTERDICTION_LAND])
    work[WORK.seizure + MAIL], work[WORK.seizure + LAND] = mail, land
    scale = p["cost_sensitivity"] / p["nest_dissimilarity"]
    for k in range(N_CHANNELS):
        channel_terms(k, t, p, lv, work, mail, land, work[WORK.seizure_heroin])
    work[WORK.log_retail_heroin] = math.log(work[WORK.retail + HEROIN])
    top = -np.inf          # the nest's largest -s log c_k, by which its weights are scaled
    for k in range(N_FENTANYL_CHANNELS):
        top = max(top, -scale * work[WORK.log_retail + k])
    work[WORK.top] = top
    for k in range(N_FENTANYL_CHANNELS):   # c_k^-s e^-top, once per distinct retail cost
        same = same_retail_cost(k, work)
        if same >= 0:
            work[WORK.cost_weight + k] = work[WORK.cost_weight + same]
            continue
        exponent = -scale * work[WORK.log_retail + k] - top
        # the cheapest channel's is e^0 = 1: no exp
        work[WORK.cost_weight + k] = math.exp(exponent) if exponent != 0.0 else 1.0


@jit(no_refcount=True)
def market(t, y, p, lv, work, report):
    """Target shares by channel (into `work`, offsets WORK) from the market's terms
    (`market_terms`) and the know-how stocks; returns the choice model's aggregate (nested-logit
    inclusive value in cost units; 0.0 unless `report`), the fentanyl nest's money price
    (`nest_price`) and the seizure probabilities (mail, land, heroin).  A channel's weight in the
    nest is a_k c_k^-s: attractiveness a_k = e^asc_k x its know-how (the draw's e^asc_k in
    `work`) and its retail cost c_k to the power -s, s = beta / nest.

    The terms are recomputed at t unless work[WORK.terms_fixed] holds them: a caller that knows
    they do not change over an interval (the compiled stepper, on a segment between input kinks
    where they are equal at both ends and the middle: `sim.engine.kernel`) computes them once and
    sets it to FENTANYL_TERMS_FIXED or ALL_TERMS_FIXED; `work_array` leaves it TERMS_FREE."""
    fixed = work[WORK.terms_fixed]
    if fixed != ALL_TERMS_FIXED:
        market_terms(t, p, lv, work, fixed == FENTANYL_TERMS_FIXED)
    mail, land = work[WORK.seizure + MAIL], work[WORK.seizure + LAND]
    heroin, top = work[WORK.seizure_heroin], work[WORK.top]
    beta, nest = p["cost_sensitivity"], p["nest_dissimilarity"]
    scale = beta / nest
    know_finished = min(max(y[KH_FINISHED], 1e-12), 1.0)
    know_synthesis = min(max(y[KH_SYNTHESIS], 1e-12), 1.0)
    total_a, total_v = 0.0, 0.0
    for k in range(N_FENTANYL_CHANNELS):   # weights a_k c_k^-s e^-top
        attractiveness = work[WORK.exp_asc + k] * (
            know_finished if CHANNEL_KNOW_HOW[k] == KNOW_HOW_FINISHED else know_synthesis)
        work[WORK.weight + k] = work[WORK.cost_weight + k] * attractiveness
        total_a += attractiveness
        total_v += work[WORK.weight + k]
    log_cost_heroin = (work[WORK.log_retail_heroin]
                       + heroin_log_scarcity(y, p, work, mail, land, heroin))
    log_sum_v = top + math.log(total_v)
    inclusive = nested_logit_shares(work, beta, nest, p["fentanyl_nest_preference"],
                                    log_cost_heroin, log_sum_v, total_v, report)
    return inclusive, nest_price(total_v, total_a, top, scale), mail, land, heroin


@jit
def nest_price(total_v, total_a, top, scale):
    """Retail money price per HE dose of the fentanyl nest (1): the CES mean of its channels'
    retail costs c_k with their non-price attractiveness a_k as weights,
    (sum a_k c_k^-s / sum a_k)^(-1/s), s = beta / lambda, from the nest's weights' sum
    `total_v` = e^-top sum a_k c_k^-s and `total_a` = sum a_k (`market`).  Between the cheapest
    and the dearest channel, equal to c when every channel costs c, and it never falls when one
    channel gets dearer: a cut cannot make fentanyl cheaper by moving buyers off a channel they
    paid more for (the share-weighted mean would)."""
    return math.exp(-(top + math.log(total_v / total_a)) / scale)


@jit(no_refcount=True)
def money_price(work, fentanyl_price):
    """Retail money price per HE dose (1 = heroin in 2010): heroin's retail cost and the fentanyl
    nest's price (`nest_price`) weighted by their shares of demand (in `work`)."""
    heroin_share = work[WORK.shares + HEROIN]
    return heroin_share * work[WORK.retail + HEROIN] + (1.0 - heroin_share) * fentanyl_price


@jit
def price_logs(price_cost, p):
    """log of the cost-based money price and of demand's price response, log(P_c^eps) (1)."""
    log_price_cost = math.log(price_cost)
    return log_price_cost, p["price_elasticity"] * log_price_cost


@jit
def shortage_price(price_cost, arrived, wanted, p):
    """Retail money price per HE dose (1) when arrivals (HE kg/yr) fall short of what is
    `wanted`: the cost-based price moved along the demand curve, x (arrived / wanted)^(1 /
    elasticity); the cost-based price itself when nothing falls short.  Reported only: the flows
    follow the cost-based price (`evaluate`)."""
    if wanted > 0.0 and arrived > 0.0:
        supplied = arrived / wanted
        if supplied < 1.0:      # (at or above 1 the factor is 1 ** x = 1: the power is skipped)
            return price_cost * max(supplied, 1e-3) ** (1.0 / p["price_elasticity"])
    return price_cost


@jit
def shipments_needed(share_of_demand, enforcement, seizure):
    """Shipments (HE kg/yr) a channel aims at so that what arrives is its share of demand: losses
    to source enforcement and to seizure are replaced (Reuter and Kleiman: replacement is a cost
    that the delivered cost, hence the price, carries), not left as a shortfall."""
    return share_of_demand / ((1.0 - min(enforcement, 0.999)) * (1.0 - min(seizure, 0.999)))


@jit
def demand(untreated, in_treatment, price_response, p):
    """Opioid demand (HE kg/yr): consuming persons x consumption per user x the price response
    (price^elasticity)."""
    users = untreated + p["treatment_use_ratio"] * in_treatment
    return users * p["consumption_per_user"] * price_response


@jit
def fastest_drain_rate(p):
    """Largest first-order rate of any stock (1/yr) of one draw: capacity adjustment, know-how
    diffusion, treatment exits, relapse, remission and treatment seeking (plus 0.5/yr for
    overdose).  Explicit solvers stay stable only while the step times this rate is inside their
    stability interval."""
    rate = max(1.0 / p["capacity_adjustment_time"], p["know_how_finished_rate"],
               p["know_how_synthesis_rate"], 1.0 / p["treatment_duration"])
    rate = max(rate, p["relapse_rate"] + p["background_death_rate"])
    return max(rate, p["remission_rate"] + p["treatment_seeking_rate"] + 0.5)


# --- demand side and overdose ----------------------------------------------------------------

@jit
def free_slot_share(in_treatment, slots):
    """Free share of the MOUD slots (1): 0 once they are full (a switch of the flows)."""
    return max(1.0 - in_treatment / max(slots, 1.0), 0.0)


@jit
def treatment_entries(untreated, free, seeking_rate):
    """MOUD entries (persons/yr): seeking rate x untreated x free share of the slots."""
    return seeking_rate * untreated * free


@jit
def product_shares(share, mixing):
    """Shares of use episodes (1): heroin only, heroin adulterated with fentanyl, fentanyl only,
    from the HE fentanyl share and the mixing phi (0 = sold apart, 1 = random mixing); the
    fentanyl content is kept: fentanyl only + half the adulterated = share."""
    f = min(max(share, 0.0), 1.0)
    mix = mixing * f * (1.0 - f)
    return (1.0 - f) - mix, 2.0 * mix, f - mix


@jit
def naloxone_probability(kits_per_year, population, p):
    """Probability naloxone is at hand at an overdose (1): 1 - exp(-c x kits per 100k per yr)."""
    return occurrence(p["naloxone_coefficient"] * max(kits_per_year, 0.0) / population * 1e5)


@jit
def rescue_factor(naloxone, p):
    """Share of overdoses that stay fatal after help (1): 1 - w [1 - (1 - p_nal)(1 - r)]."""
    helped = 1.0 - (1.0 - naloxone) * (1.0 - p["rescue_without_naloxone"])
    return 1.0 - p["witnessed_fraction"] * helped


@jit
def test_strip_factor(strips_per_year, population, p):
    """Multiplier on the incidence of fentanyl-containing products from test-strip use (1)."""
    if strips_per_year <= 0.0:
        return 1.0
    coverage = occurrence(p["test_strip_coefficient"] * strips_per_year / population * 1e5)
    return 1.0 - p["test_strip_max_effect"] * coverage


@jit
def overdose_hazards(common, strips, potency, p):
    """Fatal overdose hazard per use-year of each product (1/yr): heroin only, adulterated heroin,
    fentanyl only.  `common` = incidence x rescue factor x risk environment x consumption term.
    Adulterated heroin has incidence (1 - w) + w kappa and fatality (1 - w) cf_H + w cf_F; the
    fentanyl fatality cf_F is scaled by the retail potency path."""
    kappa = p["fentanyl_incidence_multiplier"] * strips
    w = p["adulterated_risk_weight"]
    cf_h, cf_f = p["case_fatality_heroin"], p["case_fatality_fentanyl"] * potency
    return (common * cf_h, common * ((1.0 - w) + w * kappa) * ((1.0 - w) * cf_h + w * cf_f),
            common * kappa * cf_f)


# --- the right-hand side ---------------------------------------------------------------------

@jit(no_refcount=True)
def evaluate(t, y, p, lv, dy, aux, work, report):
    """dy/dt of one draw (stock units per yr) into `dy`, and, when `report`, the reported
    auxiliaries into `aux` (the integrators pass False: what only the auxiliaries need is then not
    computed and `aux` is left as it was); `work` is this draw's scratch (`work_array(p)`).

    work[WORK.regime] receives the branches taken by the switches that depend on the state, as a
    bit code: per channel whether capacity falls short of its shipments, whether other channels'
    spare capacity covers less than the shortfall (then, and only then, arrivals fall short of
    demand and the price rises: no bit of its own, as supplied = 1 up to rounding otherwise),
    whether treatment slots are full, whether the capacity trend is clamped.  The flows are
    continuous across each switch but their slopes jump, and a Runge-Kutta step across such a kink
    has an error its embedded estimate does not see; the compiled stepper keeps steps across a
    change of this code short (`sim.engine.kernel`).  Nothing in dy or aux depends on it."""
    inclusive, fentanyl_price, seize_mail, seize_land, seize_heroin = market(t, y, p, lv, work,
                                                                             report)
    price_cost = money_price(work, fentanyl_price)
    # the price's powers from one log: demand (elasticity), overdose intensity, initiation
    log_price_cost, log_price_response = price_logs(price_cost, p)
    price_response = math.exp(log_price_response)
    population = us_population(t)
    potency = p["potency_ratio"]
    untreated = max(y[UNTREATED], 0.0)
    high = min(max(y[HIGH_RISK], 0.0), untreated)
    in_treatment = max(y[IN_TREATMENT], 0.0)
    remission = max(y[REMISSION], 0.0)
    users = untreated + p["treatment_use_ratio"] * in_treatment
    wanted = demand(untreated, in_treatment, price_response, p)

    # supply: each channel's capacity adjusts to its share of demand; the fate of its shipments
    pills = pill_share(t, p)
    product_per_pure = (1.0 / p["purity_mail"],
                        pills / p["purity_pill"] + (1.0 - pills) / p["purity_powder_land"])
    # capacity is a ceiling, never an obligation: no channel ships more than its share of demand
    # needs, and spare capacity (heroin networks retiring, a cut that ended) carries the shortfall
    # of channels still growing (distributors switch products), so arrivals never exceed demand
    # and fall short only when the trade as a whole lacks capacity
    spare, short, regime = 0.0, 0.0, 0.0
    for k in range(N_CHANNELS):
        needed = shipments_needed(work[WORK.shares + k] * wanted, work[WORK.enforcement + k],
                                  channel_seizure(k, seize_mail, seize_land, seize_heroin))
        work[WORK.needed + k] = needed
        gap = needed - max(y[CAPACITY + k], 0.0)
        spare += max(-gap, 0.0)
        short += max(gap, 0.0)
        if gap > 0.0:
            regime += float(1 << k)
    fill = min(spare / short, 1.0) if short > 0.0 else 0.0
    if spare < short:
        regime += 2.0 ** N_CHANNELS
    arrived_total, arrived_fentanyl, seized_mail, seized_land = 0.0, 0.0, 0.0, 0.0
    for k in range(N_CHANNELS):
        seizure = channel_seizure(k, seize_mail, seize_land, seize_heroin)
        capacity = max(y[CAPACITY + k], 0.0)
        needed = work[WORK.needed + k]
        dy[CAPACITY + k] = (needed - capacity) / p["capacity_adjustment_time"]
        shipped = min(capacity, needed) + max(needed - capacity, 0.0) * fill
        withheld = shipped * work[WORK.enforcement + k]
        seized = (shipped - withheld) * seizure
        arrived = shipped - withheld - seized
        dy[CUM_OUTPUT + k] = shipped
        dy[CUM_WITHHELD + k] = withheld
        dy[CUM_SEIZED + k] = seized
        dy[CUM_ARRIVALS + k] = arrived
        arrived_total += arrived
        if k < N_FENTANYL_CHANNELS:
            arrived_fentanyl += arrived
            if CHANNEL_ROUTE[k] == MAIL:
                seized_mail += seized / potency * product_per_pure[MAIL]
            else:
                seized_land += seized / potency * product_per_pure[LAND]
        if report:
            aux[AUX.delivered_cost + k] = work[WORK.cost + k]
            aux[AUX.target_share + k] = work[WORK.shares + k]
            aux[AUX.arrivals + k] = arrived
    dy[CUM_SEIZED_PRODUCT + MAIL] = seized_mail
    dy[CUM_SEIZED_PRODUCT + LAND] = seized_land
    dy[CUM_DEMAND] = wanted
    dy[KH_FINISHED] = logistic_growth(min(max(y[KH_FINISHED], 0.0), 1.0), p["know_how_finished_rate"])
    dy[KH_SYNTHESIS] = logistic_growth(min(max(y[KH_SYNTHESIS], 0.0), 1.0),
                                       p["know_how_synthesis_rate"])

    # the market clears: consumption = arrivals (never above demand: shipments are capped at what
    # the market takes); a shortfall raises the money price along the demand curve.  Overdose risk
    # per user and initiation follow the cost-based money price (what a year of use costs), not a
    # passing shortage: a shortage lowers volumes but brings unknown substitutes and lost tolerance,
    # taken to cancel (stated assumption); so a measure that ends leaves no better-supplied market
    share = arrived_fentanyl / arrived_total if arrived_total > 0.0 else 0.0
    per_user = arrived_total / users if users > 0.0 else 0.0
    intensity = math.exp(p["od_consumption_exponent"] * min(log_price_response, LOG_10))

    # overdose by product: one formula for the total and the split; the high-risk group's rate is
    # high_risk_relative_risk x the rest's
    heroin_only, adulterated, fentanyl_only = product_shares(share, p["adulteration_mixing"])
    naloxone = naloxone_probability(lv[NALOXONE_KITS], population, p)
    environment = (covid_risk(t, p["covid_shock_size"], p["covid_shock_decay"])
                   * risk_shift(t, p["risk_shift_persistent"]))
    strength = retail_potency(t, p["retail_potency_2024"])
    common = p["overdose_incidence"] * rescue_factor(naloxone, p) * environment * intensity
    hazard_h, hazard_a, hazard_f = overdose_hazards(
        common, test_strip_factor(lv[TEST_STRIPS], population, p), strength, p)
    rate = heroin_only * hazard_h + adulterated * hazard_a + fentanyl_only * hazard_f
    relative_risk = p["high_risk_relative_risk"]
    weighted = untreated - high + relative_risk * high      # risk-weighted untreated persons
    exposed = weighted + p["treatment_overdose_ratio"] * in_treatment
    od_untreated = weighted * rate
    od_high = relative_risk * high * rate
    od_in_treatment = exposed * rate - od_untreated

    # people
    # a dearer market deters initiation (participation): x (cost-based money price)^elasticity
    initiation = (1.0 - lv[PREVENTION]) * math.exp(
        log_initiation_path(t, work) + p["initiation_price_elasticity"] * log_price_cost)
    free = free_slot_share(in_treatment, p["moud_share_illicit"] * lv[MOUD_CAPACITY])
    entries = treatment_entries(untreated, free, p["treatment_seeking_rate"] * lv[TREATMENT_SEEKING])
    if free == 0.0:
        regime += 2.0 ** (N_CHANNELS + 1)
    exits = in_treatment / p["treatment_duration"]
    to_remission = exits * p["treatment_success_fraction"]
    remitting = p["remission_rate"] * untreated
    relapse = p["relapse_rate"] * remission
    background = p["background_death_rate"]
    dy[UNTREATED] = (initiation + relapse + exits - to_remission - entries - remitting
                     - od_untreated - background * untreated)
    high_fraction = high / untreated if untreated > 0.0 else 0.0
    dy[HIGH_RISK] = (p["high_risk_entry_share"] * (initiation + relapse + exits - to_remission)
                     - high_fraction * (entries + remitting + background * untreated)
                     - p["high_risk_exit_rate"] * high - od_high)
    dy[IN_TREATMENT] = entries - exits - od_in_treatment - background * in_treatment
    dy[REMISSION] = remitting + to_remission - relapse - background * remission
    # supply chains follow the trend of their market (Sterman 2000, ch. 16: trend extrapolation):
    # capacity also grows with the number of consuming users, so steady growth is no shortage
    if users > 0.0:
        growth = (dy[UNTREATED] + p["treatment_use_ratio"] * dy[IN_TREATMENT]) / users
        if abs(growth) > 1.0:
            regime += 2.0 ** (N_CHANNELS + 2)
        growth = min(max(growth, -1.0), 1.0)
        for k in range(N_CHANNELS):
            dy[CAPACITY + k] += max(y[CAPACITY + k], 0.0) * growth
    pharma = pharma_fentanyl_deaths(t, p["pharma_fentanyl_deaths_2010"],
                                    p["pharma_fentanyl_deaths_floor"],
                                    p["pharma_fentanyl_decline_rate"])
    dy[CUM_DEATHS_HEROIN_ONLY] = exposed * heroin_only * hazard_h
    dy[CUM_DEATHS_BOTH] = exposed * adulterated * hazard_a
    dy[CUM_DEATHS_FENTANYL_ONLY] = exposed * fentanyl_only * hazard_f
    dy[CUM_OD_DEATHS_IN_TREATMENT] = od_in_treatment
    dy[CUM_DEATHS_PHARMA] = pharma
    dy[CUM_DEATHS_OTHER_SYNTHETIC] = p["background_synthetic_deaths"]
    dy[CUM_DEATHS_BACKGROUND] = background * (untreated + in_treatment + remission)
    dy[CUM_INITIATION] = initiation
    dy[CUM_TREATMENT_ENTRIES] = entries

    work[WORK.regime] = regime
    if not report:
        return

    # reported auxiliaries
    aux[AUX.population] = population
    aux[AUX.seizure_probability + MAIL] = seize_mail
    aux[AUX.seizure_probability + LAND] = seize_land
    aux[AUX.seizure_probability_heroin] = seize_heroin
    aux[AUX.cost_price_index] = inclusive
    aux[AUX.price_index] = shortage_price(price_cost, arrived_total, wanted, p)
    aux[AUX.demand] = wanted
    aux[AUX.heroin_arrivals] = aux[AUX.arrivals + HEROIN]
    aux[AUX.fentanyl_arrivals] = arrived_fentanyl / potency
    aux[AUX.fentanyl_share] = share
    pharma_reports = p["nflis_pharma_share_2010"] * pharma / p["pharma_fentanyl_deaths_2010"]
    aux[AUX.nflis_share] = (fentanyl_only + adulterated + pharma_reports) / (
        1.0 + adulterated + pharma_reports)
    aux[AUX.product_share + HEROIN_ONLY] = heroin_only
    aux[AUX.product_share + BOTH] = adulterated
    aux[AUX.product_share + FENTANYL_ONLY] = fentanyl_only
    aux[AUX.consumption_per_user] = per_user
    aux[AUX.naloxone_probability] = naloxone
    aux[AUX.risk_environment] = environment
    aux[AUX.overdose_death_rate] = rate
    aux[AUX.pill_share] = pills
    aux[AUX.retail_potency] = strength


@jit
def initial_state(t0, p, lv, y):
    """State of one draw at t0 (1 Jan 2010) into `y`: people and know-how from the parameters,
    each channel's capacity at its share of demand (the market in equilibrium), running totals 0."""
    for i in range(y.size):
        y[i] = 0.0
    y[KH_FINISHED] = p["know_how_finished_2010"]
    y[KH_SYNTHESIS] = p["know_how_synthesis_2010"]
    y[UNTREATED] = p["untreated_2010"]
    y[HIGH_RISK] = p["high_risk_share_2010"] * p["untreated_2010"]
    y[IN_TREATMENT] = p["in_treatment_2010"]
    y[REMISSION] = p["remission_2010"]
    work = work_array(p)
    _, fentanyl_price, mail, land, heroin = market(t0, y, p, lv, work, False)
    wanted = demand(p["untreated_2010"], p["in_treatment_2010"],
                    math.exp(price_logs(money_price(work, fentanyl_price), p)[1]), p)
    for k in range(N_CHANNELS):
        y[CAPACITY + k] = shipments_needed(work[WORK.shares + k] * wanted,
                                           work[WORK.enforcement + k],
                                           channel_seizure(k, mail, land, heroin))
