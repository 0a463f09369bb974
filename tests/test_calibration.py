"""Calibration: the committed calibrated baseline meets the acceptance criteria (issue 3), the
fitting recovers known parameters, and the posterior ensemble is usable from the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.calibrate.fit import build_problem, calibration_options, fit, read_draws
from sim.calibrate.ensemble import build_ensemble
from sim.errors import InputError
from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters, sample_prior_values
from sim.engine.solver import SolverSettings, integrate
from sim.calibrate.targets import fit_rows, load_targets, load_targets_file, model_outputs

REPO = Path(__file__).resolve().parent.parent
CALIBRATED = REPO / "configs" / "params" / "calibrated.yaml"
POSTERIOR = REPO / "sim" / "data" / "posterior_calibrated.csv"
ARTICLE = REPO / "configs" / "params" / "article.yaml"
ARTICLE_POSTERIOR = REPO / "sim" / "data" / "posterior_article.csv"
SETTINGS = SolverSettings(end_year=2024)
# documented acceptance of the public series 2010-2024 (configs/targets/us_series.yaml, issue 22):
# every row of the fit table inside its acceptance range but the misses listed here (with the
# reason in docs/validation.md), so that a regression elsewhere still fails
# fentanyl-mention deaths 2013 (+15.6 % against 15 %; not an item of issue 22's acceptance): with
# NFLIS read `nflis_report_lag` (3 months) before mid-year every NFLIS year is inside 25 %, and the
# fit starts the takeover a little early for the mention deaths of 2013 (docs/validation.md
# section 1); still held within ALLOWED_MISS_ERROR
ALLOWED_MISSES: set[str] = {"us_fentanyl_mention_deaths_2013"}
ALLOWED_MISS_ERROR = 0.30


def calibrated_params(path: Path = CALIBRATED) -> ModelParameters:
    return ModelParameters.from_mapping(yaml.safe_load(path.read_text()))


def outputs_of(params: ModelParameters) -> dict:
    traj = integrate(params, LeverSet.from_mapping({}), SETTINGS)
    return model_outputs(traj, params, SETTINGS)


def test_calibrated_baseline_is_the_default_and_lists_every_parameter():
    defaults = yaml.safe_load((REPO / "configs" / "config.yaml").read_text())["defaults"]
    assert {"params": "calibrated"} in defaults
    assert list(yaml.safe_load(CALIBRATED.read_text())) == ModelParameters.names()


@pytest.mark.parametrize("params_file", [CALIBRATED, ARTICLE], ids=["calibrated", "article"])
def test_calibrated_baseline_meets_every_article_figure(params_file):
    """Every figure of the article at the tolerances of issue 3 (never loosened), by the default
    fit (article + public series) and by the article-only fit (params=article)."""
    p = calibrated_params(params_file)
    out = outputs_of(p)
    y = {int(v): i for i, v in enumerate(SETTINGS.years)}
    syn, rate = out["deaths_synthetic"][0], out["death_rate_synthetic"][0]
    assert abs(syn[y[2017]] / 28000 - 1) <= 0.05
    assert abs(rate[y[2016]] / 6.2 - 1) <= 0.05
    assert abs(rate[y[2017]] / 9.0 - 1) <= 0.05
    assert 1.40 <= rate[y[2017]] / rate[y[2016]] <= 1.50
    fent = out["deaths_fentanyl_all"][0]
    for a in (2013, 2014, 2015):
        assert 1.8 <= fent[y[a + 1]] / fent[y[a]] <= 2.3, a
    heroin = out["death_rate_heroin"][0]
    assert 0.95 <= heroin[y[2017]] / heroin[y[2016]] <= 1.05
    seized = out["seizures_product"][0]
    assert 1 / 1.5 <= seized[y[2013]] / 1.0 <= 1.5
    assert abs(seized[y[2018]] / 1000.0 - 1) <= 0.15
    share = out["supply_share"][:, 0, :]  # source, year
    for year in range(2010, 2019):
        assert share[0, y[year]] > share[1:, y[year]].max(), year
    assert share[1, y[2018]] > 0
    # and the same through the target machinery: every row of the fit table is within range
    rows = fit_rows(load_targets_file(REPO / "configs/targets/article.yaml", 2024), out,
                    SETTINGS.years)
    assert all(r.ok for r in rows), [(r.label, r.model) for r in rows if not r.ok]


def test_calibrated_baseline_tracks_the_public_series_2010_2024():
    """The MAP fit against 2010-2024 (issue 22): synthetic-opioid deaths within 20 % every year,
    within 10 % in at least 12 of the 15 years and within 12 % in 2022, 2023 and 2024; the
    2023->2024 change a fall of at least 25 %; heroin deaths within 20 % each year 2010-2022; NFLIS
    share within 25 %; CBP gross seizures FY2019-FY2024 within 35 %; the plausibility rows (people
    with OUD, RAND heroin consumption, initiation and its smoothness) inside their ranges."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name="calibrate"), resolve=True)
    out = outputs_of(calibrated_params())
    rows = fit_rows(load_targets(cfg["targets"], 2024), out, SETTINGS.years)
    missed = {r.label for r in rows if r.ok is False}
    assert missed <= ALLOWED_MISSES, sorted(missed - ALLOWED_MISSES)
    assert all(abs(r.relative_error) < ALLOWED_MISS_ERROR for r in rows if r.label in missed)
    by = {r.label: r for r in rows}
    synthetic = [by[f"us_synthetic_deaths_{y}"].relative_error for y in range(2010, 2025)]
    assert max(abs(e) for e in synthetic) < 0.20, synthetic
    assert sum(abs(e) < 0.10 for e in synthetic) >= 12, synthetic
    assert all(abs(by[f"us_synthetic_deaths_{y}"].relative_error) < 0.12 for y in (2022, 2023, 2024))
    assert by["us_synthetic_deaths_2024"].model / by["us_synthetic_deaths_2023"].model - 1 <= -0.25
    for y in range(2010, 2023):
        assert abs(by[f"us_heroin_deaths_{y}"].relative_error) < 0.20, y
    for label, r in by.items():
        if label.startswith("us_fentanyl_share") and label not in ALLOWED_MISSES:
            assert abs(r.relative_error) < 0.25, label
        if label.startswith("us_cbp_fentanyl_seized_fy"):
            assert abs(r.relative_error) < 0.35, label
    assert {f"us_cbp_fentanyl_seized_fy_{y}" for y in range(2019, 2025)} <= set(by)
    for label in ("people_oud_2016", "people_oud_2021", "heroin_consumption_2015",
                  "heroin_consumption_2016", "initiation_2015", "initiation_smoothness 2024/2023"):
        assert by[label].ok, label


def test_calibration_recovers_known_parameters():
    """Targets made by the model itself from known parameters are fitted back within 2%."""
    truth = {"know_how_finished_rate": 1.1, "overdose_incidence": 0.15,
             "seizure_prob_mail_2013": 0.02}
    base = ModelParameters().replace(**truth)
    out = outputs_of(base)
    y = {int(v): i for i, v in enumerate(SETTINGS.years)}
    entries = [{"id": f"syn_{yr}", "kind": "count", "output": "deaths_synthetic", "year": yr,
                "value": float(out["deaths_synthetic"][0, y[yr]]), "sigma": 0.02}
               for yr in (2012, 2014, 2016, 2018)]
    entries += [{"id": f"seized_{yr}", "kind": "fy_total", "output": "seizures", "year": yr,
                 "value": float(out["seizures"][0, y[yr]]), "sigma": 0.05} for yr in (2014, 2018)]
    targets = load_targets({"name": "synthetic", "entries": entries, "fit_end_year": 2018}, 2018)
    # the declared priors (centred 10-50% away from the truth); the precise data decide
    problem = build_problem(ModelParameters(), LeverSet.from_mapping({}),
                            SolverSettings(end_year=2018), targets, list(truth))
    opts = calibration_options({"global_samples": 16, "starts": 1, "max_nfev": 30})
    result = fit(problem, opts, progress=lambda _: None)
    for name, value in truth.items():
        assert result.values[name] == pytest.approx(value, rel=0.02), name


def test_bad_free_parameter_rejected():
    targets = load_targets_file(REPO / "configs/targets/article.yaml", 2018)
    with pytest.raises(InputError, match=r"calibration\.fit_only: value 'potency_ratio' not "
                                         r"allowed; allowed: .*overdose_incidence"):
        build_problem(ModelParameters(), LeverSet.from_mapping({}), SETTINGS, targets,
                      ["potency_ratio"])
    with pytest.raises(InputError, match="calibration.fit_only: value 'overdose_incidenc' not"):
        build_problem(ModelParameters(), LeverSet.from_mapping({}), SETTINGS, targets,
                      ["overdose_incidenc"])


def test_fit_runs_the_solver_at_the_calibration_tolerance():
    targets = load_targets_file(REPO / "configs/targets/article.yaml", 2018)
    free = ["overdose_incidence"]
    loose = SolverSettings(end_year=2018, rtol=1e-3)
    targets = load_targets_file(REPO / "configs/targets/article.yaml", 2018)
    problem = build_problem(ModelParameters(), LeverSet.from_mapping({}), loose, targets, free,
                            calibration_options({})["rtol"])
    assert problem.settings.rtol == 1e-6 and problem.settings.end_year == 2018
    for bad in (0, -1e-6, 0.5, "tight", True):
        with pytest.raises(InputError, match=r"calibration\.rtol: value .* allowed: a number in"):
            calibration_options({"rtol": bad})


def test_map_fit_holds_the_stated_model_errors_and_the_posterior_samples_them():
    """calibration.map_model_error: the MAP's free list lacks the held sds, its base carries
    them, the posterior samples them; bad entries are named in one line."""
    from sim.calibrate.fit import map_fit_setup, posterior_problem
    from sim.model.parameters import model_errors
    opts = calibration_options({"map_model_error": {"deaths_heroin": 0.04}})
    base, fit_only = map_fit_setup(ModelParameters(), opts)
    assert base.model_error_deaths_heroin == 0.04
    assert "model_error_deaths_heroin" not in fit_only and "model_error_nflis_share" in fit_only
    targets = load_targets_file(REPO / "configs/targets/article.yaml", 2018)
    problem = build_problem(base, LeverSet.from_mapping({}), SETTINGS, targets, fit_only)
    assert "model_error_deaths_heroin" not in problem.names
    assert "model_error_deaths_heroin" in posterior_problem(problem, base, opts).names
    assert set(calibration_options({})["map_model_error"]) <= set(model_errors().values())
    with pytest.raises(InputError, match=r"calibration\.map_model_error\.deaths: unknown key "
                                         r"\(did you mean 'deaths_heroin'\?\); allowed: "
                                         r"deaths_fentanyl_all, deaths_heroin"):
        calibration_options({"map_model_error": {"deaths": 0.1}})
    with pytest.raises(InputError, match=r"calibration\.map_model_error\.deaths_heroin: value"):
        calibration_options({"map_model_error": {"deaths_heroin": -1}})


def test_posterior_ensemble_file_has_enough_draws_inside_bounds():
    names, values = read_draws(POSTERIOR)
    assert values.shape[0] >= 500
    assert set(names) <= set(ModelParameters.names())
    ModelParameters.from_mapping({n: values[:, i] for i, n in enumerate(names)})  # bounds check
    assert np.all(np.std(values, axis=0) > 0)  # draws differ


def test_posterior_subsample_is_deterministic_and_consistent_with_targets():
    base = calibrated_params()
    cfg = {"name": "posterior", "size": 40, "seed": 3}
    a, seed = build_ensemble(base, cfg)
    b, _ = build_ensemble(base, cfg)
    assert seed == 3 and a.n_draws == 40
    assert np.array_equal(a.as_arrays()["know_how_finished_rate"], b.as_arrays()["know_how_finished_rate"])
    # the substitution constants are sampled (from the posterior, with their priors)
    assert np.std(a.as_arrays()["asc_india_finished"]) > 0.2
    out = outputs_of(a)
    y = {int(v): i for i, v in enumerate(SETTINGS.years)}
    med = np.median(out["deaths_synthetic"][:, y[2017]])
    assert abs(med / 28000 - 1) <= 0.05
    with pytest.raises(InputError, match="ensemble.size: value 100000 exceeds"):
        build_ensemble(base, {"name": "posterior", "size": 100000})
    with pytest.raises(InputError, match="ensemble.name: value 'prior' not allowed"):
        build_ensemble(base, {"name": "prior"})


def test_cli_runs_posterior_ensemble(tmp_path):
    r = subprocess.run([sys.executable, "-m", "sim.cli.main", f"hydra.run.dir={tmp_path}",
                        "ensemble=posterior", "ensemble.size=20", "solver.end_year=2020"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "20 draw(s); median [5%-95%]" in r.stdout
    import xarray as xr
    with xr.open_dataset(tmp_path / "result.nc", engine="h5netcdf") as ds:
        assert ds.sizes["draw"] == 20
        assert ds.deaths_synthetic.sel(year=2017).std("draw") > 0


def test_calibrate_cli_small_fit_writes_report(tmp_path):
    out = tmp_path / "cal.yaml"
    committed = CALIBRATED.read_bytes()
    r = subprocess.run(
        [sys.executable, "-m", "sim.cli.calibrate", f"hydra.run.dir={tmp_path}",
         "calibration.fit_only=[overdose_incidence]",
         "calibration.global_samples=4", "calibration.starts=1", "calibration.max_nfev=3",
         f"calibration.params_file={out}"],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "synthetic_deaths_2017" in r.stdout and "rel. error" in r.stdout
    for name in ("fit_table.md", "fit_table.csv", "fit.png", "fit.yaml", "calibrated.yaml",
                 "fentsim-calibrate.log"):
        assert (tmp_path / name).is_file(), name
    assert "rel. error" in (tmp_path / "fentsim-calibrate.log").read_text()  # progress is logged
    written = yaml.safe_load(out.read_text())
    assert list(written) == ModelParameters.names()
    assert f"wrote the calibrated baseline to {out}" in r.stdout
    assert CALIBRATED.read_bytes() == committed  # the packaged baseline is never replaced unasked


def test_calibration_replaces_tracked_files_only_when_promoted():
    from sim.cli.calibrate import promoted, targets_of
    from sim.calibrate.fit import calibration_options

    default = calibration_options({})
    assert targets_of(default, "params_file", "both") == []
    assert targets_of(default, "posterior_file", "both") == []
    promote = calibration_options({"promote": True, "posterior_file": "/tmp/p.csv"})
    assert targets_of(promote, "params_file", "both") == [CALIBRATED.resolve()]
    assert targets_of(promote, "posterior_file", "both") == [POSTERIOR.resolve(), Path("/tmp/p.csv")]
    # each calibration promotes to its own params config and posterior (issue 13)
    assert promoted("article") == {"params_file": ARTICLE.resolve(),
                                   "posterior_file": ARTICLE_POSTERIOR.resolve()}
    with pytest.raises(InputError, match="calibration.promote: value 'yes' not allowed"):
        calibration_options({"promote": "yes"})


def test_the_sampler_proposes_from_the_packaged_posterior_unless_told_not_to(tmp_path):
    """calibration.reference_posterior: packaged (default) reads the committed posterior of the
    params being fitted, as points of the problem; null none; a bad path a one-line error; the
    backtest never (its fit must know nothing of later data)."""
    from sim.cli.calibrate import reference_of
    from sim.calibrate.fit import calibration_options, posterior_problem
    from sim.hydra_compose import compose

    opts = calibration_options({})
    assert opts["reference_posterior"] == "packaged"
    targets = load_targets(compose("calibrate")[0]["targets"], SETTINGS.end_year)
    problem = posterior_problem(build_problem(ModelParameters(), LeverSet.from_mapping({}),
                                              SETTINGS, targets), ModelParameters(), opts)
    points, name = reference_of(opts, "both", problem)
    assert name == "sim/data/posterior_calibrated.csv"
    names, values = read_draws(POSTERIOR)
    assert points.shape == (len(values), len(problem.free))
    i = problem.names.index("seizure_prob_land_2013")
    assert np.allclose(problem.free[i].from_z(points[:, i]),
                       values[:, names.index("seizure_prob_land_2013")])
    assert reference_of(calibration_options({"reference_posterior": None}), "both",
                        problem) == (None, "none")
    with pytest.raises(InputError, match="calibration.reference_posterior: value '.*nope.csv' is "
                                         "not a file"):
        reference_of(calibration_options({"reference_posterior": str(tmp_path / "nope.csv")}),
                     "both", problem)
    (tmp_path / "bad.csv").write_text("draw,not_a_parameter\n0,1\n")
    with pytest.raises(InputError, match="calibration.reference_posterior: value .* not usable"):
        reference_of(calibration_options({"reference_posterior": str(tmp_path / "bad.csv")}),
                     "both", problem)
    cfg, _ = compose("backtest")
    assert cfg["calibration"]["reference_posterior"] is None


def test_backtest_targets_know_nothing_after_the_cutoff():
    from sim.calibrate.backtest import targets_up_to
    with open(REPO / "configs/targets/article.yaml") as fh:
        article = yaml.safe_load(fh)
    cut = targets_up_to(article, 2016)
    ids = {e["id"] for e in cut["entries"]}
    assert "synthetic_deaths_2017" not in ids and "cbp_seizures_fy2018" not in ids
    assert "synthetic_rate_2016" in ids
    claim = next(e for e in cut["entries"] if e["id"] == "china_largest_source")
    assert claim["years"] == [2010, 2016]
    assert cut["fit_end_year"] == 2016
    load_targets(cut, 2016)          # valid: no figure after the cut-off


@pytest.mark.parametrize("cutoff", [2009, 2012, 2024, 2026, -1, "2017", 2017.5, True, None])
def test_backtest_cutoff_is_a_year_before_the_data_end(cutoff):
    from sim.calibrate.backtest import check_cutoff
    with pytest.raises(InputError, match=rf"^cutoff: value {re.escape(repr(cutoff))} not allowed; "
                                         r"allowed: a whole year 2013\.\.2023 \(the data end in 2024\)$"):
        check_cutoff(cutoff, {"fit_end_year": 2024})
    assert check_cutoff(2013, {"fit_end_year": 2024}) == check_cutoff(2023, {"fit_end_year": 2024}) == 2024


def test_backtest_draws_what_the_data_before_the_cutoff_cannot_inform_from_its_prior():
    """Fitted to 2019, the 2020 COVID-19 pulse and the 2023 Woodside disruption leave the
    likelihood unchanged (their posterior is their prior; the sampler had left
    disruption_china_2023 at 0.19-0.32 of its uniform 0-0.5 at cut-off 2021); fitted to 2021, the
    pulse is informed."""
    from sim.calibrate.backtest import targets_up_to, uninformed
    with open(REPO / "configs/targets/us_series.yaml") as fh:
        series = yaml.safe_load(fh)
    names = ["heroin_scale_elasticity", "covid_shock_size", "disruption_china_2023"]
    rng = np.random.default_rng(1)
    draws = np.column_stack([sample_prior_values(n, 4, rng) for n in names])
    for cutoff, flat in ((2019, ["covid_shock_size", "disruption_china_2023"]),
                         (2021, ["disruption_china_2023"])):
        problem = build_problem(ModelParameters(), LeverSet.from_mapping({}),
                                SolverSettings(end_year=cutoff),
                                load_targets(targets_up_to(series, cutoff), cutoff), names)
        assert problem.names == names
        assert uninformed(problem, draws, n_check=4) == flat


def test_backtest_cli_writes_scores(tmp_path):
    # one group of chains: with the default two (each of these 2 chains of 16 particles alone) one
    # seed gave a band with model error 0.89 of the model's width at one point of these 16 draws
    r = subprocess.run(
        [sys.executable, "-m", "sim.cli.backtest", f"hydra.run.dir={tmp_path}", "cutoff=2017",
         "draws=16", "calibration.global_samples=8", "calibration.starts=1",
         "calibration.max_nfev=2", "calibration.particles=16", "calibration.chains=2",
         "calibration.max_moves=1", "calibration.final_moves=1", "calibration.min_moves=1",
         "calibration.groups=1"],
        capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Coverage of the 90% intervals" in r.stdout
    import xarray as xr
    with xr.open_dataset(tmp_path / "backtest.nc", engine="h5netcdf") as ds:
        assert set(ds.year.values) == set(range(2018, 2025))
        assert set(ds.series.values) == {"synthetic_deaths", "heroin_deaths", "fentanyl_share",
                                         "cbp_fentanyl_seized_fy"}
        for band in ("model", "model_error", "observation"):
            assert np.all(ds[f"{band}_low"] <= ds[f"{band}_high"])
        # a band with the model error is never narrower than the model's alone
        assert np.all(ds.model_error_high - ds.model_error_low
                      >= 0.9 * (ds.model_high - ds.model_low))
        # the 2023-2024 inputs are drawn from their priors (the data to 2017 say nothing of them)
        assert {"disruption_china_2023", "retail_potency_2024"} <= set(
            ds.attrs["drawn_from_priors"].split())
        assert "heroin_scale_elasticity" not in ds.attrs["drawn_from_priors"].split()
    assert (tmp_path / "backtest.md").read_text().startswith("# Backtest: fitted to 2017")
    bad = subprocess.run([sys.executable, "-m", "sim.cli.backtest", f"hydra.run.dir={tmp_path}",
                          "cutoff=2030"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert bad.returncode == 2 and "cutoff: value 2030 not allowed" in bad.stderr


def test_posterior_on_another_parameter_set_is_flagged(caplog):
    """A parameter set whose fixed parameters differ from those the posterior was sampled with
    mixes draws with parameters they do not fit: never silent (issue 13: 'params=calibrated_both
    ensemble=posterior silently runs the default posterior'); a what-if on a fixed parameter is
    allowed and logged.  Sets that differ only in sampled parameters (params=literature) get the
    same draws as the baseline, silently."""
    other = calibrated_params().replace(relapse_rate=0.55)   # a fixed parameter
    with caplog.at_level("WARNING"):
        build_ensemble(other, {"name": "posterior", "size": 5})
    assert "sampled with other values of the fixed parameters" in caplog.text
    caplog.clear()
    literature = ModelParameters.from_mapping(yaml.safe_load(
        (REPO / "configs" / "params" / "literature.yaml").read_text()))
    a, _ = build_ensemble(literature, {"name": "posterior", "size": 5})
    b, _ = build_ensemble(calibrated_params(), {"name": "posterior", "size": 5})
    assert np.array_equal(a.as_arrays()["overdose_incidence"], b.as_arrays()["overdose_incidence"])
    assert "fixed parameters" not in caplog.text
    draws, _ = build_ensemble(calibrated_params(), {"name": "posterior", "size": 5})
    assert draws.n_draws == 5


def test_each_calibration_has_its_own_posterior_and_runs_use_it(tmp_path):
    """`ensemble=posterior` reads the posterior of the selected params (issue 13): params=article
    -> posterior_article.csv, params=calibrated -> posterior_calibrated.csv; params without one
    are refused with one line, not silently given another fit's draws."""
    from sim.api import config
    from sim.calibrate.fit import FIXED_DIGEST_KEY, read_header

    for params, path in (("calibrated", POSTERIOR), ("article", ARTICLE_POSTERIOR)):
        cfg = config(params=params, ensemble=5)
        assert (REPO / cfg["ensemble"]["file"]).resolve() == path.resolve()
        names, values = read_draws(path)
        assert values.shape[0] >= 500 and np.all(np.std(values, axis=0) > 0)
        header = read_header(path)
        assert header["targets"] == ("both" if params == "calibrated" else "article")
        assert FIXED_DIGEST_KEY in header
    with pytest.raises(InputError, match="params=literature has no posterior of its own"):
        config(params="literature", ensemble=5)
    # through the command line, the result records the file and the draws come from it
    r = subprocess.run([sys.executable, "-m", "sim.cli.main", f"hydra.run.dir={tmp_path}",
                        "params=article", "ensemble=posterior", "ensemble.size=4",
                        "solver.end_year=2018"], capture_output=True, text=True, cwd=REPO,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    import xarray as xr
    with xr.open_dataset(tmp_path / "result.nc", engine="h5netcdf") as ds:
        assert "posterior_article.csv" in ds.attrs["config"]
        names, values = read_draws(ARTICLE_POSTERIOR)
        used = ds["parameter_value"].sel(parameter="know_how_finished_rate").values
        column = values[:, names.index("know_how_finished_rate")]
        assert np.all(np.isin(used, column))
    bad = subprocess.run([sys.executable, "-m", "sim.cli.main", f"hydra.run.dir={tmp_path}/b",
                          "params=literature", "ensemble=posterior"], capture_output=True,
                         text=True, cwd=REPO, timeout=300)
    assert bad.returncode == 2 and "params=literature has no posterior" in bad.stderr


def test_params_file_numbers_stay_numbers_for_every_yaml_reader():
    """A fitted value like 1e-09 is written 1.0e-09: YAML 1.1 (PyYAML) reads 1e-09 as text."""
    from sim.calibrate.fit import params_yaml
    params = ModelParameters().replace(seizure_rise_land_2021=1e-09, pharma_fentanyl_decline_rate=2.5)
    loaded = yaml.safe_load(params_yaml(params, "header"))
    assert loaded["seizure_rise_land_2021"] == 1e-09 and loaded["pharma_fentanyl_decline_rate"] == 2.5
    assert all(isinstance(v, float) for v in loaded.values())
