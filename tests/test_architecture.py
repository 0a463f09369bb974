"""The package's folders are its layers, and every import runs down them (no exception).

Layers, lowest first: sim.errors, sim.paths and sim.compose (Hydra-free composition of the YAML
configs); sim.model; sim.engine; sim.results; sim.calibrate; sim.config; sim.sweeps; sim.study;
sim.api (the Python API); sim.cli.  Imports inside functions count too.  Hydra is
imported by the command-line layer alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parents[1] / "sim"
LAYERS = ["sim.errors", "sim.paths", "sim.model", "sim.engine", "sim.results", "sim.funding",
          "sim.calibrate",
          "sim.config", "sim.sweeps", "sim.study", "sim.api", "sim.cli"]
ROOT_LEVEL = {"sim.errors": 0, "sim.paths": 0, "sim.compose": 0, "sim.numba_cache": 0}


def layer(module: str) -> int:
    """Rank of a module's layer (errors and paths share the root rank)."""
    for name, rank in ROOT_LEVEL.items():
        if module == name or module.startswith(name + "."):
            return rank
    for rank, name in enumerate(LAYERS):
        if module == name or module.startswith(name + "."):
            return rank
    raise AssertionError(f"{module} is in no layer")


def modules():
    for path in sorted(SIM.rglob("*.py")):
        rel = path.relative_to(SIM.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name == "sim.__init__":
            continue   # the public facade: lazy attribute look-ups only
        yield name.removesuffix(".__init__"), path


def imported(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "sim":
                yield from (f"sim.{alias.name}" for alias in node.names)
            else:
                yield node.module


@pytest.mark.parametrize("module,path", list(modules()), ids=lambda v: str(v))
def test_imports_run_down_the_layers(module, path):
    own = layer(module)
    for target in imported(path):
        if target.startswith("sim."):
            assert layer(target) <= own, f"{module} imports {target}, a layer above it"
        if target.split(".")[0] in ("hydra", "omegaconf"):
            assert module.startswith("sim.cli"), f"{module} imports {target} (Hydra only in sim.cli)"


def test_no_flat_modules_left():
    """Every module lives in a layer's folder, except the root modules, sim.config and sim.api."""
    flat = {p.stem for p in SIM.glob("*.py")} - {"__init__", "errors", "paths", "compose", "config",
                                                 "api", "numba_cache"}
    assert not flat, f"modules outside the layer folders: {sorted(flat)}"
