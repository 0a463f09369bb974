"""Parameter ensembles: which draws a run integrates (the `draw` dimension of results)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sim.errors import InputError, reject_unknown_keys
from sim.parameters import ModelParameters

ENSEMBLE_KEYS = ("name", "size", "seed", "file")


def build_ensemble(base: ModelParameters, cfg: Mapping[str, Any]) -> tuple[ModelParameters, int | None]:
    """Return the parameter draws selected by the `ensemble` config and the seed used (or None).

    name 'none': the single draw `base`.
    """
    cfg = dict(cfg or {})
    reject_unknown_keys("ensemble", cfg, ENSEMBLE_KEYS)
    name = cfg.get("name", "none")
    size = cfg.get("size", 1)
    if not isinstance(size, int) or size < 1:
        raise InputError(f"ensemble.size: value {size!r} must be a positive integer")
    if name == "none":
        return base, None
    raise InputError(f"ensemble.name: value {name!r} not allowed; allowed: none")
