"""Where the project's files are: the repository root, its configs, experiments and packaged data.

One place for every path that code derives from the package's own location (imports nothing of
the package, so every layer may use it).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
CONFIG_DIR = REPO_ROOT / "configs"
EXPERIMENTS_DIR = REPO_ROOT / "experiments"
DATA_DIR = PACKAGE_DIR / "data"
