"""Numbers for docs/validation.md: peer concordance, how the supply-side headline depends on the
substitution constants, and naloxone's cost-effectiveness in dollars, over the posterior ensemble
of the calibrated baseline.

    python scripts/validation.py [--draws 200]

Prints Markdown tables.  Same model and scenarios as `fentsim -m experiment=peer_concordance`
(the command line); this script composes the same configs through the Python API (sim.load_scenario) to add the
per-draw dependence on the substitution constants (Spearman rank correlation).
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import spearmanr

import sim
from sim.calibrate.ensemble import ensemble_of
from sim.engine.solver import SolverSettings, integrate
from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters
from sim.results.dataset import to_dataset

WINDOW = (2022, 2032)
PEERS = {  # scenario: (SOURCE, Lim et al. 2022; Homer & Wakeland 2021), relative change 2022-2032
    "peer_naloxone_120": ("-2.7%", "-"),
    "peer_naloxone_150": ("-6.4%", "lay naloxone 4% -> 20%: -12%"),
    "peer_test_strips": ("-11.4%", "-"),
    "peer_moud_120": ("-0.4%", "treatment 45% -> 65%: -3%"),
    "peer_package": ("-21.8%", "-"),
    "china_crackdown": ("-", "supply cuts: about -1% each"),
    "china_precursor_cut": ("-", "supply cuts: about -1% each"),
    "interdiction_surge": ("-", "supply cuts: about -1% each"),
}


def cumulative_deaths(params: ModelParameters, lever_set: LeverSet,
                      settings: SolverSettings) -> np.ndarray:
    """Opioid overdose deaths of each draw summed over WINDOW (deaths)."""
    ds = to_dataset(integrate(params, lever_set, settings), params, lever_set, settings)
    return ds.deaths_overdose.sel(year=slice(*WINDOW)).sum("year").values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args()
    base = sim.load_params("calibrated")
    params = ensemble_of(base, {"name": "posterior", "size": args.draws, "seed": 0}).params()
    settings = SolverSettings(end_year=WINDOW[1], output_step=1.0)
    baseline = cumulative_deaths(params, LeverSet.from_mapping({}), settings)
    print(f"Cumulative opioid overdose deaths {WINDOW[0]}-{WINDOW[1]}, baseline: median "
          f"{np.median(baseline):,.0f} [{np.quantile(baseline, 0.05):,.0f}-"
          f"{np.quantile(baseline, 0.95):,.0f}] ({args.draws} posterior draws)\n")
    print("| intervention (from 2022) | fentsim: relative change, median [90% interval] | "
          "SOURCE (Lim et al. 2022) | Homer and Wakeland 2021 |")
    print("|---|---|---|---|")
    changes = {}
    for name, (source, homer) in PEERS.items():
        rel = cumulative_deaths(params, sim.load_scenario(name).levers(), settings) / baseline - 1.0
        changes[name] = rel
        lo, mid, hi = np.quantile(rel, [0.05, 0.5, 0.95])
        print(f"| {name} | {100 * mid:+.1f}% [{100 * lo:+.1f}%, {100 * hi:+.1f}%] | {source} | {homer} |")
    print("\nDependence of the supply-side results on the substitution constants (Spearman rank "
          "correlation over the draws; relative change of cumulative deaths):\n")
    names = [n for n in ModelParameters.names() if ModelParameters.metadata(n).get("role") == "subst"]
    values = params.as_arrays()
    print("| constant | " + " | ".join(["china_crackdown", "china_precursor_cut", "interdiction_surge"]) + " |")
    print("|---|---|---|---|")
    for n in names:
        cells = [f"{spearmanr(values[n], changes[s]).statistic:+.2f}"
                 for s in ("china_crackdown", "china_precursor_cut", "interdiction_surge")]
        print(f"| {n} | " + " | ".join(cells) + " |")
    naloxone_in_dollars(min(args.draws, 50))
    what_decides_the_dollars(min(args.draws, 100))


def naloxone_in_dollars(draws: int) -> None:
    """Kits and dollars per death averted by naloxone funding alone (the `funding` route of
    `fentsim`: harm_reduction_funding_up with its whole amount on kits), 2020-2030, against
    Coffin and Sullivan (2013): one death averted per 227 kits distributed."""
    window = slice(2020, 2030)
    solver = {"end_year": 2030}
    base = sim.run(ensemble=draws, solver=solver).deaths_overdose.sel(year=window).sum("year")
    print(f"\nNaloxone funding alone from 2020 (kits at $20-75, sampled), deaths averted 2020-2030, "
          f"{draws} posterior draws, median [90% interval]:\n")
    print("| extra US$/yr | deaths averted | kits per death averted | US$ per death averted | "
          "Coffin and Sullivan 2013 |")
    print("|---|---|---|---|---|")
    for amount in (5e6, 2.5e7, 1e8):
        ds = sim.run("harm_reduction_funding_up", ensemble=draws, solver=solver,
                     overrides={"funding.total_usd_per_year": amount,
                                "funding.split": {"naloxone_kits": 1.0, "test_strips": 0.0}})
        averted = (base - ds.deaths_overdose.sel(year=window).sum("year")).values
        spent = float(ds.funding_spending.sel(year=window).sum())
        kits = spent / ds.funding_cost_per_unit.sel(lever="naloxone_kits").values
        cells = []
        for values, fmt in ((averted, ",.0f"), (kits / averted, ",.0f"), (spent / averted, ",.0f")):
            lo, mid, hi = np.quantile(values, [0.05, 0.5, 0.95])
            cells.append(f"{mid:{fmt}} [{lo:{fmt}}-{hi:{fmt}}]")
        print(f"| {amount / 1e6:g}M | " + " | ".join(cells) + " | 227 kits per death averted |")


def what_decides_the_dollars(draws: int) -> None:
    """Deaths averted per $1M at $100M/yr (2020-2030) of three programmes in dollars, and the
    uncertain inputs their per-draw values depend on most (Spearman rank correlation over draws:
    parameters of the posterior and priors, and the sampled unit costs)."""
    window = slice(2020, 2030)
    solver = {"end_year": 2030}
    base = sim.run(ensemble=draws, solver=solver).deaths_overdose.sel(year=window).sum("year")
    names = [n for n in ModelParameters.names()
             if ModelParameters.metadata(n).get("role") in ("fit", "subst", "unc")]
    print(f"\nWhat decides the dollars answer: deaths averted 2020-2030 per $1M at $100M/yr "
          f"({draws} posterior draws) and the six inputs it depends on most (Spearman):\n")
    print("| scenario | deaths averted per $1M, median [90%] | strongest dependences |")
    print("|---|---|---|")
    for scenario in ("harm_reduction_funding_up", "treatment_funding_up", "supply_side_funding"):
        ds = sim.run(scenario, ensemble=draws, solver=solver)
        averted = (base - ds.deaths_overdose.sel(year=window).sum("year")).values
        per_million = averted / (float(ds.funding_spending.sel(year=window).sum()) / 1e6)
        inputs = {n: ds.parameter_value.sel(parameter=n).values for n in names}
        for lever in ds.lever.values:
            cost = ds.funding_cost_per_unit.sel(lever=lever).values
            if np.isfinite(cost).all():
                inputs[f"unit cost of {lever}"] = cost
        rho = {k: spearmanr(v, per_million).statistic for k, v in inputs.items() if np.ptp(v) > 0}
        top = sorted(rho.items(), key=lambda kv: -abs(kv[1]))[:6]
        lo, mid, hi = np.quantile(per_million, [0.05, 0.5, 0.95])
        print(f"| {scenario} | {mid:.3g} [{lo:.3g}-{hi:.3g}] | "
              + ", ".join(f"{k} {v:+.2f}" for k, v in top) + " |")


if __name__ == "__main__":
    main()
