import sys, numpy as np, yaml
sys.path.insert(0, ".")
from sim.calibrate.fit import build_problem, posterior_problem, calibration_options, read_draws, map_fit_setup
from sim.calibrate.targets import load_targets
from sim.model.parameters import ModelParameters
from sim.model.levers import LeverSet
from sim.engine.solver import SolverSettings
from hydra import compose, initialize_config_dir
with initialize_config_dir(config_dir="/work/wt-post/configs", version_base=None):
    cfg = compose(config_name="calibrate")
from omegaconf import OmegaConf
cfg = OmegaConf.to_container(cfg, resolve=True)
opts = calibration_options(cfg["calibration"])
base = ModelParameters.from_mapping(yaml.safe_load(open("configs/params/calibrated.yaml")))
settings = SolverSettings.from_mapping(cfg.get("solver") or {})
targets = load_targets(cfg["targets"], settings.end_year)
b2, fo = map_fit_setup(base, opts)
problem = build_problem(b2, LeverSet.from_mapping({}), settings, targets, fo, opts["rtol"])
wider = posterior_problem(problem, base, opts)
names, draws = read_draws("sim/data/posterior_calibrated.csv")
idx = [names.index(n) for n in wider.names]
z = np.array([[wider.free[j].to_z(draws[i, idx[j]]) for j in range(len(idx))] for i in range(0, len(draws), 10)])
lp = wider.log_likelihood(z) + wider.log_prior(z)
zmap = np.array([[f.to_z(getattr(base, f.name)) for f in wider.free]])
# MAP with model errors at the posterior's median
med = np.median(z, axis=0)
zm2 = zmap.copy()
for j, f in enumerate(wider.free):
    if f.name.startswith("model_error"): zm2[0, j] = med[j]
for label, zz in [("MAP (held errors)", zmap), ("MAP, errors at posterior median", zm2)]:
    print(label, "loglik", float(wider.log_likelihood(zz)[0]), "logprior", float(wider.log_prior(zz)[0]))
print("posterior draws loglik q", np.round(np.quantile(wider.log_likelihood(z), [0.05, .5, .95]), 1), "logprior q", np.round(np.quantile(wider.log_prior(z), [0.05, .5, .95]), 1), "lp max", lp.max())
