"""Every fenced `fentsim...` command of README.md runs as written, with small ensembles: a stale
key, scenario or option in the README fails here.

Rewritten only where a command cannot run as is on a test machine: ensembles are cut to a few
draws (`ensemble.size`), `solver=accurate` (Radau at rtol 1e-10: 43 s of CPU to 2035) runs to
2012 (10 s; the Radau reference over the whole window is tests/test_kernel.py's), output goes to a
temporary folder, `<timestamp>` and `A.nc B.nc` become
the folders and files the earlier commands wrote, and `hydra/launcher=slurm` runs with Hydra's
basic launcher when no SLURM cluster answers (`sinfo`).  The commands run in bash (one uses brace
expansion), in README order within two parts that share no output (`readme_parts`): the headline
experiment's sweep with the commands that read it, and the others."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def slurm_answers() -> bool:
    """A SLURM cluster answers here (sinfo installed and reaching a controller)."""
    import subprocess
    if shutil.which("sinfo") is None:
        return False
    return subprocess.run(["sinfo", "--noheader"], capture_output=True).returncode == 0


def fenced_commands(text: str) -> list[str]:
    """The `fentsim*` command lines of the ```bash blocks, continuations joined, comments cut."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.split(" ", 1)[0].startswith("fentsim"):
                out.append(re.sub(r"\s+", " ", line))
    return out


def small(command: str, out: Path, made: dict[str, list[Path]]) -> str:
    """`command` as the test runs it (see the module doc)."""
    if "ensemble=large" in command:
        command = re.sub(r"ensemble\.size=\d+", "ensemble.size=16 ensemble.chunk_size=1", command)
    else:
        command = re.sub(r"ensemble\.size=\d+", "ensemble.size=2", command)
        if "experiment=" in command:
            command += " ensemble.size=2"
    if "solver=accurate" in command:
        command += " solver.end_year=2012"
    if "hydra/launcher=slurm" in command and not slurm_answers():
        command = command.replace("hydra/launcher=slurm", "hydra/launcher=basic")
    if "<timestamp>" in command:
        place = "runs" if "results/runs/" in command else "sweeps"
        command = re.sub(rf"results/{place}/<timestamp>", str(made[place][-1].parent
                                                              if place == "runs" else made[place][-1]),
                         command)
    if " A.nc B.nc" in command:
        command = command.replace(" A.nc B.nc", f" {made['runs'][0]} {made['runs'][1]}")
    prog, *_ = command.split(" ", 1)
    if prog in ("fentsim", "fentsim-calibrate", "fentsim-study", "fentsim-backtest"):
        multirun = " -m " in f" {command} "
        command += f" hydra.{'sweep' if multirun else 'run'}.dir={out}"
    return command


def readme_parts() -> dict[str, list[tuple[int, str]]]:
    """The README's commands (numbered in README order) in two parts that share no output: each
    `-m experiment=...` sweep with the commands after it that read `results/sweeps/<timestamp>`
    while it is the latest sweep, and all the others.  Each part keeps README order; `make test`
    runs the two on different workers (pytest-xdist, --dist loadscope: one class each)."""
    parts: dict[str, list[tuple[int, str]]] = {"experiment": [], "others": []}
    experiment_latest = False
    for i, command in enumerate(fenced_commands((ROOT / "README.md").read_text(encoding="utf-8"))):
        if " -m " in f" {command} ":
            experiment_latest = "experiment=" in command
            part = "experiment" if experiment_latest else "others"
        else:
            part = ("experiment" if experiment_latest and "results/sweeps/<timestamp>" in command
                    else "others")
        parts[part].append((i, command))
    return parts


def run_in_order(part: list[tuple[int, str]], tmp_path: Path) -> None:
    """Run the numbered commands one after another (rewritten by `small`); each must succeed
    without a traceback."""
    env = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"},
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    made: dict[str, list[Path]] = {"runs": [], "sweeps": []}
    for i, command in part:
        out = tmp_path / f"out{i}"
        line = small(command, out, made)
        proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600, env=env)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, \
            f"README command failed: {command}\n(run as: {line})\n{proc.stderr[-2000:]}"
        if (out / "result.nc").exists():
            made["runs"].append(out / "result.nc")
        elif (out / "sweep.nc").exists():
            made["sweeps"].append(out)


def test_the_two_parts_hold_every_fenced_command_once():
    commands = fenced_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(commands) >= 15 and "fentsim" in commands
    parts = readme_parts()
    assert sorted(i for part in parts.values() for i, _ in part) == list(range(len(commands)))
    experiment = [c for _, c in parts["experiment"]]
    assert experiment and "experiment=" in experiment[0]
    assert "fentsim-rerun results/sweeps/<timestamp>" in experiment   # redoes the experiment's sweep


class TestTheHeadlineExperimentCommands:
    def test_they_run(self, tmp_path):
        run_in_order(readme_parts()["experiment"], tmp_path)


class TestTheOtherCommands:
    def test_they_run(self, tmp_path):
        run_in_order(readme_parts()["others"], tmp_path)
