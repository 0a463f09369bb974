import sys, numpy as np
sys.path.insert(0, ".")
from scipy.stats import spearmanr
from tests.test_behaviour import run, POSTERIOR, CHANNEL_LEVER, REBOUND_WINDOW, REBOUND_START
from sim.model.levers import LeverSet
ch = sys.argv[1]; level = float(sys.argv[2])
base = run(LeverSet.from_mapping({}), settings=REBOUND_WINDOW)
cut = run(LeverSet.from_mapping({CHANNEL_LEVER[ch]: {"start": REBOUND_START, "ramp": 1.0, "level": level}}), settings=REBOUND_WINDOW)
r = (cut.deaths_overdose / base.deaths_overdose).sel(year=slice(2020, 2040))
mx = r.max("year").values
print(np.round(np.sort(mx), 4))
bad = np.where(mx > 1.005)[0]
for w in bad[:4]:
    print(w, np.round(r.isel(draw=w).sel(year=slice(2026, 2040)).values, 3))
    print("  heroin share base", np.round(base.supply_share.sel(channel="heroin_land", year=[2026, 2030, 2035, 2040]).isel(draw=w).values, 3),
          "cut", np.round(cut.supply_share.sel(channel="heroin_land", year=[2026, 2030, 2035, 2040]).isel(draw=w).values, 3))
    print("  price base", np.round(base.price_index.sel(decimal_year=[2026, 2030, 2035, 2040], method="nearest").isel(draw=w).values, 3),
          "cut", np.round(cut.price_index.sel(decimal_year=[2026, 2030, 2035, 2040], method="nearest").isel(draw=w).values, 3))
    print("  users base", np.round(base.users_untreated.sel(decimal_year=[2026, 2030, 2035, 2040], method="nearest").isel(draw=w).values/1e6, 3),
          "cut", np.round(cut.users_untreated.sel(decimal_year=[2026, 2030, 2035, 2040], method="nearest").isel(draw=w).values/1e6, 3),
          "hr base", np.round(base.users_high_risk.sel(decimal_year=[2026, 2030, 2035, 2040], method="nearest").isel(draw=w).values/1e6, 3),
          "cut", np.round(cut.users_high_risk.sel(decimal_year=[2026, 2030, 2035, 2040], method="nearest").isel(draw=w).values/1e6, 3))
