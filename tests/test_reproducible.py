"""Same config and seed give bit-identical data: two runs in one process, a run written and read
back, and a draw sampled the same way in every job.  (Serial vs joblib launcher: the resumed basic-
launcher sweep in tests/test_resume.py equals the joblib sweep bit for bit; fentsim-rerun:
tests/test_rerun.py.)"""

from __future__ import annotations

import numpy as np

from sim.cli.main import prepare_job
from sim.results.io import open_result, write_dataset
from sim.sweeps.resume import config_hash
from sim.results.run import simulate

CONFIG = {"params": {"relapse_rate": 0.55}, "scenario": {"name": "naloxone_up", "intensity": 2.0},
          "levers": {"naloxone_kits": {"start": 2020, "ramp": 1.0, "level": 2.0, "mode": "scale"}},
          "solver": {"end_year": 2021}, "ensemble": {"name": "posterior", "size": 4, "seed": 7}}


def run(cfg):
    cfg, job, params, seed = prepare_job(cfg)
    return simulate(params, job.levers, job.solver, config=cfg, seed=seed), cfg


def assert_identical(a, b):
    assert list(a.data_vars) == list(b.data_vars)
    for name in a.data_vars:
        x, y = a[name].values, b[name].values
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y, equal_nan=True), name
    for name in a.coords:
        assert np.array_equal(a[name].values, b[name].values), name


def test_same_config_and_seed_twice_bit_identical():
    (first, cfg1), (second, cfg2) = run(CONFIG), run(CONFIG)
    assert_identical(first, second)
    assert first.attrs["config"] == second.attrs["config"] and first.attrs["seed"] == 7
    assert config_hash(cfg1) == config_hash(cfg2)


def test_other_seed_other_draws():
    other = {**CONFIG, "ensemble": {**CONFIG["ensemble"], "seed": 8}}
    a, _ = run(CONFIG)
    b, _ = run(other)
    assert not np.array_equal(a.parameter_value.values, b.parameter_value.values)


def test_written_file_reads_back_bit_identical(tmp_path):
    ds, _ = run(CONFIG)
    back = open_result(write_dataset(ds, tmp_path / "result.nc"))
    assert_identical(ds, back)
    assert back.time.dtype == np.float64 and float(back.decimal_year.sel(decimal_year=2017.5)) == 2017.5
