"""Provenance of a result: git commit, package versions, and the resolved configuration."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("fentsim", "numpy", "scipy", "xarray", "h5netcdf", "hydra-core", "omegaconf")
REPO_ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str:
    """Commit of the source tree ('+dirty' if it has uncommitted changes), or 'unknown'."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=5).stdout
        return commit + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> str:
    """'name==version' for the packages that shape a result, space separated."""
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return " ".join(found)
