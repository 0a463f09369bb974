"""The model's outputs equal the stored regression baseline (tests/reference_cases.py).

A deliberate change of behaviour regenerates the file (`python -m tests.reference_cases --update`)
in the same commit; any other change to the equations, engines or configs that moves a number by
more than 1e-9 relative fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.reference_cases import REFERENCE_FILE, cases, run_case

RTOL = 1e-9


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE_FILE) as stored:
        return dict(stored)


@pytest.mark.parametrize("case", list(cases()))
def test_outputs_match_reference(case, reference):
    values = run_case(cases()[case])
    for var, got in values.items():
        want = reference[f"{case}:{var}"]
        assert got.shape == want.shape, f"{case}:{var} shape {got.shape} != stored {want.shape}"
        assert np.array_equal(np.isnan(got), np.isnan(want)), f"{case}:{var} NaN where stored is not"
        got, want = got[~np.isnan(want)], want[~np.isnan(want)]
        scale = np.maximum(np.abs(want), 1e-6 * np.max(np.abs(want), initial=0.0) + 1e-300)
        worst = float(np.max(np.abs(got - want) / scale, initial=0.0))
        assert worst <= RTOL, f"{case}:{var} differs from the reference by {worst:.3g} (relative)"


def test_reference_covers_every_case(reference):
    stored = {key.split(":")[0] for key in reference}
    assert stored == set(cases()), "reference file out of date: run python -m tests.reference_cases --update"
