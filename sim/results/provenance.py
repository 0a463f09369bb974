"""Provenance of a result: git commit, package versions, and the resolved configuration."""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata

from sim import paths

PACKAGES = ("fentsim", "numpy", "scipy", "xarray", "h5netcdf", "hydra-core", "omegaconf")
REPO_ROOT = paths.REPO_ROOT


def git_commit() -> str:
    """Commit of the source tree ('+dirty' if it has uncommitted changes), or 'unknown (why)':
    an installed package (no git checkout around the code), no git program, no commit yet.

    One `git status` call gives both (the header `# branch.oid` and one line per changed tracked
    file); it is asked afresh every time, since the tree may change while a process runs.  Only
    a checkout whose top level holds the code counts (a virtual environment inside some other
    checkout is not that checkout's code).
    """
    if not (REPO_ROOT / ".git").exists():
        return "unknown (installed package, no git checkout)"
    try:
        out = subprocess.run(["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=5,
                             check=True).stdout
    except FileNotFoundError:
        return "unknown (git is not installed)"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown (git status failed: {type(exc).__name__})"
    lines = out.splitlines()
    commit = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), "")
    if not commit or commit == "(initial)":  # no commit yet
        return "unknown (git checkout without a commit)"
    dirty = any(line.strip() and not line.startswith("#") for line in lines)
    return commit + ("+dirty" if dirty else "")


@functools.cache
def package_versions() -> str:
    """'name==version' for the packages that shape a result, space separated.

    Looked up once a process (the modules a process runs do not change under it).
    """
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return " ".join(found)
