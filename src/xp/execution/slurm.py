"""``xp run --executor slurm``: a sweep as one Slurm job array, each task one grid point.

xp schedules nothing itself: it writes a job script and hands it to ``sbatch``. Each array
task clones the project from the git remote, checks out the sweep's commit (pushed first as
``refs/xp/sweeps/<sweep id>``, so a task runs exactly that code whatever the branch does
meanwhile), runs its point with ``xp run --point $SLURM_ARRAY_TASK_ID --sweep-id <id>`` (all
points share the sweep id; each run records engine ``slurm``, the array's job id, the task
index and the node) and sends the run and its artifacts with ``xp push``, whether the
point's command succeeded or not; the task's exit status is the command's. Each point's run
id is chosen here, the same for every attempt of its task: a requeued task whose point is on
the remote already stops at once, and the remote, which creates a ref once, never holds two
runs of one point. A task sent SIGTERM (scancel, a dying Dask or Ray worker) stops the
point, removes its clone and pushes nothing. Slurm's own
options (partition, time, memory) come from sbatch's ``SBATCH_*`` environment variables or an
edit of the ``--dry-run`` script.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from xp import format as fmt
from xp.errors import ExecutionError, InvalidValueError, RepositoryError
from xp.execution import overrides as ov
from xp.execution.sweep import check_sweep_id
from xp.gitstore import gitconfig
from xp.gitstore import remote as git_remote
from xp.gitstore.repo import GitRepo
from xp.sharing.push_pull import PUSHING_RUNS_ENV, pick_git_remote

SWEEP_REF_PREFIX = "refs/xp/sweeps/"


@dataclass(frozen=True, slots=True)
class SlurmJob:
    """A sweep as a job array: the script, the commit its tasks run, where they get it."""

    sweep_id: str
    points: int
    commit: str
    remote: str
    url: str
    script: str
    job_id: str | None = None  # set once sbatch accepted it
    run_ids: tuple[str, ...] = ()  # each point's run id, the same in every attempt of its task

    @property
    def ref(self) -> str:
        return SWEEP_REF_PREFIX + self.sweep_id


def plan(
    repo: GitRepo,
    *,
    command: list[str],
    params: list[str] | tuple[str, ...],
    cwd: str | os.PathLike[str] | None = None,
    sweep_id: str | None = None,
    remote: str | None = None,
    engine: str = "slurm",
    repeat: int = 1,
) -> SlurmJob:
    """The job array for a sweep of ``params`` over ``command``; nothing is pushed or run.
    ``engine="dask"``: the same task script, its point in ``XP_POINT`` (dask_cluster.py).
    ``repeat=N``: each grid point N tasks (``xp run --repeat``)."""
    from xp.config import load_config
    from xp.gitstore.commit import head, tree_of
    from xp.gitstore.snapshot import snapshot

    if repeat < 1:
        raise InvalidValueError("--repeat must be at least 1")
    overrides = ov.parse(list(params))
    grid = ov.points(overrides, repeat)
    name = pick_git_remote(repo, remote)
    url = gitconfig.get(repo, f"remote.{name}.url") or ""
    commit = head(repo).commit
    if commit is None:
        raise RepositoryError(
            "the tasks check out a commit and this repository has none; commit (git commit)"
        )
    if snapshot(repo, load_config(repo).max_file_size).tree != tree_of(repo, commit):
        raise RepositoryError(
            "the work tree has changes the commit lacks, and the tasks run a commit: commit"
            " them (git commit), then submit"
        )
    sweep_id = check_sweep_id(sweep_id) if sweep_id is not None else fmt.new_run_id()
    here = Path(cwd if cwd is not None else os.getcwd()).resolve()
    rel = os.path.relpath(here, repo.worktree.resolve()).replace(os.sep, "/")
    rel = "." if rel.startswith("..") else rel
    run_ids = tuple(fmt.new_run_id() for _ in grid)  # one process: distinct and in order
    script = _script(sweep_id, run_ids, commit, url, rel, params, command, name, engine, repeat)
    return SlurmJob(sweep_id, len(grid), commit, name, url, script, run_ids=run_ids)


def _script(
    sweep_id: str,
    run_ids: tuple[str, ...],
    commit: str,
    url: str,
    rel: str,
    params: list[str] | tuple[str, ...],
    command: list[str],
    remote: str,
    engine: str,
    repeat: int = 1,
) -> str:
    q = shlex.quote
    points = len(run_ids)
    ref = SWEEP_REF_PREFIX + sweep_id
    args = " ".join(f"-p {q(p)}" for p in params)
    if repeat > 1:  # each task's --point counts in the repeated grid too
        args = f"--repeat {repeat} {args}".rstrip()
    from xp import __version__

    head = (
        f"#SBATCH --job-name=xp-{sweep_id}\n#SBATCH --array=0-{points - 1}\n"
        f"#SBATCH --output=xp-{sweep_id}-%a.out\n"
        if engine == "slurm"
        else ""
    )
    task = "SLURM_ARRAY_TASK_ID" if engine == "slurm" else "XP_POINT"
    return f"""#!/bin/bash
{head}# Written by xp {__version__}: sweep {sweep_id}, {points} point(s), one per {engine} task.
# Each task clones {url}, checks out {commit}
# (pushed to {remote} as {ref}), runs its grid point and sends the run with xp push.
# Every attempt of a point records the run id below: the remote keeps one run per point.
set -euo pipefail
xp=${{XP:-xp}}
point=${task}
url={q(url)}
commit={commit}
ids=({" ".join(run_ids)})
run_id=${{ids[$point]}}
buckets=({" ".join(fmt.bucket_of(i) for i in run_ids)})
bucket=${{buckets[$point]}}
# a clone an earlier attempt of this point left on this machine (killed with its worker)
rm -rf "${{TMPDIR:-/tmp}}/xp-{sweep_id}-$point".* 2>/dev/null || true
work=$(mktemp -d "${{TMPDIR:-/tmp}}/xp-{sweep_id}-$point.XXXXXX")
trap 'rm -rf "$work"' EXIT
# SIGTERM (scancel; the Dask or Ray worker running this task died): stop xp run (its guard
# then stops the command, SIGKILL after 5 s), push nothing, and remove the clone until it
# stays gone (the dying command may still write there)
stop() {{
  trap - EXIT TERM
  kill -KILL $(jobs -p) 2>/dev/null || true
  gone=0
  for _ in $(seq 30); do
    rm -rf "$work" 2>/dev/null || true
    sleep 1
    if [ -e "$work" ]; then gone=0; else gone=$((gone + 1)); [ "$gone" -lt 7 ] || break; fi
  done
  kill -KILL 0
}}
trap stop TERM
git clone --quiet --no-checkout "$url" "$work/repo"
cd "$work/repo"
# on the remote already: as a per-run ref (format 1) or in its catalog bucket (format 2; the
# bucket commit and its tree only, fetched shallow into a throwaway repository)
if git ls-remote --exit-code origin "refs/xp/runs/$run_id" >/dev/null 2>&1 || {{
  git init --quiet --bare "$work/check" &&
    git -C "$work/check" fetch --quiet --depth=1 "$url" "refs/xp/catalog/$bucket" 2>/dev/null &&
    [ -n "$(git -C "$work/check" ls-tree FETCH_HEAD -- "$run_id")" ]
}}; then
  echo "xp: point $point is on $url already as run $run_id (an earlier attempt pushed it)" >&2
  exit 0
fi
git fetch --quiet origin {q(ref)}
git checkout --quiet --detach "$commit"
cd {q(rel)}
status=0
XP_TETHER=$$ "$xp" run --run-id "$run_id" --point "$point" --sweep-id {q(sweep_id)} {args} \\
  -- {shlex.join(command)} &  # in the background: the TERM trap runs at once; XP_TETHER: xp
# run dies with this script, however it dies
wait $! || status=$?
"$xp" push origin
exit "$status"
"""


def push_code(repo: GitRepo, job: SlurmJob) -> None:
    """Push the sweep's commit as ``refs/xp/sweeps/<id>``, where every task fetches it."""
    # the code only: the pre-push hook is told to stand aside (no runs to send with it)
    rows = git_remote.push(
        repo, job.remote, [f"{job.commit}:{job.ref}"], env={PUSHING_RUNS_ENV: "1"}
    )
    for row in rows:
        if row.rejected:
            raise ExecutionError(
                f"{job.remote} refused {job.ref} ({row.reason}); the tasks could not get the code"
            )


def submit(repo: GitRepo, job: SlurmJob, *, folder: Path) -> SlurmJob:
    """Push the sweep's commit, write the script into ``folder`` and ``sbatch`` it."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise ExecutionError(
            "sbatch is not on PATH (no Slurm here); `xp run --executor slurm --dry-run` prints"
            " the job script to submit where Slurm is"
        )
    push_code(repo, job)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"xp-{job.sweep_id}.sbatch"
    path.write_text(job.script)
    proc = subprocess.run(
        [sbatch, "--parsable", str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise ExecutionError(f"sbatch refused the job ({reason}); the script is {path}")
    job_id = proc.stdout.strip().split(";")[0]
    return dataclasses.replace(job, job_id=job_id or None)
