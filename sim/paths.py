"""Where the project's files are: the package's configs, experiments and data, and the repository.

One place for every path that code derives from the package's own location (imports nothing of
the package, so every layer may use it).  The Hydra config groups (`configs/`) and the experiment
files (`experiments/`) sit at the repository's top level; the wheel maps them to `sim/configs` and
`sim/experiments` at build time (pyproject.toml), so a normal install finds them there.  The data
(`sim/data/`) are package data.  Users add folders of their own experiment files with
the environment variable FENTSIM_EXPERIMENTS (folders separated by the OS path separator, ':' on
Linux); a file there shadows a packaged experiment of the same name.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent   # the source checkout (site-packages in an installed package)


def _packaged_or_top_level(name: str) -> Path:
    """`sim/<name>` in a built wheel (pyproject maps the top-level folder there), else `<repo>/<name>`."""
    packaged = PACKAGE_DIR / name
    return packaged if packaged.is_dir() else REPO_ROOT / name


CONFIG_DIR = _packaged_or_top_level("configs")
EXPERIMENTS_DIR = _packaged_or_top_level("experiments")
DATA_DIR = PACKAGE_DIR / "data"
USER_EXPERIMENTS_ENV = "FENTSIM_EXPERIMENTS"


def experiment_dirs() -> list[Path]:
    """Folders of experiment files, searched in order: the user's (FENTSIM_EXPERIMENTS), then ours."""
    user = [Path(p).expanduser().resolve()
            for p in os.environ.get(USER_EXPERIMENTS_ENV, "").split(os.pathsep) if p.strip()]
    return [*user, EXPERIMENTS_DIR]
