"""The study runs end to end on a tiny sample and its report builds; CLI errors are one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import yaml

from sim.errors import InputError
from sim.study.workflow import run_study
from sim.study.report import build_report
from tests.conftest import REPO

BIN = Path(sys.executable).parent


def tiny_config() -> dict:
    cfg = yaml.safe_load((REPO / "configs/study.yaml").read_text())
    cfg.pop("defaults"), cfg.pop("hydra")
    cfg["params"] = yaml.safe_load((REPO / "configs/params/calibrated.yaml").read_text())
    cfg["costs"] = yaml.safe_load((REPO / "configs/costs/default.yaml").read_text())
    cfg["ensemble"] = {**yaml.safe_load((REPO / "configs/ensemble/posterior.yaml").read_text()),
                       "size": 4}
    cfg["solver"] = {"end_year": 2028}
    cfg["study"]["outcome"] = {"variable": "deaths_overdose", "window": [2026, 2028]}
    cfg["sensitivity"].update(sobol_n=2, morris_trajectories=2, bootstrap=10)
    cfg["funding"] = {"spending": [100, 1000], "levers": ["naloxone_kits", "interdiction_land"]}
    cfg["discovery"]["spending"] = [300]
    return cfg


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    run_study(tiny_config(), out, log=lambda m: None)
    return out


def test_study_writes_every_output_with_units(study_dir):
    for name in ("sensitivity.nc", "sensitivity.png", "funding.nc", "funding.csv", "frontier.png",
                 "discovery.nc", "discovery_rules.md", "report.md", "study_config.yaml"):
        assert (study_dir / name).is_file(), name
    for name in ("sensitivity.nc", "funding.nc", "discovery.nc"):
        with xr.open_dataset(study_dir / name, engine="h5netcdf") as ds:
            for var in ds.data_vars:
                assert ds[var].attrs.get("units") and ds[var].attrs.get("long_name"), (name, var)
    with xr.open_dataset(study_dir / "sensitivity.nc", engine="h5netcdf") as ds:
        # every non-fixed parameter and every lever of the study config is a factor
        assert ds.sizes["factor"] > 40 and "convergence_max_abs_change_ST" in ds.attrs
        assert set(ds["factor_kind"].values) == {"parameter", "lever"}
    with xr.open_dataset(study_dir / "funding.nc", engine="h5netcdf") as ds:
        assert ds["deaths_averted"].shape == (2, 2, 4)
        assert (ds["deaths_averted"] > 0).all()


def test_report_has_figures_tables_and_assumptions(study_dir):
    (study_dir / "report.md").unlink()
    build_report(study_dir)
    text = (study_dir / "report.md").read_text()
    for needle in ("## 1. Global sensitivity", "![Sobol indices](sensitivity.png)", "**Convergence**",
                   "## 2. Funding in dollars", "![frontier](frontier.png)", "deaths averted per M US$",
                   "## 3. Scenario discovery", "Supply wins in", "## Assumptions",
                   "NIDA Research Report", "| naloxone_kits | demand | 100 |",
                   "the draw's baseline treatment_entries (year before the start)"):
        assert needle in text, needle


def test_report_cli_and_bad_input(tmp_path, study_dir):
    ok = subprocess.run([str(BIN / "fentsim-study-report"), str(study_dir)], capture_output=True,
                        text=True)
    assert ok.returncode == 0 and "report.md" in ok.stdout
    bad = subprocess.run([str(BIN / "fentsim-study-report"), str(tmp_path)], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "none of sensitivity.nc" in bad.stderr
    with pytest.raises(InputError, match="study folder"):
        build_report(tmp_path / "missing")


def test_study_cli_bad_input_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    res = subprocess.run([str(BIN / "fentsim-sensitivity"), "study.outcome.variable=deaths",
                          f"hydra.run.dir={out}"], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        res.stderr.strip()] and "study.outcome.variable: value 'deaths' not allowed" in res.stderr
    assert not list(out.glob("*.nc")) and not (out / "study_config.yaml").exists()


def test_figures_read_well(study_dir, monkeypatch):
    """frontier: supply and demand apart, log axes with thousands separators; sensitivity: ST and
    S1 in separate panels (whiskers never cross the other index's bar)."""
    import sim.study.report as report
    from sim.results.io import open_result

    monkeypatch.setattr(report, "_save", lambda fig, path: fig)
    fig = report.plot_frontier(open_result(study_dir / "funding.nc"), "unused.png")
    supply, demand = fig.axes
    assert supply.get_yscale() == demand.get_yscale() == supply.get_xscale() == "log"
    assert [t.get_text() for t in supply.get_xticklabels()] == ["$100M", "$1B"]
    assert {t.get_text() for t in supply.get_legend().get_texts()} == {"interdiction land"}
    fig = report.plot_sensitivity(open_result(study_dir / "sensitivity.nc"), "unused.png")
    assert [ax.get_title() for ax in fig.axes] == ["total effect (ST)", "first order (S1)"]
