"""The rebound table of docs/validation.md ("No rebound from a supply measure", issue 22 item 8):
for permanent cuts of each channel at its source (0.3, 0.6, 0.99 from 2026) and a temporary
interdiction surge, the share of posterior draws in which some year 2020-2040 has opioid overdose
deaths more than 0.5 % above the same draw's baseline, the largest such excess, and the median
change in deaths 2026-2035.

    python scripts/rebound.py [--draws 200] [--seed 3]

Prints a Markdown table.  Same scenarios and criterion as tests/test_behaviour.py (which runs
them on 40 draws); here on more draws of the committed posterior.
"""

from __future__ import annotations

import argparse
import time


from sim.api import load_posterior
from sim.engine.solver import SolverSettings, integrate
from sim.model.levers import LeverSet
from sim.model.state import CHANNELS
from sim.results.dataset import to_dataset

WINDOW = SolverSettings(end_year=2040, output_step=0.5)
START = 2026.0          # yr: the scenarios' default start
EXCESS = 0.005          # a year's deaths more than 0.5 % above the paired baseline's
HEADLINE = slice(2026, 2035)
LEVELS = (0.3, 0.6, 0.99)


def deaths(params, levers: LeverSet):
    """Opioid overdose deaths (draw, year) 2010-2040 of `levers` over the draws `params`."""
    return to_dataset(integrate(params, levers, WINDOW), params, levers, WINDOW).deaths_overdose


def row(name: str, ds, base) -> str:
    """One Markdown row: share of draws rebounding, largest excess, median headline change."""
    ratio = (ds / base).sel(year=slice(2020, 2040)).max("year")
    change = ds.sel(year=HEADLINE).sum("year") / base.sel(year=HEADLINE).sum("year") - 1.0
    return (f"| {name} | {float((ratio > 1.0 + EXCESS).mean()):.1%} | "
            f"{float(ratio.max()) - 1.0:+.2%} | {float(change.median()):+.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200, help="posterior draws (default 200)")
    parser.add_argument("--seed", type=int, default=3, help="draw selection seed (default 3)")
    args = parser.parse_args()
    started = time.perf_counter()
    params = load_posterior(args.draws, seed=args.seed)
    base = deaths(params, LeverSet.from_mapping({}))
    levers = sorted({c.enforcement_lever for c in CHANNELS})
    print(f"{args.draws} posterior draws (seed {args.seed}), paired baseline, years 2020-2040\n")
    print("| measure | draws > +0.5 % in some year 2020-2040 | largest excess | "
          "median change in deaths 2026-2035 |")
    print("| --- | --: | --: | --: |")
    for lever in levers:
        for level in LEVELS:
            cut = {lever: {"start": START, "ramp": 1.0, "level": level}}
            label = f"{lever} {level}" + (" (exception)" if lever == "enforcement_heroin" else "")
            print(row(label, deaths(params, LeverSet.from_mapping(cut)), base))
    surge = {"start": START, "ramp": 1.0, "level": 3.0, "mode": "scale", "end": 2029.0}
    print(row("interdiction x3 2026-2029 (temporary)",
              deaths(params, LeverSet.from_mapping({"interdiction_mail": surge,
                                                    "interdiction_land": surge})), base))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
