"""Sweeps on Hydra launchers (joblib, submitit_local) combine into one dataset; aggregation after
missing or failed jobs; figures from a sweep dataset; experiments found from any directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sim.hydra_compose import parse_override
from sim.sweeps.aggregate import combine_sweep, expand_product
from sim.results.io import ENGINE
from tests.conftest import REPO

BIN = Path(sys.executable).parent
SMALL = ("solver.end_year=2028", "ensemble=none")   # scenarios start in 2026


def run(command: str, *args: str, cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([str(BIN / command), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def load(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine=ENGINE) as ds:
        return ds.load()


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("joblib")
    sweep = tmp / "sweep"
    # a draw batch of 2 inside each job (a list over draws, as an ensemble gives)
    proc = run("fentsim", "-m", "scenario=baseline,naloxone_up", *SMALL, "hydra/launcher=joblib",
               "params.fentanyl_incidence_multiplier=[3.0,3.5]",
               "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}", cwd=tmp)
    return proc, sweep


def test_joblib_sweep_combines_into_scenario_dimension(joblib_sweep):
    proc, sweep = joblib_sweep
    assert proc.returncode == 0, proc.stderr
    assert "2 of 2 job(s) combined over scenario" in proc.stdout
    ds = load(sweep / "sweep.nc")
    assert list(ds["scenario"].values) == ["baseline", "naloxone_up"]
    assert ds.deaths_synthetic.dims == ("scenario", "year", "draw")
    assert ds.capacity.dims == ("scenario", "time", "channel", "draw")
    assert list(ds.job_status.values) == ["ok", "ok"]
    for name in ds.data_vars:
        attrs = ds[name].attrs   # funding_level: units by lever (units_label: see lever_units)
        assert ("units" in attrs or "units_label" in attrs) and "long_name" in attrs, name
    # each cell is exactly its job's result; the job's own provenance is kept per cell
    for i, scenario in enumerate(ds.scenario.values):
        job = load(sweep / str(i) / "result.nc")
        np.testing.assert_array_equal(ds.deaths_overdose.sel(scenario=scenario).values,
                                      job.deaths_overdose.values)
        assert ds.job_config.sel(scenario=scenario).item() == job.attrs["config"]
    assert ds.sizes["draw"] == 2
    after = ds.deaths_overdose.sel(year=2028)
    assert (after.sel(scenario="naloxone_up") < after.sel(scenario="baseline")).all()
    before = ds.deaths_overdose.sel(year=2025)  # same history before 2026
    # the same up to integration error (the scenario's dates are breakpoints of the steps)
    np.testing.assert_allclose(before.sel(scenario="naloxone_up"), before.sel(scenario="baseline"),
                               rtol=1e-4)


def test_submitit_local_sweep_combines(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run("fentsim", "-m", "scenario=baseline,prevention", *SMALL,
               "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ds = load(sweep / "sweep.nc")
    assert list(ds["scenario"].values) == ["baseline", "prevention"]
    assert ds.deaths_overdose.dims == ("scenario", "year", "draw")
    assert not np.isnan(ds.deaths_overdose.values).any()


def test_aggregate_after_removed_job_output_reports_and_combines_rest(joblib_sweep, tmp_path):
    proc, src = joblib_sweep
    assert proc.returncode == 0, proc.stderr
    sweep = tmp_path / "copy"
    shutil.copytree(src, sweep)
    (sweep / "sweep.nc").unlink()
    (sweep / "1" / "result.nc").unlink()
    agg = run("fentsim-aggregate", str(sweep), cwd=tmp_path)
    assert agg.returncode == 1, agg.stderr
    assert "1 of 2 job(s) combined over scenario" in agg.stdout
    assert "failed: scenario=naloxone_up" in agg.stdout and "no result.nc" in agg.stdout
    ds = load(sweep / "sweep.nc")
    assert list(ds.job_status.values) == ["ok", "failed"]
    assert np.isnan(ds.deaths_overdose.sel(scenario="naloxone_up")).all()
    assert not np.isnan(ds.deaths_overdose.sel(scenario="baseline")).any()
    # a job folder removed entirely is reported as missing (expected from multirun.yaml)
    shutil.rmtree(sweep / "1")
    agg = run("fentsim-aggregate", str(sweep), cwd=tmp_path)
    assert agg.returncode == 1 and "missing: scenario=naloxone_up" in agg.stdout, agg.stdout


def test_sweep_with_failing_job_finishes_the_others_and_reports(tmp_path):
    sweep = tmp_path / "sweep"
    # china_crackdown at intensity 3 takes enforcement to 1.2 > 0.999: that job fails on input
    proc = run("fentsim", "-m", "scenario=baseline,china_crackdown", "scenario.intensity=3",
               *SMALL, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
               f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 1
    assert "levers.enforcement_china_finished.level: value 1.2 outside allowed range" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "1 of 2 job(s) combined" in proc.stdout
    ds = load(sweep / "sweep.nc")
    assert list(ds.job_status.values) == ["ok", "failed"]
    assert "enforcement_china_finished" in ds.job_reason.sel(scenario="china_crackdown").item()


def test_report_figures_from_sweep_dataset(joblib_sweep, tmp_path):
    proc, src = joblib_sweep
    assert proc.returncode == 0, proc.stderr
    sweep = tmp_path / "copy"
    shutil.copytree(src, sweep)
    agg = run("fentsim-aggregate", str(sweep), "--report", "--window", "2026", "2028", cwd=tmp_path)
    assert agg.returncode == 0, agg.stderr
    for name in ("comparison.nc", "comparison.csv", "deaths_by_scenario.png", "deaths_averted.png"):
        path = sweep / name
        assert path.is_file() and path.stat().st_size > 1000 or name.endswith(".csv"), name
        assert str(path) in agg.stdout
    cmp = load(sweep / "comparison.nc")
    assert (cmp.deaths_averted.sel(scenario="baseline") == 0).all()
    assert (cmp.deaths_averted.sel(scenario="naloxone_up") > 0).all()
    assert "[" in agg.stdout  # two draws: median [5% to 95%]
    # the compare CLI gives the same from the sweep dataset and a baseline selection
    out = run("fentsim-compare", str(sweep / "sweep.nc"), "--baseline", "scenario=baseline",
              "--window", "2026", "2028", "--figures", str(tmp_path / "figs"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "figs" / "deaths_averted.png").stat().st_size > 1000
    assert (tmp_path / "figs" / "deaths_by_scenario.png").stat().st_size > 1000


def test_combine_two_swept_keys_on_a_grid(joblib_sweep, tmp_path):
    """Jobs found on disk with two swept keys lay out on a grid (no Hydra needed)."""
    proc, src = joblib_sweep
    assert proc.returncode == 0, proc.stderr
    expected = expand_product({"scenario": ["baseline", "naloxone_up"],
                               "levers.naloxone_kits.level": ["2", "3"]})
    sweep = tmp_path / "grid"
    for i, overrides in enumerate(expected[:2]):  # only the first two jobs ran
        job = sweep / str(i)
        shutil.copytree(src / "0", job)
        (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    ds, report = combine_sweep(sweep, expected, parse=parse_override)
    # dimension names are Python identifiers; sweep_dims maps them back to the override keys
    assert ds.deaths_overdose.dims[:2] == ("scenario", "levers_naloxone_kits_level")
    assert list(ds.levers_naloxone_kits_level.values) == [2, 3]
    assert json.loads(ds.attrs["sweep_dims"])["levers_naloxone_kits_level"] == \
        "levers.naloxone_kits.level"
    assert [j.status for j in report.jobs] == ["ok", "ok", "missing", "missing"]
    assert np.isnan(ds.deaths_overdose.sel(scenario="naloxone_up")).all()


def test_experiment_found_from_any_directory(tmp_path):
    proc = run("fentsim", "experiment=supply_vs_demand", "--cfg", "hydra", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "scenario.intensity: 0.5,1,2" in proc.stdout
    assert "JoblibLauncher" in proc.stdout
    assert not (tmp_path / "results").exists()
    proc = run("fentsim", "--info", "searchpath", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert str(REPO / "experiments") in proc.stdout


def test_expected_jobs_from_multirun_config():
    """The jobs a sweep launches, worked out from multirun.yaml as Hydra's basic sweeper does."""
    from sim.cli.sweep import expected_jobs
    cfg = {"hydra": {"sweeper": {"params": {"scenario": "baseline,both", "scenario.intensity": "1,2"}},
                     "overrides": {"task": ["levers.naloxone_kits.level=2,3", "solver.end_year=2028"]}}}
    jobs = expected_jobs(cfg)
    assert len(jobs) == 8
    assert jobs[0] == ["scenario=baseline", "scenario.intensity=1", "levers.naloxone_kits.level=2",
                       "solver.end_year=2028"]
    assert jobs[-1][:3] == ["scenario=both", "scenario.intensity=2", "levers.naloxone_kits.level=3"]


def test_job_results_combine_in_xarray_without_preprocess(joblib_sweep):
    """Each result.nc carries its scenario as a scalar coordinate and CF time (decoded by xarray)
    with decimal years beside it, so plain xarray joins the job files (as open_mfdataset(combine="nested") would) into sweep.nc's data."""
    proc, sweep = joblib_sweep
    assert proc.returncode == 0, proc.stderr
    jobs = [xr.open_dataset(sweep / str(i) / "result.nc", engine=ENGINE) for i in (0, 1)]
    joined = xr.combine_nested(jobs, concat_dim="scenario", combine_attrs="drop_conflicts")
    combined = load(sweep / "sweep.nc")
    assert list(joined.scenario.values) == ["baseline", "naloxone_up"]
    np.testing.assert_array_equal(joined.deaths_overdose.values, combined.deaths_overdose.values)
    assert joined.time.values[0].calendar == "noleap" and joined.decimal_year.dtype == float
    assert joined.set_xindex("decimal_year").fentanyl_share.sel(decimal_year=2017.5).sizes["scenario"] == 2
    assert "history" in combined.attrs and "history" in jobs[0].attrs
    assert combined.deaths_overdose.attrs["units"] == "count/yr"
