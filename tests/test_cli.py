"""The `fentsim` command end to end, config composition, and the model reference."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sim.config import build_run
from sim.results.io import ENGINE
from tests.conftest import REPO

BIN = Path(sys.executable).parent
CONFIGS = REPO / "configs"


def fentsim(*args: str, cwd: Path, command: str = "fentsim") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([str(BIN / command), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    out = tmp / "out"
    proc = fentsim(f"hydra.run.dir={out}", "solver.end_year=2025", cwd=tmp)
    return proc, out


def test_cli_writes_dataset_meeting_the_contract(cli_run):
    proc, out = cli_run
    assert proc.returncode == 0, proc.stderr
    assert "deaths_synthetic" in proc.stdout and "wrote" in proc.stdout
    assert "scenario baseline: 1 draw(s)" in proc.stdout and "(kg/yr, all routes)" in proc.stdout
    with xr.open_dataset(out / "result.nc", engine=ENGINE) as ds:
        expected = {
            "deaths_synthetic": ("year", "draw"), "deaths_fentanyl": ("year", "draw"),
            "deaths_heroin": ("year", "draw"), "death_rate_synthetic": ("year", "draw"),
            "death_rate_heroin": ("year", "draw"), "seizures_fy": ("year", "route", "draw"),
            "seizures_fy_product": ("year", "route", "draw"),
            "deaths_fentanyl_and_heroin": ("year", "draw"), "deaths_overdose": ("year", "draw"),
            "arrivals": ("year", "channel", "draw"), "capacity": ("time", "channel", "draw"),
            "heroin_arrivals": ("time", "draw"), "price_index": ("time", "draw"),
            "fentanyl_share": ("time", "draw"), "users_untreated": ("time", "draw"),
            "users_in_treatment": ("time", "draw"), "users_remission": ("time", "draw"),
        }
        for name, dims in expected.items():
            assert ds[name].dims == dims, name
        for name in ds.data_vars:   # funding_level: units by lever (units_label: see lever_units)
            units = ds[name].attrs.get("units", ds[name].attrs.get("units_label"))
            assert units and ds[name].attrs.get("long_name"), name
        assert ds.sizes["draw"] == 1
        assert ds.year.dtype.kind == "i"
        assert list(ds.channel.values)[0] == "china_finished_mail"
        assert list(ds.channel.values)[-1] == "heroin_land"
        assert ds.price_index.sel(decimal_year=2015.0).item() == 1.0
        assert list(ds.route.values) == ["mail", "land"]
        assert ds.deaths_synthetic.sel(year=2017).item() > 1000
        for key in ("config", "git_commit", "package_versions", "seed", "solver_method",
                    "solver_rtol", "solver_stats"):
            assert key in ds.attrs, key
        assert "levers:" in ds.attrs["config"] and "params:" in ds.attrs["config"]
    assert not list(out.glob(".*.tmp"))


def test_cli_from_another_directory_with_overrides(tmp_path):
    out = tmp_path / "o"
    proc = fentsim(f"hydra.run.dir={out}", "solver.end_year=2021", "params.relapse_rate=0.4",
                   "levers.naloxone_kits.start=2020", "levers.naloxone_kits.level=2",
                   cwd=Path("/"))
    assert proc.returncode == 0, proc.stderr
    with xr.open_dataset(out / "result.nc", engine=ENGINE) as ds:
        assert int(ds.year.max()) == 2021
        assert "relapse_rate: 0.4" in ds.attrs["config"]


@pytest.mark.parametrize("override, message", [
    ("params.relapse_rate=-1", "fentsim: error: params.relapse_rate: value -1 outside allowed range"),
    ("levers.prevention.start=2020", "fentsim: error: levers.prevention.level: required"),
    ("solver.method=Euler", "fentsim: error: solver.method: value 'Euler' not allowed"),
    ("solver.engine=gpu", "fentsim: error: solver.engine: value 'gpu' not allowed; allowed: auto"),
    ("output.filename=result.csv", "fentsim: error: output.filename: value 'result.csv' must"),
])
def test_cli_bad_input_one_line_no_result(tmp_path, override, message):
    out = tmp_path / "o"
    proc = fentsim(f"hydra.run.dir={out}", override, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(message), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert not list(out.glob("*.nc")) and not list(out.glob(".*.tmp"))


def test_cli_help_and_cfg(tmp_path):
    help_proc = fentsim("--help", cwd=tmp_path)
    assert help_proc.returncode == 0 and "scenario" in help_proc.stdout
    cfg = fentsim("--cfg", "job", cwd=tmp_path)
    assert cfg.returncode == 0 and "levers:" in cfg.stdout and "params:" in cfg.stdout


def test_model_doc_lists_everything(tmp_path):
    proc = fentsim(cwd=tmp_path, command="fentsim-doc")
    assert proc.returncode == 0
    from sim.model.parameters import ModelParameters
    from sim.model.levers import LEVER_SPECS
    from sim.cli.doc import FLOW_FUNCTIONS
    for name in ModelParameters.names() + list(LEVER_SPECS) + ["untreated", "cum_seized"]:
        assert re.search(rf"^\| {name} +\|", proc.stdout, re.M), name
    # the flow functions with their docstrings, the money price's among them
    assert {"nest_price", "money_price", "heroin_log_scarcity"} <= set(FLOW_FUNCTIONS)
    for name in FLOW_FUNCTIONS:
        assert re.search(rf"^\| {name} +\| \S", proc.stdout, re.M), name
    # each channel's constant in the choice model: the parameter its Channel declares
    assert re.search(r"^\| china_precursor_land +\|.*\| asc_china_precursor +\|", proc.stdout, re.M)
    assert re.search(r"^\| china_finished_mail +\|.*\| 0 \(reference\) +\|", proc.stdout, re.M)
    # the value runs use (calibrated) next to the literature value
    row = re.search(r"^\| fentanyl_incidence_multiplier +\| ([^|]+)\| ([^|]+)\|", proc.stdout, re.M)
    calibrated = yaml.safe_load((CONFIGS / "params" / "calibrated.yaml").read_text())
    assert float(row.group(1)) == pytest.approx(calibrated["fentanyl_incidence_multiplier"], rel=1e-5)
    assert float(row.group(2)) == ModelParameters().fentanyl_incidence_multiplier
    # funding: the variables every result carries and each lever's unit cost, from the config
    for name in ("funding_spending", "funding_level", "funding_cost_per_unit"):
        assert re.search(rf"^\| {name} +\|", proc.stdout, re.M), name
    assert re.search(r"^\| treatment_seeking \| 1500 \| 500-3000 \| USD/treatment entry \| "
                     r"baseline treatment_entries \|", proc.stdout, re.M)


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def primary_groups() -> list[str]:
    """Config groups of configs/ named in the defaults list of configs/config.yaml.

    (The `experiment` group lives in experiments/; tests/test_scenarios.py composes it.)
    """
    import yaml
    defaults = yaml.safe_load((CONFIGS / "config.yaml").read_text())["defaults"]
    names = [next(iter(d)) for d in defaults if isinstance(d, dict)]
    return [g for g in names if (CONFIGS / g).is_dir() and not g.startswith("hydra")]


@pytest.mark.parametrize("group", primary_groups())
def test_every_config_composes_and_builds(group):
    options = group_options(group)
    assert options
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        for option in options:
            cfg = compose(config_name="config", overrides=[f"{group}={option}"])
            plain = OmegaConf.to_container(cfg, resolve=True)
            build_run(plain)
