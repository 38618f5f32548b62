"""MLF: the per-call cost of MLflow's API on xp: ``xp.mlflow.log_metric`` (MLflow's
signature: step 0 by default, a timestamp per call) against ``xp.log_metric`` in the same
process, which it must stay within 2x of; and MLflow's own ``log_metric`` to sqlite."""

from __future__ import annotations

import os
import time
from types import ModuleType

from benchmarks.harness import Context, Metric, Workload, settle, xp_project

MLFLOW_CAP = 5_000  # MLflow's sqlite store takes ~4 ms a call


def loop(api: ModuleType, n: int) -> float:
    """Seconds per call of the loop a user writes (module attribute lookup included)."""
    api.start_run()
    t0 = time.perf_counter()
    for i in range(n):
        api.log_metric("loss", i * 0.001, step=i)
    per_call = (time.perf_counter() - t0) / n
    api.end_run()
    return per_call


def xp_side(ctx: Context) -> dict[str, float]:
    repo = xp_project(ctx.workdir / "project")
    os.chdir(repo)
    import xp
    import xp.mlflow as mlflow

    n = ctx.size(100_000, 10_000)
    settle()
    plain, bridged = [], []
    for _ in range(2):  # alternate, so neither side gets the warmer process
        plain.append(loop(xp, n))
        bridged.append(loop(mlflow, n))
    best_plain, best_bridged = min(plain), min(bridged)
    return {"per_call": best_bridged, "xp_per_call": best_plain, "ratio": best_bridged / best_plain}


def mlflow_side(ctx: Context) -> dict[str, float]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{ctx.workdir / 'mlflow.db'}")
    mlflow.MlflowClient().search_experiments()  # creates the store before timing
    n = ctx.size(100_000, 10_000)
    if not ctx.no_cap:
        n = min(n, ctx.size(MLFLOW_CAP, 500))
    settle()
    return {"per_call": loop(mlflow, n)}


WORKLOAD = Workload(
    key="MLF",
    title="xp.mlflow.log_metric vs xp.log_metric, 100,000 calls each in one run",
    metrics=(
        Metric("per_call", "xp.mlflow.log_metric per call", "us", peer_label="mlflow (sqlite)"),
        Metric("xp_per_call", "xp.log_metric per call, same process", "us"),
        Metric("ratio", "xp.mlflow / xp per call", "x", 2.0),
    ),
    xp=xp_side,
    peer="mlflow",
    peer_side=mlflow_side,
    repeat=3,
    peer_repeat=1,
    order=45,
    notes=(
        "each xp figure is the better of two alternating loops in one process;"
        f" MLflow makes {MLFLOW_CAP:,} calls",
    ),
    quick_notes=("quick: 10,000 calls (MLflow 500)",),
)
