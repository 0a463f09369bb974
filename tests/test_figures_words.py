"""Figures read at a glance: scenarios named (never 'None'), money on log axes in readable units
($25M), legends in words, colour-blind-safe colours with a marker each."""

from __future__ import annotations

import pytest

import sim
from sim.sweeps import plots
from sim.sweeps.compare import FUNDING_DIM

SHORT = {"solver": {"end_year": 2029}}   # scenarios start in 2026
WINDOW = (2026, 2029)


@pytest.fixture
def figure(monkeypatch):
    """The figure a plot function draws (instead of saving it)."""
    drawn = {}

    def keep(fig, path):
        drawn["fig"] = fig
        return path
    monkeypatch.setattr(plots, "_save", keep)
    return drawn


def texts(fig) -> str:
    """Every piece of text on a figure: titles, labels, tick labels, legends."""
    out = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    return "\n".join(out)


def test_money_and_sweep_values_in_words():
    assert [plots.usd(v) for v in (25e6, 1.6e9, 4e8, 250e3)] == ["$25M", "$1.6B", "$400M", "$250K"]
    assert plots.value_words(FUNDING_DIM, 2.5e7) == "extra $25M/yr"
    assert plots.value_words("scenario_intensity", 2.0) == "scenario intensity 2"
    styles = [plots.series_style(i) for i in range(64)]
    assert len({s["color"] for s in styles[:9]}) == 9   # nine distinct colours, then pairings
    assert len({(s["color"], s["marker"]) for s in styles}) == 64


def test_comparison_of_two_files_names_both_scenarios(figure):
    a, b = sim.run("naloxone_up", **SHORT), sim.run("baseline", **SHORT)
    plots.plot_averted(sim.compare(a, b, window=WINDOW), "unused.png")
    words = texts(figure["fig"])
    assert "naloxone_up" in words and "relative to baseline" in words and "None" not in words


def test_funding_sweep_figures_use_dollars_on_log_axes(figure):
    grid = {"scenario": ["baseline", "harm_reduction_funding_up", "interdiction_funding_up"],
            "funding.total_usd_per_year": [25e6, 4e8]}
    ds = sim.sweep(grid, **SHORT)
    cmp = sim.compare(ds, ds.sel(scenario="baseline"), window=WINDOW)
    plots.plot_frontier(cmp, "unused.png")
    ax = figure["fig"].axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"   # all positive: no '0' tick
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert "$25M" in ticks and "$400M" in ticks
    assert "harm_reduction_funding_up" in texts(figure["fig"])
    colours = {tuple(line.get_color()) if not isinstance(line.get_color(), str) else line.get_color()
               for line in ax.get_lines() if line.get_label() and not line.get_label().startswith("_")}
    assert len(colours) == 2
    plots.plot_averted(cmp, "unused.png")
    asst = figure["fig"].axes[0]
    assert asst.get_xscale() == "log" and "$400M" in [t.get_text() for t in asst.get_xticklabels()]
    plots.plot_trajectories(ds, "unused.png")
    words = texts(figure["fig"])
    assert "extra $25M/yr" in words and "usd" not in words and "e+0" not in words
