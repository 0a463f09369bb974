"""What every Hydra command of fentsim shares: a short `--help`, one-line errors, experiment checks.

The base of `sim/cli` (imports no other module of it): exit statuses, `user_errors`, the job's
plain config; `main`, `sweep` and the other commands import from here, never the reverse.

`run_app(app, prog)` runs a `@hydra.main` function as a console command:

- `--help` / `-h` prints what the command does, its config groups (with their options, as Hydra
  lists them), main options and examples (Hydra's own help: `--hydra-help`);
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
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.errors import (ConfigCompositionException, MissingConfigException,
                          OverrideParseException)
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from sim.cli.guard import discard_reserved, preflight_argv
from sim import paths
from sim.calibrate.ensemble import with_posterior_of
from sim.errors import InputError, SolverError, did_you_mean
from sim.hydra_compose import experiment_kind, hydra_error_line, options


CONFIG_DIR = str(paths.CONFIG_DIR)
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


DEBUG_ENV = "FENTSIM_DEBUG"  # carries the user's HYDRA_FULL_ERROR choice into jobs and workers


def debug_requested() -> bool:
    """True if the user asked for tracebacks (HYDRA_FULL_ERROR=1 when fentsim started)."""
    return os.environ.get(DEBUG_ENV, os.environ.get("HYDRA_FULL_ERROR", "0")) == "1"


EXIT_TERMINATED = 143   # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`), raised like Ctrl-C so that launchers stop their workers the same way."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def interrupted(prog: str, exc: BaseException | None = None) -> None:
    """Ctrl-C: one line and exit status 130 (143 for SIGTERM), no traceback."""
    if isinstance(exc, Terminated):
        print(f"{prog}: terminated", file=sys.stderr)
        sys.exit(EXIT_TERMINATED)
    print(f"{prog}: interrupted", file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def user_errors(prog: str = "fentsim", debug: bool = False) -> Iterator[None]:
    """Turn InputError/SolverError into a one-line message and exit status 2, and Ctrl-C into one
    line and exit status 130 (unless debugging)."""
    try:
        yield
    except (InputError, SolverError) as exc:
        if debug or debug_requested():
            raise
        discard_rejected_run()
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"{prog}: error: {line}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt as exc:
        if debug or debug_requested():
            raise
        interrupted(prog, exc)


def discard_rejected_run() -> None:
    """A rejected input leaves nothing behind: remove what Hydra wrote on entering this (single)
    run, its `.hydra/` folder and its log, and the run folder if that leaves it empty (a folder
    holding anything else is left alone)."""
    if not HydraConfig.initialized() or HydraConfig.get().mode == RunMode.MULTIRUN:
        return
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    if not out.is_dir():
        return
    ours = {hc.output_subdir or ".hydra", f"{hc.job.name}.log"}
    if any(p.name not in ours for p in out.iterdir()):
        return
    import shutil

    logging.shutdown()  # close the log file before removing it
    with contextlib.suppress(OSError):
        shutil.rmtree(out)


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved job config as plain Python containers (Hydra's own node excluded)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def job_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved job config, its posterior ensemble reading the posterior of the selected
    `params` (sim.calibrate.ensemble.with_posterior_of)."""
    return with_posterior_of(plain_config(cfg), HydraConfig.get().runtime.choices.get("params"))


def config_group_null(argv: Sequence[str]) -> str | None:
    """The one-line error for `GROUP=null` on the command line (Hydra raises a bare ValueError)."""
    for arg in argv:
        key, sep, value = arg.partition("=")
        group = key.lstrip("+~")
        if sep and value.strip().lower() in ("null", "~", "none") and (names := options(group)):
            return (f"{group}: value null not allowed (a config group needs one of its configs); "
                    f"allowed: {', '.join(names)}")
    return None


def folder_error(exc: OSError, argv: Sequence[str]) -> str:
    """One line for an unusable output folder (a file, read-only, no permission, disk full)."""
    field = "hydra.sweep.dir" if ("-m" in argv or "--multirun" in argv) else "hydra.run.dir"
    where = exc.filename if exc.filename is not None else "the output folder"
    reason = exc.strerror or type(exc).__name__
    return (f"{field}: cannot write {str(where)!r} ({reason}); allowed: a writable folder "
            f"(not a file)")


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
                 ("sensitivity.sobol_groups=none", "every parameter its own Sobol factor "
                                                   "(default role: grouped by role)"),
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
         ("calibration.ensemble=true", "also sample the posterior (sequential Monte Carlo from the priors)"),
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


def scenario_descriptions() -> dict[str, str]:
    """Each scenario file's own one-line `scenario.description` (configs/scenario/NAME.yaml)."""
    out = {}
    for name in options("scenario"):
        data = yaml.safe_load((paths.CONFIG_DIR / "scenario" / f"{name}.yaml").read_text()) or {}
        out[name] = " ".join(str((data.get("scenario") or {}).get("description", "")).split())
    return out


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
    """One line for Hydra's (multi-line) composition and override errors; a mistake under
    `hydra.` says what to type (`hydra_key_line`)."""
    cause = exc.__cause__ if isinstance(exc, ConfigCompositionException) else exc
    full_key = str(getattr(cause, "full_key", "") or "")
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and full_key.startswith("hydra."):
        return hydra_key_line(prog, full_key)
    cmd = COMMANDS[prog]
    return hydra_error_line(exc, cmd.config_name, prog, cmd.groups)


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
        preflight_argv(prog, CONFIG_DIR, COMMANDS[prog].config_name)  # sim/cli/guard.py
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
    finally:
        discard_reserved()   # a run folder reserved for a refused command, while still empty
