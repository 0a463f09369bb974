import sys, numpy as np
sys.path.insert(0, ".")
from scipy.stats import spearmanr
from tests.test_behaviour import run, REBOUND_WINDOW
from sim.model.levers import LeverSet
base = run(LeverSet.from_mapping({}), settings=REBOUND_WINDOW)
h22 = base.deaths_heroin.sel(year=2022).values
hs = base.supply_share.sel(channel="heroin_land")
print("heroin deaths 2022 / 5871:", np.round(np.sort(h22 / 5871), 2))
print("heroin deaths 2020 / 13165:", np.round(np.sort(base.deaths_heroin.sel(year=2020).values / 13165), 2))
print("heroin share 2024:", np.round(np.sort(hs.sel(year=2024).values), 3))
print("heroin share 2027:", np.round(np.sort(hs.sel(year=2027).values), 3))
print("nflis 2020 / .562:", np.round(np.sort(base.nflis_share.sel(decimal_year=2020.5, method="nearest").values / .562), 2))
pv = base.parameter_value
for n in ["heroin_scale_elasticity", "model_error_deaths_heroin", "model_error_nflis_share"]:
    v = pv.sel(parameter=n).values
    print(n, np.round(np.quantile(v, [0.05, .5, .95]), 3), "corr w/ share2027", round(spearmanr(v, hs.sel(year=2027).values).statistic, 2))
v = pv.sel(parameter="heroin_scale_elasticity").values
print("hse vs heroin2022 ratio corr", round(spearmanr(v, h22).statistic, 2))
o = np.argsort(h22)
print("hse of best-heroin draws", np.round(v[o[:6]], 2), "worst", np.round(v[o[-6:]], 2))
for n in ["cost_sensitivity", "nest_dissimilarity", "fentanyl_nest_preference", "retail_markup", "heroin_cost_change", "fentanyl_cost_ratio"]:
    x = pv.sel(parameter=n).values
    print(n, "corr with heroin 2022", round(spearmanr(x, h22).statistic, 2), "q", np.round(np.quantile(x, [0.05, .5, .95]), 3))
