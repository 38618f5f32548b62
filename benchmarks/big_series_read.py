"""R2: one 1M-point metric read back (issue 18: <= 1 s and <= 100 MB): `xp.get_series` and
what `xp diff` does with it (a summary of the series on each side), each in a fresh process
that has imported pandas and xp first, so the figures are the read's own: wall and CPU time
(git's child processes included) and the peak RSS above that start. Two runs of 1M points
each are logged once by `log_metric` in a loop (not timed). No peer: MLflow would take ~2 h
to log the 1M points this reads (W4b times MLflow's `get_metric_history` on its capped run).

    python benchmarks/run.py --only R2        # or alone: python benchmarks/big_series_read.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # standalone: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Context, Metric, Workload, child_env, standalone, xp_project

LOG = """
import sys, xp
for scale in (0.25, 0.5):
    with xp.start_run() as run:
        for step in range(int(sys.argv[1])):
            run.log_metric("loss", step * scale, step)
    print(run.id)
"""

READ = """
import json, resource, sys, time
import pandas, xp
from xp.gitstore.repo import find_repo
from xp.query.diff import diff_runs

base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c0, w0 = time.process_time(), time.perf_counter()
if sys.argv[1] == "series":
    assert len(xp.get_series(sys.argv[2], "loss")) == int(sys.argv[4])
else:
    (change,) = diff_runs(find_repo("."), a=sys.argv[2], b=sys.argv[3]).series
    assert change.a.points == int(sys.argv[4])
wall = time.perf_counter() - w0
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = time.process_time() - c0 + kids.ru_utime + kids.ru_stime
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps({"wall": wall, "cpu": cpu, "rss": peak / 1024}))
"""


def xp_side(ctx: Context) -> dict[str, float]:
    n = ctx.size(1_000_000, 100_000)
    repo = xp_project(ctx.workdir / "big")
    (repo / "log.py").write_text(LOG)
    (repo / "read.py").write_text(READ)
    env = child_env()
    logged = subprocess.run(
        [sys.executable, "log.py", str(n)], cwd=repo, env=env, capture_output=True, text=True
    )
    if logged.returncode:
        raise RuntimeError(logged.stderr[-2000:])
    a, b = logged.stdout.split()
    out: dict[str, float] = {}
    for what in ("series", "diff"):
        best: dict[str, float] = {}
        for _ in range(3):
            proc = subprocess.run(
                [sys.executable, "read.py", what, a, b, str(n)],
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
            )
            if proc.returncode:
                raise RuntimeError(proc.stderr[-2000:])
            got = json.loads(proc.stdout)
            best = {k: min(v, best.get(k, v)) for k, v in got.items()}
        out.update({f"{what}_{k}": v for k, v in best.items()})
    return out


WORKLOAD = Workload(
    key="R2",
    title="one 1M-point metric read back: get_series, and xp diff's summary of two",
    metrics=(
        Metric("series_wall", "xp.get_series, 1M points", "s", 1.0),
        Metric("series_cpu", "  its CPU, git's included", "s"),
        Metric("series_rss", "  peak RSS above Python + pandas + xp", "MB", 100),
        Metric("diff_wall", "xp diff's summaries of two 1M-point series", "s"),
        Metric("diff_cpu", "  their CPU, git's included", "s"),
        Metric("diff_rss", "  peak RSS above Python + pandas + xp", "MB", 100),
    ),
    xp=xp_side,
    repeat=1,
    order=42,
    notes=(
        "each figure the best of 3 fresh processes; pandas is imported before the read"
        " (107 MB with pyarrow installed, 68 MB without), so RSS is the read's own",
    ),
    quick_notes=("quick: 100,000 points",),
)


if __name__ == "__main__":
    standalone(__doc__, {"xp": xp_side})
