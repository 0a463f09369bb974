"""Resuming interrupted sweeps: a job's result is recognised as finished by a hash of its resolved
config and of the content of every file the config points to (the posterior draws file
`ensemble.file`), stored in the result's attrs (`config_sha256`; the files' own hashes are in
`input_sha256`).  Editing the draws file therefore makes every job run again.  Hydra-free.

A file is finished only if it exists under its real name (writes are atomic: a killed job leaves at
most a hidden `.NAME.XXXX.tmp`, never a half-written NAME), carries the same hash, and its content
matches the checksum written beside it when the job finished (`.NAME.sha256`, SHA-256 of the whole
file): a result whose data were changed or damaged afterwards, even with its attributes intact,
runs again.  Anything else (missing, truncated, corrupt, other config, no checksum) means the job
runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CONFIG_HASH_ATTR = "config_sha256"
INPUTS_ATTR = "input_sha256"   # JSON {config field: SHA-256 of the file's content}


def config_hash(cfg: Mapping[str, Any]) -> str:
    """SHA-256 of the resolved config as canonical JSON (sorted keys; `hydra` section excluded)."""
    plain = {k: v for k, v in cfg.items() if k != "hydra"}
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_hash(cfg: Mapping[str, Any], inputs: Mapping[str, str] | None = None) -> str:
    """The identity of a run: `config_hash(cfg)` when it reads no file, else SHA-256 of the config
    together with the content hashes of the files it reads (`inputs`, field -> SHA-256)."""
    if not inputs:
        return config_hash(cfg)
    plain = {k: v for k, v in cfg.items() if k != "hydra"}
    text = json.dumps({"config": plain, "inputs": dict(inputs)}, sort_keys=True,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def identity_attrs(cfg: Mapping[str, Any], inputs: Mapping[str, str] | None = None) -> dict[str, str]:
    """The attrs a result carries for resuming: `config_sha256` and `input_sha256`."""
    return {CONFIG_HASH_ATTR: run_hash(cfg, inputs),
            INPUTS_ATTR: json.dumps(dict(inputs or {}), sort_keys=True)}


def stored_hash(path: str | os.PathLike) -> str | None:
    """The config hash recorded in a result file, or None if the file is missing or unreadable."""
    import h5netcdf

    path = Path(path)
    if not path.is_file():
        return None
    try:
        with h5netcdf.File(path, "r") as f:
            value = f.attrs.get(CONFIG_HASH_ATTR)
    except Exception:  # truncated or corrupt: not finished
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value) if value is not None else None




def checksum_path(path: str | os.PathLike) -> Path:
    """Where the checksum of a finished result is kept: `.NAME.sha256` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.sha256")


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksum(path: str | os.PathLike) -> Path:
    """Record the checksum of a finished result (atomically), for `finished_result`."""
    from sim.results.io import write_text_atomic

    return write_text_atomic(f"{file_digest(path)}  {Path(path).name}\n", checksum_path(path))


def checksum_matches(path: str | os.PathLike) -> bool:
    """True if `path`'s content matches the checksum written when it finished."""
    try:
        recorded = checksum_path(path).read_text(encoding="utf-8").split()[0]
        return recorded == file_digest(path)
    except (OSError, IndexError, UnicodeDecodeError):
        return False


def finished_result(path: str | os.PathLike, digest: str) -> bool:
    """True if `path` is a complete result written for the config with hash `digest`, whose
    content matches the checksum written when its job finished."""
    return stored_hash(path) == digest and checksum_matches(path)
