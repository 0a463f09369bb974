"""Checks every Hydra command of fentsim makes before Hydra runs anything (`preflight`).

Config files (experiments especially) are shared between researchers: they are data, not code.
So before Hydra instantiates anything, the composed config is read and refused in one line (exit
status 2) when it

- names a callback (`hydra.callbacks.*._target_`), launcher or sweeper outside the allow-list
  (the project's own and Hydra's launchers: basic, joblib, submitit, fentsim's slurm);
- configures logging to call a factory (`()`), use a handler class other than Python's stream,
  file and null handlers, or write a log file outside the run folder;
- gives `hydra.job.name` a value that is not a plain file name (`../../X`), or
  `hydra.output_subdir` a folder outside the run folder;
- holds an interpolation that does not resolve (`params.x=${oops}`, `${oc.env:NOT_SET}`), or an
  override without a key (`=2`);
- has a run folder whose log or config folder is a symbolic link (written through otherwise).

A timestamped run or sweep folder (`${now:...}` in `hydra.run.dir` / `hydra.sweep.dir`, the
default) is created here exclusively, with a suffix `_2`, `_3`, ... when another command started
in the same second took the name, and passed to Hydra as an override: two commands never share a
folder.  If the command then stops with an error, the folder is removed again while it is empty.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from sim.errors import InputError

ALLOWED_CALLBACKS = ("sim.cli.sweep.AggregateSweep",
                     "hydra.experimental.callbacks.LogJobReturnCallback")
ALLOWED_LAUNCHERS = ("hydra._internal.core_plugins.basic_launcher.BasicLauncher",
                     "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
                     "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
                     "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
                     "hydra_plugins.fentsim_slurm.FentsimSlurmLauncher")
ALLOWED_SWEEPERS = ("hydra._internal.core_plugins.basic_sweeper.BasicSweeper",)
ALLOWED_LOG_HANDLERS = ("logging.StreamHandler", "logging.FileHandler", "logging.NullHandler")
LOG_FILE_PREFIX = "${hydra.runtime.output_dir}/"
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
INFO_FLAGS = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--resolve",
              "--shell-completion", "-sc", "--version")

_reserved: list[Path] = []   # folders created by `reserve_folder` in this process
TYPED: tuple[str, list[str]] | None = None   # (command, arguments) as the user typed them


def _targets(node: Any, where: str) -> list[tuple[str, str]]:
    """(config key, `_target_`) of every instantiable node under `node`."""
    found = []
    if isinstance(node, DictConfig):
        for key in node.keys():
            value = node._get_node(key)
            if key == "_target_":
                found.append((where, str(value._value() if hasattr(value, "_value") else value)))
            else:
                found += _targets(value, f"{where}.{key}")
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            found += _targets(node._get_node(i), f"{where}[{i}]")
    return found


def check_callbacks(hydra_cfg: DictConfig) -> None:
    """InputError unless every callback, the launcher and the sweeper are in the allow-lists."""
    for key, allowed in (("callbacks", ALLOWED_CALLBACKS), ("launcher", ALLOWED_LAUNCHERS),
                         ("sweeper", ALLOWED_SWEEPERS)):
        node = hydra_cfg._get_node(key) if key in hydra_cfg else None
        if node is None or (isinstance(node, DictConfig) and node._is_none()):
            continue
        for where, target in _targets(node, f"hydra.{key}"):
            if target not in allowed:
                raise InputError(f"{where}._target_: value {target!r} not allowed (config files "
                                 f"are data, not code); allowed: {', '.join(allowed)}")


def _logging_problem(node: Any, where: str) -> str | None:
    """What is unsafe in a logging config (a factory, a foreign handler, a log file elsewhere)."""
    if isinstance(node, DictConfig):
        for key in node.keys():
            child = node._get_node(key)
            if key == "()":
                return f"{where}.(): a factory is not allowed in a logging config"
            if key == "class" and where.rsplit(".", 2)[-2:-1] == ["handlers"]:
                value = str(child._value())
                if value not in ALLOWED_LOG_HANDLERS:
                    return (f"{where}.class: value {value!r} not allowed; allowed: "
                            f"{', '.join(ALLOWED_LOG_HANDLERS)}")
            if key == "filename":
                value = str(child._value())
                rest = value[len(LOG_FILE_PREFIX):] if value.startswith(LOG_FILE_PREFIX) else None
                if rest is None or "/" in rest.replace("${hydra.job.name}", "x") or ".." in rest:
                    return (f"{where}.filename: value {value!r} not allowed; allowed: a file "
                            f"directly in the run folder, {LOG_FILE_PREFIX}NAME.log")
            problem = _logging_problem(child, f"{where}.{key}")
            if problem:
                return problem
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            problem = _logging_problem(node._get_node(i), f"{where}[{i}]")
            if problem:
                return problem
    return None


def check_paths(hydra_cfg: DictConfig) -> None:
    """InputError if the job name or the config folder would put files outside the run folder,
    or the logging config calls code or writes elsewhere."""
    name = OmegaConf.select(hydra_cfg, "job.name", default=None)
    if name is not None and not PLAIN_NAME.match(str(name)):
        raise InputError(f"hydra.job.name: value {str(name)!r} not allowed (it names the log file "
                         f"in the run folder); allowed: a plain name of letters, digits, _ . + -")
    subdir = OmegaConf.select(hydra_cfg, "output_subdir", default=None)
    if subdir is not None:
        norm = os.path.normpath(str(subdir))
        if os.path.isabs(norm) or norm == ".." or norm.startswith("../") or norm == ".":
            raise InputError(f"hydra.output_subdir: value {str(subdir)!r} not allowed (outside "
                             f"the run folder); allowed: a folder name inside it such as .hydra, "
                             f"or null")
    for key in ("job_logging", "hydra_logging"):
        if key in hydra_cfg:
            problem = _logging_problem(hydra_cfg._get_node(key), f"hydra.{key}")
            if problem:
                raise InputError(problem)


def check_resolves(cfg: DictConfig) -> None:
    """InputError naming the key if an interpolation of the job config does not resolve."""
    from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

    job = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"])
    try:
        OmegaConf.to_container(job, resolve=True)
    except InterpolationResolutionError as exc:
        key = getattr(exc, "full_key", None) or "a value"
        reason = str(exc).strip().splitlines()[0]
        raise InputError(f"{key}: value does not resolve ({reason}); allowed: a plain value, or "
                         f"an interpolation of a key of the config") from None
    except OmegaConfBaseException:
        return  # other problems: the command names them itself


def check_symlinks(folder: Path) -> None:
    """InputError if an existing run folder holds its log or config folder as a symbolic link."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_symlink() and (entry.suffix == ".log" or entry.name in (".hydra",)
                                   or entry.suffix == ".nc"):
            raise InputError(f"hydra.run.dir: {str(entry)!r} is a symbolic link (fentsim never "
                             f"writes through links); allowed: remove the link, or another "
                             f"hydra.run.dir")


def reserve_folder(pattern_value: str) -> Path:
    """Create the folder `pattern_value` exclusively (suffix _2, _3, ... if taken); return it."""
    base = Path(pattern_value)
    base.parent.mkdir(parents=True, exist_ok=True)
    for k in range(1, 10_000):
        candidate = base if k == 1 else base.with_name(f"{base.name}_{k}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        _reserved.append(candidate)
        return candidate
    raise InputError(f"hydra.run.dir: no free folder name like {str(base)!r}")


def discard_reserved() -> None:
    """Remove the folders `reserve_folder` made while they are still empty (a refused command)."""
    while _reserved:
        folder = _reserved.pop()
        with contextlib.suppress(OSError):
            folder.rmdir()


def _compose(config_dir: str, config_name: str, overrides: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            return compose(config_name, overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def _quoted(value: str) -> str:
    """A value in Hydra's override grammar (quoted if it holds characters the grammar reserves)."""
    if re.fullmatch(r"[A-Za-z0-9_./:+-]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def preflight(config_dir: str, config_name: str, argv: list[str]) -> list[str]:
    """The checks of the module doc on the config `argv` composes; returns argv with the reserved
    run (or sweep) folder added as an override.  Hydra's own errors are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if any(a in INFO_FLAGS or a.startswith("--cfg") or a.startswith("--info") for a in argv):
        return argv
    args = [a for a in argv if not a.startswith("-")]
    for arg in args:
        if "=" in arg and not arg.split("=", 1)[0].strip("+~"):
            raise InputError(f"override {arg!r}: no key before '='; allowed: KEY=VALUE, e.g. "
                             f"params.relapse_rate=0.5")
        if re.match(r"^~(params|levers|scenario|solver|ensemble|funding|costs)\.", arg):
            key = arg[1:].split("=", 1)[0]
            raise InputError(f"override {arg!r}: deleting {key} runs its default silently; "
                             f"allowed: {key}=VALUE (fentsim-doc lists the values)")
    multirun = any(a in ("-m", "--multirun") for a in argv)
    try:
        parsed = OverridesParser.create().parse_overrides(args)
        single = [o.input_line for o in parsed if not o.is_sweep_override()]
        cfg = _compose(config_dir, config_name, [s for s in single if s is not None])
    except Exception:  # noqa: BLE001 - Hydra reports bad overrides itself, in one line (app.py)
        return argv
    hydra_cfg = cfg.hydra
    check_callbacks(hydra_cfg)
    check_paths(hydra_cfg)
    check_resolves(cfg)
    key = "sweep.dir" if multirun else "run.dir"
    raw = OmegaConf.select(hydra_cfg, key, throw_on_resolution_failure=False)
    raw_text = str(hydra_cfg[key.split(".")[0]]._get_node(key.split(".")[1])._value())
    folder = Path(str(raw)) if raw is not None else None
    if folder is None:
        return argv
    if not multirun:
        check_symlinks(folder)
    if "${now:" not in raw_text or any(a.startswith(f"hydra.{key}=") for a in args):
        return argv
    reserved = reserve_folder(str(folder))
    return [*argv, f"hydra.{key}={_quoted(str(reserved))}"]


def preflight_argv(prog: str, config_dir: str, config_name: str) -> None:
    """`preflight` on sys.argv, in place (the arguments as typed kept in TYPED)."""
    global TYPED
    TYPED = (prog, list(sys.argv[1:]))
    sys.argv[1:] = preflight(config_dir, config_name, sys.argv[1:])
