"""Target files: the committed sets load; bad entries are rejected with a clear one-line error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.errors import InputError
from sim.model.parameters import ModelParameters
from sim.model.levers import LeverSet
from sim.engine.solver import SolverSettings, integrate
from sim.calibrate.targets import (fit_rows, load_targets, load_targets_file, model_outputs, residuals,
                         target_values)

REPO = Path(__file__).resolve().parent.parent
ARTICLE = REPO / "configs" / "targets" / "article.yaml"


def article_cfg() -> dict:
    return yaml.safe_load(ARTICLE.read_text())


def test_article_targets_load_with_definitions():
    t = load_targets_file(ARTICLE, 2035)
    kinds = {x.kind for x in t.targets}
    assert {"count", "rate", "ratio", "fy_total"} <= kinds
    assert t.n_rows == 12  # the doubling figure is three consecutive-year ratios
    assert t.fit_end_year == 2018 and t.last_year <= 2018
    assert all(x.definition for x in t.targets)
    # parameter facts and events are not targets
    assert not any("potency" in x.id or "scheduling" in x.id for x in t.targets)


US_SERIES = REPO / "configs" / "targets" / "us_series.yaml"


def test_us_series_and_both_sets():
    us = load_targets(yaml.safe_load(US_SERIES.read_text()), 2035)
    # 15 synthetic + 13 heroin (2010-2022) + 4 fentanyl-mention + 10 NFLIS + 6 CBP (FY2019-FY2024)
    # points, and the plausibility rows: people with OUD (2), RAND heroin consumption (2),
    # initiation 2015 (1) and its smoothness (14 consecutive-year ratios)
    assert us.n_rows == 48 + 19 and us.last_year == 2024 and us.fit_end_year == 2024
    plausibility = {t.id for t in us.targets if not t.id.startswith("us_")}
    assert plausibility == {"people_oud_2016", "people_oud_2021", "heroin_consumption_2015",
                            "heroin_consumption_2016", "initiation_2015", "initiation_smoothness"}
    assert all(t.tolerance for t in us.targets if t.id in plausibility)
    spec = yaml.safe_load(US_SERIES.read_text())
    both = article_cfg()
    both.update(csv_series=spec["csv_series"], plausibility=spec["plausibility"], name="both",
                fit_end_year=2024)
    assert load_targets(both, 2035).n_rows == us.n_rows + load_targets(article_cfg(), 2035).n_rows


def test_plausibility_outputs_are_the_stocks_and_flows_they_name():
    """people_oud = untreated + in MOUD on 1 July; heroin_arrivals = the heroin channel's yearly
    arrivals (pure kg); initiation = yearly initiation: the same numbers as the result dataset."""
    from sim.results.dataset import to_dataset
    settings = SolverSettings(end_year=2018, output_step=0.5)
    params, levers = ModelParameters(), LeverSet.from_mapping({})
    traj = integrate(params, levers, settings)
    ds = to_dataset(traj, params, levers, settings)
    out = model_outputs(traj, params, settings)
    i = list(settings.years).index(2016)
    people = (ds.users_untreated + ds.users_in_treatment).sel(decimal_year=2016.5, draw=0)
    assert out["people_oud"][0, i] == pytest.approx(float(people), rel=1e-9)
    assert out["heroin_arrivals"][0, i] == pytest.approx(float(ds.arrivals.sel(
        channel="heroin_land", year=2016, draw=0)), rel=1e-12)
    assert out["initiation"][0, i] == pytest.approx(float(ds.initiation.sel(year=2016, draw=0)),
                                                    rel=1e-12)


def bad(mutate) -> str:
    cfg = article_cfg()
    mutate(cfg["entries"])
    with pytest.raises(InputError) as exc:
        load_targets(cfg, 2035)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_unknown_kind_rejected():
    msg = bad(lambda e: e[0].update(kind="percent"))
    assert "kind" in msg and "'percent'" in msg and "allowed: count, rate, ratio, fy_total" in msg


def test_year_outside_window_rejected():
    msg = bad(lambda e: e[0].update(year=2005))
    assert "synthetic_deaths_2017" in msg and ".year" in msg and "2005" in msg and "2010..2018" in msg
    cfg = article_cfg()
    cfg["entries"][0]["year"] = 2017
    with pytest.raises(InputError, match=r"year: value 2017 outside the simulated window; "
                                         r"allowed: 2010\.\.2016"):
        load_targets(cfg, 2016)


def test_year_after_fit_end_rejected():
    msg = bad(lambda e: e[0].update(year=2019))
    assert "fit_end_year 2018" in msg and "2019" in msg


def test_negative_count_rejected():
    msg = bad(lambda e: e[0].update(value=-5))
    assert "value" in msg and "-5" in msg and "allowed: >= 0" in msg


def test_other_bad_entries_rejected():
    assert "output" in bad(lambda e: e[0].update(output="deaths_cocaine"))
    assert "sigma" in bad(lambda e: e[0].update(sigma=0))
    assert "unknown key" in bad(lambda e: e[0].update(colour="red"))
    assert "source" in bad(lambda e: e[-1].update(source="mexico"))
    assert "years" in bad(lambda e: e[4].update(years=[2014, 2013]))


def test_bad_target_file_rejected_through_cli(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "sim.cli.calibrate", f"hydra.run.dir={tmp_path}",
                        "targets.entries.0.kind=percent"], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "kind" in lines[0] and "percent" in lines[0]


def test_model_values_match_definitions():
    """Ratios, rates and FY totals computed from the trajectory agree with the result dataset."""
    from sim.results.dataset import to_dataset
    settings = SolverSettings(end_year=2018)
    params = ModelParameters()
    levers = LeverSet.from_mapping({})
    traj = integrate(params, levers, settings)
    ds = to_dataset(traj, params, levers, settings)
    out = model_outputs(traj, params, settings)
    t = load_targets_file(ARTICLE, 2018)
    rows = {r.label: r.model for r in fit_rows(t, out, settings.years)}
    syn = ds.deaths_synthetic.sel(draw=0)
    assert rows["synthetic_deaths_2017"] == pytest.approx(float(syn.sel(year=2017)))
    assert rows["synthetic_rate_2016"] == pytest.approx(float(ds.death_rate_synthetic.sel(
        year=2016, draw=0)))
    fent = (ds.deaths_fentanyl + ds.deaths_pharma_fentanyl).sel(draw=0)
    assert rows["fentanyl_deaths_doubling_2013_2016 2015/2014"] == pytest.approx(
        float(fent.sel(year=2015) / fent.sel(year=2014)))
    assert rows["cbp_seizures_fy2018"] == pytest.approx(float(ds.seizures_fy_product.sel(
        year=2018, draw=0).sum("route")))
    fentanyl = ds.arrivals.sel(draw=0, year=slice(2010, 2018)).where(ds.channel_form != "heroin", 0)
    share = fentanyl.groupby(ds.channel_source).sum() / fentanyl.sum("channel")
    margin = float((share.sel(channel_source="china")
                    - share.sel(channel_source=["india", "other"]).max("channel_source")).min())
    assert rows["china_largest_source"] == pytest.approx(margin)
    r = residuals(t, out, settings.years)
    assert r.shape == (12, 1) and np.all(np.isfinite(r))
    assert target_values(t.targets[4], out, settings.years).shape == (3, 1)
