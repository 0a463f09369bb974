"""A normal (non-editable) install works: the wheel carries the top-level configs/ and experiments/
(mapped to sim/configs and sim/experiments at build time), and the
commands and the Python API run from any folder.  One test (about 15 s): it builds the wheel,
installs it into a fresh virtual environment whose dependencies come from this one, and runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from tests.conftest import REPO


def sh(*args: str | Path, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "PYTHONPATH")}
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, f"{args}: {proc.stderr[-2000:]}"
    return proc.stdout


def test_wheel_installs_and_runs_from_any_folder(tmp_path):
    src = tmp_path / "src"  # a clean copy: no build/ left over from earlier builds
    for name in ("sim", "hydra_plugins", "configs", "experiments"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", src,
       cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("fentsim-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for packaged in ("sim/configs/config.yaml", "sim/configs/scenario/china_crackdown.yaml",
                     "sim/configs/hydra/job_logging/fentsim.yaml",
                     "sim/experiments/supply_vs_demand.yaml", "sim/data/posterior_calibrated.csv",
                     "hydra_plugins/fentsim_searchpath/__init__.py"):
        assert packaged in names, packaged
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    sh(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index",
       wheel, cwd=tmp_path)
    # the dependencies: this environment's site-packages, after the new one (a plain path entry,
    # so this environment's editable install of the source tree is not seen)
    site = Path(sh(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                   cwd=tmp_path).strip())
    (site / "_fentsim_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    bin_ = venv / "bin"
    job = sh(bin_ / "fentsim", "--cfg", "job", cwd=work)
    assert "levers:" in job and "\nsolver:\n  start_year: " in job   # solver: default (ConfigStore)
    assert "  method: Radau\n" in sh(bin_ / "fentsim", "solver=accurate", "--cfg", "job", cwd=work)
    helped = sh(bin_ / "fentsim", "--help", cwd=work)
    assert "supply_vs_demand" in helped and "  solver: accurate, default\n" in helped
    assert "Docs (installed package): `fentsim-doc` (model)" in helped   # no README.md, docs/ here
    assert sh(bin_ / "fentsim-doc", "readme", cwd=work).startswith("# fentsim")
    out = sh(bin_ / "fentsim", "solver.end_year=2021", "solver.engine=numpy", "hydra.run.dir=o",
             cwd=work)
    assert "wrote" in out and (work / "o" / "result.nc").is_file()
    commit = sh(python, "-c", "import xarray as xr; print(xr.open_dataset('o/result.nc', "
                "engine='h5netcdf').attrs['git_commit'])", cwd=work).strip()
    assert commit == "unknown (installed package, no git checkout)"
    compared = sh(bin_ / "fentsim-compare", "o/result.nc", "o/result.nc", "--window", "2020", "2021",
                  cwd=work)
    assert "deaths averted" in compared
    api = sh(python, "-c", "import sim, sim.paths; ds = sim.run(solver={'end_year': 2021, "
             "'engine': 'numpy'}); print(sim.paths.CONFIG_DIR); "
             "print(ds.deaths_synthetic.sel(year=2020).item())", cwd=work)
    config_dir, deaths = api.split()
    assert Path(config_dir).is_relative_to(site), config_dir  # the installed copy, not the repo
    assert float(deaths) > 1000


def test_every_package_folder_is_in_the_wheel_list():
    """pyproject lists packages explicitly (configs/ and experiments/ are mapped in): none forgotten."""
    import tomllib
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts)
             for top in ("sim", "hydra_plugins") for p in (REPO / top).rglob("__init__.py")}
    # data folders too (else setuptools warns "Package would be ignored" and may drop them)
    found |= {".".join(("sim", *d.relative_to(REPO).parts))
              for top in ("configs", "experiments") for d in [REPO / top, *(REPO / top).rglob("*")]
              if d.is_dir() and any(f.suffix == ".yaml" for f in d.iterdir())}
    found |= {".".join(d.relative_to(REPO).parts) for d in (REPO / "sim").iterdir()
              if d.is_dir() and not (d / "__init__.py").exists() and d.name != "__pycache__"}
    assert found - listed == set(), found - listed
