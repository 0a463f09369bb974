"""The package's folders are its layers, and every import runs down them (no exception).

Layers, lowest first: sim.errors, sim.paths and sim.schema (config sections declared as pydantic
models); sim.model; sim.engine; sim.results; sim.funding;
sim.calibrate; sim.config; sim.sweeps; sim.study; sim.hydra_compose (Hydra's Compose API for the
Python API); sim.api (the Python API); sim.cli.  Imports inside functions count too.  Hydra is
imported by the command-line layer and the adapter sim.hydra_compose alone, and the modules of
sim.cli import each other without a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parents[1] / "sim"
LAYERS = ["sim.errors", "sim.paths", "sim.model", "sim.engine", "sim.results", "sim.funding",
          "sim.calibrate", "sim.config", "sim.sweeps", "sim.study", "sim.hydra_compose", "sim.api",
          "sim.cli"]
ROOT_LEVEL = {"sim.errors": 0, "sim.paths": 0, "sim.schema": 0, "sim.numba_cache": 0}
HYDRA_ALLOWED = ("sim.cli", "sim.hydra_compose")


def layer(module: str) -> int:
    """Rank of a module's layer (errors, paths and schema share the root rank)."""
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
            assert module.startswith(HYDRA_ALLOWED), \
                f"{module} imports {target} (Hydra only in sim.cli and sim.hydra_compose)"


def test_no_import_circle_in_the_cli():
    """The modules of sim/cli import each other (anywhere in the file) without a circle."""
    cli = {name: path for name, path in modules() if name.startswith("sim.cli.")}
    edges = {name: {t for t in imported(path) if t in cli and t != name} for name, path in cli.items()}

    def reach(start: str, seen: set[str]) -> set[str]:
        for nxt in edges[start] - seen:
            seen.add(nxt)
            reach(nxt, seen)
        return seen

    circles = sorted(name for name in cli if name in reach(name, set()))
    assert not circles, f"import circle through {circles}: {({n: sorted(edges[n]) for n in circles})}"


def test_no_flat_modules_left():
    """Every module lives in a layer's folder, except the root modules, sim.config, the Hydra
    adapter and sim.api."""
    flat = {p.stem for p in SIM.glob("*.py")} - {"__init__", "errors", "paths", "schema", "config",
                                                 "hydra_compose", "api", "numba_cache"}
    assert not flat, f"modules outside the layer folders: {sorted(flat)}"
