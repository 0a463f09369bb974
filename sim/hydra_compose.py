"""Hydra's Compose API for the Python API: the config `fentsim` composes, from Python.

The one module outside `sim/cli` that imports Hydra (tests/test_architecture.py).  The console
commands are Hydra apps; `sim.api` composes their configs with Hydra's own Compose API
(`hydra.compose` under `initialize_config_dir(configs/)`), so defaults lists, packages, the
override grammar and the experiment folders (`sim.paths.experiment_dirs()`, FENTSIM_EXPERIMENTS,
added by the search-path plugin `hydra_plugins/fentsim_searchpath`) are Hydra's, not a copy.

- `compose(config_name, overrides, values)`: the resolved plain config (no `hydra` section) and
  the option chosen in every group (Hydra's `hydra.runtime.choices`); `values` are Python values
  set on dotted keys after the overrides (as `key=value` would, unknown keys refused);
- `sweeper_params`: an experiment's `hydra.sweeper.params` as written;
- `options(group)`, `experiment_kind(name)`: what a group offers, what an experiment file is;
- `parse_override(text)`: one override by Hydra's own grammar -> (key, typed value), handed to
  the Hydra-free sweep code (`sim.sweeps.aggregate`) by its callers.

Hydra keeps global state (`GlobalHydra`): every call here saves it, initialises its own, and puts
the caller's back afterwards, so the API may be called repeatedly and from inside a running Hydra
app (a `@hydra.main` function or a test's `initialize_config_dir`).  Hydra's errors become
`InputError`s with one line naming the field, the value and what is allowed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from hydra import compose as _hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import (ConfigCompositionException, HydraException, MissingConfigException,
                          OverrideParseException)
from hydra.core.singleton import Singleton
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from sim import paths
from sim.config import unknown_key_error
from sim.errors import InputError, did_you_mean, reject_unknown_keys

EXPERIMENT_GROUP = "experiment"
VERSION_BASE = "1.3"


def declared_nodes() -> dict[str, dict[str, Any]]:
    """Config blocks derived from the model's declarations, never restated in YAML, by their
    ConfigStore path: every parameter at its declared default (sim/model/parameters.py), every
    lever with no intervention in its declared default mode (sim/model/levers.py) and the `solver`
    group's option `default` (SolverSettings' field defaults, sim/engine/solver.py).  The primary
    configs list them in their defaults, so `params.X=...` and `levers.L.level=...` always name a
    key that exists, and a params file lists only what it changes."""
    import dataclasses

    from sim.engine.solver import SolverSettings
    from sim.model.levers import LeverSet
    from sim.model.parameters import ModelParameters

    defaults, solver = ModelParameters(), SolverSettings()
    return {"declared_params": {"params": {name: float(getattr(defaults, name))
                                           for name in ModelParameters.names()}},
            "declared_levers": {"levers": LeverSet.config_defaults()},
            "solver/default": {f.name: getattr(solver, f.name)
                               for f in dataclasses.fields(SolverSettings) if f.init}}


def register_declared_configs() -> None:
    """Put `declared_nodes()` in Hydra's ConfigStore (idempotent).  The search-path plugin
    (hydra_plugins/fentsim_searchpath) calls this whenever Hydra starts on fentsim's configs, so
    the console commands, the Compose API here, SLURM jobs and tests all see the same blocks."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for path, node in declared_nodes().items():
        group, _, name = path.rpartition("/")
        store.store(group=group or None, name=name, node=node)


@contextlib.contextmanager
def _hydra() -> Iterator[GlobalHydra]:
    """Hydra initialised on fentsim's configs; the caller's GlobalHydra (a running app's) is set
    aside meanwhile and put back, the same object, afterwards."""
    saved = Singleton._instances.pop(GlobalHydra, None)
    try:
        with initialize_config_dir(config_dir=str(paths.CONFIG_DIR), version_base=VERSION_BASE,
                                   job_name="fentsim"):
            yield GlobalHydra.instance()
    finally:
        Singleton._instances.pop(GlobalHydra, None)
        if saved is not None:
            Singleton._instances[GlobalHydra] = saved


def hydra_error_line(exc: Exception, config_name: str = "config", command: str | None = None,
                     groups: Sequence[str] | None = None) -> str:
    """One line for Hydra's (multi-line) composition and override errors met composing
    `config_name` (for `command`, whose config groups are `groups`; default: the config's)."""
    if isinstance(exc, MissingConfigException) and exc.options is not None and exc.missing_cfg_file:
        group, _, name = str(exc.missing_cfg_file).rpartition("/")
        return (f"{group}: value {name!r} not allowed{did_you_mean(name, exc.options)}; allowed: "
                f"{', '.join(exc.options)}")
    cause = exc.__cause__ if isinstance(exc, ConfigCompositionException) else exc
    message = str(exc).strip()
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and getattr(cause, "full_key", None):
        full_key = str(cause.full_key)
        if config_name == "config" or full_key.startswith("hydra"):
            return str(unknown_key_error(full_key))
        return _unknown_in(config_name, full_key)
    match = re.search(r"Could not override '([^']+)'.*No match in the defaults list", message, re.S)
    if match:
        key = match.group(1)
        groups = list(groups) if groups is not None else config_groups(config_name)
        return (f"{key}: not a config group of {command or config_name}{did_you_mean(key, groups)}; "
                f"allowed: {', '.join(groups)}")
    match = re.search(r"Could not append to config. An item is already at '([^']+)'", message)
    if match:
        return (f"+{match.group(1)}: already in the config; allowed: {match.group(1)}=VALUE to "
                f"change it")
    first = message.splitlines()[0] if message else type(exc).__name__
    key = getattr(cause, "full_key", None)
    if isinstance(exc, OverrideParseException):
        return f"override syntax: {first} (see https://hydra.cc/docs/advanced/override_grammar/basic/)"
    return f"{key}: {first}" if key else first


def _unknown_in(config_name: str, full_key: str) -> str:
    """'KEY: unknown key (did you mean ...); allowed: ...' from `config_name`'s plain config
    (a top-level key named as it is, without a section in front)."""
    try:
        node: Any = compose(config_name)[0]
    except InputError:
        return f"{full_key}: unknown key"
    parts = full_key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict):
            break
        if part not in node:
            return (f"{'.'.join(parts[: i + 1])}: unknown key{did_you_mean(part, list(node))}; "
                    f"allowed: {', '.join(sorted(node))}")
        node = node[part]
    return f"{full_key}: unknown key"


def config_groups(config_name: str = "config") -> list[str]:
    """The config groups of `config_name`'s defaults list (Hydra's own groups left out)."""
    cfg = _composed(config_name, (), ())
    return sorted(str(k) for k in cfg.hydra.runtime.choices if not str(k).startswith("hydra/"))


def _unknown(cfg: DictConfig, key: str) -> InputError:
    """The one-line error for a dotted key missing from the composed config `cfg`."""
    node: Any = cfg
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, DictConfig) or part not in node:
            allowed = list(node) if isinstance(node, DictConfig) else []
            if i == 0:   # a top-level key: named alone, as the user typed it
                return InputError(f"{part}: unknown key{did_you_mean(part, allowed)}; allowed: "
                                  f"{', '.join(sorted(allowed))}")
            try:
                reject_unknown_keys(".".join(parts[:i]), [part], allowed)
            except InputError as exc:
                return exc
            break
        node = node[part]
    return InputError(f"{key}: unknown key")


def _set(cfg: DictConfig, key: str, value: Any) -> None:
    """Set dotted `key` of `cfg` to the Python `value` as the override `key=value` does."""
    if OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:
        raise _unknown(cfg, key)
    OmegaConf.update(cfg, key, value, merge=True)


_MISSING = object()


def _composed(config_name: str, overrides: Sequence[str], values: Sequence[tuple[str, Any]]
              ) -> DictConfig:
    """Hydra's composition of `config_name` with `overrides`, then `values`; `hydra` included."""
    with _hydra():
        try:
            cfg = _hydra_compose(config_name, overrides=[str(o) for o in overrides],
                                 return_hydra_config=True)
        except (HydraException, OmegaConfBaseException, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            sweep = next((o for o in overrides if _parsed(o).is_sweep_override()), None)
            if sweep is not None:
                raise InputError(f"override {sweep!r}: a sweep (several values); allowed: one value "
                                 f"here, sim.api.sweep(...) or `fentsim -m {sweep}` for a sweep") from None
            raise InputError(hydra_error_line(exc)) from None
    for key, value in values:
        try:
            _set(cfg, key, value)
        except OmegaConfBaseException as exc:   # e.g. a new key inside a mapping value
            if getattr(exc, "full_key", None) and isinstance(exc, (ConfigKeyError, ConfigAttributeError)):
                raise InputError(hydra_error_line(exc, config_name)) from None
            raise InputError(f"{key}: value {value!r} not allowed ({str(exc).splitlines()[0]})") from None
    return cfg


def _parsed(text: str) -> Any:
    """Hydra's parse of one override; a syntax error is an InputError naming it."""
    try:
        return OverridesParser.create().parse_override(str(text))
    except HydraException as exc:
        raise InputError(f"override {str(text)!r}: not valid override syntax "
                         f"({str(exc).strip().splitlines()[0]}); allowed: key=value (e.g. "
                         f"scenario=china_crackdown or solver.end_year=2030)") from None


def compose(config_name: str = "config", overrides: Sequence[str] = (),
            values: Sequence[tuple[str, Any]] | Mapping[str, Any] = ()
            ) -> tuple[dict[str, Any], dict[str, str | None]]:
    """(the resolved plain config `fentsim` ('config'), `fentsim-study` ('study') or
    `fentsim-calibrate` ('calibrate') composes for `overrides` then `values` ({dotted key:
    Python value}), the option chosen in every group); the `hydra` section is left out."""
    items = list(values.items()) if isinstance(values, Mapping) else list(values)
    cfg = _composed(config_name, overrides, items)
    choices = {str(k): (None if v is None else str(v))
               for k, v in OmegaConf.to_container(cfg.hydra.runtime.choices).items()}
    OmegaConf.set_struct(cfg, False)
    del cfg["hydra"]
    return OmegaConf.to_container(cfg, resolve=True), choices  # type: ignore[return-value]


def sweeper_params(config_name: str = "config", overrides: Sequence[str] = ()) -> dict[str, str]:
    """`hydra.sweeper.params` of the composed config ({override key: comma-separated values})."""
    cfg = _composed(config_name, overrides, ())
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    return {str(k): str(v) for k, v in OmegaConf.to_container(params).items()}


def options(group: str) -> list[str]:
    """The option names of a config group as Hydra sees them (e.g. options('scenario'));
    `experiment` lists every experiment folder's files."""
    with _hydra() as gh:
        return sorted(set(gh.config_loader().get_group_options(group)))


def experiment_kind(name: str) -> str:
    """'sweep' (carries hydra.sweeper.params: `fentsim -m`), 'study' (a `study` section:
    `fentsim-study`) or 'run' (a single `fentsim` run) for the experiment file `name`."""
    for folder in paths.experiment_dirs():
        path = folder / f"{name}.yaml"
        if path.is_file():
            body = OmegaConf.load(path)
            if "study" in body:
                return "study"
            return "sweep" if OmegaConf.select(body, "hydra.sweeper.params") else "run"
    allowed = options(EXPERIMENT_GROUP)
    raise InputError(f"experiment: value {name!r} not allowed{did_you_mean(name, allowed)}; "
                     f"allowed: {', '.join(allowed)}")


def parse_override(text: str) -> tuple[str, Any]:
    """One override by Hydra's grammar -> (key without +/++/~, typed value): `5e-1` and `0.50`
    are the float 0.5, 'quoted' a string; a list, a map or null is kept as Hydra writes it."""
    override = _parsed(text)
    key = override.key_or_group + (f"@{override.package}" if override.package else "")
    if override.value_type is None:          # ~key
        return key, None
    value = override.value()
    if isinstance(value, (dict, list)) or value is None:
        value = override.get_value_element_as_str()
    return key, value


def sweep_values(key: str, values: str) -> list[Any]:
    """The values of a sweep override `key=values` (`a,b`, `range(1,4)`, `choice(...)`) by
    Hydra's grammar, typed as `parse_override` types them."""
    override = _parsed(f"{key}={values}")
    if not override.is_sweep_override():
        return [parse_override(f"{key}={values}")[1]]
    return [parse_override(f"{key}={text}")[1] for text in override.sweep_string_iterator()]
