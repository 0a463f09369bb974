"""Compose fentsim's configuration without Hydra: the same plain mapping the command line builds.

The console commands are Hydra apps; the Python API (`sim.api`) composes the same YAML files
(`configs/`, and the experiment folders of `sim.paths.experiment_dirs()`) with the small part
of Hydra's rules they use, so that `sim.run()` runs what `fentsim` runs:

- the primary config's `defaults` list: `_self_`, `group: option` (or null), in order; a config
  without `_self_` in its list is merged after its defaults;
- a group option's package: its group (`params`, ...), or the root with `# @package _global_`;
- defaults inside an option: other configs (`/scenario/naloxone_up`, or `article` in the same
  group) and `override /group: option`, which changes the primary choice unless the caller chose;
- overrides in Hydra's syntax: `group=option`, `key=value`, `+key=value` (add), `++key=value`
  (add or set), `~key` (delete).  Values: null, true/false, numbers, 'quoted' strings, [lists],
  {maps}; a comma list (a sweep) is refused: sweeps are `sim.api.sweep` or `fentsim -m`.

Everything under `hydra` is Hydra's (launchers, sweeps, output folders); `compose` drops it,
`compose_with_hydra` keeps it uninterpolated (the experiment's `hydra.sweeper.params`).
`tests/test_compose.py` checks the result against Hydra's own composition for every option.
Mistakes raise InputError with one line naming the override, the value and what is allowed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sim import paths
from sim.errors import InputError, did_you_mean, reject_unknown_keys

EXPERIMENT_GROUP = "experiment"
_HEADER = re.compile(r"^#\s*@package\s+(\S+)", re.MULTILINE)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader reading floats such as 1e-5 as OmegaConf does (YAML 1.2 style)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+][0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml(path: Path) -> tuple[dict[str, Any], str | None]:
    """(content, package from a `# @package` header or None) of a config file."""
    text = path.read_text(encoding="utf-8")
    header = _HEADER.search("\n".join(text.splitlines()[:5]))
    try:
        data = yaml.load(text, Loader=_Loader) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"config file {str(path)!r}: not valid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise InputError(f"config file {str(path)!r}: expected a mapping of keys to values")
    return data, header.group(1) if header else None


# --- where the files are -------------------------------------------------------------------------

def groups(config_dir: Path = paths.CONFIG_DIR) -> list[str]:
    """The config groups (folders of YAML files) of fentsim, `experiment` included."""
    found = sorted(p.name for p in config_dir.iterdir() if p.is_dir() and p.name != "hydra"
                   and not p.name.startswith(("_", ".")))
    return sorted({*found, EXPERIMENT_GROUP})


def options(group: str, config_dir: Path = paths.CONFIG_DIR) -> list[str]:
    """The option names of a config group (file stems), e.g. options('scenario')."""
    if group == EXPERIMENT_GROUP:
        folders = paths.experiment_dirs()
    else:
        folders = [config_dir / group]
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.yaml")})


def option_path(group: str, name: str, config_dir: Path = paths.CONFIG_DIR) -> Path:
    """The file of option `name` of `group`; InputError naming the allowed options if none."""
    folders = paths.experiment_dirs() if group == EXPERIMENT_GROUP else [config_dir / group]
    for folder in folders:
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    allowed = options(group, config_dir)
    if not allowed and group not in groups(config_dir):
        raise InputError(f"{group}: not a config group{did_you_mean(group, groups(config_dir))}; "
                         f"allowed: {', '.join(groups(config_dir))}")
    raise InputError(f"{group}: value {name!r} not allowed{did_you_mean(str(name), allowed)}; "
                     f"allowed: {', '.join(allowed)}")


# --- merging -------------------------------------------------------------------------------------

def merge(base: dict[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `other` into `base` in place as OmegaConf does: maps recursively, the rest replaced."""
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
    return base


def _at(package: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` placed at a dotted package ('' or '_global_' = the root)."""
    if package in ("", "_global_"):
        return dict(body)
    out: dict[str, Any] = dict(body)
    for part in reversed(package.split(".")):
        out = {part: out}
    return out


def _split_default(entry: Any, where: str) -> tuple[str, str | None, bool]:
    """A defaults-list entry -> (group or config path, option or None, is_override)."""
    if isinstance(entry, str):
        return entry, None, False
    if isinstance(entry, Mapping) and len(entry) == 1:
        key, value = next(iter(entry.items()))
        key = str(key)
        override = key.startswith("override ")
        return key.removeprefix("override ").strip(), None if value is None else str(value), override
    raise InputError(f"{where}: defaults entry {entry!r} not understood")


class _Composer:
    def __init__(self, config_dir: Path, choices: dict[str, str | None]) -> None:
        self.config_dir = config_dir
        self.choices = choices          # group -> option chosen (by the primary or the caller)
        self.fixed = set(choices)       # groups the caller chose: config overrides do not apply

    def option(self, group: str, name: str) -> tuple[dict[str, Any], str]:
        path = option_path(group, name, self.config_dir)
        body, package = load_yaml(path)
        return body, package if package is not None else group.replace("/", ".")

    def declared_overrides(self, body: Mapping[str, Any], group: str) -> Iterable[tuple[str, str | None]]:
        """`override /group: option` entries of a config and of the configs it includes."""
        for entry in body.get("defaults") or []:
            target, option, override = _split_default(entry, group)
            if override:
                yield target.lstrip("/"), option
            elif option is None and not target.startswith("_self_"):
                path, sub = self._config_ref(target, group)
                sub_body, _ = self.option(path, sub)
                yield from self.declared_overrides(sub_body, path)

    def _config_ref(self, target: str, group: str) -> tuple[str, str]:
        """A config default ('/scenario/x' absolute, 'x' in the same group) -> (group, name)."""
        if target.startswith("/"):
            path, _, name = target.lstrip("/").rpartition("/")
            return path, name
        return group, target

    def node(self, group: str, name: str) -> dict[str, Any]:
        """The option `name` of `group` with its own defaults, placed at the root."""
        body, package = self.option(group, name)
        defaults = list(body.pop("defaults", None) or [])
        if "_self_" not in defaults:
            defaults.append("_self_")
        out: dict[str, Any] = {}
        for entry in defaults:
            target, option, override = _split_default(entry, f"{group}/{name}")
            if override or target.startswith("hydra"):
                continue
            if target == "_self_":
                merge(out, _at(package, body))
            elif option is None:
                merge(out, self.node(*self._config_ref(target, group)))
            else:
                merge(out, self.node(target, option))
        return out


# --- overrides -----------------------------------------------------------------------------------

_SWEEP_FUNCTIONS = ("range(", "choice(", "glob(", "interval(", "tag(", "sort(", "shuffle(")


def _split_top(text: str, sep: str) -> list[str]:
    """Split at `sep` outside brackets and quotes."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def parse_value(text: str) -> Any:
    """A value in Hydra's override syntax -> Python (null, bool, int, float, str, list, dict)."""
    s = text.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    if s.startswith("[") and s.endswith("]"):
        inner = s[1:-1].strip()
        return [parse_value(p) for p in _split_top(inner, ",")] if inner else []
    if s.startswith("{") and s.endswith("}"):
        inner = s[1:-1].strip()
        out = {}
        for item in _split_top(inner, ",") if inner else []:
            key, sep, value = item.partition(":")
            if not sep:
                raise InputError(f"override value {text!r}: expected {{key: value, ...}}")
            out[key.strip()] = parse_value(value)
        return out
    low = s.lower()
    if low == "null":
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(s.replace("_", "")) if re.fullmatch(r"[-+]?[0-9][0-9_]*", s) else float(s)
    except ValueError:
        return s


def parse_override(text: str) -> tuple[str, str, Any]:
    """'key=value' -> (op, key, value), op one of '=', '+', '++', '~'."""
    text = str(text).strip()
    if text.startswith("~"):
        key, _, value = text[1:].partition("=")
        return "~", key.strip(), parse_value(value) if value else None
    op = "++" if text.startswith("++") else "+" if text.startswith("+") else "="
    key, sep, value = text.lstrip("+").partition("=")
    key = key.strip()
    if not sep or not key:
        raise InputError(f"override {text!r}: expected key=value (e.g. scenario=china_crackdown "
                         f"or solver.end_year=2030)")
    if len(_split_top(value, ",")) > 1 or value.strip().startswith(_SWEEP_FUNCTIONS):
        raise InputError(f"override {text!r}: a sweep (several values); allowed: one value here, "
                         f"sim.api.sweep(...) or `fentsim -m {text}` for a sweep")
    return op, key, parse_value(value)


def _unknown(cfg: Mapping[str, Any], key: str) -> InputError:
    """The one-line error for a dotted key that is not in the composed config (as `fentsim`'s)."""
    parts = key.split(".")
    node: Any = cfg
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            allowed = list(node) if isinstance(node, Mapping) else []
            try:
                reject_unknown_keys(".".join(parts[:i]) or "config", [part], allowed)
            except InputError as exc:
                return exc
            break
        node = node[part]
    return InputError(f"{key}: unknown key")


def _set(cfg: dict[str, Any], op: str, key: str, value: Any) -> None:
    """Apply one value override; a key not in the config needs '+' (Hydra's struct mode)."""
    parts = key.split(".")
    node = cfg
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            if op not in ("+", "++") or part in node:
                raise _unknown(cfg, key)
            node[part] = {}
        node = node[part]
    last = parts[-1]
    if op == "~":
        if last not in node:
            raise _unknown(cfg, key)
        del node[last]
    elif op == "=" and last not in node:
        raise _unknown(cfg, key)
    elif op == "+" and last in node:
        raise InputError(f"+{key}: already in the config; allowed: {key}=VALUE to change it")
    elif isinstance(value, Mapping) and isinstance(node.get(last), dict):
        merge(node[last], value)   # as OmegaConf.update(..., merge=True) in Hydra
    else:
        node[last] = copy.deepcopy(value)


def set_value(cfg: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted `key` of a composed config to `value` (a Python value), as the override
    `key=value` would; a key not in the config is an InputError naming what is allowed."""
    _set(cfg, "=", key, value)


def dimension_name(key: str) -> str:
    """The dataset dimension (a Python identifier) of a swept override key:
    'scenario.intensity' -> 'scenario_intensity', 'levers.naloxone_kits.level' ->
    'levers_naloxone_kits_level'."""
    name = re.sub(r"\W", "_", key.lstrip("+~"))
    return name if not name[:1].isdigit() else f"_{name}"


# --- composing -----------------------------------------------------------------------------------

def compose_with_hydra(config_name: str = "config", overrides: Sequence[str] = (),
                       config_dir: Path = paths.CONFIG_DIR,
                       choices_out: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The composed config of `config_name` with `overrides`, the `hydra` section kept as written.
    With `choices_out`, that dict receives the option chosen in every group (Hydra's
    `hydra.runtime.choices`)."""
    primary_path = config_dir / f"{config_name}.yaml"
    if not primary_path.is_file():
        allowed = sorted(p.stem for p in config_dir.glob("*.yaml"))
        raise InputError(f"config_name: value {config_name!r} not allowed; allowed: {', '.join(allowed)}")
    primary, _ = load_yaml(primary_path)
    defaults = list(primary.pop("defaults", None) or [])
    if "_self_" not in defaults:
        defaults.append("_self_")
    entries = [_split_default(e, config_name) for e in defaults]
    primary_groups = [g for g, o, _ in entries if g != "_self_" and not g.startswith("hydra")
                      and (o is not None or g in groups(config_dir))]
    choices: dict[str, str | None] = {}
    values: list[tuple[str, str, Any]] = []
    group_names = groups(config_dir)
    for text in overrides:
        op, key, value = parse_override(text)
        if key.startswith("hydra"):
            continue  # Hydra's own settings (launcher, output folders): no meaning here
        if "." not in key and "/" not in key and key in group_names and op in ("=", "+"):
            if key not in primary_groups:
                raise InputError(f"{key}: not a config group of {config_name}; allowed: "
                                 f"{', '.join(primary_groups)}")
            choices[key] = None if value is None else str(value)
            continue
        if "/" in key:
            raise InputError(f"{key}: not a config group{did_you_mean(key, primary_groups)}; "
                             f"allowed: {', '.join(primary_groups)}")
        values.append((op, key, value))
    composer = _Composer(config_dir, dict(choices))
    for group, option, _ in entries:
        if group in primary_groups and group not in composer.choices:
            composer.choices[group] = option
    changed = True
    while changed:  # `override /group: option` in a chosen option (e.g. an experiment)
        changed = False
        for group in primary_groups:
            name = composer.choices.get(group)
            if name is None:
                continue
            body, _ = composer.option(group, name)
            for target, option in composer.declared_overrides(body, group):
                if target.startswith("hydra") or target in composer.fixed:
                    continue
                if target not in primary_groups:
                    raise InputError(f"{group}/{name}: override of {target!r}, not a group of "
                                     f"{config_name}")
                if composer.choices.get(target) != option:
                    composer.choices[target] = option
                    changed = True
    cfg: dict[str, Any] = {}
    for group, _option, _ in entries:
        if group == "_self_":
            merge(cfg, primary)
        elif group in primary_groups and composer.choices.get(group) is not None:
            merge(cfg, composer.node(group, composer.choices[group]))
    for op, key, value in values:
        _set(cfg, op, key, value)
    if choices_out is not None:
        choices_out.update(composer.choices)
    return cfg


def compose(config_name: str = "config", overrides: Sequence[str] = (),
            config_dir: Path = paths.CONFIG_DIR,
            choices_out: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The plain config `fentsim` (config_name 'config'), `fentsim-study` ('study') or
    `fentsim-calibrate` ('calibrate') composes for `overrides`, without Hydra's own section
    (`choices_out`: see `compose_with_hydra`)."""
    cfg = compose_with_hydra(config_name, overrides, config_dir, choices_out)
    cfg.pop("hydra", None)
    return cfg


def experiment_kind(name: str) -> str:
    """'sweep' (carries hydra.sweeper.params: `fentsim -m`), 'study' (a `study` section:
    `fentsim-study`) or 'run' (a single `fentsim` run) for the experiment file `name`."""
    body, _ = load_yaml(option_path(EXPERIMENT_GROUP, name))
    if "study" in body:
        return "study"
    sweeper = ((body.get("hydra") or {}).get("sweeper") or {})
    return "sweep" if sweeper.get("params") else "run"
