"""Results you can trust (issue 14): draws paired by identity, content-aware resume, results checked
against their job folders, complete reruns, resource estimates before work, and faults (full or
read-only disk, a crashing job, Ctrl-C, two sweeps in one folder) that end with one line, a
non-zero exit and no partial file.

Most cases run in-process (Hydra's entry point called with sys.argv) to keep the suite fast; the
faults that need a process of their own (a full disk, Ctrl-C, an unusable run folder) run the real
command.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from sim.calibrate.ensemble import DRAW_ID_ATTRS, ensemble_of, posterior_path
from sim.cli.main import EXIT_INTERRUPTED, EXIT_USER_ERROR
from sim.config import MEMORY_ENV, build_run
from sim.engine.solver import SolverSettings
from sim.errors import InputError
from sim.results.io import open_result, write_dataset
from sim.hydra_compose import parse_override
from sim.sweeps.aggregate import check_duplicates
from sim.sweeps.compare import compare, select
from sim.sweeps.resume import identity_attrs
from tests.test_bad_input import check_overrides
from tests.test_cli import BIN

END = 2028   # scenarios start in 2026
SETTINGS = SolverSettings(end_year=END, output_step=1.0)


# --- helpers ------------------------------------------------------------------------------------

def result_of(ensemble_cfg: dict, scenario: dict | None = None) -> xr.Dataset:
    """A result as `fentsim` writes it (draw identities, identity attrs), built in-process."""
    cfg = {"ensemble": ensemble_cfg, "solver": {"end_year": END, "output_step": 1.0},
           "levers": scenario or {}}
    run = build_run(cfg)
    ensemble = ensemble_of(run.params, run.ensemble)
    ds = run.simulate(ensemble, cfg)
    ds = ds.assign_coords(draw_id=("draw", ensemble.ids(), DRAW_ID_ATTRS))
    ds.attrs.update(identity_attrs(cfg, ensemble.inputs))
    return ds


NALOXONE = {"naloxone_kits": {"start": 2020, "ramp": 1.0, "level": 2.0, "mode": "scale"}}


@pytest.fixture(scope="module")
def results():
    """Posterior draws (3, seed 0), the same with naloxone doubled, and 3 bootstrap draws."""
    return {"posterior": result_of({"name": "posterior", "size": 3}),
            "naloxone": result_of({"name": "posterior", "size": 3}, NALOXONE),
            "bootstrap": result_of({"name": "posterior_bootstrap", "size": 3})}


def run_main(monkeypatch, *argv: str) -> int:
    """`fentsim ARGV` in-process; the exit status (0 if it returns)."""
    from sim.cli.main import main
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")   # restored after the test (main sets it to 1)
    monkeypatch.setenv("FENTSIM_DEBUG", "0")
    monkeypatch.setattr(sys, "argv", ["fentsim", *argv])
    try:
        main()
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def one_line(err: str, start: str) -> None:
    assert err.startswith(start) and err.count("\n") == 1 and "Traceback" not in err, err


# --- silent wrong answers: draws paired by identity ----------------------------------------------

def test_compare_pairs_draws_by_identity(results):
    cmp = compare(results["naloxone"], results["posterior"], window=(2020, 2022))
    assert cmp.attrs["pairing"] == "draws paired by draw identity (draw_id)"
    assert (cmp.deaths_averted.sel(draw=slice(None)) > 0).all()
    np.testing.assert_array_equal(cmp.draw_id.values, results["posterior"].draw_id.values)
    # the same number of draws from another ensemble (bootstrap) is refused, not paired by index
    with pytest.raises(InputError, match=r"^draw_id: A and B hold different parameter draws"):
        compare(results["naloxone"], results["bootstrap"], window=(2020, 2022))


def test_compare_refuses_a_single_draw_against_many(results):
    one = select(results["naloxone"], {"draw": 1})
    with pytest.raises(InputError, match=r"^draw: B has 3 draw\(s\), A has no draw dimension"):
        compare(one, results["posterior"], window=(2020, 2022))
    # the same draw selected on both sides is a paired, deterministic comparison
    cmp = compare(one, select(results["posterior"], {"draw": 1}), window=(2020, 2022))
    assert "draw" not in cmp.dims and float(cmp.deaths_averted) > 0


def test_compare_refuses_one_side_without_identities(results):
    bare = results["posterior"].drop_vars("draw_id")
    with pytest.raises(InputError, match=r"^draw_id: B has no draw identities"):
        compare(results["naloxone"], bare, window=(2020, 2022))


def test_compare_cli_refuses_other_ensemble_and_select_one_side(results, tmp_path, capsys):
    from sim.cli.compare import main as compare_main
    for name in ("naloxone", "bootstrap", "posterior"):
        write_dataset(results[name], tmp_path / f"{name}.nc")
    before = sorted(os.listdir(tmp_path))
    for args, message in [
        (["naloxone.nc", "bootstrap.nc", "--window", "2020", "2022"], "fentsim-compare: error: draw_id: A and B hold different"),
        (["naloxone.nc", "posterior.nc", "--window", "2020", "2022", "--select", "draw=1"],
         "fentsim-compare: error: draw: B has 3 draw(s), A has no draw dimension")]:
        with pytest.raises(SystemExit) as stop:
            compare_main([str(tmp_path / a) if a.endswith(".nc") else a for a in args])
        assert stop.value.code == EXIT_USER_ERROR
        one_line(capsys.readouterr().err, message)
    assert sorted(os.listdir(tmp_path)) == before


def test_compare_refuses_all_nan_and_decreasing_years(results):
    a, b = results["naloxone"], results["posterior"]
    nan = a.copy(deep=True)
    nan["deaths_overdose"][:] = np.nan
    with pytest.raises(InputError, match=r"^A: deaths_overdose over 2020-2022 is NaN in \d+ of"):
        compare(nan, b, window=(2020, 2022))
    with pytest.raises(InputError, match=r"^B: deaths_overdose over 2020-2022 is NaN"):
        compare(a, nan, window=(2020, 2022))
    some = a.copy(deep=True)
    some["deaths_overdose"][int(np.flatnonzero(a.year.values == 2022)[0]), 0] = np.nan   # in the window
    with pytest.raises(InputError, match=r"^A: deaths_overdose over 2020-2022 is NaN in 1 of"):
        compare(some, b, window=(2020, 2022))
    reversed_years = a.isel(year=slice(None, None, -1))
    with pytest.raises(InputError, match=r"^A: coordinate 'year' is not strictly increasing"):
        compare(reversed_years, b, window=(2020, 2022))


# --- resume: the key covers the draws file's content ---------------------------------------------

def test_resume_key_covers_the_draws_file(tmp_path, monkeypatch, capsys):
    draws = tmp_path / "draws.csv"
    draws.write_bytes(posterior_path(None).read_bytes())
    command = ["-m", "scenario=baseline", "ensemble=posterior", "ensemble.size=2",
               f"ensemble.file={draws}", f"solver.end_year={END}", "solver.output_step=1.0",
               f"hydra.sweep.dir={tmp_path / 's'}"]
    assert run_main(monkeypatch, *command) == 0
    first = open_result(tmp_path / "s" / "0" / "result.nc")
    assert run_main(monkeypatch, *command) == 0
    assert "skipped:" in capsys.readouterr().out            # unchanged: resumed
    lines = draws.read_text().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    rows = [line.split(",") for line in lines if line and not line.startswith("#")]
    col = rows[0].index("heroin_cost_change")
    for row in rows[1:]:
        row[col] = repr(float(row[col]) * 1.01)
    draws.write_text("\n".join(comments + [",".join(r) for r in rows]) + "\n")
    assert run_main(monkeypatch, *command) == 0
    out = capsys.readouterr().out
    assert "skipped:" not in out and "wrote" in out            # the file changed: run again
    second = open_result(tmp_path / "s" / "0" / "result.nc")
    assert first.attrs["config_sha256"] != second.attrs["config_sha256"]
    assert set(first.draw_id.values).isdisjoint(second.draw_id.values)


# --- aggregate: results checked against their job folders ---------------------------------------

def test_aggregate_refuses_results_swapped_between_job_folders(tmp_path, monkeypatch, capsys):
    from sim.cli.sweep import aggregate_main
    sweep = tmp_path / "s"
    assert run_main(monkeypatch, "-m", "scenario=baseline,naloxone_up", f"solver.end_year={END}",
                    "solver.output_step=1.0", f"hydra.sweep.dir={sweep}") == 0
    capsys.readouterr()
    a, b = sweep / "0" / "result.nc", sweep / "1" / "result.nc"
    own_a, own_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(own_b)
    b.write_bytes(own_a)
    with pytest.raises(SystemExit) as stop:
        aggregate_main([str(sweep)])
    out = capsys.readouterr()
    assert stop.value.code == EXIT_USER_ERROR   # no job has its own result: nothing combined
    one_line(out.err, "fentsim-aggregate: error: sweep directory")
    assert "another config than this job's" in out.err
    a.write_bytes(own_a)   # 0 holds its own result again, 1 a copy of 0's
    b.write_bytes(own_a)
    with pytest.raises(SystemExit) as stop:
        aggregate_main([str(sweep)])
    out = capsys.readouterr().out
    assert stop.value.code == 1 and "1 of 2 job(s) combined" in out
    assert "failed: scenario=naloxone_up" in out and "moved or copied" in out
    ds = open_result(sweep / "sweep.nc")
    assert np.isnan(ds.deaths_overdose.sel(scenario="naloxone_up")).all()


def test_duplicate_sweep_values_are_refused(tmp_path, monkeypatch, capsys):
    assert parse_override("x=5e-1") == parse_override("x=0.50") == ("x", 0.5)
    with pytest.raises(InputError, match=r"^sweep: jobs 0, 1, 2 have the same values"):
        check_duplicates([["x=0.5"], ["x=0.50"], ["x=5e-1"]], parse_override)
    check_duplicates([["x=0.5"], ["x=0.25"]], parse_override)
    code = run_main(monkeypatch, "-m", "params.relapse_rate=0.5,0.50,5e-1",
                    f"hydra.sweep.dir={tmp_path / 's'}")
    assert code == EXIT_USER_ERROR
    one_line(capsys.readouterr().err, "fentsim: error: sweep: jobs 0, 1, 2 have the same values")
    assert not (tmp_path / "s" / "0").exists()


# --- rerun: everything that defines the result ---------------------------------------------------

@pytest.fixture(scope="module")
def rerun_source(tmp_path_factory, results):
    folder = tmp_path_factory.mktemp("rerun")
    ds = results["posterior"].copy()
    ds.attrs["config"] = yaml.safe_dump(yaml.safe_load(ds.attrs["config"]), sort_keys=False)
    return write_dataset(ds, folder / "result.nc")


@pytest.mark.parametrize("damage, line", [
    (lambda ds: ds, None),
    (lambda ds: ds.drop_vars("deaths_heroin"), "DIFFERENT data variable deaths_heroin: missing"),
    (lambda ds: ds.assign_coords(time=ds.time + 100), "DIFFERENT coordinate time: values differ"),
    (lambda ds: ds.drop_vars("draw_id"), "DIFFERENT coordinate draw_id: missing"),
    (lambda ds: ds.assign_attrs(seed=7), "DIFFERENT attribute seed: differs"),
])
def test_rerun_compares_variables_coordinates_and_attrs(rerun_source, tmp_path, capsys, damage,
                                                        line):
    from sim.cli.rerun import main as rerun_main
    path = write_dataset(damage(open_result(rerun_source)), tmp_path / "r.nc")
    code = rerun_main([str(path)])
    out = capsys.readouterr().out
    if line is None:
        assert code == 0 and "DIFFERENT" not in out, out
    else:
        assert code == 1 and line in out, out


def test_rerun_estimates_memory_before_loading(rerun_source, monkeypatch, capsys):
    from sim.cli.rerun import main as rerun_main
    monkeypatch.setenv(MEMORY_ENV, "0.01")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")   # not a traceback, whatever earlier tests left
    monkeypatch.setenv("FENTSIM_DEBUG", "0")
    assert rerun_main([str(rerun_source)]) == EXIT_USER_ERROR
    one_line(capsys.readouterr().err, "fentsim-rerun: error: re-running 3 draw(s)")


# --- resources ----------------------------------------------------------------------------------

def test_memory_budget_is_checked_before_running(monkeypatch):
    monkeypatch.setenv(MEMORY_ENV, "20")
    big = ["solver.end_year=2035", "ensemble=posterior", "ensemble.size=512"]
    line = check_overrides(big)
    assert line.startswith("solver.output_step 0.0833333 yr (313 output times) with 512 draw(s) "
                           "per batch needs about") and "above the limit of 20.0 MB" in line, line
    assert "ensemble.chunk_size" in line
    with pytest.raises(AssertionError, match="accepted"):   # chunks fit the budget
        check_overrides([*big, "ensemble.chunk_size=64"])
    monkeypatch.setenv(MEMORY_ENV, "lots")
    assert check_overrides([]).startswith(f"{MEMORY_ENV}: value 'lots' not allowed")


def test_disk_space_is_checked_before_running(monkeypatch, tmp_path):
    from sim.cli.main import validate_job
    monkeypatch.setenv(MEMORY_ENV, "1e12")
    cfg = {"ensemble": {"name": "posterior_bootstrap", "size": 10**11, "seed": 0,
                        "chunk_size": 10000}, "solver": {"output_step": 1.0}}
    with pytest.raises(InputError, match=r"^ensemble.size 100,000,000,000 .* would write about "
                                         r"[\d.,]+ [TP]B to .*, where .* is free"):
        validate_job(cfg, tmp_path)


# --- faults -------------------------------------------------------------------------------------

@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str, *options: str):
    """A real small (or read-only) file system at `folder` (needs root), unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (mount -t tmpfs -o size=...)")
    opts = ",".join([f"size={size}", *options])
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


FULL_DISK_SCRIPT = """
import sys
import numpy as np
import sim
from sim.calibrate.ensemble import ensemble_of
from sim.engine.solver import SolverSettings
from sim.errors import InputError
from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters
from sim.results.io import write_dataset
from sim.sweeps.chunked import run_chunked
import sim.results.io
folder = sys.argv[1]
settings = SolverSettings(end_year=2030)
ds = sim.simulate(settings=settings)
try:  # refused before HDF5 writes anything
    write_dataset(ds, folder + "/result.nc")
except InputError as exc:
    print(exc)
check = sim.results.io.ensure_space
sim.results.io.ensure_space = lambda path, n: None   # as if another process filled the disk
try:  # HDF5 meets the full disk: still one line, and no crash at exit
    write_dataset(ds, folder + "/result.nc")
except InputError as exc:
    print(exc)
sim.results.io.ensure_space = check
ens = ensemble_of(ModelParameters(), {"name": "posterior_bootstrap", "size": 40, "chunk_size": 10})
try:
    run_chunked(ens.params_for, ens.draws, 10, LeverSet.from_mapping({}), settings,
                folder + "/chunked.nc", progress=None, ids_for=ens.ids)
except InputError as exc:
    print(exc)
"""


def test_full_disk_is_one_line_no_crash_no_file(tmp_path, monkeypatch, capsys):
    with small_tmpfs(tmp_path / "full", "64k") as full:
        env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
        proc = subprocess.run([sys.executable, "-c", FULL_DISK_SCRIPT, str(full)],
                              capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])  # 139 = segfault
        lines = proc.stdout.strip().splitlines()
        assert len(lines) == 3, proc.stdout
        for line, name in zip(lines, ("result.nc", "result.nc", "chunked.nc")):
            assert line.startswith(f"output file '{full}/{name}': cannot write (No space left on "
                                   f"device"), line
        assert not proc.stderr.strip(), proc.stderr[-2000:]
        assert os.listdir(full) == []            # no result, no temporary file
        # the command refuses up front: the estimated file does not fit
        code = run_main(monkeypatch, f"hydra.run.dir={full}/run", "solver.end_year=2030")
        assert code == EXIT_USER_ERROR
        err = capsys.readouterr().err
        one_line(err, "fentsim: error: ensemble.size 1 (this job: 1 draw(s))")
        assert "would write about" in err
        assert not (full / "run").exists()   # a rejected input leaves nothing, not even .hydra/


def test_unusable_run_folder_is_one_line(tmp_path, monkeypatch, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert run_main(monkeypatch, f"hydra.run.dir={afile}", "solver.end_year=2012") == EXIT_USER_ERROR
    one_line(capsys.readouterr().err,
             f"fentsim: error: hydra.run.dir: cannot write '{afile}' (File exists)")
    with small_tmpfs(tmp_path / "ro", "64k", "ro") as ro:
        code = run_main(monkeypatch, f"hydra.run.dir={ro}/run", "solver.end_year=2012")
        assert code == EXIT_USER_ERROR
        one_line(capsys.readouterr().err, f"fentsim: error: hydra.run.dir: cannot write "
                                          f"'{ro}/run' (Read-only file system)")


def test_params_null_is_one_line(tmp_path, monkeypatch, capsys):
    code = run_main(monkeypatch, "params=null", f"hydra.run.dir={tmp_path / 'o'}")
    assert code == EXIT_USER_ERROR
    err = capsys.readouterr().err
    one_line(err, "fentsim: error: params: value null not allowed")
    assert "calibrated" in err


def test_ctrl_c_is_one_line_exit_130_no_file(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"},
           "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "o"
    # the child gets Ctrl-C as at a terminal: a suite started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt (the run finished with exit 0 in two fresh clones started that way)
    proc = subprocess.Popen([str(BIN / "fentsim"), f"hydra.run.dir={out}", "ensemble=large",
                             "ensemble.size=40000", "ensemble.chunk_size=500", "solver.end_year=2015"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in proc.stdout:
            if line.startswith("ensemble: draws"):   # the first chunk is written: mid-run now
                proc.send_signal(signal.SIGINT)
                break
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert err == "fentsim: interrupted\n", err
    assert not [p for p in out.iterdir() if p.suffix in (".nc", ".tmp")]


def _children(pid: int) -> list[int]:
    proc = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in proc.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):   # a zombie is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return True


def test_sigterm_stops_a_joblib_sweep_and_its_workers(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"},
           "PYTHONUNBUFFERED": "1"}
    sweep = tmp_path / "s"
    proc = subprocess.Popen([str(BIN / "fentsim"), "-m", "hydra/launcher=joblib",
                             "hydra.launcher.n_jobs=2", "ensemble.seed=1,2", "ensemble=large",
                             "ensemble.size=40000", "ensemble.chunk_size=500",
                             "solver.end_year=2015", f"hydra.sweep.dir={sweep}"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        # progress of a sweep job goes to its log file (the console has one line a job)
        for _ in range(1200):   # a worker is integrating a chunk (poll, up to 120 s)
            if any("ensemble: draws" in log.read_text(errors="replace")
                   for log in sweep.glob("*/fentsim.log")):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err
    assert err == "fentsim: terminated\n", err
    for _ in range(200):   # workers are stopped, not left running (poll, up to 20 s)
        if not any(_alive(w) for w in workers):
            break
        time.sleep(0.1)
    assert workers and not any(_alive(w) for w in workers)
    assert not list(sweep.glob("*/result.nc")) and lock_is_free(sweep)


def test_failing_job_does_not_stop_the_sweep(tmp_path, monkeypatch, capsys):
    import sim.results.run as cli   # what every run path calls (sim.config.RunConfig.simulate)
    real = cli.simulate

    def crash_for_naloxone(params, levers, settings, **kw):
        if kw["config"]["scenario"]["name"] == "naloxone_up":
            raise RuntimeError("simulated crash\nsecond line")
        return real(params, levers, settings, **kw)

    monkeypatch.setattr(cli, "simulate", crash_for_naloxone)
    sweep = tmp_path / "s"
    code = run_main(monkeypatch, "-m", "scenario=naloxone_up,baseline", f"solver.end_year={END}",
                    "solver.output_step=1.0", f"hydra.sweep.dir={sweep}")
    captured = capsys.readouterr()
    assert code == 1
    assert f"fentsim: error: job 0 (scenario=naloxone_up solver.end_year={END} " \
           "solver.output_step=1.0): RuntimeError: simulated crash\n" in captured.err
    assert "Traceback" not in captured.err
    assert (sweep / "0" / "error.txt").read_text().startswith("RuntimeError: simulated crash")
    assert (sweep / "1" / "result.nc").is_file()         # the next job still ran
    assert "1 of 2 job(s) combined" in captured.out and "failed: scenario=naloxone_up" in captured.out


def test_second_sweep_into_one_folder_is_refused_resume_cleans_up(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "s"
    command = ["-m", "scenario=baseline,prevention", f"solver.end_year={END}",
               "solver.output_step=1.0", f"hydra.sweep.dir={sweep}"]
    assert run_main(monkeypatch, *command) == 0
    before = open_result(sweep / "0" / "result.nc").attrs["config_sha256"]
    capsys.readouterr()
    assert run_main(monkeypatch, *command, "ensemble.seed=1") == EXIT_USER_ERROR
    one_line(capsys.readouterr().err, f"fentsim: error: hydra.sweep.dir: value '{sweep}' already "
                                      f"holds another sweep")
    assert open_result(sweep / "0" / "result.nc").attrs["config_sha256"] == before
    # jobs need folders of their own
    assert run_main(monkeypatch, *command, "hydra.sweep.subdir=.") == EXIT_USER_ERROR
    one_line(capsys.readouterr().err, "fentsim: error: hydra.sweep.subdir: value '.' not allowed")
    # the same sweep again resumes, and removes what killed writes left behind
    for stale in (sweep / "0" / ".result.nc.abc123.tmp", sweep / ".sweep.nc.def456.tmp"):
        stale.write_bytes(b"\x89HDF partial")
    assert run_main(monkeypatch, *command) == 0
    assert capsys.readouterr().out.count("skipped:") == 2
    assert not list(sweep.rglob("*.tmp")) and lock_is_free(sweep)


def lock_is_free(sweep) -> bool:
    """Whether no process holds the sweep folder's lock (the file may stay: an OS lock)."""
    from sim.cli.sweep import acquire_lock, release_lock
    try:
        release_lock(acquire_lock(sweep))
    except InputError:
        return False
    return True


def test_sweep_folder_lock(tmp_path):
    """An OS lock (filelock): a live holder in another process refuses a second sweep; a lock
    file whose holder was killed is no lock at all (the system released it)."""
    from sim.cli.sweep import LOCK_FILENAME, acquire_lock, release_lock
    lock = tmp_path / LOCK_FILENAME
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from filelock import FileLock; "
         "l = FileLock(sys.argv[1]); l.acquire(); print('held', flush=True); time.sleep(60)",
         str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=r"^hydra.sweep.dir: value .* is in use by another "
                                             r"running sweep"):
            acquire_lock(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert lock.exists()                             # left behind by the killed holder
    held = acquire_lock(tmp_path)                    # ... and free: nothing to take over by hand
    release_lock(held)
    release_lock(acquire_lock(tmp_path))             # released: acquired again at once
