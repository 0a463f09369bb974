import sys, numpy as np
sys.path.insert(0, ".")
from tests.test_behaviour import run, POSTERIOR
from sim.model.levers import LeverSet
ex = np.load("/work/diag/ex.npy")
base = run(LeverSet.from_mapping({}))
h = base.deaths_heroin.sel(year=[2015, 2019, 2021, 2022, 2024])
s = base.deaths_synthetic.sel(year=[2015, 2019, 2021, 2022, 2024])
order = np.argsort(ex)[::-1]
for w in order[:8].tolist() + order[-4:].tolist():
    print(w, round(ex[w], 3), "heroin", np.round(h.isel(draw=w).values / 1e3, 1), "synth", np.round(s.isel(draw=w).values / 1e3, 1),
          "beta", round(float(base.parameter_value.sel(parameter="cost_sensitivity").isel(draw=w)), 2),
          "hse", round(float(base.parameter_value.sel(parameter="heroin_scale_elasticity").isel(draw=w)), 2),
          "eps", round(float(base.parameter_value.sel(parameter="price_elasticity").isel(draw=w)), 2))
