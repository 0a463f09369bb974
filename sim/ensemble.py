"""Parameter ensembles: which draws a run integrates (the `draw` dimension of results)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import InputError, reject_unknown_keys
from sim.parameters import ModelParameters

ENSEMBLE_KEYS = ("name", "size", "seed", "file")
NAMES = ("none", "posterior")
REPO = Path(__file__).resolve().parent.parent
DEFAULT_POSTERIOR = "sim/data/posterior_draws.csv"


def posterior_path(value: Any) -> Path:
    """The posterior draws file: absolute, or relative to the repository (default in sim/data)."""
    path = Path(str(value or DEFAULT_POSTERIOR))
    return path if path.is_absolute() else REPO / path


def build_ensemble(base: ModelParameters, cfg: Mapping[str, Any]) -> tuple[ModelParameters, int | None]:
    """Return the parameter draws selected by the `ensemble` config and the seed used (or None).

    name 'none': the single draw `base`.
    name 'posterior': `size` draws of the posterior file (MCMC draws of the calibrated parameters),
    chosen without replacement by `seed`; parameters not in the file come from `base`.
    """
    from sim.calibration import read_draws  # local: keeps sim.ensemble light for plain runs

    cfg = dict(cfg or {})
    reject_unknown_keys("ensemble", cfg, ENSEMBLE_KEYS)
    name = cfg.get("name", "none")
    size = cfg.get("size", 1)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(f"ensemble.size: value {size!r} must be a positive integer")
    if name == "none":
        return base, None
    if name != "posterior":
        raise InputError(f"ensemble.name: value {name!r} not allowed; allowed: {', '.join(NAMES)}")
    seed = cfg.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"ensemble.seed: value {seed!r} must be an integer >= 0")
    names, values = read_draws(posterior_path(cfg.get("file")))
    if size > len(values):
        raise InputError(f"ensemble.size: value {size} exceeds the {len(values)} draws in "
                         f"{posterior_path(cfg.get('file')).name}; allowed: 1..{len(values)}")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(values), size=size, replace=False))
    if base.n_draws != 1:
        raise InputError(f"ensemble.name: 'posterior' needs single-valued params, got "
                         f"{base.n_draws} draws")
    changes = {n: values[pick, i] for i, n in enumerate(names)}
    return base.replace(**changes), seed
