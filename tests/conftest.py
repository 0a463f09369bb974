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
