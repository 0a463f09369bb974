"""Table-driven bad input: command-line overrides, YAML configs, target sets, posterior files and
result files given to fentsim-compare / fentsim-aggregate.  Each gives one line naming the field,
the value and what is allowed, a non-zero exit, no traceback, and no result file left behind.

Overrides are checked in-process (Hydra's compose + the same validation `fentsim` runs before it
computes anything); a few cases run the real `fentsim` command to check exit status and output.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sim.cli.main import EXIT_USER_ERROR, hydra_error_line, prepare_job
from sim.errors import InputError
from sim.results.io import write_dataset
from sim.sweeps.rerun import config_of
from sim.calibrate.targets import load_targets
from tests.conftest import REPO
from tests.test_cli import fentsim

CONFIGS = REPO / "configs"
SHORT = "solver.end_year=2012"
# draws in the committed posterior of params=calibrated (data rows of the CSV)
POSTERIOR_DRAWS = sum(1 for line in (REPO / "sim/data/posterior_calibrated.csv").read_text().splitlines()
                      if line and not line.startswith("#")) - 1

OVERRIDES = [
    (["params.relapse_rate=-1"], "params.relapse_rate: value -1 outside allowed range [0, 5] 1/yr"),
    (["params.fentanyl_incidence_multiplier=12"], "params.fentanyl_incidence_multiplier: value 12 outside"),
    (["params.remission_rate=fast"], "params.remission_rate: value 'fast' is not a number"),
    (["params.consumption_per_user=nan"], "params.consumption_per_user: value nan outside allowed range"),
    (["+params.relaps_rate=0.5"], "params.relaps_rate: unknown key (did you mean 'relapse_rate'?)"),
    (["params.foo=1"], "params.foo: unknown key; allowed: adulterated_risk_weight"),
    (["levers.prevention.strt=2020"], "levers.prevention.strt: unknown key (did you mean 'start'?)"),
    (["+levers.prevntion.start=2020"], "levers.prevntion: unknown key (did you mean 'prevention'?)"),
    (["levers.prevention.start=1990", "levers.prevention.level=0.2"],
     "levers.prevention.start: value 1990 outside the simulated window [2010, 2013] yr"),
    (["levers.naloxone_kits.start=2031", "levers.naloxone_kits.level=2"],
     "levers.naloxone_kits.start: value 2031 outside the simulated window [2010, 2013] yr"),
    (["levers.prevention.start=2011"], "levers.prevention.level: required when an intervention"),
    (["levers.prevention.start=2011", "levers.prevention.level=1.5"],
     "levers.prevention.level: value 1.5 outside allowed range [0, 1]"),
    (["levers.naloxone_kits.start=2011", "levers.naloxone_kits.level=2",
      "levers.naloxone_kits.mode=double"], "levers.naloxone_kits.mode: value 'double' not allowed"),
    (["levers.prevention.start=2011", "levers.prevention.level=0.2", "levers.prevention.ramp=0"],
     "levers.prevention.ramp: value 0 not allowed; allowed: a number of years >= 0.00274 (one day)"),
    (["levers.naloxone_kits.start=2011", "levers.naloxone_kits.level=-1"],
     "levers.naloxone_kits.level: multiplier -1 must be >= 0"),
    (["solver.method=Euler"], "solver.method: value 'Euler' not allowed; allowed: RK45"),
    (["solver.end_year=2005"], "solver.end_year: value 2005 outside allowed range [2011, 2100]"),
    (["solver.end_year=soon"], "solver.end_year: value 'soon' is not a number"),
    (["solver.rtol=0"], "solver.rtol: value 0 outside allowed range (0, 1)"),
    (["solver.output_step=2"], "solver.output_step: value 2 outside allowed range (0, 1] yr"),
    (["+solver.stepsize=1"], "solver.stepsize: unknown key"),
    (["ensemble.size=0"], "ensemble.size: value 0 not allowed; allowed: a positive integer"),
    (["ensemble=posterior", "ensemble.size=100000"],
     f"ensemble.size: value 100000 exceeds the {POSTERIOR_DRAWS} draws"),
    (["ensemble.name=bootstrap"], "ensemble.name: value 'bootstrap' not allowed; allowed: none, posterior"),
    (["ensemble=posterior", "ensemble.seed=-1"], "ensemble.seed: value -1 not allowed; allowed: an integer in [0, 4294967295]"),
    (["ensemble=posterior", "ensemble.file=/nonexistent/draws.csv"],
     "ensemble.file: value '/nonexistent/draws.csv' not found"),
    (["+ensemble.sise=3"], "ensemble.sise: unknown key (did you mean 'size'?)"),
    (["ensemble=posterior", f"ensemble.file={sys.executable}"],
     f"ensemble.file: value '{sys.executable}' cannot be read as a CSV file of draws"),
    (["scenario=nope"], "scenario: value 'nope' not allowed; allowed: baseline, both"),
    (["scenario=baseline_"], "scenario: value 'baseline_' not allowed (did you mean 'baseline'?)"),
    (["scenario.intensity=-1"], "scenario.intensity: value -1 not allowed; allowed: a number >= 0"),
    (["scenario=china_crackdown", "scenario.intensity=3"],
     "levers.enforcement_china_finished.level: value 1.2 outside allowed range [0, 0.999] 1"),
    (["output.filename=result.csv"], "output.filename: value 'result.csv' must be a plain file name"),
    (["output.filename=../up.nc"], "output.filename: value '../up.nc' must be a plain file name"),
    (["+output.foo=1"], "output.foo: unknown key; allowed: filename, summary_years"),
    (["output.summary_years=2017"], "output.summary_years: value 2017 not allowed; allowed: a list"),
    (["+parms.relapse_rate=1"], "config.parms: unknown key (did you mean 'params'?)"),
    # safety: a user-supplied _target_ is an unknown key, never instantiated
    (["+_target_=os.system"], "config._target_: unknown key"),
    (["+levers.prevention._target_=os.system"], "levers.prevention._target_: unknown key"),
    (["levers.prevention.start=${oops}"], "levers.prevention.start: Interpolation key 'oops' not found"),
    (["solver.end_year=(("], "override syntax: "),
    # issue 14: nonsense refused before any work
    (["solver.end_year=2012.6"], "solver.end_year: value 2012.6 is not a whole year; allowed: a "
                                 "whole year in [2011, 2100]"),
    (["solver.start_year=2010.9"], "solver.start_year: value 2010.9 is not a whole year"),
    (["solver.output_step=1e-7"], "solver.output_step: value 1e-07 outside allowed range "
                                  "[0.00274, 1] yr"),
    (["params.relapse_rate=true"], "params.relapse_rate: value True is not a number (booleans"),
    (["params.relapse_rate=[0.5,true]"], "params.relapse_rate: value [0.5, True] is not a number"),
    (["levers.prevention.level=true"], "levers.prevention.level: value True is not a number"),
    (["levers.prevention.ramp=-5"], "levers.prevention.ramp: value -5 not allowed; allowed: a "
                                    "number of years >= 0.00274 (one day)"),
    (["levers.prevention.ramp=abc"], "levers.prevention.ramp: value 'abc' is not a number"),
    (["levers.prevention.start=2011", "levers.prevention.level=0.2", "levers.prevention.ramp=1e-300"],
     "levers.prevention.ramp: value 1e-300 not allowed; allowed: a number of years >= 0.00274"),
    (["ensemble.size=5"], "ensemble.size: value 5 not allowed with ensemble.name 'none'"),
    (["ensemble=posterior", "ensemble.seed=100000000000000000000000"],
     "ensemble.seed: value 100000000000000000000000 not allowed; allowed: an integer in [0, 4294967295]"),
    (["ensemble=large", "ensemble.size=1000000000000"],
     "ensemble.size 1,000,000,000,000 (the resampled rows and prior draws alone) needs about "),
]


def check_overrides(overrides: list[str]) -> str:
    """The one-line error `fentsim` gives for these overrides (composition, then job validation)."""
    try:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            cfg = compose("config", overrides=[SHORT, *overrides])
        prepare_job(OmegaConf.to_container(cfg, resolve=True))
    except InputError as exc:
        return str(exc)
    except (HydraException, OmegaConfBaseException) as exc:
        return hydra_error_line(exc)
    raise AssertionError(f"{overrides} accepted")


@pytest.mark.parametrize("overrides, message", OVERRIDES, ids=[" ".join(o) for o, _ in OVERRIDES])
def test_bad_override(overrides, message):
    line = check_overrides(overrides)
    assert line.startswith(message), line
    assert "\n" not in line


@pytest.mark.parametrize("overrides, message", [
    (["params.foo=1"], "fentsim: error: params.foo: unknown key; allowed:"),
    (["scenario=nope"], "fentsim: error: scenario: value 'nope' not allowed"),
    (["levers.prevention.start=2050", "levers.prevention.level=0.2"],
     "fentsim: error: levers.prevention.start: value 2050 outside the simulated window"),
])
def test_fentsim_command_one_line_exit_2_no_result(tmp_path, overrides, message):
    out = tmp_path / "o"
    proc = fentsim(f"hydra.run.dir={out}", SHORT, *overrides, cwd=tmp_path)
    assert proc.returncode == EXIT_USER_ERROR, proc.stderr
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    assert not list(tmp_path.rglob("*.nc")) and not list(tmp_path.rglob(".*.tmp"))


def test_traceback_on_request(tmp_path):
    import os
    import subprocess
    from tests.test_cli import BIN
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    env.pop("FENTSIM_DEBUG", None)   # left by an in-process run of another test: not the user's
    proc = subprocess.run([str(BIN / "fentsim"), f"hydra.run.dir={tmp_path}", "params.foo=1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


# --- YAML files: a scenario-like config file, target sets, posterior draws, recorded configs -----

def yaml_run(text: str) -> None:
    from sim.config import build_run
    build_run(yaml.safe_load(text))


def targets(text: str) -> None:
    load_targets(yaml.safe_load(text), end_year=2035)


def draws_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "draws.csv"
    path.write_text(text)
    from sim.calibrate.fit import read_draws
    read_draws(path)


def recorded_config(text: str) -> None:
    config_of(xr.Dataset(attrs={"config": text}), name="r.nc")


ENTRY = "{id: x, kind: count, output: deaths_synthetic, year: 2017, value: 1, sigma: 0.1}"
FILES = [
    (lambda p: yaml_run("levers: {naloxone_kit: {start: 2020, level: 2}}"),
     "levers.naloxone_kit: unknown key (did you mean 'naloxone_kits'?)"),
    (lambda p: yaml_run("params: [1, 2]"), "params: value [1, 2] not allowed; allowed: a mapping of keys to values"),
    (lambda p: yaml_run("params: {_target_: os.system}"), "params._target_: unknown key"),
    (lambda p: yaml_run("levers: {prevention: {start: 2020, level: 0.2}}\nsolver: {end_year: 2015}"),
     "levers.prevention.start: value 2020 outside the simulated window [2010, 2016] yr"),
    (lambda p: targets(f"entries: [{ENTRY.replace('count', 'bogus')}]"),
     "targets.entries[0][x].kind: value 'bogus' not allowed"),
    (lambda p: targets(f"entries: [{ENTRY.replace(', value: 1', '')}]"), "targets.entries[0][x].value: required"),
    (lambda p: targets(f"entries: [{ENTRY.replace('output: deaths_synthetic', 'output: deaths')}]"),
     "targets.entries[0][x].output: value 'deaths' not allowed"),
    (lambda p: targets("csv_series: {file: nope.csv, series: {}}"),
     "targets.csv_series.file: value 'nope.csv' not found"),
    (lambda p: draws_file(p, "draw,relapse_rat\n0,0.5\n"), "ensemble.file draws.csv columns.relapse_rat: unknown key"),
    (lambda p: draws_file(p, "draw,relapse_rate\n0,fast\n"), "ensemble.file: "),
    (lambda p: recorded_config("levers: [unclosed"), "r.nc: attribute 'config' is not valid YAML"),
]


@pytest.mark.parametrize("case, message", FILES, ids=[m.split(":")[0] for _, m in FILES])
def test_bad_yaml_and_data_files(tmp_path, case, message):
    with pytest.raises(InputError) as err:
        case(tmp_path)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


# --- result files given to fentsim-compare and fentsim-aggregate --------------------------------

@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Inputs of the CLI cases: good.nc (a real result, one draw), two.nc (two draws),
    garbage.nc, truncated.nc, wrong.nc (NetCDF but not a result), a sweep whose only job is corrupt,
    an empty folder."""
    import sim
    from sim.engine.solver import SolverSettings
    folder = tmp_path_factory.mktemp("inputs")
    good = write_dataset(sim.simulate(settings=SolverSettings(end_year=2022)), folder / "good.nc")
    two = sim.simulate(sim.ModelParameters(relapse_rate=np.array([0.5, 0.6])),
                       settings=SolverSettings(end_year=2022))
    write_dataset(two, folder / "two.nc")
    (folder / "garbage.nc").write_bytes(b"this is not netcdf")
    (folder / "truncated.nc").write_bytes(good.read_bytes()[:4096])
    write_dataset(xr.Dataset({"x": ("t", np.ones(3))}), folder / "wrong.nc")
    job = folder / "sweep" / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- scenario=baseline\n")
    (job / "result.nc").write_bytes(b"corrupt")
    (folder / "empty_dir").mkdir()
    bad = folder / "bad_overrides" / "0"
    (bad / ".hydra").mkdir(parents=True)
    (bad / ".hydra" / "overrides.yaml").write_text("- scenario=baseline\n- [unclosed\n")
    odd = folder / "odd_overrides" / "0"
    (odd / ".hydra").mkdir(parents=True)
    (odd / ".hydra" / "overrides.yaml").write_text("scenario: baseline\n")
    for job_dir in (job, bad, odd):   # jobs of a multirun, as Hydra records them
        (job_dir / ".hydra" / "hydra.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    return folder


CLI = [
    ("compare", ["good.nc", "missing.nc"], "result file 'missing.nc': not found"),
    ("compare", ["garbage.nc", "good.nc"], "result file 'garbage.nc': not a readable NetCDF file"),
    ("compare", ["good.nc", "truncated.nc"], "result file 'truncated.nc': not a readable NetCDF file"),
    ("compare", ["wrong.nc", "good.nc"], "A: variable 'deaths_overdose' missing"),
    ("compare", ["two.nc", "good.nc"], "draw: A has 2 draw(s), B has 1"),
    ("compare", ["good.nc", "good.nc", "--window", "1990", "2000"], "window: 1990-2000 outside"),
    ("compare", ["good.nc", "good.nc", "--window", "2022", "2020"], "window: start 2022 is after end 2020"),
    ("compare", ["good.nc", "good.nc", "--output", "x.csv"], "--output: value 'x.csv' must end in .nc"),
    ("compare", ["good.nc", "good.nc", "--variable", "exports"], "--variable: value 'exports' not allowed"),
    ("compare", ["good.nc", "--baseline", "scenario=baseline"], "--baseline.scenario: not a dimension"),
    ("compare", ["good.nc", "good.nc", "--select", "scenario"], "selection 'scenario': expected KEY=VALUE"),
    ("compare", ["good.nc", "good.nc", "--window", "2020", "2021", "--output", "good.nc/x.nc"],
     "output file 'good.nc/x.nc': cannot write"),
    ("aggregate", ["nowhere"], "nowhere': not found"),
    ("aggregate", ["good.nc"], "good.nc': not a directory"),
    ("aggregate", ["empty_dir"], "empty_dir': not a sweep"),
    ("aggregate", ["sweep"], "sweep': none of 1 job(s) has a readable result; first: failed"),
    ("aggregate", ["sweep", "--output", "sweep.csv"], "--output: value 'sweep.csv' must end in .nc"),
    ("aggregate", ["bad_overrides"], "bad_overrides/0': .hydra/overrides.yaml cannot be read"),
    ("aggregate", ["odd_overrides"], "odd_overrides/0': .hydra/overrides.yaml is not a list"),
]


@pytest.mark.parametrize("tool, args, message", CLI, ids=[f"{t} {' '.join(a)}" for t, a, _ in CLI])
def test_result_files_given_to_compare_and_aggregate(tmp_path, inputs, monkeypatch, capsys, tool,
                                                     args, message):
    from sim.cli.compare import main as compare_main
    from sim.cli.sweep import aggregate_main
    tmp_path = tmp_path / "w"
    shutil.copytree(inputs, tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.delenv("FENTSIM_DEBUG", raising=False)
    with pytest.raises(SystemExit) as stop:
        (compare_main if tool == "compare" else aggregate_main)(args)
    err = capsys.readouterr().err
    assert stop.value.code == EXIT_USER_ERROR
    assert err.startswith(f"fentsim-{tool}: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_debug_switch_shows_the_traceback(tmp_path, monkeypatch):
    from sim.cli.compare import main as compare_main
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="not found"):
        compare_main(["missing.nc", "--debug"])
