import sys, numpy as np
sys.path.insert(0, ".")
from tests.test_behaviour import run
from tests.conftest import calibrated_params
from sim.model.levers import LeverSet
p = calibrated_params()
ds = run(LeverSet.from_mapping({}), params=p)
for y in [2015, 2018, 2020, 2022, 2024, 2026, 2028, 2030, 2035]:
    print(y, "price", np.round(float(ds.price_index.sel(decimal_year=y, method="nearest").squeeze()), 3),
          "costidx", np.round(float(ds.cost_price_index.sel(decimal_year=y, method="nearest").squeeze()), 3) if "cost_price_index" in ds else "",
          "heroin share", np.round(ds.supply_share.sel(year=y, channel="heroin_land").values.ravel(), 4),
          "arr", np.round(ds.arrivals.sum("channel").sel(year=y).values.ravel()))
for n in ["heroin_scale_elasticity", "cost_sensitivity", "price_elasticity"]:
    print(n, float(ds.parameter_value.sel(parameter=n).squeeze()))
