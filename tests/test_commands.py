"""Every console command behaves alike: a short --help that says what it does, one-line errors
(exit 2) with "did you mean", experiments refused when meant for another command or a sweep
without -m, and a SLURM launcher without a cluster refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import app as cli_app
from sim.cli.app import scenario_descriptions
from sim.errors import InputError

BIN = Path(sys.executable).parent


def command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.mark.parametrize("prog", sorted(cli_app.COMMANDS))
def test_help_says_what_the_command_does_and_lists_only_its_groups(prog):
    text = cli_app.help_text(prog)
    lines = text.splitlines()
    scenarios = len(scenario_descriptions()) if prog == "fentsim" else 0
    assert lines[0].startswith(f"usage: {prog} ") and len(lines) <= 46 + scenarios
    assert cli_app.COMMANDS[prog].summary.split()[0] in lines[2]
    section = lines[lines.index("config groups (GROUP=OPTION):") + 1:lines.index("main options:")]
    groups = [line.split(":")[0].strip() for line in section if ": " in line]
    assert set(groups) == set(cli_app.COMMANDS[prog].groups)
    assert "examples:" in text and "powered by Hydra" not in text
    if prog == "fentsim-calibrate":
        assert "scenario:" not in text


def test_help_reaches_the_console(tmp_path):
    proc = command("fentsim-calibrate", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: fentsim-calibrate")
    assert "calibration.promote=true" in proc.stdout and not list(tmp_path.iterdir())
    for prog in ("fentsim-doc", "fentsim-compare"):
        proc = command(prog, "--help", cwd=tmp_path)
        assert proc.returncode == 0 and "%%" not in proc.stdout and "usage:" in proc.stdout


@pytest.mark.parametrize("prog,argv,message", [
    ("fentsim-study", ["experiment=supply_vs_demand"],
     "experiment: value 'supply_vs_demand' is a sweep experiment for `fentsim -m "
     "experiment=supply_vs_demand`; allowed for fentsim-study: supply_vs_outreach, which_lever"),
    ("fentsim", ["experiment=supply_vs_demand"],
     "experiment: value 'supply_vs_demand' is a sweep (hydra.sweeper.params); allowed: "
     "`fentsim -m experiment=supply_vs_demand`"),
    ("fentsim", ["-m", "experiment=which_lever"], "is a study experiment for `fentsim-study"),
])
def test_experiment_for_another_command_is_refused_before_anything_runs(prog, argv, message,
                                                                       monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [prog, *argv])
    with pytest.raises(SystemExit) as info:
        cli_app.run_app(lambda: pytest.fail("the app must not run"), prog)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: experiment: value ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_experiments_run_where_they_belong():
    cli_app.check_experiment("fentsim", ["-m", "experiment=supply_vs_demand"])
    cli_app.check_experiment("fentsim", ["experiment=supply_vs_demand", "--cfg", "hydra"])
    cli_app.check_experiment("fentsim-discovery", ["experiment=supply_vs_outreach"])


def test_slurm_without_a_cluster_is_one_line(monkeypatch):
    import shutil
    import subprocess as sp

    argv = ["-m", "hydra/launcher=slurm", "scenario=baseline"]
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(InputError, match="needs a SLURM cluster: no SLURM commands"):
        cli_app.check_slurm(argv)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(sp, "run", lambda *a, **k: sp.CompletedProcess(
        a, 1, "", "sinfo: error: x\nsinfo: fatal: Could not establish a configuration source\n"))
    with pytest.raises(InputError, match=r"no SLURM cluster answers \(sinfo: fatal: Could not"):
        cli_app.check_slurm(argv)
    monkeypatch.setattr(sp, "run", lambda *a, **k: sp.CompletedProcess(a, 0, "debug\n", ""))
    cli_app.check_slurm(argv)  # a cluster answers: go on


@pytest.mark.parametrize("args,message", [
    (["fentsim-sensitivity", "sensitivity.sobol=64"],
     "fentsim-sensitivity: error: sensitivity.sobol: unknown key (did you mean 'sobol_n'?)"),
    (["fentsim-calibrate", "scenario=china_crackdown"],
     "fentsim-calibrate: error: scenario: not a config group of fentsim-calibrate; allowed: params"),
    (["fentsim-study", "costs=cheap"],
     "fentsim-study: error: costs: value 'cheap' not allowed; allowed: default"),
    (["fentsim-backtest", "paramz=article"],
     "fentsim-backtest: error: paramz: unknown key (did you mean 'params'?); allowed:"),
    (["fentsim-backtest", "params=artcle"],
     "fentsim-backtest: error: params: value 'artcle' not allowed (did you mean 'article'?)"),
    (["fentsim-backtest", "cutoff=abc"], "fentsim-backtest: error: cutoff: value 'abc' not allowed"),
    (["fentsim-backtest", "cutoff=2026"], "fentsim-backtest: error: cutoff: value 2026 not allowed; "
     "allowed: a whole year 2013..2023 (the data end in 2024)"),
    (["fentsim-funding", "funding.spending=abc"],
     "fentsim-funding: error: funding.spending: value 'abc' not allowed; allowed: a list of annual"),
    (["fentsim", "-m", "scenario=baseline", "hydra.launcher.n_jobs=2"],
     "fentsim: error: hydra.launcher.n_jobs: a key of the joblib launcher, which this command line "
     "does not select; allowed: add hydra/launcher=joblib before it"),
    (["fentsim", "hydra.job.chdirr=true"],
     "fentsim: error: hydra.job.chdirr: unknown key of Hydra's own config (did you mean 'chdir'?)"),
    (["fentsim", "scenario.intensity=abc"], "fentsim: error: scenario.intensity: value 'abc'"),
])
def test_hydra_errors_of_every_command_are_one_line(tmp_path, args, message):
    out = "hydra.sweep.dir" if "-m" in args else "hydra.run.dir"
    proc = command(*args, f"{out}={tmp_path / 'out'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()  # a rejected input leaves nothing (not even .hydra/)


def scripts() -> dict[str, str]:
    """pyproject.toml's [project.scripts]: command -> 'module:function'."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("prog", sorted(scripts()))
def test_every_command_has_a_short_help_and_one_line_mistakes(prog, monkeypatch, capsys):
    import importlib

    module, function = scripts()[prog].split(":")
    entry = getattr(importlib.import_module(module), function)
    monkeypatch.setattr(sys, "argv", [prog, "--help"])
    with pytest.raises(SystemExit) as info:
        entry()
    text = capsys.readouterr().out
    assert info.value.code == 0 and f"usage: {prog}" in text and "powered by Hydra" not in text
    assert len(text.splitlines()) <= 46 + (len(scenario_descriptions()) if prog == "fentsim" else 0)
    if prog in cli_app.COMMANDS:
        assert "fentsim-doc readme" in text  # where the docs are, installed or not
        return
    monkeypatch.setattr(sys, "argv", [prog, "--outpt", "model"])  # a positional any command takes
    with pytest.raises(SystemExit) as info:
        entry()
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"{prog}: error: unrecognized arguments: --outpt")
    if "--output" in text:
        assert "(did you mean '--output'?)" in err
