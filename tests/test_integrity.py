"""Issue 23: nothing lost, nothing mis-paired.  One test (or parametrised case) per case of the
issue's Why list; each would fail if the case came back (data loss, mis-pairing, bad posterior
files, silent no-ops, path escapes, unvalidated settings, tracebacks, a numba cache for any user).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import sim
from sim.calibrate.ensemble import ensemble_of
from sim.errors import InputError
from sim.model.parameters import ModelParameters
from sim.results.io import ENGINE, write_dataset
from sim.sweeps.compare import compare, comparison_csv_text
from tests.test_compare import known

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
POSTERIOR = REPO / "sim" / "data" / "posterior_calibrated.csv"
SHORT = "solver.end_year=2035"   # the default comparison window ends in 2035
W = (2020, 2030)


def cli(prog: str, *args, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "FENTSIM_DEBUG")}
    return subprocess.run([str(BIN / prog), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def one_line_refusal(proc: subprocess.CompletedProcess, *words: str) -> None:
    """Exit status 2, one line on stderr naming `words`, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A finished two-job sweep holding the baseline (its report written by default)."""
    where = tmp_path_factory.mktemp("integrity")
    proc = cli("fentsim", "-m", "scenario=baseline,naloxone_up", SHORT,
               f"hydra.sweep.dir={where / 'sw'}", cwd=where)
    assert proc.returncode == 0, proc.stderr
    return where / "sw"


def copy_sweep(sweep: Path, tmp_path: Path) -> Path:
    target = tmp_path / "sw"
    shutil.copytree(sweep, target, symlinks=True)
    return target


# --- data loss -----------------------------------------------------------------------------------

def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, monkeypatch):
    from sim.cli import guard
    from sim.cli.main import CONFIG_DIR

    monkeypatch.chdir(tmp_path)
    first = guard.preflight(CONFIG_DIR, "config", [SHORT])   # the timestamped default
    a = Path(first[-1].split("=", 1)[1])
    assert first[-1].startswith("hydra.run.dir=results/runs/") and a.is_dir()
    b = guard.reserve_folder(str(a))            # another command in the same second
    c = guard.reserve_folder(str(a))
    assert a.is_dir() and b == a.with_name(a.name + "_2") and c == a.with_name(a.name + "_3")
    guard.discard_reserved()                    # a refused command leaves nothing
    assert not a.exists() and not b.exists() and not c.exists()


def test_compare_output_never_replaces_an_input(tmp_path):
    write_dataset(known(900, tag="a"), tmp_path / "a.nc")
    write_dataset(known(1000, tag="b"), tmp_path / "b.nc")
    before = (tmp_path / "a.nc").read_bytes()
    for target in ("a.nc", "b.nc"):
        one_line_refusal(cli("fentsim-compare", "a.nc", "b.nc", "--window", 2020, 2030, "--output", target, "--force",
                             cwd=tmp_path), "--output", "input")
    assert (tmp_path / "a.nc").read_bytes() == before


def test_compare_output_replaces_a_foreign_file_only_with_force(tmp_path):
    write_dataset(known(900, tag="a"), tmp_path / "a.nc")
    write_dataset(known(1000, tag="b"), tmp_path / "b.nc")
    (tmp_path / "notes.csv").write_text("my notes\n")
    proc = cli("fentsim-compare", "a.nc", "b.nc", "--window", 2020, 2030, "--output", "notes.nc", cwd=tmp_path)
    one_line_refusal(proc, "--output", "--force")
    assert (tmp_path / "notes.csv").read_text() == "my notes\n" and not (tmp_path / "notes.nc").exists()
    assert cli("fentsim-compare", "a.nc", "b.nc", "--window", 2020, 2030, "--output", "notes.nc", "--force",
               cwd=tmp_path).returncode == 0
    assert (tmp_path / "notes.csv").read_text().startswith("a,b,variable,metric")
    # its own output is replaced without --force
    assert cli("fentsim-compare", "a.nc", "b.nc", "--window", 2020, 2030, "--output", "notes.nc", cwd=tmp_path).returncode == 0


def test_aggregate_output_never_replaces_a_job_result(sweep, tmp_path):
    sw = copy_sweep(sweep, tmp_path)
    before = (sw / "0" / "result.nc").read_bytes()
    one_line_refusal(cli("fentsim-aggregate", sw, "--output", sw / "0" / "result.nc", "--force",
                         cwd=tmp_path), "--output", "input")
    assert (sw / "0" / "result.nc").read_bytes() == before


def test_rerun_output_never_replaces_the_checked_file(sweep, tmp_path):
    sw = copy_sweep(sweep, tmp_path)
    before = (sw / "0" / "result.nc").read_bytes()
    one_line_refusal(cli("fentsim-rerun", sw / "0" / "result.nc", "--output",
                         sw / "0" / "result.nc", "--force", cwd=tmp_path), "--output", "input")
    assert (sw / "0" / "result.nc").read_bytes() == before


def test_calibration_copy_never_replaces_an_unrelated_file(tmp_path):
    from sim.cli.calibrate import check_own_copy

    mine = tmp_path / "thesis.yaml"
    mine.write_text("chapter: 1\n")
    with pytest.raises(InputError, match=r"^calibration\.params_file: value .* not written by "
                                         r"fentsim-calibrate"):
        check_own_copy(mine, "params_file")
    assert mine.read_text() == "chapter: 1\n"
    earlier = tmp_path / "fit.yaml"
    earlier.write_text("# Written by `fentsim-calibrate targets=both` (seed=0)\nrelapse_rate: 0.5\n")
    check_own_copy(earlier, "params_file")   # an earlier fit's copy may be replaced


def test_resume_reruns_a_job_whose_data_changed_but_attributes_did_not(sweep, tmp_path):
    sw = copy_sweep(sweep, tmp_path)
    path = sw / "1" / "result.nc"
    with xr.open_dataset(path, engine=ENGINE, decode_times=False) as ds:
        damaged = ds.load()
    damaged["deaths_overdose"] = damaged["deaths_overdose"] * 1.5
    write_dataset(damaged, path)   # attributes (config hash) intact, data not
    proc = cli("fentsim", "-m", "scenario=baseline,naloxone_up", SHORT, f"hydra.sweep.dir={sw}",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "job 2 of 2: skipped" not in proc.stdout + proc.stderr
    with xr.open_dataset(sw / "sweep.nc", engine=ENGINE, decode_times=False) as new, \
            xr.open_dataset(sweep / "sweep.nc", engine=ENGINE, decode_times=False) as old:
        np.testing.assert_array_equal(new["deaths_overdose"].values, old["deaths_overdose"].values)


def test_aggregate_marks_a_damaged_job_failed(sweep, tmp_path):
    sw = copy_sweep(sweep, tmp_path)
    path = sw / "1" / "result.nc"
    with xr.open_dataset(path, engine=ENGINE, decode_times=False) as ds:
        damaged = ds.load()
    damaged["deaths_overdose"].loc[{"year": slice(2020, 2022)}] = np.nan
    write_dataset(damaged, path)
    (path.parent / ".result.nc.sha256").unlink()   # no checksum: the NaN check alone decides
    proc = cli("fentsim-aggregate", sw, "--no-report", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "damaged result: deaths_overdose is NaN" in proc.stdout


@pytest.mark.parametrize("name", ["fentsim.log", ".hydra"])
def test_run_never_writes_through_a_symlink(tmp_path, name):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "victim.txt"
    victim.write_text("precious\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / name).symlink_to(victim if name.endswith(".log") else elsewhere)
    one_line_refusal(cli("fentsim", SHORT, f"hydra.run.dir={run_dir}", cwd=tmp_path),
                     "symbolic link")
    assert victim.read_text() == "precious\n" and sorted(p.name for p in elsewhere.iterdir()) == ["victim.txt"]


def test_aggregate_never_writes_through_a_symlinked_sweep_file(sweep, tmp_path):
    sw = copy_sweep(sweep, tmp_path)
    victim = tmp_path / "victim.nc"
    victim.write_text("precious\n")
    (sw / "sweep.nc").unlink()
    (sw / "sweep.nc").symlink_to(victim)
    one_line_refusal(cli("fentsim-aggregate", sw, cwd=tmp_path), "symbolic link")
    assert victim.read_text() == "precious\n"


def test_sweep_never_deletes_through_a_symlinked_job_folder(sweep, tmp_path):
    sw = copy_sweep(sweep, tmp_path)
    outside = tmp_path / "outside"
    shutil.move(str(sw / "1"), outside)
    (sw / "1").symlink_to(outside)
    proc = cli("fentsim", "-m", "scenario=baseline,naloxone_up", SHORT, f"hydra.sweep.dir={sw}",
               cwd=tmp_path)
    one_line_refusal(proc, "hydra.sweep.dir", "symbolic link")
    assert (outside / "result.nc").is_file()


# --- mis-pairing --------------------------------------------------------------------------------

def with_ids(ds: xr.Dataset, ids) -> xr.Dataset:
    return ds.assign_coords(draw_id=("draw", np.asarray(ids)))


def test_the_same_draws_in_another_order_are_paired_by_identity(tmp_path):
    a = with_ids(known(1000, draws=4), ["p:0", "p:1", "p:2", "p:3"])
    b = a.isel(draw=[2, 0, 3, 1])   # the same ensemble, shuffled
    for cmp in (compare(a, b, window=W), sim.compare(a, b, window=W), sim.compare(b, a, window=W)):
        assert np.all(cmp["deaths_averted"].values == 0)
    write_dataset(a, tmp_path / "a.nc")
    write_dataset(b, tmp_path / "b.nc")
    proc = cli("fentsim-compare", "a.nc", "b.nc", "--window", 2020, 2030, "--output", "c.nc", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with xr.open_dataset(tmp_path / "c.nc", engine=ENGINE) as cmp:
        assert np.all(cmp["deaths_averted"].values == 0)
    with pytest.raises(InputError, match=r"^draw_id: A and B hold different parameter draws"):
        compare(a, with_ids(known(1000, draws=4), ["p:0", "p:1", "p:2", "p:9"]), window=W)


def test_nan_in_compared_cells_is_refused_with_variable_and_count():
    a, b = known(900), known(1000)
    a["deaths_overdose"].loc[{"year": 2021}] = np.nan
    with pytest.raises(InputError, match=r"^A: deaths_overdose over 2020-2030 is NaN in 2 of 2"):
        compare(a, b, window=W)
    b2 = known(1000)
    b2["arrivals"].loc[{"year": 2025}] = np.nan
    with pytest.raises(InputError, match=r"^B: arrivals over 2020-2030 is NaN in 2 of 2"):
        compare(known(900), b2, window=W)


def test_compare_of_a_funded_run_with_itself_says_not_applicable():
    a = known(900)
    a["funding_spending"] = xr.DataArray(np.full(a.sizes["year"], 5e6), dims="year",
                                         attrs={"units": "US$/yr"})
    cmp = sim.compare(a, a, window=W)
    assert "deaths_averted_per_million" not in cmp
    assert cmp.attrs["money"].startswith("not applicable")
    assert all(np.isfinite(cmp[v].values).all() for v in cmp.data_vars)


def test_unpaired_comparison_is_explicit_and_says_so(tmp_path):
    a = with_ids(known(900, draws=3), ["p:0", "p:1", "p:2"])
    b = with_ids(known(1000, draws=2), ["q:0", "q:1"])
    with pytest.raises(InputError, match="--unpaired"):
        compare(a, b, window=W)
    cmp = sim.compare(a, b, paired=False, window=W)
    assert cmp.attrs["paired"] == 0 and cmp.attrs["pairing"].startswith("unpaired")
    assert cmp.sizes["draw"] == 6        # every pair of A's 3 and B's 2 draws
    assert ",unpaired," in comparison_csv_text(cmp)
    write_dataset(a, tmp_path / "a.nc")
    write_dataset(b, tmp_path / "b.nc")
    proc = cli("fentsim-compare", "a.nc", "b.nc", "--window", 2020, 2030, "--unpaired", cwd=tmp_path)
    assert proc.returncode == 0 and "unpaired: independent quantiles" in proc.stdout, proc.stderr


def test_comparison_columns_name_the_variable_and_scenarios():
    a = known(900).assign_coords(scenario="naloxone_up")
    b = known(1000).assign_coords(scenario="baseline")
    cmp = compare(a, b, window=W, variable="deaths_synthetic")
    assert "deaths_synthetic_a" in cmp and "deaths_a" not in cmp
    assert "naloxone_up" in cmp["deaths_synthetic_a"].attrs["long_name"]
    rows = comparison_csv_text(cmp).splitlines()
    assert rows[0].startswith("a,b,variable,metric")
    assert rows[1].startswith("naloxone_up,baseline,deaths_synthetic,deaths_synthetic_a,")


# --- bad posterior files ---------------------------------------------------------------------

def posterior_variant(tmp_path: Path, how: str) -> Path:
    lines = POSTERIOR.read_text().splitlines()
    comments = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#")][:6]
    header, row = body[0], body[1].split(",")
    if how in ("nan", "inf", "bounds"):
        row[2] = {"nan": "nan", "inf": "inf", "bounds": "1e9"}[how]
        body[1] = ",".join(row)
    elif how == "header twice":
        body.insert(3, header)
    elif how == "extra value":
        body[2] += ",7"
    path = tmp_path / f"{how.replace(' ', '_')}.csv"
    path.write_text("\n".join(comments + body) + "\n")
    return path


@pytest.mark.parametrize("how,message", [
    ("nan", r"line \d+, column \w+: value nan not allowed; allowed: a finite number in"),
    ("inf", r"line \d+, column \w+: value inf not allowed"),
    ("bounds", r"line \d+, column \w+: value 1000000000.0 not allowed; allowed: a finite number in"),
    ("header twice", r"line \d+ repeats the header"),
    ("extra value", r"line \d+ has \d+ value\(s\), the header \d+"),
])
def test_bad_posterior_files_are_refused_naming_row_and_column(tmp_path, how, message):
    path = posterior_variant(tmp_path, how)
    with pytest.raises(InputError, match=r"^ensemble\.file: value .*: " + message):
        ensemble_of(ModelParameters(), {"name": "posterior", "size": 2, "seed": 0, "file": str(path)})
    ok = posterior_variant(tmp_path, "none")   # the same file untouched is accepted
    assert ensemble_of(ModelParameters(), {"name": "posterior", "size": 2, "seed": 0,
                                           "file": str(ok)}).size == 2


# --- settings that do nothing, silently --------------------------------------------------------

@pytest.mark.parametrize("overrides,words", [
    (["levers.naloxone_kits.start=2020", "levers.naloxone_kits.level=2",
      "levers.naloxone_kits.ramp=1e308"], ["levers.naloxone_kits.ramp", "1e+308"]),
    (["levers.test_strips.start=2020", "levers.test_strips.level=3",
      "levers.test_strips.mode=scale"], ["levers.test_strips.mode", "scale", "mode set"]),
    (["levers.prevention.start=2020", "levers.prevention.level=0.5",
      "levers.prevention.mode=scale"], ["levers.prevention.mode", "scale"]),
    (["funding.total_usd_per_year=null"], ["funding.total_usd_per_year", "None", ">= 0"]),
    (["funding.total_usd_per_year=''"], ["funding.total_usd_per_year", "''"]),
    (["~params.relapse_rate"], ["params.relapse_rate", "deleting"]),
], ids=["ramp", "scale-test-strips", "scale-prevention", "funding-null", "funding-empty",
        "delete-param"])
def test_settings_that_would_do_nothing_are_refused(tmp_path, overrides, words):
    proc = cli("fentsim", *overrides, SHORT, f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    one_line_refusal(proc, *words)
    assert not (tmp_path / "r" / "result.nc").exists()


def test_zero_intensity_warns_in_one_line_and_runs(tmp_path):
    proc = cli("fentsim", "scenario=naloxone_up", "scenario.intensity=0", SHORT,
               f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sum("scenario.intensity=0" in ln for ln in (proc.stdout + proc.stderr).splitlines()) == 1
    assert (tmp_path / "r" / "result.nc").is_file()


# --- path escapes and shared files ---------------------------------------------------------------

@pytest.mark.parametrize("override,words", [
    ("hydra.job.name=../../escaped", ["hydra.job.name", "../../escaped"]),
    ("hydra.output_subdir=../../escaped", ["hydra.output_subdir", "../../escaped"]),
    ("+hydra.callbacks.x={_target_:builtins.open,file:VICTIM,mode:w}",
     ["hydra.callbacks.x._target_", "builtins.open", "sim.cli.sweep.AggregateSweep"]),
    ("hydra.launcher._target_=shutil.copyfile", ["hydra.launcher._target_", "shutil.copyfile"]),
    ("hydra.job_logging.handlers.file.filename=VICTIM", ["hydra.job_logging.handlers.file.filename"]),
], ids=["job-name", "output-subdir", "callback", "launcher", "log-file"])
def test_configs_cannot_write_outside_the_run_folder(tmp_path, override, words):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    proc = cli("fentsim", override.replace("VICTIM", str(victim)), SHORT, cwd=work)
    one_line_refusal(proc, *words)
    assert victim.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "victim.txt"]
    assert not list(work.rglob("*"))     # nothing written for a refused command


def test_an_experiment_file_cannot_run_code(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "gift.yaml").write_text(
        "# @package _global_\nhydra:\n  callbacks:\n    gift:\n      _target_: builtins.open\n"
        f"      file: {victim}\n      mode: w\n")
    env = {**os.environ, "FENTSIM_EXPERIMENTS": str(folder)}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run([str(BIN / "fentsim"), "experiment=gift", SHORT], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)
    one_line_refusal(proc, "builtins.open")
    assert victim.read_text() == "precious\n"


def test_errors_never_echo_a_file_they_could_not_use(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:TOPSECRET:19000:0:99999:7:::\n")
    with pytest.raises(InputError) as info:
        ensemble_of(ModelParameters(), {"name": "posterior", "size": 1, "seed": 0,
                                        "file": str(secret)})
    assert "TOPSECRET" not in str(info.value)
    # the same file named by a crafted result.nc, through fentsim-rerun
    crafted = known(900)
    crafted.attrs["config"] = (f"ensemble: {{name: posterior, size: 1, seed: 0, file: {secret}}}\n")
    write_dataset(crafted, tmp_path / "crafted.nc")
    proc = cli("fentsim-rerun", "crafted.nc", cwd=tmp_path)
    assert proc.returncode == 2 and "TOPSECRET" not in proc.stdout + proc.stderr, proc.stderr


def test_warm_start_must_be_a_params_file(tmp_path):
    from sim.calibrate.fit import warm_start_point

    other = tmp_path / "passwd"
    other.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(InputError, match=r"^calibration\.warm_start: value .* not a readable "
                                         r"params YAML") as info:
        warm_start_point(None, other)
    assert "root:x" not in str(info.value)


# --- unvalidated settings ---------------------------------------------------------------------

@pytest.mark.parametrize("key,value", [("seed", -1), ("max_nfev", 0), ("diff_step", 0)])
def test_calibration_settings_are_checked(key, value):
    from sim.calibrate.fit import calibration_options

    with pytest.raises(InputError, match=rf"^calibration\.{key}: value {value} not allowed"):
        calibration_options({key: value})


def test_backtest_refuses_zero_draws_before_fitting(tmp_path):
    proc = cli("fentsim-backtest", "draws=0", f"hydra.run.dir={tmp_path / 'b'}", cwd=tmp_path,
               timeout=60)
    one_line_refusal(proc, "draws", ">= 1")


def test_python_sweep_refuses_duplicate_values():
    with pytest.raises(InputError, match=r"^grid\.scenario\.intensity: value 0\.5 given twice"):
        sim.sweep({"scenario.intensity": [0.5, 0.50]}, overrides=[SHORT])


@pytest.mark.parametrize("window", [(2020.5, 2030), (2020, 2030.9), (True, 2030), ("2020", 2030)])
def test_compare_window_must_be_whole_years(window):
    with pytest.raises(InputError, match=r"^window: value .* allowed: two whole years"):
        compare(known(900), known(1000), window=window)


# --- tracebacks instead of one line ------------------------------------------------------------

@pytest.mark.parametrize("override,words", [
    ("params.relapse_rate=${oops}", ["params.relapse_rate", "oops"]),
    ("params.relapse_rate=${oc.env:FENTSIM_NOT_SET}", ["params.relapse_rate", "FENTSIM_NOT_SET"]),
    ("=2", ["'=2'", "KEY=VALUE"]),
    ("+hydra.callbacks.x={_target_:not.a.module.Thing}", ["hydra.callbacks.x._target_"]),
    ("hydra.launcher._target_=not.a.Launcher", ["hydra.launcher._target_"]),
], ids=["interpolation", "env", "empty-key", "callback", "launcher"])
def test_bad_overrides_are_one_line(tmp_path, override, words):
    one_line_refusal(cli("fentsim", override, SHORT, cwd=tmp_path), *words)
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.nc"))


def test_compare_api_bad_arguments_are_input_errors():
    a = known(900)
    with pytest.raises(InputError, match=r"^A: value of type NoneType not allowed"):
        sim.compare(None, a, window=W)
    with pytest.raises(InputError, match=r"^B: value of type str not allowed"):
        sim.compare(a, "b.nc", window=W)
    a["deaths_series"] = xr.DataArray(np.zeros(3), dims="time")
    with pytest.raises(InputError, match=r"^variable: value 'deaths_series' is not annual in A"):
        sim.compare(a, a, window=W, variable="deaths_series")
    with pytest.raises(InputError, match=r"^variable: value 'arrivals' not allowed"):
        sim.compare(a, a, window=W, variable="arrivals")


# --- sweeps (issue 24 items 3, 8) ----------------------------------------------------------------

def test_sweep_with_baseline_writes_its_report_and_records_its_command(sweep):
    for name in ("comparison.nc", "comparison.csv", "deaths_averted.png", "deaths_by_scenario.png"):
        assert (sweep / name).is_file(), name
    with xr.open_dataset(sweep / "sweep.nc", engine=ENGINE, decode_times=False) as ds:
        assert ds.attrs["sweep_command"].startswith(
            f"fentsim -m scenario=baseline,naloxone_up {SHORT} hydra.sweep.dir=")
        assert ds.attrs["history"].splitlines()[0].endswith(ds.attrs["sweep_command"])


def test_rerun_redoes_a_sweep_from_its_folder_or_file(sweep, tmp_path):
    sw = copy_sweep(sweep, tmp_path)
    for target in (sw, sw / "sweep.nc"):
        proc = cli("fentsim-rerun", target, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "job 0: identical" in proc.stdout and "job 1: identical" in proc.stdout
    with xr.open_dataset(sw / "sweep.nc", engine=ENGINE, decode_times=False) as ds:
        changed = ds.load()
    changed["deaths_overdose"] = changed["deaths_overdose"] * (1 + 1e-9)
    write_dataset(changed, sw / "sweep.nc")
    proc = cli("fentsim-rerun", sw, cwd=tmp_path)
    assert proc.returncode == 1 and "DIFFERENT deaths_overdose" in proc.stdout


def test_aggregate_refuses_a_folder_that_is_not_a_sweep(tmp_path):
    run_dir = tmp_path / "runs"
    proc = cli("fentsim", SHORT, f"hydra.run.dir={run_dir / 'one'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for folder in (run_dir / "one", run_dir, tmp_path):
        one_line_refusal(cli("fentsim-aggregate", folder, cwd=tmp_path), "not a sweep")
    assert not list(tmp_path.rglob("sweep.nc"))


def test_sweep_lock_is_an_os_lock(tmp_path):
    from filelock import FileLock

    from sim.cli.sweep import LOCK_FILENAME, acquire_lock, release_lock

    held = FileLock(str(tmp_path / LOCK_FILENAME))
    held.acquire()
    with pytest.raises(InputError, match="in use by another running sweep"):
        acquire_lock(tmp_path)
    held.release()
    (tmp_path / LOCK_FILENAME).write_text("stale lock of a killed sweep")   # no live holder
    lock = acquire_lock(tmp_path)
    release_lock(lock)


# --- a user who cannot write where the code lives ----------------------------------------------

def test_numba_cache_folder_follows_the_model_sources(tmp_path):
    """The compiled kernel inlines sim/model/flows.py, which numba's own cache key ignores: the
    cache folder is named by a digest of sim/model and sim/engine, so an edited equation compiles
    afresh (and going back finds the old folder); other code leaves it alone; a user's own
    NUMBA_CACHE_DIR is kept."""
    from sim.numba_cache import COMPILED_SOURCES, source_digest
    pkg = tmp_path / "sim"
    for folder in COMPILED_SOURCES:
        shutil.copytree(REPO / "sim" / folder, pkg / folder, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_digest(pkg)
    assert before == source_digest(REPO / "sim")
    flows = pkg / "model" / "flows.py"
    text = flows.read_text()
    flows.write_text(text.replace("return rate * level * (1.0 - level)",
                                  "return rate * level * (1.0 - level) * 1.0"))
    assert source_digest(pkg) != before
    flows.write_text(text)
    (pkg / "cli").mkdir()
    (pkg / "cli" / "extra.py").write_text("x = 1\n")
    assert source_digest(pkg) == before
    code = ("from sim.numba_cache import configure_cache, source_digest; import os; "
            "print(configure_cache()); print(os.environ['NUMBA_CACHE_DIR']); print(source_digest())")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.split()
    assert out[0] == out[1] and Path(out[1]).name == out[2]
    mine = str(tmp_path / "mine")
    out = subprocess.run([sys.executable, "-c", code], env={**env, "NUMBA_CACHE_DIR": mine},
                         capture_output=True, text=True, cwd=REPO, check=True).stdout.split()
    assert out[:2] == ["None", mine]


def test_unused_numba_cache_folders_are_pruned(tmp_path):
    """Digest folders unused for KEEP_DAYS go; recent ones, the current one and other names stay."""
    from sim.numba_cache import KEEP_DAYS, prune_unused
    old, recent, other = (tmp_path / "0123456789abcdef", tmp_path / "fedcba9876543210",
                          tmp_path / "keep-me-0123456")
    current = tmp_path / "00000000000000aa"
    for folder in (old, recent, other, current):
        folder.mkdir()
        (folder / "index.nbi").write_text("x")
    long_ago = time.time() - (KEEP_DAYS + 1) * 86400.0
    for folder in (old, other, current):
        os.utime(folder, (long_ago, long_ago))
    assert prune_unused(tmp_path, current) == [old]
    assert not old.exists() and recent.exists() and other.exists() and current.exists()
    assert current.stat().st_mtime > long_ago + 86400.0      # marked as used now


def test_numba_cache_works_for_a_user_without_home_on_a_read_only_install(tmp_path):
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("needs root to create an unprivileged user (useradd)")
    user = "fentsimtest"
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", user], check=True)
    python = "/usr/bin/python3"   # the venv's interpreter may sit in root's home: the system one
    site = Path(np.__file__).resolve().parents[1]
    if not os.access(python, os.X_OK) or sys.version_info[:2] != (3, 11):
        pytest.skip("needs /usr/bin/python3 of the same minor version as the venv")
    scratch = Path(tempfile.mkdtemp(prefix="fentsim-user-"))
    scratch.chmod(0o1777)
    ctl = scratch / "ctl.py"
    ctl.write_text("import numba\n@numba.njit(cache=True)\ndef f(x):\n    return x + 1\nprint(f(1))\n")
    ctl.chmod(0o644)
    scratch_ro = scratch / "ro"
    scratch_ro.mkdir()
    shutil.move(str(ctl), scratch_ro / "ctl.py")
    env = ["env", "-i", "HOME=/nonexistent", "PATH=/usr/bin:/bin", f"TMPDIR={scratch}",
           f"PYTHONPATH={REPO}:{site}"]
    try:
        control = subprocess.run(["su", user, "-s", "/bin/sh", "-c",
                                  " ".join(env + [python, str(scratch_ro / "ctl.py")])],
                                 capture_output=True, text=True, timeout=120, cwd="/")
        assert "no locator available" in control.stderr   # the environment reproduces the bug
        code = ("import os; from sim.model.flows import us_population; "
                "print(us_population(2015.0)); print(os.environ['NUMBA_CACHE_DIR'])")
        proc = subprocess.run(["su", user, "-s", "/bin/sh", "-c",
                               " ".join(env + [python, "-c", f'"{code}"'])],
                              capture_output=True, text=True, timeout=300, cwd="/")
        assert proc.returncode == 0, proc.stderr[-2000:]
        value, folder = proc.stdout.split()
        assert float(value) > 3e8 and folder.startswith(str(scratch))
        assert any(Path(folder).rglob("*.nbi"))   # numba cached it there
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
