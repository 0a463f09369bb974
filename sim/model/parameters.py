"""Model parameters: a frozen, validated dataclass whose fields carry units, bounds and sources.

Every field may be a scalar or a 1-D array over parameter draws (the `draw` dimension); arrays of
different fields must have the same length or length 1.  Bounds are checked element-wise when the
object is built, and unknown keys are rejected by `ModelParameters.from_mapping`.

Values are literature defaults (FDA SOURCE model, Lim et al. 2022, and the design brief) or stated
assumptions; the calibrated baseline overrides some of them from `configs/params/calibrated.yaml`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

import numpy as np

from pydantic import Field, ValidationInfo, create_model, field_validator, model_validator

from sim.errors import InputError
from sim.schema import Section, validate


ROLES = ("fixed", "fit", "subst", "unc")
# Roles sampled with their priors (not fitted at the MAP): the substitution constants no series
# identifies and other stated uncertainties.
PRIOR_ROLES = ("subst", "unc")
# Roles the posterior samples (fitted parameters and those drawn from their priors).
SAMPLED_ROLES = ("fit", *PRIOR_ROLES)
PRIOR_KINDS = {"fixed": 0, "lognormal": 2, "uniform": 2, "normal": 2}   # kind -> number of arguments
SCALES = ("linear", "log")


def param(default: float, units: str, bounds: tuple[float, float], evidence: str, *,
          prior: tuple = ("fixed",), role: str = "fixed", scale: str = "linear",
          error_of: str | None = None) -> Any:
    """Declare a parameter field: default, units, bounds [lo, hi], meaning and evidence, prior and role.

    prior: ('fixed',) | ('lognormal', median, sd of log) | ('uniform', lo, hi) | ('normal', mean, sd);
    the distribution is `prior_distribution(name)` (scipy.stats, truncated to the bounds), the one
    place every fit, sampler, ensemble and document reads it from.
    role: 'fixed' (a literature constant, not varied); 'fit' (calibrated, in the posterior);
    'subst' (a substitution constant the 2010-2024 data do not identify: sampled with its prior
    in every posterior and ensemble, never fitted at the MAP); 'unc' (uncertain, sampled with its
    prior).
    `scale` is 'log' for rates and scales (calibration and sampling work in log space).
    `error_of`: the parameter is the model-error sd (natural-log units) of that calibration
    output's public series (sim.calibrate.targets.OUTPUTS), see `model_errors`.
    """
    kind = prior[0] if prior else None
    assert role in ROLES, role
    assert scale in SCALES, scale
    assert kind in PRIOR_KINDS and len(prior) == 1 + PRIOR_KINDS[kind], prior
    assert (kind == "fixed") == (role == "fixed"), (role, prior)   # a varied parameter has a prior
    return field(default=default, metadata={
        "units": units, "bounds": bounds, "source": evidence, "doc": evidence, "scale": scale,
        "prior": tuple(prior), "role": role, "error_of": error_of})


SOURCE_LIM = "FDA SOURCE model (Lim et al. 2022), via design brief"
ASSUMPTION = "assumption (order of magnitude); calibrated or varied in the ensemble"


@lru_cache(maxsize=None)
def _field_metadata(cls: type) -> Mapping[str, Mapping[str, Any]]:
    """Each declared parameter's metadata by name, built once per class (read per cell when a
    posterior file is checked)."""
    return {f.name: f.metadata for f in fields(cls)}


@dataclass(frozen=True, eq=False)
class ModelParameters:
    """All constants and uncertainties of the stock-and-flow model, with units."""

    potency_ratio: float = param(
        50.0, '1', (10.0, 100.0),
        "TIME 2019 article: '50 times stronger than heroin' (by mass)",
        prior=('fixed',), role='fixed', scale='linear')
    fentanyl_cost_ratio: float = param(
        0.1, '1', (0.005, 1.0),
        'RAND 2019, Pardo et al., The Future of Fentanyl and Other Synthetic Opioids: fentanyl is far cheaper per morphine-equivalent dose than heroin to produce and smuggle (an order of magnitude or more); base cost per HE kg relative to heroin',
        prior=('lognormal', 0.1, 0.7), role='unc', scale='log')
    cost_sensitivity: float = param(
        1.5, '1', (0.3, 5.0),
        'logit scale beta of the fentanyl-vs-heroin choice on log delivered cost; stated assumption (no series identifies it separately from the nest preference)',
        prior=('lognormal', 1.5, 0.4), role='subst', scale='log')
    nest_dissimilarity: float = param(
        0.6, '1', (0.15, 1.0),
        'lambda of the nested logit: within the fentanyl nest channels substitute with scale beta/lambda (lambda=1: plain logit, channels no closer substitutes than heroin). stated assumption',
        prior=('uniform', 0.25, 1.0), role='subst', scale='linear')
    fentanyl_nest_preference: float = param(
        -0.5, '1', (-8.0, 6.0),
        'a_F: log attractiveness of the fentanyl nest vs heroin at equal cost (calibrated; broad prior)',
        prior=('normal', 0.0, 3.0), role='fit', scale='linear')
    asc_china_precursor: float = param(
        -0.5, '1', (-6.0, 6.0),
        'log attractiveness of China->Mexico precursor channel relative to China finished mail',
        prior=('normal', 0.0, 1.5), role='fit', scale='linear')
    asc_india_finished: float = param(
        -3.0, '1', (-8.0, 0.0),
        "log attractiveness of India's finished fentanyl relative to China's: how readily India replaces China; article: India a second, smaller source (two large seizures 2018)",
        prior=('uniform', -5.0, -1.0), role='subst', scale='linear')
    asc_india_precursor: float = param(
        -2.5, '1', (-8.0, 0.0),
        'log attractiveness of Indian precursors -> Mexico relative to China finished mail',
        prior=('uniform', -5.0, -0.5), role='subst', scale='linear')
    asc_other: float = param(
        -2.0, '1', (-8.0, 1.0),
        'log attractiveness of other producers relative to China finished mail (substitution pool; RAND 2019: synthesis can move to any country with a chemical industry)',
        prior=('uniform', -4.0, 0.0), role='subst', scale='linear')
    retail_markup: float = param(
        4.0, '1', (0.5, 20.0),
        'Reuter & Kleiman 1986; Caulkins & Reuter (RAND): the import-level price of heroin is about 10-20 % of its retail price, the rest is domestic distribution, which border and source enforcement do not touch; retail cost per HE dose = delivered cost + this markup (in units of the 2010 heroin delivered cost), so supply-side shocks raise retail prices additively, not multiplicatively',
        prior=('lognormal', 4.0, 0.5), role='unc', scale='log')
    risk_premium: float = param(
        2.0, '1', (0.0, 20.0),
        'Reuter & Kleiman 1986 (risks and prices: enforcement works as a tax on the trade): cost multiplier per unit seizure probability, c ~ (1 + rho s) / (1 - s); prior lognormal median 2, sd 0.6 in log units (stated)',
        prior=('lognormal', 2.0, 0.6), role='unc', scale='log')
    enforcement_cost_exponent: float = param(
        1.0, '1', (0.0, 3.0),
        'gamma_e: delivered cost of a channel x (1 - e)^(-gamma_e) under source enforcement e; stated assumption',
        prior=('uniform', 0.5, 2.0), role='subst', scale='linear')
    heroin_cost_change: float = param(
        -0.3, '1', (-2.0, 1.0),
        "log change of heroin's base delivered cost from 2010 to 2017 (linear, flat after): DEA/ONDCP price and purity series show cheaper, purer heroin as Mexican poppy cultivation grew",
        prior=('normal', -0.3, 0.3), role='fit', scale='linear')
    heroin_scale_elasticity: float = param(
        1.0, '1', (0.0, 4.0),
        "heroin retires: in the choice model heroin's cost x (heroin share of delivered supply)^-this, as growers, traffickers and street sellers leave a shrinking trade and heroin gets harder to find (fixed costs spread over less revenue; Reuter 2014 on market size and enforcement risk per dealer); a scarcity cost, not a money price (the reported price_index uses heroin's retail cost); stated assumption, fitted to heroin deaths, prior uniform 0-3 (3: a cost-equivalent x ~30 when its share falls to 1/3)",
        prior=('uniform', 0.0, 3.0), role='fit', scale='linear')
    capacity_adjustment_time: float = param(
        2.0, 'yr', (0.5, 5.0),
        "tau_adj: time for a channel's capacity to close the gap to its share of demand (DESIGN: 1-3 yr)",
        prior=('lognormal', 1.75, 0.3), role='subst', scale='log')
    know_how_finished_2010: float = param(
        2e-05, '1', (1e-09, 0.5),
        'diffusion level of the finished-fentanyl mail trade on 1 Jan 2010 (calibrated)',
        prior=('lognormal', 2e-05, 2.5), role='fit', scale='log')
    know_how_finished_rate: float = param(
        1.2, '1/yr', (0.1, 5.0),
        'logistic diffusion rate of the finished-fentanyl mail trade (calibrated: S-shaped takeover 2013-2018, NFLIS)',
        prior=('lognormal', 1.0, 0.7), role='fit', scale='log')
    know_how_synthesis_2010: float = param(
        1e-06, '1', (1e-11, 0.5),
        'diffusion level of Mexican synthesis from imported precursors, 1 Jan 2010',
        prior=('lognormal', 1e-06, 3.0), role='fit', scale='log')
    know_how_synthesis_rate: float = param(
        1.0, '1/yr', (0.1, 5.0),
        'logistic diffusion rate of Mexican synthesis (route shift mail -> land 2018-2021)',
        prior=('lognormal', 1.0, 0.7), role='fit', scale='log')
    seizure_prob_mail_2013: float = param(
        0.04, '1', (0.001, 0.2),
        "probability a mail/express fentanyl shipment is seized, mid FY2013 (CBP; documented plausible range: a few % to ~20% of a route's flow, SEIZURE_PROB_MAX = 0.2; prior uniform over 0.005-0.2 in the probability itself, fitted on the log scale)",
        prior=('uniform', 0.005, 0.2), role='fit', scale='log')
    seizure_rise_mail_2018: float = param(
        0.3, '1', (0.0, 1.0),
        'rise of the mail seizure probability FY2013 -> FY2018 as a fraction of the room left below SEIZURE_PROB_MAX (screening effort grew; never falls)',
        prior=('uniform', 0.0, 1.0), role='fit', scale='linear')
    seizure_rise_mail_2021: float = param(
        0.3, '1', (0.0, 1.0),
        'rise FY2018 -> FY2021, fraction of the room left: STOP Act advance electronic data on international mail phased in Oct 2018-2021',
        prior=('uniform', 0.0, 1.0), role='fit', scale='linear')
    seizure_rise_mail_2024: float = param(
        0.1, '1', (0.0, 1.0),
        'rise FY2021 -> FY2024, fraction of the room left (CBP FY2022-2024 keep changing: more mail screening); flat after FY2024',
        prior=('uniform', 0.0, 1.0), role='fit', scale='linear')
    seizure_prob_land_2013: float = param(
        0.02, '1', (0.001, 0.2),
        'probability a land-route fentanyl shipment is seized, mid FY2013',
        prior=('uniform', 0.005, 0.2), role='fit', scale='log')
    seizure_rise_land_2018: float = param(
        0.2, '1', (0.0, 1.0),
        'rise of the land seizure probability FY2013 -> FY2018, fraction of the room left',
        prior=('uniform', 0.0, 1.0), role='fit', scale='linear')
    seizure_rise_land_2021: float = param(
        0.2, '1', (0.0, 1.0),
        'rise FY2018 -> FY2021, fraction of the room left (more non-intrusive scanning at SW ports)',
        prior=('uniform', 0.0, 1.0), role='fit', scale='linear')
    seizure_rise_land_2024: float = param(
        0.1, '1', (0.0, 1.0),
        'rise FY2021 -> FY2024, fraction of the room left (CBP non-intrusive inspection at SW ports expanded 2022-2024); flat after FY2024',
        prior=('uniform', 0.0, 1.0), role='fit', scale='linear')
    seizure_prob_heroin: float = param(
        0.05, '1', (0.001, 0.25),
        'probability a heroin shipment is seized (land; constant history x interdiction_land): CBP heroin seizures roughly flat (~2 t/yr) FY2013-FY2018 against ~40-50 t consumed (RAND 2014)',
        prior=('uniform', 0.02, 0.12), role='fit', scale='log')
    purity_mail: float = param(
        0.6, '1', (0.05, 1.0),
        'purity of fentanyl seized in mail/express (DEA NDTA: Chinese mail shipments often high purity)',
        prior=('uniform', 0.3, 0.95), role='fit', scale='linear')
    purity_powder_land: float = param(
        0.1, '1', (0.02, 0.5),
        'purity of fentanyl powder seized at land ports (DESIGN/DEA NDTA: about 5-20%)',
        prior=('uniform', 0.05, 0.2), role='fit', scale='linear')
    purity_pill: float = param(
        0.015, '1', (0.005, 0.05),
        'fentanyl content of counterfeit pills by weight (DEA: ~1-2 mg per ~100 mg pill)',
        prior=('uniform', 0.01, 0.02), role='fit', scale='linear')
    pill_share_2019: float = param(
        0.1, '1', (0.0, 0.6),
        'share of land-route fentanyl (pure mass) in pills up to 2019',
        prior=('uniform', 0.02, 0.3), role='fit', scale='linear')
    pill_share_2021: float = param(
        0.35, '1', (0.0, 0.9),
        'share in pills from mid 2021 (DEA NDTA: counterfeit pill seizures rising sharply 2019-2021)',
        prior=('uniform', 0.1, 0.6), role='fit', scale='linear')
    consumption_per_user: float = param(
        0.05, 'HE kg/person/yr', (0.005, 0.5),
        "q0: HE consumption per using person per year at price index 1 (heroin era); ~45 t pure heroin per ~1M users (RAND What America's Users Spend on Illegal Drugs, 2014)",
        prior=('lognormal', 0.05, 0.5), role='fit', scale='log')
    price_elasticity: float = param(
        -0.5, '1', (-1.5, -0.1),
        'eps: price elasticity of opioid demand (Olmstead et al. 2015; Gallet 2014 meta-analysis: heroin about -0.3 to -1.0)',
        prior=('uniform', -1.0, -0.3), role='unc', scale='linear')
    od_consumption_exponent: float = param(
        0.25, '1', (0.0, 1.5),
        'eta: overdose hazard x (consumption per user at the cost-based money price / q0)^eta = (P_c^eps)^eta -- how much a lasting price rise (enforcement, interdiction, disruption) lowers overdose risk per user; a passing shortage does not (it lowers volumes but brings unknown substitutes and lost tolerance, taken to cancel).  stated assumption; a supply-response constant that 2010-2024 does not identify, so it is held at its prior median in the fit and sampled from its prior in every ensemble',
        prior=('uniform', 0.0, 0.5), role='subst', scale='linear')
    initiation_price_elasticity: float = param(
        -0.3, '1', (-1.5, 0.0),
        'elasticity of initiation to the retail money price (price_index before normalisation, heroin in 2010 = 1; market price, shortages included): part of the price response of illicit drug demand is participation, about half of the total elasticity (Pacula et al. 2001; Caulkins and Reuter 1998; heroin total about -0.3 to -1.0), so a dearer market deters new use.  The fitted initiation knots absorb the historical price path; the constant is not identified by 2010-2024 series: held at its prior median in the fit, sampled from its prior (uniform -0.5 to -0.1) in every ensemble',
        prior=('uniform', -0.5, -0.1), role='subst', scale='linear')
    treatment_use_ratio: float = param(
        0.3, '1', (0.0, 1.0),
        "illicit consumption of a person in MOUD relative to untreated (set equal to SOURCE's 0.3 overdose ratio; prior uniform 0.15-0.5, a stated range)",
        prior=('uniform', 0.15, 0.5), role='unc', scale='linear')
    initiation_2010: float = param(
        150000.0, 'persons/yr', (10000.0, 1000000.0),
        'new illicit-opioid OUD per year in 2010 (SOURCE: ~1e5/yr around 2015; calibrated)',
        prior=('lognormal', 150000.0, 0.6), role='fit', scale='log')
    initiation_2014: float = param(
        150000.0, 'persons/yr', (10000.0, 1000000.0),
        'same in 2014 (piecewise log-linear; prescription pathway falls after ~2011)',
        prior=('lognormal', 150000.0, 0.6), role='fit', scale='log')
    initiation_2018: float = param(
        150000.0, 'persons/yr', (10000.0, 1000000.0),
        'same in 2018',
        prior=('lognormal', 150000.0, 0.6), role='fit', scale='log')
    initiation_2021: float = param(
        150000.0, 'persons/yr', (10000.0, 1000000.0),
        'same in 2021',
        prior=('lognormal', 150000.0, 0.6), role='fit', scale='log')
    initiation_2024: float = param(
        150000.0, 'persons/yr', (10000.0, 1000000.0),
        'same in 2024, held after 2024 (yearly swings held by a smoothness target, configs/targets/us_series.yaml)',
        prior=('lognormal', 150000.0, 0.6), role='fit', scale='log')
    untreated_2010: float = param(
        600000.0, 'persons', (10000.0, 5000000.0),
        'untreated illicit-opioid OUD population, 1 Jan 2010',
        prior=('lognormal', 600000.0, 0.5), role='fit', scale='log')
    high_risk_share_2010: float = param(
        0.3, '1', (0.01, 0.95),
        'share of the untreated population at high overdose risk on 1 Jan 2010 (risk structure: injection, prior non-fatal overdose, using alone); stated assumption, fitted',
        prior=('uniform', 0.1, 0.5), role='fit', scale='linear')
    high_risk_entry_share: float = param(
        0.35, '1', (0.01, 0.95),
        'share of people entering untreated use (initiation, relapse, treatment exits) who enter the high-risk group; stated assumption, fitted',
        prior=('uniform', 0.15, 0.6), role='fit', scale='linear')
    high_risk_relative_risk: float = param(
        4.0, '1', (1.0, 20.0),
        'overdose death rate of the high-risk group relative to the rest of the untreated: after a non-fatal overdose 1-yr mortality is several times higher (Olfson et al. 2018 JAMA Netw Open; Caudarella et al. 2016 Drug Alcohol Depend); prior lognormal median 4 (90% 1.8-9)',
        prior=('lognormal', 4.0, 0.5), role='fit', scale='log')
    high_risk_exit_rate: float = param(
        0.3, '1/yr', (0.01, 3.0),
        'rate at which high-risk people move to lower risk without leaving use (route change, using with others, stabilisation); stated assumption, prior lognormal median 0.3 (90% 0.1-0.95)',
        prior=('lognormal', 0.3, 0.7), role='fit', scale='log')
    in_treatment_2010: float = param(
        300000.0, 'persons', (0.0, 5000000.0),
        'people of that population in MOUD, 1 Jan 2010 (stated assumption)',
        prior=('fixed',), role='fixed', scale='linear')
    remission_2010: float = param(
        300000.0, 'persons', (0.0, 10000000.0),
        'people in remission, 1 Jan 2010 (stated assumption)',
        prior=('fixed',), role='fixed', scale='linear')
    treatment_seeking_rate: float = param(
        0.6, '1/yr', (0.0, 10.0),
        'rate untreated people seek MOUD when slots are free (stated assumption; prior lognormal median 0.6, sd 0.5 in log units)',
        prior=('lognormal', 0.6, 0.5), role='unc', scale='log')
    moud_share_illicit: float = param(
        0.5, '1', (0.01, 1.0),
        'share of national MOUD capacity open to this population (stated assumption; prior uniform 0.3-0.8)',
        prior=('uniform', 0.3, 0.8), role='unc', scale='log')
    treatment_duration: float = param(
        0.8, 'yr', (0.1, 5.0),
        'FDA SOURCE model, Lim et al. 2022 PNAS (via DESIGN.md): episodes 0.6-1 yr; prior uniform over that range',
        prior=('uniform', 0.6, 1.0), role='unc', scale='linear')
    treatment_success_fraction: float = param(
        0.5, '1', (0.0, 1.0),
        'share of MOUD exits to remission (stated assumption; prior uniform 0.3-0.7)',
        prior=('uniform', 0.3, 0.7), role='unc', scale='linear')
    remission_rate: float = param(
        0.068, '1/yr', (0.0, 1.0),
        'FDA SOURCE model, Lim et al. 2022 PNAS (via DESIGN.md)',
        prior=('fixed',), role='fixed', scale='linear')
    relapse_rate: float = param(
        0.58, '1/yr', (0.0, 5.0),
        'FDA SOURCE model, Lim et al. 2022 PNAS (via DESIGN.md)',
        prior=('fixed',), role='fixed', scale='linear')
    background_death_rate: float = param(
        0.0143, '1/yr', (0.0, 0.1),
        'FDA SOURCE model, Lim et al. 2022 PNAS (via DESIGN.md)',
        prior=('fixed',), role='fixed', scale='linear')
    overdose_incidence: float = param(
        0.167, '1/yr', (0.03, 1.0),
        'FDA SOURCE model, Lim et al. 2022 PNAS (via DESIGN.md): overdoses per heroin-using person-year',
        prior=('lognormal', 0.167, 0.3), role='fit', scale='log')
    fentanyl_incidence_multiplier: float = param(
        4.0, '1', (1.5, 9.0),
        'FDA SOURCE model, Lim et al. 2022 PNAS (via DESIGN.md): kappa 2-7',
        prior=('uniform', 2.0, 7.0), role='fit', scale='linear')
    case_fatality_heroin: float = param(
        0.046, '1', (0.0, 1.0),
        'FDA SOURCE model, Lim et al. 2022 PNAS (via DESIGN.md)',
        prior=('fixed',), role='fixed', scale='linear')
    case_fatality_fentanyl: float = param(
        0.298, '1', (0.0, 1.0),
        'FDA SOURCE model, Lim et al. 2022 PNAS (via DESIGN.md)',
        prior=('fixed',), role='fixed', scale='linear')
    adulterated_risk_weight: float = param(
        0.5, '1', (0.0, 1.0),
        'w: heroin adulterated with fentanyl has incidence i0((1-w)+w kappa) and fatality (1-w)cf_H + w cf_F (stated assumption)',
        prior=('uniform', 0.2, 1.0), role='fit', scale='linear')
    adulteration_mixing: float = param(
        0.6, '1', (0.0, 1.0),
        'phi: 0 = fentanyl and heroin sold apart, 1 = random mixing (calibrated to heroin deaths)',
        prior=('uniform', 0.0, 1.0), role='fit', scale='linear')
    witnessed_fraction: float = param(
        0.764, '1', (0.0, 1.0),
        'FDA SOURCE model, Lim et al. 2022 PNAS (via DESIGN.md): 0.764; prior uniform 0.55-0.9, a stated range around it (CDC SUDORS finds a potential bystander at about 4 in 10 fatal overdoses, so the share of all overdoses witnessed is uncertain)',
        prior=('uniform', 0.55, 0.9), role='unc', scale='linear')
    rescue_without_naloxone: float = param(
        0.424, '1', (0.0, 1.0),
        'FDA SOURCE model, Lim et al. 2022 PNAS (via DESIGN.md): 0.424; prior uniform 0.3-0.55, a stated range around it',
        prior=('uniform', 0.3, 0.55), role='unc', scale='linear')
    naloxone_coefficient: float = param(
        0.000343, '1/(kits per 100k per yr)', (0.0, 0.01),
        "FDA SOURCE model, Lim et al. 2022 PNAS (via DESIGN.md): p_nal = 1 - exp(-0.000343 kits per 100k); prior lognormal around SOURCE's value, sd 0.5 in log units (90% within x0.44-2.3): at small scale the model needs 263 kits per death averted against Coffin and Sullivan's (2013) 227, SOURCE calibrated it on a narrow range of distribution, and the kit history after 2020 is a bounded assumption (sim/model/levers.py)",
        prior=('lognormal', 0.000343, 0.5), role='unc', scale='log')
    test_strip_max_effect: float = param(
        0.25, '1', (0.0, 1.0),
        'largest cut in fentanyl-product incidence from universal strip use (Peiper et al. 2019: '
        'a positive result changed use in about half of users; stated assumption). Prior uniform '
        '0.1-0.4 around 0.25: no 2010-2024 series identifies it (no strips in history), so every '
        'ensemble draws it',
        prior=('uniform', 0.1, 0.4), role='unc', scale='linear')
    test_strip_coefficient: float = param(
        0.0005, '1/(strips per 100k per yr)', (0.0, 0.1),
        'coverage per strip (coverage = 1 - exp(-coef x strips per 100k per yr)); stated '
        'assumption, prior lognormal (median 0.0005, sd 0.7 in log units: 90% within x0.3-3.2), '
        'drawn in every ensemble (not identified by 2010-2024 data)',
        prior=('lognormal', 0.0005, 0.7), role='unc', scale='log')
    treatment_overdose_ratio: float = param(
        0.3, '1', (0.0, 1.0),
        'FDA SOURCE model, Lim et al. 2022 PNAS (via DESIGN.md): 0.3; prior uniform 0.2-0.5 (Sordo et al. 2017 BMJ: mortality in opioid agonist treatment about a third of that out of it)',
        prior=('uniform', 0.2, 0.5), role='unc', scale='linear')
    covid_shock_size: float = param(
        0.3, '1', (0.0, 2.0),
        'relative rise of overdose risk at the peak of the COVID-19 disruption (from March 2020; events file; estimated)',
        prior=('lognormal', 0.25, 0.7), role='fit', scale='log')
    covid_shock_decay: float = param(
        0.3, '1/yr', (0.0, 5.0),
        'exponential decay rate of the COVID-19 risk shock after its peak (estimated)',
        prior=('lognormal', 0.3, 1.0), role='fit', scale='log')
    risk_shift_persistent: float = param(
        0.2, '1', (0.0, 1.5),
        'persistent rise of per-use overdose risk from March 2020 (full by 2022): counterfeit pills, xylazine (White House emerging threat Apr 2023), more use alone; estimated separately from the temporary COVID-19 pulse (events file 2020-03, 2022-2024)',
        prior=('uniform', 0.0, 0.8), role='fit', scale='linear')
    retail_potency_2024: float = param(
        0.75, '1', (0.3, 1.2),
        'retail potency of fentanyl products from April 2024 relative to 2023 (1 before October 2023; linear between; held after): DEA laboratory testing, counterfeit pills with a potentially lethal dose about 7 in 10 (2023) -> 5 in 10 (2024), ratio 0.71 (events file 2023-2024); multiplies the fatality of fentanyl-containing use; prior uniform 0.55-1.0',
        prior=('uniform', 0.55, 1.0), role='fit', scale='linear')
    disruption_mexico_2023: float = param(
        0.1, '1', (0.0, 0.9),
        "share of Mexican synthesis withheld from May 2023 (reported Sinaloa faction halt in Culiacan, events file 2023-05; disputed): acts like source enforcement on the synthesis channels, ramping in May-Aug 2023 and held after; estimated, may be 0",
        prior=('uniform', 0.0, 0.5), role='fit', scale='linear')
    disruption_china_2023: float = param(
        0.1, '1', (0.0, 0.9),
        "share of China's fentanyl and precursor exports withheld from the Woodside summit (15 Nov 2023; bilateral working group from Jan 2024; events file): ramp Nov 2023 - Feb 2024, held after; estimated, may be 0",
        prior=('uniform', 0.0, 0.5), role='fit', scale='linear')
    background_synthetic_deaths: float = param(
        1186.0, 'deaths/yr', (0.0, 5000.0),
        'NCHS 2013: 3,105 T40.4 deaths minus 1,919 fentanyl-mention deaths (NVSR 67(9))',
        prior=('normal', 1186.0, 100.0), role='fit', scale='linear')
    pharma_fentanyl_deaths_2010: float = param(
        1800.0, 'deaths/yr', (0.0, 5000.0),
        'deaths from diverted pharmaceutical fentanyl, 2010 (NCHS 2010 T40.4 3,007 minus the background of other synthetics)',
        prior=('lognormal', 1800.0, 0.3), role='fit', scale='log')
    pharma_fentanyl_deaths_floor: float = param(
        700.0, 'deaths/yr', (0.0, 3000.0),
        'level the diverted-pharmaceutical deaths decline to',
        prior=('lognormal', 700.0, 0.5), role='fit', scale='log')
    nflis_pharma_share_2010: float = param(
        0.005, '1', (0.0, 0.05),
        'share of heroin+fentanyl NFLIS reports that are diverted pharmaceutical fentanyl in 2010 (falls with the pharmaceutical-fentanyl death path): NFLIS share 0.006 (2010), 0.005 (2011)',
        prior=('lognormal', 0.005, 0.5), role='fit', scale='log')
    nflis_report_lag: float = param(
        0.25, 'yr', (0.0, 1.0),
        'delay from the market to the NFLIS report year (observation model, not a flow): NFLIS-Drug counts drug reports by the year the item was submitted to a laboratory (analysed by 31 March of the next year), after seizure, evidence handling and batched submission; the items seized are product already in retail circulation.  The model share is read this long before 1 July.  Stated constant, not fitted: 3 months, the middle of weeks to months from seizure to submission (an assumption; no national figure is used).  MAP with 0 / 0.125 / 0.25 / 0.5 yr: NFLIS 2014 +27 / +22 / +11 / +4 %, 2018 -26 / -24 / -17 / -5.5 %, cost 101.1 / 91.3 / 83.5 / 69.2 (docs/validation.md section 1): the data would take a longer lag, which then also acts as a time shift for the early start of the modelled takeover',
        prior=('fixed',), role='fixed', scale='linear')
    pharma_fentanyl_decline_rate: float = param(
        0.5, '1/yr', (0.0, 5.0),
        'rate of decline of diverted-pharmaceutical fentanyl deaths from 2010',
        prior=('lognormal', 0.5, 0.7), role='fit', scale='log')

    # --- the fit's model error: one sd per public series (natural-log units) ---------------------
    # log(observed / model) of a public-series point is normal with variance sigma^2 + tau^2:
    # sigma its documented measurement error, tau what no structure of the model explains (DESIGN
    # section 3: a prototype's bands covered 80% of 2010-2024 only with such a term).  The priors
    # are informative (log sd 0.3): with log sd 0.7 the sampler escaped into a wide region where
    # heroin lingers (its share of supply ~0.5 in 2024, heroin deaths 2022 at 1.5-2.5x observed)
    # and the error sds absorb the misfit (heroin 0.42, NFLIS 0.37).  Fitted and
    # sampled; predictive draws of each fitted series carry it (`<variable>_predictive`).
    model_error_deaths_synthetic: float = param(
        0.08, '1', (0.002, 1.5),
        'model-error sd of synthetic-opioid deaths (T40.4, public series; stated prior: lognormal median 0.08, log sd 0.3, 90% within 0.05-0.13: the error of a model that tracks the series within about 10 %)',
        prior=('lognormal', 0.08, 0.3), role='fit', scale='log', error_of='deaths_synthetic')
    model_error_deaths_heroin: float = param(
        0.07, '1', (0.002, 1.5),
        'model-error sd of heroin-involved deaths (T40.1, public series; stated prior: lognormal median 0.07, log sd 0.3, 90% within 0.04-0.11: heroin deaths are the evidence of heroin retiring, which decides what a cut of fentanyl does; the fit follows them within about 20 %)',
        prior=('lognormal', 0.07, 0.3), role='fit', scale='log', error_of='deaths_heroin')
    model_error_deaths_fentanyl_all: float = param(
        0.1, '1', (0.002, 1.5),
        'model-error sd of fentanyl-mention deaths (NCHS 2011-2016, public series; stated prior: lognormal median 0.1, log sd 0.3, 90% within 0.06-0.16)',
        prior=('lognormal', 0.1, 0.3), role='fit', scale='log', error_of='deaths_fentanyl_all')
    model_error_nflis_share: float = param(
        0.15, '1', (0.002, 1.5),
        'model-error sd of the NFLIS fentanyl share (log scale, public series; stated prior: lognormal median 0.15, log sd 0.3, 90% within 0.09-0.25)',
        prior=('lognormal', 0.15, 0.3), role='fit', scale='log', error_of='nflis_share')
    model_error_seizures_product: float = param(
        0.25, '1', (0.002, 2.0),
        'model-error sd of CBP fentanyl seizures by fiscal year (gross weight, public series; seizures swing with single large busts; stated prior: lognormal median 0.25, log sd 0.3, 90% within 0.15-0.41)',
        prior=('lognormal', 0.25, 0.3), role='fit', scale='log', error_of='seizures_product')

    def __post_init__(self) -> None:
        self._take(validate(ParamsSection, "params", {n: getattr(self, n) for n in self.names()}))

    def _take(self, checked: Any) -> None:
        """Every field from a validated `ParamsSection` (floats, or float arrays over draws)."""
        for name in self.names():
            object.__setattr__(self, name, getattr(checked, name))

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def names(cls) -> list[str]:
        """Names of all parameters, in declaration order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def metadata(cls, name: str) -> Mapping[str, Any]:
        """Units, bounds, source, doc and scale of parameter `name`."""
        return _field_metadata(cls)[name]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ModelParameters:
        """Build from a mapping of overrides of the defaults (the `params` section, checked by
        `ParamsSection`: unknown keys, values that are no numbers or outside their bounds)."""
        params = object.__new__(cls)   # checked once here: __init__ would check it all again
        params._take(validate(ParamsSection, "params", values))
        return params

    def replace(self, **changes: Any) -> ModelParameters:
        """A copy with some fields changed (validated again)."""
        return self.from_mapping({**{n: getattr(self, n) for n in self.names()}, **changes})

    @property
    def n_draws(self) -> int:
        """Number of parameter draws (1 when every field is a scalar)."""
        sizes = [np.size(getattr(self, n)) for n in self.names()]
        return max(sizes)

    def as_arrays(self) -> dict[str, np.ndarray]:
        """Every field as a float array of shape (n_draws,)."""
        n = self.n_draws
        return {name: np.broadcast_to(np.asarray(getattr(self, name), dtype=float), (n,)).copy()
                for name in self.names()}

    def draw(self, i: int) -> ModelParameters:
        """The single-draw parameters of draw `i`."""
        return ModelParameters(**{k: float(v[i]) for k, v in self.as_arrays().items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain values (floats or lists) keyed by name, e.g. for YAML provenance."""
        return {name: (v.tolist() if isinstance(v, np.ndarray) else v)
                for name, v in ((n, getattr(self, n)) for n in self.names())}

    @classmethod
    def stack(cls, draws: list[ModelParameters]) -> ModelParameters:
        """Stack single-draw parameter sets into one batch over draws."""
        return cls(**{name: np.array([float(getattr(d, name)) for d in draws])
                      for name in cls.names()})


# --- the `params` section, declared by the fields above -----------------------------------------

def _allowed(meta: Mapping[str, Any]) -> str:
    lo, hi = meta["bounds"]
    return f"a number in [{lo:g}, {hi:g}] {meta['units']}, or a list of them (one per draw)"


def _has_bool(raw: Any) -> bool:
    if isinstance(raw, (list, tuple)):
        return any(_has_bool(v) for v in raw)
    return isinstance(raw, (bool, np.bool_)) or (isinstance(raw, np.ndarray) and raw.dtype == bool)


def parameter_value(name: str, raw: Any) -> float | np.ndarray:
    """`raw` as the value of parameter `name`: a float, or a 1-D float array over draws, each
    finite and inside the declared bounds; else the one-line InputError naming the value (and
    the draw) and the declared range and units."""
    meta = _FIELDS[name].metadata
    lo, hi = meta["bounds"]
    value = None
    if not _has_bool(raw):
        try:   # a number written as text is read as one: YAML 1.1 (PyYAML) reads 1e-09 as text
            value = np.asarray(raw, dtype=float)
        except (TypeError, ValueError):
            pass
    if value is None:
        why = " (booleans are not numbers)" if _has_bool(raw) else ""
        raise InputError(f"params.{name}: value {raw!r} is not a number{why}; allowed: "
                         f"{_allowed(meta)}")
    if value.ndim > 1:
        raise InputError(f"params.{name}: value of shape {value.shape} not allowed; allowed: "
                         f"{_allowed(meta)}")
    bad = ~np.isfinite(value) | (value < lo) | (value > hi)
    if np.any(bad):
        first = value.reshape(-1)[np.argmax(bad.reshape(-1))]
        where = "" if value.ndim == 0 else f" (draw {int(np.argmax(bad))})"
        raise InputError(f"params.{name}: value {first:g}{where} outside allowed range "
                         f"[{lo:g}, {hi:g}] {meta['units']}")
    return value if value.ndim else float(value)


class _ParamsChecks(Section):
    """Each value through `parameter_value`; draw arrays of one length (or length 1)."""

    @field_validator("*")
    @classmethod
    def _declared_range(cls, value: Any, info: ValidationInfo) -> float | np.ndarray:
        return parameter_value(str(info.field_name), value)

    @model_validator(mode="after")
    def _same_draws(self) -> _ParamsChecks:
        sizes = {np.size(v) for v in self.__dict__.values() if np.ndim(v) == 1 and np.size(v) != 1}
        if len(sizes) > 1:
            raise InputError(f"params: draw arrays have different lengths {sorted(sizes)}; "
                             f"allowed: one number of draws (or single values)")
        return self


_FIELDS = {f.name: f for f in fields(ModelParameters)}
# The `params` section of a config: one field per parameter, its default and what is allowed
# (bounds, units) from its declaration; a value is a number or a list over draws.
ParamsSection = create_model(
    "ParamsSection", __base__=_ParamsChecks,
    **{f.name: (Any, Field(f.default, validate_default=True, description=_allowed(f.metadata)))
       for f in _FIELDS.values()})


# --- priors, derived from the declarations ------------------------------------------------------

def names_with_role(*roles: str) -> list[str]:
    """Parameters whose role is one of `roles`, in declaration order."""
    return [f.name for f in fields(ModelParameters) if f.metadata["role"] in roles]


def model_errors() -> dict[str, str]:
    """Calibration output -> the parameter that is its public series' model-error sd."""
    return {f.metadata["error_of"]: f.name for f in fields(ModelParameters)
            if f.metadata.get("error_of")}


_DISTRIBUTIONS: dict[str, Any] = {}


def prior_distribution(name: str) -> Any:
    """The declared prior of parameter `name` as a scipy.stats distribution over its values
    (parameter units), truncated to the parameter's bounds where its support reaches past them;
    None for a fixed parameter.  lognormal(median, s) is exp(Normal(log median, s))."""
    if name in _DISTRIBUTIONS:
        return _DISTRIBUTIONS[name]
    from scipy import stats

    meta = ModelParameters.metadata(name)
    kind, *args = meta["prior"]
    lo, hi = meta["bounds"]
    if kind == "fixed":
        return None
    if kind == "uniform":
        a, b = args
        assert lo <= a < b <= hi, (name, args, meta["bounds"])
        dist = stats.Uniform(a=a, b=b)
    else:
        mu, sd = (np.log(args[0]), args[1]) if kind == "lognormal" else args
        dist = stats.Normal(mu=mu, sigma=sd)
        dist = stats.exp(dist) if kind == "lognormal" else dist
        support = dist.support()
        if lo > support[0] or hi < support[1]:
            dist = stats.truncate(dist, max(lo, float(support[0])), min(hi, float(support[1])))
    _DISTRIBUTIONS[name] = dist
    return dist


def to_z(name: str, value: Any) -> np.ndarray:
    """A value in the space fits and samplers move in: log(value) for scale 'log', else value."""
    value = np.asarray(value, dtype=float)
    return np.log(value) if ModelParameters.metadata(name)["scale"] == "log" else value


def from_z(name: str, z: Any) -> np.ndarray:
    """Inverse of `to_z` (parameter units)."""
    z = np.asarray(z, dtype=float)
    return np.exp(z) if ModelParameters.metadata(name)["scale"] == "log" else z


def log_prior_z(name: str, z: Any) -> np.ndarray:
    """Log density of the declared prior in the fitting space z = to_z(value): the distribution's
    log density at the value plus the log Jacobian |d value / dz| (z itself on the log scale)."""
    z = np.asarray(z, dtype=float)
    with np.errstate(all="ignore"):
        out = np.asarray(prior_distribution(name).logpdf(from_z(name, z)), dtype=float)
    if ModelParameters.metadata(name)["scale"] == "log":
        out = out + z
    return np.where(np.isnan(out), -np.inf, out)


def sample_prior_values(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n values (parameter units) of parameter `name` drawn from its declared prior."""
    return np.asarray(prior_distribution(name).sample(n, rng=rng), dtype=float).reshape(n)
