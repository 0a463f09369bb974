"""What a backtest states of its posterior's sampler (issue 22 item 7): with independent groups of
chains R-hat compares independent runs, so backtest.md and backtest.nc say how many groups the
posterior had and whether it met the convergence thresholds (docs/validation.md section 2a)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sim.calibrate.backtest import BANDS, Backtest, sampler_summary
from sim.calibrate.sampler import Posterior
from sim.results.io import ENGINE, write_dataset


def posterior(r_hat: float, ess: float, groups: int) -> Posterior:
    """A two-parameter posterior of 4 chains with the given worst R-hat and bulk ESS."""
    return Posterior(["a", "b"], np.zeros((8, 2)), np.zeros(8), chains=4, seconds=1.0, seed=0,
                     info={"independent groups of chains": groups, "particles per chain": 2,
                           "stages": 3},
                     diagnostics={"a": {"r_hat": r_hat, "ess_bulk": ess, "ess_tail": ess},
                                  "b": {"r_hat": 1.001, "ess_bulk": 900.0, "ess_tail": 900.0}})


def backtest(convergence: dict) -> Backtest:
    point = {"series": "synthetic_deaths", "year": 2024, "units": "deaths/yr",
             "observed": 46870.0, "model_median": 48830.0, "error": 0.0418,
             **{f"{b}_{end}": v for b in BANDS for end, v in (("low", 3e4), ("high", 9e4))},
             **{f"{b}_covered": True for b in BANDS}}
    return Backtest(2021, 2024, [point], [], 1.0, 8, convergence, [])


@pytest.mark.parametrize("r_hat, ess, groups, verdict", [(1.735, 6.0, 2, "NO"),
                                                         (1.008, 477.0, 1, "yes"),
                                                         (1.01, 399.0, 1, "NO")])
def test_backtest_states_groups_and_convergence(tmp_path, r_hat, ess, groups, verdict):
    result = backtest(sampler_summary(posterior(r_hat, ess, groups)))
    header = result.markdown().splitlines()[2]
    assert f"independent groups {groups};" in header
    assert f"R-hat max {r_hat}; bulk ESS min {round(ess)}; converged {verdict} (" in header
    path = write_dataset(result.to_dataset(), tmp_path / "backtest.nc")
    with xr.open_dataset(path, engine=ENGINE) as ds:
        assert ds.attrs["sampler_independent_groups"] == groups
        assert ds.attrs["sampler_R_hat_max"] == pytest.approx(r_hat)
        assert ds.attrs["sampler_converged"].startswith(verdict + " (")
