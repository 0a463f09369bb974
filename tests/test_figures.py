"""Sweep figures a reader can use: small multiples against the baseline, no bar for the reference."""

from __future__ import annotations

import pytest

import sim
import sim.sweeps.plots as plots


@pytest.fixture(scope="module")
def grid():
    return sim.sweep({"scenario": ["baseline", "naloxone_up", "prevention"]},
                     solver={"end_year": 2028})


def test_one_panel_per_scenario_against_the_baseline(grid, monkeypatch):
    monkeypatch.setattr(plots, "_save", lambda fig, path: fig)
    fig = plots.plot_trajectories(grid, "unused.png")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["naloxone_up", "prevention"]
    assert [line.get_label() for line in panels[0].get_lines()] == ["baseline", "naloxone_up"]
    assert fig._suptitle.get_text().startswith("Opioid overdose deaths per year by scenario")
    assert panels[0].get_ylabel() == "deaths per year"


def test_the_reference_gets_no_bar(grid, monkeypatch):
    monkeypatch.setattr(plots, "_save", lambda fig, path: fig)
    cmp = sim.compare(grid, grid.sel(scenario="baseline"), window=(2026, 2028))
    ax = plots.plot_averted(cmp, "unused.png").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["naloxone_up", "prevention"]
    assert len(ax.patches) == 2
