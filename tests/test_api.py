"""The Python API (sim.api, exported by `sim`): the same config, validation and dataset as the
`fentsim` command, sweeps joined along identifier-named dimensions, loaders by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

import sim
from sim.errors import InputError
from sim.results.io import open_result
from sim.sweeps.resume import CONFIG_HASH_ATTR

BIN = Path(sys.executable).parent
BEFORE = Path(__file__).parent / "reference" / "api_runs_before_hydra_compose.json"


def fentsim(*args: str, cwd: Path) -> Path:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    out = cwd / "out"
    proc = subprocess.run([str(BIN / "fentsim"), f"hydra.run.dir={out}", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return out / "result.nc"


@pytest.mark.parametrize("args,kwargs", [
    (["solver.end_year=2021"], {"solver": {"end_year": 2021}}),
    (["scenario=china_crackdown", "scenario.intensity=2", "ensemble=posterior", "ensemble.size=4",
      "solver.end_year=2028", "params.relapse_rate=0.5"],
     {"scenario": "china_crackdown", "intensity": 2, "ensemble": 4, "solver": {"end_year": 2028},
      "params": {"relapse_rate": 0.5}}),
], ids=["baseline", "scenario-posterior"])
def test_api_gives_the_dataset_fentsim_writes(tmp_path, args, kwargs):
    cli = open_result(fentsim(*args, cwd=tmp_path))
    api = sim.run(**kwargs)
    xr.testing.assert_identical(api.drop_attrs(), cli.drop_attrs())  # values, coords, var attrs
    for key in ("config", CONFIG_HASH_ATTR, "seed", "solver_method", "solver_rtol"):
        assert api.attrs[key] == cli.attrs[key], key
    assert "history" in api.attrs and "fentsim" in cli.attrs["history"]


def test_default_run_is_the_calibrated_baseline():
    ds = sim.run(solver={"end_year": 2020})
    assert yaml.safe_load(ds.attrs["config"])["scenario"]["name"] == "baseline"
    calibrated = sim.load_params("calibrated")
    used = ds.parameter_value.sel(parameter="fentanyl_incidence_multiplier").item()
    assert used == calibrated.fentanyl_incidence_multiplier != sim.ModelParameters().fentanyl_incidence_multiplier
    assert ds.scenario.item() == "baseline" and ds.scenario_intensity.item() == 1.0


def test_sweep_joins_runs_along_identifier_dimensions():
    grid = sim.sweep({"scenario": ["baseline", "naloxone_up"], "scenario.intensity": [1, 2]},
                     solver={"end_year": 2028})
    assert grid.deaths_overdose.dims[:2] == ("scenario", "scenario_intensity")
    cell = sim.run("naloxone_up", intensity=2, solver={"end_year": 2028})
    np.testing.assert_array_equal(grid.deaths_overdose.sel(scenario="naloxone_up",
                                                           scenario_intensity=2).values,
                                  cell.deaths_overdose.values)
    cmp = sim.compare(grid, grid.sel(scenario="baseline"), window=(2026, 2028))
    averted = cmp.deaths_averted.sel(scenario="naloxone_up")
    assert (averted > 0).all() and (cmp.deaths_averted.sel(scenario="baseline") == 0).all()


def test_loaders_and_mistakes():
    both = sim.load_scenario("both")
    assert both.name == "both" and {"naloxone_kits", "enforcement_china_finished"} <= set(both.interventions)
    assert both.levers().levers["naloxone_kits"].start == 2026
    draws = sim.load_posterior(size=6, seed=1)
    assert draws.n_draws == 6
    assert sim.load_params("literature").fentanyl_incidence_multiplier == 4.0
    with pytest.raises(InputError, match="scenario: value 'china' not allowed"):
        sim.run("china")
    with pytest.raises(InputError, match="solver.end_yer: unknown key .did you mean 'end_year'"):
        sim.run(solver={"end_yer": 2030})
    with pytest.raises(InputError, match="is a sweep, not a single run; allowed: sim.sweep"):
        sim.run(experiment="supply_vs_demand")


def test_public_names_resolve():
    import sim.api

    for name in sim.__all__:
        assert getattr(sim, name) is not None, name
    assert sim.run is sim.api.run and sim.compare is sim.api.compare
    assert sim.api.config("china_crackdown")["levers"]["enforcement_china_finished"]["level"] == 0.6


@pytest.mark.parametrize("case", sorted(json.loads(BEFORE.read_text())))
def test_same_datasets_as_before_hydras_compose_api(case):
    """sim.run gives what it gave when the API composed configs without Hydra (sim/compose.py,
    removed): the same config text and hash, the same deaths and risk path.  The file was written
    by the last commit with sim/compose.py; regenerate it only when the model or the configs
    change on purpose (then it no longer tests the composition)."""
    before = json.loads(BEFORE.read_text())[case]
    ds = sim.run(**before["kwargs"])
    assert ds.attrs["config"] == before["config"]
    assert ds.attrs[CONFIG_HASH_ATTR] == before["config_sha256"]
    # to rounding: the same config can give results 1e-14 apart when numba's cache was filled
    # in another order (another compiled specialization first); the config text and hash above
    # are what tests the composition
    np.testing.assert_allclose(ds.deaths_overdose.values, before["deaths_overdose"], rtol=1e-12)
    np.testing.assert_allclose(ds.risk_environment.values, before["risk_environment"],
                               rtol=1e-12)
