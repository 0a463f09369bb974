"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def calibrated_params():
    """The committed calibrated baseline (configs/params/calibrated.yaml) as ModelParameters."""
    import yaml

    from sim.model.parameters import ModelParameters
    values = yaml.safe_load((REPO / "configs" / "params" / "calibrated.yaml").read_text())
    return ModelParameters.from_mapping(values)


# The slowest files, slowest first (measured with --durations, 2026-12-01): under pytest-xdist's
# --dist loadscope (`make test`) each file (each class: test_readme_commands has two) runs on one
# worker, in this order, so the long ones start first and the many short files fill the workers at
# the end; with one process the order changes nothing else.
SLOW_FILES_FIRST = ("test_readme_commands.py", "test_reference.py", "test_integrity.py",
                    "test_kernel.py", "test_calibration.py", "test_sweeps.py", "test_trust.py",
                    "test_sampler.py", "test_funding.py", "test_install.py", "test_resume.py",
                    "test_chunked_cli.py", "test_api.py")


def pytest_collection_modifyitems(session, config, items):
    """Run the files of SLOW_FILES_FIRST first (a stable sort: each file's own order is kept)."""
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
