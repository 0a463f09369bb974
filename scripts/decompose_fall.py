"""How much of the 2024 fall in synthetic-opioid deaths each mechanism carries, over posterior draws.

    python scripts/decompose_fall.py [--draws 200] [--seed 0]
    python scripts/decompose_fall.py --map results/calibration/<run>/calibrated.yaml   # one set

For every draw of the posterior ensemble of the calibrated baseline (the substitution and other
uncertain constants drawn from their priors, as in every ensemble) the model runs to 2024 as it is
and once with each mechanism frozen at its 1 Jan 2023 value, with the same draws:

- retail potency: `retail_potency_2024` = 1 (the DEA path is 1 until October 2023);
- supply disruptions: `disruption_mexico_2023` = `disruption_china_2023` = 0 (they start in May and
  November 2023);
- naloxone: the kit lever held at its 1 Jan 2023 history value from then on (no growth, no
  over-the-counter sales);
- depletion (the risk structure): the death-rate multiplier of the risk mix, risk-weighted exposed
  persons / (untreated + r in MOUD), held at its 2023 mean for the fentanyl-involved deaths of 2024
  (the mix is a state, not an input: it is frozen in the accounting, not in the simulation);
- the persistent post-2020 risk shift is flat after 2022: frozen at 2023 it changes nothing.

A mechanism's share of the fall is (fall - fall without it) / fall, with fall = synthetic-opioid
deaths 2023 - 2024 of the same draw; shares need not add to one (interactions and the rest of the
dynamics: the COVID pulse's decay, initiation, the market).  Then each mechanism's prior is moved
lower and higher (MOVES below) and the shares are re-weighted by the ratio of the moved to the
declared prior density (importance weights over the same draws; the effective number of draws is
printed): a share that moves with its prior is not fixed by the data.  Prints Markdown.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from sim.calibrate.ensemble import ensemble_of
from sim.engine.solver import SolverSettings, integrate
from sim.model.levers import LEVER_SPECS, LeverSet
from sim.model.parameters import ModelParameters
from sim.results.dataset import annual_totals
from sim.api import load_params

SETTINGS = SolverSettings(end_year=2024, output_step=1.0 / 12)
FREEZE = 2023.0   # yr: each mechanism held at its value on this date
# mechanism -> (parameter whose prior is moved, declared prior, lower prior, higher prior)
MOVES = {
    "retail potency": ("retail_potency_2024", ("uniform", 0.55, 0.75), ("uniform", 0.75, 1.0)),
    "naloxone": ("naloxone_coefficient", ("lognormal", 0.000343 / 2, 0.5),
                 ("lognormal", 0.000343 * 2, 0.5)),
    "supply disruptions": ("disruption_mexico_2023", ("uniform", 0.0, 0.1), ("uniform", 0.1, 0.5)),
    "depletion (risk structure)": ("high_risk_relative_risk", ("lognormal", 2.0, 0.5),
                                   ("lognormal", 8.0, 0.5)),
}


def density(prior: tuple, x: np.ndarray) -> np.ndarray:
    """Density of a declared prior ('uniform', lo, hi) | ('lognormal', median, sd of log) |
    ('normal', mean, sd) at x."""
    kind, a, b = prior
    if kind == "uniform":
        return stats.uniform(a, b - a).pdf(x)
    if kind == "lognormal":
        return stats.lognorm(s=b, scale=a).pdf(x)
    return stats.norm(a, b).pdf(x)


def synthetic(params: ModelParameters, levers: LeverSet):
    """Calendar-year synthetic-opioid and fentanyl-involved deaths (draw, year) and trajectory."""
    traj = integrate(params, levers, SETTINGS)
    annual = annual_totals(traj, SETTINGS)
    return annual["deaths_synthetic"], annual["deaths_fentanyl"], traj


def risk_mix(traj, params: ModelParameters, year: int) -> np.ndarray:
    """Mean over `year` of the risk mix's death-rate multiplier (draw,)."""
    times = year + np.arange(12) / 12.0   # the stored monthly output times
    p = params.as_arrays()
    untreated, high = traj.stock_at("untreated", times), traj.stock_at("high_risk", times)
    treated = traj.stock_at("in_treatment", times)
    r, rr = p["treatment_overdose_ratio"][:, None], p["high_risk_relative_risk"][:, None]
    exposed = untreated - high + rr * high + r * treated
    return (exposed / (untreated + r * treated)).mean(axis=1)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs=(0.05, 0.5, 0.95)) -> list:
    order = np.argsort(values)
    cum = np.cumsum(weights[order]) / weights.sum()
    return [float(values[order][np.searchsorted(cum, q)]) for q in qs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--map", metavar="PARAMS_YAML", default=None,
                        help="decompose one parameter set (e.g. a MAP fitted with a moved prior) "
                             "instead of the posterior ensemble")
    args = parser.parse_args()
    if args.map:
        import yaml
        params = ModelParameters.from_mapping(yaml.safe_load(open(args.map)))
    else:
        params = ensemble_of(load_params("calibrated"),
                             {"name": "posterior", "size": args.draws, "seed": args.seed}).params()
    none = LeverSet.from_mapping({})
    years = {int(y): i for i, y in enumerate(SETTINGS.years)}
    a, b = years[2023], years[2024]
    deaths, fentanyl, traj = synthetic(params, none)
    fall = deaths[:, a] - deaths[:, b]
    change = deaths[:, b] / deaths[:, a] - 1.0
    kits_2023 = LeverSet.from_mapping({})["naloxone_kits"].history_at(FREEZE)
    frozen = {
        "retail potency": (params.replace(retail_potency_2024=1.0), none),
        "supply disruptions": (params.replace(disruption_mexico_2023=0.0,
                                              disruption_china_2023=0.0), none),
        "naloxone": (params, LeverSet.from_mapping({"naloxone_kits": {
            "start": FREEZE, "ramp": 1.0 / 365, "level": kits_2023, "mode": "set"}})),
    }
    shares = {}
    for name, (p, levers) in frozen.items():
        d, _, _ = synthetic(p, levers)
        shares[name] = (fall - (d[:, a] - d[:, b])) / fall
    mix = risk_mix(traj, params, 2023) / risk_mix(traj, params, 2024)
    deaths_frozen_mix = deaths[:, b] - fentanyl[:, b] + fentanyl[:, b] * mix
    shares["depletion (risk structure)"] = (fall - (deaths[:, a] - deaths_frozen_mix)) / fall
    shares["persistent risk shift"] = np.zeros_like(fall)

    n = fall.size
    lo, med, hi = np.percentile(change, [5, 50, 95])
    print(f"{args.map or f'{n} posterior draws (seed {args.seed})'}; modelled 2023->2024 change in synthetic-opioid "
          f"deaths {100 * med:+.1f}% [{100 * lo:+.1f}, {100 * hi:+.1f}] (observed -35.6%); "
          f"draws with a fall of at least 25%: {int((change <= -0.25).sum())} of {n}\n")
    print("| mechanism | share of the fall, median [5-95%] |")
    print("| --- | --- |")
    for name, s in shares.items():
        q = np.percentile(s, [5, 50, 95])
        print(f"| {name} | {100 * q[1]:.0f}% [{100 * q[0]:.0f}, {100 * q[2]:.0f}] |")
    rest = 1.0 - sum(shares.values())
    q = np.percentile(rest, [5, 50, 95])
    print(f"| the rest (interactions, COVID decay, initiation, market) | {100 * q[1]:.0f}% "
          f"[{100 * q[0]:.0f}, {100 * q[2]:.0f}] |")

    if args.map:
        return
    print("\nShares (median [5-95%]) when one mechanism's prior is moved (importance weights over "
          "the same draws; n_eff = effective draws):\n")
    header = "| prior moved | n_eff | " + " | ".join(shares) + " |"
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    declared = {name: ModelParameters.metadata(par)["prior"] for name, (par, _, _) in MOVES.items()}
    values = params.as_arrays()
    for name, (par, low, high) in MOVES.items():
        base = density(declared[name], values[par])
        for label, prior in (("lower", low), ("higher", high)):
            w = np.where(base > 0, density(prior, values[par]) / np.where(base > 0, base, 1), 0.0)
            if par == "disruption_mexico_2023":   # both disruptions move together
                other = values["disruption_china_2023"]
                w = w * density(prior, other) / np.maximum(density(declared[name], other), 1e-300)
            n_eff = w.sum() ** 2 / max((w ** 2).sum(), 1e-300)
            cells = []
            for s in shares.values():
                if n_eff < 5:
                    cells.append("-")
                    continue
                q = weighted_quantiles(s, w)
                cells.append(f"{100 * q[1]:.0f}% [{100 * q[0]:.0f}, {100 * q[2]:.0f}]")
            print(f"| {name} {label}: {par} ~ {prior[0]}({prior[1]:g}, {prior[2]:g}) | "
                  f"{n_eff:.0f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
