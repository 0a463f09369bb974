import sys, numpy as np
sys.path.insert(0, ".")
from scipy.stats import spearmanr
from tests.test_behaviour import run, consuming_users, CHANNEL_LEVER, CUT_START
from sim.model.levers import LeverSet
ch = sys.argv[1]
base = run(LeverSet.from_mapping({}))
cut = run(LeverSet.from_mapping({CHANNEL_LEVER[ch]: {"start": CUT_START, "ramp": 0.5, "level": 0.99}}))
r = (cut.deaths_overdose / base.deaths_overdose).sel(year=slice(2020, 2035))
mx = r.max("year").values
print(np.round(np.sort(mx)[-8:], 4))
w = int(np.argmax(mx))
print("worst", w, np.round(r.isel(draw=w).values, 3))
yrs = [2022, 2024, 2026, 2028, 2031, 2035]
for name, da in [("heroin share", lambda d: d.supply_share.sel(channel="heroin_land", year=yrs)),
                 ("users_untreated M", lambda d: d.users_untreated.sel(decimal_year=yrs, method="nearest") / 1e6),
                 ("high risk k", lambda d: d.users_high_risk.sel(decimal_year=yrs, method="nearest") / 1e3),
                 ("price", lambda d: d.price_index.sel(decimal_year=yrs, method="nearest")),
                 ("fent share", lambda d: d.fentanyl_share.sel(decimal_year=yrs, method="nearest")),
                 ("arrivals", lambda d: d.arrivals.sum("channel").sel(year=yrs) / 1e3)]:
    print(f"{name:18s} base", np.round(da(base).isel(draw=w).values, 3), "cut", np.round(da(cut).isel(draw=w).values, 3))
