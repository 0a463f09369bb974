"""Interrupted sweeps resume: a real sweep is killed part-way, a job's result is corrupted and a
half-written temporary file is left behind; re-running the same command skips the finished jobs
(same config hash), re-runs the others, and combines into exactly the dataset of an uninterrupted
sweep run through the joblib launcher."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from sim.results.io import open_result, write_dataset
from sim.sweeps.resume import (CONFIG_HASH_ATTR, config_hash, finished_result, stored_hash,
                               write_checksum)
from tests.test_sweeps import BIN, run

SWEEP = ("scenario=baseline,naloxone_up,prevention", "solver.end_year=2030", "ensemble=none")


def sweep_command(sweep_dir: Path, *extra: str) -> list[str]:
    return [str(BIN / "fentsim"), "-m", *SWEEP, f"hydra.sweep.dir={sweep_dir}", *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same sweep, uninterrupted, through the joblib launcher."""
    tmp = tmp_path_factory.mktemp("reference")
    proc = run("fentsim", *sweep_command(tmp / "s")[1:], "hydra/launcher=joblib",
               "hydra.launcher.n_jobs=2", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return open_result(tmp / "s" / "sweep.nc")


def test_killed_sweep_resumes_to_the_uninterrupted_result(reference, tmp_path):
    sweep = tmp_path / "s"
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.Popen(sweep_command(sweep), cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (sweep / "0" / "result.nc").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its job, part-way
    proc.wait()
    assert (sweep / "0" / "result.nc").is_file()
    assert not (sweep / "sweep.nc").exists()  # the end-of-sweep callback never ran
    # job 2: a truncated result and a half-written temporary file, as a kill during a write leaves
    (sweep / "2").mkdir(exist_ok=True)
    (sweep / "2" / "result.nc").write_bytes((sweep / "0" / "result.nc").read_bytes()[:2000])
    (sweep / "2" / ".result.nc.abc123.tmp").write_bytes(b"\x89HDF partial")

    again = run("fentsim", *sweep_command(sweep)[1:], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"skipped: {sweep / '0' / 'result.nc'}" in again.stdout
    assert "job 3 of 3: scenario=prevention" in again.stdout  # corrupt: run again (one line)
    assert f"wrote {sweep / '2' / 'result.nc'}" in (sweep / "2" / "fentsim.log").read_text()
    assert "3 of 3 job(s) combined over scenario" in again.stdout
    resumed = open_result(sweep / "sweep.nc")
    assert list(resumed.job_status.values) == ["ok", "ok", "ok"]
    for name in reference.data_vars:
        a, b = reference[name].values, resumed[name].values
        assert a.shape == b.shape and (np.array_equal(a, b, equal_nan=True) if a.dtype.kind == "f"
                                       else (a == b).all()), name
    # run once more: every job is skipped, nothing is recomputed
    third = run("fentsim", *sweep_command(sweep)[1:], cwd=tmp_path)
    assert third.returncode == 0 and third.stdout.count("skipped:") == 3, third.stdout


def test_hash_decides_what_is_finished(reference, tmp_path):
    cfg = {"params": {"relapse_rate": 0.5}, "levers": {}, "hydra": {"ignored": 1}}
    digest = config_hash(cfg)
    assert digest == config_hash({"levers": {}, "params": {"relapse_rate": 0.5}})  # key order
    assert digest != config_hash({"params": {"relapse_rate": 0.51}, "levers": {}})
    ds = reference.isel(scenario=0, drop=True)[["deaths_overdose"]]
    ds.attrs = {CONFIG_HASH_ATTR: digest}
    path = write_dataset(ds, tmp_path / "result.nc")
    assert stored_hash(path) == digest and not finished_result(path, digest)  # no checksum yet
    write_checksum(path)   # as run_job does once the job finished
    assert finished_result(path, digest)
    assert not finished_result(path, config_hash({"params": {}}))
    assert not finished_result(tmp_path / "missing.nc", digest)
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert not finished_result(path, digest)


def test_resume_skips_only_data_matching_the_checksum(reference, tmp_path):
    """Data damaged after the job finished, attributes intact: the job is not skipped."""
    ds = reference.isel(scenario=0, drop=True)[["deaths_overdose"]]
    digest = config_hash({"params": {}})
    ds.attrs = {CONFIG_HASH_ATTR: digest}
    path = write_dataset(ds, tmp_path / "result.nc")
    write_checksum(path)
    assert finished_result(path, digest)
    damaged = ds.copy(deep=True)
    damaged["deaths_overdose"][:] = damaged["deaths_overdose"] * 1.5   # same attrs, other data
    write_dataset(damaged, path)
    assert stored_hash(path) == digest            # the attributes alone would say finished
    assert not finished_result(path, digest)      # the checksum says otherwise
