import sys, numpy as np
sys.path.insert(0, ".")
from tests.test_behaviour import run
from sim.model.levers import LeverSet
from sim.engine.solver import SolverSettings
import csv
obs = {}
for row in csv.reader(l for l in open("sim/data/us_series_2010_2024.csv") if not l.startswith("#")):
    if row[0] in ("synthetic_deaths", "heroin_deaths", "fentanyl_share"):
        obs[(row[0], int(row[1]))] = float(row[2])
base = run(LeverSet.from_mapping({}), settings=SolverSettings(end_year=2025, output_step=0.25))
for name, var in [("synthetic_deaths", "deaths_synthetic"), ("heroin_deaths", "deaths_heroin")]:
    print(name, " ".join(f"{y}:{np.median(base[var].sel(year=y).values)/obs[(name,y)]:.2f}" for y in range(2010, 2025) if (name, y) in obs))
print("nflis", " ".join(f"{y}:{np.median(base.nflis_share.sel(decimal_year=y+0.5, method='nearest').values)/obs[('fentanyl_share',y)]:.2f}" for y in range(2010, 2021) if ("fentanyl_share", y) in obs))
