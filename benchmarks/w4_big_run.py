"""W4b: one run logging 10 metrics at many steps (issue 18): 1M points by default, the
issue's 10M with ``XP_BENCH_BIG_POINTS=10000000`` (about half a minute here). The
figures are the whole run's cost per point, the loop's per call (CPU time too: the machine
is shared), ``end_run``, and the side process's peak RSS, which must not grow with the
point count (<= 200 MB), and its children's (the helper that spells a big run's floats on
the other core, journal version 4). MLflow logs the same loop, capped like W4."""

from __future__ import annotations

import os
import resource
import time
from types import ModuleType

from benchmarks.harness import Context, Metric, Workload, settle, xp_project

METRICS = 10
MLFLOW_CAP = 5_000  # MLflow's sqlite store takes ~4 ms a call


def points(ctx: Context) -> int:
    return int(os.environ.get("XP_BENCH_BIG_POINTS") or ctx.size(1_000_000, 100_000))


def calls(api: ModuleType, n: int) -> dict[str, float]:
    keys = [f"metric{i}" for i in range(METRICS)]
    steps = max(1, n // METRICS)
    run = api.start_run()
    run_id = run.info.run_id if hasattr(run, "info") else run.id
    c0, t0 = time.process_time(), time.perf_counter()
    for step in range(steps):
        for key in keys:
            api.log_metric(key, step * 0.001, step=step)
    c1, t1 = time.process_time(), time.perf_counter()
    api.end_run()
    t2 = time.perf_counter()
    calls_made = steps * METRICS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    import pandas  # noqa: F401 - loaded by xp's first DataFrame: not the read's cost

    t3 = time.perf_counter()
    read = read_series(api, run_id, keys[0])
    t4 = time.perf_counter()
    assert read == steps, (read, steps)
    return {
        "read_series": t4 - t3,
        "read_per_point": (t4 - t3) / steps,
        "per_point": (t2 - t0) / calls_made,
        "per_call": (t1 - t0) / calls_made,
        "per_call_cpu": (c1 - c0) / calls_made,
        "end_run": t2 - t1,
        "peak_rss": peak,
        "child_rss": child,
        "calls": calls_made,
    }


def read_series(api: ModuleType, run_id: str, key: str) -> int:
    """One metric's whole history back, as each tool's users read it: xp's DataFrame,
    MLflow's list of Metric entities. Returns the point count."""
    if hasattr(api, "get_series"):
        return len(api.get_series(run_id, key))
    return len(api.MlflowClient().get_metric_history(run_id, key))


def xp_side(ctx: Context) -> dict[str, float]:
    repo = xp_project(ctx.workdir / "project")
    os.chdir(repo)
    import xp

    n = points(ctx)
    settle()
    return calls(xp, n)


def mlflow_side(ctx: Context) -> dict[str, float]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{ctx.workdir / 'mlflow.db'}")
    mlflow.MlflowClient().search_experiments()  # creates the store before timing
    n = points(ctx) if ctx.no_cap else min(points(ctx), ctx.size(MLFLOW_CAP, 500))
    settle()
    return calls(mlflow, n)


WORKLOAD = Workload(
    key="W4b",
    title="one run, 10 metrics x 100,000 steps (XP_BENCH_BIG_POINTS=10000000: the 10M run)",
    metrics=(
        Metric("per_point", "per point, whole run: (loop + end_run) / calls", "us"),
        Metric("per_call", "  of which the log_metric loop, per call (wall)", "us", 1e-6),
        Metric("per_call_cpu", "  the loop's CPU time per call (flusher included)", "us", 1e-6),
        Metric("end_run", "  end_run (series blobs streamed from the spill)", "s", 5.0),
        Metric("peak_rss", "peak RSS of the logging process", "MB", 200),
        Metric("child_rss", "  its largest child's (xp's render helper, git)", "MB", 200),
        Metric("read_series", "reading one metric back (get_series / get_metric_history)", "s"),
        Metric("read_per_point", "  per point read (issue 18: a 1M-point metric <= 1 s)", "us"),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=mlflow_side,
    repeat=1,
    peer_repeat=1,
    order=41,
    notes=(
        "targets from issue 18: <= 1 us a call, end_run <= 5 s, RSS <= 200 MB at any count;"
        " reading a 1M-point metric <= 1 s (1 us a point)",
        f"MLflow makes {MLFLOW_CAP:,} of the calls; --no-cap runs them all",
    ),
    quick_notes=("quick: 100,000 points (MLflow 500)",),
)
