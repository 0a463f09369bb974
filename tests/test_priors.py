"""Priors are declared once (sim/model/parameters.py) and are what the fit and the sampler evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.calibrate.fit import build_problem, calibration_options, free_parameters
from sim.calibrate.targets import load_targets_file
from sim.engine.solver import SolverSettings
from sim.errors import InputError
from sim.model.levers import LeverSet
from sim.model.parameters import (PRIOR_ROLES, SAMPLED_ROLES, ModelParameters, model_errors,
                                  names_with_role, prior_distribution)

REPO = Path(__file__).resolve().parent.parent


def test_every_sampled_parameter_has_a_distribution_inside_its_bounds():
    for name in ModelParameters.names():
        meta = ModelParameters.metadata(name)
        dist = prior_distribution(name)
        assert (dist is None) == (meta["role"] == "fixed"), name
        if dist is None:
            continue
        lo, hi = (float(v) for v in dist.support())
        assert meta["bounds"][0] <= lo < hi <= meta["bounds"][1], name
        assert lo <= float(getattr(ModelParameters(), name)) <= hi, name


def test_the_log_prior_the_fit_evaluates_is_the_declared_density():
    """For every sampled parameter, at random points of its prior: the fit's log prior in z
    (fitting space) minus the log Jacobian equals the declared distribution's log density, and
    the least-squares form 0.5 r^2 = max - log prior is the same number."""
    rng = np.random.default_rng(1)
    free = free_parameters(SAMPLED_ROLES)
    assert {f.name for f in free} == set(names_with_role(*SAMPLED_ROLES))
    for f in free:
        dist = prior_distribution(f.name)
        x = np.asarray(dist.sample(200, rng=rng), dtype=float)
        z = f.to_z(x)
        jacobian = z if f.log else 0.0       # log |d value / dz|
        expected = np.asarray(dist.logpdf(x), dtype=float)
        np.testing.assert_allclose(f.log_prior(z) - jacobian, expected, rtol=1e-10, atol=1e-10,
                                   err_msg=f.name)
        np.testing.assert_allclose(f.log_prior_max - 0.5 * f.prior_residual(z) ** 2,
                                   f.log_prior(z), rtol=1e-9, atol=1e-8, err_msg=f.name)
        assert np.all(f.log_prior(z) <= f.log_prior_max), f.name
        # outside the declared bounds the prior is zero
        lo, hi = f.z_bounds
        if np.isfinite(lo):
            assert f.log_prior(np.array([lo - 0.1])) == -np.inf, f.name


def test_the_seizure_priors_are_as_wide_as_documented():
    """The bug of issue 21: uniform priors on a log scale were read with a linear sd (35 times
    too tight).  Now the prior the fit sees spans the documented range."""
    for name, (a, b) in (("seizure_prob_heroin", (0.02, 0.12)),
                         ("seizure_prob_mail_2013", (0.005, 0.2)),
                         ("seizure_prob_land_2013", (0.005, 0.2))):
        f = free_parameters(("fit",), [name])[0]
        assert (f.lo, f.hi) == (a, b)
        z = f.to_z(np.linspace(a, b, 11)[1:-1])
        # flat in the value: in z the density is the Jacobian, value / (b - a)
        np.testing.assert_allclose(f.log_prior(z), z - np.log(b - a), rtol=1e-12)


def test_the_fit_takes_its_free_list_and_priors_from_the_declarations():
    targets = load_targets_file(REPO / "configs/targets/article.yaml", 2018)
    problem = build_problem(ModelParameters(), LeverSet.from_mapping({}),
                            SolverSettings(end_year=2018), targets)
    assert problem.names == names_with_role("fit")
    assert set(model_errors().values()) <= set(problem.names)
    # the calibration config restates nothing: no free list, no prior widths
    cfg = yaml.safe_load((REPO / "configs/calibration/default.yaml").read_text())
    assert "free" not in cfg and "prior_sd" not in (REPO / "configs/calibration/default.yaml").read_text()
    with pytest.raises(InputError, match="calibration.free: no longer a key"):
        calibration_options({"free": {}})
    with pytest.raises(InputError, match="calibration.fit_only: value 'potency_ratio' not allowed"):
        free_parameters(("fit",), ["potency_ratio"])
    # prior-role parameters are never fitted at the MAP, always sampled
    assert not set(problem.names) & set(names_with_role(*PRIOR_ROLES))


def test_lever_effect_constants_are_sampled_from_documented_priors():
    """Every constant of a lever's effect (naloxone, test strips, MOUD, enforcement cost) has a
    prior and is sampled in every ensemble: no intervention effect has a zero-width interval."""
    for name in ("naloxone_coefficient", "witnessed_fraction", "rescue_without_naloxone",
                 "test_strip_max_effect", "test_strip_coefficient", "treatment_overdose_ratio",
                 "treatment_use_ratio", "treatment_duration", "treatment_success_fraction",
                 "moud_share_illicit", "treatment_seeking_rate", "enforcement_cost_exponent",
                 "risk_premium"):
        meta = ModelParameters.metadata(name)
        assert meta["role"] in PRIOR_ROLES, name
        assert "prior" in meta["doc"].lower() or meta["role"] == "subst", name
        dist = prior_distribution(name)
        low, high = (float(v) for v in dist.icdf([0.05, 0.95]))
        assert high > 1.2 * low, name
