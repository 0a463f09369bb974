"""The committed posteriors: converged by the thresholds their headers state (checked again from
the draws with ArviZ), prior width kept where no data inform, and honest 90% bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.calibrate.fit import build_problem, free_parameters, read_draws, read_header
from sim.calibrate.report import coverage_summary, predictive_coverage
from sim.calibrate.sampler import ESS_BULK_MIN, RHAT_MAX, convergence
from sim.calibrate.targets import load_targets
from sim.engine.solver import SolverSettings
from sim.model.levers import LeverSet
from sim.model.parameters import SAMPLED_ROLES, ModelParameters, names_with_role, prior_distribution

REPO = Path(__file__).resolve().parent.parent
POSTERIORS = {"calibrated": REPO / "sim/data/posterior_calibrated.csv",
              "article": REPO / "sim/data/posterior_article.csv"}


def per_parameter(header: dict[str, str]) -> dict[str, tuple[float, float]]:
    """name -> (R-hat, bulk ESS) from the header line 'r_hat and ess_bulk per parameter'."""
    out = {}
    for item in header["r_hat and ess_bulk per parameter"].split(";"):
        name, r_hat, ess = item.split()
        out[name] = (float(r_hat), float(ess))
    return out


@pytest.mark.parametrize("name", ["calibrated", "article"])
def test_posterior_converged_by_the_thresholds_in_its_header(name):
    path = POSTERIORS[name]
    header = read_header(path)
    names, values = read_draws(path)
    assert set(names) == set(names_with_role(*SAMPLED_ROLES)), "every sampled parameter"
    stated = per_parameter(header)
    assert set(stated) == set(names)
    assert header["converged"].startswith("yes")
    for param, (r_hat, ess) in stated.items():
        assert r_hat < RHAT_MAX and ess >= ESS_BULK_MIN, (param, r_hat, ess)
    assert float(header["r_hat max"]) < RHAT_MAX and float(header["ess_bulk min"]) >= ESS_BULK_MIN
    # the header tells the truth: ArviZ on the draws (rows in chain order) gives the same numbers
    chains = int(header["chains"])
    assert values.shape[0] == chains * int(header["draws per chain"])
    z = np.column_stack([f.to_z(values[:, names.index(f.name)])
                         for f in free_parameters(SAMPLED_ROLES, names)])
    again = convergence(z, chains, [f.name for f in free_parameters(SAMPLED_ROLES, names)])
    for param, d in again.items():
        assert d["r_hat"] == pytest.approx(stated[param][0], abs=2e-3), param
        assert d["ess_bulk"] == pytest.approx(stated[param][1], rel=0.01, abs=1), param


# substitution constants no 2010-2024 series can inform (a cut channel's replacement, the cost of
# source enforcement, initiation's price response): the posterior keeps their prior.  Not India's
# precursors nor other producers: China's precursor controls (0.15 withheld from 2018), its 2019
# scheduling and the 2023 China disruption are in the history, and those channels are China's
# substitutes on the land route, so the 2018-2024 series see their constants (posterior sd 0.61
# and 0.75 of the prior's, measured on the committed posterior); they are held to the 0.2 of
# every substitution constant
SILENT = ("asc_india_finished", "enforcement_cost_exponent", "initiation_price_elasticity")


def test_substitution_constants_keep_their_prior_width():
    """What no series identifies stays uncertain: the posterior spread (sd in the fitting space)
    of the constants no series informs is at least 0.8 of the prior's, and no substitution
    constant is pinned (at least 0.2; the takeover's shape does inform the logit's scale and
    nesting, measured 0.34 and 0.22; issue 22: 12-21% for all of them before)."""
    names, values = read_draws(POSTERIORS["calibrated"])
    rng = np.random.default_rng(0)
    subst = [f for f in free_parameters(("subst",))]
    assert set(SILENT) <= {f.name for f in subst}
    for f in subst:
        prior = f.to_z(np.asarray(prior_distribution(f.name).sample(20000, rng=rng)))
        posterior = f.to_z(values[:, names.index(f.name)])
        ratio = np.std(posterior) / np.std(prior)
        assert ratio >= (0.8 if f.name in SILENT else 0.2), (f.name, ratio)


def test_posterior_predictive_bands_cover_the_fitted_observations():
    """The 90% bands of the fitted public series with their model error (what
    `<variable>_predictive` carries) cover at least 80% of the fitted observations."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name="calibrate"), resolve=True)
    targets = load_targets(cfg["targets"], 2100)
    base = ModelParameters.from_mapping(yaml.safe_load(
        (REPO / "configs/params/calibrated.yaml").read_text()))
    names, values = read_draws(POSTERIORS["calibrated"])
    problem = build_problem(base, LeverSet.from_mapping({}),
                            SolverSettings(end_year=targets.fit_end_year), targets,
                            roles=SAMPLED_ROLES, rtol=1e-5)
    problem.free = [next(f for f in problem.free if f.name == n) for n in names]
    pick = np.random.default_rng(0).choice(len(values), size=min(300, len(values)), replace=False)
    rows = predictive_coverage(problem, values[pick])
    share = coverage_summary(rows)
    assert len(rows) >= 40
    assert share["model_error"] >= 0.8, share
    assert share["observation"] >= share["model_error"] >= share["model"]
