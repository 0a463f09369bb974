"""Hydra plugins that make fentsim's experiment folders the `experiment` config group.

`fentsim -m experiment=supply_vs_demand` then works from any working directory.  Two pieces:

- `ExperimentsConfigSource` (scheme `fentsim-experiments://`): a config source whose only group is
  `experiment`, backed by the files `<folder>/<name>.yaml` of one folder (any folder name);
- `FentsimSearchPathPlugin`: appends one such source per folder of `sim.paths.experiment_dirs()`
  (the user's folders in FENTSIM_EXPERIMENTS first, then the packaged `experiments/`) to the
  search path of the fentsim apps only (it acts when the search path already holds fentsim's
  `configs/` folder, so other Hydra apps in the same environment are not touched).
"""

from __future__ import annotations

import os
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

from sim.paths import CONFIG_DIR as CONFIGS_DIR
from sim.paths import experiment_dirs

GROUP = "experiment"
SCHEME = "fentsim-experiments"


class ExperimentsConfigSource(ConfigSource):
    """The group `experiment` backed by a folder of YAML files (any folder name)."""

    def __init__(self, provider: str, path: str) -> None:
        if path.find("://") == -1:
            path = f"{self.scheme()}://{path}"
        super().__init__(provider=provider, path=path)

    @staticmethod
    def scheme() -> str:
        return SCHEME

    def _folder_path(self, config_path: str) -> str | None:
        """Map a path inside the `experiment` group to a path inside the folder (None: not ours)."""
        config_path = config_path.strip("/")
        if config_path == GROUP:
            return ""
        if config_path.startswith(GROUP + "/"):
            return config_path[len(GROUP) + 1:]
        return None

    def load_config(self, config_path: str) -> ConfigResult:
        inner = self._folder_path(config_path)
        full = os.path.join(self.path, self._normalize_file_name(inner or ""))
        if inner is None or not os.path.isfile(full):
            raise ConfigLoadError(f"Config not found : {config_path}")
        with open(full, encoding="utf-8") as f:
            header = ConfigSource._get_header_dict(f.read(512))
            f.seek(0)
            cfg = OmegaConf.load(f)
        return ConfigResult(config=cfg, path=f"{self.scheme()}://{self.path}",
                            provider=self.provider, header=header)

    def available(self) -> bool:
        return os.path.isdir(self.path)

    def is_group(self, config_path: str) -> bool:
        if config_path.strip("/") == "":
            return self.available()
        inner = self._folder_path(config_path)
        return inner is not None and os.path.isdir(os.path.join(self.path, inner))

    def is_config(self, config_path: str) -> bool:
        inner = self._folder_path(config_path)
        if not inner:
            return False
        return os.path.isfile(os.path.join(self.path, self._normalize_file_name(inner)))

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        files: list[str] = []
        if config_path.strip("/") == "":
            if self.available() and results_filter in (None, ObjectType.GROUP):
                files.append(GROUP)
            return files
        inner = self._folder_path(config_path)
        if inner is None or not os.path.isdir(os.path.join(self.path, inner)):
            return files
        for name in os.listdir(os.path.join(self.path, inner)):
            self._list_add_result(files=files, file_path=f"{config_path.strip('/')}/{name}",
                                  file_name=name, results_filter=results_filter)
        return sorted(set(files))


class FentsimSearchPathPlugin(SearchPathPlugin):
    """Add the `experiment` group (fentsim's experiment folders) to fentsim's search path."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(_is_fentsim_configs(e.path) for e in search_path.get_path()):
            return
        from sim.hydra_compose import register_declared_configs
        register_declared_configs()   # params, levers and solver/default, from the declarations
        for folder in experiment_dirs():
            if folder.is_dir():
                search_path.append(provider="fentsim-experiments", path=f"{SCHEME}://{folder}")


def _is_fentsim_configs(path: str | None) -> bool:
    """True if a search-path entry (e.g. 'file:///repo/configs' or '/repo/configs') is fentsim's."""
    if not path:
        return False
    if path.startswith("file://"):
        path = path[len("file://"):]
    elif "://" in path:
        return False
    try:
        return Path(path).resolve() == CONFIGS_DIR.resolve()
    except OSError:
        return False
