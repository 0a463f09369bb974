"""The rebound table of docs/validation.md ("No rebound from a supply measure", issue 22 item 8):
for permanent cuts of each channel at its source (0.3, 0.6, 0.99 from 2026) and a temporary
interdiction surge, the share of posterior draws in which some year 2020-2040 has opioid overdose
deaths more than 0.5 % above the same draw's baseline, the largest such excess, and the median
change in deaths 2026-2035.

    python scripts/rebound.py [--draws 200] [--seed 3]

Prints a Markdown table.  The scenarios and the criterion are sim/results/rebound.py's, which
tests/test_behaviour.py runs on 40 draws; here on more draws of the committed posterior.
"""

from __future__ import annotations

import argparse
import time

from sim.api import load_posterior
from sim.model.levers import LeverSet
from sim.model.state import CHANNELS
from sim.results.rebound import (REBOUND_EXCESS, REBOUND_LEVELS, REBOUND_WINDOW, interdiction_surge,
                                 peak_ratio, permanent_cut, rebounding_draws)
from sim.results.run import result_dataset

HEADLINE = slice(2026, 2035)   # the headline window: the median change in deaths is over it


def run(params, levers: LeverSet):
    """The result dataset of `levers` over the draws `params`, 2010-2040."""
    return result_dataset(params, levers, REBOUND_WINDOW)[0]


def row(name: str, ds, base) -> str:
    """One Markdown row: share of draws rebounding, largest excess, median headline change."""
    change = (ds.deaths_overdose.sel(year=HEADLINE).sum("year")
              / base.deaths_overdose.sel(year=HEADLINE).sum("year") - 1.0)
    return (f"| {name} | {rebounding_draws(ds, base):.1%} | "
            f"{float(peak_ratio(ds, base).max()) - 1.0:+.2%} | {float(change.median()):+.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200, help="posterior draws (default 200)")
    parser.add_argument("--seed", type=int, default=3, help="draw selection seed (default 3)")
    args = parser.parse_args()
    started = time.perf_counter()
    params = load_posterior(args.draws, seed=args.seed)
    base = run(params, LeverSet.from_mapping({}))
    levers = sorted({c.enforcement_lever for c in CHANNELS})
    print(f"{args.draws} posterior draws (seed {args.seed}), paired baseline, years 2020-2040\n")
    print(f"| measure | draws > +{REBOUND_EXCESS * 100:g} % in some year 2020-2040 | largest excess | "
          "median change in deaths 2026-2035 |")
    print("| --- | --: | --: | --: |")
    for lever in levers:
        for level in REBOUND_LEVELS:
            label = f"{lever} {level}" + (" (exception)" if lever == "enforcement_heroin" else "")
            print(row(label, run(params, permanent_cut(lever, level)), base))
    print(row("interdiction x3 2026-2029 (temporary)", run(params, interdiction_surge()), base))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
