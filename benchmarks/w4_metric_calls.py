"""W4: 100,000 log_metric calls in one run. The headline is the cost per point of the whole
run, the loop and the ``end_run`` that turns the points into a record, divided by the calls:
xp's calls only append to memory and its writing happens in ``end_run`` (MLflow writes on
every call), so the loop alone would flatter xp. The loop's per-call cost and ``end_run``
are reported apart as well."""

from __future__ import annotations

import os
import time
from types import ModuleType

from benchmarks.harness import Context, Metric, Workload, settle, xp_project

MLFLOW_CAP = 5_000  # MLflow's sqlite store takes ~4 ms a call: 100,000 would be ~7 minutes


def calls(api: ModuleType, n: int) -> dict[str, float]:
    """The loop a user writes, module attribute lookup included, for xp and MLflow alike."""
    api.start_run()
    t0 = time.perf_counter()
    for i in range(n):
        api.log_metric("loss", i * 0.001, step=i)
    t1 = time.perf_counter()
    api.end_run()
    t2 = time.perf_counter()
    return {
        "per_point": (t2 - t0) / n,
        "per_call": (t1 - t0) / n,
        "loop": t1 - t0,
        "end_run": t2 - t1,
        "calls": n,
    }


def _noop(key: str, value: float, step: int | None = None) -> None:
    pass


def loop_overhead(n: int) -> float:
    """Per-call cost of the same loop calling an empty function: the floor no logger beats."""
    t0 = time.perf_counter()
    for i in range(n):
        _noop("loss", i * 0.001, step=i)
    return (time.perf_counter() - t0) / n


def xp_side(ctx: Context) -> dict[str, float]:
    repo = xp_project(ctx.workdir / "project")
    os.chdir(repo)
    import xp

    n = ctx.size(100_000, 10_000)
    settle()
    return {**calls(xp, n), "loop_overhead_per_call": loop_overhead(n)}


def mlflow_side(ctx: Context) -> dict[str, float]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{ctx.workdir / 'mlflow.db'}")
    mlflow.MlflowClient().search_experiments()  # creates the store before timing
    n = ctx.size(100_000, 10_000)
    if not ctx.no_cap:
        n = min(n, ctx.size(MLFLOW_CAP, 500))
    settle()
    return calls(mlflow, n)


WORKLOAD = Workload(
    key="W4",
    title="100,000 log_metric calls in one run",
    metrics=(
        Metric("per_point", "per point, whole run: (loop + end_run) / calls", "us", 1.5e-6),
        Metric("per_call", "  of which the log_metric loop, per call", "us", 1e-6),
        Metric("end_run", "  of which end_run (xp writes the run here)", "s"),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=mlflow_side,
    repeat=3,
    peer_repeat=1,
    order=40,
    notes=(
        "target per point: issue 18's 10M-point run, <= 1 us a call plus <= 5 s of end_run,"
        " is 1.5 us a point",
        f"MLflow makes {MLFLOW_CAP:,} of the calls (per-call time is their mean; its end_run"
        " has only those to close); --no-cap runs all 100,000",
    ),
    quick_notes=("quick: 10,000 calls (MLflow 500)",),
)
