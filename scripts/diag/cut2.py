import sys, numpy as np
sys.path.insert(0, ".")
from tests.test_behaviour import run, consuming_users, POSTERIOR, CHANNEL_LEVER, CUT_START
from sim.model.levers import LeverSet
channel = sys.argv[1]; W = int(sys.argv[2])
base = run(LeverSet.from_mapping({}))
cut = run(LeverSet.from_mapping({CHANNEL_LEVER[channel]: {"start": CUT_START, "ramp": 0.5, "level": 0.99}}))
pu_c = cut.arrivals.sum("channel") / consuming_users(cut)
pu_b = base.arrivals.sum("channel") / consuming_users(base)
ex = (pu_c / pu_b).sel(year=slice(2028, 2035)).max("year").values
print(list(base.data_vars)[:80])
pi_ratio = (cut.price_index / base.price_index).sel(decimal_year=slice(2028, 2035)).min("time").values
from scipy.stats import spearmanr
print("corr excess vs min price ratio", spearmanr(ex, pi_ratio).statistic)
w = W
for y in [2021, 2022, 2023, 2024, 2025, 2027, 2029, 2031, 2035]:
    print(y, "share base", np.round(base.supply_share.sel(year=y, draw=w).values, 3), "cut", np.round(cut.supply_share.sel(year=y, draw=w).values, 3))
    print("   price base/cut", float(base.price_index.sel(decimal_year=y, method="nearest").isel(draw=w)), float(cut.price_index.sel(decimal_year=y, method="nearest").isel(draw=w)),
          "users", float(consuming_users(base).sel(year=y).isel(draw=w)), float(consuming_users(cut).sel(year=y).isel(draw=w)),
          "arr", float(base.arrivals.sum("channel").sel(year=y).isel(draw=w)), float(cut.arrivals.sum("channel").sel(year=y).isel(draw=w)))
    print("   demand", float(base.demand.sel(decimal_year=y+0.5, method="nearest").isel(draw=w)), float(cut.demand.sel(decimal_year=y+0.5, method="nearest").isel(draw=w)))
