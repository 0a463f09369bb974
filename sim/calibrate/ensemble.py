"""Parameter ensembles: which draws a run integrates (the `draw` dimension of results), and how a
large ensemble is cut into canonical chunks (`chunk_size`) and job slices (`chunk`, 'k/K').

Every draw has an identity (`Ensemble.ids_for`, the `draw_id` coordinate of results): where its
parameter set comes from.  For a posterior file it is `<first 16 hex digits of the file's
SHA-256>:<row>`, followed by `:priors<seed>/<size>/<i>` when the unidentified constants are
drawn from their priors (`sample_priors`, the default), so two results pair draw by draw only if
they took the same rows of the same file content and the same prior draws; for `ensemble=none` it
is `params:<i>` (the i-th draw of the `params` config).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import hashlib

import numpy as np

from pydantic import Field, model_validator

from sim import paths
from sim.errors import InputError
from sim.schema import Integer, Section, validate
from sim.model.parameters import (PRIOR_ROLES, ModelParameters, names_with_role,
                                  sample_prior_values)

PRIOR_STREAM = 7919  # second seed word of the prior draws, apart from the posterior pick
NAMES = ("none", "posterior", "posterior_bootstrap")
REPO = paths.REPO_ROOT
DEFAULT_PARAMS = "calibrated"


def posterior_file_for(params_name: str) -> str:
    """The posterior draws file of a calibration (`params` config name), repo-relative."""
    return f"sim/data/posterior_{params_name}.csv"


DEFAULT_POSTERIOR = posterior_file_for(DEFAULT_PARAMS)

DRAW_ID_ATTRS = {"long_name": "identity of the draw's parameter set: <first 16 hex digits of the "
                              "posterior file's SHA-256>:<row>[:priors<seed>/<size>/<i> with "
                              "ensemble.sample_priors], or params:<i> (ensemble none)"}
SEED_MAX = 2**32 - 1  # numpy's legacy seed range (RandomState); fits the int64 `seed` attribute


class EnsembleSection(Section):
    """The `ensemble` section of a run: which parameter draws, and how they are cut into batches
    and jobs (see `ensemble_of`)."""

    name: Literal[NAMES] = Field("none", description=", ".join(NAMES))   # type: ignore[valid-type]
    size: Integer = Field(1, ge=1, description="a positive integer (number of draws)")
    seed: Integer = Field(0, ge=0, le=SEED_MAX,
                          description=f"an integer in [0, {SEED_MAX}] (2**32 - 1)")
    file: str | None = Field(None, description="a posterior draws CSV (path), or null: the "
                                               "posterior of the selected params")
    chunk_size: Integer | None = Field(None, ge=1, description="a positive integer (draws per "
                                                               "batch) or null")
    chunk: Any = Field(None, description="'k/K' with 0 <= k < K, e.g. '3/16', or null (all draws)")
    sample_priors: bool = Field(True, description="true or false")

    @model_validator(mode="after")
    def _fits_the_name(self) -> EnsembleSection:
        if self.name == "none":
            if self.size != 1:
                raise InputError(f"ensemble.size: value {self.size} not allowed with ensemble.name "
                                 f"'none' (the draw(s) of the params config); allowed: 1, or "
                                 f"ensemble=posterior / ensemble=large for {self.size} draws")
            for key in ("chunk_size", "chunk"):
                if getattr(self, key) is not None:
                    raise InputError(f"ensemble.{key}: value {getattr(self, key)!r} not allowed "
                                     f"with ensemble.name 'none'; allowed: null")
        if self.chunk is not None and self.chunk_size is None:
            raise InputError(f"ensemble.chunk: value {self.chunk!r} not allowed without "
                             f"ensemble.chunk_size; allowed: null, or set ensemble.chunk_size")
        return self


ENSEMBLE_KEYS = tuple(EnsembleSection.model_fields)
ParamsForDraws = Callable[[int, int], ModelParameters]  # (first draw, end) -> parameters
IdsForDraws = Callable[[int, int], np.ndarray]           # (first draw, end) -> draw identities


@dataclass(frozen=True)
class Ensemble:
    """The draws of a run: parameters of any draw range [a, b), and how the run cuts them.

    `chunk_size` None: one batch of all draws.  Otherwise draws 0..size-1 are integrated in
    canonical chunks of `chunk_size` draws, and this job runs draws `draws` (whole chunks).
    """

    params_for: ParamsForDraws
    size: int
    seed: int | None
    chunk_size: int | None
    draws: tuple[int, int]
    ids_for: IdsForDraws | None = None
    inputs: Mapping[str, str] = dataclasses.field(default_factory=dict)  # field -> file SHA-256

    def params(self) -> ModelParameters:
        """Parameters of this job's draws, all at once."""
        return self.params_for(*self.draws)

    def ids(self, a: int | None = None, b: int | None = None) -> np.ndarray:
        """Identities (strings) of draws [a, b) (default: this job's draws); see the module doc."""
        a, b = (self.draws if a is None else (a, b))
        if self.ids_for is None:
            return np.array([f"params:{i}" for i in range(a, b)], dtype=object)
        return self.ids_for(a, b)


def with_posterior_of(cfg: Mapping[str, Any], params_name: str | None) -> dict[str, Any]:
    """A copy of a run config whose posterior ensemble (`ensemble.file` null) reads the posterior
    of the selected `params` config, sim/data/posterior_<params_name>.csv.

    Every calibration writes its own posterior (`fentsim-calibrate targets=... calibration.promote=
    true`): params=calibrated -> posterior_calibrated.csv, params=article -> posterior_article.csv.
    A params config without one (e.g. `literature`, the priors' centre) is an InputError naming
    the configs that have one.  The resolved path is what the result's config records.
    """
    out = dict(cfg)
    ensemble = dict(out.get("ensemble") or {})
    if ensemble.get("name", "none") == "none" or ensemble.get("file") is not None:
        return out
    name = params_name or DEFAULT_PARAMS
    relative = posterior_file_for(name)
    if not (REPO / relative).is_file():
        having = sorted(p.stem.removeprefix("posterior_")
                        for p in paths.DATA_DIR.glob("posterior_*.csv"))
        raise InputError(f"ensemble.file: params={name} has no posterior of its own ({relative}); "
                         f"allowed: params={' or params='.join(having)} (each with its posterior), "
                         f"or ensemble.file=PATH to run these params on another posterior")
    ensemble["file"] = relative
    out["ensemble"] = ensemble
    return out


def posterior_path(value: Any) -> Path:
    """The posterior draws file: absolute, or relative to the repository (default in sim/data)."""
    path = Path(str(value or DEFAULT_POSTERIOR))
    return path if path.is_absolute() else REPO / path


def sample_priors(n_draws: int, seed: int, skip: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """n_draws values of every parameter whose role is in PRIOR_ROLES (not in `skip`, e.g. those
    the posterior file samples), from its declared prior (`prior_distribution`, truncated to the
    bounds), seeded by `seed`."""
    rng = np.random.default_rng([seed, PRIOR_STREAM])
    return {name: sample_prior_values(name, n_draws, rng)
            for name in names_with_role(*PRIOR_ROLES) if name not in skip}


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's content; a missing or unreadable file is an InputError."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise InputError(f"ensemble.file: value {str(path)!r} cannot be read "
                         f"({exc.strerror or type(exc).__name__})") from None


def _ids_from(digest: str, pick: np.ndarray, priors: tuple[int, int] | None = None) -> IdsForDraws:
    """Identities of draws [a, b): '<file hash>:<row>' for rows pick[a:b], followed by
    ':priors<seed>/<size>/<i>' when the draw also takes prior draws of the unidentified constants
    (`sample_priors`: the i-th of `size` draws of seed `seed`), so that equal identities always
    mean equal parameter sets."""
    prefix = digest[:16]

    def ids(a: int, b: int) -> np.ndarray:
        if priors is None:
            return np.array([f"{prefix}:{row}" for row in pick[a:b]], dtype=object)
        seed, size = priors
        return np.array([f"{prefix}:{row}:priors{seed}/{size}/{i}"
                         for i, row in zip(range(a, b), pick[a:b])], dtype=object)
    return ids


def _draws_from(base: ModelParameters, names: list[str], values: np.ndarray,
                pick: np.ndarray, priors: dict[str, np.ndarray] | None = None) -> ParamsForDraws:
    """Parameters of draws [a, b): rows pick[a:b] of the posterior `values`, the prior draws
    `priors` (name -> values over all draws), the rest from `base`."""
    def params(a: int, b: int) -> ModelParameters:
        changes = {k: v[a:b] for k, v in (priors or {}).items()}
        changes.update({k: values[pick[a:b], i] for i, k in enumerate(names)})
        return base.replace(**changes)
    return params


def bootstrap_rows(n_rows: int, n_draws: int, seed: int) -> np.ndarray:
    """Rows of the posterior file taken by `posterior_bootstrap` (with replacement)."""
    return np.random.default_rng(seed).integers(0, n_rows, n_draws)


def posterior_bootstrap(base: ModelParameters, n_draws: int, seed: int,
                        draws_file: Path, with_priors: bool = True) -> ParamsForDraws:
    """Draws resampled with replacement from a posterior file (and the prior draws of the
    unidentified constants); parameters of draws [a, b)."""
    from sim.calibrate.fit import read_draws
    names, values = read_draws(draws_file)
    pick = bootstrap_rows(len(values), n_draws, seed)
    priors = sample_priors(n_draws, seed, tuple(names)) if with_priors else None
    return _draws_from(base, names, values, pick, priors)


def chunk_range(spec: Any, n_draws: int, chunk_size: int) -> tuple[int, int]:
    """Draws [a, b) of job 'k/K' (k = 0..K-1): a contiguous run of whole canonical chunks."""
    allowed = "'k/K' with 0 <= k < K, e.g. '3/16', or null (all draws)"
    try:
        k, total = (int(x) for x in str(spec).split("/"))
    except ValueError:
        raise InputError(f"ensemble.chunk: value {spec!r} not allowed; allowed: {allowed}") from None
    if not 0 <= k < total:
        raise InputError(f"ensemble.chunk: value {spec!r} not allowed; allowed: {allowed}")
    n_chunks = -(-n_draws // chunk_size)
    if total > n_chunks:
        raise InputError(f"ensemble.chunk: value {spec!r} not allowed: {n_draws} draws make "
                         f"{n_chunks} chunk(s) of {chunk_size}; allowed: K <= {n_chunks}")
    first, last = (k * n_chunks) // total, ((k + 1) * n_chunks) // total
    return min(first * chunk_size, n_draws), min(last * chunk_size, n_draws)


def ensemble_of(base: ModelParameters, cfg: Mapping[str, Any]) -> Ensemble:
    """Validate the `ensemble` config and return the draws it selects (see `Ensemble`).

    name 'none': the draw(s) of `base`.
    name 'posterior': `size` draws of the posterior file (MCMC draws of the calibrated parameters),
    chosen without replacement by `seed`; the substitution constants and other uncertainties
    (PRIOR_ROLES) drawn from their priors unless `sample_priors` is false; every other parameter
    from `base`.
    name 'posterior_bootstrap': `size` draws resampled with replacement (any size).
    """
    from sim.calibrate.fit import check_posterior_belongs, read_draws  # local: light for plain runs

    opts = validate(EnsembleSection, "ensemble", cfg)
    name, size, seed, chunk_size = opts.name, opts.size, opts.seed, opts.chunk_size
    with_priors = opts.sample_priors
    if name == "none":
        return Ensemble(lambda a, b: base, base.n_draws, None, None, (0, base.n_draws))
    draws = (0, size) if opts.chunk is None else chunk_range(opts.chunk, size, chunk_size)
    path = posterior_path(opts.file)
    if base.n_draws != 1:
        raise InputError(f"ensemble.name: {name!r} needs single-valued params, got "
                         f"{base.n_draws} draws")
    try:
        # the file checked against the declared parameters before any value is used: the header
        # once, each parameter column once, every row as long as the header, finite numbers
        # inside each parameter's bounds; one line naming the line and column, quoting nothing
        # of the file but numbers and declared names
        import csv
        import math

        where = f"ensemble.file: value {str(path)!r}"
        allowed = "allowed: a posterior draws CSV (fentsim-calibrate calibration.ensemble=true)"
        declared, extra = set(ModelParameters.names()), ("draw", "log_posterior")
        lines = []
        if path.is_file():   # (a missing file: read_draws says how to make one)
            with path.open(encoding="utf-8") as fh:
                lines = [(i, ln) for i, ln in enumerate(fh, 1)
                         if ln.strip() and not ln.startswith("#")]
        if lines:
            header = next(csv.reader([lines[0][1]]))
            for j, col in enumerate(header, 1):
                if col not in declared and col not in extra:
                    raise InputError(f"{where}: line {lines[0][0]}, column {j} of the header is not "
                                     f"a model parameter; {allowed} (columns draw, log_posterior "
                                     f"and parameters fentsim-doc lists)")
                if header.index(col) != j - 1:
                    raise InputError(f"{where}: line {lines[0][0]}, column {j} ({col}) appears "
                                     f"twice in the header; {allowed}")
            for number, row in zip((i for i, _ in lines[1:]),
                                   csv.reader(ln for _, ln in lines[1:])):
                if row == header:
                    raise InputError(f"{where}: line {number} repeats the header; {allowed} "
                                     f"(the header once, at the top)")
                if len(row) != len(header):
                    raise InputError(f"{where}: line {number} has {len(row)} value(s), the header "
                                     f"{len(header)}; {allowed}")
                for col, cell in zip(header, row):
                    try:
                        value = float(cell)
                    except ValueError:
                        raise InputError(f"{where}: line {number}, column {col}: not a number; "
                                         f"{allowed}") from None
                    if col in extra:
                        continue
                    lo, hi = ModelParameters.metadata(col)["bounds"]
                    if not math.isfinite(value) or not lo <= value <= hi:
                        raise InputError(f"{where}: line {number}, column {col}: value {value!r} "
                                         f"not allowed; allowed: a finite number in [{lo}, {hi}] "
                                         f"({ModelParameters.metadata(col)['units']})")
        names, values = read_draws(path)
    except (UnicodeDecodeError, OSError) as exc:  # binary or unreadable: name it, quote nothing
        raise InputError(f"ensemble.file: value {str(path)!r} cannot be read as a CSV file of "
                         f"draws ({type(exc).__name__}); allowed: a posterior draws CSV "
                         f"(fentsim-calibrate calibration.ensemble=true)") from None
    check_posterior_belongs(base, path, names)
    digest = file_sha256(path)
    inputs = {"ensemble.file": digest}
    if name == "posterior_bootstrap":
        pick = bootstrap_rows(len(values), size, seed)
    else:
        if size > len(values):
            raise InputError(f"ensemble.size: value {size} exceeds the {len(values)} draws in "
                             f"{path.name}; allowed: 1..{len(values)}")
        pick = np.sort(np.random.default_rng(seed).choice(len(values), size=size, replace=False))
    priors = sample_priors(size, seed, tuple(names)) if with_priors else None
    return Ensemble(_draws_from(base, names, values, pick, priors), size, seed, chunk_size, draws,
                    _ids_from(digest, pick, (seed, size) if with_priors else None), inputs)


def build_ensemble(base: ModelParameters, cfg: Mapping[str, Any]) -> tuple[ModelParameters, int | None]:
    """The parameter draws of this job (all at once) and the seed used (or None)."""
    ensemble = ensemble_of(base, cfg)
    return ensemble.params(), ensemble.seed
