import sys, numpy as np
sys.path.insert(0, ".")
from scipy.stats import spearmanr
from tests.test_behaviour import run, REBOUND_WINDOW, REBOUND_START
from sim.model.levers import LeverSet
base = run(LeverSet.from_mapping({}), settings=REBOUND_WINDOW)
surge = {"start": REBOUND_START, "ramp": 1.0, "level": 3.0, "mode": "scale", "end": 2029.0}
ds = run(LeverSet.from_mapping({"interdiction_mail": surge, "interdiction_land": surge}), settings=REBOUND_WINDOW)
r = (ds.deaths_overdose / base.deaths_overdose).sel(year=slice(2020, 2040))
mx = r.max("year").values
print(np.round(np.sort(mx), 4))
rows = []
pv = base.parameter_value
for p in pv.parameter.values:
    v = pv.sel(parameter=p).values
    if np.ptp(v) == 0: continue
    rows.append((abs(spearmanr(v, mx).statistic), spearmanr(v, mx).statistic, str(p)))
for a, c, p in sorted(rows, reverse=True)[:10]:
    print(f"{p:40s} {c:+.2f}")
w = int(np.argmax(mx))
print("worst", w, np.round(r.isel(draw=w).sel(year=slice(2025, 2040)).values, 3))
hr_b = base.users_high_risk.sel(decimal_year=[2026, 2029, 2032, 2036], method="nearest").isel(draw=w).values
hr_s = ds.users_high_risk.sel(decimal_year=[2026, 2029, 2032, 2036], method="nearest").isel(draw=w).values
print("high risk base", np.round(hr_b/1e3), "surge", np.round(hr_s/1e3))
print("heroin share base", np.round(base.supply_share.sel(channel="heroin_land", year=[2026, 2029, 2032, 2036]).isel(draw=w).values, 3), "surge", np.round(ds.supply_share.sel(channel="heroin_land", year=[2026, 2029, 2032, 2036]).isel(draw=w).values, 3))
print("price base", np.round(base.price_index.sel(decimal_year=[2026, 2029, 2032, 2036], method="nearest").isel(draw=w).values, 3), "surge", np.round(ds.price_index.sel(decimal_year=[2026, 2029, 2032, 2036], method="nearest").isel(draw=w).values, 3))
