"""Which sampled parameters make a cut overshoot? (diagnostic, not part of the project)"""
import sys, numpy as np
sys.path.insert(0, ".")
from scipy.stats import spearmanr
from tests.test_behaviour import run, consuming_users, POSTERIOR, CHANNEL_LEVER, CUT_START
from sim.model.levers import LeverSet
channel = sys.argv[1] if len(sys.argv) > 1 else "china_finished_mail"
base = run(LeverSet.from_mapping({}))
cut = run(LeverSet.from_mapping({CHANNEL_LEVER[channel]: {"start": CUT_START, "ramp": 0.5, "level": 0.99}}))
pu_c = cut.arrivals.sum("channel") / consuming_users(cut)
pu_b = base.arrivals.sum("channel") / consuming_users(base)
ex = (pu_c / pu_b).sel(year=slice(2028, 2035)).max("year").values
d_c = cut.deaths_total if "deaths_total" in cut else None
print("excess per draw", np.round(np.sort(ex), 3))
pv = base.parameter_value
rows = []
for p in pv.parameter.values:
    v = pv.sel(parameter=p).values
    if np.ptp(v) == 0: continue
    r = spearmanr(v, ex).statistic
    rows.append((abs(r), r, str(p)))
for a, r, p in sorted(rows, reverse=True)[:15]:
    print(f"{p:40s} {r:+.2f}")
worst = int(np.argmax(ex))
print("worst draw", worst, ex[worst])
np.save("/work/diag/ex.npy", ex)
