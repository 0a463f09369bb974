"""The sequential Monte Carlo sampler on a likelihood with a known answer (no model runs): where
the likelihood is exactly flat in a fitted parameter, the posterior keeps that parameter's prior,
and where it is informative the posterior centres on the data.

With lighter settings the flat parameter collapses: at 200 particles and 12 moves a stage (the
backtests' settings) this toy leaves it at 0.23-0.36 (5-95 %), as the backtest at cut-off 2021 left
`disruption_china_2023`, flat there, at 0.04-0.29 with two groups and 0.02-0.43 with one, against
its uniform 0-0.5 (docs/validation.md section 2a): resampling drifts and the moves scale to the
informed directions; a refresh of one random fitted parameter per move did not help.
`fentsim-backtest` therefore draws parameters flat at its cut-off from their priors
(sim/calibrate/backtest.py), and the committed posterior uses 1,000 particles.

A likelihood with two modes in one parameter shows the seed dependence of the calibration:
resampling drifts the modes' shares, and once a chain holds one mode the full-vector moves do
not cross; with chains that exchange particles (the sampler before `groups` and the subspace
jump) two seeds of 2 x 300 particles over the 53 fitted parameters gave 5 % and 21 % in the minor
mode (weight 25 %), both at R-hat 1.00."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from sim.calibrate import sampler
from sim.calibrate.fit import Problem, calibration_options, free_parameters, prior_distribution
from sim.engine.solver import SolverSettings
from sim.errors import InputError
from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters, names_with_role

FLAT = "disruption_china_2023"     # uniform 0-0.5: the backtest case at cut-off 2021
# the calibration's defaults (configs/calibration/default.yaml), with 2 chains in 2 groups (each
# chain a group of its own)
OPTIONS = {**calibration_options({}), "chains": 2, "groups": 2}


class ToyProblem(Problem):
    """A calibration problem over every fitted parameter with its declared prior, whose
    likelihood pins every one of them but FLAT to a narrow normal (sd 0.02 of the fitting space)
    around its prior median and says nothing about FLAT (no model runs)."""

    def __init__(self) -> None:
        super().__init__(ModelParameters(), LeverSet.from_mapping({}), SolverSettings(), None,
                         free_parameters(("fit",)))
        self.centre = np.array([float(f.to_z(prior_distribution(f.name).median()))
                                for f in self.free])

    def log_likelihood(self, z: np.ndarray) -> np.ndarray:
        informed = np.array([f.name != FLAT for f in self.free])
        r = (np.atleast_2d(z) - self.centre)[:, informed] / 0.02
        return -0.5 * np.sum(r ** 2, axis=1)


def test_a_flat_fitted_parameter_keeps_its_prior():
    assert FLAT in names_with_role("fit")
    problem = ToyProblem()
    post = sampler.sample_posterior(problem, OPTIONS, progress=lambda line: None)
    draws = np.asarray(post.draws)[:, problem.names.index(FLAT)]
    # the prior is uniform 0-0.5: its 5-95 % range is 0.025-0.475, its sd 0.144
    assert np.quantile(draws, 0.05) < 0.06 and np.quantile(draws, 0.95) > 0.44, \
        np.quantile(draws, [0.05, 0.95])
    assert stats.kstest(draws, stats.uniform(0.0, 0.5).cdf).statistic < 0.08
    # and the informed ones sit at the data
    informed = problem.names.index(problem.free[0].name)
    z = problem.free[0].to_z(np.asarray(post.draws)[:, informed])
    assert abs(np.median(z) - problem.centre[0]) < 0.02
    # each chain's log evidence: the likelihood's integral over the priors is, to the priors'
    # curvature over 0.02, the prior density at the centre times a normal's integral per informed
    # coordinate (-164.7; measured -169.4 and -167.0: the log of an unbiased estimate runs low)
    expected = sum(float(f.log_prior(np.array([c]))[0]) + np.log(0.02 * np.sqrt(2 * np.pi))
                   for f, c in zip(problem.free, problem.centre) if f.name != FLAT)
    assert all(abs(v - expected) < 6 for v in post.info["log evidence by chain"]), \
        (expected, post.info["log evidence by chain"])


def exact_mean_misfit(problem: ToyProblem) -> float:
    """E[-2 log likelihood] of `ToyProblem`'s exact posterior: per informed coordinate, the mean
    of ((z - centre) / 0.02)^2 under prior(z) x normal(z; centre, 0.02), by quadrature on the
    prior's support (a prior narrower than the normal adds less than 1)."""
    total = 0.0
    for f, c, lo, hi in zip(problem.free, problem.centre, problem.z_lo, problem.z_hi):
        if f.name == FLAT:
            continue
        z = np.linspace(max(lo, c - 0.24), min(hi, c + 0.24), 402)[1:-1]
        log_w = np.array([float(f.log_prior(np.array([v]))[0]) for v in z]) \
            - 0.5 * ((z - c) / 0.02) ** 2
        w = np.exp(log_w - log_w.max())
        total += float(np.sum(w * ((z - c) / 0.02) ** 2) / np.sum(w))
    return total


def test_the_posterior_is_not_too_narrow_after_enough_final_moves():
    """With 360 moves at the posterior the toy's draws are as spread as the exact posterior's
    (mean of -2 log likelihood within 2.5 %: measured 50.65 against 50.97); with the default 36
    they are about 4 % too narrow (48.96), the tempering's resampling not yet undone."""
    problem = ToyProblem()
    post = sampler.sample_posterior(problem, {**OPTIONS, "final_moves": 360},
                                    progress=lambda line: None)
    draws = np.asarray(post.draws)
    z = np.column_stack([f.to_z(draws[:, i]) for i, f in enumerate(problem.free)])
    informed = np.array([f.name != FLAT for f in problem.free])
    misfit = np.sum(((z - problem.centre)[:, informed] / 0.02) ** 2, axis=1)
    exact = exact_mean_misfit(problem)
    assert 50.0 < exact < 52.0, exact
    assert abs(misfit.mean() / exact - 1.0) < 0.025, (misfit.mean(), exact)


class TwoModes(Problem):
    """24 fitted parameters with their declared priors: the first has two narrow modes (sd 0.02 of
    the fitting space, 0.2 apart) of likelihood weights 0.75 and 0.25 at equal prior density, the
    others are pinned as in `ToyProblem`, and FLAT is free (no model runs)."""

    def __init__(self) -> None:
        names = [n for n in names_with_role("fit") if n != FLAT][:23] + [FLAT]
        super().__init__(ModelParameters(), LeverSet.from_mapping({}), SolverSettings(), None,
                         free_parameters(("fit",), names))
        self.centre = np.array([float(f.to_z(prior_distribution(f.name).median()))
                                for f in self.free])

    def log_likelihood(self, z: np.ndarray) -> np.ndarray:
        d = (np.atleast_2d(z) - self.centre) / 0.02
        return (logsumexp([np.log(0.75) - 0.5 * (d[:, 0] + 5.0) ** 2,
                           np.log(0.25) - 0.5 * (d[:, 0] - 5.0) ** 2], axis=0)
                - 0.5 * np.sum(d[:, 1:-1] ** 2, axis=1))


def test_two_seeds_agree_on_the_weights_of_two_modes():
    """Independent runs (seeds) and independent groups of chains (4 chains in 2 groups) agree on
    how much of the posterior each mode holds.  With too few particles this fails: at 4 x 100 two
    seeds gave 10 % and 31 % in the minor mode; at 4 x 60 with every chain alone chains held 0 to
    100 % (R-hat 1.06 and 1.65)."""
    problem = TwoModes()
    modes = problem.centre + np.outer([-0.1, 0.1], np.eye(len(problem.free))[0])
    assert np.ptp(problem.log_prior(modes)) < 0.01   # (nearly) equal prior density at the modes
    shares = []
    for seed in (0, 1):
        post = sampler.sample_posterior(problem, {**OPTIONS, "seed": seed, "chains": 4,
                                                  "particles": 250}, progress=lambda line: None)
        z = problem.free[0].to_z(np.asarray(post.draws)[:, 0])
        shares.append(float(np.mean(z > problem.centre[0])))
        assert post.diagnostics[problem.names[0]]["r_hat"] < sampler.RHAT_MAX, seed
    assert abs(shares[0] - shares[1]) < 0.1 and all(0.12 < s < 0.38 for s in shares), shares


def test_a_reference_proposal_does_not_bias_the_posterior():
    """A reference posterior put wholly on the minor mode (as a stale or wrong earlier posterior
    would be) is only a proposal: the modes keep their weights 0.75 and 0.25."""
    problem = TwoModes()
    rng = np.random.default_rng(5)
    minor = problem.centre + 0.1 * np.eye(len(problem.free))[0]
    reference = np.clip(minor + 0.02 * rng.standard_normal((500, len(problem.free))),
                        problem.z_lo + 1e-6, problem.z_hi - 1e-6)   # inside the priors' support
    post = sampler.sample_posterior(problem, {**OPTIONS, "chains": 4, "particles": 250},
                                    progress=lambda line: None, reference=reference)
    assert post.info["reference proposal"]
    z = problem.free[0].to_z(np.asarray(post.draws)[:, 0])
    share = float(np.mean(z > problem.centre[0]))
    assert 0.12 < share < 0.38, share
    assert post.diagnostics[problem.names[0]]["r_hat"] < sampler.RHAT_MAX


def test_groups_must_divide_the_chains():
    with pytest.raises(InputError, match="calibration.groups: value 3"):
        calibration_options({"chains": 4, "groups": 3})
