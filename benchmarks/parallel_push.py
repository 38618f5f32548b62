"""Eight clones push at once: each logs 25 runs with a small artifact, then pushes its runs
with plain `git push` to one git server (git daemon on 127.0.0.1) while xp's pre-push hook
uploads the artifacts to one folder store. The figure is the wall time of the parallel phase
(logging included), the contention a team's shared remote sees.

Runs with the benchmark runner (`python benchmarks/run.py --only clones`) or alone:
`python benchmarks/parallel_push.py [--quick]`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # standalone: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (
    Context,
    Metric,
    Workload,
    child_env,
    git,
    git_daemon,
    standalone,
    xp_command,
    xp_project,
)

WORK = """
import os, sys, xp
os.makedirs("out", exist_ok=True)
for i in range(int(sys.argv[1])):
    open("out/model.bin", "wb").write(os.urandom(200))
    with xp.start_run(name=f"{os.path.basename(os.getcwd())}-{i}"):
        xp.log_artifact("out/model.bin")
"""


def env() -> dict[str, str]:
    """child_env with this interpreter's bin/ first: the hooks exec `git-xp` from PATH."""
    return {**child_env(), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def xp(cwd: Path, *args: str) -> None:
    subprocess.run([*xp_command(), *args], cwd=cwd, env=env(), capture_output=True, check=True)


def work(clone: Path, runs: int) -> None:
    subprocess.run([sys.executable, "work.py", str(runs)], cwd=clone, env=env(), check=True)
    for _ in range(5):  # the runs never conflict; retry only what a lost race refused
        proc = subprocess.run(
            ["git", "push", "-q", "origin", "refs/xp/runs/*:refs/xp/runs/*"],
            cwd=clone,
            env=env(),
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0:
            return
    raise RuntimeError(f"git push from {clone.name} failed: {proc.stderr.strip()}")


def xp_side(ctx: Context) -> dict[str, float]:
    clones, runs = ctx.size(8, 2), ctx.size(25, 5)
    srv = ctx.workdir / "srv"
    with git_daemon(srv) as url:
        seed = xp_project(ctx.workdir / "seed")
        xp(seed, "remote", "add", "store", str(ctx.workdir / "store"), "--default")
        (seed / "work.py").write_text(WORK)
        (seed / ".gitignore").write_text("outputs/\nout/\n__pycache__/\n")
        git(seed, "add", "-A")
        git(seed, "commit", "-q", "-m", "store and work.py")
        git(seed, "remote", "add", "origin", url)
        git(seed, "push", "-q", "origin", "main")
        paths = []
        for k in range(clones):
            clone = ctx.workdir / f"c{k}"
            git(ctx.workdir, "clone", "-q", url, str(clone))
            xp(clone, "init", "--no-git-config")
            xp(clone, "hooks", "install")
            paths.append(clone)
        start = time.perf_counter()
        with ThreadPoolExecutor(clones) as pool:
            list(pool.map(lambda c: work(c, runs), paths))
        wall = time.perf_counter() - start
    pushed = git(srv / "team.git", "for-each-ref", "refs/xp/runs").count("\n")
    if pushed != clones * runs:
        raise RuntimeError(f"{pushed} runs reached the server, expected {clones * runs}")
    return {"wall": wall, "per_run": wall / (clones * runs)}


WORKLOAD = Workload(
    key="clones",
    title="8 clones x 25 runs, logged and pushed at once through git daemon (hooks on)",
    metrics=(
        Metric("wall", "8 clones log 25 runs each and git push at once", "s"),
        Metric("per_run", "per run (wall / 200)", "ms"),
    ),
    xp=xp_side,
    repeat=1,
    order=85,
    notes=("git daemon on 127.0.0.1; artifacts to one folder store through the pre-push hook",),
    quick_notes=("quick: 2 clones x 5 runs",),
)


if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side})
