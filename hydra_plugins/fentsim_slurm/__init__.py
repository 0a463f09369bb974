"""The SLURM launcher of the `hydra/launcher=slurm` preset: hydra-submitit-launcher's, quiet and
still correct on a cluster without job accounting.

submitit learns the state of a SLURM job from `sacct`.  Where accounting is off (`sacct` answers
"Slurm accounting storage is disabled", as on many small clusters and on the local test cluster of
`scripts/local-slurm.sh`), every state query fails: submitit then prints that line and a
"Bypassing sacct error" warning (twice, through its own handler and Hydra's) on every poll, and
it can tell that a task has ended only from the task's result file, so a task that SLURM kills
(time limit, memory, node failure) would be waited for for ever.

`FentsimSlurmLauncher` asks `sacct` once before submitting.  If it answers, nothing changes.  If it
does not, it logs one line and has submitit read job states from `squeue` instead
(`SqueueInfoWatcher`, same schedule of polls as submitit's: 2, 4, 8, ... s after the last
submission, then at most every 10 minutes; results are still picked up within 1 s from their
files).  A task that has left the queue without a result is then reported by submitit as failed
(the sweep stops without the end-of-sweep callback, as after any crash: run `fentsim-aggregate`).

How the watcher is swapped: submitit keeps the state querier in the class attribute
`submitit.slurm.slurm.SlurmJob.watcher` (a `SlurmInfoWatcher`, which overrides the two hooks
`_make_command` and `read_info` of `submitit.core.core.InfoWatcher`); submitit has no option
to choose it, so `use_squeue_without_accounting` assigns that attribute in the submitting process,
and only when `sacct` fails.  `SqueueInfoWatcher` overrides the same two hooks.  Checked against
submitit 1.5 (hydra-submitit-launcher 1.2, pinned in pyproject.toml).
"""

from __future__ import annotations

import functools
import getpass
import logging
import re
import subprocess
import sys
import typing as tp

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

log = logging.getLogger(__name__)

# state given to a job that squeue no longer lists (ended, and purged after MinJobAge)
NOT_IN_QUEUE = "NOT_IN_QUEUE"


def sacct_problem(timeout: float = 30.0) -> str | None:
    """None if `sacct` answers a query, else what it said (one line)."""
    try:
        proc = subprocess.run(["sacct", "--noheader", "--parsable2", "-X", "-o", "JobID", "-j", "1"],
                              capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return "sacct not found"
    except subprocess.TimeoutExpired:
        return f"sacct did not answer within {timeout:g} s"
    if proc.returncode == 0:
        return None
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return lines[-1] if lines else f"sacct exited with status {proc.returncode}"


@functools.cache
def _squeue_watcher_class() -> type:
    from submitit.slurm.slurm import SlurmInfoWatcher

    class SqueueInfoWatcher(SlurmInfoWatcher):
        """submitit's SLURM state querier, asking `squeue` (the controller) instead of `sacct`.

        `squeue --states=all` lists running jobs and ended ones until the controller purges them
        (MinJobAge, 300 s by default) with the same state names as sacct; a registered job it no
        longer lists has ended (state NOT_IN_QUEUE).  Only the user's own jobs are listed, so an
        id the controller has forgotten is no error.
        """

        def _make_command(self) -> tp.Optional[tp.List[str]]:
            if not self._registered - self._finished:
                return None
            return ["squeue", f"--user={getpass.getuser()}", "--noheader", "--array",
                    "--states=all", "--format=%i|%T|%N"]

        def read_info(self, string: tp.Union[bytes, str]) -> tp.Dict[str, tp.Dict[str, str]]:
            if not isinstance(string, str):
                string = string.decode()
            rows = [line for line in string.splitlines() if line.strip()]
            info = super().read_info("\n".join(["JobID|State|NodeList", *rows]))
            for job_id in self._registered - self._finished:
                if job_id not in info:
                    info[job_id] = {"JobID": job_id, "State": NOT_IN_QUEUE, "NodeList": ""}
            return info

    return SqueueInfoWatcher


def use_squeue_without_accounting() -> str | None:
    """If `sacct` does not answer, make submitit read SLURM job states with `squeue`.

    Returns what sacct said (None: sacct works, nothing changed).  Idempotent.
    """
    from submitit.slurm import slurm

    problem = sacct_problem()
    if problem is None:
        return None
    watcher_class = _squeue_watcher_class()
    if not isinstance(slurm.SlurmJob.watcher, watcher_class):
        slurm.SlurmJob.watcher = watcher_class(delay_s=600)  # submitit's own delay for SLURM
    return problem


class FentsimSlurmLauncher(SlurmLauncher):
    """hydra-submitit-launcher's SLURM launcher; job states from squeue when sacct cannot tell.

    A task that ends without a result (killed by SLURM: time limit, memory, cancelled) stops the
    submitting process with one line naming the task, its state and its log, exit status 1.
    """

    def launch(self, job_overrides: tp.Sequence[tp.Sequence[str]], initial_job_idx: int) -> tp.Any:
        from submitit.core.utils import UncompletedJobError

        problem = use_squeue_without_accounting()
        if problem is not None:
            log.info(f"SLURM accounting unavailable ({problem}): job states are read with squeue")
        try:
            return super().launch(job_overrides, initial_job_idx)
        except UncompletedJobError as exc:
            print(f"fentsim: {uncompleted_message(str(exc))}; the other tasks go on: when they "
                  f"are done run `fentsim-aggregate {self.config.hydra.sweep.dir}`", file=sys.stderr)
            raise SystemExit(1) from None


def uncompleted_message(text: str) -> str:
    """One line from submitit's UncompletedJobError text: the task, its state and its log."""
    # "Job 6_0 (task: 0) with path <folder>/6_0_0_result.pkl\nhas not produced any output
    #  (state: CANCELLED)\nError stream produced: ..."
    task = re.search(r"Job (\S+) \(task: \d+\) with path (\S+)_result\.pkl", text)
    state = re.search(r"\(state: ([^)]*)\)", text)
    if not task:
        return "SLURM task failed: " + " ".join(text.splitlines()[:2])
    return (f"SLURM task {task.group(1)} ended without a result "
            f"(state: {state.group(1) if state else 'unknown'}); log: {task.group(2)}_log.err")
