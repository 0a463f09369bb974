"""The integration and the result dataset make their arrays without numpy's huge-page advice
(sim/engine/memory.py), restore numpy's setting after, and leave it alone when the user set numpy's switch."""

from __future__ import annotations

import numpy as np
import pytest

import sim.engine.memory as memory
from sim.engine import solver
from sim.engine.solver import SolverSettings, integrate
from sim.engine.memory import NUMPY_SWITCH, ordinary_pages
from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters
from sim.results import dataset

advice = memory._multiarray._get_madvise_hugepage
set_advice = memory._set_advice
pytestmark = pytest.mark.skipif(set_advice is None, reason="this numpy has no huge-page advice")


@pytest.fixture
def advice_on(monkeypatch):
    """numpy's huge-page advice on (as numpy sets it on Linux 4.6 and newer), restored after."""
    monkeypatch.delenv(NUMPY_SWITCH, raising=False)
    previous = set_advice(True)
    yield
    set_advice(previous)


def test_ordinary_pages_turns_the_advice_off_inside_and_restores_it(advice_on):
    with ordinary_pages():
        assert advice() is False
        np.empty(1_000_000).fill(1.0)   # an 8 MB array: huge pages would have been advised
    assert advice() is True
    with pytest.raises(ZeroDivisionError), ordinary_pages():
        1 / 0
    assert advice() is True


def test_numpys_own_switch_wins(advice_on, monkeypatch):
    monkeypatch.setenv(NUMPY_SWITCH, "1")
    with ordinary_pages():
        assert advice() is True


def test_integration_and_dataset_run_with_ordinary_pages(advice_on, monkeypatch):
    seen = {}

    def noting(name, function):
        """`function`, noting numpy's advice when it is called."""
        def wrapped(*args):
            seen[name] = advice()
            return function(*args)
        return wrapped
    monkeypatch.setattr(solver, "_integrate", noting("integrate", solver._integrate))
    monkeypatch.setattr(dataset, "annual_totals", noting("dataset", dataset.annual_totals))
    params, levers, settings = ModelParameters(), LeverSet.from_mapping({}), SolverSettings(
        end_year=2012, output_step=1.0)
    dataset.to_dataset(integrate(params, levers, settings), params, levers, settings)
    assert seen == {"integrate": False, "dataset": False}
    assert advice() is True
