"""What every Hydra command of fentsim shares: a short `--help`, one-line errors, experiment checks.

`run_app(app, prog)` runs a `@hydra.main` function as a console command:

- `--help` / `-h` prints what the command does, its config groups (with their options, read from
  the files), main options and examples (Hydra's own help: `--hydra-help`);
- Hydra's composition errors (unknown key, unknown option, bad override syntax, an override of a
  group the command does not have) become one line with a "did you mean", exit status 2;
- an experiment meant for another command (`fentsim-study experiment=supply_vs_demand`), or a
  sweep experiment without `-m`, is refused before anything runs (exit 2);
- a SLURM launcher without a reachable cluster is one line (exit 2);
- `GROUP=null` is one line (exit 2); Ctrl-C is one line and exit status 130, SIGTERM 143 (joblib
  workers stopped); for `fentsim`, an output folder Hydra cannot create or write is one line.

HYDRA_FULL_ERROR=1 shows tracebacks instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hydra.errors import (ConfigCompositionException, MissingConfigException,
                          OverrideParseException)
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from sim.cli.main import (DEBUG_ENV, EXIT_USER_ERROR, _raise_terminated, config_group_null,
                          debug_requested, folder_error, interrupted)
from sim.compose import compose, experiment_kind, options
from sim.errors import InputError, did_you_mean


@dataclass(frozen=True)
class Command:
    """What `--help` says about a Hydra command."""

    prog: str
    config_name: str
    summary: str
    groups: tuple[str, ...]
    main_options: tuple[tuple[str, str], ...]
    examples: tuple[str, ...]
    experiment_kinds: tuple[str, ...]   # kinds of experiment file the command runs


COMMON = (("KEY=VALUE", "change any value of the composed config (see --cfg job)"),
          ("--cfg job", "print the composed config and stop"),
          ("-m / --multirun", "a sweep: one job per combination of comma-separated values"),
          ("hydra.run.dir=DIR", "where the run writes (default results/.../<timestamp>)"))
STUDY_OPTIONS = (("ensemble.size=N", "posterior draws for the funding sweep and discovery"),
                 ("sensitivity.sobol_n=N", "Sobol base sample (a power of 2)"),
                 ("study.outcome.window=[2020,2030]", "years of the outcome (cumulative deaths)"),
                 ("costs.sample=false", "fixed unit costs instead of sampled ones"))
STUDY_KINDS = ("study",)

COMMANDS = {
    "fentsim": Command(
        "fentsim", "config",
        "Run the calibrated fentanyl model for one scenario (or a sweep with -m) and write "
        "result.nc with a summary table.",
        ("scenario", "params", "ensemble", "solver", "funding", "costs", "experiment"),
        (("scenario=NAME", "a policy scenario (default baseline)"),
         ("scenario.intensity=K", "scale the scenario's departure from history (1 as written)"),
         ("funding.total_usd_per_year=USD", "extra US$/yr of a scenario in dollars (*_funding*)"),
         ("ensemble=posterior ensemble.size=N", "N draws of the posterior: medians and 90% intervals"),
         ("levers.LEVER.start=YEAR levers.LEVER.level=X", "an intervention (fentsim-doc lists levers)"),
         ("params.NAME=VALUE", "a model parameter (fentsim-doc lists them)"),
         ("solver.end_year=YEAR", "last simulated year (default 2035)"),
         ("hydra/launcher=joblib|slurm", "run a sweep's jobs in parallel or on a SLURM cluster"),
         ("hydra/launcher=joblib hydra.launcher.n_jobs=2", "two jobs at a time (launcher first)"),
         *COMMON),
        ("fentsim scenario=china_crackdown ensemble=posterior ensemble.size=100",
         "fentsim -m scenario=baseline,naloxone_up scenario.intensity=1,2",
         "fentsim -m experiment=supply_vs_demand      # the headline experiment",
         "fentsim -m scenario=baseline,harm_reduction_funding_up,interdiction_funding_up "
         "funding.total_usd_per_year=25e6,100e6,400e6"),
        ("sweep", "run")),
    "fentsim-calibrate": Command(
        "fentsim-calibrate", "calibrate",
        "Fit the model's uncertain parameters to the targets (penalised least squares) and write "
        "the calibrated parameters and a fit report into the run folder; tracked files are "
        "replaced only with calibration.promote=true.",
        ("params", "targets", "solver", "calibration"),
        (("targets=article|us_series|both", "which figures to fit"),
         ("calibration.ensemble=true", "also sample the posterior ensemble (emcee)"),
         ("calibration.promote=true", "replace the packaged baseline (and posterior) with the fit"),
         ("calibration.params_file=PATH", "also copy the calibrated parameters to PATH"),
         ("calibration.seed=N calibration.starts=N", "seed and number of local fits"),
         *COMMON[:2], COMMON[3]),
        ("fentsim-calibrate",
         "fentsim-calibrate targets=both calibration.params_file=my_params.yaml",
         "fentsim-calibrate calibration.ensemble=true calibration.promote=true"),
        ()),
    "fentsim-backtest": Command(
        "fentsim-backtest", "backtest",
        "Fit the model on the data up to a cut-off year, forecast the later years over the "
        "posterior and score the forecast (observed, median, 90% interval, coverage); writes "
        "backtest.nc and backtest.md into the run folder.",
        ("params", "targets", "solver", "calibration"),
        (("cutoff=YEAR", "last year of data the fit may use (default 2017)"),
         ("draws=N", "posterior draws run forward (default 200)"),
         ("seed=N", "random seed"),
         ("targets=article|us_series|both", "which figures to fit (default both)"),
         *COMMON[:2], COMMON[3]),
        ("fentsim-backtest cutoff=2017", "fentsim-backtest cutoff=2015 draws=500"),
        ()),
    "fentsim-study": Command(
        "fentsim-study", "study",
        "Which lever matters: global sensitivity (Sobol, Morris), levers bought in dollars "
        "(deaths averted per million US$) and scenario discovery; writes a Markdown report.",
        ("params", "ensemble", "solver", "costs", "experiment"), (*STUDY_OPTIONS, *COMMON[:2], COMMON[3]),
        ("fentsim-study experiment=which_lever", "fentsim-study ensemble.size=200 costs.sample=false"),
        STUDY_KINDS),
    "fentsim-sensitivity": Command(
        "fentsim-sensitivity", "study",
        "Global sensitivity of deaths to every uncertain parameter and lever (Sobol indices with "
        "95% intervals, Morris screening); writes sensitivity.nc, sensitivity.png, report.md.",
        ("params", "ensemble", "solver", "costs", "experiment"), (*STUDY_OPTIONS[1:3], *COMMON[:2], COMMON[3]),
        ("fentsim-sensitivity experiment=which_lever", "fentsim-sensitivity sensitivity.sobol_n=128"),
        STUDY_KINDS),
    "fentsim-funding": Command(
        "fentsim-funding", "study",
        "Each lever bought alone at documented unit costs: deaths averted per million US$ and "
        "cost per death averted, with intervals; writes funding.nc/.csv, frontier.png, report.md.",
        ("params", "ensemble", "solver", "costs", "experiment"),
        (("funding.spending=[10,100,1000]", "million US$ a year, each lever alone"),
         *STUDY_OPTIONS[:1], *STUDY_OPTIONS[2:], *COMMON[:2], COMMON[3]),
        ("fentsim-funding experiment=which_lever", "fentsim-funding ensemble.size=300 funding.spending=[50,500]"),
        STUDY_KINDS),
    "fentsim-discovery": Command(
        "fentsim-discovery", "study",
        "Scenario discovery: when does a supply-side portfolio beat a demand-side one at equal "
        "spending (decision-tree rules); writes discovery.nc, discovery_rules.md, report.md.",
        ("params", "ensemble", "solver", "costs", "experiment"),
        (("discovery.supply=[...] discovery.demand=[...]", "the levers of each portfolio"),
         ("discovery.spending=[100,300,1000]", "million US$ a year per portfolio"),
         *STUDY_OPTIONS[:1], *COMMON[:2], COMMON[3]),
        ("fentsim-discovery experiment=supply_vs_outreach", "fentsim-discovery discovery.max_depth=2"),
        STUDY_KINDS),
}


def _wrap(text: str, indent: int, width: int = 100) -> str:
    import textwrap
    return textwrap.fill(text, width, initial_indent=" " * indent, subsequent_indent=" " * indent)


def _clip(text: str, width: int) -> str:
    """`text` cut to `width` characters, with '...' when cut."""
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def docs_line() -> str:
    """Where the documentation is: the checkout's README.md and docs/ when there is one, and the
    pages every install carries (`fentsim-doc`, `fentsim-doc readme`)."""
    from sim import paths

    pages = "`fentsim-doc` (model), `fentsim-doc scenarios`, `fentsim-doc readme`"
    if (paths.REPO_ROOT / "docs").is_dir() and (paths.REPO_ROOT / "README.md").is_file():
        return f"Docs: {paths.REPO_ROOT / 'README.md'}, {paths.REPO_ROOT / 'docs'}/; {pages}."
    return f"Docs (installed package): {pages}."


def help_text(prog: str) -> str:
    """The `--help` of a Hydra command: what it does, groups and options, main options, examples."""
    cmd = COMMANDS[prog]
    lines = [f"usage: {prog} [-m] [KEY=VALUE ...] [--cfg job] [--help] [--hydra-help]", "",
             _wrap(cmd.summary, 0), "", "config groups (GROUP=OPTION):"]
    described = "scenario" in cmd.groups and prog == "fentsim"
    for group in cmd.groups:
        names = options(group)
        if group == "experiment":
            names = [n for n in names if experiment_kind(n) in cmd.experiment_kinds]
        text = (f"the {len(names)} listed under scenarios" if described and group == "scenario"
                else ", ".join(names) or "-")
        lines.append(_wrap(f"{group}: {text}", 2))
    lines += ["", "main options:"]
    width = max(len(k) for k, _ in cmd.main_options)
    lines += [f"  {k.ljust(width)}  {v}" for k, v in cmd.main_options]
    if described:
        from sim.cli.doc import scenario_descriptions

        found = scenario_descriptions()
        width = max(map(len, found))
        lines += ["", "scenarios (scenario=NAME; `fentsim-doc scenarios` prints them in full):"]
        lines += [_clip(f"  {name.ljust(width)}  {text}", 100) for name, text in found.items()]
    lines += ["", "examples:"] + [f"  {e}" for e in cmd.examples]
    lines += ["", "Bad input stops with one line naming the field, the value and what is allowed "
                  "(exit 2);", "HYDRA_FULL_ERROR=1 shows a traceback.  Hydra's own help: "
                  f"{prog} --hydra-help.", docs_line()]
    return "\n".join(lines)


# --- errors ------------------------------------------------------------------------------------

_INFO_FLAGS = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--resolve",
               "--shell-completion", "-sc")


def check_experiment(prog: str, argv: list[str]) -> None:
    """Refuse an experiment meant for another command, or a sweep experiment without -m."""
    cmd = COMMANDS[prog]
    names = [a.split("=", 1)[1] for a in argv if re.match(r"^\+{0,2}experiment=[^,]+$", a)]
    if not names or any(a in _INFO_FLAGS or a.startswith("--cfg") for a in argv):
        return
    name = names[-1]
    if name not in options("experiment"):
        return  # Hydra names the allowed ones
    kind = experiment_kind(name)
    multirun = any(a in ("-m", "--multirun") for a in argv)
    if kind not in cmd.experiment_kinds:
        other = "fentsim-study" if kind == "study" else "fentsim -m" if kind == "sweep" else "fentsim"
        allowed = [n for n in options("experiment") if experiment_kind(n) in cmd.experiment_kinds]
        raise InputError(f"experiment: value {name!r} is a {kind} experiment for `{other} "
                         f"experiment={name}`; allowed for {prog}: {', '.join(allowed) or 'none'}")
    if kind == "sweep" and not multirun:
        raise InputError(f"experiment: value {name!r} is a sweep (hydra.sweeper.params); allowed: "
                         f"`{prog} -m experiment={name}` (one job per combination)")


def _allowed_line(prog: str, full_key: str) -> str:
    """'KEY: unknown key (did you mean ...); allowed: ...' from the command's composed config."""
    try:
        cfg = compose(COMMANDS[prog].config_name)
    except InputError:
        return f"{full_key}: unknown key"
    parts, node = full_key.split("."), cfg
    for i, part in enumerate(parts):
        if not isinstance(node, dict):
            break
        if part not in node:
            where = ".".join(parts[: i + 1])
            return (f"{where}: unknown key{did_you_mean(part, list(node))}; allowed: "
                    f"{', '.join(sorted(node))}")
        node = node[part]
    return f"{full_key}: unknown key"


def launcher_keys() -> dict[str, list[str]]:
    """The keys of each launcher's config (`hydra.launcher.KEY` needs `hydra/launcher=NAME`)."""
    import dataclasses

    from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf

    return {name: [f.name for f in dataclasses.fields(conf) if not f.name.startswith("_")]
            for name, conf in (("joblib", JobLibLauncherConf), ("slurm", SlurmQueueConf))}


def hydra_key_line(prog: str, full_key: str) -> str:
    """One line for an unknown key under `hydra.`, in terms of what to type: a launcher's key
    names the `hydra/launcher=...` that brings it; any other key gets "did you mean"."""
    from hydra.conf import HydraConf
    from omegaconf import OmegaConf

    parts = full_key.split(".")
    if len(parts) >= 3 and parts[1] == "launcher":
        owners = launcher_keys()
        having = [name for name, keys in owners.items() if parts[2] in keys]
        if having:
            name = having[0]
            return (f"{full_key}: a key of the {name} launcher, which this command line does not "
                    f"select; allowed: add hydra/launcher={name} before it, e.g. "
                    f"`{prog} -m hydra/launcher={name} {full_key}=...`")
        every = sorted({k for keys in owners.values() for k in keys})
        return (f"{full_key}: unknown launcher key{did_you_mean(parts[2], every)}; allowed: "
                + "; ".join(f"with hydra/launcher={n}: {', '.join(k)}" for n, k in owners.items()))
    if len(parts) >= 3 and parts[1] == "sweeper":
        return (f"{full_key}: unknown key of the sweeper{did_you_mean(parts[2], ['params'])}; "
                f"allowed: hydra.sweeper.params (the values swept with -m)")
    node: Any = OmegaConf.structured(HydraConf)
    for i, part in enumerate(parts[1:], start=1):
        keys = list(node.keys()) if hasattr(node, "keys") else []
        if part not in keys:
            where = ".".join(parts[: i + 1])
            return (f"{where}: unknown key of Hydra's own config{did_you_mean(part, keys)}; "
                    f"allowed: {', '.join(sorted(keys))} (`{prog} --cfg hydra` shows them)")
        try:
            node = node[part]
        except Exception:  # noqa: BLE001 - a value Hydra fills in at run time
            break
    return f"{full_key}: unknown key of Hydra's own config (`{prog} --cfg hydra` shows them)"


def error_line(prog: str, exc: Exception) -> str:
    """One line for Hydra's (multi-line) composition and override errors."""
    from sim.cli.main import hydra_error_line

    cause = exc.__cause__ if isinstance(exc, ConfigCompositionException) else exc
    message = str(exc).strip()
    full_key = str(getattr(cause, "full_key", "") or "")
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and full_key.startswith("hydra."):
        return hydra_key_line(prog, full_key)
    if prog != "fentsim" and isinstance(cause, (ConfigKeyError, ConfigAttributeError)) \
            and getattr(cause, "full_key", None):
        return _allowed_line(prog, str(cause.full_key))
    match = re.search(r"Could not override '([^']+)'.*No match in the defaults list", message, re.S)
    if match:
        key = match.group(1)
        groups = COMMANDS[prog].groups
        return (f"{key}: not a config group of {prog}{did_you_mean(key, groups)}; allowed: "
                f"{', '.join(groups)}")
    return hydra_error_line(exc)


def slurm_error(exc: BaseException) -> str | None:
    """One line if `exc` is a failed SLURM submission (no cluster here), else None."""
    module = type(exc).__module__ or ""
    text = str(exc)
    if module.startswith("submitit") or (isinstance(exc, FileNotFoundError) and "sbatch" in text):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        fatal = next((ln for ln in lines if "fatal" in ln), lines[-1] if lines else type(exc).__name__)
        return (f"hydra/launcher: SLURM submission failed ({fatal}); allowed: a machine with a "
                f"SLURM cluster, or hydra/launcher=joblib to run the jobs here")
    return None


def check_slurm(argv: list[str]) -> None:
    """With a SLURM launcher on the command line, refuse at once if no cluster answers."""
    import shutil
    import subprocess

    if not any(re.match(r"^hydra/launcher=(submitit_)?slurm$", a) for a in argv) or \
            any(a in _INFO_FLAGS for a in argv):
        return
    if shutil.which("sinfo") is None:
        problem = "no SLURM commands (sinfo, sbatch) on this machine"
    else:
        try:
            proc = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True,
                                  timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            problem = f"sinfo failed: {exc}"
        else:
            if proc.returncode == 0:
                return
            lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
            problem = f"no SLURM cluster answers ({lines[-1] if lines else 'sinfo failed'})"
    raise InputError(f"hydra/launcher: value 'slurm' needs a SLURM cluster: {problem}; allowed: "
                     f"run on the cluster's login node, or hydra/launcher=joblib to run the jobs here")


def run_app(app: Callable[[], None], prog: str) -> None:
    """Run the Hydra app `app` as the console command `prog` (see the module doc)."""
    argv = sys.argv[1:]
    if any(a in ("--help", "-h") for a in argv):
        try:
            print(help_text(prog), flush=True)
        except BrokenPipeError:  # `fentsim --help | head`: the reader left, nothing to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    debug = debug_requested()
    os.environ[DEBUG_ENV] = "1" if debug else "0"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    with contextlib.suppress(ValueError):  # not in the main thread (embedded): leave it
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        check_experiment(prog, argv)
        check_slurm(argv)
        app()
    except InputError as exc:
        if debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except (ConfigCompositionException, MissingConfigException, OverrideParseException,
            OmegaConfBaseException) as exc:
        if debug:
            raise
        print(f"{prog}: error: {error_line(prog, exc)}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt as exc:
        if debug:
            raise
        interrupted(prog, exc)
    except OSError as exc:  # an output folder Hydra cannot create or write (fentsim)
        line = slurm_error(exc)
        if line is None and prog == "fentsim":
            line = folder_error(exc, argv)
        if line is None or debug:
            raise
        print(f"{prog}: error: {line}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except ValueError as exc:  # GROUP=null: Hydra raises a bare ValueError
        line = None if (debug or isinstance(exc, InputError)) else config_group_null(argv)
        if line is None:
            raise
        print(f"{prog}: error: {line}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except Exception as exc:  # noqa: BLE001  (only a failed SLURM submission is turned into a line)
        line = slurm_error(exc)
        if line is None or debug:
            raise
        print(f"{prog}: error: {line}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
