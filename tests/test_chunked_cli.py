"""Large ensembles from the command line: `fentsim ensemble=large` runs canonical chunks written
incrementally; the same ensemble split over jobs (`ensemble.chunk=k/K`) and joined by the end-of-sweep
callback or `fentsim-aggregate` equals one run of the whole ensemble, bit for bit.  Bad chunk specs
are one line, exit 2, nothing written.  (Library level: tests/test_chunked.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5netcdf
import numpy as np
import pytest
import xarray as xr
import yaml

from sim.sweeps.aggregate import CHUNK_KEY
from sim.cli.main import EXIT_USER_ERROR
from sim.cli.sweep import aggregate_main
from sim.calibrate.ensemble import build_ensemble, ensemble_of
from sim.results.io import open_result
from sim.model.parameters import ModelParameters
from sim.sweeps.resume import CONFIG_HASH_ATTR
from tests.conftest import REPO
from tests.test_bad_input import check_overrides
from tests.test_cli import fentsim

SIZE, CHUNK, SLICES = 40, 5, 4  # 8 chunks, 2 per slice
ENSEMBLE = ("ensemble=large", f"ensemble.size={SIZE}", f"ensemble.chunk_size={CHUNK}",
            "ensemble.seed=3", "solver.end_year=2015")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run of the whole ensemble, and the same ensemble split over 4 jobs (a sweep)."""
    tmp = tmp_path_factory.mktemp("large")
    whole = fentsim(*ENSEMBLE, f"hydra.run.dir={tmp / 'whole'}", cwd=tmp)
    assert whole.returncode == 0, whole.stderr
    slices = ",".join(f"{k}/{SLICES}" for k in range(SLICES))
    split = fentsim("-m", *ENSEMBLE, f"ensemble.chunk={slices}", f"hydra.sweep.dir={tmp / 'split'}",
                    cwd=tmp)
    assert split.returncode == 0, split.stderr
    return tmp, open_result(tmp / "whole" / "result.nc"), split


def assert_same_ensemble(joined: xr.Dataset, whole: xr.Dataset) -> None:
    """Same variables, coordinates, values (bit for bit) and variable attrs; same config and hash."""
    xr.testing.assert_identical(joined.drop_attrs(), whole.drop_attrs())
    for key in ("config", CONFIG_HASH_ATTR, "draws_first", "draws_end", "chunk_size", "seed"):
        assert joined.attrs[key] == whole.attrs[key], key
    nfev = [json.loads(ds.attrs["solver_stats"])["chunk_nfev"] for ds in (joined, whole)]
    assert nfev[0] == nfev[1]


def test_whole_run_is_chunked_and_complete(runs):
    _, whole, _ = runs
    assert list(whole.draw.values) == list(range(SIZE))
    assert whole.attrs["chunk_size"] == CHUNK and whole.attrs["draws_end"] == SIZE
    assert len(json.loads(whole.attrs["solver_stats"])["chunk_nfev"]) == SIZE // CHUNK
    assert yaml.safe_load(whole.attrs["config"])["ensemble"]["chunk"] is None
    assert np.all(np.isfinite(whole.deaths_synthetic.values))


def test_split_sweep_callback_reassembles_exactly(runs):
    tmp, whole, split = runs
    assert "joined along draw" in split.stdout
    joined = open_result(tmp / "split" / "sweep.nc")
    assert CHUNK_KEY not in joined.dims
    assert_same_ensemble(joined, whole)
    assert len(json.loads(joined.attrs["assembled_from"])) == SLICES


def test_aggregate_command_reassembles_exactly(runs, capsys):
    tmp, whole, _ = runs
    out = tmp / "again.nc"
    with pytest.raises(SystemExit) as stop:
        aggregate_main([str(tmp / "split"), "--output", str(out)])
    assert stop.value.code == 0, capsys.readouterr().err
    assert_same_ensemble(open_result(out), whole)


@pytest.mark.parametrize("result", ["whole/result.nc", "split/sweep.nc", "split/2/result.nc"])
def test_rerun_reproduces_chunked_results(runs, result):
    from sim.sweeps.rerun import rerun
    outcome = rerun(open_result(runs[0] / result))
    assert not outcome.different, outcome.different


@pytest.fixture
def sweep_copy(runs, tmp_path):
    """A copy of the split sweep without its joined file, to break."""
    copy = tmp_path / "split"
    shutil.copytree(runs[0] / "split", copy)
    (copy / "sweep.nc").unlink()
    return copy


def aggregate_exit(sweep: Path, capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stop:
        aggregate_main([str(sweep), *args])
    out = capsys.readouterr()
    return stop.value.code, out.out, out.err


def test_missing_slice_is_reported_and_nothing_written(sweep_copy, capsys):
    (sweep_copy / "2" / "result.nc").unlink()
    shutil.rmtree(sweep_copy / "3")
    code, out, _ = aggregate_exit(sweep_copy, capsys)
    assert code == 1
    assert f"failed: {CHUNK_KEY}=2/4" in out and f"missing: {CHUNK_KEY}=3/4" in out
    assert "nothing written" in out and not (sweep_copy / "sweep.nc").exists()
    assert "2 of 4 job(s) finished, none combined" in out


def test_gap_without_multirun_record_is_one_line_error(sweep_copy, capsys):
    shutil.rmtree(sweep_copy / "1")
    (sweep_copy / "multirun.yaml").unlink()  # the launched jobs are unknown: only the gap shows
    code, _, err = aggregate_exit(sweep_copy, capsys)
    assert code == EXIT_USER_ERROR and err.count("\n") == 1
    assert f"{CHUNK_KEY}: draws 10..19 of 40 are in no job" in err
    assert not (sweep_copy / "sweep.nc").exists()


def test_slice_of_another_ensemble_is_not_joined(sweep_copy, capsys):
    path = sweep_copy / "1" / "result.nc"
    with h5netcdf.File(path, "a") as f:
        cfg = yaml.safe_load(f.attrs["config"])
        cfg["ensemble"]["seed"] = 4
        f.attrs["config"] = yaml.safe_dump(cfg, sort_keys=False)
    code, out, _ = aggregate_exit(sweep_copy, capsys)
    # the slice's recorded config is no longer its job folder's own: it is not joined
    assert code == 1 and not (sweep_copy / "sweep.nc").exists()
    assert "config differs" in out or "another config than this job's" in out, out


def test_report_on_split_sweep_is_refused(sweep_copy, capsys):
    code, _, err = aggregate_exit(sweep_copy, capsys, "--report")
    assert code == EXIT_USER_ERROR and err.startswith("fentsim-aggregate: error: --report:")


def test_chunked_posterior_slice_has_the_draws_of_the_whole():
    base = ModelParameters.from_mapping(
        yaml.safe_load((REPO / "configs/params/calibrated.yaml").read_text()))
    cfg = {"name": "posterior", "size": 12, "seed": 1}
    part = ensemble_of(base, {**cfg, "chunk_size": 5, "chunk": "1/2"})
    assert part.draws == (5, 12) and part.size == 12
    whole, _ = build_ensemble(base, cfg)
    for name, values in part.params().as_arrays().items():
        np.testing.assert_array_equal(values, whole.as_arrays()[name][5:12], err_msg=name)


BAD = [
    (["ensemble=large", "ensemble.chunk=5/4"], "ensemble.chunk: value '5/4' not allowed; allowed: 'k/K'"),
    (["ensemble=large", "ensemble.chunk=a/b"], "ensemble.chunk: value 'a/b' not allowed; allowed: 'k/K'"),
    (["ensemble=large", "ensemble.chunk=3"], "ensemble.chunk: value 3 not allowed; allowed: 'k/K'"),
    (["ensemble=large", "ensemble.size=40", "ensemble.chunk_size=10", "ensemble.chunk=0/8"],
     "ensemble.chunk: value '0/8' not allowed: 40 draws make 4 chunk(s) of 10; allowed: K <= 4"),
    (["ensemble=large", "ensemble.chunk_size=0"],
     "ensemble.chunk_size: value 0 not allowed; allowed: a positive integer"),
    (["ensemble=large", "ensemble.chunk_size=many"], "ensemble.chunk_size: value 'many' is not a number; allowed: a positive integer"),
    (["ensemble=posterior", "ensemble.chunk=0/2"],
     "ensemble.chunk: value '0/2' not allowed without ensemble.chunk_size"),
    (["ensemble.chunk_size=10"], "ensemble.chunk_size: value 10 not allowed with ensemble.name 'none'"),
    (["ensemble.chunk=0/2"], "ensemble.chunk: value '0/2' not allowed with ensemble.name 'none'"),
    (["ensemble=large", "ensemble.size=0"], "ensemble.size: value 0 not allowed; allowed: a positive integer"),
]


@pytest.mark.parametrize("overrides, message", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_chunk_input(overrides, message):
    line = check_overrides(overrides)
    assert line.startswith(message), line
    assert "\n" not in line


@pytest.mark.parametrize("override", ["ensemble.chunk=5/4", "ensemble.chunk_size=0"])
def test_fentsim_bad_chunk_one_line_exit_2_nothing_written(tmp_path, override):
    proc = fentsim("ensemble=large", "ensemble.size=40", override, f"hydra.run.dir={tmp_path / 'o'}",
                   cwd=tmp_path)
    assert proc.returncode == EXIT_USER_ERROR, proc.stderr
    assert proc.stderr.startswith("fentsim: error: ensemble.chunk") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("*.nc")) and not list(tmp_path.rglob(".*.tmp"))
