"""A 16-point sweep (4 x 4 grid) three ways (issue 14): `xp run -j 4` in one clone, the same
followed by `xp push` (the runs on the shared remote, as the cluster runs end), and
`xp run --executor dask://...` on a Dask LocalCluster of 4 process workers (1 thread each)
that is already up, as a team's cluster would be. Each point trains for ~0.4 s of CPU
(a pure-Python loop) and logs one metric. A Dask point clones the sweep's commit from the git
server (git daemon on 127.0.0.1), runs its point in that clone and pushes its run, so the
Dask figure includes what a cluster pays to get the exact code and publish the run. The
cluster's start-up is reported apart. Every figure checks that 16 runs were recorded (on the
server for the pushed ones).

Long (it needs Dask: `pip install "dask[distributed]"`): `python benchmarks/run.py --only T4`,
or alone `python benchmarks/sweep_executors.py [--quick]` (a 2 x 2 grid).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
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
)

TRAIN = """
import time, yaml, xp
p = yaml.safe_load(open("params.yaml"))
t, x = time.process_time(), 0.0
while time.process_time() - t < 0.4:
    for i in range(10000):
        x += (i % 7) * p["lr"]
with xp.start_run():
    xp.log_metric("loss", 1.0 / (1.0 + x + p["depth"]))
"""


def env(tmp: Path) -> dict[str, str]:
    """child_env with this interpreter's bin/ first (workers and hooks exec `xp` from PATH)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**child_env(), "PATH": path, "TMPDIR": str(tmp)}


def xp(cwd: Path, tmp: Path, *args: str) -> str:
    proc = subprocess.run(
        [*xp_command(), *args], cwd=cwd, env=env(tmp), capture_output=True, text=True
    )
    if proc.returncode:
        raise RuntimeError(f"xp {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def server_runs(bare: Path, work: Path, tmp: Path, sweep: str) -> int:
    """Runs of `sweep` a fresh clone of the server sees."""
    clone = work / f"check-{sweep}"
    git(work, "clone", "-q", str(bare), str(clone))
    xp(clone, tmp, "init")
    git(clone, "fetch", "-q", "origin")
    shown = xp(clone, tmp, "show", "--all", "-w", f"tags.xp.sweep = '{sweep}'", "--format", "json")
    return len(json.loads(shown))


def xp_side(ctx: Context) -> dict[str, float]:
    import distributed

    side = ctx.size(4, 2)
    grid = ["-p", "lr=" + ",".join(str(0.1 * (i + 1)) for i in range(side))]
    grid += ["-p", "depth=" + ",".join(str(i + 1) for i in range(side))]
    points = side * side
    work, tmp = ctx.workdir, ctx.workdir / "tmp"
    tmp.mkdir()
    srv = work / "srv"
    bare = srv / "team.git"
    out: dict[str, float] = {}
    with git_daemon(srv) as url:
        a = work / "a"
        git(work, "clone", "-q", url, str(a))
        (a / "train.py").write_text(TRAIN)
        (a / "params.yaml").write_text("lr: 0.1\ndepth: 1\n")
        (a / ".gitignore").write_text("__pycache__/\n")
        xp(a, tmp, "init")
        xp(a, tmp, "remote", "add", "store", str(work / "store"), "--default")
        git(a, "add", ".")
        git(a, "commit", "-qm", "project")
        git(a, "push", "-q", "origin", "HEAD:refs/heads/main")

        start = time.perf_counter()
        xp(a, tmp, "run", "-j", "4", "--sweep-id", "local", *grid, "--", "python", "train.py")
        out["local"] = time.perf_counter() - start
        xp(a, tmp, "push", "origin")
        out["local_push"] = time.perf_counter() - start

        start = time.perf_counter()
        saved = dict(os.environ)
        os.environ.update(env(tmp))  # the workers inherit this process's environment
        try:
            cluster = distributed.LocalCluster(
                n_workers=4, threads_per_worker=1, processes=True, dashboard_address=None
            )
        finally:
            os.environ.clear()
            os.environ.update(saved)
        out["cluster_up"] = time.perf_counter() - start
        try:
            address = cluster.scheduler_address.replace("tcp://", "dask://")
            start = time.perf_counter()
            args = ["run", "--executor", address, "--sweep-id", "dask", *grid]
            xp(a, tmp, *args, "--", "python", "train.py")
            out["dask"] = time.perf_counter() - start
        finally:
            import logging

            logging.getLogger("distributed").setLevel(logging.CRITICAL)  # shutdown chatter
            cluster.close()
    for sweep in ("local", "dask"):
        # the local sweep reached the server by `xp push`, the Dask one by its workers
        if (got := server_runs(bare, work, tmp, sweep)) != points:
            raise RuntimeError(f"sweep {sweep}: {got} runs on the server, expected {points}")
    out["dask_ratio"] = out["dask"] / out["local_push"]
    return out


WORKLOAD = Workload(
    key="T4",
    title="A 16-point sweep: xp run -j 4 locally vs 4 Dask process workers (git daemon)",
    metrics=(
        Metric("local", "xp run -j 4, runs recorded in the clone", "s"),
        Metric("local_push", "xp run -j 4, then xp push (runs on the server)", "s"),
        Metric("dask", "xp run --executor dask:// (each point clones, runs, pushes)", "s"),
        Metric("dask_ratio", "Dask / (local + push)", "x"),
        Metric("cluster_up", "starting the LocalCluster (not in the Dask figure)", "s"),
    ),
    xp=xp_side,
    repeat=1,
    order=87,
    long=True,
    needs=("distributed",),
    needs_hint='pip install "dask[distributed]"',
    notes=(
        "each point ~0.4 CPU-s of pure Python and one metric; 2 cores, so 4 workers share them;"
        " a Dask point clones the sweep's commit from git daemon and pushes its run",
    ),
    quick_notes=("quick: a 2 x 2 grid",),
)


if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side})
