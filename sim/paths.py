"""Where the project's files are: the package's configs, experiments and data, and the repository.

One place for every path that code derives from the package's own location (imports nothing of
the package, so every layer may use it).  The Hydra config groups (`configs/`), the experiment
files (`experiments/`) and the data (`data/`) are package data: they ship inside the wheel, so a
normal (non-editable) install finds them too.  Users add folders of their own experiment files with
the environment variable FENTSIM_EXPERIMENTS (folders separated by the OS path separator, ':' on
Linux); a file there shadows a packaged experiment of the same name.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent   # the source checkout (site-packages in an installed package)
CONFIG_DIR = PACKAGE_DIR / "configs"
EXPERIMENTS_DIR = PACKAGE_DIR / "experiments"
DATA_DIR = PACKAGE_DIR / "data"
USER_EXPERIMENTS_ENV = "FENTSIM_EXPERIMENTS"


def experiment_dirs() -> list[Path]:
    """Folders of experiment files, searched in order: the user's (FENTSIM_EXPERIMENTS), then ours."""
    user = [Path(p).expanduser().resolve()
            for p in os.environ.get(USER_EXPERIMENTS_ENV, "").split(os.pathsep) if p.strip()]
    return [*user, EXPERIMENTS_DIR]
