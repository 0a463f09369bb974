"""The cluster path on a real SLURM: `hydra/launcher=slurm` sweeps give the same datasets as the
basic launcher, a split ensemble joins bit for bit, and a failed task is reported with its log.

The tests marked `slurm` need a running cluster: the one-node cluster of
`scripts/local-slurm.sh start` (folder $FENTSIM_SLURM_DIR, default /tmp/fentsim-slurm; the tests
use its slurm.conf through SLURM_CONF).  Without it they are skipped, saying why, so the default
`pytest` needs no SLURM; with FENTSIM_SLURM_REQUIRED=1 (as .ci/run sets) a missing cluster is a
failure instead.  Run them with `pytest -m slurm`.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tests.test_chunked_cli import ENSEMBLE, assert_same_ensemble
from tests.test_sweeps import SMALL, load

BIN = Path(sys.executable).parent
SLURM_DIR = Path(os.environ.get("FENTSIM_SLURM_DIR", "/tmp/fentsim-slurm"))
# what a cell of the preset asks for, kept small for the one-node test cluster
LAUNCHER = ("hydra/launcher=slurm", "hydra.launcher.timeout_min=10", "hydra.launcher.mem_gb=2")
# a sweep whose second job fails on input: china_crackdown at intensity 3 takes enforcement to 1.2
FAILING = ("scenario=baseline,china_crackdown", "scenario.intensity=3", *SMALL)
FAILING_MESSAGE = "levers.enforcement_china_finished.level: value 1.2 outside allowed range"


def cluster_problem() -> str | None:
    """Why no local SLURM cluster can be used (None: it answers and its node is up)."""
    conf = SLURM_DIR / "slurm.conf"
    if not conf.is_file():
        return f"no local SLURM cluster ({conf} not found; start one: scripts/local-slurm.sh start)"
    pid_file = SLURM_DIR / "run" / "slurmctld.pid"  # as scripts/local-slurm.sh writes it
    try:
        alive = Path(f"/proc/{int(pid_file.read_text().strip())}").exists()
    except (OSError, ValueError):
        alive = False
    if not alive:
        return f"the local SLURM cluster of {conf} is not running (scripts/local-slurm.sh start)"
    if shutil.which("sinfo") is None:
        return "sinfo not found (SLURM client not installed; scripts/local-slurm.sh start installs it)"
    try:
        proc = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "SLURM_CONF": str(conf)})
    except subprocess.TimeoutExpired:
        return f"the SLURM cluster of {conf} did not answer within 30 s"
    states = proc.stdout.split()
    if proc.returncode != 0 or not {"idle", "mixed", "allocated"} & set(states):
        said = (proc.stderr.strip().splitlines() or states or ["no answer"])[-1]
        return f"the SLURM cluster of {conf} is not up ({said}); scripts/local-slurm.sh start"
    return None


@pytest.fixture(scope="module")
def slurm_env() -> dict[str, str]:
    """The environment for commands run on the local cluster (skip or fail without one)."""
    problem = cluster_problem()
    if problem is not None:
        if os.environ.get("FENTSIM_SLURM_REQUIRED") == "1":
            pytest.fail(f"FENTSIM_SLURM_REQUIRED=1 but {problem}")
        pytest.skip(problem)
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return {**env, "SLURM_CONF": str(SLURM_DIR / "slurm.conf")}


def run(command: str, *args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: int = 300) -> subprocess.CompletedProcess:
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([str(BIN / command), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def assert_quiet(proc: subprocess.CompletedProcess) -> None:
    """No per-poll sacct noise from submitit on a cluster without accounting."""
    out = proc.stdout + proc.stderr
    assert "Bypassing sacct error" not in out and "Traceback" not in out, out
    assert out.count("Slurm accounting storage is disabled") <= 1, out  # the launcher's one note


def assert_failed_job_names_its_log(out: str, sweep: Path) -> None:
    """fentsim-aggregate's line for the failed job: its reason and the task's stderr log."""
    line = next(line for line in out.splitlines() if "failed: scenario=china_crackdown" in line)
    assert FAILING_MESSAGE in line, line
    log = Path(line.rsplit("; log: ", 1)[1])
    assert log.is_file() and log.parent.parent == (sweep / ".submitit").resolve(), line
    assert log.name.endswith("_log.err")
    assert FAILING_MESSAGE in log.read_text(), log


# -- on a real SLURM ------------------------------------------------------------------------------

@pytest.mark.slurm
def test_slurm_sweep_equals_basic_launcher_sweep(slurm_env, tmp_path):
    sweep = ("scenario=baseline,naloxone_up", "ensemble=posterior", "ensemble.size=20")
    on_slurm = run("fentsim", "-m", *sweep, *LAUNCHER, f"hydra.sweep.dir={tmp_path / 'slurm'}",
                   cwd=tmp_path, env=slurm_env)
    assert on_slurm.returncode == 0, on_slurm.stderr
    assert "2 of 2 job(s) combined over scenario" in on_slurm.stdout
    assert_quiet(on_slurm)
    # the jobs really ran as SLURM array tasks: one .submitit/<array>_<task> folder with a log each
    tasks = sorted(p.name for p in (tmp_path / "slurm" / ".submitit").glob("*_[0-9]*") if p.is_dir())
    assert len(tasks) == 2 and len({t.split("_")[0] for t in tasks}) == 1, tasks
    basic = run("fentsim", "-m", *sweep, f"hydra.sweep.dir={tmp_path / 'basic'}", cwd=tmp_path)
    assert basic.returncode == 0, basic.stderr
    a, b = load(tmp_path / "slurm" / "sweep.nc"), load(tmp_path / "basic" / "sweep.nc")
    # every variable (values bit for bit, dims, coords, attrs; job configs and commits) is the same;
    # of the dataset attrs only the sweep folder, the history line (time, folder) and the command
    # that made it (its launcher and folder) differ
    xr.testing.assert_identical(a.drop_attrs(deep=False), b.drop_attrs(deep=False))
    where = ("sweep_dir", "history", "sweep_command")
    assert {k: v for k, v in a.attrs.items() if k not in where} == \
        {k: v for k, v in b.attrs.items() if k not in where}
    assert "hydra/launcher=slurm" in a.attrs["sweep_command"]
    assert list(a.job_status.values) == ["ok", "ok"]
    assert a.sizes["draw"] == 20 and not np.isnan(a.deaths_overdose.values).any()


@pytest.mark.slurm
def test_slurm_split_ensemble_joins_to_one_run(slurm_env, tmp_path):
    whole = run("fentsim", *ENSEMBLE, f"hydra.run.dir={tmp_path / 'whole'}", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    split = run("fentsim", "-m", *ENSEMBLE, "ensemble.chunk=0/2,1/2", *LAUNCHER,
                f"hydra.sweep.dir={tmp_path / 'split'}", cwd=tmp_path, env=slurm_env)
    assert split.returncode == 0, split.stderr
    assert "joined along draw from 2 slice(s)" in split.stdout
    assert_quiet(split)
    assert_same_ensemble(load(tmp_path / "split" / "sweep.nc"), load(tmp_path / "whole" / "result.nc"))


@pytest.mark.slurm
def test_slurm_failed_task_is_reported_with_its_log(slurm_env, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run("fentsim", "-m", *FAILING, *LAUNCHER, f"hydra.sweep.dir={sweep}", cwd=tmp_path,
               env=slurm_env)
    assert proc.returncode == 1, proc.stderr
    assert "1 of 2 job(s) combined" in proc.stdout
    assert_quiet(proc)
    agg = run("fentsim-aggregate", str(sweep), cwd=tmp_path, env=slurm_env)
    assert agg.returncode == 1, agg.stderr
    assert "1 of 2 job(s) combined over scenario" in agg.stdout
    assert_failed_job_names_its_log(agg.stdout, sweep)
    assert "Traceback" not in agg.stderr


@pytest.mark.slurm
def test_slurm_killed_task_stops_the_sweep_with_one_line(slurm_env, tmp_path):
    """Without accounting, a task SLURM ends without a result is seen (squeue), not waited for."""
    sweep = tmp_path / "sweep"
    long = ("scenario=baseline,naloxone_up", "ensemble=large", "ensemble.size=2000000")
    proc = subprocess.Popen([str(BIN / "fentsim"), "-m", *long, *LAUNCHER, f"hydra.sweep.dir={sweep}"],
                            cwd=tmp_path, env=slurm_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    squeue = ["squeue", "--noheader", "--array", "--format=%i %T"]
    try:
        running: list[str] = []
        for _ in range(120):
            time.sleep(0.5)
            rows = subprocess.run(squeue, capture_output=True, text=True, env=slurm_env).stdout.split("\n")
            running = [r.split()[0] for r in rows if r.endswith(" RUNNING") and "_" in r]
            if running or proc.poll() is not None:
                break
        assert running, f"no task of the sweep started: {proc.poll()}"
        array_id = running[0].split("_")[0]
        subprocess.run(["scancel", array_id], check=True, env=slurm_env)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run(["scancel", f"--user={getpass.getuser()}"], env=slurm_env)
    assert proc.returncode == 1, err
    line = next(line for line in err.splitlines() if "ended without a result" in line)
    assert f"SLURM task {array_id}_" in line and "(state: CANCELLED)" in line, line
    assert Path(line.split("; log: ", 1)[1].split(";")[0]).is_file(), line
    assert_quiet(subprocess.CompletedProcess([], 1, out, err))


# -- without a cluster (these run in the main suite) ----------------------------------------------

def test_squeue_watcher_reads_job_states():
    """The launcher's state querier for clusters without accounting parses squeue's listing."""
    from hydra_plugins.fentsim_slurm import NOT_IN_QUEUE, _squeue_watcher_class, uncompleted_message

    watcher = _squeue_watcher_class()(delay_s=600)
    for job in ("12_0", "12_1", "12_2", "13"):
        watcher.register_job(job)
    info = watcher.read_info("12_0|COMPLETED|vm\n12_[1-2%2]|PENDING|\n")
    watcher._info_dict.update(info)
    assert [watcher.get_state(j, mode="cache") for j in ("12_0", "12_1", "12_2", "13")] == \
        ["COMPLETED", "PENDING", "PENDING", NOT_IN_QUEUE]
    assert watcher.is_done("12_0", mode="cache") and watcher.is_done("13", mode="cache")
    assert not watcher.is_done("12_1", mode="cache")
    assert watcher._make_command()[0] == "squeue"
    text = ("Job 6_0 (task: 0) with path /s/.submitit/6_0/6_0_0_result.pkl\nhas not produced any "
            "output (state: TIMEOUT)\nError stream produced:\n...")
    assert uncompleted_message(text) == ("SLURM task 6_0 ended without a result (state: TIMEOUT); "
                                         "log: /s/.submitit/6_0/6_0_0_log.err")


def test_submitit_local_failed_task_is_reported_with_its_log(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run("fentsim", "-m", *FAILING, "hydra/launcher=submitit_local",
               f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    agg = run("fentsim-aggregate", str(sweep), cwd=tmp_path)
    assert agg.returncode == 1, agg.stderr
    assert_failed_job_names_its_log(agg.stdout, sweep)
    ds = load(sweep / "sweep.nc")
    assert "; log: " in ds.job_reason.sel(scenario="china_crackdown").item()
