"""Provenance attrs: git commit with '+dirty', package versions looked up once a process."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import sim.results.provenance as provenance

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo, *args):
    return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=repo,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_commit_dirty_clean_and_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)
    git(tmp_path, "init", "-q")
    assert provenance.git_commit() == "unknown (git checkout without a commit)"
    (tmp_path / "f.txt").write_text("a\n")
    git(tmp_path, "add", "f.txt")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert provenance.git_commit() == head
    (tmp_path / "untracked.txt").write_text("not counted\n")
    assert provenance.git_commit() == head
    (tmp_path / "f.txt").write_text("b\n")
    assert provenance.git_commit() == head + "+dirty"
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path / "missing")
    assert provenance.git_commit() == "unknown (installed package, no git checkout)"
    (tmp_path / "inside").mkdir()  # a folder inside a checkout (a venv's site-packages) is not it
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path / "inside")
    assert provenance.git_commit() == "unknown (installed package, no git checkout)"


def test_package_versions_name_the_packages():
    versions = provenance.package_versions()
    assert versions.startswith("fentsim==") and "numpy==" in versions and "xarray==" in versions
    assert provenance.package_versions() is versions  # cached
