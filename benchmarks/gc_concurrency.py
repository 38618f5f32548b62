"""gc while runs log and commit: 16 writers x 100 runs, each logging a new artifact and one
shared by every run, while `xp gc --grace 0` and `git gc --auto` (made eager: a low
`gc.auto`, `gc.pruneExpire=now`) loop over the same repository (issue 10: 1,600 runs,
0 artifacts lost). Some runs outlive their first journal flush, so their snapshots are kept
from git's prune; the others commit within it.

The figures: runs recorded, artifacts whose object is gone from the cache, and problems
(a writer that failed, `git fsck --strict` errors, kept packs left behind).
tests/artifacts/test_gc.py runs the same scripts at 3 x 4 (and 4 x 15 when slow).
`python benchmarks/run.py --only gc-concurrency` or `python benchmarks/gc_concurrency.py`.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # standalone: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Context, Metric, Workload, child_env, git, standalone, xp_project

WRITERS, RUNS = 16, 100
QUICK = (3, 4)
WRITER = """
import os, random, sys, time, xp
w, n = sys.argv[1], int(sys.argv[2])
os.makedirs("out", exist_ok=True)
random.seed(w)
with open(f"out/shared-{w}.txt", "w") as fh:
    fh.write("the same bytes in every writer")  # one object, freshened by every run
for i in range(n):
    with xp.start_run(name=f"w{w}-{i}") as run:
        path = f"out/{w}-{i}.bin"
        with open(path, "wb") as fh:
            fh.write(os.urandom(32) + path.encode())
        xp.log_artifact(path)
        xp.log_artifact(f"out/shared-{w}.txt", name="shared.txt")
        xp.log_metric("i", i)
        time.sleep(random.choice([0.0, 0.05, 0.7]))  # some outlive their first flush
    print(run.id, flush=True)
"""
XP_GC_LOOP = """
import os, sys
from xp.artifacts.gc import gc
from xp.gitstore.repo import find_repo
repo = find_repo()
rounds = 0
while not os.path.exists("stop") or rounds < 3:
    gc(repo, grace=0)  # no grace at all: only the journals-then-refs order protects
    rounds += 1
print(rounds)
"""
GIT_GC_LOOP = "n=0; while [ ! -e stop ] || [ $n -lt 2 ]; do git gc -q {how}; n=$((n+1)); done"


def stress(repo: Path, writers: int, runs: int, git_gc: str) -> dict[str, object]:
    """Run the writers with both gc loops; what came out of each process."""
    (repo / ".gitignore").write_text("out/\nstop\n")
    (repo / "writer.py").write_text(WRITER)
    (repo / "xp_gc_loop.py").write_text(XP_GC_LOOP)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "writers")
    (repo / "stop").unlink(missing_ok=True)
    pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    env = child_env()
    with contextlib.ExitStack() as stack:
        procs: list[subprocess.Popen[str]] = []

        def start(cmd: list[str]) -> subprocess.Popen[str]:
            proc: subprocess.Popen[str] = subprocess.Popen(cmd, cwd=repo, env=env, **pipe)
            stack.callback(proc.kill)
            procs.append(proc)
            return proc

        xp_gc = start([sys.executable, "xp_gc_loop.py"])
        git_loop = start(["bash", "-c", GIT_GC_LOOP.format(how=git_gc)])
        writing = [start([sys.executable, "writer.py", str(w), str(runs)]) for w in range(writers)]
        outs = [p.communicate(timeout=3600) for p in writing]
        (repo / "stop").touch()
        gc_out, gc_err = xp_gc.communicate(timeout=600)
        _out, git_err = git_loop.communicate(timeout=600)
    return {
        "ids": [line for out, _err in outs for line in out.split()],
        "writer_errors": [
            err for p, (_out, err) in zip(writing, outs, strict=True) if p.returncode
        ],
        "xp_gc": (xp_gc.returncode, gc_out, gc_err),
        "git_gc_errors": git_err,
    }


def check(repo: Path, ids: list[str]) -> tuple[int, list[str]]:
    """(artifacts whose object is gone, problems) of the repository after the stress."""
    import xp
    from xp.artifacts import cache

    cache_dir = repo / ".git" / "xp" / "cache"
    lost = 0
    problems = []
    for run_id in ids:
        for a in xp.get_run(run_id, path=repo).artifacts:
            lost += not cache.verify(cache_dir, a.sha256)
    fsck = subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling"], cwd=repo, capture_output=True, text=True
    )
    if fsck.returncode != 0:
        problems.append(f"git fsck: {fsck.stdout[-200:]}{fsck.stderr[-200:]}")
    if list((repo / ".git" / "objects" / "pack").glob("*.keep")):
        problems.append("kept packs left behind")
    if {e.id for e in xp.list_runs(path=repo)} != set(ids):
        problems.append("the runs listed are not the runs the writers made")
    return lost, problems


def xp_side(ctx: Context) -> dict[str, float]:
    writers, runs = (WRITERS, RUNS) if not ctx.quick else QUICK
    repo = xp_project(ctx.workdir / "project")
    for key, value in (("gc.auto", "20"), ("gc.autoPackLimit", "4"), ("gc.autoDetach", "false")):
        git(repo, "config", key, value)
    git(repo, "config", "gc.pruneExpire", "now")
    start = time.perf_counter()
    out = stress(repo, writers, runs, "--auto")
    seconds = time.perf_counter() - start
    ids = out["ids"]
    assert isinstance(ids, list)
    lost, problems = check(repo, ids)
    code, rounds, err = out["xp_gc"]  # type: ignore[misc]
    if code != 0:
        problems.append(f"xp gc loop failed: {str(err)[-300:]}")
    problems += [f"a writer failed: {str(e)[-300:]}" for e in out["writer_errors"]]  # type: ignore[attr-defined]
    for problem in problems:
        print(f"gc-concurrency: {problem}", file=sys.stderr)
    return {
        "runs": float(len(ids)),
        "lost": float(lost),
        "problems": float(len(problems)),
        "xp_gc_rounds": float(rounds) if code == 0 else 0.0,
        "seconds": seconds,
    }


WORKLOAD = Workload(
    key="gc-concurrency",
    title="16 writers x 100 runs while xp gc and git gc --auto loop",
    metrics=(
        Metric("runs", "runs recorded", "n"),
        Metric("lost", "artifacts lost", "n", 0.0),
        Metric("problems", "failed writers, fsck errors, packs left kept", "n", 0.0),
        Metric("seconds", "wall time", "s"),
    ),
    xp=xp_side,
    repeat=1,
    order=92,
    notes=(
        "xp gc --grace 0 (no grace: only the journal-before-refs order protects) and git gc"
        " --auto with gc.auto=20, gc.autoPackLimit=4, gc.pruneExpire=now, both looping",
    ),
    quick_notes=(f"quick: {QUICK[0]} writers x {QUICK[1]} runs",),
)


if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side})
